package fold

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/projections"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// Rules decides facts with the rules (rules.DefaultRuleSet) on a World of
// its own and keeps the events as a store would give them to a projection:
// positions from 1, streams, revisions, commit times a second apart.
type Rules struct {
	T      testing.TB
	W      *rules.World
	Events []*projections.Event
}

// NewRules returns a Rules with an empty World.
func NewRules(t testing.TB) *Rules {
	return &Rules{T: t, W: rules.NewWorld(rules.DefaultRuleSet())}
}

// Decide decides m, which must be accepted, keeps the fact's event and its
// derived events, and returns the derived ones.
func (r *Rules) Decide(m proto.Message) []rules.Event {
	r.T.Helper()
	created := time.Date(2025, 7, 1, 1, 0, 0, 0, time.UTC)
	n := len(r.Events) + 1
	d, rej := r.W.Decide(rules.Fact{EventID: events.DeriveID("fact", r.T.Name(), fmt.Sprint(n)), MessageID: fmt.Sprint(n), Payload: m})
	if rej != nil {
		r.T.Fatalf("Decide(%T) = %v", m, rej)
	}
	for _, e := range d.Events {
		var rev uint64
		if v, ok := r.W.StreamRevision(d.Stream); ok {
			rev = v + 1
		}
		if err := r.W.Apply(d.Stream, rev, e); err != nil {
			r.T.Fatal(err)
		}
		r.Events = append(r.Events, &projections.Event{Position: events.Position(len(r.Events) + 1), Stream: d.Stream, Revision: rev, ID: e.ID,
			Type: e.Type(), Created: created.Add(time.Duration(len(r.Events)) * time.Second), Payload: e.Payload})
	}
	return d.Derived()
}

// Reference records a training institution ti-digital and an evaluation
// institution ev-cqpe (渝中区) approved for big data, a junior big-data fee
// of 800 CNY and a 2025 budget of 100,000 CNY for 渝中区; it returns the
// qualification, big data junior.
func (r *Rules) Reference() refdata.Qualification {
	r.T.Helper()
	q := refdata.Qualification{Occupation: pb.Occupation_OCCUPATION_BIG_DATA, Level: pb.Level_LEVEL_JUNIOR}
	r.Decide(&pb.InstitutionRegistered{InstitutionId: "ti-digital", Name: "重庆数字技能培训学校", Kind: pb.InstitutionKind_INSTITUTION_KIND_TRAINING, UnitCode: "cq-yuzhong", BasicAccount: "acct-digital"})
	r.Decide(&pb.InstitutionApproved{ApprovalId: "ap-1", InstitutionId: "ti-digital", Occupation: q.Occupation, ValidFrom: Date("2025-01-01"), ValidTo: Date("2030-12-31")})
	r.Decide(&pb.InstitutionRegistered{InstitutionId: "ev-cqpe", Name: "重庆专业技术评价中心", Kind: pb.InstitutionKind_INSTITUTION_KIND_EVALUATION, UnitCode: "cq-yuzhong"})
	r.Decide(&pb.InstitutionApproved{ApprovalId: "ap-2", InstitutionId: "ev-cqpe", Occupation: q.Occupation, ValidFrom: Date("2025-01-01"), ValidTo: Date("2030-12-31")})
	r.Decide(&pb.FeeSchedulePublished{FeeScheduleId: "fee-bd-j", EvaluationInstitutionId: "ev-cqpe", Qualification: q.Proto(), FeeFen: 80000, EffectiveFrom: Date("2025-01-01")})
	r.Decide(&pb.BudgetAllocated{AllocationId: "al-yz", Year: 2025, UnitCode: "cq-yuzhong", AmountFen: 10000000})
	return q
}

// Assessed decides a trainee k of 渝中区 (an enterprise employee, insured
// since 2020) enrolled at ti-digital for q on 2025-03-01 (enrolment
// "enr-1"), trained by 2025-05-01, the fee advanced by ti-digital on
// 2025-04-01 if advance, and passed on a first attempt at ev-cqpe on
// 2025-06-01 (assessment "as-1"): a certificate on "as-1" is next. Give
// Reference first.
func (r *Rules) Assessed(k string, q refdata.Qualification, advance bool) {
	r.T.Helper()
	r.Decide(&pb.TraineeRegistered{PersonKey: k, UnitCode: "cq-yuzhong", Education: pb.Education_EDUCATION_ASSOCIATE, EnterpriseEmployee: true, MaskedName: "张*", MaskedId: "5001**********123X"})
	r.Decide(&pb.EligibilityEvidenceRecorded{EvidenceId: "ev-" + k[:8], PersonKey: k, Category: pb.EligibilityCategory_ELIGIBILITY_CATEGORY_ENTERPRISE_EMPLOYEE,
		Source: "社保", SnapshotAt: timestamppb.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)), Confirmed: true, InsuredFrom: Date("2020-01-01")})
	r.Decide(&pb.Enrolled{EnrolmentId: "enr-1", PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: q.Proto(), EnrolledOn: Date("2025-03-01"), UnitCode: "cq-yuzhong"})
	r.Decide(&pb.TrainingCompleted{EnrolmentId: "enr-1", PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: q.Proto(), CompletedOn: Date("2025-05-01")})
	if advance {
		r.Decide(&pb.AdvancePaymentRecorded{AdvanceId: "adv-1", TrainingInstitutionId: "ti-digital", PersonKey: k, Qualification: q.Proto(), AmountFen: 80000, PaidOn: Date("2025-04-01")})
	}
	r.Decide(&pb.AssessmentRecorded{AssessmentId: "as-1", PersonKey: k, EvaluationInstitutionId: "ev-cqpe", Qualification: q.Proto(), Attempt: 1, TheoryScore: 80, PracticalScore: 80, AssessedOn: Date("2025-06-01")})
}

// LateCompletion is a history the rules decide (rules.DefaultRuleSet,
// 2026.4): two trainees at ti-digital are assessed before their training's
// completion was reported, which flags each assessment
// ASSESSMENT_WITHOUT_COMPLETION, and certified (denied for rule 3). The
// second's completion then comes dated after the assessment: its flag
// stays open. The first's comes last, dated before the assessment: it
// derives the entitlement and the FlagCleared of the first flag, the
// history's last event.
type LateCompletion struct {
	Events              []*projections.Event // as stored, positions from 1
	Cleared, Open       string               // the flag ids: the first trainee's (cleared), the second's (open)
	ClearedKey, OpenKey string               // the trainees' person keys
	FlaggedFirst        *pb.ViolationFlagged // the cleared flag
	Clearing            *pb.FlagCleared      // and its clearing,
	ClearingAt          *projections.Event   // stored last
}

// NewLateCompletion decides the history.
func NewLateCompletion(t testing.TB) *LateCompletion {
	t.Helper()
	r := NewRules(t)
	h := &LateCompletion{}
	decide := r.Decide
	q := r.Reference()
	// flagged registers trainee n, enrols, assesses and certifies them; it
	// returns the person key, the flag and the completion to report.
	flagged := func(n int, completedOn string) (string, *pb.ViolationFlagged, *pb.TrainingCompleted) {
		k := fmt.Sprintf("%064x", n)
		enr, as := fmt.Sprintf("enr-%d", n), fmt.Sprintf("as-%d", n)
		decide(&pb.TraineeRegistered{PersonKey: k, UnitCode: "cq-yuzhong", Education: pb.Education_EDUCATION_ASSOCIATE, EnterpriseEmployee: true})
		decide(&pb.EligibilityEvidenceRecorded{EvidenceId: fmt.Sprintf("ev-%d", n), PersonKey: k, Category: pb.EligibilityCategory_ELIGIBILITY_CATEGORY_ENTERPRISE_EMPLOYEE,
			Source: "社保", SnapshotAt: timestamppb.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)), Confirmed: true, InsuredFrom: Date("2020-01-01")})
		decide(&pb.Enrolled{EnrolmentId: enr, PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: q.Proto(), EnrolledOn: Date("2025-03-01")})
		d := decide(&pb.AssessmentRecorded{AssessmentId: as, PersonKey: k, EvaluationInstitutionId: "ev-cqpe", Qualification: q.Proto(), Attempt: 1,
			TheoryScore: 80, PracticalScore: 80, AssessedOn: Date("2025-06-20")})
		if len(d) != 1 || d[0].Type() != "subsidy.v1.ViolationFlagged" {
			t.Fatalf("assessment derived %v; want its flag", d)
		}
		if d := decide(&pb.CertificateIssued{CertificateId: "cert-" + as, PersonKey: k, EvaluationInstitutionId: "ev-cqpe", Qualification: q.Proto(),
			AssessmentId: as, IssuedOn: Date("2025-06-30")}); len(d) != 1 || d[0].Type() != "subsidy.v1.SubsidyDenied" {
			t.Fatalf("certificate derived %v; want the denial", d)
		}
		return k, d[0].Payload.(*pb.ViolationFlagged), &pb.TrainingCompleted{EnrolmentId: enr, PersonKey: k, TrainingInstitutionId: "ti-digital",
			Qualification: q.Proto(), CompletedOn: Date(completedOn)}
	}
	var first, second *pb.ViolationFlagged
	var done *pb.TrainingCompleted
	h.ClearedKey, first, done = flagged(1, "2025-06-15")
	var late *pb.TrainingCompleted
	h.OpenKey, second, late = flagged(2, "2025-06-25")
	if d := decide(late); len(d) != 0 {
		t.Fatalf("a completion after the assessment derived %v; want nothing", d)
	}
	d := decide(done)
	if len(d) != 2 || d[1].Type() != "subsidy.v1.FlagCleared" {
		t.Fatalf("the completion before the assessment derived %v; want the entitlement and the clearing", d)
	}
	h.Events = r.Events
	h.Cleared, h.Open, h.FlaggedFirst = first.FlagId, second.FlagId, first
	h.Clearing, h.ClearingAt = d[1].Payload.(*pb.FlagCleared), h.Events[len(h.Events)-1]
	if h.Clearing.FlagId != h.Cleared {
		t.Fatalf("cleared %s; want %s", h.Clearing.FlagId, h.Cleared)
	}
	return h
}

// ApplyAll applies to m, in order, the events of the types it wants (as
// a build and the Runner give it only those).
func ApplyAll(t testing.TB, m projections.Projection, evs []*projections.Event) {
	t.Helper()
	for _, ev := range evs {
		if ts := m.Types(); ts != nil && !slices.Contains(ts, ev.Type) {
			continue
		}
		if err := m.Apply(ev); err != nil {
			t.Fatalf("Apply(%s at %d) = %v", ev.Type, ev.Position, err)
		}
	}
}
