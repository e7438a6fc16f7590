package simulate

import (
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events/facts"
	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

var (
	surnames = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史黎贺顾毛郝龚邵万钱覃")
	given    = []rune("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建文斌宇浩凯健俊帆帅旭宁欣然思雨晨阳博涵轩")
	regions  = []string{"500101", "500102", "500103", "500104", "500105", "500106", "500107", "500108", "500109", "500110", "500112", "500113", "500115", "500116", "500117", "500118", "500151", "500152", "500153", "500154", "500155", "500156", "500229", "500230", "500231", "500233", "500235", "500236", "500237", "500238", "500240", "500241", "500242", "500243"}
)

// Profile is what the simulator decided about one trainee, so that tests can
// predict what the ledger must show.
type Profile struct {
	Index     int
	PersonKey string
	// IDNumber and Name are the plain personal data the simulated
	// enrolment system holds; it publishes only the person key and masked
	// forms. Tests use them to check that neither ever leaks.
	IDNumber, Name string
	Unit           string
	Qual           refdata.Qualification
	Training       string
	Evaluation     string
	// Category: "student", "employee", "ineligible" (trains, no subsidy),
	// "untrainable" (enrolment refused: rule 2).
	Category   string
	Advance    bool
	FirstPass  bool
	Resit      bool
	ResitPass  bool
	Certified  bool
	Subsidised bool // an entitlement is expected
	Amount     int64
	Paid       bool
	// Revoked: the certificate is revoked after payment (planted).
	Revoked bool
	// SharedAccount is the shared account a direct payee was paid into
	// (planted), "" otherwise.
	SharedAccount string
	// Cohort: one of the certificate spike's extra trainees (planted).
	Cohort bool
	// LateCompletion: the training's completion is published after the
	// certificate (dated as ever, before the assessment), as when the
	// enrolment system's feed lags the evaluation institution's (planted):
	// each assessment is flagged ASSESSMENT_WITHOUT_COMPLETION, the
	// certificate denied for rule 3, and the completion then clears the
	// flags and decides the certificate again. Assessments counts them.
	LateCompletion bool
	Assessments    int
	CompletedOn    refdata.Date
	AssessedOn     refdata.Date // of the certified attempt
	FirstAttempt   refdata.Date
	CertifiedOn    refdata.Date // the certificate's issue date
	CertificateID  string
}

// idNumber returns a valid GB 11643 ID number for trainee i.
func idNumber(r *rand.Rand, i int) string {
	born := time.Date(1980+r.IntN(24), time.January, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(365))
	first17 := fmt.Sprintf("%s%s%03d", regions[r.IntN(len(regions))], born.Format("20060102"), i%1000)
	return first17 + string(person.CheckDigit(first17))
}

func name(r *rand.Rand) string {
	n := []rune{surnames[r.IntN(len(surnames))], given[r.IntN(len(given))]}
	if r.IntN(3) > 0 {
		n = append(n, given[r.IntN(len(given))])
	}
	return string(n)
}

func (p *Programme) kind(m proto.Message, source string) facts.Kind {
	for _, k := range facts.ByName(m.ProtoReflect().Descriptor().FullName()) {
		if k.Source == source {
			return k
		}
	}
	panic("simulate: no fact kind for " + string(m.ProtoReflect().Descriptor().FullName()) + " from " + source)
}

// Trainee returns the facts of trainee i (0 ≤ i < Trainees()), in the
// order they must be published, and the profile behind them. Trainees from
// Config.Trainees on are the certificate spike's cohort: trained for the
// spike's occupation, assessed at its evaluation institution, passing at
// the first attempt and certified in its month.
func (p *Programme) Trainee(i int) ([]Fact, Profile) {
	r := rand.New(rand.NewPCG(p.cfg.Seed, uint64(i)+1))
	y := p.cfg.Year
	id := idNumber(r, i)
	pk, err := p.cfg.Keyer.Key(id)
	if err != nil {
		panic("simulate: generated an invalid ID: " + err.Error())
	}
	sp := p.spike
	if i < p.cfg.Trainees {
		sp = nil
	}
	pr := Profile{Index: i, PersonKey: pk, Cohort: sp != nil}
	var out []Fact
	seq := 0
	add := func(source string, m proto.Message) {
		seq++
		out = append(out, Fact{Kind: p.kind(m, source), MsgID: fmt.Sprintf("s%d-t%d-%d", p.cfg.Seed, i, seq), Msg: m, Lane: i})
	}
	unit := p.units[r.IntN(len(p.units))]
	pr.Unit = unit.Code
	tr := p.training[r.IntN(len(p.training))]
	occ := tr.occupations[r.IntN(len(tr.occupations))]
	var ev inst
	evIndex := 0
	for k := range p.eval {
		j := (i + k) % len(p.eval)
		if contains(p.eval[j].occupations, occ) {
			ev, evIndex = p.eval[j], j
			break
		}
	}
	if sp != nil {
		tr, occ = sp.trainers[r.IntN(len(sp.trainers))], sp.Occupation
		ev, evIndex = p.eval[sp.evalIndex], sp.evalIndex
	}
	lvl := subsidyv1.Level_LEVEL_JUNIOR
	switch x := r.IntN(100); {
	case x >= 85:
		lvl = subsidyv1.Level_LEVEL_SENIOR
	case x >= 50:
		lvl = subsidyv1.Level_LEVEL_INTERMEDIATE
	}
	q := &subsidyv1.Qualification{Occupation: occ, Level: lvl}
	pr.Qual = refdata.QualificationOf(q)
	pr.Training, pr.Evaluation = tr.id, ev.id

	full := name(r)
	pr.IDNumber, pr.Name = id, full
	reg := &subsidyv1.TraineeRegistered{PersonKey: pk, MaskedName: person.MaskName(full), MaskedId: person.MaskID(id), UnitCode: unit.Code}
	x := r.IntN(100)
	if sp != nil {
		x %= 90 // the cohort claims subsidies: students and employees only
	}
	switch {
	case x < 45:
		pr.Category = "student"
		reg.Education = subsidyv1.Education_EDUCATION_BACHELOR
		if r.IntN(3) == 0 {
			reg.Education = subsidyv1.Education_EDUCATION_ASSOCIATE
		}
		reg.GraduationYear = y
	case x < 90:
		pr.Category = "employee"
		reg.Education = subsidyv1.Education_EDUCATION_ASSOCIATE + subsidyv1.Education(r.IntN(3))
		reg.EnterpriseEmployee = true
	case x < 98:
		pr.Category = "ineligible" // graduated years ago, not employed: trains, no subsidy
		reg.Education = subsidyv1.Education_EDUCATION_BACHELOR
		reg.GraduationYear = y - 3
	default:
		pr.Category = "untrainable"
		reg.Education = subsidyv1.Education_EDUCATION_BELOW_ASSOCIATE
	}
	add(facts.SourceEnrolment, reg)

	// The cohort's dates are counted back from the certificate, in the
	// spike's month; the others' run forward from the enrolment.
	var enrolled, completed, first refdata.Date
	if sp != nil {
		first = refdata.D(int(y), sp.Month, 1+r.IntN(28)).AddDays(-7)
		completed = first.AddDays(-7 - r.IntN(21))
		enrolled = completed.AddDays(-30 - r.IntN(30))
	} else {
		enrolled = refdata.D(int(y), time.Month(1+r.IntN(8)), 1+r.IntN(28))
	}
	month := enrolled.Month()
	evidence := &subsidyv1.EligibilityEvidenceRecorded{EvidenceId: fmt.Sprintf("ev-%d-%d", p.cfg.Seed, i), PersonKey: pk}
	switch pr.Category {
	case "student":
		evidence.Category = subsidyv1.EligibilityCategory_ELIGIBILITY_CATEGORY_GRADUATING_STUDENT
		evidence.Source = "学信网"
		evidence.Confirmed = true
		evidence.GraduationYear = y
	case "employee":
		evidence.Category = subsidyv1.EligibilityCategory_ELIGIBILITY_CATEGORY_ENTERPRISE_EMPLOYEE
		evidence.Source = "社保"
		evidence.Confirmed = true
		evidence.InsuredFrom = refdata.D(int(y)-1-r.IntN(5), time.March, 1).Proto()
	case "ineligible":
		evidence.Category = subsidyv1.EligibilityCategory_ELIGIBILITY_CATEGORY_ENTERPRISE_EMPLOYEE
		evidence.Source = "社保"
		evidence.Confirmed = false
	}
	snap := time.Date(int(y), month, 1, 9, 0, 0, 0, time.UTC)
	evidence.SnapshotAt = timestamp(snap)
	if pr.Category != "untrainable" {
		add(facts.SourceEnrolment, evidence)
	}
	enrolmentID := fmt.Sprintf("enr-%d-%d", p.cfg.Seed, i)
	add(facts.SourceEnrolment, &subsidyv1.Enrolled{EnrolmentId: enrolmentID, PersonKey: pk, TrainingInstitutionId: tr.id, Qualification: q, EnrolledOn: enrolled.Proto(), UnitCode: unit.Code})
	if pr.Category == "untrainable" {
		return out, pr
	}
	amount := fee(evIndex, lvl)
	if r.IntN(100) < 40 {
		pr.Advance = true
		add(facts.SourceEnrolment, &subsidyv1.AdvancePaymentRecorded{AdvanceId: fmt.Sprintf("adv-%d-%d", p.cfg.Seed, i), TrainingInstitutionId: tr.id, PersonKey: pk,
			Qualification: q, AmountFen: amount, PaidOn: enrolled.AddDays(3).Proto()})
	}
	if sp == nil {
		completed = enrolled.AddDays(30 + r.IntN(30))
	}
	var late *subsidyv1.TrainingCompleted // published after the certificate (planted)
	if sp != nil || r.IntN(100) < 95 {
		pr.CompletedOn = completed
		m := &subsidyv1.TrainingCompleted{EnrolmentId: enrolmentID, PersonKey: pk, TrainingInstitutionId: tr.id, Qualification: q, CompletedOn: completed.Proto()}
		if p.cfg.Violations && sp == nil && i%50 == 11 {
			late, pr.LateCompletion = m, true
		} else {
			add(facts.SourceEnrolment, m)
		}
	} else {
		return out, pr // dropped out
	}
	assess := func(attempt uint32, on refdata.Date, pass bool) string {
		theory, practical := int32(60+r.IntN(41)), int32(60+r.IntN(41))
		if !pass {
			if r.IntN(2) == 0 {
				theory = int32(20 + r.IntN(40))
			} else {
				practical = int32(20 + r.IntN(40))
			}
		}
		aid := fmt.Sprintf("asm-%d-%d-%d", p.cfg.Seed, i, attempt)
		pr.Assessments++
		add(facts.SourceEvaluation, &subsidyv1.AssessmentRecorded{AssessmentId: aid, PersonKey: pk, EvaluationInstitutionId: ev.id, TrainingInstitutionId: tr.id,
			Qualification: q, Attempt: attempt, TheoryScore: theory, PracticalScore: practical, AssessedOn: on.Proto()})
		return aid
	}
	if sp == nil {
		first = completed.AddDays(7 + r.IntN(21))
	}
	pr.FirstAttempt = first
	pr.FirstPass = sp != nil || r.IntN(100) < 78
	certOn, aid := refdata.Date(0), ""
	if pr.FirstPass {
		aid = assess(1, first, true)
		pr.AssessedOn, certOn = first, first.AddDays(7)
	} else {
		assess(1, first, false)
		if r.IntN(100) < 70 {
			pr.Resit = true
			second := first.AddDays(30)
			pr.ResitPass = r.IntN(100) < 80
			aid = assess(2, second, pr.ResitPass)
			if pr.ResitPass {
				pr.AssessedOn, certOn = second, second.AddDays(7)
			}
		}
	}
	if certOn == 0 {
		if late != nil {
			add(facts.SourceEnrolment, late)
		}
		return out, pr
	}
	pr.Certified, pr.CertifiedOn = true, certOn
	pr.CertificateID = fmt.Sprintf("cert-%d-%d", p.cfg.Seed, i)
	add(facts.SourceEvaluation, &subsidyv1.CertificateIssued{CertificateId: pr.CertificateID, PersonKey: pk, EvaluationInstitutionId: ev.id, Qualification: q, AssessmentId: aid, IssuedOn: certOn.Proto()})
	if late != nil {
		add(facts.SourceEnrolment, late)
	}
	pr.Subsidised = pr.FirstPass && (pr.Category == "student" || pr.Category == "employee") && pr.AssessedOn.Year() == int(y)
	if !pr.Subsidised {
		return out, pr
	}
	pr.Amount = amount
	if !p.cfg.Officials {
		return out, pr
	}
	ent := rules.EntitlementID(pk, pr.Qual)
	official := func(n int) string { return fmt.Sprintf("%s-official-%d", unit.Code, n) }
	confirmed := certOn.AddDays(3)
	add(facts.SourceDistrict, &subsidyv1.EntitlementConfirmed{EntitlementId: ent, OfficialId: official(1), ConfirmedOn: confirmed.Proto()})
	approved := confirmed.AddDays(1)
	add(facts.SourceDistrict, &subsidyv1.EntitlementApproved{EntitlementId: ent, OfficialId: official(2), ApprovedOn: approved.Proto()})
	_, end := p.rs.NoticeWindow(approved)
	closed := end.AddDays(1)
	add(facts.SourceDistrict, &subsidyv1.NoticeClosed{EntitlementId: ent, ClosedOn: closed.Proto()})
	add(facts.SourceDistrict, &subsidyv1.PaymentRequested{EntitlementId: ent, OfficialId: official(1), RequestedOn: closed.Proto()})
	account := tr.account
	if !pr.Advance {
		account = "trainee-account-token-" + pk[:16]
		if p.cfg.Violations && i%100 >= 20 && i%100 < 30 {
			account = fmt.Sprintf("shared-account-token-%d-%d", p.cfg.Seed, i/100)
			pr.SharedAccount = account
		}
	}
	pr.Paid = true
	add(facts.SourcePayment, &subsidyv1.PaymentSettled{PaymentOrderId: rules.PaymentOrderID(ent, 1), EntitlementId: ent, AmountFen: amount,
		PaidToAccount: account, BankReference: fmt.Sprintf("bank-%d-%d", p.cfg.Seed, i), SettledOn: closed.AddDays(5).Proto()})
	if p.cfg.Violations && i%50 == 7 {
		pr.Revoked = true
		add(facts.SourceEvaluation, &subsidyv1.CertificateRevoked{CertificateId: pr.CertificateID, PersonKey: pk, Qualification: q,
			Reason: "考试舞弊（抽查发现）", RevokedOn: closed.AddDays(25).Proto()})
	}
	return out, pr
}

func contains(list []subsidyv1.Occupation, o subsidyv1.Occupation) bool {
	for _, x := range list {
		if x == o {
			return true
		}
	}
	return false
}
