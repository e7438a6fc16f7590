package rules_test

import (
	"testing"

	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// TestLateObjection: an objection raised during the notice but recorded
// after its close holds the entitlement, which is then not paid until it
// is resolved; once money has moved it is refused saying so (ALREADY_PAID,
// PAYMENT_IN_FLIGHT); one raised after the notice's last day is outside
// it; and a rule set of an earlier behaviour decides as that release did
// (refused: found by review, the entitlement was then paid).
func TestLateObjection(t *testing.T) {
	objection := func(e, id, on string) *subsidyv1.ObjectionRaised {
		return &subsidyv1.ObjectionRaised{ObjectionId: id, EntitlementId: e, Summary: "本人未参加培训", RaisedOn: dt(on)}
	}
	t.Run("held", func(t *testing.T) {
		f := newFx(t, rules.DefaultRuleSet())
		e, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20")
		f.noticed(e) // notice 07-01..07-07, closed 07-08
		f.reject(objection(e, "after", "2025-07-08"), subsidyv1.ReasonCode_REASON_CODE_OUTSIDE_NOTICE_WINDOW)
		evs := f.derived(objection(e, "late", "2025-07-07"))
		if h, ok := evs[0].Payload.(*subsidyv1.EntitlementHeld); !ok || h.GetReason() != subsidyv1.ReasonCode_REASON_CODE_OBJECTION_PENDING {
			t.Fatalf("a late objection derived %v; want the objection hold", evs)
		}
		f.reject(&subsidyv1.PaymentRequested{EntitlementId: e, OfficialId: "maker", RequestedOn: dt("2025-07-09")}, subsidyv1.ReasonCode_REASON_CODE_ENTITLEMENT_HELD)
		f.derived(&subsidyv1.ObjectionResolved{ObjectionId: "late", EntitlementId: e, OfficialId: "checker", ResolvedOn: dt("2025-07-10")})
		f.derived(&subsidyv1.PaymentRequested{EntitlementId: e, OfficialId: "maker", RequestedOn: dt("2025-07-11")})
	})
	t.Run("money moved", func(t *testing.T) {
		f := newFx(t, rules.DefaultRuleSet())
		e, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20")
		f.noticed(e)
		o := f.derived(&subsidyv1.PaymentRequested{EntitlementId: e, OfficialId: "maker", RequestedOn: dt("2025-07-09")})[0].Payload.(*subsidyv1.PaymentOrdered)
		f.reject(objection(e, "late", "2025-07-07"), subsidyv1.ReasonCode_REASON_CODE_PAYMENT_IN_FLIGHT)
		f.derived(&subsidyv1.PaymentSettled{PaymentOrderId: o.PaymentOrderId, EntitlementId: e, AmountFen: o.NetFen, PaidToAccount: "trainee-account-token-1", SettledOn: dt("2025-07-10")})
		f.reject(objection(e, "later", "2025-07-07"), subsidyv1.ReasonCode_REASON_CODE_ALREADY_PAID)
	})
	t.Run("earlier behaviour", func(t *testing.T) {
		rs := rules.DefaultRuleSet()
		rs.Behaviour = rules.BehaviourReEnrolment
		f := newFx(t, rs)
		e, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20")
		f.noticed(e)
		f.reject(objection(e, "late", "2025-07-07"), subsidyv1.ReasonCode_REASON_CODE_OUTSIDE_NOTICE_WINDOW)
	})
}
