package rules

import (
	"slices"

	"github.com/cqhrss/subsidyledger/events/refdata"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// Read accessors: copies of parts of the state, for the ingest service's
// diagnostics, tools and tests. Read models are built from the log by the
// projections, not from these.

// EntitlementState summarises an entitlement.
type EntitlementState struct {
	ID            string
	PersonKey     string
	Qualification refdata.Qualification
	CertificateID string
	AmountFen     int64
	Payee         *subsidyv1.Payee
	Year          int32
	UnitCode      string
	ConfirmedBy   string
	ApprovedBy    string
	NoticeStart   refdata.Date
	NoticeEnd     refdata.Date
	NoticeClosed  refdata.Date
	// Holds are the hold ids in place, sorted.
	Holds []string
	// Cancelled is the hold id of a revocation or fraud finding, if any.
	Cancelled     string
	PaymentOrders []string
	InFlight      string
	PaidFen       int64
	ClawbackID    string
}

// Entitlement returns the state of an entitlement.
func (w *World) Entitlement(id string) (EntitlementState, bool) {
	e := w.entitlements[id]
	if e == nil {
		return EntitlementState{}, false
	}
	holds := e.holdIDs()
	return EntitlementState{
		ID: e.id, PersonKey: e.person, Qualification: e.q, CertificateID: e.certificate, AmountFen: e.amount,
		Payee: e.payee.proto(), Year: e.year, UnitCode: e.unit, ConfirmedBy: e.confirmedBy, ApprovedBy: e.approvedBy,
		NoticeStart: e.noticeStart, NoticeEnd: e.noticeEnd, NoticeClosed: e.noticeClosed, Holds: holds,
		Cancelled: e.cancelled, PaymentOrders: slices.Clone(e.orders), InFlight: e.inFlight, PaidFen: e.paid, ClawbackID: e.clawback,
	}, true
}

// FundState summarises a unit's budget for a year (rule 11).
type FundState struct {
	Year      int32
	UnitCode  string
	Allocated int64
	// Committed is the sum of the fund's entitlements that are not waiting
	// for budget and not cancelled before any payment.
	Committed int64
	// Waiting are the budget-held entitlements, in release order.
	Waiting []string
}

// Fund returns the budget of a unit for a year (zero if none was allocated).
func (w *World) Fund(year int32, unit string) FundState {
	f := w.funds[fundKey{year, unit}]
	if f == nil {
		return FundState{Year: year, UnitCode: unit}
	}
	return FundState{Year: year, UnitCode: unit, Allocated: f.allocated, Committed: f.committed, Waiting: slices.Clone(f.queue)}
}

// ClawbackState summarises a receivable (rule 14).
type ClawbackState struct {
	ID            string
	EntitlementID string
	Payee         *subsidyv1.Payee
	AmountFen     int64
	RecoveredFen  int64
	WrittenOffFen int64
	// ReservedFen is offset by payment orders awaiting settlement.
	ReservedFen    int64
	OutstandingFen int64
}

// Clawback returns the state of a clawback.
func (w *World) Clawback(id string) (ClawbackState, bool) {
	c := w.clawbacks[id]
	if c == nil {
		return ClawbackState{}, false
	}
	return ClawbackState{ID: c.id, EntitlementID: c.entitlement, Payee: c.payee.proto(), AmountFen: c.amount, RecoveredFen: c.recovered,
		WrittenOffFen: c.writtenOff, ReservedFen: c.reserved, OutstandingFen: c.outstanding()}, true
}

// Flags returns the flags raised, in the order they were recorded.
func (w *World) Flags() []Flag {
	out := make([]Flag, 0, len(w.flagOrder))
	for _, id := range w.flagOrder {
		out = append(out, w.flags[id])
	}
	return out
}

// Units returns the unit table in force in the World: the seed as changed
// by UnitDefined facts.
func (w *World) Units() *refdata.Table { return w.units }

// PassRate returns an institution's first-attempt results for a
// qualification over the rule set's window, and whether that is below the
// threshold (rule 15).
func (w *World) PassRate(institutionID string, q refdata.Qualification) (passes, attempts int, below bool) {
	b, p, n := w.qualityBelow(institutionID, q)
	return p, n, b
}
