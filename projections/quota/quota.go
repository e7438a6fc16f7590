// Package quota is the annual quota dashboard read model: for each year,
// the target (AnnualTargetSet; 3,000 when none was set) against the
// numbers enrolled, trained, certified and subsidised, by month (with the
// cumulative count against the pro-rata target), by occupation, level and
// management unit, with first-attempt pass rates.
//
// # Counting
//
// The unit of training, assessment and subsidy is the qualification
// (occupation, level), so the counts are of qualifications, not of people:
// a person trained in two qualifications counts twice.
//
//	enrolled    Enrolled, in the month of enrolled_on
//	trained     TrainingCompleted, in the month of completed_on (the default
//	            target measure, DOMAIN.md §6); once a year for a person and
//	            a qualification, however many enrolments for it the person
//	            completed (a re-enrolment after a failed attempt)
//	certified   certifications: CertificateIssued, in the month of
//	            issued_on, unless another certificate of its assessment is
//	            in force (a corrected certificate, which the rules let an
//	            evaluation institution issue while the first stands: one
//	            certification still); revoked counts the certifications
//	            later ended, by the revocation that leaves none of the
//	            assessment's certificates in force (revoking the first while
//	            the corrected one stands changes nothing), in the month and
//	            unit the certification was counted in
//	subsidised  SubsidyEntitled, in the month of assessed_on (the budget
//	            year is the assessment year); cancelled counts those later
//	            held for good by a revocation or fraud finding
//	attempts    AssessmentRecorded, in the month of assessed_on;
//	            first_attempts those with attempt 1, first_attempt_passes
//	            those with both scores at least 60
//
// Each is attributed to a unit: the enrolment's unit_code for enrolments,
// training, assessments and certificates (the enrolment completed; the one
// an assessment is of, as rule 15 reads it: at the institution the
// assessment names, else a completed one first, then the earliest; for a
// certificate, that of the last passed assessment; an enrolment without a
// unit_code, which is optional, is in the unit of the person's
// registration, TraineeRegistered, as it was when the person enrolled),
// the entitlement's unit_code for
// subsidies (the rules take it from the registration too). The
// current view rolls abolished units up into their successors; the
// recorded view shows units as recorded.
//
// Subsidy money against budget comes from the fund ledger (package fund);
// the API puts both in one answer.
package quota

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
const Name = "quota"

const version = 7 // 2: the person-qualification table is written slot by slot; 3: entry by entry, in the order added; 4: then its hash index as it is; 5: the registered unit of each person is kept, the unit of an enrolment without one; 6: each of a person's enrolments for a qualification keeps its unit (a completion, an assessment and a certificate count in the unit of the enrolment they are of), and a person's training for a qualification counts as trained once a year; 7: a person's certificates for a qualification are kept by assessment (rm.Certs, and the book of later ones): a corrected certificate issued while another of its assessment is in force is not certified again, a revocation counts only when it leaves none in force, in the cell of the certification it ends

// DefaultTarget is the yearly target when no AnnualTargetSet names one.
const DefaultTarget = 3000

// FirstYear and LastYear bound the plan (2025–2030).
const (
	FirstYear = 2025
	LastYear  = 2030
)

// Measures of progress toward the target.
const (
	MeasureTrained   = "trained"
	MeasureCertified = "certified"
)

type cellKey struct {
	month uint8
	q     rm.Q
	unit  uint32
}

type counts struct {
	enrolled, trained, certified, revoked    int32
	subsidised, cancelled                    int32
	attempts, passes, firstAttempts, firstOK int32
	subsidisedFen                            int64
}

// pqInfo is what the model keeps of a person and a qualification: their
// first enrolment (almost always the only one), the person's later ones,
// and where what was counted was counted.
type pqInfo struct {
	first enrolment
	// later are the person's later enrolments for the qualification: a
	// re-enrolment after a failed attempt, or a concurrent one (rule 16
	// flags it), each of its own unit maybe. Nil for nearly everyone.
	later *[]enrolment
	// trainedYears are the years a completion of the person's training
	// for the qualification was counted trained (bit y-trainedBase): one
	// a year, however many enrolments the person completed (a
	// re-enrolment trains the same qualification again), in whatever
	// order their completions are reported.
	trainedYears uint64
	// passUnit is the unit of the enrolment of the last passed
	// assessment, which a certificate is issued on.
	passUnit uint32
	// certs are the person's certificates for the qualification, by
	// assessment, each with the cell its certification was counted in,
	// where its revocation is counted.
	certs rm.Certs[certCell]
}

// certCell is the cell a certification was counted in: the month of its
// first certificate's issued_on and the unit.
type certCell struct {
	date refdata.Date
	unit uint32
}

// trainedBase is the year of bit 0 of pqInfo.trainedYears, which covers
// 64 years from it; a completion dated outside them (no date of the
// 2025–2030 programme is) counts each time.
const trainedBase = 2000

// enrolment is one of a person's enrolments for a qualification.
type enrolment struct {
	id              string // the enrolment id (kept for later enrolments only)
	unit, inst      uint32 // string ids
	on, completedOn refdata.Date
}

// enrolmentOf returns the enrolment with id, the first if no later one
// has it.
func (p *pqInfo) enrolmentOf(id string) *enrolment {
	if p.later != nil {
		for i := range *p.later {
			if e := &(*p.later)[i]; e.id == id {
				return e
			}
		}
	}
	return &p.first
}

// trainedFor returns the enrolment an assessment at date on counts for,
// as rule 15 finds it (rules.World.enrolmentFor, and the scorecard's
// trainedBy): among the enrolments on or before on, at the institution
// the assessment names if it names one (inst, 0: none), a completed one
// first, then the earliest; the first enrolment if none is.
func (p *pqInfo) trainedFor(inst uint32, on refdata.Date) *enrolment {
	if p.later == nil {
		return &p.first
	}
	done := func(e *enrolment) bool { return e.completedOn != 0 && e.completedOn <= on }
	var best *enrolment
	consider := func(e *enrolment) {
		if e.on > on || inst != 0 && e.inst != inst {
			return
		}
		if best == nil || done(e) && !done(best) {
			best = e
		}
	}
	consider(&p.first)
	for i := range *p.later {
		consider(&(*p.later)[i])
	}
	if best == nil {
		return &p.first
	}
	return best
}

type entInfo struct {
	year      int16
	cell      cellKey
	cancelled bool
}

// Model is the quota dashboard projection.
type Model struct {
	mu      sync.RWMutex
	pos     events.Position
	strs    *rm.Strings
	units   *rm.Units
	targets map[int32]int32
	years   map[int32]map[cellKey]*counts
	flat    map[uint64]*counts // the cells of years by cellID, for apply
	pq      rm.PQMap[pqInfo]
	reg     rm.PQMap[uint32] // unit of each person's registration, under qualification 0
	ents    map[events.ID]entInfo
	certs   rm.CertBook[certCell] // the assessments of pqInfo.certs, and later certificates
	slab    []counts              `deepdiff:"-"` // where new cells are cut from (newCounts); years and flat reach them
}

var _ projections.Projection = (*Model)(nil)

// New returns an empty model.
func New() *Model {
	return &Model{strs: rm.NewStrings(), units: rm.NewUnits(), targets: map[int32]int32{},
		years: map[int32]map[cellKey]*counts{}, flat: map[uint64]*counts{}, ents: map[events.ID]entInfo{}}
}

// Factory makes fresh models for a Runner.
func Factory() projections.Projection { return New() }

// Name implements projections.Projection.
func (m *Model) Name() string { return Name }

// Version implements projections.Projection.
func (m *Model) Version() uint32 { return version }

// Types implements projections.Projection.
func (m *Model) Types() []string {
	return []string{"subsidy.v1.UnitDefined", "subsidy.v1.AnnualTargetSet", "subsidy.v1.TraineeRegistered", "subsidy.v1.Enrolled",
		"subsidy.v1.TrainingCompleted", "subsidy.v1.AssessmentRecorded", "subsidy.v1.CertificateIssued",
		"subsidy.v1.CertificateRevoked", "subsidy.v1.SubsidyEntitled", "subsidy.v1.EntitlementHeld"}
}

// cellID packs a year and a cell key into one integer, the key of
// Model.flat: one probe of a map with an integer key instead of two, the
// second hashing a struct field by field.
func cellID(y int32, k cellKey) uint64 {
	return uint64(uint32(y))<<48 | uint64(k.month)<<40 | uint64(k.q)<<32 | uint64(k.unit)
}

// cell returns the counts of the cell of date d, qualification q and
// unit, adding it if new. Undated events count nowhere.
func (m *Model) cell(d refdata.Date, q rm.Q, unit uint32) *counts {
	if d == 0 {
		return &counts{}
	}
	y, k := int32(d.Year()), cellKey{uint8(d.Month()), q, unit}
	if c := m.flat[cellID(y, k)]; c != nil {
		return c
	}
	return m.addCell(y, k)
}

// addCell adds an empty cell.
func (m *Model) addCell(y int32, k cellKey) *counts {
	cells := m.years[y]
	if cells == nil {
		cells = map[cellKey]*counts{}
		m.years[y] = cells
	}
	c := m.newCounts()
	cells[k] = c
	m.flat[cellID(y, k)] = c
	return c
}

// newCounts returns a zeroed cell cut from the model's current chunk of
// cells. A dashboard reads every cell of a year; cut from chunks, they lie
// together in memory instead of scattered over a heap of gigabytes (the
// cells are added over months, between everything else the ledger
// allocates), so the walk is not a cache miss per cell.
func (m *Model) newCounts() *counts {
	if len(m.slab) == cap(m.slab) {
		m.slab = make([]counts, 0, 1024)
	}
	m.slab = m.slab[:len(m.slab)+1]
	return &m.slab[len(m.slab)-1]
}

// pqOf returns what the model keeps of the event's trainee (person key
// pk, its person_key field) and q, nil if the person never enrolled for q.
func (m *Model) pqOf(ev *projections.Event, pk string, q rm.Q) *pqInfo {
	k, err := ev.PersonKeyOf(pk)
	if err != nil {
		return nil
	}
	return m.pq.Get(k, q)
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
	switch p := ev.Payload.(type) {
	case *pb.UnitDefined:
		return m.units.Apply(p)
	case *pb.AnnualTargetSet:
		m.targets[p.Year] = p.Target
	case *pb.TraineeRegistered:
		k, err := ev.PersonKeyOf(p.PersonKey)
		if err != nil {
			return rm.Err(ev.Type, "%v", err)
		}
		*m.reg.Put(k, 0) = m.strs.ID(p.UnitCode)
	case *pb.Enrolled:
		k, err := ev.PersonKeyOf(p.PersonKey)
		if err != nil {
			return rm.Err(ev.Type, "%v", err)
		}
		q, unit := rm.QOf(p.Qualification), m.strs.ID(p.UnitCode)
		if unit == 0 { // unit_code is optional: the unit of the registration
			if u := m.reg.Get(k, 0); u != nil {
				unit = *u
			}
		}
		on := rm.Date(p.EnrolledOn)
		e := enrolment{unit: unit, inst: m.strs.ID(p.TrainingInstitutionId), on: on}
		if info := m.pq.Get(k, q); info == nil || info.first == (enrolment{}) {
			m.pq.Put(k, q).first = e // (a certificate recorded first made the entry)
		} else {
			if info.later == nil {
				info.later = new([]enrolment)
			}
			e.id = strings.Clone(p.EnrolmentId) // the event's strings are the page's
			*info.later = append(*info.later, e)
		}
		m.cell(on, q, unit).enrolled++
	case *pb.TrainingCompleted:
		q := rm.QOf(p.Qualification)
		d := rm.Date(p.CompletedOn)
		var unit uint32
		if info := m.pqOf(ev, p.PersonKey, q); info != nil {
			e := info.enrolmentOf(p.EnrolmentId)
			e.completedOn, unit = d, e.unit
			if y := d.Year() - trainedBase; y >= 0 && y < 64 {
				if info.trainedYears&(1<<y) != 0 {
					return nil // trained already that year: counted once
				}
				info.trainedYears |= 1 << y
			}
		}
		m.cell(d, q, unit).trained++
	case *pb.AssessmentRecorded:
		q := rm.QOf(p.Qualification)
		on := rm.Date(p.AssessedOn)
		pass := p.TheoryScore >= 60 && p.PracticalScore >= 60
		var unit uint32
		if info := m.pqOf(ev, p.PersonKey, q); info != nil {
			var inst uint32
			if p.TrainingInstitutionId != "" {
				inst = m.strs.ID(p.TrainingInstitutionId)
			}
			unit = info.trainedFor(inst, on).unit
			if pass {
				info.passUnit = unit
			}
		}
		c := m.cell(on, q, unit)
		c.attempts++
		if pass {
			c.passes++
		}
		if p.Attempt == 1 {
			c.firstAttempts++
			if pass {
				c.firstOK++
			}
		}
	case *pb.CertificateIssued:
		k, err := ev.PersonKeyOf(p.PersonKey)
		if err != nil {
			return rm.Err(ev.Type, "%v", err)
		}
		q := rm.QOf(p.Qualification)
		info := m.pq.Put(k, q)
		at := certCell{rm.Date(p.IssuedOn), info.passUnit}
		if at.unit == 0 {
			at.unit = info.first.unit
		}
		// A certification, not a certificate: one issued while another of
		// its assessment is in force (a corrected one) is not counted.
		if m.certs.Issue(k, q, &info.certs, p.CertificateId, p.AssessmentId, at) {
			m.cell(at.date, q, at.unit).certified++
		}
	case *pb.CertificateRevoked:
		k, err := ev.PersonKeyOf(p.PersonKey)
		if err != nil {
			return rm.Err(ev.Type, "%v", err)
		}
		q := rm.QOf(p.Qualification)
		if info := m.pq.Get(k, q); info != nil {
			// Counted when it ends the certification (leaves none of the
			// assessment's certificates in force), where that was counted.
			if at, ended := m.certs.Revoke(k, q, &info.certs, p.CertificateId); ended && at.date != 0 {
				m.cell(at.date, q, at.unit).revoked++
			}
		}
	case *pb.SubsidyEntitled:
		id, err := ev.EntitlementIDOf(p.EntitlementId)
		if err != nil {
			return rm.Err(ev.Type, "entitlement id: %v", err)
		}
		if _, dup := m.ents[id]; dup {
			return rm.Err(ev.Type, "entitlement %s recorded twice", p.EntitlementId)
		}
		d := rm.Date(p.AssessedOn)
		q := rm.QOf(p.Qualification)
		unit := m.strs.ID(p.UnitCode)
		c := m.cell(d, q, unit)
		c.subsidised++
		c.subsidisedFen += p.AmountFen
		m.ents[id] = entInfo{year: int16(d.Year()), cell: cellKey{uint8(d.Month()), q, unit}}
	case *pb.EntitlementHeld:
		if p.Reason != pb.ReasonCode_REASON_CODE_CERTIFICATE_REVOKED && p.Reason != pb.ReasonCode_REASON_CODE_FRAUD_FINDING {
			return nil
		}
		id, err := ev.EntitlementIDOf(p.EntitlementId)
		if err != nil {
			return rm.Err(ev.Type, "entitlement id: %v", err)
		}
		e, ok := m.ents[id]
		if !ok || e.cancelled || e.year == 0 {
			return nil
		}
		e.cancelled = true
		m.ents[id] = e
		if cells := m.years[int32(e.year)]; cells != nil && cells[e.cell] != nil {
			cells[e.cell].cancelled++
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
	sw.Uvarint(uint64(len(m.targets)))
	for _, y := range rm.SortedKeys(m.targets) {
		sw.Int(int(y))
		sw.Int(int(m.targets[y]))
	}
	sw.Uvarint(uint64(len(m.years)))
	for _, y := range rm.SortedKeys(m.years) {
		cells := m.years[y]
		keys := make([]cellKey, 0, len(cells))
		for k := range cells {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return less(keys[i], keys[j]) })
		sw.Int(int(y))
		sw.Uvarint(uint64(len(keys)))
		for _, k := range keys {
			c := cells[k]
			sw.Uvarint(uint64(k.month))
			sw.Uvarint(uint64(k.q))
			sw.Uvarint(uint64(k.unit))
			for _, v := range []int32{c.enrolled, c.trained, c.certified, c.revoked, c.subsidised, c.cancelled, c.attempts, c.passes, c.firstAttempts, c.firstOK} {
				sw.Int(int(v))
			}
			sw.Varint(c.subsidisedFen)
		}
	}
	writeEnrolment := func(w *snap.Writer, e *enrolment) {
		w.Uvarint(uint64(e.unit))
		w.Uvarint(uint64(e.inst))
		w.Int(int(e.on))
		w.Int(int(e.completedOn))
	}
	writeCell := func(w *snap.Writer, c *certCell) {
		w.Int(int(c.date))
		w.Uvarint(uint64(c.unit))
	}
	m.certs.Write(sw, writeCell)
	m.pq.Write(sw, func(w *snap.Writer, v *pqInfo) {
		writeEnrolment(w, &v.first)
		var later []enrolment
		if v.later != nil {
			later = *v.later
		}
		w.Uvarint(uint64(len(later)))
		for i := range later {
			w.String(later[i].id)
			writeEnrolment(w, &later[i])
		}
		w.Uvarint(v.trainedYears)
		w.Uvarint(uint64(v.passUnit))
		v.certs.Write(w, writeCell)
	})
	m.reg.Write(sw, func(w *snap.Writer, v *uint32) { w.Uvarint(uint64(*v)) })
	ids := make([]events.ID, 0, len(m.ents))
	for id := range m.ents {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	sw.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		e := m.ents[id]
		sw.Fixed(id[:])
		sw.Int(int(e.year))
		sw.Uvarint(uint64(e.cell.month))
		sw.Uvarint(uint64(e.cell.q))
		sw.Uvarint(uint64(e.cell.unit))
		sw.Bool(e.cancelled)
	}
	return sw.Flush()
}

func less(a, b cellKey) bool {
	if a.month != b.month {
		return a.month < b.month
	}
	if a.q != b.q {
		return a.q < b.q
	}
	return a.unit < b.unit
}

// Restore implements projections.Projection.
func (m *Model) Restore(r io.Reader) error {
	sr := snap.NewReader(r)
	sr.Magic(Name, version)
	n := New()
	n.pos = events.Position(sr.Uvarint())
	n.strs.Read(sr)
	n.units.Read(sr)
	for range sr.Len(1 << 16) {
		y := int32(sr.Int())
		n.targets[y] = int32(sr.Int())
	}
	for range sr.Len(1 << 16) {
		y := int32(sr.Int())
		cells := map[cellKey]*counts{}
		n.years[y] = cells
		for range sr.Len(1 << 24) {
			k := cellKey{uint8(sr.Uvarint()), rm.Q(sr.Uvarint()), uint32(sr.Uvarint())}
			c := n.newCounts()
			for _, v := range []*int32{&c.enrolled, &c.trained, &c.certified, &c.revoked, &c.subsidised, &c.cancelled, &c.attempts, &c.passes, &c.firstAttempts, &c.firstOK} {
				*v = int32(sr.Int())
			}
			c.subsidisedFen = sr.Varint()
			cells[k] = c
			n.flat[cellID(y, k)] = c
		}
	}
	readEnrolment := func(r *snap.Reader) enrolment {
		return enrolment{unit: uint32(r.Uvarint()), inst: uint32(r.Uvarint()), on: refdata.Date(r.Int()), completedOn: refdata.Date(r.Int())}
	}
	readCell := func(r *snap.Reader, c *certCell) { c.date, c.unit = refdata.Date(r.Int()), uint32(r.Uvarint()) }
	n.certs.Read(sr, readCell)
	n.pq.Read(sr, func(r *snap.Reader, v *pqInfo) {
		*v = pqInfo{first: readEnrolment(r)}
		if nl := r.Len(1 << 16); nl > 0 {
			later := make([]enrolment, nl)
			for i := range later {
				id := r.String()
				later[i] = readEnrolment(r)
				later[i].id = id
			}
			v.later = &later
		}
		v.trainedYears, v.passUnit = r.Uvarint(), uint32(r.Uvarint())
		v.certs.Read(r, &n.certs, readCell)
	})
	n.reg.Read(sr, func(r *snap.Reader, v *uint32) { *v = uint32(r.Uvarint()) })
	ne := sr.Len(1 << 30)
	n.ents = make(map[events.ID]entInfo, ne) // sized once: no growing while restoring
	for range ne {
		var id events.ID
		sr.Fixed(id[:])
		n.ents[id] = entInfo{year: int16(sr.Int()), cell: cellKey{uint8(sr.Uvarint()), rm.Q(sr.Uvarint()), uint32(sr.Uvarint())}, cancelled: sr.Bool()}
		if sr.Err() != nil {
			return sr.Err()
		}
	}
	if err := sr.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pos, m.strs, m.units, m.targets, m.years, m.flat, m.pq, m.reg, m.ents, m.slab = n.pos, n.strs, n.units, n.targets, n.years, n.flat, n.pq, n.reg, n.ents, n.slab
	m.certs = n.certs
	return nil
}
