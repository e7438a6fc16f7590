package quota_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/projections/internal/deepdiff"
	"github.com/cqhrss/subsidyledger/projections/internal/fold"
	"github.com/cqhrss/subsidyledger/projections/quota"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// trainee is a person of these tests, training for q.
type trainee struct {
	k string
	q refdata.Qualification
}

func newTrainee(n int) trainee {
	return trainee{fmt.Sprintf("%064x", n), refdata.Qualification{Occupation: pb.Occupation_OCCUPATION_BIG_DATA, Level: pb.Level_LEVEL_JUNIOR}}
}

func (p trainee) registered(unit string) *pb.TraineeRegistered {
	return &pb.TraineeRegistered{PersonKey: p.k, UnitCode: unit, Education: pb.Education_EDUCATION_ASSOCIATE}
}

func (p trainee) enrol(id, inst, on, unit string) *pb.Enrolled {
	return &pb.Enrolled{EnrolmentId: id, PersonKey: p.k, TrainingInstitutionId: inst, Qualification: p.q.Proto(), EnrolledOn: fold.Date(on), UnitCode: unit}
}

func (p trainee) complete(id, inst, on string) *pb.TrainingCompleted {
	return &pb.TrainingCompleted{EnrolmentId: id, PersonKey: p.k, TrainingInstitutionId: inst, Qualification: p.q.Proto(), CompletedOn: fold.Date(on)}
}

func (p trainee) assessed(id, inst, on string, attempt uint32, theory int32) *pb.AssessmentRecorded {
	return &pb.AssessmentRecorded{AssessmentId: id, PersonKey: p.k, EvaluationInstitutionId: "ev", TrainingInstitutionId: inst, Qualification: p.q.Proto(),
		Attempt: attempt, TheoryScore: theory, PracticalScore: 80, AssessedOn: fold.Date(on)}
}

// TestCompletionCountsInItsEnrolmentsUnit: a person enrolled at two
// institutions in two units (rule 16 flags it, does not reject it); the
// completion of the first enrolment (in cq-yuzhong) counts for cq-yuzhong,
// not for the unit of the later one (found by review).
func TestCompletionCountsInItsEnrolmentsUnit(t *testing.T) {
	m := quota.New()
	p := newTrainee(1)
	(&fold.Log{T: t, P: m}).Apply(p.registered("cq-yuzhong"),
		p.enrol("e1", "ti-a", "2025-03-01", "cq-yuzhong"), p.enrol("e2", "ti-b", "2025-04-01", "cq-wanzhou"),
		p.complete("e1", "ti-a", "2025-05-01"))
	d := m.Dashboard(2025, quota.Filter{View: "recorded"})
	for _, r := range d.ByUnit {
		t.Logf("%s: enrolled %d trained %d", r.UnitCode, r.Enrolled, r.Trained)
		if r.UnitCode == "cq-yuzhong" && r.Trained != 1 {
			t.Errorf("cq-yuzhong trained = %d; want 1 (completion of enrolment e1, enrolled in cq-yuzhong)", r.Trained)
		}
		if r.UnitCode == "cq-wanzhou" && r.Trained != 0 {
			t.Errorf("cq-wanzhou trained = %d; want 0 (enrolment e2 never completed)", r.Trained)
		}
	}
}

// TestRetrainingCountsOnceAYear: one person, one qualification, trained
// twice in a year (failed the first attempt, re-enrolled, trained again,
// passed): the progress toward the 3,000 target counts one trained
// qualification, not two (found by review).
func TestRetrainingCountsOnceAYear(t *testing.T) {
	m := quota.New()
	p := newTrainee(1)
	(&fold.Log{T: t, P: m}).Apply(p.registered("cq-yuzhong"),
		p.enrol("e1", "ti-a", "2025-03-01", "cq-yuzhong"), p.complete("e1", "ti-a", "2025-05-01"), p.assessed("a1", "", "2025-06-01", 1, 40),
		p.enrol("e2", "ti-a", "2025-07-01", "cq-yuzhong"), p.complete("e2", "ti-a", "2025-09-01"), p.assessed("a2", "", "2025-10-01", 2, 80),
		&pb.CertificateIssued{CertificateId: "c2", PersonKey: p.k, EvaluationInstitutionId: "ev", Qualification: p.q.Proto(), AssessmentId: "a2", IssuedOn: fold.Date("2025-10-10")})
	d := m.Dashboard(2025, quota.Filter{})
	if d.Totals.Trained != 1 || d.Progress != 1 {
		t.Errorf("trained %d, progress %d toward the target; want 1 (one person, one qualification)", d.Totals.Trained, d.Progress)
	}
}

// TestAssessmentCountsInItsEnrolmentsUnit: of a person's two enrolments
// for a qualification, in two units, an assessment counts in the unit of
// the one rule 15 reads (at the institution it names, else a completed one
// first, then the earliest), and so do the certificate on it and its
// revocation; the model's snapshot restores to the same model.
func TestAssessmentCountsInItsEnrolmentsUnit(t *testing.T) {
	for _, tc := range []struct {
		name, named, want string
	}{{"named the later enrolment's institution", "ti-b", "cq-wanzhou"}, {"named none: the completed one", "", "cq-yuzhong"}} {
		t.Run(tc.name, func(t *testing.T) {
			m := quota.New()
			p := newTrainee(2)
			(&fold.Log{T: t, P: m}).Apply(p.registered("cq-yuzhong"),
				p.enrol("e1", "ti-a", "2025-03-01", "cq-yuzhong"), p.enrol("e2", "ti-b", "2025-04-01", "cq-wanzhou"),
				p.complete("e1", "ti-a", "2025-05-01"), p.assessed("a1", tc.named, "2025-06-01", 1, 80),
				&pb.CertificateIssued{CertificateId: "c1", PersonKey: p.k, EvaluationInstitutionId: "ev", Qualification: p.q.Proto(), AssessmentId: "a1", IssuedOn: fold.Date("2025-06-10")},
				&pb.CertificateRevoked{CertificateId: "c1", PersonKey: p.k, Qualification: p.q.Proto(), RevokedOn: fold.Date("2025-07-01")})
			check := func(m *quota.Model, what string) {
				for _, r := range m.Dashboard(2025, quota.Filter{View: "recorded"}).ByUnit {
					want := int64(0)
					if r.UnitCode == tc.want {
						want = 1
					}
					if int64(r.FirstAttempts) != want || int64(r.Certified) != want || int64(r.Revoked) != want {
						t.Errorf("%s: %s: first attempts %d, certified %d, revoked %d; want %d each", what, r.UnitCode, r.FirstAttempts, r.Certified, r.Revoked, want)
					}
				}
			}
			check(m, "live")
			var b bytes.Buffer
			if err := m.Snapshot(&b); err != nil {
				t.Fatal(err)
			}
			back := quota.New()
			if err := back.Restore(&b); err != nil {
				t.Fatal(err)
			}
			if d := deepdiff.Diff(back, m); d != "" {
				t.Errorf("restored snapshot differs at %s", d)
			}
			check(back, "restored")
			// The person trains again for it the next year: counted again.
			apply2 := (&fold.Log{T: t, P: back}).Apply
			apply2(p.complete("e2", "ti-b", "2026-01-10"))
			if got := back.Dashboard(2026, quota.Filter{View: "recorded"}).Totals.Trained; got != 1 {
				t.Errorf("trained again in 2026: %d; want 1", got)
			}
		})
	}
}

// TestTrainedOnceAYearInAnyOrder: completions reported out of date order
// (a late one dated the year before) still count a person's training for
// a qualification once in each year (found by review: only the last year
// counted was kept, and a 2025 completion after a late 2024 one counted
// 2025 twice).
func TestTrainedOnceAYearInAnyOrder(t *testing.T) {
	m := quota.New()
	p := newTrainee(3)
	(&fold.Log{T: t, P: m}).Apply(p.registered("cq-yuzhong"),
		p.enrol("e1", "ti-a", "2024-09-01", "cq-yuzhong"), p.enrol("e2", "ti-b", "2024-10-01", "cq-yuzhong"),
		p.complete("e2", "ti-b", "2025-03-01"), p.complete("e1", "ti-a", "2024-12-01"), // reported late
		p.enrol("e3", "ti-a", "2025-04-01", "cq-yuzhong"), p.complete("e3", "ti-a", "2025-06-01"))
	for y, want := range map[int]int64{2024: 1, 2025: 1} {
		if got := m.Dashboard(y, quota.Filter{}).Totals.Trained; got != want {
			t.Errorf("%d trained = %d; want %d", y, got, want)
		}
	}
}
