package refdata

import (
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// Occupation describes one of the ten national occupational standards.
type Occupation struct {
	Code subsidyv1.Occupation
	// Slug is a stable lower-case ASCII name, e.g. "big-data".
	Slug   string
	NameZH string
	NameEN string
}

// LevelInfo describes a professional technical level.
type LevelInfo struct {
	Code   subsidyv1.Level
	Slug   string
	NameZH string
	NameEN string
}

var occupations = []Occupation{
	{subsidyv1.Occupation_OCCUPATION_ARTIFICIAL_INTELLIGENCE, "artificial-intelligence", "人工智能工程技术人员", "Artificial intelligence"},
	{subsidyv1.Occupation_OCCUPATION_INTERNET_OF_THINGS, "internet-of-things", "物联网工程技术人员", "Internet of things"},
	{subsidyv1.Occupation_OCCUPATION_BIG_DATA, "big-data", "大数据工程技术人员", "Big data"},
	{subsidyv1.Occupation_OCCUPATION_CLOUD_COMPUTING, "cloud-computing", "云计算工程技术人员", "Cloud computing"},
	{subsidyv1.Occupation_OCCUPATION_DIGITAL_MANAGEMENT, "digital-management", "数字化管理师", "Digital management"},
	{subsidyv1.Occupation_OCCUPATION_INTELLIGENT_MANUFACTURING, "intelligent-manufacturing", "智能制造工程技术人员", "Intelligent manufacturing"},
	{subsidyv1.Occupation_OCCUPATION_INDUSTRIAL_INTERNET, "industrial-internet", "工业互联网工程技术人员", "Industrial internet"},
	{subsidyv1.Occupation_OCCUPATION_VIRTUAL_REALITY, "virtual-reality", "虚拟现实工程技术人员", "Virtual reality"},
	{subsidyv1.Occupation_OCCUPATION_BLOCKCHAIN, "blockchain", "区块链工程技术人员", "Blockchain"},
	{subsidyv1.Occupation_OCCUPATION_INTEGRATED_CIRCUITS, "integrated-circuits", "集成电路工程技术人员", "Integrated circuits"},
}

var levels = []LevelInfo{
	{subsidyv1.Level_LEVEL_JUNIOR, "junior", "初级", "Junior"},
	{subsidyv1.Level_LEVEL_INTERMEDIATE, "intermediate", "中级", "Intermediate"},
	{subsidyv1.Level_LEVEL_SENIOR, "senior", "高级", "Senior"},
}

// Occupations returns the ten occupations in code order.
func Occupations() []Occupation { return append([]Occupation(nil), occupations...) }

// Levels returns the three levels from junior to senior.
func Levels() []LevelInfo { return append([]LevelInfo(nil), levels...) }

// OccupationOf returns the occupation with the code, if it is one of the ten.
func OccupationOf(c subsidyv1.Occupation) (Occupation, bool) {
	for _, o := range occupations {
		if o.Code == c {
			return o, true
		}
	}
	return Occupation{}, false
}

// LevelOf returns the level with the code, if it is one of the three.
func LevelOf(c subsidyv1.Level) (LevelInfo, bool) {
	for _, l := range levels {
		if l.Code == c {
			return l, true
		}
	}
	return LevelInfo{}, false
}

// Qualification is an (occupation, level) pair, comparable, usable as a map
// key.
type Qualification struct {
	Occupation subsidyv1.Occupation
	Level      subsidyv1.Level
}

// QualificationOf converts the proto message (nil gives the zero pair).
func QualificationOf(q *subsidyv1.Qualification) Qualification {
	return Qualification{q.GetOccupation(), q.GetLevel()}
}

// Valid reports whether the pair is one of the 30 qualifications.
func (q Qualification) Valid() bool {
	_, o := OccupationOf(q.Occupation)
	_, l := LevelOf(q.Level)
	return o && l
}

// Proto returns the pair as a subsidy.v1.Qualification.
func (q Qualification) Proto() *subsidyv1.Qualification {
	return &subsidyv1.Qualification{Occupation: q.Occupation, Level: q.Level}
}

// String returns e.g. "big-data/junior" (or the enum numbers if unknown).
func (q Qualification) String() string {
	o, ok1 := OccupationOf(q.Occupation)
	l, ok2 := LevelOf(q.Level)
	if !ok1 || !ok2 {
		return q.Occupation.String() + "/" + q.Level.String()
	}
	return o.Slug + "/" + l.Slug
}

// Qualifications returns the 30 qualifications, by occupation then level.
func Qualifications() []Qualification {
	out := make([]Qualification, 0, len(occupations)*len(levels))
	for _, o := range occupations {
		for _, l := range levels {
			out = append(out, Qualification{o.Code, l.Code})
		}
	}
	return out
}
