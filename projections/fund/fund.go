// Package fund is the fund ledger read model: double-entry postings derived
// from the subsidy events, with balances by year and management unit.
//
// # Chart of accounts
//
// One set of accounts per fund, a fund being (budget year, management unit
// as recorded on the event). Balances are kept as debit minus credit; the
// JSON shows each account on its normal side.
//
//	account              normal  meaning
//	appropriation        debit   budget allocated to the fund (BudgetAllocated)
//	budget_available     credit  allocated budget not yet committed (negative: over-committed)
//	committed            credit  entitlements decided, notice not yet closed
//	payable              credit  entitlements whose notice closed, not yet settled (orders in flight included)
//	paid                 credit  entitlements settled: cash paid plus amounts offset against receivables
//	held_for_budget      credit  entitlements held because the fund had no room (rule 11)
//	budget_shortfall     debit   the other side of held_for_budget: budget the fund still lacks
//	clawed_back          credit  receivables raised against payees (ClawbackRaised)
//	clawback_receivable  debit   receivables still outstanding
//	recovered            debit   receivables recovered, by repayment or by offset
//	written_off          debit   receivables written off (ClawbackWrittenOff), less what was repaid after (ClawbackRecovered.written_off_fen)
//
// So that every event's posting balances by construction, each entitlement
// and each clawback "contributes" a balanced set of balances that depends
// only on its state, and an event posts the difference between its
// contributions after and before:
//
//	entitlement committed          Dr budget_available  Cr committed          (amount)
//	  held for budget              Dr budget_shortfall  Cr held_for_budget    (amount)
//	  payable (notice closed)      Dr budget_available  Cr payable            (amount)
//	  paid (settled)               Dr budget_available  Cr paid               (gross paid; a 0-fen
//	                               settlement posts nothing)
//	  cancelled unpaid (revoked    nothing: the commitment is released (but
//	    certificate, fraud)        while a payment order is in flight it stays
//	                               payable until the order settles or fails)
//	clawback                       Dr clawback_receivable (outstanding)
//	                               Dr recovered, Dr written_off
//	                               Cr clawed_back (amount raised)
//
// and a budget allocation posts Dr appropriation / Cr budget_available.
// Hence, per fund, at every position:
//
//	appropriation = budget_available + committed + payable + paid
//	budget_shortfall = held_for_budget
//	clawed_back = clawback_receivable + recovered + written_off
//
// Recoveries do not return budget to the fund (recovered money goes back to
// the treasury); an offset recovers a receivable of one fund while the
// payment it was withheld from is paid, in full, from its own fund.
package fund

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/snap"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/internal/rm"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// Name is the projection's name.
const Name = "fund"

// version: bump when Apply's meaning or the snapshot format changes.
const version = 2 // 2: an order in flight is a flag (a 0-fen order settles), and a cancelled entitlement stays payable while its order is in flight

// Account is an account of the chart.
type Account int

// The accounts (see the package documentation).
const (
	Appropriation Account = iota
	BudgetAvailable
	Committed
	Payable
	Paid
	HeldForBudget
	BudgetShortfall
	ClawedBack
	ClawbackReceivable
	Recovered
	WrittenOff
	numAccounts
)

// AccountInfo describes an account.
type AccountInfo struct {
	Name        string `json:"name"`
	Normal      string `json:"normal"`
	Description string `json:"description"`
}

// Chart is the chart of accounts, in Account order.
var Chart = [numAccounts]AccountInfo{
	{"appropriation", "debit", "Budget allocated to the fund."},
	{"budget_available", "credit", "Allocated budget not yet committed (negative when over-committed)."},
	{"committed", "credit", "Entitlements decided whose notice has not closed."},
	{"payable", "credit", "Entitlements whose notice closed, not yet settled."},
	{"paid", "credit", "Entitlements settled: cash paid plus amounts offset against receivables."},
	{"held_for_budget", "credit", "Entitlements held because the fund had no room (rule 11)."},
	{"budget_shortfall", "debit", "Budget the fund lacks for the entitlements held for budget."},
	{"clawed_back", "credit", "Receivables raised against payees."},
	{"clawback_receivable", "debit", "Receivables still outstanding."},
	{"recovered", "debit", "Receivables recovered by repayment or offset."},
	{"written_off", "debit", "Receivables written off."},
}

func (a Account) String() string {
	if a >= 0 && a < numAccounts {
		return Chart[a].Name
	}
	return fmt.Sprintf("account(%d)", int(a))
}

type vec [numAccounts]int64 // debit minus credit

type fundKey struct {
	year int32
	unit uint32
}

type fundState struct {
	key             fundKey
	bal             vec
	debits, credits int64
}

const (
	fBudgetHeld uint8 = 1 << iota
	fPayable
	fCancelled
	fInFlight // a payment order is in flight (its gross is pending, perhaps 0)
	fPaid     // a payment order settled (perhaps for 0 fen)
)

type entState struct {
	fund    int32
	amount  int64
	paid    int64
	pending int64 // gross of the order in flight (fInFlight)
	flags   uint8
}

type clawState struct {
	fund                          int32
	amount, recovered, writtenOff int64
}

// Line is one line of a journal entry.
type Line struct {
	Account   string `json:"account"`
	DebitFen  int64  `json:"debit_fen"`
	CreditFen int64  `json:"credit_fen"`
}

// Entry is a journal entry: the posting one event made in one fund.
type Entry struct {
	Seq       uint64          `json:"seq"`
	Position  events.Position `json:"position"`
	EventType string          `json:"event_type"`
	Reference string          `json:"reference"`
	Year      int             `json:"year"`
	UnitCode  string          `json:"unit_code"`
	Lines     []Line          `json:"lines"`
}

// posting is a journal entry as the ring keeps it: the event's change of
// balances instead of its lines, so that posting allocates nothing; entry
// makes the lines when the journal is read.
type posting struct {
	seq   uint64
	pos   events.Position
	typ   string
	ref   string
	fund  int32
	delta vec
}

// JournalSize is how many recent entries the model keeps in memory (the
// whole journal is derivable from the log: rebuild as of a position).
const JournalSize = 1000

// Model is the fund ledger projection.
type Model struct {
	mu      sync.RWMutex
	pos     events.Position
	strs    *rm.Strings
	units   *rm.Units
	funds   []fundState
	fundIdx map[fundKey]int32
	ents    map[events.ID]entState
	claws   map[events.ID]clawState
	journal []posting // ring
	seq     uint64
	debits  int64
	credits int64
}

var _ projections.Projection = (*Model)(nil)

// New returns an empty ledger.
func New() *Model {
	return &Model{strs: rm.NewStrings(), units: rm.NewUnits(), fundIdx: map[fundKey]int32{},
		ents: map[events.ID]entState{}, claws: map[events.ID]clawState{}}
}

// Factory makes fresh models for a Runner.
func Factory() projections.Projection { return New() }

// Name implements projections.Projection.
func (m *Model) Name() string { return Name }

// Version implements projections.Projection.
func (m *Model) Version() uint32 { return version }

// Types implements projections.Projection.
func (m *Model) Types() []string {
	return []string{"subsidy.v1.UnitDefined", "subsidy.v1.BudgetAllocated", "subsidy.v1.SubsidyEntitled",
		"subsidy.v1.EntitlementHeld", "subsidy.v1.EntitlementReleased", "subsidy.v1.NoticeClosed",
		"subsidy.v1.PaymentOrdered", "subsidy.v1.PaymentSettled", "subsidy.v1.PaymentFailed",
		"subsidy.v1.ClawbackRaised", "subsidy.v1.ClawbackRecovered", "subsidy.v1.ClawbackWrittenOff"}
}

// contribution is the entitlement's balances in its fund. A cancelled
// entitlement releases its commitment only when no money moved and none is
// moving: with an order in flight it stays payable until the order's result
// (settled: paid, and the clawback the rules raise; failed: released), as
// the rules keep it counted in the fund's budget (rules.entitlement.counts).
func (e entState) contribution() (v vec) {
	switch {
	case e.paid > 0 || e.flags&fPaid != 0:
		v[BudgetAvailable], v[Paid] = e.paid, -e.paid
	case e.flags&fCancelled != 0 && e.flags&fInFlight == 0:
	case e.flags&fBudgetHeld != 0:
		v[BudgetShortfall], v[HeldForBudget] = e.amount, -e.amount
	case e.flags&fPayable != 0:
		v[BudgetAvailable], v[Payable] = e.amount, -e.amount
	default:
		v[BudgetAvailable], v[Committed] = e.amount, -e.amount
	}
	return v
}

func (c clawState) contribution() (v vec) {
	v[ClawbackReceivable] = c.amount - c.recovered - c.writtenOff
	v[Recovered] = c.recovered
	v[WrittenOff] = c.writtenOff
	v[ClawedBack] = -c.amount
	return v
}

func (m *Model) fund(year int32, unit string) int32 {
	k := fundKey{year, m.strs.ID(unit)}
	if i, ok := m.fundIdx[k]; ok {
		return i
	}
	i := int32(len(m.funds))
	m.funds = append(m.funds, fundState{key: k})
	m.fundIdx[k] = i
	return i
}

// post books delta (debit minus credit per account) into fund f.
func (m *Model) post(ev *projections.Event, ref string, f int32, delta vec) {
	if delta == (vec{}) {
		return
	}
	fs := &m.funds[f]
	for a, d := range delta {
		fs.bal[a] += d
		if d > 0 {
			fs.debits += d
			m.debits += d
		} else {
			fs.credits -= d
			m.credits -= d
		}
	}
	m.seq++
	p := posting{seq: m.seq, pos: ev.Position, typ: ev.Type, ref: strings.Clone(ref), fund: f, delta: delta} // a build's strings point into memory it reuses
	if len(m.journal) < JournalSize {
		m.journal = append(m.journal, p)
	} else {
		m.journal[(m.seq-1)%JournalSize] = p
	}
}

// entry returns the journal entry of a posting: a line for each account
// the posting changes, in chart order.
func (m *Model) entry(p *posting) Entry {
	k := m.funds[p.fund].key
	e := Entry{Seq: p.seq, Position: p.pos, EventType: p.typ, Reference: p.ref, Year: int(k.year), UnitCode: m.strs.Str(k.unit)}
	for a, d := range p.delta {
		switch {
		case d > 0:
			e.Lines = append(e.Lines, Line{Account: Chart[a].Name, DebitFen: d})
		case d < 0:
			e.Lines = append(e.Lines, Line{Account: Chart[a].Name, CreditFen: -d})
		}
	}
	return e
}

// posting returns the posting of a journal entry read from a snapshot.
// Errors: a fund or an account the model does not know.
func (m *Model) posting(e *Entry) (posting, error) {
	p := posting{seq: e.Seq, pos: e.Position, typ: e.EventType, ref: e.Reference}
	unit, ok := m.strs.Lookup(e.UnitCode)
	if !ok {
		return p, fmt.Errorf("fund: snapshot: journal entry %d names unknown unit %q", e.Seq, e.UnitCode)
	}
	if p.fund, ok = m.fundIdx[fundKey{int32(e.Year), unit}]; !ok {
		return p, fmt.Errorf("fund: snapshot: journal entry %d names unknown fund %d/%s", e.Seq, e.Year, e.UnitCode)
	}
	for _, l := range e.Lines {
		a := accountNamed(l.Account)
		if a < 0 {
			return p, fmt.Errorf("fund: snapshot: journal entry %d names unknown account %q", e.Seq, l.Account)
		}
		p.delta[a] += l.DebitFen - l.CreditFen
	}
	return p, nil
}

// accountNamed returns the account of a name in the chart, -1 if none.
func accountNamed(name string) Account {
	for a := range numAccounts {
		if Chart[a].Name == name {
			return a
		}
	}
	return -1
}

func sub(a, b vec) (d vec) {
	for i := range a {
		d[i] = a[i] - b[i]
	}
	return d
}

// Apply implements projections.Projection.
func (m *Model) Apply(ev *projections.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.apply(ev); err != nil {
		return err
	}
	m.pos = ev.Position
	return nil
}

// ApplyBatch implements projections.BatchApplier.
func (m *Model) ApplyBatch(evs []*projections.Event) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return projections.ApplyEach(evs, m.apply, &m.pos)
}

// entOf returns the entitlement the event names by id (its payload's
// entitlement_id field, as the decoder parsed it).
func (m *Model) entOf(ev *projections.Event, id string) (events.ID, entState, error) {
	return projections.EntitlementIn(ev, id, m.ents)
}

func (m *Model) clawOf(id, typ string) (events.ID, clawState, error) {
	cid, err := rm.ID(id)
	if err != nil {
		return cid, clawState{}, rm.Err(typ, "clawback id: %v", err)
	}
	c, ok := m.claws[cid]
	if !ok {
		return cid, c, rm.Err(typ, "unknown clawback %s", id)
	}
	return cid, c, nil
}

func cancels(r pb.ReasonCode) bool {
	return r == pb.ReasonCode_REASON_CODE_CERTIFICATE_REVOKED || r == pb.ReasonCode_REASON_CODE_FRAUD_FINDING
}

func (m *Model) apply(ev *projections.Event) error {
	switch p := ev.Payload.(type) {
	case *pb.UnitDefined:
		return m.units.Apply(p)
	case *pb.BudgetAllocated:
		if p.AmountFen < 0 {
			return rm.Err(ev.Type, "negative allocation %d", p.AmountFen)
		}
		var d vec
		d[Appropriation], d[BudgetAvailable] = p.AmountFen, -p.AmountFen
		m.post(ev, p.AllocationId, m.fund(p.Year, p.UnitCode), d)
		return nil
	case *pb.SubsidyEntitled:
		eid, err := ev.EntitlementIDOf(p.EntitlementId)
		if err != nil {
			return rm.Err(ev.Type, "entitlement id: %v", err)
		}
		if _, dup := m.ents[eid]; dup {
			return rm.Err(ev.Type, "entitlement %s recorded twice", p.EntitlementId)
		}
		if p.AmountFen < 0 {
			return rm.Err(ev.Type, "negative amount %d", p.AmountFen)
		}
		e := entState{fund: m.fund(p.Year, p.UnitCode), amount: p.AmountFen}
		m.ents[eid] = e
		m.post(ev, p.EntitlementId, e.fund, e.contribution())
		return nil
	}
	// Entitlement events: change the state, post the difference.
	if id, ok := entitlementOf(ev); ok {
		eid, e, err := m.entOf(ev, id)
		if err != nil {
			return err
		}
		before := e.contribution()
		if err := change(ev, &e); err != nil {
			return err
		}
		m.ents[eid] = e
		m.post(ev, id, e.fund, sub(e.contribution(), before))
		return nil
	}
	return m.applyClawback(ev)
}

// entitlementOf returns the entitlement an event changes the state of
// (false: not such an event).
func entitlementOf(ev *projections.Event) (string, bool) {
	switch p := ev.Payload.(type) {
	case *pb.EntitlementHeld:
		return p.EntitlementId, true
	case *pb.EntitlementReleased:
		return p.EntitlementId, true
	case *pb.NoticeClosed:
		return p.EntitlementId, true
	case *pb.PaymentOrdered:
		return p.EntitlementId, true
	case *pb.PaymentSettled:
		return p.EntitlementId, true
	case *pb.PaymentFailed:
		return p.EntitlementId, true
	}
	return "", false
}

// change applies an event entitlementOf names an entitlement for to the
// entitlement's state.
func change(ev *projections.Event, e *entState) error {
	switch p := ev.Payload.(type) {
	case *pb.EntitlementHeld:
		switch {
		case p.HoldId == "budget" || p.Reason == pb.ReasonCode_REASON_CODE_BUDGET_EXCEEDED:
			e.flags |= fBudgetHeld
		case cancels(p.Reason):
			e.flags |= fCancelled
		}
	case *pb.EntitlementReleased:
		if p.HoldId == "budget" {
			e.flags &^= fBudgetHeld
		}
	case *pb.NoticeClosed:
		e.flags |= fPayable
	case *pb.PaymentOrdered:
		e.pending = p.AmountFen
		e.flags |= fInFlight
	case *pb.PaymentSettled:
		if e.flags&fInFlight == 0 {
			return rm.Err(ev.Type, "entitlement %s has no payment order in flight", p.EntitlementId)
		}
		// A 0-fen order (a fee of 0 is valid) settles too: it posts nothing
		// and the entitlement is paid.
		e.paid += e.pending
		e.pending = 0
		e.flags = e.flags&^fInFlight | fPaid
	case *pb.PaymentFailed:
		e.pending = 0
		e.flags &^= fInFlight
	}
	return nil
}

// applyClawback applies the clawback events.
func (m *Model) applyClawback(ev *projections.Event) error {
	switch p := ev.Payload.(type) {
	case *pb.ClawbackRaised:
		cid, err := rm.ID(p.ClawbackId)
		if err != nil {
			return rm.Err(ev.Type, "clawback id: %v", err)
		}
		if _, dup := m.claws[cid]; dup {
			return rm.Err(ev.Type, "clawback %s raised twice", p.ClawbackId)
		}
		_, e, err := m.entOf(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		c := clawState{fund: e.fund, amount: p.AmountFen}
		m.claws[cid] = c
		m.post(ev, p.ClawbackId, c.fund, c.contribution())
	case *pb.ClawbackRecovered:
		cid, c, err := m.clawOf(p.ClawbackId, ev.Type)
		if err != nil {
			return err
		}
		before := c.contribution()
		c.recovered += p.AmountFen
		// A repayment of money written off reverses the write-off by
		// written_off_fen (rules behaviour 5): the receivable is
		// reinstated by as much and recovered.
		c.writtenOff -= p.WrittenOffFen
		m.claws[cid] = c
		m.post(ev, p.ClawbackId, c.fund, sub(c.contribution(), before))
	case *pb.ClawbackWrittenOff:
		cid, c, err := m.clawOf(p.ClawbackId, ev.Type)
		if err != nil {
			return err
		}
		before := c.contribution()
		c.writtenOff += p.AmountFen
		m.claws[cid] = c
		m.post(ev, p.ClawbackId, c.fund, sub(c.contribution(), before))
	}
	return nil
}

// Check verifies the ledger's invariants: total debits equal total
// credits, every fund's balances sum to zero, and the identities of the
// package documentation hold in every fund. The property test calls it
// after every event.
func (m *Model) Check() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.debits != m.credits {
		return fmt.Errorf("fund: debits %d != credits %d", m.debits, m.credits)
	}
	var td, tc int64
	for _, f := range m.funds {
		var sum int64
		for _, b := range f.bal {
			sum += b
		}
		name := fmt.Sprintf("fund %d/%s", f.key.year, m.strs.Str(f.key.unit))
		switch {
		case sum != 0:
			return fmt.Errorf("%s: balances sum to %d", name, sum)
		case f.debits != f.credits:
			return fmt.Errorf("%s: debits %d != credits %d", name, f.debits, f.credits)
		case f.bal[Appropriation] != -(f.bal[BudgetAvailable] + f.bal[Committed] + f.bal[Payable] + f.bal[Paid]):
			return fmt.Errorf("%s: appropriation %d != available+committed+payable+paid", name, f.bal[Appropriation])
		case f.bal[BudgetShortfall] != -f.bal[HeldForBudget]:
			return fmt.Errorf("%s: shortfall %d != held for budget %d", name, f.bal[BudgetShortfall], -f.bal[HeldForBudget])
		case -f.bal[ClawedBack] != f.bal[ClawbackReceivable]+f.bal[Recovered]+f.bal[WrittenOff]:
			return fmt.Errorf("%s: clawed back %d != receivable+recovered+written off", name, -f.bal[ClawedBack])
		}
		td += f.debits
		tc += f.credits
	}
	if td != m.debits || tc != m.credits {
		return fmt.Errorf("fund: funds' debits/credits %d/%d != totals %d/%d", td, tc, m.debits, m.credits)
	}
	return nil
}

// Snapshot implements projections.Projection.
func (m *Model) Snapshot(w io.Writer) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	sw := snap.NewWriter(w)
	sw.Magic(Name, version)
	sw.Uvarint(uint64(m.pos))
	m.strs.Write(sw)
	m.units.Write(sw)
	sw.Uvarint(uint64(len(m.funds)))
	for _, f := range m.funds {
		sw.Int(int(f.key.year))
		sw.Uvarint(uint64(f.key.unit))
		for _, b := range f.bal {
			sw.Varint(b)
		}
		sw.Varint(f.debits)
		sw.Varint(f.credits)
	}
	ids := make([]events.ID, 0, len(m.ents))
	for id := range m.ents {
		ids = append(ids, id)
	}
	sortIDs(ids)
	sw.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		e := m.ents[id]
		sw.Fixed(id[:])
		sw.Uvarint(uint64(e.fund))
		sw.Varint(e.amount)
		sw.Varint(e.paid)
		sw.Varint(e.pending)
		sw.Uvarint(uint64(e.flags))
	}
	ids = ids[:0]
	for id := range m.claws {
		ids = append(ids, id)
	}
	sortIDs(ids)
	sw.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		c := m.claws[id]
		sw.Fixed(id[:])
		sw.Uvarint(uint64(c.fund))
		sw.Varint(c.amount)
		sw.Varint(c.recovered)
		sw.Varint(c.writtenOff)
	}
	sw.Uvarint(m.seq)
	sw.Varint(m.debits)
	sw.Varint(m.credits)
	recent := m.recent(JournalSize)
	sw.Uvarint(uint64(len(recent)))
	for _, e := range recent {
		sw.Uvarint(e.Seq)
		sw.Uvarint(uint64(e.Position))
		sw.String(e.EventType)
		sw.String(e.Reference)
		sw.Int(e.Year)
		sw.String(e.UnitCode)
		sw.Uvarint(uint64(len(e.Lines)))
		for _, l := range e.Lines {
			sw.String(l.Account)
			sw.Varint(l.DebitFen)
			sw.Varint(l.CreditFen)
		}
	}
	return sw.Flush()
}

func sortIDs(ids []events.ID) {
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
}

// Restore implements projections.Projection.
func (m *Model) Restore(r io.Reader) error {
	sr := snap.NewReader(r)
	sr.Magic(Name, version)
	n := New()
	n.pos = events.Position(sr.Uvarint())
	n.strs.Read(sr)
	n.units.Read(sr)
	nf := sr.Len(1 << 24)
	n.funds = make([]fundState, nf)
	for i := range n.funds {
		f := &n.funds[i]
		f.key = fundKey{int32(sr.Int()), uint32(sr.Uvarint())}
		for a := range f.bal {
			f.bal[a] = sr.Varint()
		}
		f.debits, f.credits = sr.Varint(), sr.Varint()
		n.fundIdx[f.key] = int32(i)
	}
	ne := sr.Len(1 << 30)
	n.ents = make(map[events.ID]entState, ne) // sized once: no growing while restoring
	for range ne {
		var id events.ID
		sr.Fixed(id[:])
		e := entState{fund: int32(sr.Uvarint()), amount: sr.Varint(), paid: sr.Varint(), pending: sr.Varint(), flags: uint8(sr.Uvarint())}
		if sr.Err() != nil {
			return sr.Err()
		}
		if int(e.fund) >= nf {
			return fmt.Errorf("fund: snapshot: entitlement in fund %d of %d", e.fund, nf)
		}
		n.ents[id] = e
	}
	nc := sr.Len(1 << 30)
	for range nc {
		var id events.ID
		sr.Fixed(id[:])
		c := clawState{fund: int32(sr.Uvarint()), amount: sr.Varint(), recovered: sr.Varint(), writtenOff: sr.Varint()}
		if sr.Err() != nil {
			return sr.Err()
		}
		if int(c.fund) >= nf {
			return fmt.Errorf("fund: snapshot: clawback in fund %d of %d", c.fund, nf)
		}
		n.claws[id] = c
	}
	n.seq = sr.Uvarint()
	n.debits, n.credits = sr.Varint(), sr.Varint()
	nj := sr.Len(JournalSize)
	entries := make([]Entry, nj)
	for i := range entries {
		e := &entries[i]
		e.Seq = sr.Uvarint()
		e.Position = events.Position(sr.Uvarint())
		e.EventType = sr.String()
		e.Reference = sr.String()
		e.Year = sr.Int()
		e.UnitCode = sr.String()
		nl := sr.Len(64)
		e.Lines = make([]Line, nl)
		for j := range e.Lines {
			e.Lines[j] = Line{Account: sr.String(), DebitFen: sr.Varint(), CreditFen: sr.Varint()}
		}
	}
	if err := sr.Err(); err != nil {
		return err
	}
	// Lay the entries back into the ring where post would have put them.
	n.journal = make([]posting, min(int(n.seq), JournalSize))
	for i := range entries {
		e := &entries[i]
		if e.Seq == 0 || int((e.Seq-1)%JournalSize) >= len(n.journal) {
			return fmt.Errorf("fund: snapshot: journal entry %d out of place", e.Seq)
		}
		p, err := n.posting(e)
		if err != nil {
			return err
		}
		n.journal[(e.Seq-1)%JournalSize] = p
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pos, m.strs, m.units, m.funds, m.fundIdx, m.ents, m.claws = n.pos, n.strs, n.units, n.funds, n.fundIdx, n.ents, n.claws
	m.seq, m.debits, m.credits, m.journal = n.seq, n.debits, n.credits, n.journal
	return nil
}

// recent returns the last n entries, oldest first. Callers hold the lock.
func (m *Model) recent(n int) []Entry {
	n = min(n, len(m.journal))
	out := make([]Entry, 0, n)
	for s := m.seq - uint64(n) + 1; s <= m.seq && n > 0; s++ {
		out = append(out, m.entry(&m.journal[(s-1)%JournalSize]))
	}
	return out
}
