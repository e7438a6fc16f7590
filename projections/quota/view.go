package quota

import (
	"sort"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/projections/internal/rm"
)

// Counts are the measures of one breakdown row.
type Counts struct {
	Enrolled           int64   `json:"enrolled"`
	Trained            int64   `json:"trained"`
	Certified          int64   `json:"certified"`
	Revoked            int64   `json:"revoked"`
	Subsidised         int64   `json:"subsidised"`
	Cancelled          int64   `json:"cancelled"`
	SubsidisedFen      int64   `json:"subsidised_fen"`
	Attempts           int64   `json:"attempts"`
	Passes             int64   `json:"passes"`
	FirstAttempts      int64   `json:"first_attempts"`
	FirstAttemptPasses int64   `json:"first_attempt_passes"`
	FirstAttemptRate   float64 `json:"first_attempt_pass_rate"`
}

func (c *Counts) add(x *counts) {
	c.Enrolled += int64(x.enrolled)
	c.Trained += int64(x.trained)
	c.Certified += int64(x.certified)
	c.Revoked += int64(x.revoked)
	c.Subsidised += int64(x.subsidised)
	c.Cancelled += int64(x.cancelled)
	c.SubsidisedFen += x.subsidisedFen
	c.Attempts += int64(x.attempts)
	c.Passes += int64(x.passes)
	c.FirstAttempts += int64(x.firstAttempts)
	c.FirstAttemptPasses += int64(x.firstOK)
}

func (c *Counts) finish() { c.FirstAttemptRate = rm.Rate(c.FirstAttemptPasses, c.FirstAttempts) }

// Month is one month of the year, with cumulative counts.
type Month struct {
	Month int `json:"month"`
	Counts
	CumulativeTrained    int64 `json:"cumulative_trained"`
	CumulativeCertified  int64 `json:"cumulative_certified"`
	CumulativeSubsidised int64 `json:"cumulative_subsidised"`
	// CumulativeProgress is Progress to the end of the month: the
	// measure's count as Progress counts it (under "certified", the
	// certifications less those later revoked), so that December's is
	// Progress, which the gross CumulativeCertified is not once a
	// certificate was revoked.
	CumulativeProgress int64 `json:"cumulative_progress"`
	// ProRataTarget is target × month / 12, rounded.
	ProRataTarget int64 `json:"pro_rata_target"`
}

// OccupationRow is a breakdown row by occupation.
type OccupationRow struct {
	Occupation string `json:"occupation"`
	NameZH     string `json:"name_zh"`
	NameEN     string `json:"name_en"`
	Counts
}

// LevelRow is a breakdown row by level.
type LevelRow struct {
	Level  string `json:"level"`
	NameZH string `json:"name_zh"`
	NameEN string `json:"name_en"`
	Counts
}

// QualificationRow is a breakdown row by qualification.
type QualificationRow struct {
	Qualification rm.Qualification `json:"qualification"`
	Counts
}

// UnitRow is a breakdown row by unit.
type UnitRow struct {
	UnitCode string `json:"unit_code"`
	UnitName string `json:"unit_name"`
	Counts
}

// Dashboard is the JSON form of a year (GET /v1/quota/{year}).
type Dashboard struct {
	Year int `json:"year"`
	// Target is the year's target; TargetSet is false when it is the
	// default 3,000.
	Target    int64 `json:"target"`
	TargetSet bool  `json:"target_set"`
	// Measure is what Progress counts toward the target.
	Measure string `json:"measure"`
	// Progress is the measure's year-to-date count; PercentOfTarget is
	// Progress / Target × 100, to two decimals.
	Progress        int64   `json:"progress"`
	PercentOfTarget float64 `json:"percent_of_target"`
	// View: "current" or "recorded" units.
	View            string             `json:"view"`
	Unit            string             `json:"unit,omitempty"`
	Totals          Counts             `json:"totals"`
	Months          []Month            `json:"months"`
	ByOccupation    []OccupationRow    `json:"by_occupation"`
	ByLevel         []LevelRow         `json:"by_level"`
	ByQualification []QualificationRow `json:"by_qualification"`
	ByUnit          []UnitRow          `json:"by_unit"`
	Position        events.Position    `json:"position"`
}

// Filter narrows a dashboard: View "current" (default) or "recorded";
// Unit, if set, keeps one unit (as shown in the view); Measure "trained"
// (default) or "certified".
//
// Unit keeps one unit: in the recorded view its own records and those of
// the units it succeeded (两江新区's and 江北区's and 渝北区's), each under
// the unit recorded; in the current view, everything rolled up into it.
type Filter struct {
	View    string
	Unit    string
	Measure string
}

// keeps reports whether f keeps a row of unit (as the view shows it).
func (m *Model) keeps(f Filter, unit string) bool {
	return f.Unit == "" || unit == f.Unit || (f.View == "recorded" && m.units.Current(unit) == f.Unit)
}

// Target returns the year's target and whether it was set.
func (m *Model) Target(year int) (int64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t, ok := m.targets[int32(year)]
	if !ok {
		return DefaultTarget, false
	}
	return int64(t), true
}

// Dashboard returns the year's dashboard.
func (m *Model) Dashboard(year int, f Filter) Dashboard {
	if f.View != "recorded" {
		f.View = "current"
	}
	if f.Measure != MeasureCertified {
		f.Measure = MeasureTrained
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	d := Dashboard{Year: year, Target: DefaultTarget, Measure: f.Measure, View: f.View, Unit: f.Unit, Position: m.pos}
	if t, ok := m.targets[int32(year)]; ok {
		d.Target, d.TargetSet = int64(t), true
	}
	var months [13]Counts
	occ := map[int]*Counts{}
	lvl := map[int]*Counts{}
	qual := map[rm.Q]*Counts{}
	units := map[string]*Counts{}
	get := func(m map[int]*Counts, k int) *Counts {
		if m[k] == nil {
			m[k] = &Counts{}
		}
		return m[k]
	}
	current := map[uint32]string{}
	for k, c := range m.years[int32(year)] {
		unit, ok := current[k.unit]
		if !ok {
			unit = m.strs.Str(k.unit)
			if f.View == "current" {
				unit = m.units.Current(unit)
			}
			current[k.unit] = unit
		}
		if !m.keeps(f, unit) {
			continue
		}
		d.Totals.add(c)
		months[k.month].add(c)
		get(occ, int(k.q.Occupation())).add(c)
		get(lvl, int(k.q.Level())).add(c)
		if qual[k.q] == nil {
			qual[k.q] = &Counts{}
		}
		qual[k.q].add(c)
		if units[unit] == nil {
			units[unit] = &Counts{}
		}
		units[unit].add(c)
	}
	d.Totals.finish()
	var cum Month
	for mo := 1; mo <= 12; mo++ {
		c := months[mo]
		c.finish()
		cum.CumulativeTrained += c.Trained
		cum.CumulativeCertified += c.Certified
		cum.CumulativeSubsidised += c.Subsidised
		cum.CumulativeProgress += progress(f.Measure, c)
		d.Months = append(d.Months, Month{Month: mo, Counts: c, CumulativeTrained: cum.CumulativeTrained,
			CumulativeCertified: cum.CumulativeCertified, CumulativeSubsidised: cum.CumulativeSubsidised,
			CumulativeProgress: cum.CumulativeProgress, ProRataTarget: (d.Target*int64(mo) + 6) / 12})
	}
	for _, o := range refdata.Occupations() {
		c := get(occ, int(o.Code))
		c.finish()
		d.ByOccupation = append(d.ByOccupation, OccupationRow{Occupation: o.Slug, NameZH: o.NameZH, NameEN: o.NameEN, Counts: *c})
	}
	for _, l := range refdata.Levels() {
		c := get(lvl, int(l.Code))
		c.finish()
		d.ByLevel = append(d.ByLevel, LevelRow{Level: l.Slug, NameZH: l.NameZH, NameEN: l.NameEN, Counts: *c})
	}
	for _, q := range refdata.Qualifications() {
		k := rm.Q(int(q.Occupation)*4 + int(q.Level))
		c := qual[k]
		if c == nil {
			c = &Counts{}
		}
		c.finish()
		d.ByQualification = append(d.ByQualification, QualificationRow{Qualification: k.JSON(), Counts: *c})
	}
	for u, c := range units {
		c.finish()
		d.ByUnit = append(d.ByUnit, UnitRow{UnitCode: u, UnitName: m.units.Name(u), Counts: *c})
	}
	sort.Slice(d.ByUnit, func(i, j int) bool { return d.ByUnit[i].UnitCode < d.ByUnit[j].UnitCode })
	d.Progress = progress(f.Measure, d.Totals)
	if d.Target > 0 {
		d.PercentOfTarget = float64((d.Progress*20000+d.Target)/(2*d.Target)) / 100
	}
	return d
}

// YearSummary is one year of the overview (GET /v1/quota).
//
// Certified and Subsidised count every certification (a corrected
// certificate issued while another of its assessment is in force is none)
// and entitlement of the year; Revoked and Cancelled, those of them
// revoked or cancelled since (certified less revoked is what stands).
type YearSummary struct {
	Year       int   `json:"year"`
	Target     int64 `json:"target"`
	TargetSet  bool  `json:"target_set"`
	Trained    int64 `json:"trained"`
	Certified  int64 `json:"certified"`
	Revoked    int64 `json:"revoked"`
	Subsidised int64 `json:"subsidised"`
	Cancelled  int64 `json:"cancelled"`
}

// Years returns the plan's years, 2025–2030.
func (m *Model) Years(f Filter) []YearSummary {
	out := make([]YearSummary, 0, LastYear-FirstYear+1)
	for y := FirstYear; y <= LastYear; y++ {
		d := m.Dashboard(y, f)
		out = append(out, YearSummary{Year: y, Target: d.Target, TargetSet: d.TargetSet, Trained: d.Totals.Trained,
			Certified: d.Totals.Certified, Revoked: d.Totals.Revoked, Subsidised: d.Totals.Subsidised, Cancelled: d.Totals.Cancelled})
	}
	return out
}

// Position returns the position of the last event applied.
func (m *Model) Position() events.Position {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.pos
}

// CellRow is one cell of the year (month, qualification, unit): the grain
// of the CSV export.
type CellRow struct {
	Month      int    `json:"month"`
	Occupation string `json:"occupation"`
	Level      string `json:"level"`
	UnitCode   string `json:"unit_code"`
	UnitName   string `json:"unit_name"`
	Counts
}

// Cells returns the year's cells in the view, ordered by month,
// qualification and unit; cells of units rolled up into one are merged.
func (m *Model) Cells(year int, f Filter) []CellRow {
	m.mu.RLock()
	defer m.mu.RUnlock()
	type key struct {
		month int
		q     rm.Q
		unit  string
	}
	acc := map[key]*Counts{}
	for k, c := range m.years[int32(year)] {
		unit := m.strs.Str(k.unit)
		if f.View != "recorded" {
			unit = m.units.Current(unit)
		}
		if !m.keeps(f, unit) {
			continue
		}
		kk := key{int(k.month), k.q, unit}
		if acc[kk] == nil {
			acc[kk] = &Counts{}
		}
		acc[kk].add(c)
	}
	keys := make([]key, 0, len(acc))
	for k := range acc {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.month != b.month {
			return a.month < b.month
		}
		if a.q != b.q {
			return a.q < b.q
		}
		return a.unit < b.unit
	})
	out := make([]CellRow, 0, len(keys))
	for _, k := range keys {
		c := acc[k]
		c.finish()
		qj := k.q.JSON()
		out = append(out, CellRow{Month: k.month, Occupation: qj.Occupation, Level: qj.Level, UnitCode: k.unit, UnitName: m.units.Name(k.unit), Counts: *c})
	}
	return out
}

// progress is what counts toward the target of c under measure: trained,
// or certified less revoked.
func progress(measure string, c Counts) int64 {
	if measure == MeasureCertified {
		return c.Certified - c.Revoked
	}
	return c.Trained
}
