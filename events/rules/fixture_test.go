package rules_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"google.golang.org/protobuf/proto"
)

// covered records the reason codes tests assert, so TestMain can check
// that every code of the catalogue is exercised.
var covered sync.Map

func cover(c subsidyv1.ReasonCode) { covered.Store(c, true) }

var (
	bdJ = refdata.Qualification{Occupation: subsidyv1.Occupation_OCCUPATION_BIG_DATA, Level: subsidyv1.Level_LEVEL_JUNIOR}
	bdI = refdata.Qualification{Occupation: subsidyv1.Occupation_OCCUPATION_BIG_DATA, Level: subsidyv1.Level_LEVEL_INTERMEDIATE}
	bdS = refdata.Qualification{Occupation: subsidyv1.Occupation_OCCUPATION_BIG_DATA, Level: subsidyv1.Level_LEVEL_SENIOR}
	ccJ = refdata.Qualification{Occupation: subsidyv1.Occupation_OCCUPATION_CLOUD_COMPUTING, Level: subsidyv1.Level_LEVEL_JUNIOR}
	ccS = refdata.Qualification{Occupation: subsidyv1.Occupation_OCCUPATION_CLOUD_COMPUTING, Level: subsidyv1.Level_LEVEL_SENIOR}
)

// dt parses yyyy-mm-dd into a proto Date.
func dt(s string) *subsidyv1.Date {
	d, err := refdata.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d.Proto()
}

// fx is a ledger with the reference data of testdata/setup.inc: training
// institutions ti-digital (big data, cloud computing; 渝中区) and ti-cloud
// (big data; 沙坪坝区), evaluation institution ev-cqpe with fees 800, 1200,
// 1600 CNY for big data and 900 CNY for cloud computing junior, and 2025
// budgets of 100,000 CNY for 渝中区 and 沙坪坝区.
type fx struct {
	t  testing.TB
	l  *ledger
	n  int
	id int // person counter
}

func newFx(t testing.TB, rs rules.RuleSet) *fx {
	t.Helper()
	f := &fx{t: t, l: newLedger(t, rs)}
	f.must(&subsidyv1.InstitutionRegistered{InstitutionId: "ti-digital", Name: "重庆数字技能培训学校", Kind: subsidyv1.InstitutionKind_INSTITUTION_KIND_TRAINING, UnitCode: "cq-yuzhong", BasicAccount: "acct-digital"})
	f.must(&subsidyv1.InstitutionApproved{ApprovalId: "ap-1", InstitutionId: "ti-digital", Occupation: bdJ.Occupation, ValidFrom: dt("2025-01-01"), ValidTo: dt("2030-12-31")})
	f.must(&subsidyv1.InstitutionApproved{ApprovalId: "ap-2", InstitutionId: "ti-digital", Occupation: ccJ.Occupation, ValidFrom: dt("2025-01-01"), ValidTo: dt("2030-12-31")})
	f.must(&subsidyv1.InstitutionRegistered{InstitutionId: "ti-cloud", Name: "山城云计算学院", Kind: subsidyv1.InstitutionKind_INSTITUTION_KIND_TRAINING, UnitCode: "cq-shapingba", BasicAccount: "acct-cloud"})
	f.must(&subsidyv1.InstitutionApproved{ApprovalId: "ap-3", InstitutionId: "ti-cloud", Occupation: bdJ.Occupation, ValidFrom: dt("2025-01-01"), ValidTo: dt("2030-12-31")})
	f.must(&subsidyv1.InstitutionRegistered{InstitutionId: "ev-cqpe", Name: "重庆专业技术评价中心", Kind: subsidyv1.InstitutionKind_INSTITUTION_KIND_EVALUATION, UnitCode: "cq-yuzhong"})
	f.must(&subsidyv1.InstitutionApproved{ApprovalId: "ap-4", InstitutionId: "ev-cqpe", Occupation: bdJ.Occupation, ValidFrom: dt("2025-01-01"), ValidTo: dt("2030-12-31")})
	f.must(&subsidyv1.InstitutionApproved{ApprovalId: "ap-5", InstitutionId: "ev-cqpe", Occupation: ccJ.Occupation, ValidFrom: dt("2025-01-01"), ValidTo: dt("2030-12-31")})
	for _, fee := range []struct {
		id  string
		q   refdata.Qualification
		fen int64
	}{{"fee-bd-j", bdJ, 80000}, {"fee-bd-i", bdI, 120000}, {"fee-bd-s", bdS, 160000}, {"fee-cc-j", ccJ, 90000}} {
		f.must(&subsidyv1.FeeSchedulePublished{FeeScheduleId: fee.id, EvaluationInstitutionId: "ev-cqpe", Qualification: fee.q.Proto(), FeeFen: fee.fen, EffectiveFrom: dt("2025-01-01")})
	}
	f.must(&subsidyv1.BudgetAllocated{AllocationId: "al-yz", Year: 2025, UnitCode: "cq-yuzhong", AmountFen: 10000000})
	f.must(&subsidyv1.BudgetAllocated{AllocationId: "al-spb", Year: 2025, UnitCode: "cq-shapingba", AmountFen: 10000000})
	return f
}

func (f *fx) fact(m proto.Message) rules.Fact {
	f.n++
	id := fmt.Sprintf("msg-%d", f.n)
	return rules.Fact{EventID: events.DeriveID("fact", f.t.Name(), id), MessageID: id, Payload: m}
}

func (f *fx) decide(m proto.Message) (rules.Decision, *rules.Rejection) {
	f.t.Helper()
	return f.l.decide(f.fact(m))
}

func (f *fx) must(m proto.Message) rules.Decision {
	f.t.Helper()
	d, rej := f.decide(m)
	if rej != nil {
		f.t.Fatalf("Decide(%T %v) = %v; want accepted", m, m, rej)
	}
	return d
}

// reject decides m and checks it is rejected with code.
func (f *fx) reject(m proto.Message, code subsidyv1.ReasonCode) {
	f.t.Helper()
	cover(code)
	d, rej := f.decide(m)
	switch {
	case rej == nil:
		f.t.Errorf("Decide(%T) accepted with %s; want reject %s", m, types(d.Derived()), code)
	case rej.Reason != code:
		f.t.Errorf("Decide(%T) = %s (%s); want %s", m, rej.Reason, rej.Detail, code)
	case rej.Rule != rules.RuleOf(code):
		f.t.Errorf("rejection %s says rule %d", code, rej.Rule)
	}
}

// derived decides m, which must be accepted, and returns the derived events.
func (f *fx) derived(m proto.Message) []rules.Event {
	f.t.Helper()
	return f.must(m).Derived()
}

// person registers a new trainee (unit 渝中区, associate degree, enterprise
// employee) with no eligibility evidence and returns the person key.
func (f *fx) person(tweak ...func(*subsidyv1.TraineeRegistered)) string {
	f.id++
	key := fmt.Sprintf("%064x", f.id)
	m := &subsidyv1.TraineeRegistered{PersonKey: key, UnitCode: "cq-yuzhong", Education: subsidyv1.Education_EDUCATION_ASSOCIATE, EnterpriseEmployee: true}
	for _, t := range tweak {
		t(m)
	}
	f.must(m)
	return key
}

// employee registers a trainee insured since 2020-01-01.
func (f *fx) employee() string {
	k := f.person()
	f.must(&subsidyv1.EligibilityEvidenceRecorded{EvidenceId: "ev-" + k[56:], PersonKey: k, Category: subsidyv1.EligibilityCategory_ELIGIBILITY_CATEGORY_ENTERPRISE_EMPLOYEE,
		Source: "社保", SnapshotAt: tsOf("2025-01-01"), Confirmed: true, InsuredFrom: dt("2020-01-01")})
	return k
}

// insured is social-insurance evidence of k (id), insured from from,
// snapshot taken on snapshot.
func insured(k, id, from, snapshot string) *subsidyv1.EligibilityEvidenceRecorded {
	return &subsidyv1.EligibilityEvidenceRecorded{EvidenceId: id, PersonKey: k, Category: subsidyv1.EligibilityCategory_ELIGIBILITY_CATEGORY_ENTERPRISE_EMPLOYEE,
		Source: "社保", SnapshotAt: tsOf(snapshot), Confirmed: true, InsuredFrom: dt(from)}
}

// trained enrols k at inst for q on 2025-03-01 and completes on 2025-05-01;
// it returns the enrolment id.
func (f *fx) trained(k, inst string, q refdata.Qualification) string {
	id := fmt.Sprintf("enr-%s-%s-%s", k[56:], inst, q)
	f.must(&subsidyv1.Enrolled{EnrolmentId: id, PersonKey: k, TrainingInstitutionId: inst, Qualification: q.Proto(), EnrolledOn: dt("2025-03-01")})
	f.must(&subsidyv1.TrainingCompleted{EnrolmentId: id, PersonKey: k, TrainingInstitutionId: inst, Qualification: q.Proto(), CompletedOn: dt("2025-05-01")})
	return id
}

func (f *fx) assessment(k string, q refdata.Qualification, attempt uint32, theory, practical int32, on string) *subsidyv1.AssessmentRecorded {
	return &subsidyv1.AssessmentRecorded{AssessmentId: fmt.Sprintf("as-%s-%s-%d", k[56:], q, attempt), PersonKey: k, EvaluationInstitutionId: "ev-cqpe",
		Qualification: q.Proto(), Attempt: attempt, TheoryScore: theory, PracticalScore: practical, AssessedOn: dt(on)}
}

func (f *fx) certificate(a *subsidyv1.AssessmentRecorded, on string) *subsidyv1.CertificateIssued {
	return &subsidyv1.CertificateIssued{CertificateId: "cert-" + a.AssessmentId, PersonKey: a.PersonKey, EvaluationInstitutionId: a.EvaluationInstitutionId,
		Qualification: a.Qualification, AssessmentId: a.AssessmentId, IssuedOn: dt(on)}
}

// certify passes k's first attempt at q on day on and issues the certificate
// ten days later (same month); it returns the certificate's derived events.
func (f *fx) certify(k string, q refdata.Qualification, on string) []rules.Event {
	f.t.Helper()
	a := f.assessment(k, q, 1, 80, 80, on)
	f.must(a)
	d, _ := refdata.ParseDate(on)
	return f.derived(f.certificate(a, d.AddDays(10).String()))
}

// entitled makes a new employee trained at inst (with an advance if
// advance) and certified for q assessed on; it returns the entitlement id.
func (f *fx) entitled(inst string, q refdata.Qualification, advance bool, on string) (string, string) {
	f.t.Helper()
	k := f.employee()
	f.trained(k, inst, q)
	if advance {
		f.must(&subsidyv1.AdvancePaymentRecorded{AdvanceId: "adv-" + k[56:] + q.String(), TrainingInstitutionId: inst, PersonKey: k, Qualification: q.Proto(), AmountFen: 1, PaidOn: dt("2025-04-01")})
	}
	evs := f.certify(k, q, on)
	if len(evs) == 0 || evs[0].Type() != "subsidy.v1.SubsidyEntitled" {
		f.t.Fatalf("certify: %s", types(evs))
	}
	return rules.EntitlementID(k, q), k
}

// noticed confirms, approves on 2025-07-01 (notice to 07-07) and closes the
// notice on 2025-07-08.
func (f *fx) noticed(e string) {
	f.t.Helper()
	f.must(&subsidyv1.EntitlementConfirmed{EntitlementId: e, OfficialId: "maker", ConfirmedOn: dt("2025-06-30")})
	f.must(&subsidyv1.EntitlementApproved{EntitlementId: e, OfficialId: "checker", ApprovedOn: dt("2025-07-01")})
	f.must(&subsidyv1.NoticeClosed{EntitlementId: e, ClosedOn: dt("2025-07-08")})
}

// paid pays attempt 1 of e in full into account.
func (f *fx) paid(e string, account string) []rules.Event {
	f.t.Helper()
	evs := f.derived(&subsidyv1.PaymentRequested{EntitlementId: e, OfficialId: "maker", RequestedOn: dt("2025-07-09")})
	o := evs[0].Payload.(*subsidyv1.PaymentOrdered)
	return f.derived(&subsidyv1.PaymentSettled{PaymentOrderId: o.PaymentOrderId, EntitlementId: e, AmountFen: o.NetFen, PaidToAccount: account, SettledOn: dt("2025-07-10")})
}

// firstAttempt registers a new trainee trained at ti-cloud for big data
// junior and decides their first attempt, passed or failed (rule 15's
// window); it returns the derived events.
func (f *fx) firstAttempt(pass bool) []rules.Event {
	f.t.Helper()
	k := f.employee()
	f.trained(k, "ti-cloud", bdJ)
	score := int32(50)
	if pass {
		score = 60
	}
	return f.derived(f.assessment(k, bdJ, 1, score, 60, "2025-06-20"))
}

// want checks the derived events' types and reasons ("Type" or
// "Type:REASON_CODE_X" for events with a reason).
func want(t *testing.T, evs []rules.Event, specs ...string) {
	t.Helper()
	var got []string
	for _, e := range evs {
		s := string(e.Payload.ProtoReflect().Descriptor().Name())
		if r, ok := reasonOf(e.Payload); ok {
			s += ":" + r.String()
			cover(r)
		}
		got = append(got, s)
	}
	if fmt.Sprint(got) != fmt.Sprint(specs) {
		t.Errorf("derived %v; want %v", got, specs)
	}
}

func reasonOf(m proto.Message) (subsidyv1.ReasonCode, bool) {
	switch m := m.(type) {
	case *subsidyv1.SubsidyDenied:
		return m.Reason, true
	case *subsidyv1.EntitlementHeld:
		return m.Reason, true
	case *subsidyv1.EntitlementReleased:
		return m.Reason, true
	case *subsidyv1.ViolationFlagged:
		return m.Reason, true
	case *subsidyv1.FlagCleared:
		return m.Reason, true
	case *subsidyv1.SubsidyDenialRevised:
		return m.Reason, true
	}
	return 0, false
}
