package rules

import (
	"crypto/sha256"
	"slices"
	"strings"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// The folded state. Every pointer below is owned by the World; Decide only
// reads it. Slices are kept in Apply order, which is the global log order,
// so iterating them is deterministic; maps are only looked up, or iterated
// after sorting their keys.

// naturalRec is what the world keeps of a fact with a natural key, under
// the key's naturalHash: the first half of its content's SHA-256 and its
// event id. 128 bits of each keep collisions out of reach while the map
// holds no pointers (a third of the memory of string keys and full digests,
// and nothing for the collector to scan).
type naturalRec struct {
	digest  [16]byte
	eventID events.ID
}

// naturalHash identifies a natural key in the world's map.
type naturalHash [16]byte

func hashNaturalBytes(key []byte) naturalHash {
	sum := sha256.Sum256(key)
	return naturalHash(sum[:16])
}

type approval struct {
	occupation subsidyv1.Occupation
	from, to   refdata.Date
	eventID    events.ID
}

type institution struct {
	id          string
	kind        subsidyv1.InstitutionKind
	unit        string
	account     string
	eventID     events.ID
	approvals   []approval
	suspended   bool
	blacklisted bool
	suspendedBy events.ID // event id of the suspension in force
}

func (in *institution) approvedFor(o subsidyv1.Occupation, d refdata.Date) (approval, bool) {
	for _, a := range in.approvals {
		if a.occupation == o && a.from <= d && (a.to.IsZero() || d <= a.to) {
			return a, true
		}
	}
	return approval{}, false
}

type fee struct {
	id       string
	inst     string
	q        refdata.Qualification
	fen      int64
	from, to refdata.Date
	eventID  events.ID
}

type feeKey struct {
	inst string
	q    refdata.Qualification
}

type fundKey struct {
	year int32
	unit string
}

type fund struct {
	key       fundKey
	allocated int64
	committed int64
	// queue holds the budget-held entitlements in the order they were held.
	queue       []string
	allocations []events.ID
}

type trainee struct {
	key        string
	unit       string
	education  subsidyv1.Education
	employee   bool
	eventID    events.ID
	evidence   []evidence // in the order recorded
	enrolments []*enrolment
	attempts   byQual[[]*assessment]
	// entitlement ids by qualification (at most one each, rule 6)
	entitlements byQual[string]
	advances     byQual[*advance]
}

// byQual maps qualifications to values for one trainee, who has one or a
// few: a slice in insertion order (nil until the first) costs a fraction
// of a map's memory, and three maps were made for every trainee.
type byQual[V any] []qualValue[V]

type qualValue[V any] struct {
	q refdata.Qualification
	v V
}

// get returns the value of q, or V's zero value.
func (m byQual[V]) get(q refdata.Qualification) V {
	for _, x := range m {
		if x.q == q {
			return x.v
		}
	}
	var zero V
	return zero
}

// set sets the value of q.
func (m *byQual[V]) set(q refdata.Qualification, v V) {
	for i := range *m {
		if (*m)[i].q == q {
			(*m)[i].v = v
			return
		}
	}
	*m = append(*m, qualValue[V]{q, v})
}

// valuesByKey returns the values ordered by their qualification's String.
func (m byQual[V]) valuesByKey() []V {
	sorted := slices.Clone(m)
	slices.SortFunc(sorted, func(a, b qualValue[V]) int { return strings.Compare(a.q.String(), b.q.String()) })
	vs := make([]V, len(sorted))
	for i, x := range sorted {
		vs[i] = x.v
	}
	return vs
}

// evidence is what rule 2 reads of an EligibilityEvidenceRecorded (not
// the whole message: every trainee has one or two).
type evidence struct {
	id, source             string
	category               subsidyv1.EligibilityCategory
	confirmed              bool
	gradYear               int32
	insuredFrom, insuredTo refdata.Date
	eventID                events.ID
	// snapshotAt is when the source's records were read (UnixNano of
	// snapshot_at): of one category, the latest snapshot speaks.
	snapshotAt int64
}

type enrolment struct {
	id                string
	person            string
	inst              string
	q                 refdata.Qualification
	enrolledOn        refdata.Date
	completedOn       refdata.Date
	eventID           events.ID
	completionEventID events.ID
}

type advance struct {
	id      string
	inst    string
	fen     int64
	eventID events.ID
}

type assessment struct {
	id         string
	person     string
	evalInst   string
	trainInst  string // the enrolment's institution
	q          refdata.Qualification
	attempt    uint32
	passed     bool
	theory     int32
	practical  int32
	assessedOn refdata.Date
	enrolment  string
	// named: the assessment named its training institution, so only an
	// enrolment there can be its training (World.trainingOf).
	named     bool
	completed bool
	eventID   events.ID
	// cert is the assessment's certificate in force: the first issued on
	// it, or one issued after that was revoked (the second chance reads its
	// decision when evidence or the completion comes late).
	cert string
}

type certificate struct {
	id       string
	person   string
	evalInst string
	q        refdata.Qualification
	issuedOn refdata.Date
	eventID  events.ID
	revoked  bool
	// entitlement is the entitlement this certificate earned, if any;
	// denied the reason it earned none.
	entitlement string
	denied      subsidyv1.ReasonCode
	// revised is the reason of the last SubsidyDenialRevised, if any: what
	// the certificate fails on now. Decisions read denied (lateDenials).
	revised subsidyv1.ReasonCode
}

type objection struct {
	id          string
	entitlement string
	raisedOn    refdata.Date
	resolvedOn  refdata.Date
	resolved    bool
	upheld      bool
	eventID     events.ID
}

type entitlement struct {
	id          string
	eventID     events.ID
	person      string
	q           refdata.Qualification
	certificate string
	amount      int64
	payee       payee
	year        int32
	unit        string
	trainInst   string
	assessedOn  refdata.Date
	issuedOn    refdata.Date

	confirmedBy, approvedBy        string
	confirmedOn, approvedOn        refdata.Date
	confirmEventID, approveEventID events.ID
	noticeStart, noticeEnd         refdata.Date
	noticeClosed                   refdata.Date
	noticeEventID, closeEventID    events.ID
	holds                          []hold // in the order they were placed
	objections                     []string
	orders                         []string
	inFlight                       string
	requestedOn                    refdata.Date // of the last payment request
	paid                           int64
	cancelled                      string // hold id of the revocation or fraud hold
	clawback                       string
	counted                        int64 // amount it counts in its fund's committed
	// released is the latest dated release of a hold on it: a payment
	// may not be requested before its day (BehaviourDatedHolds).
	released datedRelease
}

// datedRelease is a release's hold and day (EntitlementReleased.released_on).
type datedRelease struct {
	hold string
	on   refdata.Date
}

// hold is a hold on an entitlement: its id, reason, the event that placed
// it and its day (EntitlementHeld.held_on; zero if decided before
// BehaviourDatedHolds). An entitlement has none or a few, so a slice (nil
// until the first) costs less than the two maps it replaces.
type hold struct {
	id       string
	reason   subsidyv1.ReasonCode
	placedOn refdata.Date
	eventID  events.ID
}

// hold returns the hold with id h (the zero hold, false, if there is none).
func (e *entitlement) hold(h string) (hold, bool) {
	for _, x := range e.holds {
		if x.id == h {
			return x, true
		}
	}
	return hold{}, false
}

// placeHold adds x, or replaces the hold with its id.
func (e *entitlement) placeHold(x hold) {
	for i := range e.holds {
		if e.holds[i].id == x.id {
			e.holds[i] = x
			return
		}
	}
	e.holds = append(e.holds, x)
}

// releaseHold removes the hold with id h, if any.
func (e *entitlement) releaseHold(h string) {
	e.holds = slices.DeleteFunc(e.holds, func(x hold) bool { return x.id == h })
}

// settled reports whether an order of e settled (a 0-fen one pays nothing
// and is paid too).
func (w *World) settled(e *entitlement) bool {
	return slices.ContainsFunc(e.orders, func(o string) bool { return w.orders[o].state == orderSettled })
}

// holdIDs returns the ids of the holds, sorted.
func (e *entitlement) holdIDs() []string {
	var ids []string
	for _, x := range e.holds {
		ids = append(ids, x.id)
	}
	slices.Sort(ids)
	return ids
}

type offset struct {
	clawback string
	fen      int64
}

type orderState int

const (
	orderInFlight orderState = iota
	orderSettled
	orderFailed
)

type order struct {
	id          string
	entitlement string
	attempt     uint32
	amount      int64
	offset      int64
	net         int64
	payee       payee
	offsets     []offset
	state       orderState
	eventID     events.ID
	requestedOn refdata.Date
	resultOn    refdata.Date // settled_on or failed_on
	resultID    events.ID
}

type clawback struct {
	id          string
	entitlement string
	payee       payee
	amount      int64
	recovered   int64
	writtenOff  int64
	reserved    int64
	cause       subsidyv1.ClawbackCause
	raisedOn    refdata.Date // zero if decided before BehaviourDatedHolds
	eventID     events.ID
	pending     *writeOff // the latest write-off requested and not yet approved
	pendingID   events.ID
}

// writeOff is what the rules read of a pending WriteOffRequested: who asked
// for how much, and its content digest (a repeat of it is a duplicate).
type writeOff struct {
	official string
	amount   int64
	digest   [16]byte
}

func (c *clawback) outstanding() int64 { return c.amount - c.recovered - c.writtenOff - c.reserved }

type qualityKey struct {
	inst string
	q    refdata.Qualification
}

// qualityWindow keeps the last PassRateWindow first-attempt results and
// the event ids of their assessments (the evidence of a quality flag).
type qualityWindow struct {
	results []bool
	ids     []events.ID
	passes  int
	// flag is the open QUALITY_BELOW_THRESHOLD flag of the window, "" if
	// none (rules 2026.4: a recovery clears it).
	flag string
}

func (q *qualityWindow) add(pass bool, id events.ID, n int) {
	q.results = append(q.results, pass)
	q.ids = append(q.ids, id)
	if pass {
		q.passes++
	}
	q.trim(n)
}

// trim keeps the window's last n results.
func (q *qualityWindow) trim(n int) {
	if drop := len(q.results) - n; drop > 0 {
		for _, r := range q.results[:drop] {
			if r {
				q.passes--
			}
		}
		// Shift in place: Decide copies what it reads of the window, and
		// does not run during Apply.
		q.results = q.results[:copy(q.results, q.results[drop:])]
		q.ids = q.ids[:copy(q.ids, q.ids[drop:])]
	}
}

// below reports whether the window is full and its pass rate below bp.
func below(results, passes, window, bp int) bool {
	return results >= window && passes*10000 < bp*results
}

// Flag is a ViolationFlagged as recorded; Cleared once a FlagCleared
// closed it.
type Flag struct {
	ID      string
	Reason  subsidyv1.ReasonCode
	Subject string
	Detail  string
	Cleared bool
}

// payee is a subsidyv1.Payee as the World keeps it: its fields inline (a
// message of its own cost a pointer, an allocation and the message's
// internal state), its person key and institution shared with the rest of
// the World.
type payee struct {
	kind    subsidyv1.PayeeKind
	present bool // the event had a payee (always, for events Decide made)
	inst    string
	person  string
	account string
}

// payeeFrom keeps p, interning its person key and institution.
func (w *World) payeeFrom(p *subsidyv1.Payee) payee {
	if p == nil {
		return payee{}
	}
	return payee{kind: p.GetKind(), present: true, inst: w.name(p.GetInstitutionId()),
		person: w.personKey(p.GetPersonKey()), account: p.GetAccountRef()}
}

// proto returns a new message with the payee's fields (nil if the event had
// none), for an event or a caller: no message is shared with the World.
func (p payee) proto() *subsidyv1.Payee {
	if !p.present {
		return nil
	}
	return &subsidyv1.Payee{Kind: p.kind, InstitutionId: p.inst, PersonKey: p.person, AccountRef: p.account}
}

// personKey returns the World's copy of a person key, the known trainee's,
// so that the records of one person share one string; k itself if the
// person is unknown.
func (w *World) personKey(k string) string {
	if t := w.trainees[k]; t != nil {
		return t.key
	}
	return k
}

// name returns the World's copy of s, one of the few values of a field that
// many records repeat (institution ids, unit codes, officials, evidence
// sources), adding it if it is new. Only Apply may call it.
func (w *World) name(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := w.names[s]; ok {
		return v
	}
	s = strings.Clone(s)
	w.names[s] = s
	return s
}
