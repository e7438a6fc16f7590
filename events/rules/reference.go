package rules

import (
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

func (d *decider) unitDefined(m *subsidyv1.UnitDefined) *Rejection {
	d.stream = UnitsStream
	u, err := refdata.FromUnitDefined(m)
	if err != nil {
		return reject(subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION, "%v", err)
	}
	if u.Successor != "" {
		if _, ok := d.w.units.Lookup(u.Successor); !ok {
			return reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_UNIT, "successor %q is not in the unit table", u.Successor)
		}
	}
	if _, err := d.w.units.With(u); err != nil {
		return reject(subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION, "%v", err)
	}
	return nil
}

// unitKnown checks that code is in the unit table at all.
func (d *decider) unitKnown(code string) *Rejection {
	if _, ok := d.w.units.Lookup(code); !ok {
		return reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_UNIT, "unit %q is not in the unit table", code)
	}
	return nil
}

// unitOn checks that code is in force on day on.
func (d *decider) unitOn(code string, on refdata.Date) *Rejection {
	if _, err := d.w.units.UnitAsOf(code, on); err != nil {
		detail := err.Error()
		if rows, ok := d.w.units.Lookup(code); ok {
			last := rows[len(rows)-1]
			if last.Successor != "" && !last.ValidTo.IsZero() && on > last.ValidTo {
				detail += "; abolished after " + last.ValidTo.String() + ", successor " + last.Successor
			}
		}
		return reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_UNIT, "%s", detail)
	}
	return nil
}

func (d *decider) institutionRegistered(m *subsidyv1.InstitutionRegistered) *Rejection {
	d.stream = InstitutionStream(m.GetInstitutionId())
	if r := d.unitKnown(m.GetUnitCode()); r != nil {
		return r
	}
	if m.GetKind() == subsidyv1.InstitutionKind_INSTITUTION_KIND_TRAINING && m.GetBasicAccount() == "" {
		return reject(subsidyv1.ReasonCode_REASON_CODE_PAYEE_ACCOUNT_NOT_REGISTERED, "training institution %q has no basic account for reimbursements", m.GetInstitutionId())
	}
	return nil
}

func (d *decider) institutionApproved(m *subsidyv1.InstitutionApproved) *Rejection {
	d.stream = InstitutionStream(m.GetInstitutionId())
	if d.w.institutions[m.GetInstitutionId()] == nil {
		return reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_INSTITUTION, "institution %q is not registered", m.GetInstitutionId())
	}
	return nil
}

func (d *decider) institutionSuspended(m *subsidyv1.InstitutionSuspended) *Rejection {
	d.stream = InstitutionStream(m.GetInstitutionId())
	in := d.w.institutions[m.GetInstitutionId()]
	if in == nil {
		return reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_INSTITUTION, "institution %q is not registered", m.GetInstitutionId())
	}
	if in.suspended && (in.blacklisted || !m.GetBlacklisted()) {
		return reject(subsidyv1.ReasonCode_REASON_CODE_WRONG_STATE, "institution %q is already suspended", in.id)
	}
	return nil
}

func (d *decider) institutionReinstated(m *subsidyv1.InstitutionReinstated) *Rejection {
	d.stream = InstitutionStream(m.GetInstitutionId())
	in := d.w.institutions[m.GetInstitutionId()]
	switch {
	case in == nil:
		return reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_INSTITUTION, "institution %q is not registered", m.GetInstitutionId())
	case in.blacklisted:
		return reject(subsidyv1.ReasonCode_REASON_CODE_WRONG_STATE, "institution %q is blacklisted", in.id)
	case !in.suspended:
		return reject(subsidyv1.ReasonCode_REASON_CODE_WRONG_STATE, "institution %q is not suspended", in.id)
	}
	return nil
}

func (d *decider) feeSchedulePublished(m *subsidyv1.FeeSchedulePublished) *Rejection {
	d.stream = FeeStream(m.GetEvaluationInstitutionId())
	if _, r := d.institutionOf(m.GetEvaluationInstitutionId(), subsidyv1.InstitutionKind_INSTITUTION_KIND_EVALUATION); r != nil {
		return r
	}
	k := feeKey{m.GetEvaluationInstitutionId(), refdata.QualificationOf(m.GetQualification())}
	from := date(m.GetEffectiveFrom())
	for _, f := range d.w.feesBy[k] {
		if f.from == from {
			return reject(subsidyv1.ReasonCode_REASON_CODE_ALREADY_EXISTS, "fee schedule %q already starts on %s for %s", f.id, from, k.q)
		}
	}
	return nil
}

// feeInForce returns the fee schedule in force on day on for an evaluation
// institution and qualification: of the schedules whose period contains the
// day, the one that started last (a newer schedule supersedes an open-ended
// older one without republishing it).
func (w *World) feeInForce(inst string, q refdata.Qualification, on refdata.Date) (*fee, subsidyv1.ReasonCode) {
	list := w.feesBy[feeKey{inst, q}]
	if len(list) == 0 {
		return nil, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_FEE_SCHEDULE
	}
	var best *fee
	for _, f := range list {
		if f.from <= on && (f.to.IsZero() || on <= f.to) && (best == nil || f.from > best.from) {
			best = f
		}
	}
	if best == nil {
		return nil, subsidyv1.ReasonCode_REASON_CODE_NO_FEE_IN_FORCE
	}
	return best, subsidyv1.ReasonCode_REASON_CODE_UNSPECIFIED
}

func (d *decider) budgetAllocated(m *subsidyv1.BudgetAllocated) *Rejection {
	d.stream = FundStream(m.GetYear(), m.GetUnitCode())
	rows, ok := d.w.units.Lookup(m.GetUnitCode())
	if !ok {
		return reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_UNIT, "unit %q is not in the unit table", m.GetUnitCode())
	}
	first, last := refdata.D(int(m.GetYear()), time.January, 1), refdata.D(int(m.GetYear()), time.December, 31)
	inForce := false
	for _, u := range rows {
		if u.ValidFrom <= last && (u.ValidTo.IsZero() || u.ValidTo >= first) {
			inForce = true
		}
	}
	if !inForce {
		return reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_UNIT, "unit %q is not in force in %d", m.GetUnitCode(), m.GetYear())
	}
	// An allocation carries no date: its releases are undated.
	d.releaseQueued(fundKey{m.GetYear(), m.GetUnitCode()}, m.GetAmountFen(), 0, "", refdata.Date(0))
	return nil
}

// releaseQueued releases budget-held entitlements of a fund, in the order
// they were held, while each fits: committed + amount <= allocated, with the
// fund's figures adjusted by what this decision adds (allocated) or frees
// (freed). It stops at the first that does not fit, so later (smaller)
// entitlements never overtake earlier ones. It ignores the entitlement
// except, which this decision cancels; on is the day of the fact that
// frees the budget (zero if it has none).
func (d *decider) releaseQueued(k fundKey, allocated, freed int64, except string, on refdata.Date) {
	f := d.w.funds[k]
	if f == nil {
		return
	}
	alloc := f.allocated + allocated
	committed := f.committed - freed
	for _, id := range f.queue {
		e := d.w.entitlements[id]
		if e == nil || e.cancelled != "" || id == except {
			continue
		}
		if committed+e.amount > alloc {
			break
		}
		committed += e.amount
		budget, _ := e.hold(HoldBudget)
		ev := append([]events.ID{e.eventID, budget.eventID}, f.allocations...)
		// Freed on day on, but not released before it was held (a
		// revocation recorded late may be dated before the certificate
		// that queued this one).
		released := on
		if !on.IsZero() {
			released = max(on, budget.placedOn)
		}
		d.emit(releaseEventID(e.id, HoldBudget), &subsidyv1.EntitlementReleased{
			EntitlementId: e.id,
			Reason:        subsidyv1.ReasonCode_REASON_CODE_BUDGET_EXCEEDED,
			HoldId:        HoldBudget,
			ReleasedOn:    d.day(released),
			Decision: d.decision(ev, check(subsidyv1.ReasonCode_REASON_CODE_BUDGET_EXCEEDED, true,
				"fund %d/%s: committed %d + %d <= allocated %d", k.year, k.unit, committed-e.amount, e.amount, alloc)),
		})
	}
}
