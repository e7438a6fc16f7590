// Package trainee is the trainee status read model: everything the ledger
// knows about one person key — registration (masked), eligibility evidence,
// enrolments and training, assessment attempts, certificates, advances,
// entitlements with their state, holds, notice and payments, clawbacks,
// denials and flags — with the reason and rule-set version of each
// automatic decision and the log position of the event that recorded it
// (GET /v1/audit/events/{position} shows the decision's checks and
// evidence in full).
//
// State is kept compact for a million trainees: person keys and ids as
// fixed-size arrays, institutions, units and rule-set versions interned,
// dates as yyyymmdd integers, entitlements in one slice.
package trainee

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/internal/rm"
	"github.com/cqhrss/subsidyledger/projections/internal/snap"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// Name is the projection's name.
const Name = "trainee"

// version: bump when Apply's meaning or the snapshot format changes.
const version = 1

// Model is the trainee status projection. Create it with New.
type Model struct {
	mu        sync.RWMutex
	pos       events.Position
	idx       map[rm.PersonKey]int32
	people    []person
	ents      []ent
	entIdx    map[events.ID]int32
	clawbacks map[events.ID]int32 // clawback id -> entitlement
	strs      *rm.Strings         // institutions, units, sources, rule-set versions
	units     *rm.Units
}

var _ projections.Projection = (*Model)(nil)

// New returns an empty model.
func New() *Model {
	return &Model{
		idx:       map[rm.PersonKey]int32{},
		entIdx:    map[events.ID]int32{},
		clawbacks: map[events.ID]int32{},
		strs:      rm.NewStrings(),
		units:     rm.NewUnits(),
	}
}

// Factory makes fresh models for a Runner.
func Factory() projections.Projection { return New() }

type person struct {
	key        rm.PersonKey
	maskedName string
	maskedID   string
	unit       uint32
	education  uint8
	employee   bool
	gradYear   int16
	regPos     uint64
	evidence   []evidence
	enrolments []enrolment
	attempts   []attempt
	certs      []cert
	advances   []advance
	ents       []int32
	denials    []denial
	flags      []flag
}

type evidence struct {
	id                     string
	category               uint8
	source                 uint32
	confirmed              bool
	gradYear               int16
	insuredFrom, insuredTo refdata.Date
	pos                    uint64
}

type enrolment struct {
	id            string
	inst          uint32
	q             rm.Q
	unit          uint32
	on, completed refdata.Date
}

type attempt struct {
	id                string
	eval, train       uint32
	q                 rm.Q
	n                 uint8
	theory, practical int8
	on                refdata.Date
}

type cert struct {
	id           string
	eval         uint32
	q            rm.Q
	assessment   string
	on, revoked  refdata.Date
	revokeReason string
}

type advance struct {
	id   string
	inst uint32
	q    rm.Q
	fen  int64
	on   refdata.Date
}

type denial struct {
	cert    string
	q       rm.Q
	reason  int32
	detail  string
	ruleSet uint32
	pos     uint64
}

type flag struct {
	id     events.ID
	reason int32
	inst   uint32
	detail string
	pos    uint64
}

type hold struct {
	id       string
	reason   int32
	placed   uint64
	released uint64
}

type order struct {
	attempt          uint32
	amount, offset   int64
	net              int64
	status           uint8 // orderInFlight, orderSettled, orderFailed
	resultOn         refdata.Date
	paidTo, failure  string
	orderedPosition  uint64
	resultedPosition uint64
}

const (
	orderInFlight uint8 = iota
	orderSettled
	orderFailed
)

type clawback struct {
	id                            events.ID
	amount, recovered, writtenOff int64
	cause                         uint8
	pos                           uint64
}

type ent struct {
	id                   events.ID
	person               int32
	q                    rm.Q
	payeeKind            uint8
	payeeInst            uint32
	year                 int16
	unit                 uint32
	train, eval          uint32
	amount               int64
	cert                 string
	feeSchedule          string
	assessedOn           refdata.Date
	confirmedOn          refdata.Date
	approvedOn           refdata.Date
	noticeStart          refdata.Date
	noticeEnd            refdata.Date
	closedOn             refdata.Date
	confirmedBy          string
	approvedBy           string
	ruleSet              uint32
	pos                  uint64
	holds                []hold
	objections, upheld   uint8
	orders               []order
	paid, cash, offsetIn int64
	cancelled            int32 // reason code of the revocation or fraud hold
	claw                 *clawback
}

// Name implements projections.Projection.
func (m *Model) Name() string { return Name }

// Version implements projections.Projection.
func (m *Model) Version() uint32 { return version }

// Types implements projections.Projection.
func (m *Model) Types() []string {
	return []string{
		"subsidy.v1.UnitDefined", "subsidy.v1.TraineeRegistered", "subsidy.v1.EligibilityEvidenceRecorded",
		"subsidy.v1.Enrolled", "subsidy.v1.TrainingCompleted", "subsidy.v1.AssessmentRecorded",
		"subsidy.v1.CertificateIssued", "subsidy.v1.CertificateRevoked", "subsidy.v1.AdvancePaymentRecorded",
		"subsidy.v1.SubsidyEntitled", "subsidy.v1.SubsidyDenied", "subsidy.v1.EntitlementConfirmed",
		"subsidy.v1.EntitlementApproved", "subsidy.v1.NoticeOpened", "subsidy.v1.NoticeClosed",
		"subsidy.v1.ObjectionRaised", "subsidy.v1.ObjectionResolved", "subsidy.v1.EntitlementHeld",
		"subsidy.v1.EntitlementReleased", "subsidy.v1.PaymentOrdered", "subsidy.v1.PaymentSettled",
		"subsidy.v1.PaymentFailed", "subsidy.v1.ClawbackRaised", "subsidy.v1.ClawbackRecovered",
		"subsidy.v1.ClawbackWrittenOff", "subsidy.v1.ViolationFlagged",
	}
}

func (m *Model) person(key string, typ string) (int32, error) {
	k, err := rm.ParsePersonKey(key)
	if err != nil {
		return 0, rm.Err(typ, "%v", err)
	}
	i, ok := m.idx[k]
	if !ok {
		return 0, rm.Err(typ, "unknown trainee %s", key)
	}
	return i, nil
}

func (m *Model) ent(id string, typ string) (int32, error) {
	eid, err := rm.ID(id)
	if err != nil {
		return 0, rm.Err(typ, "entitlement id: %v", err)
	}
	i, ok := m.entIdx[eid]
	if !ok {
		return 0, rm.Err(typ, "unknown entitlement %s", id)
	}
	return i, nil
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

func (m *Model) apply(ev *projections.Event) error {
	pos := uint64(ev.Position)
	switch p := ev.Payload.(type) {
	case *pb.UnitDefined:
		return m.units.Apply(p)
	case *pb.TraineeRegistered:
		k, err := rm.ParsePersonKey(p.PersonKey)
		if err != nil {
			return rm.Err(ev.Type, "%v", err)
		}
		i, ok := m.idx[k]
		if !ok {
			i = int32(len(m.people))
			m.people = append(m.people, person{key: k})
			m.idx[k] = i
		}
		pp := &m.people[i]
		pp.maskedName, pp.maskedID = p.MaskedName, p.MaskedId
		pp.unit = m.strs.ID(p.UnitCode)
		pp.education, pp.employee, pp.gradYear = uint8(p.Education), p.EnterpriseEmployee, int16(p.GraduationYear)
		pp.regPos = pos
	case *pb.EligibilityEvidenceRecorded:
		i, err := m.person(p.PersonKey, ev.Type)
		if err != nil {
			return err
		}
		pp := &m.people[i]
		pp.evidence = append(pp.evidence, evidence{id: p.EvidenceId, category: uint8(p.Category), source: m.strs.ID(p.Source),
			confirmed: p.Confirmed, gradYear: int16(p.GraduationYear), insuredFrom: rm.Date(p.InsuredFrom), insuredTo: rm.Date(p.InsuredTo), pos: pos})
	case *pb.Enrolled:
		i, err := m.person(p.PersonKey, ev.Type)
		if err != nil {
			return err
		}
		pp := &m.people[i]
		pp.enrolments = append(pp.enrolments, enrolment{id: p.EnrolmentId, inst: m.strs.ID(p.TrainingInstitutionId),
			q: rm.QOf(p.Qualification), unit: m.strs.ID(p.UnitCode), on: rm.Date(p.EnrolledOn)})
	case *pb.TrainingCompleted:
		i, err := m.person(p.PersonKey, ev.Type)
		if err != nil {
			return err
		}
		pp := &m.people[i]
		for j := range pp.enrolments {
			if pp.enrolments[j].id == p.EnrolmentId {
				pp.enrolments[j].completed = rm.Date(p.CompletedOn)
				return nil
			}
		}
		return rm.Err(ev.Type, "unknown enrolment %s", p.EnrolmentId)
	case *pb.AssessmentRecorded:
		i, err := m.person(p.PersonKey, ev.Type)
		if err != nil {
			return err
		}
		pp := &m.people[i]
		pp.attempts = append(pp.attempts, attempt{id: p.AssessmentId, eval: m.strs.ID(p.EvaluationInstitutionId),
			train: m.strs.ID(p.TrainingInstitutionId), q: rm.QOf(p.Qualification), n: uint8(min(p.Attempt, 255)),
			theory: int8(p.TheoryScore), practical: int8(p.PracticalScore), on: rm.Date(p.AssessedOn)})
	case *pb.CertificateIssued:
		i, err := m.person(p.PersonKey, ev.Type)
		if err != nil {
			return err
		}
		pp := &m.people[i]
		pp.certs = append(pp.certs, cert{id: p.CertificateId, eval: m.strs.ID(p.EvaluationInstitutionId), q: rm.QOf(p.Qualification),
			assessment: p.AssessmentId, on: rm.Date(p.IssuedOn)})
	case *pb.CertificateRevoked:
		i, err := m.person(p.PersonKey, ev.Type)
		if err != nil {
			return err
		}
		pp := &m.people[i]
		for j := range pp.certs {
			if pp.certs[j].id == p.CertificateId {
				pp.certs[j].revoked, pp.certs[j].revokeReason = rm.Date(p.RevokedOn), p.Reason
				return nil
			}
		}
		return rm.Err(ev.Type, "unknown certificate %s", p.CertificateId)
	case *pb.AdvancePaymentRecorded:
		i, err := m.person(p.PersonKey, ev.Type)
		if err != nil {
			return err
		}
		pp := &m.people[i]
		pp.advances = append(pp.advances, advance{id: p.AdvanceId, inst: m.strs.ID(p.TrainingInstitutionId), q: rm.QOf(p.Qualification),
			fen: p.AmountFen, on: rm.Date(p.PaidOn)})
	case *pb.SubsidyEntitled:
		i, err := m.person(p.PersonKey, ev.Type)
		if err != nil {
			return err
		}
		id, err := rm.ID(p.EntitlementId)
		if err != nil {
			return rm.Err(ev.Type, "entitlement id: %v", err)
		}
		if _, dup := m.entIdx[id]; dup {
			return rm.Err(ev.Type, "entitlement %s recorded twice", p.EntitlementId)
		}
		e := ent{id: id, person: i, q: rm.QOf(p.Qualification), payeeKind: uint8(p.Payee.GetKind()),
			payeeInst: m.strs.ID(p.Payee.GetInstitutionId()), year: int16(p.Year), unit: m.strs.ID(p.UnitCode),
			train: m.strs.ID(p.TrainingInstitutionId), eval: m.strs.ID(p.EvaluationInstitutionId), amount: p.AmountFen,
			cert: p.CertificateId, feeSchedule: p.FeeScheduleId, assessedOn: rm.Date(p.AssessedOn),
			ruleSet: m.strs.ID(p.Decision.GetRuleSetVersion()), pos: pos}
		m.entIdx[id] = int32(len(m.ents))
		m.people[i].ents = append(m.people[i].ents, int32(len(m.ents)))
		m.ents = append(m.ents, e)
	case *pb.SubsidyDenied:
		i, err := m.person(p.PersonKey, ev.Type)
		if err != nil {
			return err
		}
		pp := &m.people[i]
		pp.denials = append(pp.denials, denial{cert: p.CertificateId, q: rm.QOf(p.Qualification), reason: int32(p.Reason),
			detail: p.Detail, ruleSet: m.strs.ID(p.Decision.GetRuleSetVersion()), pos: pos})
	case *pb.EntitlementConfirmed:
		e, err := m.ent(p.EntitlementId, ev.Type)
		if err != nil {
			return err
		}
		m.ents[e].confirmedOn, m.ents[e].confirmedBy = rm.Date(p.ConfirmedOn), p.OfficialId
	case *pb.EntitlementApproved:
		e, err := m.ent(p.EntitlementId, ev.Type)
		if err != nil {
			return err
		}
		m.ents[e].approvedOn, m.ents[e].approvedBy = rm.Date(p.ApprovedOn), p.OfficialId
	case *pb.NoticeOpened:
		e, err := m.ent(p.EntitlementId, ev.Type)
		if err != nil {
			return err
		}
		m.ents[e].noticeStart, m.ents[e].noticeEnd = rm.Date(p.StartsOn), rm.Date(p.EndsOn)
	case *pb.NoticeClosed:
		e, err := m.ent(p.EntitlementId, ev.Type)
		if err != nil {
			return err
		}
		m.ents[e].closedOn = rm.Date(p.ClosedOn)
	case *pb.ObjectionRaised:
		e, err := m.ent(p.EntitlementId, ev.Type)
		if err != nil {
			return err
		}
		m.ents[e].objections++
	case *pb.ObjectionResolved:
		e, err := m.ent(p.EntitlementId, ev.Type)
		if err != nil {
			return err
		}
		if p.Upheld {
			m.ents[e].upheld++
		}
	case *pb.EntitlementHeld:
		e, err := m.ent(p.EntitlementId, ev.Type)
		if err != nil {
			return err
		}
		en := &m.ents[e]
		en.holds = append(en.holds, hold{id: p.HoldId, reason: int32(p.Reason), placed: pos})
		if p.Reason == pb.ReasonCode_REASON_CODE_CERTIFICATE_REVOKED || p.Reason == pb.ReasonCode_REASON_CODE_FRAUD_FINDING {
			en.cancelled = int32(p.Reason)
		}
	case *pb.EntitlementReleased:
		e, err := m.ent(p.EntitlementId, ev.Type)
		if err != nil {
			return err
		}
		en := &m.ents[e]
		for j := range en.holds {
			if en.holds[j].id == p.HoldId && en.holds[j].released == 0 {
				en.holds[j].released = pos
				return nil
			}
		}
		return rm.Err(ev.Type, "entitlement %s has no hold %q in place", p.EntitlementId, p.HoldId)
	case *pb.PaymentOrdered:
		e, err := m.ent(p.EntitlementId, ev.Type)
		if err != nil {
			return err
		}
		en := &m.ents[e]
		en.orders = append(en.orders, order{attempt: p.Attempt, amount: p.AmountFen, offset: p.OffsetFen, net: p.NetFen, orderedPosition: pos})
	case *pb.PaymentSettled:
		e, err := m.ent(p.EntitlementId, ev.Type)
		if err != nil {
			return err
		}
		en := &m.ents[e]
		o := en.lastOrder()
		if o == nil || o.status != orderInFlight {
			return rm.Err(ev.Type, "entitlement %s has no payment order in flight", p.EntitlementId)
		}
		o.status, o.resultOn, o.paidTo, o.resultedPosition = orderSettled, rm.Date(p.SettledOn), p.PaidToAccount, pos
		en.paid += o.amount
		en.cash += p.AmountFen
		en.offsetIn += o.offset
	case *pb.PaymentFailed:
		e, err := m.ent(p.EntitlementId, ev.Type)
		if err != nil {
			return err
		}
		o := m.ents[e].lastOrder()
		if o == nil || o.status != orderInFlight {
			return rm.Err(ev.Type, "entitlement %s has no payment order in flight", p.EntitlementId)
		}
		o.status, o.resultOn, o.failure, o.resultedPosition = orderFailed, rm.Date(p.FailedOn), p.Failure, pos
	case *pb.ClawbackRaised:
		e, err := m.ent(p.EntitlementId, ev.Type)
		if err != nil {
			return err
		}
		id, err := rm.ID(p.ClawbackId)
		if err != nil {
			return rm.Err(ev.Type, "clawback id: %v", err)
		}
		m.ents[e].claw = &clawback{id: id, amount: p.AmountFen, cause: uint8(p.Cause), pos: pos}
		m.clawbacks[id] = e
	case *pb.ClawbackRecovered:
		c, err := m.claw(p.ClawbackId, ev.Type)
		if err != nil {
			return err
		}
		c.recovered += p.AmountFen
	case *pb.ClawbackWrittenOff:
		c, err := m.claw(p.ClawbackId, ev.Type)
		if err != nil {
			return err
		}
		c.writtenOff += p.AmountFen
	case *pb.ViolationFlagged:
		k, err := rm.ParsePersonKey(p.Subject)
		if err != nil {
			return nil // about an institution or an account
		}
		i, ok := m.idx[k]
		if !ok {
			return nil
		}
		id, err := rm.ID(p.FlagId)
		if err != nil {
			return rm.Err(ev.Type, "flag id: %v", err)
		}
		m.people[i].flags = append(m.people[i].flags, flag{id: id, reason: int32(p.Reason), inst: m.strs.ID(p.InstitutionId), detail: p.Detail, pos: pos})
	}
	return nil
}

func (m *Model) claw(id, typ string) (*clawback, error) {
	cid, err := rm.ID(id)
	if err != nil {
		return nil, rm.Err(typ, "clawback id: %v", err)
	}
	e, ok := m.clawbacks[cid]
	if !ok {
		return nil, rm.Err(typ, "unknown clawback %s", id)
	}
	return m.ents[e].claw, nil
}

func (e *ent) lastOrder() *order {
	if len(e.orders) == 0 {
		return nil
	}
	return &e.orders[len(e.orders)-1]
}

// Entitlement states, as shown.
const (
	StateEntitled       = "entitled"
	StateConfirmed      = "confirmed"
	StateInNotice       = "in_notice"
	StatePayable        = "payable"
	StateHeld           = "held"
	StatePaymentOrdered = "payment_ordered"
	StatePaid           = "paid"
	StateCancelled      = "cancelled"
	StateClawedBack     = "clawed_back"
)

func (e *ent) activeHolds() int {
	n := 0
	for _, h := range e.holds {
		if h.released == 0 {
			n++
		}
	}
	return n
}

func (e *ent) state() string {
	o := e.lastOrder()
	switch {
	case e.claw != nil:
		return StateClawedBack
	case e.paid > 0:
		return StatePaid
	case e.cancelled != 0:
		return StateCancelled
	case o != nil && o.status == orderInFlight:
		return StatePaymentOrdered
	case e.activeHolds() > 0:
		return StateHeld
	case e.closedOn != 0:
		return StatePayable
	case e.noticeStart != 0:
		return StateInNotice
	case e.confirmedOn != 0:
		return StateConfirmed
	}
	return StateEntitled
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
	sw.Uvarint(uint64(len(m.people)))
	for i := range m.people {
		writePerson(sw, &m.people[i])
	}
	sw.Uvarint(uint64(len(m.ents)))
	for i := range m.ents {
		writeEnt(sw, &m.ents[i])
	}
	return sw.Flush()
}

// Restore implements projections.Projection.
func (m *Model) Restore(r io.Reader) error {
	sr := snap.NewReader(r)
	sr.Magic(Name, version)
	n := New()
	n.pos = events.Position(sr.Uvarint())
	n.strs.Read(sr)
	n.units.Read(sr)
	np := sr.Len(1 << 30)
	n.people = make([]person, np)
	for i := range n.people {
		readPerson(sr, &n.people[i])
		if sr.Err() != nil {
			return sr.Err()
		}
		n.idx[n.people[i].key] = int32(i)
	}
	ne := sr.Len(1 << 30)
	n.ents = make([]ent, ne)
	for i := range n.ents {
		readEnt(sr, &n.ents[i])
		if sr.Err() != nil {
			return sr.Err()
		}
		e := &n.ents[i]
		if int(e.person) >= np {
			return fmt.Errorf("trainee: snapshot: entitlement %d names person %d of %d", i, e.person, np)
		}
		n.entIdx[e.id] = int32(i)
		if e.claw != nil {
			n.clawbacks[e.claw.id] = int32(i)
		}
	}
	if err := sr.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pos, m.idx, m.people, m.ents, m.entIdx, m.clawbacks, m.strs, m.units =
		n.pos, n.idx, n.people, n.ents, n.entIdx, n.clawbacks, n.strs, n.units
	return nil
}

func writePerson(w *snap.Writer, p *person) {
	w.Fixed(p.key[:])
	w.String(p.maskedName)
	w.String(p.maskedID)
	w.Uvarint(uint64(p.unit))
	w.Uvarint(uint64(p.education))
	w.Bool(p.employee)
	w.Int(int(p.gradYear))
	w.Uvarint(p.regPos)
	w.Uvarint(uint64(len(p.evidence)))
	for _, e := range p.evidence {
		w.String(e.id)
		w.Uvarint(uint64(e.category))
		w.Uvarint(uint64(e.source))
		w.Bool(e.confirmed)
		w.Int(int(e.gradYear))
		w.Int(int(e.insuredFrom))
		w.Int(int(e.insuredTo))
		w.Uvarint(e.pos)
	}
	w.Uvarint(uint64(len(p.enrolments)))
	for _, e := range p.enrolments {
		w.String(e.id)
		w.Uvarint(uint64(e.inst))
		w.Uvarint(uint64(e.q))
		w.Uvarint(uint64(e.unit))
		w.Int(int(e.on))
		w.Int(int(e.completed))
	}
	w.Uvarint(uint64(len(p.attempts)))
	for _, a := range p.attempts {
		w.String(a.id)
		w.Uvarint(uint64(a.eval))
		w.Uvarint(uint64(a.train))
		w.Uvarint(uint64(a.q))
		w.Uvarint(uint64(a.n))
		w.Int(int(a.theory))
		w.Int(int(a.practical))
		w.Int(int(a.on))
	}
	w.Uvarint(uint64(len(p.certs)))
	for _, c := range p.certs {
		w.String(c.id)
		w.Uvarint(uint64(c.eval))
		w.Uvarint(uint64(c.q))
		w.String(c.assessment)
		w.Int(int(c.on))
		w.Int(int(c.revoked))
		w.String(c.revokeReason)
	}
	w.Uvarint(uint64(len(p.advances)))
	for _, a := range p.advances {
		w.String(a.id)
		w.Uvarint(uint64(a.inst))
		w.Uvarint(uint64(a.q))
		w.Varint(a.fen)
		w.Int(int(a.on))
	}
	w.Uvarint(uint64(len(p.ents)))
	for _, e := range p.ents {
		w.Uvarint(uint64(e))
	}
	w.Uvarint(uint64(len(p.denials)))
	for _, d := range p.denials {
		w.String(d.cert)
		w.Uvarint(uint64(d.q))
		w.Int(int(d.reason))
		w.String(d.detail)
		w.Uvarint(uint64(d.ruleSet))
		w.Uvarint(d.pos)
	}
	w.Uvarint(uint64(len(p.flags)))
	for _, f := range p.flags {
		w.Fixed(f.id[:])
		w.Int(int(f.reason))
		w.Uvarint(uint64(f.inst))
		w.String(f.detail)
		w.Uvarint(f.pos)
	}
}

const maxItems = 1 << 16

func readPerson(r *snap.Reader, p *person) {
	r.Fixed(p.key[:])
	p.maskedName = r.String()
	p.maskedID = r.String()
	p.unit = uint32(r.Uvarint())
	p.education = uint8(r.Uvarint())
	p.employee = r.Bool()
	p.gradYear = int16(r.Int())
	p.regPos = r.Uvarint()
	if n := r.Len(maxItems); n > 0 {
		p.evidence = make([]evidence, n)
		for i := range p.evidence {
			e := &p.evidence[i]
			e.id = r.String()
			e.category = uint8(r.Uvarint())
			e.source = uint32(r.Uvarint())
			e.confirmed = r.Bool()
			e.gradYear = int16(r.Int())
			e.insuredFrom = refdata.Date(r.Int())
			e.insuredTo = refdata.Date(r.Int())
			e.pos = r.Uvarint()
		}
	}
	if n := r.Len(maxItems); n > 0 {
		p.enrolments = make([]enrolment, n)
		for i := range p.enrolments {
			e := &p.enrolments[i]
			e.id = r.String()
			e.inst = uint32(r.Uvarint())
			e.q = rm.Q(r.Uvarint())
			e.unit = uint32(r.Uvarint())
			e.on = refdata.Date(r.Int())
			e.completed = refdata.Date(r.Int())
		}
	}
	if n := r.Len(maxItems); n > 0 {
		p.attempts = make([]attempt, n)
		for i := range p.attempts {
			a := &p.attempts[i]
			a.id = r.String()
			a.eval = uint32(r.Uvarint())
			a.train = uint32(r.Uvarint())
			a.q = rm.Q(r.Uvarint())
			a.n = uint8(r.Uvarint())
			a.theory = int8(r.Int())
			a.practical = int8(r.Int())
			a.on = refdata.Date(r.Int())
		}
	}
	if n := r.Len(maxItems); n > 0 {
		p.certs = make([]cert, n)
		for i := range p.certs {
			c := &p.certs[i]
			c.id = r.String()
			c.eval = uint32(r.Uvarint())
			c.q = rm.Q(r.Uvarint())
			c.assessment = r.String()
			c.on = refdata.Date(r.Int())
			c.revoked = refdata.Date(r.Int())
			c.revokeReason = r.String()
		}
	}
	if n := r.Len(maxItems); n > 0 {
		p.advances = make([]advance, n)
		for i := range p.advances {
			a := &p.advances[i]
			a.id = r.String()
			a.inst = uint32(r.Uvarint())
			a.q = rm.Q(r.Uvarint())
			a.fen = r.Varint()
			a.on = refdata.Date(r.Int())
		}
	}
	if n := r.Len(maxItems); n > 0 {
		p.ents = make([]int32, n)
		for i := range p.ents {
			p.ents[i] = int32(r.Uvarint())
		}
	}
	if n := r.Len(maxItems); n > 0 {
		p.denials = make([]denial, n)
		for i := range p.denials {
			d := &p.denials[i]
			d.cert = r.String()
			d.q = rm.Q(r.Uvarint())
			d.reason = int32(r.Int())
			d.detail = r.String()
			d.ruleSet = uint32(r.Uvarint())
			d.pos = r.Uvarint()
		}
	}
	if n := r.Len(maxItems); n > 0 {
		p.flags = make([]flag, n)
		for i := range p.flags {
			f := &p.flags[i]
			r.Fixed(f.id[:])
			f.reason = int32(r.Int())
			f.inst = uint32(r.Uvarint())
			f.detail = r.String()
			f.pos = r.Uvarint()
		}
	}
}

func writeEnt(w *snap.Writer, e *ent) {
	w.Fixed(e.id[:])
	w.Uvarint(uint64(e.person))
	w.Uvarint(uint64(e.q))
	w.Uvarint(uint64(e.payeeKind))
	w.Uvarint(uint64(e.payeeInst))
	w.Int(int(e.year))
	w.Uvarint(uint64(e.unit))
	w.Uvarint(uint64(e.train))
	w.Uvarint(uint64(e.eval))
	w.Varint(e.amount)
	w.String(e.cert)
	w.String(e.feeSchedule)
	for _, d := range []refdata.Date{e.assessedOn, e.confirmedOn, e.approvedOn, e.noticeStart, e.noticeEnd, e.closedOn} {
		w.Int(int(d))
	}
	w.String(e.confirmedBy)
	w.String(e.approvedBy)
	w.Uvarint(uint64(e.ruleSet))
	w.Uvarint(e.pos)
	w.Uvarint(uint64(len(e.holds)))
	for _, h := range e.holds {
		w.String(h.id)
		w.Int(int(h.reason))
		w.Uvarint(h.placed)
		w.Uvarint(h.released)
	}
	w.Uvarint(uint64(e.objections))
	w.Uvarint(uint64(e.upheld))
	w.Uvarint(uint64(len(e.orders)))
	for _, o := range e.orders {
		w.Uvarint(uint64(o.attempt))
		w.Varint(o.amount)
		w.Varint(o.offset)
		w.Varint(o.net)
		w.Uvarint(uint64(o.status))
		w.Int(int(o.resultOn))
		w.String(o.paidTo)
		w.String(o.failure)
		w.Uvarint(o.orderedPosition)
		w.Uvarint(o.resultedPosition)
	}
	w.Varint(e.paid)
	w.Varint(e.cash)
	w.Varint(e.offsetIn)
	w.Int(int(e.cancelled))
	w.Bool(e.claw != nil)
	if c := e.claw; c != nil {
		w.Fixed(c.id[:])
		w.Varint(c.amount)
		w.Varint(c.recovered)
		w.Varint(c.writtenOff)
		w.Uvarint(uint64(c.cause))
		w.Uvarint(c.pos)
	}
}

func readEnt(r *snap.Reader, e *ent) {
	r.Fixed(e.id[:])
	e.person = int32(r.Uvarint())
	e.q = rm.Q(r.Uvarint())
	e.payeeKind = uint8(r.Uvarint())
	e.payeeInst = uint32(r.Uvarint())
	e.year = int16(r.Int())
	e.unit = uint32(r.Uvarint())
	e.train = uint32(r.Uvarint())
	e.eval = uint32(r.Uvarint())
	e.amount = r.Varint()
	e.cert = r.String()
	e.feeSchedule = r.String()
	for _, d := range []*refdata.Date{&e.assessedOn, &e.confirmedOn, &e.approvedOn, &e.noticeStart, &e.noticeEnd, &e.closedOn} {
		*d = refdata.Date(r.Int())
	}
	e.confirmedBy = r.String()
	e.approvedBy = r.String()
	e.ruleSet = uint32(r.Uvarint())
	e.pos = r.Uvarint()
	if n := r.Len(maxItems); n > 0 {
		e.holds = make([]hold, n)
		for i := range e.holds {
			h := &e.holds[i]
			h.id = r.String()
			h.reason = int32(r.Int())
			h.placed = r.Uvarint()
			h.released = r.Uvarint()
		}
	}
	e.objections = uint8(r.Uvarint())
	e.upheld = uint8(r.Uvarint())
	if n := r.Len(maxItems); n > 0 {
		e.orders = make([]order, n)
		for i := range e.orders {
			o := &e.orders[i]
			o.attempt = uint32(r.Uvarint())
			o.amount = r.Varint()
			o.offset = r.Varint()
			o.net = r.Varint()
			o.status = uint8(r.Uvarint())
			o.resultOn = refdata.Date(r.Int())
			o.paidTo = r.String()
			o.failure = r.String()
			o.orderedPosition = r.Uvarint()
			o.resultedPosition = r.Uvarint()
		}
	}
	e.paid = r.Varint()
	e.cash = r.Varint()
	e.offsetIn = r.Varint()
	e.cancelled = int32(r.Int())
	if r.Bool() {
		c := &clawback{}
		r.Fixed(c.id[:])
		c.amount = r.Varint()
		c.recovered = r.Varint()
		c.writtenOff = r.Varint()
		c.cause = uint8(r.Uvarint())
		c.pos = r.Uvarint()
		e.claw = c
	}
}

// Position returns the position of the last event applied.
func (m *Model) Position() events.Position {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.pos
}

// Count returns the number of trainees registered.
func (m *Model) Count() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.people)
}

// normaliseMasked makes a masked lookup key comparable: trimmed, final x
// upper-case.
func normaliseMasked(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "x") {
		s = s[:len(s)-1] + "X"
	}
	return s
}
