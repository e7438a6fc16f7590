package rules

import (
	"fmt"
	"strings"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// Rule 12: confirmation (maker), approval (checker), public notice,
// objections; supervisor holds.

func (d *decider) entitlementFor(id string) (*entitlement, *Rejection) {
	e, r := d.entitlementOf(id)
	if r != nil {
		return nil, r
	}
	d.stream = TraineeStream(e.person)
	return e, nil
}

func notCancelled(e *entitlement) *Rejection {
	if e.cancelled != "" {
		return reject(subsidyv1.ReasonCode_REASON_CODE_WRONG_STATE, "entitlement %s is cancelled (%s)", e.id, e.cancelled)
	}
	return nil
}

func (d *decider) entitlementConfirmed(m *subsidyv1.EntitlementConfirmed) *Rejection {
	e, r := d.entitlementFor(m.GetEntitlementId())
	if r != nil {
		return r
	}
	if r := notCancelled(e); r != nil {
		return r
	}
	return dateOrder("confirmation", date(m.GetConfirmedOn()), "certificate", e.issuedOn)
}

func (d *decider) entitlementApproved(m *subsidyv1.EntitlementApproved) *Rejection {
	e, r := d.entitlementFor(m.GetEntitlementId())
	if r != nil {
		return r
	}
	if r := notCancelled(e); r != nil {
		return r
	}
	if e.confirmedBy == "" {
		return reject(subsidyv1.ReasonCode_REASON_CODE_NOT_CONFIRMED, "entitlement %s is not confirmed", e.id)
	}
	if sameOfficial(m.GetOfficialId(), e.confirmedBy) {
		return reject(subsidyv1.ReasonCode_REASON_CODE_CHECKER_IS_MAKER, "official %q confirmed entitlement %s and may not approve it", e.confirmedBy, e.id)
	}
	on := date(m.GetApprovedOn())
	if r := dateOrder("approval", on, "confirmation", e.confirmedOn); r != nil {
		return r
	}
	n := d.w.rs.NoticeWorkingDays
	start, end := d.w.cal.window(on, n)
	calendar := "rule set " + d.w.rs.Version + " calendar"
	if !d.w.rs.CalendarCovers(end) {
		// Said in the decision, so that an auditor sees which windows may
		// have counted an unlisted holiday as a working day.
		calendar += fmt.Sprintf("; it lists no holidays after %d, so %d counted weekends only", d.w.rs.CalendarThrough, end.Year())
	}
	d.emit(noticeID(e.id), &subsidyv1.NoticeOpened{
		EntitlementId: e.id,
		StartsOn:      start.Proto(),
		EndsOn:        end.Proto(),
		WorkingDays:   int32(n),
		Decision: d.decision([]events.ID{e.eventID, e.confirmEventID},
			check(subsidyv1.ReasonCode_REASON_CODE_CHECKER_IS_MAKER, true, "maker %q, checker %q", e.confirmedBy, m.GetOfficialId()),
			check(subsidyv1.ReasonCode_REASON_CODE_NOTICE_NOT_ELAPSED, true, "approved %s: %d working days %s..%s (%s)", on, n, start, end, calendar)),
	})
	return nil
}

func (d *decider) objectionRaised(m *subsidyv1.ObjectionRaised) *Rejection {
	e, r := d.entitlementFor(m.GetEntitlementId())
	if r != nil {
		return r
	}
	on := date(m.GetRaisedOn())
	// An objection raised during the notice holds the entitlement (DOMAIN
	// §4.12) even when it is recorded after the notice was closed
	// (BehaviourLateObjection; before it, the close refused it and the
	// entitlement could be paid), unless money has moved already: then
	// the objection is recorded refused, saying why, for supervisors.
	late := !e.noticeClosed.IsZero()
	switch {
	case e.noticeStart.IsZero():
		return reject(subsidyv1.ReasonCode_REASON_CODE_OUTSIDE_NOTICE_WINDOW, "entitlement %s has no notice open", e.id)
	case on < e.noticeStart || on > e.noticeEnd || late && d.w.rs.behaviour() < BehaviourLateObjection:
		return reject(subsidyv1.ReasonCode_REASON_CODE_OUTSIDE_NOTICE_WINDOW, "raised %s, notice %s..%s", on, e.noticeStart, e.noticeEnd)
	case late && (e.paid > 0 || d.w.settled(e)):
		return reject(subsidyv1.ReasonCode_REASON_CODE_ALREADY_PAID, "objection raised %s during the notice %s..%s, recorded after entitlement %s was paid", on, e.noticeStart, e.noticeEnd, e.id)
	case late && e.inFlight != "":
		return reject(subsidyv1.ReasonCode_REASON_CODE_PAYMENT_IN_FLIGHT, "objection raised %s during the notice %s..%s, recorded with payment order %s out", on, e.noticeStart, e.noticeEnd, e.inFlight)
	}
	h := ObjectionHold(m.GetObjectionId())
	d.emit(holdEventID(e.id, h), &subsidyv1.EntitlementHeld{
		EntitlementId: e.id,
		Reason:        subsidyv1.ReasonCode_REASON_CODE_OBJECTION_PENDING,
		Detail:        fmt.Sprintf("objection %s raised %s during the notice %s..%s", m.GetObjectionId(), on, e.noticeStart, e.noticeEnd),
		HoldId:        h,
		HeldOn:        d.day(on),
		Decision: d.decision([]events.ID{e.eventID, e.noticeEventID},
			check(subsidyv1.ReasonCode_REASON_CODE_OBJECTION_PENDING, false, "objection %s pending", m.GetObjectionId())),
	})
	return nil
}

func (d *decider) objectionResolved(m *subsidyv1.ObjectionResolved) *Rejection {
	o := d.w.objections[m.GetObjectionId()]
	if o == nil || o.entitlement != m.GetEntitlementId() {
		return reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_OBJECTION, "no objection %q to entitlement %q", m.GetObjectionId(), m.GetEntitlementId())
	}
	e, r := d.entitlementFor(o.entitlement)
	if r != nil {
		return r
	}
	on := date(m.GetResolvedOn())
	if r := dateOrder("resolution", on, "objection", o.raisedOn); r != nil {
		return r
	}
	if m.GetUpheld() {
		return nil // the hold stays; a supervisor lifts it (HoldLifted) or finds fraud
	}
	h := ObjectionHold(o.id)
	placed, held := e.hold(h)
	if !held {
		return nil
	}
	d.emit(releaseEventID(e.id, h), &subsidyv1.EntitlementReleased{
		EntitlementId: e.id,
		Reason:        subsidyv1.ReasonCode_REASON_CODE_OBJECTION_PENDING,
		OfficialId:    m.GetOfficialId(),
		HoldId:        h,
		ReleasedOn:    d.day(on),
		Decision: d.decision([]events.ID{o.eventID, placed.eventID},
			check(subsidyv1.ReasonCode_REASON_CODE_OBJECTION_PENDING, true, "objection %s not upheld", o.id)),
	})
	return nil
}

// pendingObjections returns the entitlement's unresolved objections.
func (w *World) pendingObjections(e *entitlement) []string {
	var out []string
	for _, id := range e.objections {
		if o := w.objections[id]; o != nil && !o.resolved {
			out = append(out, id)
		}
	}
	return out
}

func (d *decider) noticeClosed(m *subsidyv1.NoticeClosed) *Rejection {
	e, r := d.entitlementFor(m.GetEntitlementId())
	if r != nil {
		return r
	}
	if r := notCancelled(e); r != nil {
		return r
	}
	on := date(m.GetClosedOn())
	switch {
	case e.noticeEnd.IsZero():
		return reject(subsidyv1.ReasonCode_REASON_CODE_NOT_APPROVED, "entitlement %s is not approved: no notice to close", e.id)
	case on <= e.noticeEnd:
		return reject(subsidyv1.ReasonCode_REASON_CODE_NOTICE_NOT_ELAPSED, "closed %s, notice runs until %s", on, e.noticeEnd)
	}
	if p := d.w.pendingObjections(e); len(p) > 0 {
		return reject(subsidyv1.ReasonCode_REASON_CODE_OBJECTION_PENDING, "objections pending: %s", strings.Join(p, ", "))
	}
	if d.datedHolds() {
		// Not closed on a day an objection was still pending: the dated
		// trail would show a notice closed over an open objection.
		for _, id := range e.objections {
			if o := d.w.objections[id]; o != nil && o.resolvedOn > on {
				return reject(subsidyv1.ReasonCode_REASON_CODE_OBJECTION_PENDING, "closed %s, objection %s (raised %s) was pending until its resolution on %s", on, o.id, o.raisedOn, o.resolvedOn)
			}
		}
	}
	return nil
}

func (d *decider) holdPlaced(m *subsidyv1.HoldPlaced) *Rejection {
	e, r := d.entitlementFor(m.GetEntitlementId())
	if r != nil {
		return r
	}
	if r := notCancelled(e); r != nil {
		return r
	}
	if e.paid > 0 {
		return reject(subsidyv1.ReasonCode_REASON_CODE_ALREADY_PAID, "entitlement %s is paid: find fraud to claw it back", e.id)
	}
	on := date(m.GetPlacedOn())
	if d.datedHolds() {
		// A hold stops no money already out (as an objection recorded
		// late, BehaviourLateObjection): refused saying so, as one on a
		// paid entitlement is (a 0-fen one included).
		switch {
		case d.w.settled(e):
			return reject(subsidyv1.ReasonCode_REASON_CODE_ALREADY_PAID, "entitlement %s is paid: find fraud to claw it back", e.id)
		case e.inFlight != "":
			return reject(subsidyv1.ReasonCode_REASON_CODE_PAYMENT_IN_FLIGHT, "payment order %s is out: a hold cannot stop it (if it fails, hold the entitlement then; find fraud to claw money back)", e.inFlight)
		}
		// Not before the certificate, nor before the last payment request
		// (in flight or failed): the request would then lie inside it.
		if r := dateOrder("hold", on, "certificate", e.issuedOn); r != nil {
			return r
		}
		if r := dateOrder("hold", on, "payment request", e.requestedOn); r != nil {
			return r
		}
	}
	h := SupervisorHold(m.GetHoldId())
	d.emit(holdEventID(e.id, h), &subsidyv1.EntitlementHeld{
		EntitlementId: e.id,
		Reason:        subsidyv1.ReasonCode_REASON_CODE_SUPERVISOR_HOLD,
		Detail:        fmt.Sprintf("hold %s by %s on %s: %s", m.GetHoldId(), m.GetOfficialId(), on, m.GetReason()),
		HoldId:        h,
		HeldOn:        d.day(on),
		Decision:      d.decision([]events.ID{e.eventID}, check(subsidyv1.ReasonCode_REASON_CODE_SUPERVISOR_HOLD, false, "placed by %s", m.GetOfficialId())),
	})
	return nil
}

func (d *decider) holdLifted(m *subsidyv1.HoldLifted) *Rejection {
	e, r := d.entitlementFor(m.GetEntitlementId())
	if r != nil {
		return r
	}
	h := m.GetHoldId()
	placed, held := e.hold(h)
	if !held {
		return reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_HOLD, "entitlement %s has no hold %q (holds: %s)", e.id, h, strings.Join(e.holdIDs(), ", "))
	}
	reason := placed.reason
	switch reason {
	case subsidyv1.ReasonCode_REASON_CODE_BUDGET_EXCEEDED:
		return reject(subsidyv1.ReasonCode_REASON_CODE_HOLD_NOT_LIFTABLE, "budget holds are released by allocations, in order")
	case subsidyv1.ReasonCode_REASON_CODE_CERTIFICATE_REVOKED, subsidyv1.ReasonCode_REASON_CODE_FRAUD_FINDING:
		return reject(subsidyv1.ReasonCode_REASON_CODE_HOLD_NOT_LIFTABLE, "hold %s cancels the entitlement for good", h)
	case subsidyv1.ReasonCode_REASON_CODE_OBJECTION_PENDING:
		if o := d.w.objections[strings.TrimPrefix(h, "objection/")]; o != nil && !o.resolved {
			return reject(subsidyv1.ReasonCode_REASON_CODE_HOLD_NOT_LIFTABLE, "objection %s is not resolved", o.id)
		}
	}
	on := date(m.GetLiftedOn())
	if r := d.liftDated(placed, on); r != nil {
		return r
	}
	d.emit(releaseEventID(e.id, h), &subsidyv1.EntitlementReleased{
		EntitlementId: e.id,
		Reason:        reason,
		OfficialId:    m.GetOfficialId(),
		HoldId:        h,
		ReleasedOn:    d.day(on),
		Decision: d.decision([]events.ID{placed.eventID},
			check(reason, true, "lifted by %s on %s: %s", m.GetOfficialId(), on, m.GetNote())),
	})
	return nil
}

// cancel ends an entitlement for a revoked certificate or a fraud finding
// (rule 14) on day on: a final hold; a clawback of what was paid; and, if
// no money moved, its budget freed for entitlements waiting in its fund.
func (d *decider) cancel(e *entitlement, reason subsidyv1.ReasonCode, hold string, cause subsidyv1.ClawbackCause, on refdata.Date, evidence ...events.ID) {
	if e.cancelled != "" {
		return
	}
	detail := fmt.Sprintf("%s: entitlement cancelled", hold)
	d.emit(holdEventID(e.id, hold), &subsidyv1.EntitlementHeld{
		EntitlementId: e.id,
		Reason:        reason,
		Detail:        detail,
		HoldId:        hold,
		HeldOn:        d.day(on),
		Decision:      d.decision(append([]events.ID{e.eventID}, evidence...), check(reason, false, "%s", detail)),
	})
	// What it frees or claws back is its money's, so no earlier than its
	// orders' results (a cancellation recorded after them may be dated
	// before).
	after := max(on, d.w.lastResult(e))
	switch {
	case e.paid > 0 && e.clawback == "":
		d.raiseClawback(e, e.paid, cause, after, evidence...)
	case e.paid == 0 && e.inFlight == "":
		// Frees e.counted (0 if it was itself waiting for budget) and lets
		// the entitlements queued behind it move up.
		d.releaseQueued(fundKey{e.year, e.unit}, 0, e.counted, e.id, after)
	}
	// In flight: the clawback is raised when the payment settles.
}

// raiseClawback raises a receivable of amount against e's payee, arisen on
// day on.
func (d *decider) raiseClawback(e *entitlement, amount int64, cause subsidyv1.ClawbackCause, on refdata.Date, evidence ...events.ID) {
	id := ClawbackID(e.id)
	d.emit(mustParse(id), &subsidyv1.ClawbackRaised{
		ClawbackId:    id,
		EntitlementId: e.id,
		Payee:         e.payee.proto(),
		AmountFen:     amount,
		Cause:         cause,
		RaisedOn:      d.day(on),
		Decision: d.decision(append([]events.ID{e.eventID}, evidence...),
			check(causeReason(cause), false, "%d fen paid to %s is receivable", amount, payeeString(e.payee))),
	})
}

func causeReason(c subsidyv1.ClawbackCause) subsidyv1.ReasonCode {
	if c == subsidyv1.ClawbackCause_CLAWBACK_CAUSE_FRAUD {
		return subsidyv1.ReasonCode_REASON_CODE_FRAUD_FINDING
	}
	return subsidyv1.ReasonCode_REASON_CODE_CERTIFICATE_REVOKED
}

func payeeString(p payee) string {
	if p.kind == subsidyv1.PayeeKind_PAYEE_KIND_INSTITUTION {
		return "institution " + p.inst
	}
	return "the trainee"
}

func (d *decider) certificateRevoked(m *subsidyv1.CertificateRevoked) *Rejection {
	d.stream = TraineeStream(m.GetPersonKey())
	if _, r := d.traineeOf(m.GetPersonKey()); r != nil {
		return r
	}
	c := d.w.certificates[m.GetCertificateId()]
	if c == nil || c.person != m.GetPersonKey() {
		return reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_CERTIFICATE, "no certificate %q of this person", m.GetCertificateId())
	}
	if q := refdata.QualificationOf(m.GetQualification()); q != c.q {
		return reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_QUALIFICATION, "certificate %q is for %s, not %s", c.id, c.q, q)
	}
	on := date(m.GetRevokedOn())
	if r := dateOrder("revocation", on, "certificate", c.issuedOn); r != nil {
		return r
	}
	if e := d.w.entitlements[c.entitlement]; e != nil {
		d.cancel(e, subsidyv1.ReasonCode_REASON_CODE_CERTIFICATE_REVOKED, RevokedHold(c.id), subsidyv1.ClawbackCause_CLAWBACK_CAUSE_CERTIFICATE_REVOKED, on, c.eventID)
	}
	return nil
}

func (d *decider) fraudFound(m *subsidyv1.FraudFound) *Rejection {
	e, r := d.entitlementFor(m.GetEntitlementId())
	if r != nil {
		return r
	}
	on := date(m.GetFoundOn())
	if d.datedHolds() {
		if r := dateOrder("fraud finding", on, "certificate", e.issuedOn); r != nil {
			return r
		}
	}
	d.cancel(e, subsidyv1.ReasonCode_REASON_CODE_FRAUD_FINDING, FraudHold(m.GetFindingId()), subsidyv1.ClawbackCause_CLAWBACK_CAUSE_FRAUD, on)
	return nil
}

// sameOfficial reports whether two official ids name one official: ids
// differing only in case do (rules 2026.5: before, "yz-1" could approve
// what "YZ-1" confirmed). facts.Validate refuses invisible characters in
// them.
func sameOfficial(a, b string) bool { return strings.EqualFold(a, b) }
