package rules

import (
	"crypto/sha256"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"google.golang.org/protobuf/proto"
)

// World is the programme's state folded from the ledger's events. It is not
// safe for concurrent use: Decide may run concurrently with other Decide
// calls, but not with Apply.
type World struct {
	rs  RuleSet
	cal calendar
	// adopted is the fingerprint of the rule set the last RuleSetAdopted
	// folded made rs, "" if none was folded; versions holds the
	// fingerprint each version adopted had (the first, if several).
	adopted  string
	versions map[string]string

	// streams indexes streamList, which holds each stream's name once and
	// its last revision; applied holds where every event id folded is: its
	// stream's index and its revision (8 bytes an event, beside the id).
	streams    map[string]uint32
	streamList []streamState
	applied    hashIndex[events.ID, appliedAt]
	natural    hashIndex[naturalHash, naturalRec]

	units        *refdata.Table
	unitEvents   map[string]events.ID
	institutions map[string]*institution
	fees         map[string]*fee
	feesBy       map[feeKey][]*fee
	targets      map[int32]int32
	funds        map[fundKey]*fund
	trainees     map[string]*trainee
	enrolments   map[string]*enrolment
	assessments  map[string]*assessment
	certificates map[string]*certificate
	entitlements map[string]*entitlement
	objections   map[string]*objection
	orders       map[string]*order
	clawbacks    map[string]*clawback
	clawbackSeq  []string // in raise order, for offsets
	quality      map[qualityKey]*qualityWindow
	certMonths   map[string]map[int]int // evaluation institution -> yyyymm -> certificates
	accounts     map[string][]string    // paid_to_account -> person keys paid directly, distinct
	flags        map[string]Flag
	flagOrder    []string
	names        map[string]string // see name
	// reissued maps an assessment to the latest certificate issued on it
	// while another was in force (a corrected certificate), for
	// secondChance: few have one.
	reissued map[string]string
}

// NewWorld returns an empty World (the seed unit table, no events) deciding
// under rs. It panics if rs.Validate fails: validate configuration first.
func NewWorld(rs RuleSet) *World {
	if err := rs.Validate(); err != nil {
		panic(err)
	}
	rs.Holidays = slices.Clone(rs.Holidays)
	rs.WorkingWeekends = slices.Clone(rs.WorkingWeekends)
	return &World{
		rs:           rs,
		cal:          newCalendar(rs),
		streams:      map[string]uint32{},
		units:        refdata.Seed(),
		unitEvents:   map[string]events.ID{},
		institutions: map[string]*institution{},
		fees:         map[string]*fee{},
		feesBy:       map[feeKey][]*fee{},
		targets:      map[int32]int32{},
		funds:        map[fundKey]*fund{},
		trainees:     map[string]*trainee{},
		enrolments:   map[string]*enrolment{},
		assessments:  map[string]*assessment{},
		certificates: map[string]*certificate{},
		entitlements: map[string]*entitlement{},
		objections:   map[string]*objection{},
		orders:       map[string]*order{},
		clawbacks:    map[string]*clawback{},
		quality:      map[qualityKey]*qualityWindow{},
		certMonths:   map[string]map[int]int{},
		accounts:     map[string][]string{},
		flags:        map[string]Flag{},
		names:        map[string]string{},
		reissued:     map[string]string{},
	}
}

// RuleSet returns the rule set the World decides under.
func (w *World) RuleSet() RuleSet { return w.rs }

// StreamRevision returns the last revision folded for stream, and false if
// no event of it was folded (append with events.NoStream then).
func (w *World) StreamRevision(stream string) (rev uint64, exists bool) {
	i, exists := w.streams[stream]
	if !exists {
		return 0, false
	}
	return w.streamList[i].rev, true
}

// Compact moves the World's indexes of applied event ids and natural keys
// (an entry for every event) from maps into sorted slices: about half the
// memory, and Snapshot writes them without sorting. It takes a few seconds
// for millions of events; the intake calls it before it writes a snapshot.
// Like Apply, it may not run concurrently with Decide.
func (w *World) Compact() {
	w.applied.freeze()
	w.natural.freeze()
}

// streamState is a stream the World has folded events of.
type streamState struct {
	name string
	rev  uint64 // the last revision folded
}

// appliedAt is where a folded event is: the index of its stream in
// streamList and its revision.
type appliedAt struct {
	stream, rev uint32
}

// Applied reports whether an event with id was folded, and where: its
// stream and revision. A redelivered fact whose event id is already applied
// needs no decision: its append is already stored.
func (w *World) Applied(id events.ID) (stream string, revision uint64, ok bool) {
	at, ok := w.applied.get(id)
	if !ok {
		return "", 0, false
	}
	return w.streamList[at.stream].name, uint64(at.rev), true
}

// Apply folds one stored event into the state. Call it for every event of
// the log in global position order (facts, derived decisions, and events
// the rules do not know, such as FactRejected, which only advance their
// stream's revision). revision must be the stream's next revision (0 for a
// new stream); an event id already applied is an error. Apply trusts the
// event: it was decided before it was stored.
func (w *World) Apply(stream string, revision uint64, ev Event) error {
	return w.ApplyPrepared(stream, revision, ev, Prepare(ev.Payload))
}

// Prepared is what Apply works out from an event's payload alone: the hash
// of its natural key and the digest of its content. Prepare may run on
// another goroutine than the World's, ahead of ApplyPrepared: replaying a
// log, it was a fifth of the folding goroutine's work.
type Prepared struct {
	natural naturalHash
	digest  [16]byte
	ok      bool // the payload has a natural key
}

// Prepare works out what ApplyPrepared needs of payload m. It reads m and
// nothing else.
func Prepare(m proto.Message) Prepared {
	if m == nil {
		return Prepared{}
	}
	h, _, ok := naturalHashOf(m)
	if !ok {
		return Prepared{}
	}
	return Prepared{natural: h, digest: digest(m), ok: true}
}

// ApplyPrepared is Apply with p = Prepare(ev.Payload), worked out ahead.
func (w *World) ApplyPrepared(stream string, revision uint64, ev Event, p Prepared) error {
	if stream == "" || ev.Payload == nil {
		return fmt.Errorf("rules: apply: empty stream or payload")
	}
	si, exists := w.streams[stream]
	var last uint64
	if exists {
		last = w.streamList[si].rev
	}
	if want := last + 1; (exists && revision != want) || (!exists && revision != 0) {
		if !exists {
			want = 0
		}
		return fmt.Errorf("rules: apply %q: revision %d where %d was due", stream, revision, want)
	}
	if prev, dup := w.applied.get(ev.ID); dup {
		return fmt.Errorf("rules: apply %q: event %s already applied in %q", stream, ev.ID, w.streamList[prev.stream].name)
	}
	if revision > math.MaxUint32 || !exists && len(w.streamList) == math.MaxUint32 {
		return fmt.Errorf("rules: apply %q: beyond 2^32 streams or events in a stream", stream)
	}
	var next *RuleSet // a RuleSetAdopted's, read before anything changes
	if m, ok := ev.Payload.(*subsidyv1.RuleSetAdopted); ok {
		rs, err := readAdoption(m)
		if err != nil {
			return err
		}
		next = &rs
	}
	if !exists {
		// A copy: the caller's string may share a larger buffer.
		name := strings.Clone(stream)
		si = uint32(len(w.streamList))
		w.streamList = append(w.streamList, streamState{name: name})
		w.streams[name] = si
	}
	w.streamList[si].rev = revision
	w.applied.set(ev.ID, appliedAt{si, uint32(revision)})
	if p.ok {
		w.natural.set(p.natural, naturalRec{digest: p.digest, eventID: ev.ID})
	}
	w.fold(ev.ID, ev.Payload)
	if next != nil {
		w.adopt(*next)
	}
	return nil
}

// digest is the first half of the SHA-256 of m's deterministic encoding.
func digest(m proto.Message) [16]byte {
	bp := bufPool.Get().(*[]byte)
	b, err := marshal.MarshalAppend((*bp)[:0], m)
	if err != nil {
		panic("rules: marshal: " + err.Error())
	}
	sum := sha256.Sum256(b)
	*bp = b
	bufPool.Put(bp)
	return [16]byte(sum[:16])
}

// bufPool holds buffers for encodings and natural keys that are hashed and
// dropped (Decide runs concurrently: no buffer of the World's own).
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// naturalKey returns the key under which a fact must be unique, and whether
// a fact with the same key but other content updates the earlier one rather
// than conflicting with it. Facts without a natural id ("") are guarded by
// state alone.
func naturalKey(m proto.Message) (key string, updatable bool) {
	b, updatable := appendNaturalKey(nil, m)
	return string(b), updatable
}

// naturalHashOf returns the hash of m's natural key, false if it has none,
// without keeping the key.
func naturalHashOf(m proto.Message) (naturalHash, bool, bool) {
	bp := bufPool.Get().(*[]byte)
	b, updatable := appendNaturalKey((*bp)[:0], m)
	var h naturalHash
	ok := len(b) > 0
	if ok {
		h = hashNaturalBytes(b)
	}
	*bp = b
	bufPool.Put(bp)
	return h, updatable, ok
}

// appendNaturalKey appends naturalKey's key to b.
func appendNaturalKey(b []byte, m proto.Message) ([]byte, bool) {
	key := func(parts ...string) []byte {
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	switch m := m.(type) {
	case *subsidyv1.UnitDefined:
		d, _ := refdata.FromProto(m.GetValidFrom())
		return key("unit/", m.GetUnitCode(), "/", d.String()), true
	case *subsidyv1.AnnualTargetSet:
		return strconv.AppendInt(append(b, "target/"...), int64(m.GetYear()), 10), true
	case *subsidyv1.InstitutionRegistered:
		return key("institution/", m.GetInstitutionId()), false
	case *subsidyv1.InstitutionApproved:
		return key("approval/", m.GetApprovalId()), false
	case *subsidyv1.InstitutionSuspended:
		d, _ := refdata.FromProto(m.GetSuspendedOn())
		return key("suspension/", m.GetInstitutionId(), "/", d.String()), false
	case *subsidyv1.InstitutionReinstated:
		d, _ := refdata.FromProto(m.GetReinstatedOn())
		return key("reinstatement/", m.GetInstitutionId(), "/", d.String()), false
	case *subsidyv1.BudgetAllocated:
		return key("allocation/", m.GetAllocationId()), false
	case *subsidyv1.FeeSchedulePublished:
		return key("fee/", m.GetFeeScheduleId()), false
	case *subsidyv1.TraineeRegistered:
		return key("trainee/", m.GetPersonKey()), false
	case *subsidyv1.EligibilityEvidenceRecorded:
		return key("evidence/", m.GetEvidenceId()), false
	case *subsidyv1.Enrolled:
		return key("enrolment/", m.GetEnrolmentId()), false
	case *subsidyv1.TrainingCompleted:
		return key("completion/", m.GetEnrolmentId()), false
	case *subsidyv1.AdvancePaymentRecorded:
		return key("advance/", m.GetAdvanceId()), false
	case *subsidyv1.AssessmentRecorded:
		return key("assessment/", m.GetAssessmentId()), false
	case *subsidyv1.CertificateIssued:
		return key("certificate/", m.GetCertificateId()), false
	case *subsidyv1.CertificateRevoked:
		return key("revocation/", m.GetCertificateId()), false
	case *subsidyv1.EntitlementConfirmed:
		return key("confirmation/", m.GetEntitlementId()), false
	case *subsidyv1.EntitlementApproved:
		return key("approval-of/", m.GetEntitlementId()), false
	case *subsidyv1.NoticeClosed:
		return key("notice-close/", m.GetEntitlementId()), false
	case *subsidyv1.ObjectionRaised:
		return key("objection/", m.GetObjectionId()), false
	case *subsidyv1.ObjectionResolved:
		return key("objection-resolution/", m.GetObjectionId()), false
	case *subsidyv1.HoldPlaced:
		return key("hold/", m.GetHoldId()), false
	case *subsidyv1.HoldLifted:
		return key("lift/", m.GetLiftId()), false
	case *subsidyv1.FraudFound:
		return key("fraud/", m.GetFindingId()), false
	case *subsidyv1.PaymentSettled:
		return key("payment-result/", m.GetPaymentOrderId()), false
	case *subsidyv1.PaymentFailed:
		return key("payment-result/", m.GetPaymentOrderId()), false
	case *subsidyv1.RepaymentReceived:
		return key("repayment/", m.GetRepaymentId()), false
	}
	return b, false
}

func date(p *subsidyv1.Date) refdata.Date {
	d, _ := refdata.FromProto(p)
	return d
}

func (w *World) trainee(key string) *trainee {
	t := w.trainees[key]
	if t == nil {
		t = &trainee{key: key}
		w.trainees[key] = t
	}
	return t
}

func (w *World) fund(k fundKey) *fund {
	f := w.funds[k]
	if f == nil {
		f = &fund{key: k}
		w.funds[k] = f
	}
	return f
}

// fold applies one event's payload to the state.
func (w *World) fold(id events.ID, m proto.Message) {
	switch m := m.(type) {
	// Reference data.
	case *subsidyv1.UnitDefined:
		if u, err := refdata.FromUnitDefined(m); err == nil {
			if t, err := w.units.With(u); err == nil {
				w.units = t
				w.unitEvents[u.Code] = id
			}
		}
	case *subsidyv1.InstitutionRegistered:
		w.institutions[m.GetInstitutionId()] = &institution{id: m.GetInstitutionId(), kind: m.GetKind(),
			unit: m.GetUnitCode(), account: m.GetBasicAccount(), eventID: id}
	case *subsidyv1.InstitutionApproved:
		if in := w.institutions[m.GetInstitutionId()]; in != nil {
			in.approvals = append(in.approvals, approval{m.GetOccupation(), date(m.GetValidFrom()), date(m.GetValidTo()), id})
		}
	case *subsidyv1.InstitutionSuspended:
		if in := w.institutions[m.GetInstitutionId()]; in != nil {
			in.suspended, in.suspendedBy = true, id
			in.blacklisted = in.blacklisted || m.GetBlacklisted()
		}
	case *subsidyv1.InstitutionReinstated:
		if in := w.institutions[m.GetInstitutionId()]; in != nil {
			in.suspended, in.suspendedBy = false, events.ID{}
		}
	case *subsidyv1.FeeSchedulePublished:
		f := &fee{id: m.GetFeeScheduleId(), inst: m.GetEvaluationInstitutionId(), q: refdata.QualificationOf(m.GetQualification()),
			fen: m.GetFeeFen(), from: date(m.GetEffectiveFrom()), to: date(m.GetEffectiveTo()), eventID: id}
		w.fees[f.id] = f
		k := feeKey{f.inst, f.q}
		w.feesBy[k] = append(w.feesBy[k], f)
	case *subsidyv1.AnnualTargetSet:
		w.targets[m.GetYear()] = m.GetTarget()
	case *subsidyv1.BudgetAllocated:
		f := w.fund(fundKey{m.GetYear(), m.GetUnitCode()})
		f.allocated += m.GetAmountFen()
		f.allocations = append(f.allocations, id)

	// Trainee lifecycle.
	case *subsidyv1.TraineeRegistered:
		t := w.trainee(m.GetPersonKey())
		t.unit, t.education, t.employee, t.eventID = w.name(m.GetUnitCode()), m.GetEducation(), m.GetEnterpriseEmployee(), id
	case *subsidyv1.EligibilityEvidenceRecorded:
		t := w.trainee(m.GetPersonKey())
		t.evidence = append(t.evidence, evidenceOf(w, m, id))
	case *subsidyv1.Enrolled:
		t := w.trainee(m.GetPersonKey())
		e := &enrolment{id: m.GetEnrolmentId(), person: t.key, inst: w.name(m.GetTrainingInstitutionId()),
			q: refdata.QualificationOf(m.GetQualification()), enrolledOn: date(m.GetEnrolledOn()), eventID: id}
		w.enrolments[e.id] = e
		t.enrolments = append(t.enrolments, e)
	case *subsidyv1.TrainingCompleted:
		if e := w.enrolments[m.GetEnrolmentId()]; e != nil {
			e.completedOn, e.completionEventID = date(m.GetCompletedOn()), id
		}
	case *subsidyv1.AdvancePaymentRecorded:
		t := w.trainee(m.GetPersonKey())
		q := refdata.QualificationOf(m.GetQualification())
		if t.advances.get(q) == nil {
			t.advances.set(q, &advance{id: m.GetAdvanceId(), inst: w.name(m.GetTrainingInstitutionId()), fen: m.GetAmountFen(), eventID: id})
		}
	case *subsidyv1.AssessmentRecorded:
		a := w.assessmentFrom(m)
		t := w.trainee(a.person)
		a.eventID, a.person, a.evalInst = id, t.key, w.name(a.evalInst)
		w.assessments[a.id] = a
		t.attempts.set(a.q, append(t.attempts.get(a.q), a))
		if a.attempt == 1 && a.trainInst != "" {
			k := qualityKey{a.trainInst, a.q}
			qw := w.quality[k]
			if qw == nil {
				qw = &qualityWindow{}
				w.quality[k] = qw
			}
			qw.add(a.passed, id, w.rs.PassRateWindow)
		}
	case *subsidyv1.CertificateIssued:
		c := &certificate{id: m.GetCertificateId(), person: w.personKey(m.GetPersonKey()), evalInst: w.name(m.GetEvaluationInstitutionId()),
			q: refdata.QualificationOf(m.GetQualification()), issuedOn: date(m.GetIssuedOn()), eventID: id}
		w.certificates[c.id] = c
		if a := w.assessments[m.GetAssessmentId()]; a != nil {
			// The assessment's certificate in force: the first, or one
			// issued after it was revoked (rules 2026.3; the second chance
			// and the advance rule read it).
			if prev := w.certificates[a.cert]; a.cert == "" || prev == nil || prev.revoked {
				a.cert = c.id
			} else if prev.id != c.id {
				w.reissued[a.id] = c.id
			}
		}
		months := w.certMonths[c.evalInst]
		if months == nil {
			months = map[int]int{}
			w.certMonths[c.evalInst] = months
		}
		months[month(c.issuedOn)]++
	case *subsidyv1.CertificateRevoked:
		if c := w.certificates[m.GetCertificateId()]; c != nil {
			c.revoked = true
		}

	// Official actions on entitlements.
	case *subsidyv1.EntitlementConfirmed:
		if e := w.entitlements[m.GetEntitlementId()]; e != nil {
			e.confirmedBy, e.confirmedOn, e.confirmEventID = w.name(m.GetOfficialId()), date(m.GetConfirmedOn()), id
		}
	case *subsidyv1.EntitlementApproved:
		if e := w.entitlements[m.GetEntitlementId()]; e != nil {
			e.approvedBy, e.approvedOn, e.approveEventID = w.name(m.GetOfficialId()), date(m.GetApprovedOn()), id
		}
	case *subsidyv1.NoticeClosed:
		if e := w.entitlements[m.GetEntitlementId()]; e != nil {
			e.noticeClosed, e.closeEventID = date(m.GetClosedOn()), id
		}
	case *subsidyv1.ObjectionRaised:
		o := &objection{id: m.GetObjectionId(), entitlement: m.GetEntitlementId(), raisedOn: date(m.GetRaisedOn()), eventID: id}
		w.objections[o.id] = o
		if e := w.entitlements[o.entitlement]; e != nil {
			o.entitlement = e.id
			e.objections = append(e.objections, o.id)
		}
	case *subsidyv1.ObjectionResolved:
		if o := w.objections[m.GetObjectionId()]; o != nil {
			o.resolved, o.upheld, o.resolvedOn = true, m.GetUpheld(), date(m.GetResolvedOn())
		}
	case *subsidyv1.PaymentSettled:
		if o := w.orders[m.GetPaymentOrderId()]; o != nil {
			o.state, o.resultOn, o.resultID = orderSettled, date(m.GetSettledOn()), id
			for _, off := range o.offsets {
				if c := w.clawbacks[off.clawback]; c != nil {
					c.reserved -= off.fen
				}
			}
			if e := w.entitlements[o.entitlement]; e != nil {
				e.inFlight = ""
				e.paid += o.amount
				w.recount(e)
				if o.payee.kind == subsidyv1.PayeeKind_PAYEE_KIND_TRAINEE {
					acct := m.GetPaidToAccount()
					if !slices.Contains(w.accounts[acct], e.person) {
						w.accounts[acct] = append(w.accounts[acct], e.person)
					}
				}
			}
		}
	case *subsidyv1.PaymentFailed:
		if o := w.orders[m.GetPaymentOrderId()]; o != nil {
			o.state, o.resultOn, o.resultID = orderFailed, date(m.GetFailedOn()), id
			for _, off := range o.offsets {
				if c := w.clawbacks[off.clawback]; c != nil {
					c.reserved -= off.fen
				}
			}
			if e := w.entitlements[o.entitlement]; e != nil {
				e.inFlight = ""
				w.recount(e)
			}
		}
	case *subsidyv1.WriteOffRequested:
		if c := w.clawbacks[m.GetClawbackId()]; c != nil {
			c.pending = &writeOff{official: w.name(m.GetOfficialId()), amount: m.GetAmountFen(), digest: digest(m)}
			c.pendingID = id
		}
	case *subsidyv1.ClawbackWrittenOff:
		if c := w.clawbacks[m.GetClawbackId()]; c != nil {
			c.writtenOff += m.GetAmountFen()
			c.pending, c.pendingID = nil, events.ID{}
		}
	case *subsidyv1.PaymentRequested:
		if e := w.entitlements[m.GetEntitlementId()]; e != nil {
			e.requestedOn = date(m.GetRequestedOn())
		}
	case *subsidyv1.RepaymentReceived, *subsidyv1.FraudFound, *subsidyv1.HoldPlaced, *subsidyv1.HoldLifted:
		// Their effects are in the events derived from them.

	// Derived decisions.
	case *subsidyv1.SubsidyEntitled:
		w.foldEntitled(id, m)
	case *subsidyv1.SubsidyDenied:
		if c := w.certificates[m.GetCertificateId()]; c != nil {
			c.denied = m.GetReason()
		}
	case *subsidyv1.SubsidyDenialRevised:
		if c := w.certificates[m.GetCertificateId()]; c != nil {
			c.revised = m.GetReason()
		}
	case *subsidyv1.NoticeOpened:
		if e := w.entitlements[m.GetEntitlementId()]; e != nil {
			e.noticeStart, e.noticeEnd, e.noticeEventID = date(m.GetStartsOn()), date(m.GetEndsOn()), id
		}
	case *subsidyv1.EntitlementHeld:
		if e := w.entitlements[m.GetEntitlementId()]; e != nil {
			h := m.GetHoldId()
			e.placeHold(hold{id: h, reason: m.GetReason(), placedOn: date(m.GetHeldOn()), eventID: id})
			switch m.GetReason() {
			case subsidyv1.ReasonCode_REASON_CODE_BUDGET_EXCEEDED:
				f := w.fund(fundKey{e.year, e.unit})
				f.queue = append(f.queue, e.id)
			case subsidyv1.ReasonCode_REASON_CODE_CERTIFICATE_REVOKED, subsidyv1.ReasonCode_REASON_CODE_FRAUD_FINDING:
				if e.cancelled == "" {
					e.cancelled = h
				}
				w.dequeue(e)
			}
			w.recount(e)
		}
	case *subsidyv1.EntitlementReleased:
		if e := w.entitlements[m.GetEntitlementId()]; e != nil {
			if on := date(m.GetReleasedOn()); !on.IsZero() && on >= e.released.on {
				if h, ok := e.hold(m.GetHoldId()); ok {
					e.released = datedRelease{hold: h.id, on: on}
				}
			}
			e.releaseHold(m.GetHoldId())
			if m.GetHoldId() == HoldBudget {
				w.dequeue(e)
			}
			w.recount(e)
		}
	case *subsidyv1.PaymentOrdered:
		o := &order{id: m.GetPaymentOrderId(), entitlement: m.GetEntitlementId(), attempt: m.GetAttempt(),
			amount: m.GetAmountFen(), offset: m.GetOffsetFen(), net: m.GetNetFen(), payee: w.payeeFrom(m.GetPayee()), eventID: id}
		w.orders[o.id] = o
		if e := w.entitlements[o.entitlement]; e != nil {
			o.entitlement = e.id // one copy of the text
			o.requestedOn = e.requestedOn
			e.orders = append(e.orders, o.id)
			e.inFlight = o.id
			w.recount(e)
		}
		o.offsets = w.parseOffsets(m)
		for _, off := range o.offsets {
			if c := w.clawbacks[off.clawback]; c != nil {
				c.reserved += off.fen
			}
		}
	case *subsidyv1.ClawbackRaised:
		c := &clawback{id: m.GetClawbackId(), entitlement: m.GetEntitlementId(), payee: w.payeeFrom(m.GetPayee()),
			amount: m.GetAmountFen(), cause: m.GetCause(), raisedOn: date(m.GetRaisedOn()), eventID: id}
		w.clawbacks[c.id] = c
		w.clawbackSeq = append(w.clawbackSeq, c.id)
		if e := w.entitlements[c.entitlement]; e != nil {
			c.entitlement = e.id
			e.clawback = c.id
		}
	case *subsidyv1.ClawbackRecovered:
		if c := w.clawbacks[m.GetClawbackId()]; c != nil {
			c.recovered += m.GetAmountFen()
			c.writtenOff -= m.GetWrittenOffFen()
		}
	case *subsidyv1.ViolationFlagged:
		if _, ok := w.flags[m.GetFlagId()]; !ok {
			w.flagOrder = append(w.flagOrder, m.GetFlagId())
		}
		w.flags[m.GetFlagId()] = Flag{ID: m.GetFlagId(), Reason: m.GetReason(), Subject: m.GetSubject(), Detail: m.GetDetail()}
		if m.GetReason() == subsidyv1.ReasonCode_REASON_CODE_QUALITY_BELOW_THRESHOLD {
			if qw := w.quality[qualityKey{m.GetInstitutionId(), refdata.QualificationOf(m.GetQualification())}]; qw != nil {
				qw.flag = m.GetFlagId()
			}
		}
	case *subsidyv1.FlagCleared:
		if f, ok := w.flags[m.GetFlagId()]; ok {
			f.Cleared = true
			w.flags[m.GetFlagId()] = f
		}
		if m.GetReason() == subsidyv1.ReasonCode_REASON_CODE_QUALITY_BELOW_THRESHOLD {
			if qw := w.quality[qualityKey{m.GetInstitutionId(), refdata.QualificationOf(m.GetQualification())}]; qw != nil && qw.flag == m.GetFlagId() {
				qw.flag = ""
			}
		}
	}
}

// parseOffsets splits a PaymentOrdered's offset over its clawbacks the way
// Decide computed it (in listed order, each up to its outstanding amount).
// The split is recorded in the Decision's checks; recomputing it from the
// state at the time of the order gives the same numbers.
func (w *World) parseOffsets(m *subsidyv1.PaymentOrdered) []offset {
	left := m.GetOffsetFen()
	var out []offset
	for _, id := range m.GetOffsetClawbackIds() {
		c := w.clawbacks[id]
		if c == nil || left <= 0 {
			continue
		}
		n := min(left, c.outstanding())
		if n <= 0 {
			continue
		}
		out = append(out, offset{id, n})
		left -= n
	}
	return out
}

// evidenceOf is what rule 4 reads of an EligibilityEvidenceRecorded.
func evidenceOf(w *World, m *subsidyv1.EligibilityEvidenceRecorded, id events.ID) evidence {
	return evidence{id: m.GetEvidenceId(), source: w.name(m.GetSource()), category: m.GetCategory(),
		confirmed: m.GetConfirmed(), gradYear: m.GetGraduationYear(),
		insuredFrom: date(m.GetInsuredFrom()), insuredTo: date(m.GetInsuredTo()), eventID: id,
		snapshotAt: m.GetSnapshotAt().AsTime().UnixNano()}
}

func (w *World) foldEntitled(id events.ID, m *subsidyv1.SubsidyEntitled) {
	q := refdata.QualificationOf(m.GetQualification())
	e := &entitlement{id: m.GetEntitlementId(), eventID: id, person: w.personKey(m.GetPersonKey()), q: q,
		certificate: m.GetCertificateId(), amount: m.GetAmountFen(), payee: w.payeeFrom(m.GetPayee()), year: m.GetYear(),
		unit: w.name(m.GetUnitCode()), trainInst: w.name(m.GetTrainingInstitutionId()), assessedOn: date(m.GetAssessedOn())}
	if c := w.certificates[e.certificate]; c != nil {
		e.certificate = c.id
		c.entitlement = e.id
		e.issuedOn = c.issuedOn
	}
	w.entitlements[e.id] = e
	w.trainee(e.person).entitlements.set(q, e.id)
	w.recount(e)
}

// counts reports the amount an entitlement commits in its fund's budget:
// its amount unless it waits for budget, or was cancelled before any money
// moved.
func (e *entitlement) counts() int64 {
	if _, waiting := e.hold(HoldBudget); waiting {
		return 0
	}
	if e.cancelled != "" && e.paid == 0 && e.inFlight == "" {
		return 0
	}
	return e.amount
}

func (w *World) recount(e *entitlement) {
	n := e.counts()
	if n != e.counted {
		w.fund(fundKey{e.year, e.unit}).committed += n - e.counted
		e.counted = n
	}
}

func (w *World) dequeue(e *entitlement) {
	f := w.funds[fundKey{e.year, e.unit}]
	if f == nil {
		return
	}
	if i := slices.Index(f.queue, e.id); i >= 0 {
		f.queue = slices.Delete(slices.Clone(f.queue), i, i+1)
	}
}

func month(d refdata.Date) int { return d.Year()*100 + int(d.Month()) }

func (w *World) assessmentFrom(m *subsidyv1.AssessmentRecorded) *assessment {
	a := &assessment{id: m.GetAssessmentId(), person: m.GetPersonKey(), evalInst: m.GetEvaluationInstitutionId(),
		q: refdata.QualificationOf(m.GetQualification()), attempt: m.GetAttempt(),
		theory: m.GetTheoryScore(), practical: m.GetPracticalScore(), assessedOn: date(m.GetAssessedOn())}
	a.passed = a.theory >= PassMark && a.practical >= PassMark
	a.named = m.GetTrainingInstitutionId() != ""
	if e := w.enrolmentFor(a.person, a.q, m.GetTrainingInstitutionId(), a.assessedOn); e != nil {
		a.enrolment = e.id
		a.trainInst = e.inst
		a.completed = !e.completedOn.IsZero() && e.completedOn <= a.assessedOn
	}
	return a
}

// enrolmentFor picks the enrolment an assessment belongs to: among the
// person's enrolments for q on or before the date (at inst, if given), a
// completed one first, then the earliest.
func (w *World) enrolmentFor(person string, q refdata.Qualification, inst string, on refdata.Date) *enrolment {
	t := w.trainees[person]
	if t == nil {
		return nil
	}
	var best *enrolment
	for _, e := range t.enrolments {
		if e.q != q || e.enrolledOn > on || (inst != "" && e.inst != inst) {
			continue
		}
		done := !e.completedOn.IsZero() && e.completedOn <= on
		if best == nil {
			best = e
			continue
		}
		bestDone := !best.completedOn.IsZero() && best.completedOn <= on
		if done && !bestDone {
			best = e
		}
	}
	return best
}
