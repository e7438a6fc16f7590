// Package scorecard is the institution scorecard read model: for each
// training or evaluation institution, enrolments and completions, the
// first-attempt pass rate by occupation and level, certificates, advances
// (outstanding, reimbursed, not reimbursable), reimbursements, clawbacks
// (raised against it as payee, recovered, written off), flags and the holds
// in place on the entitlements of its trainees.
//
// An assessment counts for its evaluation institution and for its training
// institution, found as rule 15 finds it (rules.World.assessmentFrom): the
// institution of the person's enrolment for the qualification on or before
// the assessment date (at the training_institution_id the assessment names,
// if it names one; a completed enrolment first, then the earliest), so an
// assessment that names none still counts for the institution that trained
// the person. A certificate counts for its evaluation institution, once
// per certification: a corrected certificate issued on an assessment while
// another of its certificates is in force (the rules deny its subsidy) is
// not counted again; one issued after all of them were revoked is. A
// revocation leaves the count as it is (certifications issued, as the
// quota dashboard's certified before revocations).
//
// A flag (ViolationFlagged naming the institution) is open until a
// FlagCleared closes it (rules 2026.4: an ASSESSMENT_WITHOUT_COMPLETION
// flag whose training's completion, dated on or before the assessment, was
// reported after it); the card lists it cleared and counts it no longer
// among the open flags.
//
// An advance is outstanding until the entitlement for its person and
// qualification is settled to the institution (reimbursed), or the
// entitlement is cancelled, or the subsidy is denied while no entitlement
// exists for the person and qualification (not reimbursable: a denial of
// another certificate of an entitled qualification, a reissue or a re-sit,
// does not close it). An entitlement that comes after a denial reopens it.
package scorecard

import (
	"io"
	"slices"
	"sort"
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
const Name = "scorecard"

const version = 9 // 8: an entitlement's payment order in flight is kept (an advance is denied by a revocation only once nothing is in flight); 2: the advances are written slot by slot; 3: entry by entry, in the order added; 4: then their hash index as it is; 5: an advance a denial closed reopens when entitled (a snapshot of 4 may hold it closed); 6: enrolments kept, assessments credited to the enrolment's institution, an entitled advance not closed by a denial, a cancelled entitlement's holds not active; 7: a flag's clearing (FlagCleared); 9: a person's certificates for a qualification are kept by assessment (rm.Certs, with the enrolments, and the book of later ones): a corrected certificate issued while another of its assessment is in force is not counted again

const numQ = 44 // rm.Q is occupation*4+level, at most 43

type qstat struct {
	attempts, passes, firstAttempts, firstOK, certificates int32
}

type flag struct {
	id      events.ID
	reason  int32
	q       rm.Q
	detail  string
	pos     uint64
	cleared uint64 // position of the FlagCleared that closed it; 0 while open
}

type inst struct {
	id, name                               string
	kind                                   uint8
	unit                                   uint32
	registered, suspended, blacklisted     bool
	enrolments, completions, certificates  int32
	quals                                  [numQ]qstat
	advances, advReimbursed, advDenied     int32
	advFen, advReimbursedFen, advDeniedFen int64
	reimbursements                         int32
	reimbursedFen, offsetFen               int64
	clawbacks                              int32
	clawedFen, recoveredFen, writtenOffFen int64
	traineeClawbacks                       int32
	traineeClawedFen                       int64
	flags                                  []flag
	holds                                  map[int32]int32 // active holds by reason (none of a cancelled entitlement)
}

type pqKey struct {
	pk rm.PersonKey
	q  rm.Q
}

const (
	advOutstanding uint8 = iota
	advReimbursed
	advDenied
)

type advance struct {
	inst     int32
	fen      int64
	state    uint8
	entitled bool // an entitlement exists for its person and qualification
}

// enrolment is what rule 15 reads of an enrolment to find the training
// institution of an assessment.
type enrolment struct {
	id            rm.Ref
	inst          int32 // index+1
	on, completed refdata.Date
	next          int32 // index+1 of the next enrolment of the person and qualification
}

// pqRec is what the model keeps of a person and qualification: their
// enrolments, chained in the order recorded (head, tail: index+1), and
// their certificates, by assessment.
type pqRec struct {
	head, tail int32
	certs      rm.Certs[struct{}]
}

type entInfo struct {
	train, payee  int32 // institution index + 1; 0 none
	pending       int64
	pendingOffset int64
	paid          bool
	inFlight      bool  // a payment order is out, neither settled nor failed
	cancelled     bool  // held by a revocation or fraud finding before it was paid
	ended         bool  // held by a revocation or fraud finding: its holds are not active
	hasAdv        bool  // an advance was outstanding when it was entitled
	adv           pqKey // the advance's key, if hasAdv
}

// hold is a hold in place on an entitlement.
type hold struct {
	id     string
	reason int32
}

type clawInfo struct {
	payee, train int32 // index + 1
}

// Model is the scorecard projection.
type Model struct {
	mu       sync.RWMutex
	pos      events.Position
	strs     *rm.Strings
	units    *rm.Units
	insts    []inst
	instIdx  map[string]int32
	ents     map[events.ID]entInfo
	advances rm.PQMap[advance]
	holds    map[events.ID][]hold // the holds in place on each entitlement, in the order placed
	claws    map[events.ID]clawInfo
	enrols   rm.Chunks[enrolment]
	pqs      rm.PQMap[pqRec]
	arena    rm.Arena              // enrolment ids
	certs    rm.CertBook[struct{}] // the assessments of pqRec.certs, and later certificates
}

var _ projections.Projection = (*Model)(nil)

// New returns an empty model.
func New() *Model {
	return &Model{strs: rm.NewStrings(), units: rm.NewUnits(), instIdx: map[string]int32{}, ents: map[events.ID]entInfo{},
		holds: map[events.ID][]hold{}, claws: map[events.ID]clawInfo{}}
}

// Factory makes fresh models for a Runner.
func Factory() projections.Projection { return New() }

// Name implements projections.Projection.
func (m *Model) Name() string { return Name }

// Version implements projections.Projection.
func (m *Model) Version() uint32 { return version }

// Types implements projections.Projection.
func (m *Model) Types() []string {
	return []string{"subsidy.v1.UnitDefined", "subsidy.v1.InstitutionRegistered", "subsidy.v1.InstitutionSuspended",
		"subsidy.v1.InstitutionReinstated", "subsidy.v1.Enrolled", "subsidy.v1.TrainingCompleted",
		"subsidy.v1.AssessmentRecorded", "subsidy.v1.CertificateIssued", "subsidy.v1.CertificateRevoked", "subsidy.v1.AdvancePaymentRecorded",
		"subsidy.v1.SubsidyEntitled", "subsidy.v1.SubsidyDenied", "subsidy.v1.EntitlementHeld",
		"subsidy.v1.EntitlementReleased", "subsidy.v1.PaymentOrdered", "subsidy.v1.PaymentSettled",
		"subsidy.v1.PaymentFailed", "subsidy.v1.ClawbackRaised", "subsidy.v1.ClawbackRecovered",
		"subsidy.v1.ClawbackWrittenOff", "subsidy.v1.ViolationFlagged", "subsidy.v1.FlagCleared"}
}

// inst returns the index+1 of the institution, adding it if unknown ("":
// 0, none).
func (m *Model) inst(id string) int32 {
	if id == "" {
		return 0
	}
	if i, ok := m.instIdx[id]; ok {
		return i + 1
	}
	i := int32(len(m.insts))
	id = strings.Clone(id) // kept: a build's strings point into memory it reuses
	m.insts = append(m.insts, inst{id: id, holds: map[int32]int32{}})
	m.instIdx[id] = i
	return i + 1
}

func (m *Model) at(i int32) *inst {
	if i == 0 {
		return nil
	}
	return &m.insts[i-1]
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

// ent returns the entitlement the event names by id (its payload's
// entitlement_id field, as the decoder parsed it).
func (m *Model) ent(ev *projections.Event, id string) (events.ID, entInfo, error) {
	return projections.EntitlementIn(ev, id, m.ents)
}

func (m *Model) apply(ev *projections.Event) error {
	switch p := ev.Payload.(type) {
	case *pb.UnitDefined:
		return m.units.Apply(p)
	case *pb.InstitutionRegistered:
		in := m.at(m.inst(p.InstitutionId))
		in.name, in.kind, in.unit, in.registered = strings.Clone(p.Name), uint8(p.Kind), m.strs.ID(p.UnitCode), true
	case *pb.InstitutionSuspended:
		in := m.at(m.inst(p.InstitutionId))
		in.suspended, in.blacklisted = true, p.Blacklisted
	case *pb.InstitutionReinstated:
		in := m.at(m.inst(p.InstitutionId))
		in.suspended, in.blacklisted = false, false
	case *pb.Enrolled:
		i := m.inst(p.TrainingInstitutionId)
		m.at(i).enrolments++
		if k, err := ev.PersonKeyOf(p.PersonKey); err == nil {
			l := m.pqs.Put(k, rm.QOf(p.Qualification))
			n := m.enrols.Append(enrolment{id: m.arena.Put(p.EnrolmentId), inst: i, on: rm.Date(p.EnrolledOn)}) + 1
			if l.tail != 0 {
				m.enrols.At(l.tail - 1).next = n
			} else {
				l.head = n
			}
			l.tail = n
		}
	case *pb.TrainingCompleted:
		m.at(m.inst(p.TrainingInstitutionId)).completions++
		if k, err := ev.PersonKeyOf(p.PersonKey); err == nil {
			var last *enrolment
			m.walkEnrolments(k, rm.QOf(p.Qualification), func(e *enrolment) {
				if m.arena.Equal(e.id, p.EnrolmentId) {
					last = e
				}
			})
			if last != nil {
				last.completed = rm.Date(p.CompletedOn)
			}
		}
	case *pb.AssessmentRecorded:
		q := rm.QOf(p.Qualification)
		pass := p.TheoryScore >= 60 && p.PracticalScore >= 60
		for _, i := range []int32{m.trainedBy(ev, p), m.inst(p.EvaluationInstitutionId)} {
			in := m.at(i)
			if in == nil {
				continue
			}
			s := &in.quals[q]
			s.attempts++
			if pass {
				s.passes++
			}
			if p.Attempt == 1 {
				s.firstAttempts++
				if pass {
					s.firstOK++
				}
			}
		}
	case *pb.CertificateIssued:
		// A certification, not a certificate: one issued while another of
		// its assessment is in force (a corrected one; the rules take the
		// assessment's institution for both) is not counted again.
		q := rm.QOf(p.Qualification)
		if k, err := ev.PersonKeyOf(p.PersonKey); err == nil {
			if !m.certs.Issue(k, q, &m.pqs.Put(k, q).certs, p.CertificateId, p.AssessmentId, struct{}{}) {
				return nil
			}
		}
		in := m.at(m.inst(p.EvaluationInstitutionId))
		in.certificates++
		in.quals[q].certificates++
	case *pb.CertificateRevoked:
		// Kept to know what is in force; the certificates counted stay
		// counted (certifications issued).
		if k, err := ev.PersonKeyOf(p.PersonKey); err == nil {
			if r := m.pqs.Get(k, rm.QOf(p.Qualification)); r != nil {
				m.certs.Revoke(k, rm.QOf(p.Qualification), &r.certs, p.CertificateId)
			}
		}
	case *pb.AdvancePaymentRecorded:
		k, err := ev.PersonKeyOf(p.PersonKey)
		if err != nil {
			return rm.Err(ev.Type, "%v", err)
		}
		i := m.inst(p.TrainingInstitutionId)
		*m.advances.Put(k, rm.QOf(p.Qualification)) = advance{inst: i, fen: p.AmountFen}
		in := m.at(i)
		in.advances++
		in.advFen += p.AmountFen
	case *pb.SubsidyEntitled:
		id, err := ev.EntitlementIDOf(p.EntitlementId)
		if err != nil {
			return rm.Err(ev.Type, "entitlement id: %v", err)
		}
		if _, dup := m.ents[id]; dup {
			return rm.Err(ev.Type, "entitlement %s recorded twice", p.EntitlementId)
		}
		k, err := ev.PersonKeyOf(p.PersonKey)
		if err != nil {
			return rm.Err(ev.Type, "%v", err)
		}
		e := entInfo{train: m.inst(p.TrainingInstitutionId), adv: pqKey{k, rm.QOf(p.Qualification)}}
		if p.Payee.GetKind() == pb.PayeeKind_PAYEE_KIND_INSTITUTION {
			e.payee = m.inst(p.Payee.GetInstitutionId())
		}
		if a := m.advances.Get(e.adv.pk, e.adv.q); a == nil {
			e.adv = pqKey{}
		} else {
			e.hasAdv, a.entitled = true, true
			m.reopenAdvance(e.adv)
		}
		m.ents[id] = e
	case *pb.SubsidyDenied:
		k, err := ev.PersonKeyOf(p.PersonKey)
		if err != nil {
			return rm.Err(ev.Type, "%v", err)
		}
		// A denial closes the advance only while its qualification has no
		// entitlement: the denial of a reissued certificate or of a re-sit
		// leaves the entitlement (and the advance it reimburses) standing.
		if a := m.advances.Get(k, rm.QOf(p.Qualification)); a != nil && !a.entitled {
			m.settleAdvance(pqKey{k, rm.QOf(p.Qualification)}, advDenied)
		}
	case *pb.EntitlementHeld:
		id, e, err := m.ent(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		hs := m.holds[id]
		if !slices.ContainsFunc(hs, func(h hold) bool { return h.id == p.HoldId }) {
			m.holds[id] = append(hs, hold{strings.Clone(p.HoldId), int32(p.Reason)}) // kept
			if !e.ended {
				m.countHold(e.train, int32(p.Reason), 1)
			}
		}
		if p.Reason == pb.ReasonCode_REASON_CODE_CERTIFICATE_REVOKED || p.Reason == pb.ReasonCode_REASON_CODE_FRAUD_FINDING {
			if !e.ended {
				// The entitlement is cancelled for good: none of its holds
				// is active any more.
				e.ended = true
				for _, h := range m.holds[id] {
					m.countHold(e.train, h.reason, -1)
				}
			}
			if !e.paid && !e.cancelled {
				e.cancelled = true
				// With an order out, the money may still reach the
				// institution (the rules let it settle and then claw it
				// back): the advance is denied only if the order fails.
				if e.hasAdv && !e.inFlight {
					m.settleAdvance(e.adv, advDenied)
				}
			}
			m.ents[id] = e
		}
	case *pb.EntitlementReleased:
		id, e, err := m.ent(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		hs := m.holds[id]
		i := slices.IndexFunc(hs, func(h hold) bool { return h.id == p.HoldId })
		if i < 0 {
			return rm.Err(ev.Type, "entitlement %s has no hold %q in place", p.EntitlementId, p.HoldId)
		}
		r := hs[i].reason
		if hs = slices.Delete(hs, i, i+1); len(hs) == 0 {
			delete(m.holds, id)
		} else {
			m.holds[id] = hs
		}
		if !e.ended {
			m.countHold(e.train, r, -1)
		}
	case *pb.PaymentOrdered:
		id, e, err := m.ent(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		e.pending, e.pendingOffset, e.inFlight = p.AmountFen, p.OffsetFen, true
		m.ents[id] = e
	case *pb.PaymentFailed:
		id, e, err := m.ent(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		e.pending, e.pendingOffset, e.inFlight = 0, 0, false
		if e.cancelled && e.hasAdv {
			m.settleAdvance(e.adv, advDenied) // held for good meanwhile
		}
		m.ents[id] = e
	case *pb.PaymentSettled:
		id, e, err := m.ent(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		if in := m.at(e.payee); in != nil {
			in.reimbursements++
			in.reimbursedFen += e.pending
			in.offsetFen += e.pendingOffset
			if e.hasAdv {
				m.settleAdvance(e.adv, advReimbursed)
			}
		}
		e.pending, e.pendingOffset, e.paid, e.inFlight = 0, 0, true, false
		m.ents[id] = e
	case *pb.ClawbackRaised:
		cid, err := rm.ID(p.ClawbackId)
		if err != nil {
			return rm.Err(ev.Type, "clawback id: %v", err)
		}
		_, e, err := m.ent(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		c := clawInfo{train: e.train}
		if p.Payee.GetKind() == pb.PayeeKind_PAYEE_KIND_INSTITUTION {
			c.payee = m.inst(p.Payee.GetInstitutionId())
			in := m.at(c.payee)
			in.clawbacks++
			in.clawedFen += p.AmountFen
		} else if in := m.at(e.train); in != nil {
			in.traineeClawbacks++
			in.traineeClawedFen += p.AmountFen
		}
		m.claws[cid] = c
	case *pb.ClawbackRecovered, *pb.ClawbackWrittenOff:
		var id string
		var amount, reversed int64
		written := false
		switch q := p.(type) {
		case *pb.ClawbackRecovered:
			// A repayment of money written off reverses the write-off by
			// written_off_fen (rules behaviour 5).
			id, amount, reversed = q.ClawbackId, q.AmountFen, q.WrittenOffFen
		case *pb.ClawbackWrittenOff:
			id, amount, written = q.ClawbackId, q.AmountFen, true
		}
		cid, err := rm.ID(id)
		if err != nil {
			return rm.Err(ev.Type, "clawback id: %v", err)
		}
		c, ok := m.claws[cid]
		if !ok {
			return rm.Err(ev.Type, "unknown clawback %s", id)
		}
		if in := m.at(c.payee); in != nil {
			if written {
				in.writtenOffFen += amount
			} else {
				in.recoveredFen += amount
				in.writtenOffFen -= reversed
			}
		}
	case *pb.ViolationFlagged:
		if p.InstitutionId == "" {
			return nil
		}
		id, err := rm.ID(p.FlagId)
		if err != nil {
			return rm.Err(ev.Type, "flag id: %v", err)
		}
		in := m.at(m.inst(p.InstitutionId))
		in.flags = append(in.flags, flag{id: id, reason: int32(p.Reason), q: rm.QOf(p.Qualification), detail: strings.Clone(p.Detail), pos: uint64(ev.Position)})
	case *pb.FlagCleared:
		if p.InstitutionId == "" {
			return nil // as its flag: on no card
		}
		id, err := rm.ID(p.FlagId)
		if err != nil {
			return rm.Err(ev.Type, "flag id: %v", err)
		}
		// The clearing names the flag's institution (the rules take both
		// from the assessment's enrolment), and every flag naming one is
		// on its card.
		found := false
		if i, ok := m.instIdx[p.InstitutionId]; ok {
			for j := range m.insts[i].flags {
				if f := &m.insts[i].flags[j]; f.id == id {
					f.cleared, found = uint64(ev.Position), true
				}
			}
		}
		if !found {
			return rm.Err(ev.Type, "institution %s has no flag %s", p.InstitutionId, p.FlagId)
		}
	}
	return nil
}

// countHold adds n to the active holds of reason r of the training
// institution (index+1, 0 none).
func (m *Model) countHold(train, r, n int32) {
	in := m.at(train)
	if in == nil {
		return
	}
	if in.holds[r] += n; in.holds[r] <= 0 {
		delete(in.holds, r)
	}
}

// walkEnrolments calls f with each enrolment of the person and
// qualification, in the order recorded.
func (m *Model) walkEnrolments(k rm.PersonKey, q rm.Q, f func(*enrolment)) {
	l := m.pqs.Get(k, q)
	if l == nil {
		return
	}
	for n := l.head; n != 0; {
		e := m.enrols.At(n - 1)
		f(e)
		n = e.next
	}
}

// trainedBy returns the training institution (index+1, 0 none) an
// assessment counts for, as rule 15 finds it (rules.World.assessmentFrom
// and enrolmentFor): among the person's enrolments for the qualification
// on or before the assessment date, at the institution the assessment
// names if it names one, a completed one first, then the earliest. An
// assessment the rules accepted always has such an enrolment; for one that
// has none it is the institution the assessment names.
func (m *Model) trainedBy(ev *projections.Event, p *pb.AssessmentRecorded) int32 {
	if p.TrainingInstitutionId != "" {
		// The institution named, whichever of its enrolments is chosen
		// (or none): no need to walk them.
		return m.inst(p.TrainingInstitutionId)
	}
	k, err := ev.PersonKeyOf(p.PersonKey)
	if err != nil {
		return m.inst(p.TrainingInstitutionId)
	}
	on := rm.Date(p.AssessedOn)
	done := func(e *enrolment) bool { return e.completed != 0 && e.completed <= on }
	var best *enrolment
	m.walkEnrolments(k, rm.QOf(p.Qualification), func(e *enrolment) {
		if e.on > on {
			return
		}
		if best == nil || (done(e) && !done(best)) {
			best = e
		}
	})
	if best == nil {
		return m.inst(p.TrainingInstitutionId)
	}
	return best.inst
}

func (m *Model) settleAdvance(k pqKey, to uint8) {
	a := m.advances.Get(k.pk, k.q)
	if a == nil || a.state != advOutstanding {
		return
	}
	a.state = to
	in := m.at(a.inst)
	if in == nil {
		return
	}
	if to == advReimbursed {
		in.advReimbursed++
		in.advReimbursedFen += a.fen
	} else {
		in.advDenied++
		in.advDeniedFen += a.fen
	}
}

// reopenAdvance counts an advance that a denial had made not reimbursable
// as outstanding again: the certificate's subsidy was decided again when
// its eligibility evidence came (rules' second chance), or a reissued
// certificate of the qualification was entitled.
func (m *Model) reopenAdvance(k pqKey) {
	a := m.advances.Get(k.pk, k.q)
	if a == nil || a.state != advDenied {
		return
	}
	a.state = advOutstanding
	if in := m.at(a.inst); in != nil {
		in.advDenied--
		in.advDeniedFen -= a.fen
	}
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
	sw.Uvarint(uint64(len(m.insts)))
	for i := range m.insts {
		in := &m.insts[i]
		sw.String(in.id)
		sw.String(in.name)
		sw.Uvarint(uint64(in.kind))
		sw.Uvarint(uint64(in.unit))
		sw.Bool(in.registered)
		sw.Bool(in.suspended)
		sw.Bool(in.blacklisted)
		for _, v := range []int32{in.enrolments, in.completions, in.certificates, in.advances, in.advReimbursed, in.advDenied,
			in.reimbursements, in.clawbacks, in.traineeClawbacks} {
			sw.Int(int(v))
		}
		for _, v := range []int64{in.advFen, in.advReimbursedFen, in.advDeniedFen, in.reimbursedFen, in.offsetFen,
			in.clawedFen, in.recoveredFen, in.writtenOffFen, in.traineeClawedFen} {
			sw.Varint(v)
		}
		for _, s := range in.quals {
			for _, v := range []int32{s.attempts, s.passes, s.firstAttempts, s.firstOK, s.certificates} {
				sw.Int(int(v))
			}
		}
		sw.Uvarint(uint64(len(in.flags)))
		for _, f := range in.flags {
			sw.Fixed(f.id[:])
			sw.Int(int(f.reason))
			sw.Uvarint(uint64(f.q))
			sw.String(f.detail)
			sw.Uvarint(f.pos)
			sw.Uvarint(f.cleared)
		}
		rs := rm.SortedKeys(in.holds)
		sw.Uvarint(uint64(len(rs)))
		for _, r := range rs {
			sw.Int(int(r))
			sw.Int(int(in.holds[r]))
		}
	}
	ids := sortedIDs(m.ents)
	sw.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		e := m.ents[id]
		sw.Fixed(id[:])
		sw.Int(int(e.train))
		sw.Int(int(e.payee))
		sw.Varint(e.pending)
		sw.Varint(e.pendingOffset)
		sw.Bool(e.paid)
		sw.Bool(e.inFlight)
		sw.Bool(e.cancelled)
		sw.Bool(e.ended)
		sw.Bool(e.hasAdv)
		if e.hasAdv {
			sw.Fixed(e.adv.pk[:])
			sw.Uvarint(uint64(e.adv.q))
		}
	}
	m.advances.Write(sw, func(w *snap.Writer, a *advance) {
		w.Int(int(a.inst))
		w.Varint(a.fen)
		w.Uvarint(uint64(a.state))
		w.Bool(a.entitled)
	})
	m.arena.Write(sw)
	sw.Uvarint(uint64(m.enrols.Len()))
	for _, e := range m.enrols.All() {
		rm.WriteRef(sw, e.id)
		sw.Int(int(e.inst))
		sw.Int(int(e.on))
		sw.Int(int(e.completed))
		sw.Int(int(e.next))
	}
	noCell := func(*snap.Writer, *struct{}) {}
	m.certs.Write(sw, noCell)
	m.pqs.Write(sw, func(w *snap.Writer, l *pqRec) {
		w.Int(int(l.head))
		w.Int(int(l.tail))
		l.certs.Write(w, noCell)
	})
	hids := sortedIDs(m.holds)
	sw.Uvarint(uint64(len(hids)))
	for _, id := range hids {
		sw.Fixed(id[:])
		sw.Uvarint(uint64(len(m.holds[id])))
		for _, h := range m.holds[id] {
			sw.String(h.id)
			sw.Int(int(h.reason))
		}
	}
	cids := sortedIDs(m.claws)
	sw.Uvarint(uint64(len(cids)))
	for _, id := range cids {
		c := m.claws[id]
		sw.Fixed(id[:])
		sw.Int(int(c.payee))
		sw.Int(int(c.train))
	}
	return sw.Flush()
}

func sortedIDs[V any](m map[events.ID]V) []events.ID {
	ids := make([]events.ID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	return ids
}

// Restore implements projections.Projection.
func (m *Model) Restore(r io.Reader) error {
	sr := snap.NewReader(r)
	sr.Magic(Name, version)
	n := New()
	n.pos = events.Position(sr.Uvarint())
	n.strs.Read(sr)
	n.units.Read(sr)
	ni := sr.Len(1 << 24)
	n.insts = make([]inst, ni)
	for i := range n.insts {
		in := &n.insts[i]
		in.id, in.name = sr.String(), sr.String()
		in.kind, in.unit = uint8(sr.Uvarint()), uint32(sr.Uvarint())
		in.registered, in.suspended, in.blacklisted = sr.Bool(), sr.Bool(), sr.Bool()
		for _, v := range []*int32{&in.enrolments, &in.completions, &in.certificates, &in.advances, &in.advReimbursed, &in.advDenied,
			&in.reimbursements, &in.clawbacks, &in.traineeClawbacks} {
			*v = int32(sr.Int())
		}
		for _, v := range []*int64{&in.advFen, &in.advReimbursedFen, &in.advDeniedFen, &in.reimbursedFen, &in.offsetFen,
			&in.clawedFen, &in.recoveredFen, &in.writtenOffFen, &in.traineeClawedFen} {
			*v = sr.Varint()
		}
		for q := range in.quals {
			s := &in.quals[q]
			for _, v := range []*int32{&s.attempts, &s.passes, &s.firstAttempts, &s.firstOK, &s.certificates} {
				*v = int32(sr.Int())
			}
		}
		if nf := sr.Len(1 << 24); nf > 0 {
			in.flags = make([]flag, nf)
			for j := range in.flags {
				f := &in.flags[j]
				sr.Fixed(f.id[:])
				f.reason, f.q, f.detail, f.pos, f.cleared = int32(sr.Int()), rm.Q(sr.Uvarint()), sr.String(), sr.Uvarint(), sr.Uvarint()
			}
		}
		in.holds = map[int32]int32{}
		for range sr.Len(1 << 16) {
			r := int32(sr.Int())
			in.holds[r] = int32(sr.Int())
		}
		if sr.Err() != nil {
			return sr.Err()
		}
		n.instIdx[in.id] = int32(i)
	}
	idx := func(v int) int32 {
		if v < 0 || v > ni {
			sr.Fail("institution index %d of %d", v, ni)
			return 0
		}
		return int32(v)
	}
	nents := sr.Len(1 << 30)
	n.ents = make(map[events.ID]entInfo, nents) // sized once: no growing while restoring
	for range nents {
		var id events.ID
		sr.Fixed(id[:])
		e := entInfo{train: idx(sr.Int()), payee: idx(sr.Int()), pending: sr.Varint(), pendingOffset: sr.Varint(), paid: sr.Bool(), inFlight: sr.Bool(), cancelled: sr.Bool(), ended: sr.Bool()}
		if e.hasAdv = sr.Bool(); e.hasAdv {
			sr.Fixed(e.adv.pk[:])
			e.adv.q = rm.Q(sr.Uvarint())
		}
		if sr.Err() != nil {
			return sr.Err()
		}
		n.ents[id] = e
	}
	n.advances.Read(sr, func(r *snap.Reader, a *advance) {
		*a = advance{inst: idx(r.Int()), fen: r.Varint(), state: uint8(r.Uvarint()), entitled: r.Bool()}
	})
	n.arena.Read(sr)
	n.enrols.Reset(sr.Len(1 << 30))
	ne := n.enrols.Len()
	for i, e := range n.enrols.All() {
		e.id, e.inst = rm.ReadRef(sr), idx(sr.Int())
		e.on, e.completed, e.next = refdata.Date(sr.Int()), refdata.Date(sr.Int()), int32(sr.Int())
		if e.next < 0 || int(e.next) > ne || (e.next != 0 && e.next <= i+1) || !n.arena.Valid(e.id) {
			sr.Fail("enrolment %d of %d", i, ne)
		}
		if sr.Err() != nil {
			return sr.Err()
		}
	}
	noCell := func(*snap.Reader, *struct{}) {}
	n.certs.Read(sr, noCell)
	n.pqs.Read(sr, func(r *snap.Reader, l *pqRec) {
		*l = pqRec{head: int32(r.Int()), tail: int32(r.Int())}
		l.certs.Read(r, &n.certs, noCell)
		if l.head < 0 || l.tail < 0 || int(l.head) > ne || int(l.tail) > ne || (l.head == 0) != (l.tail == 0) {
			r.Fail("enrolment list %d..%d of %d", l.head, l.tail, ne)
		}
	})
	for range sr.Len(1 << 30) {
		var id events.ID
		sr.Fixed(id[:])
		hs := make([]hold, sr.Len(1<<16))
		for i := range hs {
			hs[i] = hold{sr.String(), int32(sr.Int())}
		}
		if sr.Err() != nil {
			return sr.Err()
		}
		n.holds[id] = hs
	}
	for range sr.Len(1 << 30) {
		var id events.ID
		sr.Fixed(id[:])
		n.claws[id] = clawInfo{payee: idx(sr.Int()), train: idx(sr.Int())}
		if sr.Err() != nil {
			return sr.Err()
		}
	}
	if err := sr.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pos, m.strs, m.units, m.insts, m.instIdx, m.ents = n.pos, n.strs, n.units, n.insts, n.instIdx, n.ents
	m.advances, m.holds, m.claws = n.advances, n.holds, n.claws
	m.enrols, m.pqs, m.arena, m.certs = n.enrols, n.pqs, n.arena, n.certs
	return nil
}
