package quota_test

import (
	"fmt"
	"testing"

	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/projections/internal/fold"
	"github.com/cqhrss/subsidyledger/projections/quota"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// TestEnrolmentWithoutUnit: Enrolled's unit_code is optional; an enrolment
// without one, and the training, assessment and certificate that follow
// it, count in the unit of the person's registration (the unit the rules
// give the entitlement), not under a unit "". The current view rolls an
// abolished registered unit up into its successor, as for every unit.
func TestEnrolmentWithoutUnit(t *testing.T) {
	m := quota.New()
	apply := (&fold.Log{T: t, P: m}).Apply
	q := refdata.Qualification{Occupation: pb.Occupation_OCCUPATION_BIG_DATA, Level: pb.Level_LEVEL_JUNIOR}
	for i, unit := range []string{"cq-yuzhong", "cq-jiangbei"} {
		k := fmt.Sprintf("%064x", i+1)
		enr, as := fmt.Sprintf("enr-%d", i), fmt.Sprintf("as-%d", i)
		apply(
			&pb.TraineeRegistered{PersonKey: k, UnitCode: unit, Education: pb.Education_EDUCATION_ASSOCIATE},
			&pb.Enrolled{EnrolmentId: enr, PersonKey: k, TrainingInstitutionId: "ti-a", Qualification: q.Proto(), EnrolledOn: fold.Date("2025-03-01")},
			&pb.TrainingCompleted{EnrolmentId: enr, PersonKey: k, TrainingInstitutionId: "ti-a", Qualification: q.Proto(), CompletedOn: fold.Date("2025-05-01")},
			&pb.AssessmentRecorded{AssessmentId: as, PersonKey: k, EvaluationInstitutionId: "ev", Qualification: q.Proto(), Attempt: 1,
				TheoryScore: 80, PracticalScore: 80, AssessedOn: fold.Date("2025-06-01")},
			&pb.CertificateIssued{CertificateId: "cert-" + as, PersonKey: k, EvaluationInstitutionId: "ev", Qualification: q.Proto(), AssessmentId: as, IssuedOn: fold.Date("2025-06-10")},
			&pb.SubsidyEntitled{EntitlementId: rules.EntitlementID(k, q), PersonKey: k, Qualification: q.Proto(), CertificateId: "cert-" + as,
				AmountFen: 80000, Year: 2025, UnitCode: unit, AssessedOn: fold.Date("2025-06-01")},
		)
	}
	one := quota.Counts{Enrolled: 1, Trained: 1, Certified: 1, Subsidised: 1, SubsidisedFen: 80000, Attempts: 1, Passes: 1,
		FirstAttempts: 1, FirstAttemptPasses: 1, FirstAttemptRate: 1}
	for _, tt := range []struct {
		view  string
		units []string
	}{
		{"recorded", []string{"cq-jiangbei", "cq-yuzhong"}},
		{"current", []string{"cq-liangjiang", "cq-yuzhong"}},
	} {
		d := m.Dashboard(2025, quota.Filter{View: tt.view})
		var got []string
		for _, r := range d.ByUnit {
			got = append(got, r.UnitCode)
			if r.Counts != one {
				t.Errorf("%s view, unit %q: %+v; want %+v", tt.view, r.UnitCode, r.Counts, one)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.units) {
			t.Errorf("%s view: units %q; want %q", tt.view, got, tt.units)
		}
	}
	// Filtered by the successor, the recorded view keeps the units it
	// succeeded, under their recorded codes.
	d := m.Dashboard(2025, quota.Filter{View: "recorded", Unit: "cq-liangjiang"})
	if len(d.ByUnit) != 1 || d.ByUnit[0].UnitCode != "cq-jiangbei" || d.ByUnit[0].Counts != one || d.Totals.Enrolled != 1 {
		t.Errorf("recorded view of cq-liangjiang: %+v, totals %+v", d.ByUnit, d.Totals)
	}
}

// TestYearsShowRevocations: the overview (GET /v1/quota) gives beside the
// certified and subsidised counts how many of them were revoked and
// cancelled since, so that a consumer can net them out.
func TestYearsShowRevocations(t *testing.T) {
	m := quota.New()
	apply := (&fold.Log{T: t, P: m}).Apply
	q := refdata.Qualification{Occupation: pb.Occupation_OCCUPATION_BIG_DATA, Level: pb.Level_LEVEL_JUNIOR}
	for i := range 2 {
		k := fmt.Sprintf("%064x", i+1)
		enr, as := fmt.Sprintf("enr-%d", i), fmt.Sprintf("as-%d", i)
		apply(
			&pb.TraineeRegistered{PersonKey: k, UnitCode: "cq-yuzhong", Education: pb.Education_EDUCATION_ASSOCIATE},
			&pb.Enrolled{EnrolmentId: enr, PersonKey: k, TrainingInstitutionId: "ti-a", Qualification: q.Proto(), EnrolledOn: fold.Date("2025-03-01"), UnitCode: "cq-yuzhong"},
			&pb.TrainingCompleted{EnrolmentId: enr, PersonKey: k, TrainingInstitutionId: "ti-a", Qualification: q.Proto(), CompletedOn: fold.Date("2025-05-01")},
			&pb.AssessmentRecorded{AssessmentId: as, PersonKey: k, EvaluationInstitutionId: "ev", Qualification: q.Proto(), Attempt: 1,
				TheoryScore: 80, PracticalScore: 80, AssessedOn: fold.Date("2025-06-01")},
			&pb.CertificateIssued{CertificateId: "cert-" + as, PersonKey: k, EvaluationInstitutionId: "ev", Qualification: q.Proto(), AssessmentId: as, IssuedOn: fold.Date("2025-06-10")},
			&pb.SubsidyEntitled{EntitlementId: rules.EntitlementID(k, q), PersonKey: k, Qualification: q.Proto(), CertificateId: "cert-" + as,
				AmountFen: 80000, Year: 2025, UnitCode: "cq-yuzhong", AssessedOn: fold.Date("2025-06-01")},
		)
	}
	k := fmt.Sprintf("%064x", 1)
	apply(&pb.CertificateRevoked{CertificateId: "cert-as-0", PersonKey: k, Qualification: q.Proto(), RevokedOn: fold.Date("2025-07-01")},
		&pb.EntitlementHeld{EntitlementId: rules.EntitlementID(k, q), Reason: pb.ReasonCode_REASON_CODE_CERTIFICATE_REVOKED, HoldId: "revoked"})
	for _, y := range m.Years(quota.Filter{}) {
		if y.Year != 2025 {
			continue
		}
		if y.Certified != 2 || y.Revoked != 1 || y.Subsidised != 2 || y.Cancelled != 1 {
			t.Errorf("2025: %+v; want 2 certified (1 revoked), 2 subsidised (1 cancelled)", y)
		}
		return
	}
	t.Fatal("no 2025 in the overview")
}
