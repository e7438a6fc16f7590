package redecide_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cqhrss/subsidyledger/events/redecide"
	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// TestPreAdoptionPartReplaysAtBehaviour1 (found by review): a log written
// before the ledger recorded its rule sets (no RuleSetAdopted: every
// release that wrote one is before rules 2026.6, behaviour 1) holds a
// re-enrolment's late completion, which that release decided as nothing.
// ledgerctl redecide (the built-in rule set, or --rule-set FILE: both
// behaviour 2) must decide it again as nothing; it derived an entitlement.
func TestPreAdoptionPartReplaysAtBehaviour1(t *testing.T) {
	l := newLedger(t)
	older := rules.DefaultRuleSet()
	older.Behaviour = 1 // the release that wrote the log
	l.w = rules.NewWorld(older)
	programme(l) // reference data (ti-digital, ev-cqpe, fee, budget) and three trainees
	l.record(&subsidyv1.InstitutionRegistered{InstitutionId: "ti-cloud", Name: "重庆云计算培训学校", Kind: subsidyv1.InstitutionKind_INSTITUTION_KIND_TRAINING, UnitCode: "cq-yuzhong", BasicAccount: "acct-cloud"})
	l.record(&subsidyv1.InstitutionApproved{ApprovalId: "ap-3", InstitutionId: "ti-cloud", Occupation: bdJ.Occupation, ValidFrom: dt("2025-01-01"), ValidTo: dt("2030-12-31")})
	k := "00000000000000000000000000000000000000000000000000000000000000aa"
	l.record(&subsidyv1.TraineeRegistered{PersonKey: k, UnitCode: "cq-yuzhong", Education: subsidyv1.Education_EDUCATION_ASSOCIATE, EnterpriseEmployee: true})
	l.record(&subsidyv1.EligibilityEvidenceRecorded{EvidenceId: "ev-aa", PersonKey: k, Category: subsidyv1.EligibilityCategory_ELIGIBILITY_CATEGORY_ENTERPRISE_EMPLOYEE,
		Source: "社保", SnapshotAt: timestamppb.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)), Confirmed: true, InsuredFrom: dt("2020-01-01")})
	l.record(&subsidyv1.Enrolled{EnrolmentId: "enr-aa-1", PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-03-01")})
	l.record(&subsidyv1.Enrolled{EnrolmentId: "enr-aa-2", PersonKey: k, TrainingInstitutionId: "ti-cloud", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-04-01")})
	l.record(&subsidyv1.AssessmentRecorded{AssessmentId: "as-aa", PersonKey: k, EvaluationInstitutionId: "ev-cqpe", Qualification: bdJ.Proto(), Attempt: 1, TheoryScore: 80, PracticalScore: 80, AssessedOn: dt("2025-06-20")})
	l.record(&subsidyv1.CertificateIssued{CertificateId: "cert-aa", PersonKey: k, EvaluationInstitutionId: "ev-cqpe", Qualification: bdJ.Proto(), AssessmentId: "as-aa", IssuedOn: dt("2025-06-30")})
	l.record(&subsidyv1.TrainingCompleted{EnrolmentId: "enr-aa-2", PersonKey: k, TrainingInstitutionId: "ti-cloud", Qualification: bdJ.Proto(), CompletedOn: dt("2025-06-15")})

	var got []redecide.Mismatch
	sum, err := redecide.Run(context.Background(), l.s, redecide.Options{RuleSet: rules.DefaultRuleSet(), // what ledgerctl redecide gives
		Report: func(m redecide.Mismatch) { got = append(got, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.OK() {
		t.Fatalf("the log's own decisions, made at behaviour 1 before any adoption, replay differently: %v", got)
	}
}
