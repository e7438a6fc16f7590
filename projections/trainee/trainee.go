// Package trainee is the trainee status read model: everything the ledger
// knows about one person key — registration (masked), eligibility evidence,
// enrolments and training, assessment attempts, certificates, advances,
// entitlements with their state, holds, notice and payments, clawbacks,
// denials and flags (open, or cleared by a FlagCleared) — with the reason
// and rule-set version of each automatic decision and the log position of
// the event that recorded it (GET /v1/audit/events/{position} shows the
// decision's checks and evidence in full).
//
// # Layout
//
// The state must hold a million trainees well under a gigabyte, so it is
// laid out for size rather than convenience: every kind of record lives in
// one slice of its own (enrolments, attempts, certificates, entitlements,
// holds, payment orders, ...), and a person (or an entitlement) chains its
// records through them with head/tail indexes; strings that repeat
// (institutions, units, officials, fee schedules, reason details, rule-set
// versions, hold ids) are interned; references between records (a
// certificate's assessment, an entitlement's certificate) are indexes; person
// keys and ids are fixed-size arrays; dates are yyyymmdd integers.
package trainee

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/snap"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/internal/rm"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// Name is the projection's name.
const Name = "trainee"

// version: bump when Apply's meaning or the snapshot format changes.
const version = 7 // 3: the person-key index is written as it is, after the people; 4: a denial names the entitlement that superseded it; 5: a flag's clearing (FlagCleared); 6: a denial's revised reason (SubsidyDenialRevised); 7: the days of holds, releases and clawbacks

// list chains records of one kind through their slice: head and tail are
// index+1 (0: empty); each record's next is index+1 of the next.
type list struct{ head, tail int32 }

// push appends r to recs and to the list l.
func push[T any](recs *rm.Chunks[T], l *list, r T, next func(*T) *int32) int32 {
	n := recs.Append(r) + 1
	if l.tail != 0 {
		*next(recs.At(l.tail - 1)) = n
	} else {
		l.head = n
	}
	l.tail = n
	return n - 1
}

// walk calls f with the index of each record of l, in order.
func walk[T any](recs *rm.Chunks[T], l list, next func(*T) *int32, f func(i int32)) {
	for n := l.head; n != 0; n = *next(recs.At(n - 1)) {
		f(n - 1)
	}
}

type person struct {
	key        rm.PersonKey
	maskedName rm.Ref
	maskedID   [8]byte // first and last four characters of a standard mask
	maskedIDX  uint32  // interned masked ID when it is not standard
	unit       uint32
	regPos     uint64
	gradYear   int16
	education  uint8
	employee   bool
	evidence   list
	enrolments list
	attempts   list
	certs      list
	advances   list
	ents       list
	denials    list
	flags      list
}

type evidenceRec struct {
	id                     rm.Ref
	pos                    uint64
	source                 uint32
	insuredFrom, insuredTo refdata.Date
	gradYear               int16
	category               uint8
	confirmed              bool
	next                   int32
}

type enrolmentRec struct {
	id            rm.Ref
	inst, unit    uint32
	on, completed refdata.Date
	q             rm.Q
	next          int32
}

type attemptRec struct {
	id                rm.Ref
	eval, train       uint32
	on                refdata.Date
	q                 rm.Q
	n                 uint8
	theory, practical int8
	next              int32
}

type certRec struct {
	id           rm.Ref
	eval         uint32
	assessment   int32  // attempt index+1, or 0 with assessmentX
	assessmentX  uint32 // interned assessment id when no attempt matches
	on, revoked  refdata.Date
	revokeReason uint32
	q            rm.Q
	next         int32
}

type advanceRec struct {
	id   rm.Ref
	fen  int64
	inst uint32
	on   refdata.Date
	q    rm.Q
	next int32
}

type denialRec struct {
	pos        uint64
	cert       int32  // certificate index+1, or 0 with certX
	certX      uint32 // interned certificate id otherwise
	detail     uint32
	ruleSet    uint32
	reason     int32
	superseded int32 // index+1 of the entitlement the certificate earned after all (rules' second chance), 0 none
	q          rm.Q
	next       int32
}

// revision is a denial's revised reason (SubsidyDenialRevised): a second
// chance that failed on another rule than the denial gave.
type revision struct {
	pos     uint64
	detail  uint32
	ruleSet uint32
	reason  int32
}

type flagRec struct {
	id      events.ID
	pos     uint64
	cleared uint64 // position of the FlagCleared that closed it; 0 while open
	detail  uint32
	inst    uint32
	reason  int32
	next    int32
}

type holdRec struct {
	placed, released uint64
	id               uint32 // interned hold id
	reason           int32
	next             int32
	// The days the hold took effect and ended (held_on, released_on; 0
	// when the event has none: decided before rules behaviour 4, or a
	// release by a budget allocation).
	heldOn, releasedOn refdata.Date
}

const (
	orderInFlight uint8 = iota
	orderSettled
	orderFailed
)

type orderRec struct {
	amount, offset, net   int64
	orderedPos, resultPos uint64
	paidTo                rm.Ref
	attempt               uint32
	failure               uint32 // interned
	resultOn              refdata.Date
	status                uint8
	next                  int32
}

type clawRec struct {
	id                            events.ID
	amount, recovered, writtenOff int64
	pos                           uint64
	cause                         uint8
	raisedOn                      refdata.Date // 0 before rules behaviour 4
}

type ent struct {
	id                         events.ID
	pos                        uint64
	amount, paid, cash, offset int64
	person                     int32
	payeeInst, unit            uint32
	train, eval                uint32
	feeSchedule                uint32
	confirmedBy, approvedBy    uint32
	ruleSet                    uint32
	cert                       int32 // certificate index+1, or 0 with certX
	certX                      uint32
	assessedOn, confirmedOn    refdata.Date
	approvedOn                 refdata.Date
	noticeStart, noticeEnd     refdata.Date
	closedOn                   refdata.Date
	cancelled                  int32 // reason code of the revocation or fraud hold
	claw                       int32 // clawback index+1
	holds, orders              list
	year                       int16
	q                          rm.Q
	payeeKind                  uint8
	objections, upheld         uint8
	next                       int32
}

// Model is the trainee status projection. Create it with New.
type Model struct {
	mu         sync.RWMutex
	pos        events.Position
	idx        rm.KeyIndex
	people     rm.Chunks[person]
	evidence   rm.Chunks[evidenceRec]
	enrolments rm.Chunks[enrolmentRec]
	attempts   rm.Chunks[attemptRec]
	certs      rm.Chunks[certRec]
	advances   rm.Chunks[advanceRec]
	denials    rm.Chunks[denialRec]
	flags      rm.Chunks[flagRec]
	ents       rm.Chunks[ent]
	holds      rm.Chunks[holdRec]
	orders     rm.Chunks[orderRec]
	claws      rm.Chunks[clawRec]
	entIdx     map[events.ID]int32
	clawIdx    map[events.ID]int32 // clawback id -> entitlement
	revised    map[int32]revision  // denial index -> its last SubsidyDenialRevised (few)
	arena      rm.Arena            // ids, names and accounts of the records
	strs       *rm.Strings
	units      *rm.Units
}

var _ projections.Projection = (*Model)(nil)

// New returns an empty model.
func New() *Model {
	return &Model{entIdx: map[events.ID]int32{}, clawIdx: map[events.ID]int32{}, revised: map[int32]revision{},
		strs: rm.NewStrings(), units: rm.NewUnits()}
}

// Factory makes fresh models for a Runner.
func Factory() projections.Projection { return New() }

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
		"subsidy.v1.SubsidyEntitled", "subsidy.v1.SubsidyDenied", "subsidy.v1.SubsidyDenialRevised", "subsidy.v1.EntitlementConfirmed",
		"subsidy.v1.EntitlementApproved", "subsidy.v1.NoticeOpened", "subsidy.v1.NoticeClosed",
		"subsidy.v1.ObjectionRaised", "subsidy.v1.ObjectionResolved", "subsidy.v1.EntitlementHeld",
		"subsidy.v1.EntitlementReleased", "subsidy.v1.PaymentOrdered", "subsidy.v1.PaymentSettled",
		"subsidy.v1.PaymentFailed", "subsidy.v1.ClawbackRaised", "subsidy.v1.ClawbackRecovered",
		"subsidy.v1.ClawbackWrittenOff", "subsidy.v1.ViolationFlagged", "subsidy.v1.FlagCleared",
	}
}

func nextEvidence(r *evidenceRec) *int32   { return &r.next }
func nextEnrolment(r *enrolmentRec) *int32 { return &r.next }
func nextAttempt(r *attemptRec) *int32     { return &r.next }
func nextCert(r *certRec) *int32           { return &r.next }
func nextAdvance(r *advanceRec) *int32     { return &r.next }
func nextDenial(r *denialRec) *int32       { return &r.next }
func nextFlag(r *flagRec) *int32           { return &r.next }
func nextEnt(r *ent) *int32                { return &r.next }
func nextHold(r *holdRec) *int32           { return &r.next }
func nextOrder(r *orderRec) *int32         { return &r.next }

const stars = "**********"

func (m *Model) setMaskedID(p *person, id string) {
	if len(id) == 18 && id[4:14] == stars {
		copy(p.maskedID[:4], id[:4])
		copy(p.maskedID[4:], id[14:])
		p.maskedIDX = 0
		return
	}
	p.maskedID = [8]byte{}
	p.maskedIDX = m.strs.ID(id)
}

func (m *Model) maskedIDOf(p *person) string {
	if p.maskedIDX != 0 || p.maskedID == [8]byte{} {
		return m.strs.Str(p.maskedIDX)
	}
	return string(p.maskedID[:4]) + stars + string(p.maskedID[4:])
}

// keyAt returns the key of the person at index i (for the key index).
func (m *Model) keyAt(i int32) *rm.PersonKey { return &m.people.At(i).key }

// person returns the index of the trainee the event names by key (its
// payload's person_key field).
func (m *Model) person(ev *projections.Event, key string) (int32, error) {
	k, err := ev.PersonKeyOf(key)
	if err != nil {
		return 0, rm.Err(ev.Type, "%v", err)
	}
	i, ok := m.idx.Get(k, m.keyAt)
	if !ok {
		return 0, rm.Err(ev.Type, "unknown trainee %s", key)
	}
	return i, nil
}

// ent returns the entitlement the event names by id (its payload's
// entitlement_id field).
func (m *Model) ent(ev *projections.Event, id string) (*ent, error) {
	_, i, err := projections.EntitlementIn(ev, id, m.entIdx)
	if err != nil {
		return nil, err
	}
	return m.ents.At(i), nil
}

// findCert returns the index+1 of the person's certificate with the id, or
// 0 and the id interned.
func (m *Model) findCert(p *person, id string) (int32, uint32) {
	var found int32
	walk(&m.certs, p.certs, nextCert, func(i int32) {
		if m.arena.Equal(m.certs.At(i).id, id) {
			found = i + 1
		}
	})
	if found != 0 {
		return found, 0
	}
	return 0, m.strs.ID(id)
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

func (m *Model) apply(ev *projections.Event) error {
	pos := uint64(ev.Position)
	switch p := ev.Payload.(type) {
	case *pb.UnitDefined:
		return m.units.Apply(p)
	case *pb.TraineeRegistered:
		k, err := ev.PersonKeyOf(p.PersonKey)
		if err != nil {
			return rm.Err(ev.Type, "%v", err)
		}
		i, ok := m.idx.Get(k, m.keyAt)
		if !ok {
			i = m.people.Append(person{key: k})
			m.idx.Put(k, i)
		}
		pp := m.people.At(i)
		pp.maskedName = m.arena.Put(p.MaskedName)
		m.setMaskedID(pp, p.MaskedId)
		pp.unit = m.strs.ID(p.UnitCode)
		pp.education, pp.employee, pp.gradYear = uint8(p.Education), p.EnterpriseEmployee, int16(p.GraduationYear)
		pp.regPos = pos
	case *pb.EligibilityEvidenceRecorded:
		i, err := m.person(ev, p.PersonKey)
		if err != nil {
			return err
		}
		push(&m.evidence, &m.people.At(i).evidence, evidenceRec{id: m.arena.Put(p.EvidenceId), category: uint8(p.Category), source: m.strs.ID(p.Source),
			confirmed: p.Confirmed, gradYear: int16(p.GraduationYear), insuredFrom: rm.Date(p.InsuredFrom), insuredTo: rm.Date(p.InsuredTo), pos: pos}, nextEvidence)
	case *pb.Enrolled:
		i, err := m.person(ev, p.PersonKey)
		if err != nil {
			return err
		}
		push(&m.enrolments, &m.people.At(i).enrolments, enrolmentRec{id: m.arena.Put(p.EnrolmentId), inst: m.strs.ID(p.TrainingInstitutionId),
			q: rm.QOf(p.Qualification), unit: m.strs.ID(p.UnitCode), on: rm.Date(p.EnrolledOn)}, nextEnrolment)
	case *pb.TrainingCompleted:
		i, err := m.person(ev, p.PersonKey)
		if err != nil {
			return err
		}
		var e *enrolmentRec
		walk(&m.enrolments, m.people.At(i).enrolments, nextEnrolment, func(j int32) {
			if m.arena.Equal(m.enrolments.At(j).id, p.EnrolmentId) {
				e = m.enrolments.At(j)
			}
		})
		if e == nil {
			return rm.Err(ev.Type, "unknown enrolment %s", p.EnrolmentId)
		}
		e.completed = rm.Date(p.CompletedOn)
	case *pb.AssessmentRecorded:
		i, err := m.person(ev, p.PersonKey)
		if err != nil {
			return err
		}
		push(&m.attempts, &m.people.At(i).attempts, attemptRec{id: m.arena.Put(p.AssessmentId), eval: m.strs.ID(p.EvaluationInstitutionId),
			train: m.strs.ID(p.TrainingInstitutionId), q: rm.QOf(p.Qualification), n: uint8(min(p.Attempt, 255)),
			theory: int8(p.TheoryScore), practical: int8(p.PracticalScore), on: rm.Date(p.AssessedOn)}, nextAttempt)
	case *pb.CertificateIssued:
		i, err := m.person(ev, p.PersonKey)
		if err != nil {
			return err
		}
		pp := m.people.At(i)
		c := certRec{id: m.arena.Put(p.CertificateId), eval: m.strs.ID(p.EvaluationInstitutionId), q: rm.QOf(p.Qualification), on: rm.Date(p.IssuedOn)}
		walk(&m.attempts, pp.attempts, nextAttempt, func(j int32) {
			if m.arena.Equal(m.attempts.At(j).id, p.AssessmentId) {
				c.assessment = j + 1
			}
		})
		if c.assessment == 0 {
			c.assessmentX = m.strs.ID(p.AssessmentId)
		}
		push(&m.certs, &pp.certs, c, nextCert)
	case *pb.CertificateRevoked:
		i, err := m.person(ev, p.PersonKey)
		if err != nil {
			return err
		}
		ci, _ := m.findCert(m.people.At(i), p.CertificateId)
		if ci == 0 {
			return rm.Err(ev.Type, "unknown certificate %s", p.CertificateId)
		}
		m.certs.At(ci-1).revoked, m.certs.At(ci-1).revokeReason = rm.Date(p.RevokedOn), m.strs.ID(p.Reason)
	case *pb.AdvancePaymentRecorded:
		i, err := m.person(ev, p.PersonKey)
		if err != nil {
			return err
		}
		push(&m.advances, &m.people.At(i).advances, advanceRec{id: m.arena.Put(p.AdvanceId), inst: m.strs.ID(p.TrainingInstitutionId), q: rm.QOf(p.Qualification),
			fen: p.AmountFen, on: rm.Date(p.PaidOn)}, nextAdvance)
	case *pb.SubsidyEntitled:
		i, err := m.person(ev, p.PersonKey)
		if err != nil {
			return err
		}
		id, err := ev.EntitlementIDOf(p.EntitlementId)
		if err != nil {
			return rm.Err(ev.Type, "entitlement id: %v", err)
		}
		if _, dup := m.entIdx[id]; dup {
			return rm.Err(ev.Type, "entitlement %s recorded twice", p.EntitlementId)
		}
		e := ent{id: id, person: i, q: rm.QOf(p.Qualification), payeeKind: uint8(p.Payee.GetKind()),
			payeeInst: m.strs.ID(p.Payee.GetInstitutionId()), year: int16(p.Year), unit: m.strs.ID(p.UnitCode),
			train: m.strs.ID(p.TrainingInstitutionId), eval: m.strs.ID(p.EvaluationInstitutionId), amount: p.AmountFen,
			feeSchedule: m.strs.ID(p.FeeScheduleId), assessedOn: rm.Date(p.AssessedOn),
			ruleSet: m.strs.ID(p.Decision.GetRuleSetVersion()), pos: pos}
		e.cert, e.certX = m.findCert(m.people.At(i), p.CertificateId)
		n := push(&m.ents, &m.people.At(i).ents, e, nextEnt)
		m.entIdx[id] = n
		// Evidence recorded after a certificate denied for want of it
		// decides the certificate again (rules' second chance): its denial
		// stands in the history, superseded by this entitlement.
		walk(&m.denials, m.people.At(i).denials, nextDenial, func(j int32) {
			d := m.denials.At(j)
			if d.superseded == 0 && ((d.cert != 0 && d.cert == e.cert) || (d.cert == 0 && e.cert == 0 && d.certX != 0 && d.certX == e.certX)) {
				d.superseded = n + 1
			}
		})
	case *pb.SubsidyDenied:
		i, err := m.person(ev, p.PersonKey)
		if err != nil {
			return err
		}
		d := denialRec{q: rm.QOf(p.Qualification), reason: int32(p.Reason), detail: m.strs.ID(p.Detail),
			ruleSet: m.strs.ID(p.Decision.GetRuleSetVersion()), pos: pos}
		d.cert, d.certX = m.findCert(m.people.At(i), p.CertificateId)
		push(&m.denials, &m.people.At(i).denials, d, nextDenial)
	case *pb.SubsidyDenialRevised:
		i, err := m.person(ev, p.PersonKey)
		if err != nil {
			return err
		}
		// The rules revise only a denial they recorded, of this person.
		cert, certX := m.findCert(m.people.At(i), p.CertificateId)
		found := false
		walk(&m.denials, m.people.At(i).denials, nextDenial, func(j int32) {
			if d := m.denials.At(j); (cert != 0 && d.cert == cert) || (cert == 0 && d.cert == 0 && certX != 0 && d.certX == certX) {
				m.revised[j], found = revision{pos: pos, detail: m.strs.ID(p.Detail), ruleSet: m.strs.ID(p.Decision.GetRuleSetVersion()), reason: int32(p.Reason)}, true
			}
		})
		if !found {
			return rm.Err(ev.Type, "no denial of certificate %s of trainee %s", p.CertificateId, p.PersonKey)
		}
	case *pb.EntitlementConfirmed:
		e, err := m.ent(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		e.confirmedOn, e.confirmedBy = rm.Date(p.ConfirmedOn), m.strs.ID(p.OfficialId)
	case *pb.EntitlementApproved:
		e, err := m.ent(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		e.approvedOn, e.approvedBy = rm.Date(p.ApprovedOn), m.strs.ID(p.OfficialId)
	case *pb.NoticeOpened:
		e, err := m.ent(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		e.noticeStart, e.noticeEnd = rm.Date(p.StartsOn), rm.Date(p.EndsOn)
	case *pb.NoticeClosed:
		e, err := m.ent(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		e.closedOn = rm.Date(p.ClosedOn)
	case *pb.ObjectionRaised:
		e, err := m.ent(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		e.objections = min(e.objections+1, 255)
	case *pb.ObjectionResolved:
		e, err := m.ent(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		if p.Upheld {
			e.upheld = min(e.upheld+1, 255)
		}
	case *pb.EntitlementHeld:
		e, err := m.ent(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		push(&m.holds, &e.holds, holdRec{id: m.strs.ID(p.HoldId), reason: int32(p.Reason), placed: pos, heldOn: rm.Date(p.HeldOn)}, nextHold)
		if p.Reason == pb.ReasonCode_REASON_CODE_CERTIFICATE_REVOKED || p.Reason == pb.ReasonCode_REASON_CODE_FRAUD_FINDING {
			e.cancelled = int32(p.Reason)
		}
	case *pb.EntitlementReleased:
		e, err := m.ent(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		hid, known := m.strs.Lookup(p.HoldId)
		var h *holdRec
		walk(&m.holds, e.holds, nextHold, func(j int32) {
			if known && h == nil && m.holds.At(j).id == hid && m.holds.At(j).released == 0 {
				h = m.holds.At(j)
			}
		})
		if h == nil {
			return rm.Err(ev.Type, "entitlement %s has no hold %q in place", p.EntitlementId, p.HoldId)
		}
		h.released, h.releasedOn = pos, rm.Date(p.ReleasedOn)
	case *pb.PaymentOrdered:
		e, err := m.ent(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		push(&m.orders, &e.orders, orderRec{attempt: p.Attempt, amount: p.AmountFen, offset: p.OffsetFen, net: p.NetFen, orderedPos: pos}, nextOrder)
	case *pb.PaymentSettled:
		e, err := m.ent(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		o := m.lastOrder(e)
		if o == nil || o.status != orderInFlight {
			return rm.Err(ev.Type, "entitlement %s has no payment order in flight", p.EntitlementId)
		}
		o.status, o.resultOn, o.paidTo, o.resultPos = orderSettled, rm.Date(p.SettledOn), m.arena.Put(p.PaidToAccount), pos
		e.paid += o.amount
		e.cash += p.AmountFen
		e.offset += o.offset
	case *pb.PaymentFailed:
		e, err := m.ent(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		o := m.lastOrder(e)
		if o == nil || o.status != orderInFlight {
			return rm.Err(ev.Type, "entitlement %s has no payment order in flight", p.EntitlementId)
		}
		o.status, o.resultOn, o.failure, o.resultPos = orderFailed, rm.Date(p.FailedOn), m.strs.ID(p.Failure), pos
	case *pb.ClawbackRaised:
		e, err := m.ent(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		id, err := rm.ID(p.ClawbackId)
		if err != nil {
			return rm.Err(ev.Type, "clawback id: %v", err)
		}
		if _, dup := m.clawIdx[id]; dup || e.claw != 0 {
			return rm.Err(ev.Type, "clawback %s raised twice", p.ClawbackId)
		}
		e.claw = m.claws.Append(clawRec{id: id, amount: p.AmountFen, cause: uint8(p.Cause), pos: pos, raisedOn: rm.Date(p.RaisedOn)}) + 1
		m.clawIdx[id] = m.entIdx[e.id]
	case *pb.ClawbackRecovered:
		c, err := m.claw(p.ClawbackId, ev.Type)
		if err != nil {
			return err
		}
		c.recovered += p.AmountFen
		c.writtenOff -= p.WrittenOffFen // a repayment of money written off (rules behaviour 5)
	case *pb.ClawbackWrittenOff:
		c, err := m.claw(p.ClawbackId, ev.Type)
		if err != nil {
			return err
		}
		c.writtenOff += p.AmountFen
	case *pb.ViolationFlagged:
		i, id, ok, err := m.flagOf(ev.Type, p.Subject, p.FlagId)
		if !ok {
			return err
		}
		push(&m.flags, &m.people.At(i).flags, flagRec{id: id, reason: int32(p.Reason), inst: m.strs.ID(p.InstitutionId),
			detail: m.strs.ID(p.Detail), pos: pos}, nextFlag)
	case *pb.FlagCleared:
		// The subject is the flag's: a flag not about a registered person
		// was not recorded here.
		i, id, ok, err := m.flagOf(ev.Type, p.Subject, p.FlagId)
		if !ok {
			return err
		}
		found := false
		walk(&m.flags, m.people.At(i).flags, nextFlag, func(j int32) {
			if r := m.flags.At(j); r.id == id {
				r.cleared, found = pos, true
			}
		})
		if !found {
			return rm.Err(ev.Type, "unknown flag %s of trainee %s", p.FlagId, p.Subject)
		}
	}
	return nil
}

// flagOf finds the person a flag (or its clearing) is about and parses its
// id; ok is false, with no error, for a flag about something else (an
// institution, an account, a month) or a person not registered here.
func (m *Model) flagOf(typ, subject, flagID string) (person int32, id events.ID, ok bool, err error) {
	k, err := rm.ParsePersonKey(subject)
	if err != nil {
		return 0, id, false, nil
	}
	i, found := m.idx.Get(k, m.keyAt)
	if !found {
		return 0, id, false, nil
	}
	if id, err = rm.ID(flagID); err != nil {
		return 0, id, false, rm.Err(typ, "flag id: %v", err)
	}
	return i, id, true, nil
}

func (m *Model) claw(id, typ string) (*clawRec, error) {
	cid, err := rm.ID(id)
	if err != nil {
		return nil, rm.Err(typ, "clawback id: %v", err)
	}
	e, ok := m.clawIdx[cid]
	if !ok {
		return nil, rm.Err(typ, "unknown clawback %s", id)
	}
	return m.claws.At(m.ents.At(e).claw - 1), nil
}

func (m *Model) lastOrder(e *ent) *orderRec {
	if e.orders.tail == 0 {
		return nil
	}
	return m.orders.At(e.orders.tail - 1)
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

func (m *Model) activeHolds(e *ent) int {
	n := 0
	walk(&m.holds, e.holds, nextHold, func(j int32) {
		if m.holds.At(j).released == 0 {
			n++
		}
	})
	return n
}

func (m *Model) state(e *ent) string {
	o := m.lastOrder(e)
	switch {
	case e.claw != 0:
		return StateClawedBack
	case e.paid > 0 || o != nil && o.status == orderSettled:
		return StatePaid // a settled order of 0 fen (a fee of 0) pays too, as the rules say
	case o != nil && o.status == orderInFlight:
		// Before cancelled: an order out when the entitlement is cancelled
		// may still settle (then the rules raise a clawback) or fail (then
		// it ends cancelled), and the fund keeps it payable until then
		// (found by review: it showed cancelled while money could arrive).
		return StatePaymentOrdered
	case e.cancelled != 0:
		return StateCancelled
	case m.activeHolds(e) > 0:
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
	return m.people.Len()
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

// Snapshot implements projections.Projection. The record slices are
// written in order; a restored model has the same indexes.
func (m *Model) Snapshot(w io.Writer) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	sw := snap.NewWriter(w)
	sw.Magic(Name, version)
	sw.Uvarint(uint64(m.pos))
	m.strs.Write(sw)
	m.units.Write(sw)
	m.arena.Write(sw)
	wl := func(l list) { sw.Int(int(l.head)); sw.Int(int(l.tail)) }
	sw.Uvarint(uint64(m.people.Len()))
	for _, p := range m.people.All() {
		sw.Fixed(p.key[:])
		rm.WriteRef(sw, p.maskedName)
		sw.Fixed(p.maskedID[:])
		sw.Uvarint(uint64(p.maskedIDX))
		sw.Uvarint(uint64(p.unit))
		sw.Uvarint(p.regPos)
		sw.Int(int(p.gradYear))
		sw.Uvarint(uint64(p.education))
		sw.Bool(p.employee)
		for _, l := range []list{p.evidence, p.enrolments, p.attempts, p.certs, p.advances, p.ents, p.denials, p.flags} {
			wl(l)
		}
	}
	m.idx.Write(sw)
	sw.Uvarint(uint64(m.evidence.Len()))
	for _, r := range m.evidence.All() {
		rm.WriteRef(sw, r.id)
		sw.Uvarint(r.pos)
		sw.Uvarint(uint64(r.source))
		sw.Int(int(r.insuredFrom))
		sw.Int(int(r.insuredTo))
		sw.Int(int(r.gradYear))
		sw.Uvarint(uint64(r.category))
		sw.Bool(r.confirmed)
		sw.Int(int(r.next))
	}
	sw.Uvarint(uint64(m.enrolments.Len()))
	for _, r := range m.enrolments.All() {
		rm.WriteRef(sw, r.id)
		sw.Uvarint(uint64(r.inst))
		sw.Uvarint(uint64(r.unit))
		sw.Int(int(r.on))
		sw.Int(int(r.completed))
		sw.Uvarint(uint64(r.q))
		sw.Int(int(r.next))
	}
	sw.Uvarint(uint64(m.attempts.Len()))
	for _, r := range m.attempts.All() {
		rm.WriteRef(sw, r.id)
		sw.Uvarint(uint64(r.eval))
		sw.Uvarint(uint64(r.train))
		sw.Int(int(r.on))
		sw.Uvarint(uint64(r.q))
		sw.Uvarint(uint64(r.n))
		sw.Int(int(r.theory))
		sw.Int(int(r.practical))
		sw.Int(int(r.next))
	}
	sw.Uvarint(uint64(m.certs.Len()))
	for _, r := range m.certs.All() {
		rm.WriteRef(sw, r.id)
		sw.Uvarint(uint64(r.eval))
		sw.Int(int(r.assessment))
		sw.Uvarint(uint64(r.assessmentX))
		sw.Int(int(r.on))
		sw.Int(int(r.revoked))
		sw.Uvarint(uint64(r.revokeReason))
		sw.Uvarint(uint64(r.q))
		sw.Int(int(r.next))
	}
	sw.Uvarint(uint64(m.advances.Len()))
	for _, r := range m.advances.All() {
		rm.WriteRef(sw, r.id)
		sw.Varint(r.fen)
		sw.Uvarint(uint64(r.inst))
		sw.Int(int(r.on))
		sw.Uvarint(uint64(r.q))
		sw.Int(int(r.next))
	}
	sw.Uvarint(uint64(m.denials.Len()))
	for _, r := range m.denials.All() {
		sw.Uvarint(r.pos)
		sw.Int(int(r.cert))
		sw.Uvarint(uint64(r.certX))
		sw.Uvarint(uint64(r.detail))
		sw.Uvarint(uint64(r.ruleSet))
		sw.Int(int(r.reason))
		sw.Int(int(r.superseded))
		sw.Uvarint(uint64(r.q))
		sw.Int(int(r.next))
	}
	revised := rm.SortedKeys(m.revised)
	sw.Uvarint(uint64(len(revised)))
	for _, j := range revised {
		r := m.revised[j]
		sw.Int(int(j))
		sw.Uvarint(r.pos)
		sw.Uvarint(uint64(r.detail))
		sw.Uvarint(uint64(r.ruleSet))
		sw.Int(int(r.reason))
	}
	sw.Uvarint(uint64(m.flags.Len()))
	for _, r := range m.flags.All() {
		sw.Fixed(r.id[:])
		sw.Uvarint(r.pos)
		sw.Uvarint(r.cleared)
		sw.Uvarint(uint64(r.detail))
		sw.Uvarint(uint64(r.inst))
		sw.Int(int(r.reason))
		sw.Int(int(r.next))
	}
	sw.Uvarint(uint64(m.ents.Len()))
	for _, e := range m.ents.All() {
		sw.Fixed(e.id[:])
		sw.Uvarint(e.pos)
		for _, v := range []int64{e.amount, e.paid, e.cash, e.offset} {
			sw.Varint(v)
		}
		sw.Int(int(e.person))
		for _, v := range []uint32{e.payeeInst, e.unit, e.train, e.eval, e.feeSchedule, e.confirmedBy, e.approvedBy, e.ruleSet, e.certX} {
			sw.Uvarint(uint64(v))
		}
		sw.Int(int(e.cert))
		for _, d := range []refdata.Date{e.assessedOn, e.confirmedOn, e.approvedOn, e.noticeStart, e.noticeEnd, e.closedOn} {
			sw.Int(int(d))
		}
		sw.Int(int(e.cancelled))
		sw.Int(int(e.claw))
		wl(e.holds)
		wl(e.orders)
		sw.Int(int(e.year))
		sw.Uvarint(uint64(e.q))
		sw.Uvarint(uint64(e.payeeKind))
		sw.Uvarint(uint64(e.objections))
		sw.Uvarint(uint64(e.upheld))
		sw.Int(int(e.next))
	}
	sw.Uvarint(uint64(m.holds.Len()))
	for _, r := range m.holds.All() {
		sw.Uvarint(r.placed)
		sw.Uvarint(r.released)
		sw.Uvarint(uint64(r.id))
		sw.Int(int(r.reason))
		sw.Int(int(r.next))
		sw.Int(int(r.heldOn))
		sw.Int(int(r.releasedOn))
	}
	sw.Uvarint(uint64(m.orders.Len()))
	for _, r := range m.orders.All() {
		sw.Varint(r.amount)
		sw.Varint(r.offset)
		sw.Varint(r.net)
		sw.Uvarint(r.orderedPos)
		sw.Uvarint(r.resultPos)
		rm.WriteRef(sw, r.paidTo)
		sw.Uvarint(uint64(r.attempt))
		sw.Uvarint(uint64(r.failure))
		sw.Int(int(r.resultOn))
		sw.Uvarint(uint64(r.status))
		sw.Int(int(r.next))
	}
	sw.Uvarint(uint64(m.claws.Len()))
	for _, r := range m.claws.All() {
		sw.Fixed(r.id[:])
		sw.Varint(r.amount)
		sw.Varint(r.recovered)
		sw.Varint(r.writtenOff)
		sw.Uvarint(r.pos)
		sw.Uvarint(uint64(r.cause))
		sw.Int(int(r.raisedOn))
	}
	return sw.Flush()
}

const maxRecords = 1 << 30

// Restore implements projections.Projection. It checks every index, so a
// damaged snapshot fails rather than panicking later.
func (m *Model) Restore(r io.Reader) error {
	sr := snap.NewReader(r)
	sr.Magic(Name, version)
	n := New()
	n.pos = events.Position(sr.Uvarint())
	n.strs.Read(sr)
	n.units.Read(sr)
	n.arena.Read(sr)
	rl := func() list { return list{int32(sr.Int()), int32(sr.Int())} }
	n.people.Reset(sr.Len(maxRecords))
	for _, p := range n.people.All() {
		sr.Fixed(p.key[:])
		p.maskedName = rm.ReadRef(sr)
		sr.Fixed(p.maskedID[:])
		p.maskedIDX = uint32(sr.Uvarint())
		p.unit = uint32(sr.Uvarint())
		p.regPos = sr.Uvarint()
		p.gradYear = int16(sr.Int())
		p.education = uint8(sr.Uvarint())
		p.employee = sr.Bool()
		for _, l := range []*list{&p.evidence, &p.enrolments, &p.attempts, &p.certs, &p.advances, &p.ents, &p.denials, &p.flags} {
			*l = rl()
		}
		if sr.Err() != nil {
			return sr.Err()
		}
	}
	n.idx.Read(sr, n.people.Len())
	n.evidence.Reset(sr.Len(maxRecords))
	for _, r := range n.evidence.All() {
		r.id, r.pos, r.source = rm.ReadRef(sr), sr.Uvarint(), uint32(sr.Uvarint())
		r.insuredFrom, r.insuredTo, r.gradYear = refdata.Date(sr.Int()), refdata.Date(sr.Int()), int16(sr.Int())
		r.category, r.confirmed, r.next = uint8(sr.Uvarint()), sr.Bool(), int32(sr.Int())
	}
	n.enrolments.Reset(sr.Len(maxRecords))
	for _, r := range n.enrolments.All() {
		r.id, r.inst, r.unit = rm.ReadRef(sr), uint32(sr.Uvarint()), uint32(sr.Uvarint())
		r.on, r.completed, r.q, r.next = refdata.Date(sr.Int()), refdata.Date(sr.Int()), rm.Q(sr.Uvarint()), int32(sr.Int())
	}
	n.attempts.Reset(sr.Len(maxRecords))
	for _, r := range n.attempts.All() {
		r.id, r.eval, r.train, r.on = rm.ReadRef(sr), uint32(sr.Uvarint()), uint32(sr.Uvarint()), refdata.Date(sr.Int())
		r.q, r.n, r.theory, r.practical, r.next = rm.Q(sr.Uvarint()), uint8(sr.Uvarint()), int8(sr.Int()), int8(sr.Int()), int32(sr.Int())
	}
	n.certs.Reset(sr.Len(maxRecords))
	for _, r := range n.certs.All() {
		r.id, r.eval, r.assessment, r.assessmentX = rm.ReadRef(sr), uint32(sr.Uvarint()), int32(sr.Int()), uint32(sr.Uvarint())
		r.on, r.revoked, r.revokeReason = refdata.Date(sr.Int()), refdata.Date(sr.Int()), uint32(sr.Uvarint())
		r.q, r.next = rm.Q(sr.Uvarint()), int32(sr.Int())
	}
	n.advances.Reset(sr.Len(maxRecords))
	for _, r := range n.advances.All() {
		r.id, r.fen, r.inst, r.on, r.q, r.next = rm.ReadRef(sr), sr.Varint(), uint32(sr.Uvarint()), refdata.Date(sr.Int()), rm.Q(sr.Uvarint()), int32(sr.Int())
	}
	n.denials.Reset(sr.Len(maxRecords))
	for _, r := range n.denials.All() {
		r.pos, r.cert, r.certX, r.detail = sr.Uvarint(), int32(sr.Int()), uint32(sr.Uvarint()), uint32(sr.Uvarint())
		r.ruleSet, r.reason, r.superseded, r.q, r.next = uint32(sr.Uvarint()), int32(sr.Int()), int32(sr.Int()), rm.Q(sr.Uvarint()), int32(sr.Int())
	}
	for range sr.Len(maxRecords) {
		j := int32(sr.Int())
		n.revised[j] = revision{pos: sr.Uvarint(), detail: uint32(sr.Uvarint()), ruleSet: uint32(sr.Uvarint()), reason: int32(sr.Int())}
	}
	n.flags.Reset(sr.Len(maxRecords))
	for _, r := range n.flags.All() {
		sr.Fixed(r.id[:])
		r.pos, r.cleared, r.detail, r.inst, r.reason, r.next = sr.Uvarint(), sr.Uvarint(), uint32(sr.Uvarint()), uint32(sr.Uvarint()), int32(sr.Int()), int32(sr.Int())
	}
	n.ents.Reset(sr.Len(maxRecords))
	n.entIdx = make(map[events.ID]int32, n.ents.Len()) // sized once: no growing while restoring
	for i, e := range n.ents.All() {
		sr.Fixed(e.id[:])
		e.pos = sr.Uvarint()
		for _, v := range []*int64{&e.amount, &e.paid, &e.cash, &e.offset} {
			*v = sr.Varint()
		}
		e.person = int32(sr.Int())
		for _, v := range []*uint32{&e.payeeInst, &e.unit, &e.train, &e.eval, &e.feeSchedule, &e.confirmedBy, &e.approvedBy, &e.ruleSet, &e.certX} {
			*v = uint32(sr.Uvarint())
		}
		e.cert = int32(sr.Int())
		for _, d := range []*refdata.Date{&e.assessedOn, &e.confirmedOn, &e.approvedOn, &e.noticeStart, &e.noticeEnd, &e.closedOn} {
			*d = refdata.Date(sr.Int())
		}
		e.cancelled, e.claw = int32(sr.Int()), int32(sr.Int())
		e.holds, e.orders = rl(), rl()
		e.year, e.q, e.payeeKind = int16(sr.Int()), rm.Q(sr.Uvarint()), uint8(sr.Uvarint())
		e.objections, e.upheld, e.next = uint8(sr.Uvarint()), uint8(sr.Uvarint()), int32(sr.Int())
		if sr.Err() != nil {
			return sr.Err()
		}
		n.entIdx[e.id] = int32(i)
	}
	n.holds.Reset(sr.Len(maxRecords))
	for _, r := range n.holds.All() {
		r.placed, r.released, r.id, r.reason, r.next = sr.Uvarint(), sr.Uvarint(), uint32(sr.Uvarint()), int32(sr.Int()), int32(sr.Int())
		r.heldOn, r.releasedOn = refdata.Date(sr.Int()), refdata.Date(sr.Int())
	}
	n.orders.Reset(sr.Len(maxRecords))
	for _, r := range n.orders.All() {
		r.amount, r.offset, r.net, r.orderedPos, r.resultPos = sr.Varint(), sr.Varint(), sr.Varint(), sr.Uvarint(), sr.Uvarint()
		r.paidTo, r.attempt, r.failure, r.resultOn = rm.ReadRef(sr), uint32(sr.Uvarint()), uint32(sr.Uvarint()), refdata.Date(sr.Int())
		r.status, r.next = uint8(sr.Uvarint()), int32(sr.Int())
	}
	n.claws.Reset(sr.Len(maxRecords))
	for _, r := range n.claws.All() {
		sr.Fixed(r.id[:])
		r.amount, r.recovered, r.writtenOff, r.pos, r.cause = sr.Varint(), sr.Varint(), sr.Varint(), sr.Uvarint(), uint8(sr.Uvarint())
		r.raisedOn = refdata.Date(sr.Int())
	}
	if err := sr.Err(); err != nil {
		return err
	}
	if err := n.checkIndexes(); err != nil {
		return fmt.Errorf("trainee: snapshot: %w", err)
	}
	for i, e := range n.ents.All() {
		if c := e.claw; c != 0 {
			n.clawIdx[n.claws.At(c-1).id] = i
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pos, m.idx, m.people, m.evidence, m.enrolments, m.attempts = n.pos, n.idx, n.people, n.evidence, n.enrolments, n.attempts
	m.certs, m.advances, m.denials, m.flags, m.ents, m.holds = n.certs, n.advances, n.denials, n.flags, n.ents, n.holds
	m.orders, m.claws, m.entIdx, m.clawIdx, m.strs, m.units, m.arena = n.orders, n.claws, n.entIdx, n.clawIdx, n.strs, n.units, n.arena
	m.revised = n.revised
	return nil
}

// checkIndexes verifies that every list and reference stays in range and
// every chain runs forwards (push only ever links to a later record), so a
// damaged snapshot can neither panic nor loop.
func (m *Model) checkIndexes() error {
	in := func(v int32, n int) bool { return v >= 0 && int(v) <= n }
	lst := func(l list, n int) bool { return in(l.head, n) && in(l.tail, n) && (l.head == 0) == (l.tail == 0) }
	fwd := func(i int32, next int32, n int) bool { return in(next, n) && (next == 0 || next > i+1) }
	for i, p := range m.people.All() {
		if !lst(p.evidence, m.evidence.Len()) || !lst(p.enrolments, m.enrolments.Len()) || !lst(p.attempts, m.attempts.Len()) ||
			!lst(p.certs, m.certs.Len()) || !lst(p.advances, m.advances.Len()) || !lst(p.ents, m.ents.Len()) ||
			!lst(p.denials, m.denials.Len()) || !lst(p.flags, m.flags.Len()) {
			return fmt.Errorf("person %d: a list is out of range", i)
		}
	}
	bad := func(what string, i int32) error { return fmt.Errorf("%s %d: out of range", what, i) }
	ok := m.arena.Valid
	for i, p := range m.people.All() {
		if !ok(p.maskedName) {
			return bad("person", i)
		}
	}
	for i, r := range m.evidence.All() {
		if !fwd(i, r.next, m.evidence.Len()) || !ok(r.id) {
			return bad("evidence", i)
		}
	}
	for i, r := range m.enrolments.All() {
		if !fwd(i, r.next, m.enrolments.Len()) || !ok(r.id) {
			return bad("enrolment", i)
		}
	}
	for i, r := range m.attempts.All() {
		if !fwd(i, r.next, m.attempts.Len()) || !ok(r.id) {
			return bad("attempt", i)
		}
	}
	for i, r := range m.certs.All() {
		if !fwd(i, r.next, m.certs.Len()) || !in(r.assessment, m.attempts.Len()) || !ok(r.id) {
			return bad("certificate", i)
		}
	}
	for i, r := range m.advances.All() {
		if !fwd(i, r.next, m.advances.Len()) || !ok(r.id) {
			return bad("advance", i)
		}
	}
	for i, r := range m.denials.All() {
		if !fwd(i, r.next, m.denials.Len()) || !in(r.cert, m.certs.Len()) || !in(r.superseded, m.ents.Len()) {
			return bad("denial", i)
		}
	}
	for j := range m.revised {
		if j < 0 || int(j) >= m.denials.Len() {
			return bad("denial revision", j)
		}
	}
	for i, r := range m.flags.All() {
		if !fwd(i, r.next, m.flags.Len()) {
			return bad("flag", i)
		}
	}
	for i, e := range m.ents.All() {
		if !in(e.person, m.people.Len()-1) || !in(e.cert, m.certs.Len()) || !in(e.claw, m.claws.Len()) || !fwd(i, e.next, m.ents.Len()) ||
			!lst(e.holds, m.holds.Len()) || !lst(e.orders, m.orders.Len()) {
			return bad("entitlement", i)
		}
	}
	for i, r := range m.holds.All() {
		if !fwd(i, r.next, m.holds.Len()) {
			return bad("hold", i)
		}
	}
	for i, r := range m.orders.All() {
		if !fwd(i, r.next, m.orders.Len()) || !ok(r.paidTo) {
			return bad("payment order", i)
		}
	}
	return nil
}
