package scorecard_test

import (
	"fmt"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/scorecard"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// TestAdvanceReopensWhenEntitledAfterADenial: a training institution's
// advance counts as not reimbursable when its trainee's certificate is
// denied, and as outstanding again when the qualification is entitled
// after all (the rules decide a certificate again when eligibility
// evidence comes after it).
func TestAdvanceReopensWhenEntitledAfterADenial(t *testing.T) {
	m := scorecard.New()
	pos := events.Position(0)
	k := fmt.Sprintf("%064x", 7)
	q := refdata.Qualification{Occupation: pb.Occupation_OCCUPATION_BIG_DATA, Level: pb.Level_LEVEL_JUNIOR}
	evs := []*projections.Event{
		{Type: "subsidy.v1.InstitutionRegistered", Payload: &pb.InstitutionRegistered{InstitutionId: "ti-a", Name: "A", Kind: pb.InstitutionKind_INSTITUTION_KIND_TRAINING, UnitCode: "cq-yuzhong"}},
		{Type: "subsidy.v1.AdvancePaymentRecorded", Payload: &pb.AdvancePaymentRecorded{AdvanceId: "adv", TrainingInstitutionId: "ti-a", PersonKey: k, Qualification: q.Proto(), AmountFen: 80000}},
		{Type: "subsidy.v1.SubsidyDenied", Payload: &pb.SubsidyDenied{PersonKey: k, Qualification: q.Proto(), CertificateId: "c", Reason: pb.ReasonCode_REASON_CODE_NO_ELIGIBILITY_EVIDENCE}},
	}
	for _, ev := range evs {
		pos++
		ev.Position = pos
		if err := m.Apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	card := func() scorecard.Advances {
		c, ok := m.Get("ti-a")
		if !ok {
			t.Fatal("no card for ti-a")
		}
		return c.Advances
	}
	if a := card(); a.NotReimbursableCount != 1 || a.NotReimbursableFen != 80000 || a.OutstandingCount != 0 {
		t.Fatalf("after the denial: %+v", a)
	}
	pos++
	if err := m.Apply(&projections.Event{Position: pos, Type: "subsidy.v1.SubsidyEntitled", Payload: &pb.SubsidyEntitled{
		EntitlementId: rules.EntitlementID(k, q), PersonKey: k, Qualification: q.Proto(), CertificateId: "c", AmountFen: 80000,
		Payee: &pb.Payee{Kind: pb.PayeeKind_PAYEE_KIND_INSTITUTION, InstitutionId: "ti-a"}, TrainingInstitutionId: "ti-a", Year: 2025, UnitCode: "cq-yuzhong"}}); err != nil {
		t.Fatal(err)
	}
	if a := card(); a.NotReimbursableCount != 0 || a.NotReimbursableFen != 0 || a.OutstandingCount != 1 || a.OutstandingFen != 80000 {
		t.Fatalf("after the entitlement: %+v", a)
	}
}
