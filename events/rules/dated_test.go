package rules_test

import (
	"fmt"
	"testing"

	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// TestDatedHolds: from BehaviourDatedHolds on, holds, releases and
// clawbacks carry their days, and a fact recorded in order but dated
// against them is refused — a lift dated before its hold or before the
// resolution of the objection it lifts, a supervisor hold dated before its
// certificate or the last payment request, a fraud finding before the
// certificate, a notice close dated while an objection was pending, a
// payment requested on a day a hold held the entitlement or its last order
// was out, a repayment before its clawback — and an offset takes no
// clawback raised after the request, a budget release is not dated before
// its hold (found by two reviews: each was accepted, and the dated trail
// showed a payment while held); facts of the same day pass; a rule set of
// an earlier behaviour decides as that release did.
func TestDatedHolds(t *testing.T) {
	hold := func(e, id, on string) *subsidyv1.HoldPlaced {
		return &subsidyv1.HoldPlaced{HoldId: id, EntitlementId: e, OfficialId: "supervisor", Reason: "核查培训记录", PlacedOn: dt(on)}
	}
	lift := func(e, id, on string) *subsidyv1.HoldLifted {
		return &subsidyv1.HoldLifted{LiftId: "lift-" + id + "-" + on, EntitlementId: e, HoldId: id, OfficialId: "supervisor", Note: "核查完毕", LiftedOn: dt(on)}
	}
	request := func(e, on string) *subsidyv1.PaymentRequested {
		return &subsidyv1.PaymentRequested{EntitlementId: e, OfficialId: "maker", RequestedOn: dt(on)}
	}
	objection := func(e, id, on string) *subsidyv1.ObjectionRaised {
		return &subsidyv1.ObjectionRaised{ObjectionId: id, EntitlementId: e, Summary: "本人未参加培训", RaisedOn: dt(on)}
	}
	resolved := func(e, id string, upheld bool, on string) *subsidyv1.ObjectionResolved {
		return &subsidyv1.ObjectionResolved{ObjectionId: id, EntitlementId: e, Upheld: upheld, OfficialId: "checker", ResolvedOn: dt(on)}
	}
	approved := func(f *fx, e string) { // notice 07-01..07-07
		f.must(&subsidyv1.EntitlementConfirmed{EntitlementId: e, OfficialId: "maker", ConfirmedOn: dt("2025-06-30")})
		f.must(&subsidyv1.EntitlementApproved{EntitlementId: e, OfficialId: "checker", ApprovedOn: dt("2025-07-01")})
	}
	day := func(d *subsidyv1.Date) string {
		if d == nil {
			return "none"
		}
		return fmt.Sprintf("%04d-%02d-%02d", d.GetYear(), d.GetMonth(), d.GetDay())
	}

	t.Run("hold and lift", func(t *testing.T) {
		f := newFx(t, rules.DefaultRuleSet())
		e, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20")
		f.reject(hold(e, "h0", "2025-06-29"), subsidyv1.ReasonCode_REASON_CODE_DATE_OUT_OF_ORDER)
		held := f.derived(hold(e, "h1", "2025-07-02"))[0].Payload.(*subsidyv1.EntitlementHeld)
		if got := day(held.GetHeldOn()); got != "2025-07-02" {
			t.Errorf("the supervisor hold is held on %s; want 2025-07-02", got)
		}
		f.reject(lift(e, rules.SupervisorHold("h1"), "2025-07-01"), subsidyv1.ReasonCode_REASON_CODE_DATE_OUT_OF_ORDER)
		rel := f.derived(lift(e, rules.SupervisorHold("h1"), "2025-07-12"))[0].Payload.(*subsidyv1.EntitlementReleased)
		if got := day(rel.GetReleasedOn()); got != "2025-07-12" {
			t.Errorf("the lift is released on %s; want 2025-07-12", got)
		}
		f.noticed(e) // closed 07-08
		f.reject(request(e, "2025-07-09"), subsidyv1.ReasonCode_REASON_CODE_ENTITLEMENT_HELD)
		f.derived(request(e, "2025-07-12"))
	})
	t.Run("objection", func(t *testing.T) {
		f := newFx(t, rules.DefaultRuleSet())
		e, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20")
		approved(f, e)
		held := f.derived(objection(e, "o1", "2025-07-03"))[0].Payload.(*subsidyv1.EntitlementHeld)
		if got := day(held.GetHeldOn()); got != "2025-07-03" {
			t.Errorf("the objection hold is held on %s; want 2025-07-03", got)
		}
		rel := f.derived(resolved(e, "o1", false, "2025-07-10"))[0].Payload.(*subsidyv1.EntitlementReleased)
		if got := day(rel.GetReleasedOn()); got != "2025-07-10" {
			t.Errorf("the resolution is released on %s; want 2025-07-10", got)
		}
		f.reject(&subsidyv1.NoticeClosed{EntitlementId: e, ClosedOn: dt("2025-07-08")}, subsidyv1.ReasonCode_REASON_CODE_OBJECTION_PENDING)
		f.must(&subsidyv1.NoticeClosed{EntitlementId: e, ClosedOn: dt("2025-07-10")})
		f.derived(request(e, "2025-07-10"))
	})
	t.Run("upheld objection", func(t *testing.T) {
		f := newFx(t, rules.DefaultRuleSet())
		e, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20")
		approved(f, e)
		f.derived(objection(e, "o1", "2025-07-03"))
		f.must(resolved(e, "o1", true, "2025-07-06"))
		f.must(&subsidyv1.NoticeClosed{EntitlementId: e, ClosedOn: dt("2025-07-08")})
		f.reject(lift(e, rules.ObjectionHold("o1"), "2025-07-05"), subsidyv1.ReasonCode_REASON_CODE_DATE_OUT_OF_ORDER)
		f.derived(lift(e, rules.ObjectionHold("o1"), "2025-07-14"))
		f.reject(request(e, "2025-07-09"), subsidyv1.ReasonCode_REASON_CODE_ENTITLEMENT_HELD)
		f.derived(request(e, "2025-07-14"))
	})
	t.Run("retry", func(t *testing.T) {
		f := newFx(t, rules.DefaultRuleSet())
		e, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20")
		f.noticed(e)
		o := f.derived(request(e, "2025-07-09"))[0].Payload.(*subsidyv1.PaymentOrdered)
		f.must(&subsidyv1.PaymentFailed{PaymentOrderId: o.PaymentOrderId, EntitlementId: e, Failure: "账户已销户", FailedOn: dt("2025-07-15")})
		f.reject(request(e, "2025-07-12"), subsidyv1.ReasonCode_REASON_CODE_PAYMENT_IN_FLIGHT)
		if o2 := f.derived(request(e, "2025-07-15"))[0].Payload.(*subsidyv1.PaymentOrdered); o2.GetAttempt() != 2 {
			t.Errorf("the retry is attempt %d; want 2", o2.GetAttempt())
		}
	})
	t.Run("fraud", func(t *testing.T) {
		f := newFx(t, rules.DefaultRuleSet())
		e, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20")
		held := last[*subsidyv1.EntitlementHeld](f.derived(&subsidyv1.FraudFound{FindingId: "f1", EntitlementId: e, OfficialId: "supervisor", Summary: "伪造材料", FoundOn: dt("2025-08-01")}))
		if held == nil || day(held.GetHeldOn()) != "2025-08-01" {
			t.Errorf("the fraud finding's hold is %v; want it held on 2025-08-01", held)
		}
	})
	t.Run("hold before a request, or with money out", func(t *testing.T) {
		f := newFx(t, rules.DefaultRuleSet())
		e, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20")
		f.noticed(e)
		o := f.derived(request(e, "2025-07-09"))[0].Payload.(*subsidyv1.PaymentOrdered)
		f.reject(hold(e, "h1", "2025-07-10"), subsidyv1.ReasonCode_REASON_CODE_PAYMENT_IN_FLIGHT) // cannot stop the order
		f.must(&subsidyv1.PaymentFailed{PaymentOrderId: o.PaymentOrderId, EntitlementId: e, Failure: "账户已销户", FailedOn: dt("2025-07-15")})
		f.reject(hold(e, "h1", "2025-07-05"), subsidyv1.ReasonCode_REASON_CODE_DATE_OUT_OF_ORDER) // before the failed request
		f.derived(hold(e, "h1", "2025-07-09"))
	})
	t.Run("clawback of money paid after the cause's day", func(t *testing.T) {
		// A revocation recorded after the money settled (07-10) but dated
		// before it: receivable from the settlement's day.
		f := newFx(t, rules.DefaultRuleSet())
		e1, k := f.entitled("ti-digital", bdJ, true, "2025-06-20") // reimburses ti-digital
		f.noticed(e1)
		f.paid(e1, "acct-digital") // requested 07-09, settled 07-10
		e2, _ := f.entitled("ti-digital", bdJ, true, "2025-06-20")
		f.noticed(e2)
		raised := last[*subsidyv1.ClawbackRaised](f.derived(&subsidyv1.CertificateRevoked{CertificateId: fmt.Sprintf("cert-as-%s-%s-1", k[56:], bdJ), PersonKey: k, Qualification: bdJ.Proto(), Reason: "伪造材料", RevokedOn: dt("2025-07-01")}))
		if raised == nil || day(raised.GetRaisedOn()) != "2025-07-10" {
			t.Fatalf("the clawback is %v; want it raised on 2025-07-10", raised)
		}
		f.reject(&subsidyv1.RepaymentReceived{RepaymentId: "rp", ClawbackId: raised.GetClawbackId(), AmountFen: 100, ReceivedOn: dt("2025-07-02")}, subsidyv1.ReasonCode_REASON_CODE_DATE_OUT_OF_ORDER)
		if o := f.derived(request(e2, "2025-07-09"))[0].Payload.(*subsidyv1.PaymentOrdered); o.GetOffsetFen() != 0 {
			t.Errorf("a payment requested 2025-07-09 offsets %d fen of %v, receivable from 2025-07-10", o.GetOffsetFen(), o.GetOffsetClawbackIds())
		}
	})
	t.Run("budget freed by a cancellation and a failure", func(t *testing.T) {
		// A fund with room for one: a's order is out, then a is cancelled
		// and its order fails, in either order of days; b's budget is freed
		// on the later of the two, when a's money was certainly not out.
		for _, c := range []struct {
			name           string
			cancelFirst    bool
			failed, cancel string
		}{{"failed before the finding", true, "2025-07-20", "2025-08-01"}, {"revoked while the order was out", false, "2025-07-20", "2025-07-10"}} {
			t.Run(c.name, func(t *testing.T) {
				f := newFx(t, rules.DefaultRuleSet())
				beibei := roomForOne(f)
				a := beibei()
				f.certify(a, bdJ, "2025-06-20") // certificate 06-30
				ea := rules.EntitlementID(a, bdJ)
				want(t, f.certify(beibei(), bdJ, "2025-06-24"), "SubsidyEntitled", "EntitlementHeld:REASON_CODE_BUDGET_EXCEEDED")
				f.noticed(ea)
				o := f.derived(request(ea, "2025-07-09"))[0].Payload.(*subsidyv1.PaymentOrdered)
				fail := &subsidyv1.PaymentFailed{PaymentOrderId: o.PaymentOrderId, EntitlementId: ea, Failure: "退票", FailedOn: dt(c.failed)}
				cancel := &subsidyv1.CertificateRevoked{CertificateId: fmt.Sprintf("cert-as-%s-%s-1", a[56:], bdJ), PersonKey: a, Qualification: bdJ.Proto(), Reason: "伪造材料", RevokedOn: dt(c.cancel)}
				var evs []rules.Event
				if c.cancelFirst {
					f.derived(cancel)
					evs = f.derived(fail)
				} else {
					f.must(fail)
					evs = f.derived(cancel)
				}
				released := last[*subsidyv1.EntitlementReleased](evs)
				if later := max(c.failed, c.cancel); released == nil || day(released.GetReleasedOn()) != later {
					t.Errorf("the budget release is %v; want it released on %s", released, later)
				}
			})
		}
	})
	t.Run("fraud before its certificate", func(t *testing.T) {
		f := newFx(t, rules.DefaultRuleSet())
		e, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20")
		f.reject(&subsidyv1.FraudFound{FindingId: "f1", EntitlementId: e, OfficialId: "supervisor", Summary: "伪造材料", FoundOn: dt("2025-06-29")}, subsidyv1.ReasonCode_REASON_CODE_DATE_OUT_OF_ORDER)
	})
	t.Run("budget freed before its hold", func(t *testing.T) {
		// A fund with room for one: b waits for a's budget, which a's
		// revocation frees; the revocation, recorded after b's
		// certificate, is dated before it, and b's hold ends on the day
		// it began, not before.
		f := newFx(t, rules.DefaultRuleSet())
		beibei := roomForOne(f)
		a := beibei()
		f.certify(a, bdJ, "2025-06-20") // certificate 06-30
		b := beibei()
		evs := f.certify(b, bdJ, "2025-07-05") // certificate 07-15
		want(t, evs, "SubsidyEntitled", "EntitlementHeld:REASON_CODE_BUDGET_EXCEEDED")
		if got := day(evs[1].Payload.(*subsidyv1.EntitlementHeld).GetHeldOn()); got != "2025-07-15" {
			t.Errorf("the budget hold is held on %s; want 2025-07-15", got)
		}
		released := last[*subsidyv1.EntitlementReleased](f.derived(&subsidyv1.CertificateRevoked{CertificateId: fmt.Sprintf("cert-as-%s-%s-1", a[56:], bdJ), PersonKey: a, Qualification: bdJ.Proto(), Reason: "伪造材料", RevokedOn: dt("2025-07-01")}))
		if released == nil || day(released.GetReleasedOn()) != "2025-07-15" {
			t.Errorf("the budget release is %v; want it released on 2025-07-15", released)
		}
	})
	t.Run("recovery before its clawback", func(t *testing.T) {
		f := newFx(t, rules.DefaultRuleSet())
		e1, _ := f.entitled("ti-digital", bdJ, true, "2025-06-20") // reimburses ti-digital
		f.noticed(e1)
		f.paid(e1, "acct-digital")
		e2, _ := f.entitled("ti-digital", bdJ, true, "2025-06-20")
		f.noticed(e2)
		raised := last[*subsidyv1.ClawbackRaised](f.derived(&subsidyv1.FraudFound{FindingId: "fr", EntitlementId: e1, OfficialId: "supervisor", Summary: "伪造", FoundOn: dt("2025-08-01")}))
		if raised == nil || day(raised.GetRaisedOn()) != "2025-08-01" {
			t.Fatalf("the clawback is %v; want it raised on 2025-08-01", raised)
		}
		repay := func(on string) *subsidyv1.RepaymentReceived {
			return &subsidyv1.RepaymentReceived{RepaymentId: "rp-" + on, ClawbackId: raised.GetClawbackId(), AmountFen: 100, ReceivedOn: dt(on)}
		}
		f.reject(repay("2025-07-31"), subsidyv1.ReasonCode_REASON_CODE_DATE_OUT_OF_ORDER)
		f.derived(repay("2025-08-01"))
		if o := f.derived(request(e2, "2025-07-09"))[0].Payload.(*subsidyv1.PaymentOrdered); o.GetOffsetFen() != 0 {
			t.Errorf("a payment requested 2025-07-09 offsets %d fen of %v, raised 2025-08-01", o.GetOffsetFen(), o.GetOffsetClawbackIds())
		}
	})
	t.Run("settled after its cancellation", func(t *testing.T) {
		// A fraud found while the order was out, dated after the day the
		// money settled: receivable from the finding's day.
		f := newFx(t, rules.DefaultRuleSet())
		e, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20")
		f.noticed(e)
		o := f.derived(request(e, "2025-07-09"))[0].Payload.(*subsidyv1.PaymentOrdered)
		f.derived(&subsidyv1.FraudFound{FindingId: "fr", EntitlementId: e, OfficialId: "supervisor", Summary: "伪造", FoundOn: dt("2025-07-20")})
		raised := last[*subsidyv1.ClawbackRaised](f.derived(&subsidyv1.PaymentSettled{PaymentOrderId: o.PaymentOrderId, EntitlementId: e, AmountFen: o.NetFen, PaidToAccount: "trainee-account-token-1", SettledOn: dt("2025-07-10")}))
		if raised == nil || day(raised.GetRaisedOn()) != "2025-07-20" {
			t.Errorf("the clawback is %v; want it raised on 2025-07-20", raised)
		}
	})
	t.Run("the same day", func(t *testing.T) {
		f := newFx(t, rules.DefaultRuleSet())
		e, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20") // certificate 06-30
		f.must(hold(e, "h0", "2025-06-30"))
		f.must(lift(e, rules.SupervisorHold("h0"), "2025-06-30"))
		approved(f, e)
		f.must(objection(e, "o1", "2025-07-03"))
		f.must(resolved(e, "o1", true, "2025-07-08"))
		f.must(&subsidyv1.NoticeClosed{EntitlementId: e, ClosedOn: dt("2025-07-08")})
		f.must(lift(e, rules.ObjectionHold("o1"), "2025-07-08"))
		o := f.derived(request(e, "2025-07-08"))[0].Payload.(*subsidyv1.PaymentOrdered)
		f.must(&subsidyv1.PaymentFailed{PaymentOrderId: o.PaymentOrderId, EntitlementId: e, Failure: "退票", FailedOn: dt("2025-07-08")})
		f.must(hold(e, "h2", "2025-07-08"))
		f.must(lift(e, rules.SupervisorHold("h2"), "2025-07-08"))
		f.derived(request(e, "2025-07-08"))
	})
	t.Run("earlier behaviour", func(t *testing.T) {
		rs := rules.DefaultRuleSet()
		rs.Behaviour = rules.BehaviourLateObjection
		f := newFx(t, rs)
		e, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20")
		if h := f.derived(hold(e, "h1", "2025-06-19"))[0].Payload.(*subsidyv1.EntitlementHeld); h.GetHeldOn() != nil {
			t.Errorf("behaviour 3 dated its hold %s", day(h.GetHeldOn()))
		}
		if r := f.derived(lift(e, rules.SupervisorHold("h1"), "2025-06-18"))[0].Payload.(*subsidyv1.EntitlementReleased); r.GetReleasedOn() != nil {
			t.Errorf("behaviour 3 dated its release %s", day(r.GetReleasedOn()))
		}
		approved(f, e)
		f.derived(objection(e, "o1", "2025-07-03"))
		f.derived(resolved(e, "o1", false, "2025-07-10"))
		f.must(&subsidyv1.NoticeClosed{EntitlementId: e, ClosedOn: dt("2025-07-08")})
		o := f.derived(request(e, "2025-07-09"))[0].Payload.(*subsidyv1.PaymentOrdered)
		f.must(&subsidyv1.PaymentFailed{PaymentOrderId: o.PaymentOrderId, EntitlementId: e, Failure: "账户已销户", FailedOn: dt("2025-07-15")})
		f.derived(request(e, "2025-07-12"))
	})
}

// last returns the last of evs' payloads of type T (its zero value if
// none).
func last[T any](evs []rules.Event) T {
	var found T
	for _, ev := range evs {
		if m, ok := ev.Payload.(T); ok {
			found = m
		}
	}
	return found
}

// roomForOne allocates 北碚区 (cq-beibei) a 2025 budget for one big data
// junior subsidy and returns a maker of its trainees, insured and trained
// at ti-digital.
func roomForOne(f *fx) func() string {
	f.must(&subsidyv1.BudgetAllocated{AllocationId: "al", Year: 2025, UnitCode: "cq-beibei", AmountFen: 80000})
	return func() string {
		k := f.person(func(m *subsidyv1.TraineeRegistered) { m.UnitCode = "cq-beibei" })
		f.must(insured(k, "ev"+k[60:], "2020-01-01", "2025-01-01"))
		f.trained(k, "ti-digital", bdJ)
		return k
	}
}
