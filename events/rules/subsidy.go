package rules

import (
	"fmt"
	"slices"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// certificateIssued records a certificate (rule 3: only after a pass) and
// decides its subsidy: a SubsidyEntitled, possibly held (rules 11, 15), or a
// SubsidyDenied with the first failing rule's reason.
func (d *decider) certificateIssued(m *subsidyv1.CertificateIssued) *Rejection {
	d.stream = TraineeStream(m.GetPersonKey())
	t, r := d.traineeOf(m.GetPersonKey())
	if r != nil {
		return r
	}
	ev, r := d.institutionOf(m.GetEvaluationInstitutionId(), subsidyv1.InstitutionKind_INSTITUTION_KIND_EVALUATION)
	if r != nil {
		return r
	}
	if ev.suspended {
		return reject(subsidyv1.ReasonCode_REASON_CODE_INSTITUTION_SUSPENDED, "institution %q is suspended", ev.id)
	}
	q := refdata.QualificationOf(m.GetQualification())
	a := d.w.assessments[m.GetAssessmentId()]
	switch {
	case a == nil:
		return reject(subsidyv1.ReasonCode_REASON_CODE_CERTIFICATE_WITHOUT_PASS, "assessment %q is not recorded", m.GetAssessmentId())
	case a.person != t.key || a.q != q || a.evalInst != ev.id:
		return reject(subsidyv1.ReasonCode_REASON_CODE_CERTIFICATE_WITHOUT_PASS, "assessment %q is not this person's %s at %s", a.id, q, ev.id)
	case !a.passed:
		return reject(subsidyv1.ReasonCode_REASON_CODE_CERTIFICATE_WITHOUT_PASS, "assessment %q did not pass (theory %d, practical %d; %d needed in both)", a.id, a.theory, a.practical, PassMark)
	}
	issued := date(m.GetIssuedOn())
	if r := dateOrder("certificate", issued, "assessment", a.assessedOn); r != nil {
		return r
	}
	d.subsidy(t, a, m.GetCertificateId(), events.ID{}, issued)
	d.spike(ev, issued)
	return nil
}

// subsidy evaluates rules 1 and 3-10 for certificate cert, issued on
// issued, in rule order, and records every check; the first failure is the
// denial's reason. certEvent is the certificate's event when deciding again
// on a later fact (secondChance): it joins the evidence, and a denial is
// not recorded again.
func (d *decider) subsidy(t *trainee, a *assessment, cert string, certEvent events.ID, issued refdata.Date) {
	w, rs := d.w, d.w.rs
	q := a.q
	on := a.assessedOn
	year := int32(on.Year())
	enr, completedOn, completionEvent := d.trainingOf(t, a)
	evidence := []events.ID{certEvent, t.eventID, a.eventID}
	if enr != nil {
		evidence = append(evidence, enr.eventID, completionEvent)
	}
	var checks []*subsidyv1.Check
	var denied *subsidyv1.Check
	add := func(c *subsidyv1.Check) {
		checks = append(checks, c)
		if !c.Passed && denied == nil {
			denied = c
		}
	}

	// Rule 1: the trainee's unit maps to a budget unit on the assessment
	// date: the recorded unit, rolled up to its successor if it was
	// abolished by then. A unit recorded that did not exist yet on that
	// date (a trainee registered in 两江新区 for an assessment before
	// 2025-11-06) is taken as recorded: its predecessor is ambiguous.
	unit, err := w.units.RollUp(t.unit, on)
	if rows, ok := w.units.Lookup(t.unit); err != nil && ok && rows[0].ValidFrom > on {
		unit, err = rows[0], nil
	}
	if err != nil {
		add(check(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_UNIT, false, "unit %q on %s: %v", t.unit, on, err))
	} else {
		add(check(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_UNIT, true, "unit %q answers to %q on %s", t.unit, unit.Code, on))
		evidence = append(evidence, w.unitEvents[t.unit], w.unitEvents[unit.Code])
	}

	// Rule 3: assessed after training was completed. Decided on the
	// completion date known now, so a completion reported after the
	// assessment but dated on or before it counts (the assessment itself
	// was flagged when it was recorded).
	if enr != nil && !completedOn.IsZero() && completedOn <= on {
		add(check(subsidyv1.ReasonCode_REASON_CODE_TRAINING_NOT_COMPLETED, true, "training completed %s, assessed %s", completedOn, on))
	} else {
		add(check(subsidyv1.ReasonCode_REASON_CODE_TRAINING_NOT_COMPLETED, false, "assessed %s before training was completed", on))
	}

	// Rule 4: subsidy eligibility from recorded evidence.
	c, used := eligibility(t, on)
	add(c)
	evidence = append(evidence, used...)

	// Rule 5: first attempt (or, where the rule set allows re-sits, an
	// attempt up to SubsidisedAttempts).
	if rs.SubsidisedAttempts == 1 {
		add(check(subsidyv1.ReasonCode_REASON_CODE_NOT_FIRST_ATTEMPT, a.attempt == 1, "attempt %d", a.attempt))
	} else {
		add(check(subsidyv1.ReasonCode_REASON_CODE_NOT_FIRST_ATTEMPT, int(a.attempt) <= rs.SubsidisedAttempts, "attempt %d of %d subsidised", a.attempt, rs.SubsidisedAttempts))
	}

	// Rule 6: once per person and qualification.
	if id := t.entitlements.get(q); id != "" {
		add(check(subsidyv1.ReasonCode_REASON_CODE_ALREADY_SUBSIDISED, false, "entitlement %s exists for %s", id, q))
		evidence = append(evidence, w.entitlements[id].eventID)
	} else if i := slices.IndexFunc(d.decided, func(e decided) bool { return e.q == q }); i >= 0 {
		add(check(subsidyv1.ReasonCode_REASON_CODE_ALREADY_SUBSIDISED, false, "entitlement %s exists for %s", d.decided[i].id, q))
		evidence = append(evidence, d.decided[i].eventID)
	} else {
		add(check(subsidyv1.ReasonCode_REASON_CODE_ALREADY_SUBSIDISED, true, "no entitlement for %s", q))
	}

	// Rule 7: no lower level after a higher one.
	if rs.LowerAfterHigher {
		var higher *entitlement
		for _, l := range refdata.Levels() {
			if l.Code <= q.Level {
				continue
			}
			if id := t.entitlements.get(refdata.Qualification{Occupation: q.Occupation, Level: l.Code}); id != "" {
				if e := w.entitlements[id]; e.cancelled == "" && higher == nil {
					higher = e
				}
			}
		}
		i := slices.IndexFunc(d.decided, func(e decided) bool { return e.q.Occupation == q.Occupation && e.q.Level > q.Level })
		switch {
		case higher != nil:
			add(check(subsidyv1.ReasonCode_REASON_CODE_LOWER_AFTER_HIGHER, false, "%s already subsidised (entitlement %s)", higher.q, higher.id))
			evidence = append(evidence, higher.eventID)
		case i >= 0:
			add(check(subsidyv1.ReasonCode_REASON_CODE_LOWER_AFTER_HIGHER, false, "%s already subsidised (entitlement %s)", d.decided[i].q, d.decided[i].id))
			evidence = append(evidence, d.decided[i].eventID)
		default:
			add(check(subsidyv1.ReasonCode_REASON_CODE_LOWER_AFTER_HIGHER, true, "no higher level of %s subsidised", q.String()))
		}
	}

	// Rule 8: yearly cap, by assessment year.
	var inYear []events.ID
	for _, id := range t.entitlements.valuesByKey() {
		if e := w.entitlements[id]; e.year == year && e.cancelled == "" {
			inYear = append(inYear, e.eventID)
		}
	}
	for _, e := range d.decided {
		if e.year == year {
			inYear = append(inYear, e.eventID)
		}
	}
	add(check(subsidyv1.ReasonCode_REASON_CODE_YEARLY_CAP_REACHED, len(inYear) < rs.YearlyCap, "%d of %d subsidised in %d", len(inYear), rs.YearlyCap, year))
	if len(inYear) >= rs.YearlyCap {
		evidence = append(evidence, inYear...)
	}

	// Rule 9: the fee in force on the assessment date.
	fee, code := w.feeInForce(a.evalInst, q, on)
	if fee == nil {
		add(check(subsidyv1.ReasonCode_REASON_CODE_NO_FEE_IN_FORCE, false, "%s at %s on %s: %s", q, a.evalInst, on, code))
	} else {
		add(check(subsidyv1.ReasonCode_REASON_CODE_NO_FEE_IN_FORCE, true, "fee schedule %s: %d fen from %s", fee.id, fee.fen, fee.from))
		evidence = append(evidence, fee.eventID)
	}

	// Rule 10: payee.
	payee := &subsidyv1.Payee{Kind: subsidyv1.PayeeKind_PAYEE_KIND_TRAINEE, PersonKey: t.key}
	if adv := t.advances.get(q); adv != nil {
		in := w.institutions[adv.inst]
		payee = &subsidyv1.Payee{Kind: subsidyv1.PayeeKind_PAYEE_KIND_INSTITUTION, InstitutionId: adv.inst, AccountRef: in.account}
		add(check(subsidyv1.ReasonCode_REASON_CODE_PAYEE_ACCOUNT_NOT_REGISTERED, in.account != "", "advance %s by %s: reimburse its basic account", adv.id, adv.inst))
		evidence = append(evidence, adv.eventID, in.eventID)
	} else {
		add(check(subsidyv1.ReasonCode_REASON_CODE_PAYEE_ACCOUNT_NOT_REGISTERED, true, "no advance payment: pay the trainee"))
	}

	if denied != nil {
		if !certEvent.IsZero() {
			// Decided again: the denial stands, and says why if that is
			// no longer what it (or its last revision) said (rules 2026.4).
			c := w.certificates[cert]
			prev := c.denied
			if c.revised != subsidyv1.ReasonCode_REASON_CODE_UNSPECIFIED {
				prev = c.revised
			}
			if denied.Reason != prev {
				d.emit(denialRevisedID(cert, d.factID), &subsidyv1.SubsidyDenialRevised{
					PersonKey:      t.key,
					Qualification:  q.Proto(),
					CertificateId:  cert,
					Reason:         denied.Reason,
					PreviousReason: prev,
					Detail:         denied.Detail,
					Decision:       d.decision(evidence, checks...),
				})
			}
			return
		}
		d.emit(denialID(cert), &subsidyv1.SubsidyDenied{
			PersonKey:     t.key,
			Qualification: q.Proto(),
			CertificateId: cert,
			Reason:        denied.Reason,
			Detail:        denied.Detail,
			Decision:      d.decision(evidence, checks...),
		})
		return
	}

	trainInst := ""
	if enr != nil {
		trainInst = enr.inst
	}
	id := EntitlementID(t.key, q)
	ent := &subsidyv1.SubsidyEntitled{
		EntitlementId:           id,
		PersonKey:               t.key,
		Qualification:           q.Proto(),
		CertificateId:           cert,
		AssessmentId:            a.id,
		AmountFen:               fee.fen,
		FeeScheduleId:           fee.id,
		Payee:                   payee,
		Year:                    year,
		UnitCode:                unit.Code,
		EvaluationInstitutionId: a.evalInst,
		TrainingInstitutionId:   trainInst,
		AssessedOn:              on.Proto(),
		Decision:                d.decision(evidence, checks...),
	}
	entEventID := EntitlementEventID(t.key, q)
	d.emit(entEventID, ent)

	// Rule 11: budget. Earlier held entitlements keep their place.
	k := fundKey{year, unit.Code}
	var alloc, committed int64
	var queued int
	var fundEvidence []events.ID
	if f := w.funds[k]; f != nil {
		alloc, committed, queued = f.allocated, f.committed, len(f.queue)
		fundEvidence = f.allocations
	}
	for _, e := range d.decided {
		switch {
		case e.fund != k:
		case e.held:
			queued++
		default:
			committed += e.fen
		}
	}
	held := queued > 0 || committed+fee.fen > alloc
	d.decided = append(d.decided, decided{id: id, eventID: entEventID, q: q, year: year, fund: k, fen: fee.fen, held: held})
	if held {
		detail := fmt.Sprintf("fund %d/%s: committed %d + %d > allocated %d", year, unit.Code, committed, fee.fen, alloc)
		if queued > 0 && committed+fee.fen <= alloc {
			detail = fmt.Sprintf("fund %d/%s: %d held entitlements wait before it", year, unit.Code, queued)
		}
		d.emit(holdEventID(id, HoldBudget), &subsidyv1.EntitlementHeld{
			EntitlementId: id,
			Reason:        subsidyv1.ReasonCode_REASON_CODE_BUDGET_EXCEEDED,
			Detail:        detail,
			HoldId:        HoldBudget,
			HeldOn:        d.day(issued),
			Decision: d.decision(append([]events.ID{entEventID}, fundEvidence...),
				check(subsidyv1.ReasonCode_REASON_CODE_BUDGET_EXCEEDED, false, "%s", detail)),
		})
	}

	// Rule 15: reimbursements of an institution below the quality threshold
	// wait for a supervisor.
	if payee.Kind == subsidyv1.PayeeKind_PAYEE_KIND_INSTITUTION {
		if low, passes, n := w.qualityBelow(payee.InstitutionId, q); low {
			detail := fmt.Sprintf("%s first-attempt pass rate for %s is %d/%d, below %d bp", payee.InstitutionId, q, passes, n, rs.PassRateThresholdBP)
			var qev []events.ID
			if qw := w.quality[qualityKey{payee.InstitutionId, q}]; qw != nil {
				qev = qw.ids
			}
			d.emit(holdEventID(id, HoldQuality), &subsidyv1.EntitlementHeld{
				EntitlementId: id,
				Reason:        subsidyv1.ReasonCode_REASON_CODE_QUALITY_BELOW_THRESHOLD,
				Detail:        detail,
				HoldId:        HoldQuality,
				HeldOn:        d.day(issued),
				Decision: d.decision(append([]events.ID{entEventID}, qev...),
					check(subsidyv1.ReasonCode_REASON_CODE_QUALITY_BELOW_THRESHOLD, false, "%s", detail)),
			})
		}
	}
}

// eligibility is rule 4: recorded evidence must show the person a
// graduating student in the assessment year, or insured in employment on the
// assessment date. Of each category the evidence with the latest snapshot
// speaks (of equal snapshots, the one recorded last): a register read later
// knows better, so an insurance that a newer snapshot shows ended is not
// vouched for by an older one that showed it open. Without evidence:
// NO_ELIGIBILITY_EVIDENCE; otherwise, when no category's latest evidence
// passes, the most recent evidence names the failure.
func eligibility(t *trainee, on refdata.Date) (*subsidyv1.Check, []events.ID) {
	if len(t.evidence) == 0 {
		return check(subsidyv1.ReasonCode_REASON_CODE_NO_ELIGIBILITY_EVIDENCE, false, "no eligibility evidence recorded"), nil
	}
	var student, employee *evidence // the latest of each category
	for i := range t.evidence {
		e := &t.evidence[i]
		switch e.category {
		case subsidyv1.EligibilityCategory_ELIGIBILITY_CATEGORY_GRADUATING_STUDENT:
			if student == nil || e.snapshotAt >= student.snapshotAt {
				student = e
			}
		case subsidyv1.EligibilityCategory_ELIGIBILITY_CATEGORY_ENTERPRISE_EMPLOYEE:
			if employee == nil || e.snapshotAt >= employee.snapshotAt {
				employee = e
			}
		}
	}
	var used []events.ID
	var fail *subsidyv1.Check
	var failAt int64
	note := func(e *evidence, c *subsidyv1.Check) {
		used = append(used, e.eventID)
		if fail == nil || e.snapshotAt >= failAt {
			fail, failAt = c, e.snapshotAt
		}
	}
	if e := student; e != nil {
		if e.confirmed && int(e.gradYear) == on.Year() {
			return check(subsidyv1.ReasonCode_REASON_CODE_NOT_GRADUATING_THIS_YEAR, true,
				"graduating student: graduation year %d (evidence %s from %s)", e.gradYear, e.id, e.source), []events.ID{e.eventID}
		}
		note(e, check(subsidyv1.ReasonCode_REASON_CODE_NOT_GRADUATING_THIS_YEAR, false,
			"evidence %s: confirmed %t, graduation year %d, assessed in %d", e.id, e.confirmed, e.gradYear, on.Year()))
	}
	if e := employee; e != nil {
		from, to := e.insuredFrom, e.insuredTo
		if e.confirmed && from <= on && (to.IsZero() || on <= to) {
			return check(subsidyv1.ReasonCode_REASON_CODE_NOT_INSURED_ON_ASSESSMENT, true,
				"enterprise employee insured %s..%s (evidence %s from %s)", from, to, e.id, e.source), []events.ID{e.eventID}
		}
		note(e, check(subsidyv1.ReasonCode_REASON_CODE_NOT_INSURED_ON_ASSESSMENT, false,
			"evidence %s: confirmed %t, insured %s..%s, assessed %s", e.id, e.confirmed, from, to, on))
	}
	if fail == nil {
		// Only evidence of categories the rules do not know.
		return check(subsidyv1.ReasonCode_REASON_CODE_NO_ELIGIBILITY_EVIDENCE, false, "no evidence of a known category"), nil
	}
	return fail, used
}

// spike is rule 16's certificate spike: flag an evaluation institution once
// per month in which its certificates exceed max(minimum, factor × its mean
// over the months before).
func (d *decider) spike(ev *institution, issued refdata.Date) {
	rs := d.w.rs
	months := d.w.certMonths[ev.id]
	mo := month(issued)
	count := months[mo] + 1
	if count <= rs.CertificateSpikeMinimum {
		return
	}
	sum := 0
	first := refdata.D(issued.Year(), issued.Month(), 1)
	for i := 1; i <= rs.CertificateSpikeMonths; i++ {
		p := first.AddDays(-1)
		first = refdata.D(p.Year(), p.Month(), 1)
		sum += months[month(first)]
	}
	if count*rs.CertificateSpikeMonths <= rs.CertificateSpikeFactor*sum {
		return
	}
	key := fmt.Sprintf("%s/%d", ev.id, mo)
	id := FlagID(subsidyv1.ReasonCode_REASON_CODE_CERTIFICATE_SPIKE, key)
	if _, done := d.w.flags[id]; done {
		return
	}
	detail := fmt.Sprintf("%d certificates in %04d-%02d; %d in the %d months before (factor %d, minimum %d)",
		count, mo/100, mo%100, sum, rs.CertificateSpikeMonths, rs.CertificateSpikeFactor, rs.CertificateSpikeMinimum)
	d.emit(mustParse(id), &subsidyv1.ViolationFlagged{
		FlagId:        id,
		Reason:        subsidyv1.ReasonCode_REASON_CODE_CERTIFICATE_SPIKE,
		Subject:       ev.id,
		InstitutionId: ev.id,
		Detail:        detail,
		Decision:      d.decision([]events.ID{ev.eventID}, check(subsidyv1.ReasonCode_REASON_CODE_CERTIFICATE_SPIKE, false, "%s", detail)),
	})
}
