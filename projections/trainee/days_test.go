package trainee_test

import (
	"testing"

	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/projections/internal/fold"
	"github.com/cqhrss/subsidyledger/projections/trainee"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// TestDecisionDays: a hold shows the days it took effect and ended, and a
// clawback the day it arose, as the rules decided them (held_on,
// released_on, raised_on: rules behaviour 4), beside their positions; a
// hold decided before has none; a snapshot keeps them.
func TestDecisionDays(t *testing.T) {
	m, apply, k, id := entitled(t, 80000)
	apply(
		&pb.EntitlementHeld{EntitlementId: id, Reason: pb.ReasonCode_REASON_CODE_BUDGET_EXCEEDED, HoldId: rules.HoldBudget},
		&pb.EntitlementHeld{EntitlementId: id, Reason: pb.ReasonCode_REASON_CODE_SUPERVISOR_HOLD, HoldId: rules.SupervisorHold("h1"), HeldOn: fold.Date("2025-07-02")},
		&pb.EntitlementReleased{EntitlementId: id, Reason: pb.ReasonCode_REASON_CODE_SUPERVISOR_HOLD, HoldId: rules.SupervisorHold("h1"), ReleasedOn: fold.Date("2025-07-12")},
		&pb.ClawbackRaised{ClawbackId: rules.ClawbackID(id), EntitlementId: id, AmountFen: 80000, Cause: pb.ClawbackCause_CLAWBACK_CAUSE_FRAUD, RaisedOn: fold.Date("2025-08-01")},
	)
	want := []trainee.Hold{
		{HoldID: rules.HoldBudget, Active: true},
		{HoldID: rules.SupervisorHold("h1"), HeldOn: "2025-07-02", ReleasedOn: "2025-07-12"},
	}
	check := func(what string, m *trainee.Model) {
		t.Helper()
		st, ok := m.Get(k)
		if !ok || len(st.Entitlements) != 1 || len(st.Entitlements[0].Holds) != len(want) {
			t.Fatalf("%s: status %v %+v", what, ok, st)
		}
		if c := st.Entitlements[0].Clawback; c == nil || c.RaisedOn != "2025-08-01" {
			t.Errorf("%s: clawback %+v; want it raised on 2025-08-01", what, c)
		}
		for i, h := range st.Entitlements[0].Holds {
			if h.HoldID != want[i].HoldID || h.Active != want[i].Active || h.HeldOn != want[i].HeldOn || h.ReleasedOn != want[i].ReleasedOn {
				t.Errorf("%s: hold %d is %+v; want %s active %t held %q released %q", what, i, h, want[i].HoldID, want[i].Active, want[i].HeldOn, want[i].ReleasedOn)
			}
		}
	}
	check("live", m)
	restored := roundTrip(t, m)
	check("restored", restored)
}
