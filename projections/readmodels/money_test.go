package readmodels_test

import (
	"fmt"
	"testing"

	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/projections/fund"
	"github.com/cqhrss/subsidyledger/projections/internal/fold"
	"github.com/cqhrss/subsidyledger/projections/scorecard"
	"github.com/cqhrss/subsidyledger/projections/trainee"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// clawedBack decides, with the rules, a trainee of ti-digital whose
// institution advanced the fee, entitled to 80,000 fen, paid, then found
// to be a fraud: a clawback of 80,000 fen against ti-digital. It returns
// the trainee's person key and the clawback's id.
func clawedBack(r *fold.Rules) (k, cb string) {
	q := r.Reference()
	d := fold.Date
	k = fmt.Sprintf("%064x", 11)
	r.Assessed(k, q, true)
	r.Decide(&pb.CertificateIssued{CertificateId: "cert-1", PersonKey: k, EvaluationInstitutionId: "ev-cqpe", Qualification: q.Proto(), AssessmentId: "as-1", IssuedOn: d("2025-06-10")})
	e := rules.EntitlementID(k, q)
	r.Decide(&pb.EntitlementConfirmed{EntitlementId: e, OfficialId: "maker", ConfirmedOn: d("2025-06-20")})
	r.Decide(&pb.EntitlementApproved{EntitlementId: e, OfficialId: "checker", ApprovedOn: d("2025-06-21")})
	r.Decide(&pb.NoticeClosed{EntitlementId: e, ClosedOn: d("2025-07-10")})
	o := r.Decide(&pb.PaymentRequested{EntitlementId: e, OfficialId: "maker", RequestedOn: d("2025-07-11")})[0].Payload.(*pb.PaymentOrdered)
	r.Decide(&pb.PaymentSettled{PaymentOrderId: o.PaymentOrderId, EntitlementId: e, AmountFen: o.NetFen, PaidToAccount: "acct-digital", SettledOn: d("2025-07-12")})
	r.Decide(&pb.FraudFound{FindingId: "fr-1", EntitlementId: e, OfficialId: "sup", FoundOn: d("2025-07-20")})
	return k, rules.ClawbackID(e)
}

// TestRepaymentAfterWriteOff: a repayment received after the receivable
// was written off (rules behaviour 5) reverses the write-off by what it
// recovers of it, and the trainee status, the institution's scorecard and
// the fund ledger all show what the rules hold: recovered up, written off
// down, nothing outstanding; debits equal credits.
func TestRepaymentAfterWriteOff(t *testing.T) {
	r := fold.NewRules(t)
	k, cb := clawedBack(r)
	r.Decide(&pb.RepaymentReceived{RepaymentId: "rp-1", ClawbackId: cb, AmountFen: 30000, ReceivedOn: fold.Date("2025-08-01")})
	r.Decide(&pb.WriteOffRequested{ClawbackId: cb, AmountFen: 50000, Reason: "机构已注销", OfficialId: "a"})
	r.Decide(&pb.ClawbackWrittenOff{ClawbackId: cb, AmountFen: 50000, Reason: "机构已注销", RequestedBy: "a", ApprovedBy: "b"})
	rec := r.Decide(&pb.RepaymentReceived{RepaymentId: "rp-2", ClawbackId: cb, AmountFen: 20000, ReceivedOn: fold.Date("2025-09-01")})
	if got := rec[0].Payload.(*pb.ClawbackRecovered); got.GetWrittenOffFen() != 20000 {
		t.Fatalf("recovery %v; want 20,000 fen of it written off", got)
	}
	c, _ := r.W.Clawback(cb)
	if c.RecoveredFen != 50000 || c.WrittenOffFen != 30000 || c.OutstandingFen != 0 {
		t.Fatalf("rules: clawback %+v; want 50,000 recovered, 30,000 written off", c)
	}

	tr, sc, fu := trainee.New(), scorecard.New(), fund.New()
	fold.ApplyAll(t, tr, r.Events)
	fold.ApplyAll(t, sc, r.Events)
	fold.ApplyAll(t, fu, r.Events)

	st, _ := tr.Get(k)
	if len(st.Entitlements) != 1 || st.Entitlements[0].Clawback == nil {
		t.Fatalf("trainee status %+v", st)
	}
	if v := st.Entitlements[0].Clawback; v.RecoveredFen != c.RecoveredFen || v.WrittenOffFen != c.WrittenOffFen || v.OutstandingFen != 0 {
		t.Errorf("trainee status: clawback %+v; want the rules' %+v", v, c)
	}
	card, _ := sc.Get("ti-digital")
	if v := card.Clawbacks; v.RaisedFen != 80000 || v.RecoveredFen != c.RecoveredFen || v.WrittenOffFen != c.WrittenOffFen || v.OutstandingFen != 0 {
		t.Errorf("scorecard: clawbacks %+v; want the rules' %+v", v, c)
	}
	if err := fu.Check(); err != nil {
		t.Error(err)
	}
	l := fu.Ledger(fund.Filter{View: "recorded"})
	if len(l.Years) != 1 {
		t.Fatalf("fund ledger %+v", l)
	}
	if b := l.Years[0].Balances; b.ClawedBack != 80000 || b.Recovered != c.RecoveredFen || b.WrittenOff != c.WrittenOffFen || b.ClawbackReceivable != 0 {
		t.Errorf("fund: balances %+v; want the rules' %+v", b, c)
	}
}
