package rules_test

import (
	"testing"

	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// TestSettlementWithAnIDNumberIsRejected: a settlement whose paid_to_account or
// bank_reference is a resident ID number standing alone is refused: the log
// is immutable (found by review: account fields were not scanned at all).
func TestSettlementWithAnIDNumberIsRejected(t *testing.T) {
	const id = "50010119900101107X" // valid GB 11643, check character X
	for _, tc := range []struct {
		name string
		set  func(*subsidyv1.PaymentSettled)
	}{
		{"paid_to_account", func(m *subsidyv1.PaymentSettled) { m.PaidToAccount = id }},
		{"bank_reference", func(m *subsidyv1.PaymentSettled) { m.BankReference = "500101199001011002" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFx(t, rules.DefaultRuleSet())
			e, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20")
			f.noticed(e)
			o := f.derived(&subsidyv1.PaymentRequested{EntitlementId: e, OfficialId: "maker", RequestedOn: dt("2025-07-09")})[0].Payload.(*subsidyv1.PaymentOrdered)
			m := &subsidyv1.PaymentSettled{PaymentOrderId: o.PaymentOrderId, EntitlementId: e, AmountFen: o.NetFen, PaidToAccount: "trainee-account-token-0182ce950f5ecca6", SettledOn: dt("2025-07-10")}
			tc.set(m)
			if _, rej := f.decide(m); rej == nil || rej.Reason != subsidyv1.ReasonCode_REASON_CODE_INVALID_PERSON_ID {
				t.Errorf("settlement with a plain ID number in %s: %v; want INVALID_PERSON_ID", tc.name, rej)
			}
		})
	}
}
