package fund_test

import (
	"fmt"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/fund"
	"github.com/cqhrss/subsidyledger/projections/internal/fold"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"google.golang.org/protobuf/proto"
)

// feed applies payloads to m in order, as the log would, and checks the
// ledger's identities after each.
type feed struct {
	t   *testing.T
	m   *fund.Model
	log *fold.Log
}

func newFeed(t *testing.T) *feed {
	m := fund.New()
	return &feed{t: t, m: m, log: &fold.Log{T: t, P: m, After: m.Check}}
}

func (f *feed) apply(msgs ...proto.Message) {
	f.t.Helper()
	f.log.Apply(msgs...)
}

func (f *feed) balances() fund.Balances {
	f.t.Helper()
	l := f.m.Ledger(fund.Filter{View: "recorded"})
	if len(l.Years) != 1 {
		f.t.Fatalf("ledger has %d years; want 1", len(l.Years))
	}
	return l.Years[0].Balances
}

// entitle returns the events up to an order in flight for an entitlement
// of amount fen, in a fund allocated 100,000 fen.
func entitle(amount int64) (string, []proto.Message) {
	k := fmt.Sprintf("%064x", 7)
	q := refdata.Qualification{Occupation: pb.Occupation_OCCUPATION_BIG_DATA, Level: pb.Level_LEVEL_JUNIOR}
	id := rules.EntitlementID(k, q)
	return id, []proto.Message{
		&pb.BudgetAllocated{AllocationId: "al", Year: 2025, UnitCode: "cq-yuzhong", AmountFen: 100000},
		&pb.SubsidyEntitled{EntitlementId: id, PersonKey: k, Qualification: q.Proto(), CertificateId: "c", AmountFen: amount,
			Payee: &pb.Payee{Kind: pb.PayeeKind_PAYEE_KIND_TRAINEE}, Year: 2025, UnitCode: "cq-yuzhong"},
		&pb.NoticeClosed{EntitlementId: id},
		&pb.PaymentOrdered{PaymentOrderId: "po-1", EntitlementId: id, Attempt: 1, AmountFen: amount, NetFen: amount},
	}
}

// TestZeroFenSettlement: a fee of 0 is valid, so a 0-fen entitlement is
// ordered and settled; its settlement posts nothing and the ledger keeps
// running (it used to stop the projection for good).
func TestZeroFenSettlement(t *testing.T) {
	f := newFeed(t)
	id, evs := entitle(0)
	f.apply(evs...)
	before := f.m.Journal(fund.JournalSize, "")
	f.apply(&pb.PaymentSettled{PaymentOrderId: "po-1", EntitlementId: id, AmountFen: 0})
	if after := f.m.Journal(fund.JournalSize, ""); len(after) != len(before) {
		t.Errorf("a 0-fen settlement posted %d entries; want none", len(after)-len(before))
	}
	want := fund.Balances{Appropriation: 100000, BudgetAvailable: 100000}
	if b := f.balances(); b != want {
		t.Errorf("balances = %+v; want %+v", b, want)
	}
	// The order is no longer in flight: a second settlement is an error.
	f.log.Pos++
	err := f.m.Apply(&projections.Event{Position: f.log.Pos, Type: "subsidy.v1.PaymentSettled", Payload: &pb.PaymentSettled{PaymentOrderId: "po-1", EntitlementId: id}})
	if err == nil {
		t.Errorf("Apply(second PaymentSettled) = nil; want an error (no order in flight)")
	}
}

// TestCancelledWithOrderInFlight: an entitlement cancelled (certificate
// revoked) while its payment order is in flight stays payable, as the rules
// keep it committed, until the order's result: settled, it is paid (and the
// rules raise a clawback); failed, the commitment is released.
func TestCancelledWithOrderInFlight(t *testing.T) {
	revoked := func(id string) *pb.EntitlementHeld {
		return &pb.EntitlementHeld{EntitlementId: id, HoldId: "revoked", Reason: pb.ReasonCode_REASON_CODE_CERTIFICATE_REVOKED}
	}
	inFlight := fund.Balances{Appropriation: 100000, BudgetAvailable: 20000, Payable: 80000}
	// cancelled returns a feed with an entitlement cancelled while its
	// order is in flight, checked still payable.
	cancelled := func(t *testing.T) (*feed, string) {
		t.Helper()
		f := newFeed(t)
		id, evs := entitle(80000)
		f.apply(evs...)
		f.apply(revoked(id))
		if b := f.balances(); b != inFlight {
			t.Fatalf("cancelled, order in flight: balances = %+v; want %+v", b, inFlight)
		}
		return f, id
	}
	t.Run("settled", func(t *testing.T) {
		f, id := cancelled(t)
		f.apply(&pb.PaymentSettled{PaymentOrderId: "po-1", EntitlementId: id, AmountFen: 80000},
			&pb.ClawbackRaised{ClawbackId: events.DeriveID("clawback", id).String(), EntitlementId: id, AmountFen: 80000,
				Payee: &pb.Payee{Kind: pb.PayeeKind_PAYEE_KIND_TRAINEE}})
		want := fund.Balances{Appropriation: 100000, BudgetAvailable: 20000, Paid: 80000, ClawedBack: 80000, ClawbackReceivable: 80000}
		if b := f.balances(); b != want {
			t.Errorf("settled and clawed back: balances = %+v; want %+v", b, want)
		}
	})
	t.Run("failed", func(t *testing.T) {
		f, id := cancelled(t)
		f.apply(&pb.PaymentFailed{PaymentOrderId: "po-1", EntitlementId: id, Failure: "account closed"})
		want := fund.Balances{Appropriation: 100000, BudgetAvailable: 100000}
		if b := f.balances(); b != want {
			t.Errorf("failed: balances = %+v; want %+v", b, want)
		}
	})
}

// TestSuccessorSeesPredecessorsFunds: filtered by a unit, the recorded view
// keeps the funds of the units it succeeded too (两江新区: 江北区, 渝北区),
// each under its recorded code; the current view rolls them into it.
func TestSuccessorSeesPredecessorsFunds(t *testing.T) {
	f := newFeed(t)
	for _, u := range []string{"cq-jiangbei", "cq-yubei", "cq-liangjiang", "cq-yuzhong"} {
		f.apply(&pb.BudgetAllocated{AllocationId: "al-" + u, Year: 2025, UnitCode: u, AmountFen: 1000})
	}
	units := func(l fund.Ledger) (out []string) {
		for _, r := range l.Funds {
			out = append(out, r.UnitCode)
		}
		return out
	}
	if got := units(f.m.Ledger(fund.Filter{View: "recorded", Unit: "cq-liangjiang"})); fmt.Sprint(got) != "[cq-jiangbei cq-liangjiang cq-yubei]" {
		t.Errorf("recorded view of cq-liangjiang: funds of %v", got)
	}
	if got := units(f.m.Ledger(fund.Filter{View: "recorded", Unit: "cq-jiangbei"})); fmt.Sprint(got) != "[cq-jiangbei]" {
		t.Errorf("recorded view of cq-jiangbei: funds of %v", got)
	}
	l := f.m.Ledger(fund.Filter{View: "current", Unit: "cq-liangjiang"})
	if got := units(l); fmt.Sprint(got) != "[cq-liangjiang]" || l.Funds[0].Balances.Appropriation != 3000 {
		t.Errorf("current view of cq-liangjiang: funds of %v, %+v", got, l.Funds)
	}
}
