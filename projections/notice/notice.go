// Package notice is the public-notice read model: the entitlements whose
// public notice is open (NoticeOpened, not yet NoticeClosed), with masked
// name and ID number only, the amount, the training institution and the
// notice dates (rule 12). The list a citizen sees is the entitlements
// whose window contains the day asked for.
//
// It keeps the masked display fields of every registered trainee and a
// brief of each entitlement until its notice closes or it is cancelled.
package notice

import (
	"io"
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
const Name = "notice"

const version = 2 // 2: the person-key index is written as it is, after the people

// masked holds a person's masked name and ID. The ID is kept as its four
// first and last characters when it has the standard mask (18 characters,
// ten stars in the middle), whole otherwise.
type masked struct {
	name       string
	head, tail [4]byte
	full       string
}

const stars = "**********"

func maskOf(name, id string) masked {
	m := masked{name: strings.Clone(name)} // kept: a build's strings point into memory it reuses
	if len(id) == 18 && id[4:14] == stars {
		copy(m.head[:], id[:4])
		copy(m.tail[:], id[14:])
	} else {
		m.full = strings.Clone(id)
	}
	return m
}

func (m masked) id() string {
	if m.full != "" || m.head == [4]byte{} {
		return m.full
	}
	return string(m.head[:]) + stars + string(m.tail[:])
}

// person is a registered trainee: the key and the masked display fields.
type person struct {
	key rm.PersonKey
	masked
}

type brief struct {
	person      int32
	q           rm.Q
	amount      int64
	train       uint32
	payee       uint32
	payeeKind   uint8
	unit        uint32
	year        int16
	held        int16
	objections  int16
	start, end  refdata.Date
	open        bool
	openedAtPos uint64
}

// Model is the public-notice projection.
type Model struct {
	mu     sync.RWMutex
	pos    events.Position
	strs   *rm.Strings
	units  *rm.Units
	idx    rm.KeyIndex
	people rm.Chunks[person]
	names  map[string]string // institution id -> name
	ents   map[events.ID]*brief
	closed int64
}

var _ projections.Projection = (*Model)(nil)

// New returns an empty model.
func New() *Model {
	return &Model{strs: rm.NewStrings(), units: rm.NewUnits(), names: map[string]string{},
		ents: map[events.ID]*brief{}}
}

// Factory makes fresh models for a Runner.
func Factory() projections.Projection { return New() }

// Name implements projections.Projection.
func (m *Model) Name() string { return Name }

// Version implements projections.Projection.
func (m *Model) Version() uint32 { return version }

// Types implements projections.Projection.
func (m *Model) Types() []string {
	return []string{"subsidy.v1.UnitDefined", "subsidy.v1.InstitutionRegistered", "subsidy.v1.TraineeRegistered",
		"subsidy.v1.SubsidyEntitled", "subsidy.v1.NoticeOpened", "subsidy.v1.NoticeClosed", "subsidy.v1.ObjectionRaised",
		"subsidy.v1.EntitlementHeld", "subsidy.v1.EntitlementReleased"}
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

// keyAt returns the key of the person at index i (for the key index).
func (m *Model) keyAt(i int32) *rm.PersonKey { return &m.people.At(i).key }

// brief returns the entitlement the event names by id (its payload's
// entitlement_id field, as the decoder parsed it).
func (m *Model) brief(ev *projections.Event, id string) (events.ID, *brief, error) {
	eid, err := ev.EntitlementIDOf(id)
	if err != nil {
		return eid, nil, rm.Err(ev.Type, "entitlement id: %v", err)
	}
	return eid, m.ents[eid], nil // nil: closed, cancelled or unknown
}

func (m *Model) apply(ev *projections.Event) error {
	switch p := ev.Payload.(type) {
	case *pb.UnitDefined:
		return m.units.Apply(p)
	case *pb.InstitutionRegistered:
		m.names[strings.Clone(p.InstitutionId)] = strings.Clone(p.Name) // the key too: assigning replaces it
	case *pb.TraineeRegistered:
		k, err := ev.PersonKeyOf(p.PersonKey)
		if err != nil {
			return rm.Err(ev.Type, "%v", err)
		}
		if i, ok := m.idx.Get(k, m.keyAt); ok {
			m.people.At(i).masked = maskOf(p.MaskedName, p.MaskedId)
		} else {
			m.idx.Put(k, m.people.Append(person{k, maskOf(p.MaskedName, p.MaskedId)}))
		}
	case *pb.SubsidyEntitled:
		k, err := ev.PersonKeyOf(p.PersonKey)
		if err != nil {
			return rm.Err(ev.Type, "%v", err)
		}
		i, ok := m.idx.Get(k, m.keyAt)
		if !ok {
			return rm.Err(ev.Type, "unknown trainee %s", p.PersonKey)
		}
		id, err := ev.EntitlementIDOf(p.EntitlementId)
		if err != nil {
			return rm.Err(ev.Type, "entitlement id: %v", err)
		}
		m.ents[id] = &brief{person: i, q: rm.QOf(p.Qualification), amount: p.AmountFen, train: m.strs.ID(p.TrainingInstitutionId),
			payee: m.strs.ID(p.Payee.GetInstitutionId()), payeeKind: uint8(p.Payee.GetKind()), unit: m.strs.ID(p.UnitCode), year: int16(p.Year)}
	case *pb.NoticeOpened:
		_, b, err := m.brief(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		if b == nil {
			return rm.Err(ev.Type, "notice of unknown or cancelled entitlement %s", p.EntitlementId)
		}
		b.start, b.end, b.open, b.openedAtPos = rm.Date(p.StartsOn), rm.Date(p.EndsOn), true, uint64(ev.Position)
	case *pb.NoticeClosed:
		id, b, err := m.brief(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		if b != nil {
			delete(m.ents, id)
			m.closed++
		}
	case *pb.ObjectionRaised:
		_, b, err := m.brief(ev, p.EntitlementId)
		if err != nil {
			return err
		}
		if b != nil {
			b.objections++
		}
	case *pb.EntitlementHeld:
		id, b, err := m.brief(ev, p.EntitlementId)
		if err != nil || b == nil {
			return err
		}
		if p.Reason == pb.ReasonCode_REASON_CODE_CERTIFICATE_REVOKED || p.Reason == pb.ReasonCode_REASON_CODE_FRAUD_FINDING {
			delete(m.ents, id) // cancelled: off the notice
			return nil
		}
		b.held++
	case *pb.EntitlementReleased:
		_, b, err := m.brief(ev, p.EntitlementId)
		if err != nil || b == nil {
			return err
		}
		if b.held > 0 {
			b.held--
		}
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
	sw.Uvarint(uint64(m.people.Len()))
	for i := range int32(m.people.Len()) {
		p := m.people.At(i)
		sw.Fixed(p.key[:])
		sw.String(p.name)
		sw.Fixed(p.head[:])
		sw.Fixed(p.tail[:])
		sw.String(p.full)
	}
	m.idx.Write(sw)
	ns := rm.SortedKeys(m.names)
	sw.Uvarint(uint64(len(ns)))
	for _, id := range ns {
		sw.String(id)
		sw.String(m.names[id])
	}
	ids := make([]events.ID, 0, len(m.ents))
	for id := range m.ents {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	sw.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		b := m.ents[id]
		sw.Fixed(id[:])
		sw.Int(int(b.person))
		sw.Uvarint(uint64(b.q))
		sw.Varint(b.amount)
		sw.Uvarint(uint64(b.train))
		sw.Uvarint(uint64(b.payee))
		sw.Uvarint(uint64(b.payeeKind))
		sw.Uvarint(uint64(b.unit))
		sw.Int(int(b.year))
		sw.Int(int(b.held))
		sw.Int(int(b.objections))
		sw.Int(int(b.start))
		sw.Int(int(b.end))
		sw.Bool(b.open)
		sw.Uvarint(b.openedAtPos)
	}
	sw.Varint(m.closed)
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
	for range np {
		var p person
		sr.Fixed(p.key[:])
		p.name = sr.String()
		sr.Fixed(p.head[:])
		sr.Fixed(p.tail[:])
		p.full = sr.String()
		if sr.Err() != nil {
			return sr.Err()
		}
		n.people.Append(p)
	}
	n.idx.Read(sr, n.people.Len())
	for range sr.Len(1 << 24) {
		id := sr.String()
		n.names[id] = sr.String()
	}
	for range sr.Len(1 << 30) {
		var id events.ID
		sr.Fixed(id[:])
		b := &brief{person: int32(sr.Int()), q: rm.Q(sr.Uvarint()), amount: sr.Varint(), train: uint32(sr.Uvarint()),
			payee: uint32(sr.Uvarint()), payeeKind: uint8(sr.Uvarint()), unit: uint32(sr.Uvarint()), year: int16(sr.Int()),
			held: int16(sr.Int()), objections: int16(sr.Int()), start: refdata.Date(sr.Int()), end: refdata.Date(sr.Int()),
			open: sr.Bool(), openedAtPos: sr.Uvarint()}
		if sr.Err() != nil {
			return sr.Err()
		}
		if int(b.person) >= np {
			sr.Fail("entitlement names person %d of %d", b.person, np)
			return sr.Err()
		}
		n.ents[id] = b
	}
	n.closed = sr.Varint()
	if err := sr.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pos, m.strs, m.units, m.idx, m.people, m.names, m.ents, m.closed = n.pos, n.strs, n.units, n.idx, n.people, n.names, n.ents, n.closed
	return nil
}

// Entry is one entitlement on the public notice. It carries masked data
// only.
type Entry struct {
	EntitlementID           string           `json:"entitlement_id"`
	MaskedName              string           `json:"masked_name"`
	MaskedID                string           `json:"masked_id"`
	Qualification           rm.Qualification `json:"qualification"`
	AmountFen               int64            `json:"amount_fen"`
	TrainingInstitutionID   string           `json:"training_institution_id"`
	TrainingInstitutionName string           `json:"training_institution_name"`
	PayeeKind               string           `json:"payee_kind"`
	Year                    int              `json:"year"`
	UnitCode                string           `json:"unit_code"`
	CurrentUnitCode         string           `json:"current_unit_code"`
	UnitName                string           `json:"unit_name"`
	StartsOn                string           `json:"starts_on"`
	EndsOn                  string           `json:"ends_on"`
	Held                    bool             `json:"held"`
	Objections              int              `json:"objections"`
}

// List is the JSON form of the notice (GET /v1/notice).
type List struct {
	// On is the day asked for; empty when every open notice is listed.
	On      string  `json:"on,omitempty"`
	Entries []Entry `json:"entries"`
	// Open counts the open notices of the unit and institution asked for
	// (of every day, whatever On).
	Open int `json:"open"`
	// Closed counts the notices ever closed, city-wide: given only for a
	// list of every unit and institution (a count of others' notices is
	// not for a unit's or an institution's caller).
	Closed   *int64          `json:"closed_total,omitempty"`
	Position events.Position `json:"position"`
}

// Filter narrows the list: On (zero: every open notice) keeps the
// entitlements whose window contains the day; Unit keeps one unit (as
// recorded or rolled up); Institution one training institution.
type Filter struct {
	On          refdata.Date
	Unit        string
	Institution string
}

// List returns the entitlements on notice, ordered by window start then id.
func (m *Model) List(f Filter) List {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := List{On: rm.DateString(f.On), Entries: []Entry{}, Position: m.pos}
	if f.Unit == "" && f.Institution == "" {
		closed := m.closed
		out.Closed = &closed
	}
	ids := make([]events.ID, 0, 64)
	for id, b := range m.ents {
		if !b.open {
			continue
		}
		unit := m.strs.Str(b.unit)
		if f.Unit != "" && unit != f.Unit && m.units.Current(unit) != f.Unit {
			continue
		}
		if f.Institution != "" && m.strs.Str(b.train) != f.Institution && m.strs.Str(b.payee) != f.Institution {
			continue
		}
		out.Open++
		if f.On != 0 && (f.On < b.start || f.On > b.end) {
			continue
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := m.ents[ids[i]], m.ents[ids[j]]
		if a.start != b.start {
			return a.start < b.start
		}
		return string(ids[i][:]) < string(ids[j][:])
	})
	for _, id := range ids {
		b := m.ents[id]
		p := m.people.At(b.person)
		unit := m.strs.Str(b.unit)
		train := m.strs.Str(b.train)
		out.Entries = append(out.Entries, Entry{EntitlementID: id.String(), MaskedName: p.name, MaskedID: p.id(), Qualification: b.q.JSON(),
			AmountFen: b.amount, TrainingInstitutionID: train, TrainingInstitutionName: m.names[train],
			PayeeKind: strings.ToLower(strings.TrimPrefix(pb.PayeeKind(b.payeeKind).String(), "PAYEE_KIND_")),
			Year:      int(b.year), UnitCode: unit, CurrentUnitCode: m.units.Current(unit), UnitName: m.units.Name(m.units.Current(unit)),
			StartsOn: rm.DateString(b.start), EndsOn: rm.DateString(b.end), Held: b.held > 0, Objections: int(b.objections)})
	}
	return out
}

// Position returns the position of the last event applied.
func (m *Model) Position() events.Position {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.pos
}
