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

// A person enrolled at two institutions in two units (rule 16 flags it,
// does not reject it); the completion of the FIRST enrolment (in
// cq-yuzhong) must count for cq-yuzhong, not for the unit of the later one.
func TestCompletionCountsInItsEnrolmentsUnit(t *testing.T) {
	m := quota.New()
	apply := (&fold.Log{T: t, P: m}).Apply
	q := refdata.Qualification{Occupation: pb.Occupation_OCCUPATION_BIG_DATA, Level: pb.Level_LEVEL_JUNIOR}
	k := fmt.Sprintf("%064x", 1)
	apply(
		&pb.TraineeRegistered{PersonKey: k, UnitCode: "cq-yuzhong", Education: pb.Education_EDUCATION_ASSOCIATE},
		&pb.Enrolled{EnrolmentId: "e1", PersonKey: k, TrainingInstitutionId: "ti-a", Qualification: q.Proto(), EnrolledOn: fold.Date("2025-03-01"), UnitCode: "cq-yuzhong"},
		&pb.Enrolled{EnrolmentId: "e2", PersonKey: k, TrainingInstitutionId: "ti-b", Qualification: q.Proto(), EnrolledOn: fold.Date("2025-04-01"), UnitCode: "cq-wanzhou"},
		&pb.TrainingCompleted{EnrolmentId: "e1", PersonKey: k, TrainingInstitutionId: "ti-a", Qualification: q.Proto(), CompletedOn: fold.Date("2025-05-01")},
	)
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

// One person, one qualification, trained twice in a year (failed the first
// attempt, re-enrolled, trained again, passed): the dashboard's progress
// toward the 3,000 target counts one trained qualification, not two.
func TestRetrainingCountsOnceAYear(t *testing.T) {
	m := quota.New()
	apply := (&fold.Log{T: t, P: m}).Apply
	q := refdata.Qualification{Occupation: pb.Occupation_OCCUPATION_BIG_DATA, Level: pb.Level_LEVEL_JUNIOR}
	k := fmt.Sprintf("%064x", 1)
	apply(
		&pb.TraineeRegistered{PersonKey: k, UnitCode: "cq-yuzhong", Education: pb.Education_EDUCATION_ASSOCIATE},
		&pb.Enrolled{EnrolmentId: "e1", PersonKey: k, TrainingInstitutionId: "ti-a", Qualification: q.Proto(), EnrolledOn: fold.Date("2025-03-01"), UnitCode: "cq-yuzhong"},
		&pb.TrainingCompleted{EnrolmentId: "e1", PersonKey: k, TrainingInstitutionId: "ti-a", Qualification: q.Proto(), CompletedOn: fold.Date("2025-05-01")},
		&pb.AssessmentRecorded{AssessmentId: "a1", PersonKey: k, EvaluationInstitutionId: "ev", Qualification: q.Proto(), Attempt: 1,
			TheoryScore: 40, PracticalScore: 80, AssessedOn: fold.Date("2025-06-01")},
		&pb.Enrolled{EnrolmentId: "e2", PersonKey: k, TrainingInstitutionId: "ti-a", Qualification: q.Proto(), EnrolledOn: fold.Date("2025-07-01"), UnitCode: "cq-yuzhong"},
		&pb.TrainingCompleted{EnrolmentId: "e2", PersonKey: k, TrainingInstitutionId: "ti-a", Qualification: q.Proto(), CompletedOn: fold.Date("2025-09-01")},
		&pb.AssessmentRecorded{AssessmentId: "a2", PersonKey: k, EvaluationInstitutionId: "ev", Qualification: q.Proto(), Attempt: 2,
			TheoryScore: 80, PracticalScore: 80, AssessedOn: fold.Date("2025-10-01")},
		&pb.CertificateIssued{CertificateId: "c2", PersonKey: k, EvaluationInstitutionId: "ev", Qualification: q.Proto(), AssessmentId: "a2", IssuedOn: fold.Date("2025-10-10")},
	)
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
	q := refdata.Qualification{Occupation: pb.Occupation_OCCUPATION_BIG_DATA, Level: pb.Level_LEVEL_JUNIOR}
	for _, tc := range []struct {
		name, named, want string
	}{{"named the later enrolment's institution", "ti-b", "cq-wanzhou"}, {"named none: the completed one", "", "cq-yuzhong"}} {
		t.Run(tc.name, func(t *testing.T) {
			m := quota.New()
			apply := (&fold.Log{T: t, P: m}).Apply
			k := fmt.Sprintf("%064x", 2)
			apply(
				&pb.TraineeRegistered{PersonKey: k, UnitCode: "cq-yuzhong", Education: pb.Education_EDUCATION_ASSOCIATE},
				&pb.Enrolled{EnrolmentId: "e1", PersonKey: k, TrainingInstitutionId: "ti-a", Qualification: q.Proto(), EnrolledOn: fold.Date("2025-03-01"), UnitCode: "cq-yuzhong"},
				&pb.Enrolled{EnrolmentId: "e2", PersonKey: k, TrainingInstitutionId: "ti-b", Qualification: q.Proto(), EnrolledOn: fold.Date("2025-04-01"), UnitCode: "cq-wanzhou"},
				&pb.TrainingCompleted{EnrolmentId: "e1", PersonKey: k, TrainingInstitutionId: "ti-a", Qualification: q.Proto(), CompletedOn: fold.Date("2025-05-01")},
				&pb.AssessmentRecorded{AssessmentId: "a1", PersonKey: k, EvaluationInstitutionId: "ev", TrainingInstitutionId: tc.named, Qualification: q.Proto(), Attempt: 1,
					TheoryScore: 80, PracticalScore: 80, AssessedOn: fold.Date("2025-06-01")},
				&pb.CertificateIssued{CertificateId: "c1", PersonKey: k, EvaluationInstitutionId: "ev", Qualification: q.Proto(), AssessmentId: "a1", IssuedOn: fold.Date("2025-06-10")},
				&pb.CertificateRevoked{CertificateId: "c1", PersonKey: k, Qualification: q.Proto(), RevokedOn: fold.Date("2025-07-01")},
			)
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
			apply2(&pb.TrainingCompleted{EnrolmentId: "e2", PersonKey: k, TrainingInstitutionId: "ti-b", Qualification: q.Proto(), CompletedOn: fold.Date("2026-01-10")})
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
	apply := (&fold.Log{T: t, P: m}).Apply
	q := refdata.Qualification{Occupation: pb.Occupation_OCCUPATION_BIG_DATA, Level: pb.Level_LEVEL_JUNIOR}
	k := fmt.Sprintf("%064x", 3)
	enrol := func(id, inst, on string) *pb.Enrolled {
		return &pb.Enrolled{EnrolmentId: id, PersonKey: k, TrainingInstitutionId: inst, Qualification: q.Proto(), EnrolledOn: fold.Date(on), UnitCode: "cq-yuzhong"}
	}
	complete := func(id, inst, on string) *pb.TrainingCompleted {
		return &pb.TrainingCompleted{EnrolmentId: id, PersonKey: k, TrainingInstitutionId: inst, Qualification: q.Proto(), CompletedOn: fold.Date(on)}
	}
	apply(
		&pb.TraineeRegistered{PersonKey: k, UnitCode: "cq-yuzhong", Education: pb.Education_EDUCATION_ASSOCIATE},
		enrol("e1", "ti-a", "2024-09-01"), enrol("e2", "ti-b", "2024-10-01"),
		complete("e2", "ti-b", "2025-03-01"), complete("e1", "ti-a", "2024-12-01"), // reported late
		enrol("e3", "ti-a", "2025-04-01"), complete("e3", "ti-a", "2025-06-01"),
	)
	for y, want := range map[int]int64{2024: 1, 2025: 1} {
		if got := m.Dashboard(y, quota.Filter{}).Totals.Trained; got != want {
			t.Errorf("%d trained = %d; want %d", y, got, want)
		}
	}
}
