package trainee_test

import (
	"testing"

	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/projections/internal/fold"
	"github.com/cqhrss/subsidyledger/projections/trainee"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// TestCancelledWithOrderOut: an entitlement cancelled while its payment
// order is out shows the order out, not cancelled, until the order's
// result: it may still settle (then the clawback shows) or fail (then it
// is cancelled). Found by review: it showed cancelled while the rules and
// the fund kept it payable.
func TestCancelledWithOrderOut(t *testing.T) {
	for _, result := range []string{"settled", "failed"} {
		t.Run(result, func(t *testing.T) {
			m, apply, k, id := entitled(t, 80000)
			state := func() string {
				t.Helper()
				st, ok := m.Get(k)
				if !ok || len(st.Entitlements) != 1 {
					t.Fatalf("status %v %+v", ok, st)
				}
				return st.Entitlements[0].State
			}
			apply(&pb.NoticeClosed{EntitlementId: id},
				&pb.PaymentOrdered{PaymentOrderId: "po-1", EntitlementId: id, Attempt: 1, AmountFen: 80000, NetFen: 80000},
				&pb.EntitlementHeld{EntitlementId: id, Reason: pb.ReasonCode_REASON_CODE_CERTIFICATE_REVOKED, HoldId: "revoked/c"})
			if got := state(); got != trainee.StatePaymentOrdered {
				t.Fatalf("cancelled with the order out: state %q; want %q", got, trainee.StatePaymentOrdered)
			}
			want := trainee.StateCancelled
			if result == "settled" {
				apply(&pb.PaymentSettled{PaymentOrderId: "po-1", EntitlementId: id, AmountFen: 80000, PaidToAccount: "a", SettledOn: fold.Date("2025-08-01")},
					&pb.ClawbackRaised{ClawbackId: rules.ClawbackID(id), EntitlementId: id, AmountFen: 80000, Cause: pb.ClawbackCause_CLAWBACK_CAUSE_CERTIFICATE_REVOKED})
				want = trainee.StateClawedBack
			} else {
				apply(&pb.PaymentFailed{PaymentOrderId: "po-1", EntitlementId: id, Failure: "closed", FailedOn: fold.Date("2025-08-01")})
			}
			if got := state(); got != want {
				t.Errorf("after the order %s: state %q; want %q", result, got, want)
			}
		})
	}
}
