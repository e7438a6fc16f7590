package rules_test

import (
	"testing"

	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// TestRepaymentAfterWriteOff: money repaid after a receivable was written
// off is recorded (from BehaviourRecoveredWriteOff on): what a repayment
// brings beyond what is outstanding recovers what was written off and
// reverses the write-off by as much (ClawbackRecovered.written_off_fen);
// more than outstanding and written off together is refused. Before, any
// repayment beyond what was outstanding was refused, so money actually
// received after a write-off could not be recorded at all (found by
// review); a rule set of an earlier behaviour still refuses it.
func TestRepaymentAfterWriteOff(t *testing.T) {
	// clawed returns a fixture with an 80,000-fen clawback against the
	// institution, 30,000 of it repaid and 30,000 written off: 20,000
	// outstanding.
	clawed := func(t *testing.T, behaviour int) (*fx, string) {
		rs := rules.DefaultRuleSet()
		rs.Behaviour = behaviour
		f := newFx(t, rs)
		e, _ := f.entitled("ti-digital", bdJ, true, "2025-06-20")
		f.noticed(e)
		o := f.derived(&subsidyv1.PaymentRequested{EntitlementId: e, OfficialId: "m", RequestedOn: dt("2025-07-09")})[0].Payload.(*subsidyv1.PaymentOrdered)
		want(t, f.derived(&subsidyv1.FraudFound{FindingId: "fr", EntitlementId: e, OfficialId: "sup", FoundOn: dt("2025-07-09")}), "EntitlementHeld:REASON_CODE_FRAUD_FINDING")
		want(t, f.derived(&subsidyv1.PaymentSettled{PaymentOrderId: o.PaymentOrderId, EntitlementId: e, AmountFen: o.NetFen, PaidToAccount: "acct-digital", SettledOn: dt("2025-07-10")}), "ClawbackRaised")
		cb := rules.ClawbackID(e)
		f.must(&subsidyv1.RepaymentReceived{RepaymentId: "rp-1", ClawbackId: cb, AmountFen: 30000, ReceivedOn: dt("2025-08-01")})
		f.must(&subsidyv1.WriteOffRequested{ClawbackId: cb, AmountFen: 30000, Reason: "当事人无力偿还", OfficialId: "a"})
		f.must(&subsidyv1.ClawbackWrittenOff{ClawbackId: cb, AmountFen: 30000, Reason: "当事人无力偿还", RequestedBy: "a", ApprovedBy: "b"})
		return f, cb
	}
	repay := func(cb, id string, fen int64) *subsidyv1.RepaymentReceived {
		return &subsidyv1.RepaymentReceived{RepaymentId: id, ClawbackId: cb, AmountFen: fen, ReceivedOn: dt("2025-09-01")}
	}
	state := func(t *testing.T, f *fx, cb string, recovered, writtenOff, outstanding int64) {
		t.Helper()
		for what, w := range map[string]*rules.World{"live": f.l.w, "replayed": replay(t, f.l.w.RuleSet(), f.l.log)} {
			c, ok := w.Clawback(cb)
			if !ok || c.RecoveredFen != recovered || c.WrittenOffFen != writtenOff || c.OutstandingFen != outstanding {
				t.Errorf("%s: clawback %+v; want recovered %d, written off %d, outstanding %d", what, c, recovered, writtenOff, outstanding)
			}
		}
	}
	recovery := func(t *testing.T, evs []rules.Event, amount, writtenOff int64) {
		t.Helper()
		want(t, evs, "ClawbackRecovered")
		if r := evs[0].Payload.(*subsidyv1.ClawbackRecovered); r.GetAmountFen() != amount || r.GetWrittenOffFen() != writtenOff {
			t.Errorf("recovery %v; want %d fen, %d of it written off", r, amount, writtenOff)
		}
	}

	t.Run("behaviour 5", func(t *testing.T) {
		f, cb := clawed(t, rules.BehaviourRecoveredWriteOff)
		state(t, f, cb, 30000, 30000, 20000)
		// Within what is outstanding: no write-off touched.
		recovery(t, f.derived(repay(cb, "rp-2", 5000)), 5000, 0)
		// 15,000 outstanding; 25,000 recovers it and 10,000 written off.
		f.reject(repay(cb, "rp-3", 45001), subsidyv1.ReasonCode_REASON_CODE_RECOVERY_EXCEEDS_RECEIVABLE)
		recovery(t, f.derived(repay(cb, "rp-3", 25000)), 25000, 10000)
		state(t, f, cb, 60000, 20000, 0)
		// The rest of what was written off, and then nothing more.
		f.reject(repay(cb, "rp-4", 20001), subsidyv1.ReasonCode_REASON_CODE_RECOVERY_EXCEEDS_RECEIVABLE)
		recovery(t, f.derived(repay(cb, "rp-4", 20000)), 20000, 20000)
		state(t, f, cb, 80000, 0, 0)
		f.reject(repay(cb, "rp-5", 1), subsidyv1.ReasonCode_REASON_CODE_RECOVERY_EXCEEDS_RECEIVABLE)
		// Nothing is outstanding, so nothing can be written off again.
		f.reject(&subsidyv1.WriteOffRequested{ClawbackId: cb, AmountFen: 1, Reason: "x", OfficialId: "a"}, subsidyv1.ReasonCode_REASON_CODE_RECOVERY_EXCEEDS_RECEIVABLE)
		checkInvariants(t, f.l.log)
	})
	t.Run("behaviour 4", func(t *testing.T) {
		f, cb := clawed(t, rules.BehaviourDatedHolds)
		f.reject(repay(cb, "rp-3", 20001), subsidyv1.ReasonCode_REASON_CODE_RECOVERY_EXCEEDS_RECEIVABLE)
		recovery(t, f.derived(repay(cb, "rp-3", 20000)), 20000, 0)
		f.reject(repay(cb, "rp-4", 1), subsidyv1.ReasonCode_REASON_CODE_RECOVERY_EXCEEDS_RECEIVABLE)
		state(t, f, cb, 50000, 30000, 0)
	})
}
