package rules_test

import (
	"testing"

	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// checkInvariants checks, over a whole log, what must hold for every
// history: at most one entitlement per (person, occupation, level); paid at
// most entitled, for every entitlement; recovered plus written off at most
// the receivable, for every clawback; event ids unique.
func checkInvariants(t testing.TB, log []stored) {
	t.Helper()
	type pq struct {
		person string
		occ    subsidyv1.Occupation
		lvl    subsidyv1.Level
	}
	ents := map[pq]string{}
	entitled := map[string]int64{}
	orders := map[string]*subsidyv1.PaymentOrdered{}
	paid := map[string]int64{}
	raised := map[string]int64{}
	recovered := map[string]int64{}
	writtenOff := map[string]int64{}
	ids := map[string]bool{}
	for _, s := range log {
		if id := s.ev.ID.String(); ids[id] {
			t.Errorf("event id %s stored twice", id)
		} else {
			ids[id] = true
		}
		switch m := s.ev.Payload.(type) {
		case *subsidyv1.SubsidyEntitled:
			k := pq{m.GetPersonKey(), m.GetQualification().GetOccupation(), m.GetQualification().GetLevel()}
			if prev, ok := ents[k]; ok {
				t.Errorf("two entitlements for %v: %s and %s", k, prev, m.GetEntitlementId())
			}
			ents[k] = m.GetEntitlementId()
			entitled[m.GetEntitlementId()] = m.GetAmountFen()
			if m.GetDecision().GetRuleSetVersion() == "" {
				t.Errorf("entitlement %s without rule-set version", m.GetEntitlementId())
			}
		case *subsidyv1.PaymentOrdered:
			orders[m.GetPaymentOrderId()] = m
			if m.GetNetFen() != m.GetAmountFen()-m.GetOffsetFen() || m.GetNetFen() < 0 {
				t.Errorf("order %s: net %d, amount %d, offset %d", m.GetPaymentOrderId(), m.GetNetFen(), m.GetAmountFen(), m.GetOffsetFen())
			}
		case *subsidyv1.PaymentSettled:
			o := orders[m.GetPaymentOrderId()]
			if o == nil {
				t.Errorf("settlement of unknown order %s", m.GetPaymentOrderId())
				continue
			}
			paid[o.GetEntitlementId()] += o.GetAmountFen()
			if paid[o.GetEntitlementId()] > entitled[o.GetEntitlementId()] {
				t.Errorf("entitlement %s: paid %d > entitled %d", o.GetEntitlementId(), paid[o.GetEntitlementId()], entitled[o.GetEntitlementId()])
			}
		case *subsidyv1.ClawbackRaised:
			if raised[m.GetClawbackId()] != 0 {
				t.Errorf("clawback %s raised twice", m.GetClawbackId())
			}
			raised[m.GetClawbackId()] = m.GetAmountFen()
		case *subsidyv1.ClawbackRecovered:
			// What recovers money written off reverses the write-off by as
			// much (rules behaviour 5), never more than was written off.
			recovered[m.GetClawbackId()] += m.GetAmountFen() - m.GetWrittenOffFen()
			writtenOff[m.GetClawbackId()] -= m.GetWrittenOffFen()
			if m.GetWrittenOffFen() < 0 || writtenOff[m.GetClawbackId()] < 0 {
				t.Errorf("clawback %s: recovery of %d fen written off, %d written off left", m.GetClawbackId(), m.GetWrittenOffFen(), writtenOff[m.GetClawbackId()])
			}
		case *subsidyv1.ClawbackWrittenOff:
			recovered[m.GetClawbackId()] += m.GetAmountFen()
			writtenOff[m.GetClawbackId()] += m.GetAmountFen()
		}
	}
	for id, n := range recovered {
		if n > raised[id] {
			t.Errorf("clawback %s: recovered and written off %d > raised %d", id, n, raised[id])
		}
	}
}
