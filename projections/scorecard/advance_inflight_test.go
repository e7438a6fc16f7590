package scorecard_test

import (
	"fmt"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/projections/scorecard"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// TestAdvanceReimbursedAfterRevocationInFlight: the certificate is revoked
// while the reimbursement's payment order is out; the order then settles
// (the rules let it, and raise the clawback). The institution was
// reimbursed for its advance, and owes it back through the clawback: the
// card shows the advance reimbursed, not "not reimbursable" beside the
// reimbursement (found by review). Had the order failed, the advance
// would not be reimbursable.
func TestAdvanceReimbursedAfterRevocationInFlight(t *testing.T) {
	k := fmt.Sprintf("%064x", 7)
	q := refdata.Qualification{Occupation: pb.Occupation_OCCUPATION_BIG_DATA, Level: pb.Level_LEVEL_JUNIOR}
	id := rules.EntitlementID(k, q)
	payee := &pb.Payee{Kind: pb.PayeeKind_PAYEE_KIND_INSTITUTION, InstitutionId: "ti-a"}
	// Revoked with the order out: the advance stays outstanding until
	// the order ends.
	revokedInFlight := func() (*scorecard.Model, *events.Position) {
		m, pos := scorecard.New(), new(events.Position)
		apply(t, m, pos,
			&pb.InstitutionRegistered{InstitutionId: "ti-a", Name: "A", Kind: pb.InstitutionKind_INSTITUTION_KIND_TRAINING, UnitCode: "cq-yuzhong"},
			&pb.AdvancePaymentRecorded{AdvanceId: "adv", TrainingInstitutionId: "ti-a", PersonKey: k, Qualification: q.Proto(), AmountFen: 80000},
			&pb.SubsidyEntitled{EntitlementId: id, PersonKey: k, Qualification: q.Proto(), CertificateId: "c", AmountFen: 80000,
				Payee: payee, TrainingInstitutionId: "ti-a", Year: 2025, UnitCode: "cq-yuzhong"},
			&pb.NoticeClosed{EntitlementId: id},
			&pb.PaymentOrdered{PaymentOrderId: "po-1", EntitlementId: id, Attempt: 1, AmountFen: 80000, NetFen: 80000, Payee: payee},
			&pb.EntitlementHeld{EntitlementId: id, Reason: pb.ReasonCode_REASON_CODE_CERTIFICATE_REVOKED, HoldId: "revoked"},
		)
		if c, _ := m.Get("ti-a"); c.Advances.NotReimbursableCount != 0 || c.Advances.OutstandingCount != 1 {
			t.Errorf("revoked with the order out: advances %+v; want it outstanding until the order ends", c.Advances)
		}
		return m, pos
	}
	m, pos := revokedInFlight()
	apply(t, m, pos,
		&pb.PaymentSettled{PaymentOrderId: "po-1", EntitlementId: id, AmountFen: 80000},
		&pb.ClawbackRaised{ClawbackId: events.DeriveID("cb", "1").String(), EntitlementId: id, Payee: payee, AmountFen: 80000,
			Cause: pb.ClawbackCause_CLAWBACK_CAUSE_CERTIFICATE_REVOKED},
	)
	c, _ := m.Get("ti-a")
	failed, fpos := revokedInFlight()
	apply(t, failed, fpos, &pb.PaymentFailed{PaymentOrderId: "po-1", EntitlementId: id, Failure: "account closed"})
	if fc, _ := failed.Get("ti-a"); fc.Advances.NotReimbursableCount != 1 || fc.Advances.OutstandingCount != 0 || fc.Reimbursements != 0 {
		t.Errorf("the order failed after the revocation: advances %+v, reimbursements %d; want not reimbursable", fc.Advances, fc.Reimbursements)
	}
	t.Logf("reimbursements %d (%d fen); advances %+v; clawbacks %+v", c.Reimbursements, c.ReimbursedFen, c.Advances, c.Clawbacks)
	if c.Reimbursements != 1 || c.Advances.ReimbursedCount != 1 || c.Advances.NotReimbursableCount != 0 {
		t.Errorf("reimbursements %d; advance paid back to the institution shown as reimbursed=%d, not reimbursable=%d; want 1, reimbursed 1, not reimbursable 0",
			c.Reimbursements, c.Advances.ReimbursedCount, c.Advances.NotReimbursableCount)
	}
}
