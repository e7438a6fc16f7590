package rules

import (
	"strings"

	"github.com/cqhrss/subsidyledger/events/refdata"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// Dated holds (BehaviourDatedHolds). Decisions read the state when a fact
// arrives, and facts arrive in their own order: a lift may be recorded
// after its hold but dated before it, a payment request after a release
// but dated inside the hold. Each hold, release and clawback carries its
// day, and a fact whose day contradicts them is refused, so that the dated
// trail a supervisor reads does not show a payment requested inside a
// hold, a hold lifted before it began, a notice closed over an objection
// recorded before the close, or money recovered before it was receivable.
// One exception stays, as it happened: an objection raised during the
// notice but recorded only after its close (BehaviourLateObjection) holds
// the entitlement from the day it was raised, which may lie before the
// close, or before a payment request whose order then failed.

// datedHolds reports whether the rule set decides at BehaviourDatedHolds
// or later.
func (d *decider) datedHolds() bool { return d.w.rs.behaviour() >= BehaviourDatedHolds }

// day returns on for a hold's or release's date field: nil before
// BehaviourDatedHolds (the events an earlier release decided carried no
// date, and a log replays as it was decided) and for an undated fact.
func (d *decider) day(on refdata.Date) *subsidyv1.Date {
	if !d.datedHolds() || on.IsZero() {
		return nil
	}
	return on.Proto()
}

// requestDated refuses a payment request dated before the latest release
// of a hold on the entitlement (ENTITLEMENT_HELD) or before its last
// order's failure (PAYMENT_IN_FLIGHT): on that day it was held, or money
// was out.
func (d *decider) requestDated(e *entitlement, on refdata.Date) *Rejection {
	if !d.datedHolds() {
		return nil
	}
	if r := e.released; on < r.on {
		return reject(subsidyv1.ReasonCode_REASON_CODE_ENTITLEMENT_HELD, "requested %s, hold %s held entitlement %s until %s", on, r.hold, e.id, r.on)
	}
	if n := len(e.orders); n > 0 {
		if o := d.w.orders[e.orders[n-1]]; o != nil && o.state == orderFailed && on < o.resultOn {
			return reject(subsidyv1.ReasonCode_REASON_CODE_PAYMENT_IN_FLIGHT, "requested %s, payment order %s was out until its failure on %s", on, o.id, o.resultOn)
		}
	}
	return nil
}

// lastResult is the day of e's latest payment result (settlement or
// failure), zero if none.
func (w *World) lastResult(e *entitlement) refdata.Date {
	var last refdata.Date
	for _, id := range e.orders {
		if o := w.orders[id]; o != nil && o.state != orderInFlight {
			last = max(last, o.resultOn)
		}
	}
	return last
}

// liftDated refuses a lift dated before its hold was placed, or before the
// resolution of the upheld objection whose hold it lifts
// (DATE_OUT_OF_ORDER). A hold decided before BehaviourDatedHolds has no
// day, and only the resolution is checked.
func (d *decider) liftDated(h hold, on refdata.Date) *Rejection {
	if !d.datedHolds() {
		return nil
	}
	if h.reason == subsidyv1.ReasonCode_REASON_CODE_OBJECTION_PENDING {
		if o := d.w.objections[strings.TrimPrefix(h.id, "objection/")]; o != nil {
			if r := dateOrder("lift", on, "resolution of objection "+o.id, o.resolvedOn); r != nil {
				return r
			}
		}
	}
	return dateOrder("lift", on, "hold "+h.id, h.placedOn)
}
