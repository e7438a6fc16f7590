package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/facts"
	"github.com/cqhrss/subsidyledger/events/person"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// Rule 13 (payment) and rule 14 (recovery of clawbacks).

func (d *decider) paymentRequested(m *subsidyv1.PaymentRequested) *Rejection {
	e, r := d.entitlementFor(m.GetEntitlementId())
	if r != nil {
		return r
	}
	switch {
	case e.paid > 0 || d.w.settled(e): // settled: a 0-fen entitlement (a fee of 0) is paid too
		return reject(subsidyv1.ReasonCode_REASON_CODE_ALREADY_PAID, "entitlement %s was paid %d fen", e.id, e.paid)
	case e.inFlight != "":
		return reject(subsidyv1.ReasonCode_REASON_CODE_PAYMENT_IN_FLIGHT, "payment order %s awaits its result", e.inFlight)
	case e.confirmedBy == "" || e.approvedBy == "":
		return reject(subsidyv1.ReasonCode_REASON_CODE_PAYMENT_NOT_APPROVED, "entitlement %s is not confirmed and approved", e.id)
	case e.noticeClosed.IsZero():
		return reject(subsidyv1.ReasonCode_REASON_CODE_NOTICE_NOT_ELAPSED, "the notice of entitlement %s (until %s) is not closed", e.id, e.noticeEnd)
	case len(e.holds) > 0:
		return reject(subsidyv1.ReasonCode_REASON_CODE_ENTITLEMENT_HELD, "entitlement %s is held: %s", e.id, strings.Join(e.holdIDs(), ", "))
	}
	// No money to a suspended or blacklisted institution (rules 2026.1):
	// a reimbursement waits until it is reinstated, or a fraud finding
	// cancels it.
	if e.payee.kind == subsidyv1.PayeeKind_PAYEE_KIND_INSTITUTION {
		if in := d.w.institutions[e.payee.inst]; in != nil && in.suspended {
			what := "suspended"
			if in.blacklisted {
				what = "blacklisted"
			}
			return reject(subsidyv1.ReasonCode_REASON_CODE_INSTITUTION_SUSPENDED, "the payee institution %s is %s", in.id, what)
		}
	}
	on := date(m.GetRequestedOn())
	if r := dateOrder("payment request", on, "notice close", e.noticeClosed); r != nil {
		return r
	}
	if r := d.requestDated(e, on); r != nil {
		return r
	}
	due := e.amount - e.paid
	attempt := uint32(len(e.orders)) + 1
	id := PaymentOrderID(e.id, attempt)
	evidence := []events.ID{e.eventID, e.confirmEventID, e.approveEventID, e.noticeEventID, e.closeEventID}
	for _, o := range e.orders {
		evidence = append(evidence, d.w.orders[o].eventID, d.w.orders[o].resultID)
	}
	checks := []*subsidyv1.Check{
		check(subsidyv1.ReasonCode_REASON_CODE_PAYMENT_NOT_APPROVED, true, "confirmed by %s, approved by %s", e.confirmedBy, e.approvedBy),
		check(subsidyv1.ReasonCode_REASON_CODE_NOTICE_NOT_ELAPSED, true, "notice %s..%s closed %s", e.noticeStart, e.noticeEnd, e.noticeClosed),
		check(subsidyv1.ReasonCode_REASON_CODE_ENTITLEMENT_HELD, true, "no hold"),
		check(subsidyv1.ReasonCode_REASON_CODE_PAYMENT_EXCEEDS_ENTITLEMENT, due <= e.amount, "attempt %d: %d fen due of %d entitled", attempt, due, e.amount),
	}
	// Offsets: open receivables of the same institution, oldest first.
	var offsetIDs []string
	var offsetTotal int64
	if e.payee.kind == subsidyv1.PayeeKind_PAYEE_KIND_INSTITUTION {
		for _, cid := range d.w.clawbackSeq {
			c := d.w.clawbacks[cid]
			if c.payee.kind != subsidyv1.PayeeKind_PAYEE_KIND_INSTITUTION || c.payee.inst != e.payee.inst || c.entitlement == e.id {
				continue
			}
			if d.datedHolds() && c.raisedOn > on {
				continue // not receivable yet on the day of the request
			}
			n := min(c.outstanding(), due-offsetTotal)
			if n <= 0 {
				continue
			}
			offsetIDs = append(offsetIDs, cid)
			offsetTotal += n
			evidence = append(evidence, c.eventID)
			checks = append(checks, check(subsidyv1.ReasonCode_REASON_CODE_RECOVERY_EXCEEDS_RECEIVABLE, true,
				"offset %d fen against clawback %s (%d outstanding)", n, cid, c.outstanding()))
			if offsetTotal == due {
				break
			}
		}
	}
	d.emit(mustParse(id), &subsidyv1.PaymentOrdered{
		PaymentOrderId:    id,
		EntitlementId:     e.id,
		Attempt:           attempt,
		AmountFen:         due,
		OffsetFen:         offsetTotal,
		NetFen:            due - offsetTotal,
		Payee:             e.payee.proto(),
		OffsetClawbackIds: offsetIDs,
		Decision:          d.decision(evidence, checks...),
	})
	return nil
}

// orderOf finds the payment order a result refers to.
func (d *decider) orderOf(orderID, entitlementID string) (*order, *entitlement, *Rejection) {
	o := d.w.orders[orderID]
	if o == nil || o.entitlement != entitlementID {
		return nil, nil, reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_PAYMENT_ORDER, "no payment order %q of entitlement %q", orderID, entitlementID)
	}
	e, r := d.entitlementFor(o.entitlement)
	if r != nil {
		return nil, nil, r
	}
	if o.state != orderInFlight || e.inFlight != o.id {
		return nil, nil, reject(subsidyv1.ReasonCode_REASON_CODE_PAYMENT_IN_FLIGHT, "payment order %s is not awaiting a result", o.id)
	}
	return o, e, nil
}

func (d *decider) paymentSettled(m *subsidyv1.PaymentSettled) *Rejection {
	o, e, r := d.orderOf(m.GetPaymentOrderId(), m.GetEntitlementId())
	if r != nil {
		return r
	}
	switch amt := m.GetAmountFen(); {
	case amt > o.net:
		return reject(subsidyv1.ReasonCode_REASON_CODE_PAYMENT_EXCEEDS_ENTITLEMENT, "settled %d fen, order %s is for %d net", amt, o.id, o.net)
	case amt < o.net:
		return reject(subsidyv1.ReasonCode_REASON_CODE_SETTLEMENT_MISMATCH, "settled %d fen, order %s is for %d net", amt, o.id, o.net)
	}
	on := date(m.GetSettledOn())
	if r := dateOrder("settlement", on, "payment request", o.requestedOn); r != nil {
		return r
	}
	// A trainee's account is personal data: the payment system names it by
	// a token, never by its number (DOMAIN.md §3), which would stay in the
	// immutable log and, through a shared-account flag, reach supervisors.
	if o.payee.kind == subsidyv1.PayeeKind_PAYEE_KIND_TRAINEE && person.ContainsAccountNumber(m.GetPaidToAccount()) {
		return reject(subsidyv1.ReasonCode_REASON_CODE_PLAIN_ACCOUNT_NUMBER, "paid_to_account of a trainee payee holds an account number; send a token of the account")
	}
	for _, off := range o.offsets {
		d.emit(recoveryID(off.clawback, o.id), &subsidyv1.ClawbackRecovered{
			ClawbackId:  off.clawback,
			AmountFen:   off.fen,
			Method:      subsidyv1.RecoveryMethod_RECOVERY_METHOD_OFFSET,
			ReferenceId: o.id,
		})
	}
	// How many working days a payment may take (DOMAIN.md §6): a later
	// settlement stands, and is flagged for supervisors.
	if n := d.w.rs.PaymentWorkingDays; n > 0 {
		if _, due := d.w.cal.window(o.requestedOn.AddDays(1), n); on > due {
			id := FlagID(subsidyv1.ReasonCode_REASON_CODE_PAYMENT_LATE, o.id)
			calendar := "rule set " + d.w.rs.Version + " calendar"
			if !d.w.rs.CalendarCovers(due) {
				calendar += fmt.Sprintf("; it lists no holidays after %d, so %d counted weekends only", d.w.rs.CalendarThrough, due.Year())
			}
			detail := fmt.Sprintf("order %s requested %s settled %s: %d working days allowed, until %s (%s)", o.id, o.requestedOn, on, n, due, calendar)
			inst := ""
			if o.payee.kind == subsidyv1.PayeeKind_PAYEE_KIND_INSTITUTION {
				inst = o.payee.inst
			}
			d.emit(mustParse(id), &subsidyv1.ViolationFlagged{
				FlagId:        id,
				Reason:        subsidyv1.ReasonCode_REASON_CODE_PAYMENT_LATE,
				Subject:       e.person,
				InstitutionId: inst,
				Qualification: e.q.Proto(),
				Detail:        detail,
				Decision:      d.decision([]events.ID{o.eventID}, check(subsidyv1.ReasonCode_REASON_CODE_PAYMENT_LATE, false, "%s", detail)),
			})
		}
	}
	acct := m.GetPaidToAccount()
	switch o.payee.kind {
	case subsidyv1.PayeeKind_PAYEE_KIND_INSTITUTION:
		if acct != o.payee.account {
			id := FlagID(subsidyv1.ReasonCode_REASON_CODE_PAYMENT_ACCOUNT_MISMATCH, o.id)
			in := d.w.institutions[o.payee.inst]
			detail := fmt.Sprintf("order %s for %s settled into an account other than its registered basic account", o.id, o.payee.inst)
			d.emit(mustParse(id), &subsidyv1.ViolationFlagged{
				FlagId:        id,
				Reason:        subsidyv1.ReasonCode_REASON_CODE_PAYMENT_ACCOUNT_MISMATCH,
				Subject:       o.payee.inst,
				InstitutionId: o.payee.inst,
				Qualification: e.q.Proto(),
				Detail:        detail,
				Decision:      d.decision([]events.ID{o.eventID, in.eventID}, check(subsidyv1.ReasonCode_REASON_CODE_PAYMENT_ACCOUNT_MISMATCH, false, "%s", detail)),
			})
		}
	case subsidyv1.PayeeKind_PAYEE_KIND_TRAINEE:
		persons := d.w.accounts[acct]
		if !slices.Contains(persons, e.person) && len(persons)+1 >= d.w.rs.SharedAccountThreshold {
			id := FlagID(subsidyv1.ReasonCode_REASON_CODE_SHARED_PAYEE_ACCOUNT, acct)
			if _, done := d.w.flags[id]; !done {
				detail := fmt.Sprintf("%d trainees paid directly into one account (threshold %d)", len(persons)+1, d.w.rs.SharedAccountThreshold)
				d.emit(mustParse(id), &subsidyv1.ViolationFlagged{
					FlagId:   id,
					Reason:   subsidyv1.ReasonCode_REASON_CODE_SHARED_PAYEE_ACCOUNT,
					Subject:  acct,
					Detail:   detail,
					Decision: d.decision([]events.ID{o.eventID}, check(subsidyv1.ReasonCode_REASON_CODE_SHARED_PAYEE_ACCOUNT, false, "%s", detail)),
				})
			}
		}
	}
	if e.cancelled != "" && e.clawback == "" {
		cause := subsidyv1.ClawbackCause_CLAWBACK_CAUSE_CERTIFICATE_REVOKED
		cancelling, _ := e.hold(e.cancelled)
		if cancelling.reason == subsidyv1.ReasonCode_REASON_CODE_FRAUD_FINDING {
			cause = subsidyv1.ClawbackCause_CLAWBACK_CAUSE_FRAUD
		}
		// Receivable once both the cancellation and the settlement
		// happened.
		d.raiseClawback(e, e.paid+o.amount, cause, max(on, cancelling.placedOn), cancelling.eventID, o.eventID)
	}
	return nil
}

func (d *decider) paymentFailed(m *subsidyv1.PaymentFailed) *Rejection {
	o, e, r := d.orderOf(m.GetPaymentOrderId(), m.GetEntitlementId())
	if r != nil {
		return r
	}
	if r := dateOrder("failure", date(m.GetFailedOn()), "payment request", o.requestedOn); r != nil {
		return r
	}
	if e.cancelled != "" && e.paid == 0 {
		// Cancelled while this order was in flight: no money moved after
		// all, so its budget is freed now.
		// Freed once both the cancellation and the failure happened.
		cancelling, _ := e.hold(e.cancelled)
		d.releaseQueued(fundKey{e.year, e.unit}, 0, e.counted, e.id, max(date(m.GetFailedOn()), cancelling.placedOn))
	}
	return nil
}

func (d *decider) clawbackOf(id string) (*clawback, *Rejection) {
	c := d.w.clawbacks[id]
	if c == nil {
		return nil, reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_CLAWBACK, "clawback %q is unknown", id)
	}
	if _, r := d.entitlementFor(c.entitlement); r != nil {
		return nil, r
	}
	return c, nil
}

func (d *decider) repaymentReceived(m *subsidyv1.RepaymentReceived) *Rejection {
	c, r := d.clawbackOf(m.GetClawbackId())
	if r != nil {
		return r
	}
	// Money repaid after the receivable was written off is money received
	// all the same: from BehaviourRecoveredWriteOff on, what a repayment
	// brings beyond what is outstanding recovers what was written off,
	// reversing the write-off by as much (before, it was refused and could
	// not be recorded at all).
	var writtenOff int64
	if n := m.GetAmountFen(); n > c.outstanding() {
		if d.w.rs.behaviour() < BehaviourRecoveredWriteOff {
			return reject(subsidyv1.ReasonCode_REASON_CODE_RECOVERY_EXCEEDS_RECEIVABLE, "repayment %d fen, %d outstanding", n, c.outstanding())
		}
		if writtenOff = n - c.outstanding(); writtenOff > c.writtenOff {
			return reject(subsidyv1.ReasonCode_REASON_CODE_RECOVERY_EXCEEDS_RECEIVABLE, "repayment %d fen, %d outstanding and %d written off", n, c.outstanding(), c.writtenOff)
		}
	}
	if d.datedHolds() {
		if r := dateOrder("repayment", date(m.GetReceivedOn()), "clawback "+c.id, c.raisedOn); r != nil {
			return r
		}
	}
	// A recovery's id is of the clawback and its reference, a payment
	// order's id for an offset: a repayment under an order's id would
	// derive an offset's recovery again (the decision failed; from
	// BehaviourLateObjection's release on it is refused, saying why).
	if d.w.rs.behaviour() >= BehaviourLateObjection && d.w.orders[m.GetRepaymentId()] != nil {
		return reject(subsidyv1.ReasonCode_REASON_CODE_ALREADY_EXISTS, "repayment id %q is a payment order's: give the repayment an id of its own", m.GetRepaymentId())
	}
	d.emit(recoveryID(c.id, m.GetRepaymentId()), &subsidyv1.ClawbackRecovered{
		ClawbackId:    c.id,
		AmountFen:     m.GetAmountFen(),
		Method:        subsidyv1.RecoveryMethod_RECOVERY_METHOD_REPAYMENT,
		ReferenceId:   m.GetRepaymentId(),
		WrittenOffFen: writtenOff,
	})
	return nil
}

// blank reports whether a reason says nothing: white space only, and from
// BehaviourLateObjection's release on also invisible characters only
// (zero-width spaces and joiners, facts.Invisible), which a reason of
// nothing could be made of.
func (d *decider) blank(reason string) bool {
	if d.w.rs.behaviour() < BehaviourLateObjection {
		return strings.TrimSpace(reason) == ""
	}
	return strings.IndexFunc(reason, func(r rune) bool { return !unicode.IsSpace(r) && !facts.Invisible(r) }) < 0
}

func (d *decider) writeOffRequested(m *subsidyv1.WriteOffRequested) *Rejection {
	c, r := d.clawbackOf(m.GetClawbackId())
	if r != nil {
		return r
	}
	if d.blank(m.GetReason()) {
		return reject(subsidyv1.ReasonCode_REASON_CODE_WRITE_OFF_NEEDS_REASON, "write-off of clawback %s without a reason", c.id)
	}
	// A request replaces one still awaiting approval (which can then no
	// longer be approved): a repayment or offset may have left less
	// outstanding than was asked, or the maker may revise the amount or
	// reason; without this a request nobody approved blocked the clawback's
	// write-off for good.
	if c.pending != nil && c.pending.digest == digest(m) {
		return reject(subsidyv1.ReasonCode_REASON_CODE_DUPLICATE_FACT, "write-off request already recorded as event %s", c.pendingID)
	}
	if n := m.GetAmountFen(); n <= 0 || n > c.outstanding() {
		return reject(subsidyv1.ReasonCode_REASON_CODE_RECOVERY_EXCEEDS_RECEIVABLE, "write-off %d fen, %d outstanding", n, c.outstanding())
	}
	return nil
}

func (d *decider) clawbackWrittenOff(m *subsidyv1.ClawbackWrittenOff) *Rejection {
	c, r := d.clawbackOf(m.GetClawbackId())
	if r != nil {
		return r
	}
	switch p := c.pending; {
	case d.blank(m.GetReason()):
		return reject(subsidyv1.ReasonCode_REASON_CODE_WRITE_OFF_NEEDS_REASON, "write-off of clawback %s without a reason", c.id)
	case sameOfficial(m.GetApprovedBy(), m.GetRequestedBy()):
		return reject(subsidyv1.ReasonCode_REASON_CODE_WRITE_OFF_SAME_OFFICIAL, "official %q requested the write-off and may not approve it", m.GetRequestedBy())
	case p == nil:
		return reject(subsidyv1.ReasonCode_REASON_CODE_WRONG_STATE, "no write-off of clawback %s was requested", c.id)
	case p.official != m.GetRequestedBy() || p.amount != m.GetAmountFen():
		return reject(subsidyv1.ReasonCode_REASON_CODE_WRONG_STATE, "the pending request is by %s for %s fen", p.official, strconv.FormatInt(p.amount, 10))
	case p.digest != digest(&subsidyv1.WriteOffRequested{ClawbackId: m.GetClawbackId(), AmountFen: m.GetAmountFen(), Reason: m.GetReason(), OfficialId: m.GetRequestedBy()}):
		// The checker approves what the maker asked, reason included
		// (rules 2026.5; before, another reason could be recorded).
		return reject(subsidyv1.ReasonCode_REASON_CODE_WRONG_STATE, "the pending request by %s gives another reason", p.official)
	case m.GetAmountFen() > c.outstanding():
		return reject(subsidyv1.ReasonCode_REASON_CODE_RECOVERY_EXCEEDS_RECEIVABLE, "write-off %d fen, %d outstanding", m.GetAmountFen(), c.outstanding())
	}
	return nil
}
