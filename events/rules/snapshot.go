package rules

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"unsafe"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/snap"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// SnapshotVersion identifies the World's snapshot encoding and the meaning
// of its state. Bump it whenever either changes: a snapshot of another
// version is refused (ErrSnapshotMismatch) and the World is folded from the
// log instead.
const SnapshotVersion = 14

// ErrSnapshotMismatch reports a snapshot written by another SnapshotVersion
// or under a rule set with another Fingerprint: it is not wrong, but this
// World cannot use it. Fold the log instead.
var ErrSnapshotMismatch = errors.New("rules: snapshot of another version or rule set")

// maxCount bounds every count in a snapshot, so that a damaged one cannot
// make Restore allocate without end.
const maxCount = 1 << 31

// Snapshot writes the whole World to out, in a form RestoreWorld reads back
// under the same rule set; errors stay in out (check out.Flush). It only
// reads the World (Decide may run meanwhile; Apply may not). The bytes are
// not deterministic: maps are written in their iteration order. A caller
// may write its own fields to out before and after.
//
// Strings that many records share (names, person keys, entitlement ids) are
// written once and referred to by index, and RestoreWorld shares them again;
// records that the World reaches through more than one map or list
// (enrolments, assessments, fee schedules) are written once and linked by
// index, so that the restored World shares them the same way.
func (w *World) Snapshot(out *snap.Writer) {
	s := &snapWriter{Writer: out}
	s.Magic("rules.World", SnapshotVersion)
	s.String(w.rs.Identity())
	s.String(w.adopted)
	vs := slices.Sorted(maps.Keys(w.versions))
	s.Uvarint(uint64(len(vs)))
	for _, v := range vs {
		s.String(v)
		s.String(w.versions[v])
	}

	// Strings referred to by index.
	s.names = s.table(len(w.names), func(yield func(string)) {
		for n := range w.names {
			yield(n)
		}
	})
	// Records are written in trainee order (a trainee's enrolments,
	// assessments and entitlements after the previous trainee's), so that
	// the references between them are near one another, writing and
	// reading. Entitlements are written in the order of their table, so
	// that an index into it also names the record.
	trainees := make([]*trainee, 0, len(w.trainees))
	for _, t := range w.trainees {
		trainees = append(trainees, t)
	}
	s.persons = s.table(len(trainees), func(yield func(string)) {
		for _, t := range trainees {
			yield(t.key)
		}
	})
	ents := newLinked[entitlement](len(w.entitlements))
	for _, t := range trainees {
		for _, x := range t.entitlements {
			if e := w.entitlements[x.v]; e != nil {
				ents.add(e)
			}
		}
	}
	for _, e := range w.entitlements {
		ents.add(e) // those no trainee names
	}
	s.ents = s.table(len(ents.list), func(yield func(string)) {
		for _, e := range ents.list {
			yield(e.id)
		}
	})

	// The log: streams, applied ids and natural keys.
	s.Uvarint(uint64(len(w.streamList)))
	for _, st := range w.streamList {
		s.String(st.name)
		s.Uvarint(st.rev)
	}
	// In key order, so that RestoreWorld reads them into a hashIndex's
	// frozen part as they come.
	// Fixed-size records, little-endian, in blocks: read back at about
	// the speed of a copy.
	le := binary.LittleEndian
	s.Uvarint(uint64(w.applied.len()))
	b := make([]byte, 0, blockSize)
	for id, at := range w.applied.sorted() {
		b = le.AppendUint32(le.AppendUint32(append(b, id[:]...), at.stream), at.rev)
		b = s.block(b)
	}
	s.Fixed(b)
	s.Uvarint(uint64(w.natural.len()))
	b = b[:0]
	for h, rec := range w.natural.sorted() {
		b = append(append(append(b, h[:]...), rec.digest[:]...), rec.eventID[:]...)
		b = s.block(b)
	}
	s.Fixed(b)

	// Reference data.
	units := w.units.Units()
	s.Uvarint(uint64(len(units)))
	for _, u := range units {
		s.name(u.Code)
		s.String(u.Name)
		s.Varint(int64(u.Kind))
		s.date(u.ValidFrom)
		s.date(u.ValidTo)
		s.name(u.Successor)
	}
	s.Uvarint(uint64(len(w.unitEvents)))
	for code, id := range w.unitEvents {
		s.name(code)
		s.id(id)
	}
	s.Uvarint(uint64(len(w.institutions)))
	for _, in := range w.institutions {
		s.name(in.id)
		s.Varint(int64(in.kind))
		s.name(in.unit)
		s.String(in.account)
		s.id(in.eventID)
		s.count(len(in.approvals), in.approvals == nil)
		for _, a := range in.approvals {
			s.Varint(int64(a.occupation))
			s.date(a.from)
			s.date(a.to)
			s.id(a.eventID)
		}
		s.Bool(in.suspended)
		s.Bool(in.blacklisted)
		s.id(in.suspendedBy)
	}
	fees := newLinked[fee](len(w.fees))
	for _, f := range w.fees {
		fees.add(f)
	}
	for _, fs := range w.feesBy {
		for _, f := range fs {
			fees.add(f)
		}
	}
	s.Uvarint(uint64(len(fees.list)))
	for _, f := range fees.list {
		s.String(f.id)
		s.name(f.inst)
		s.qual(f.q)
		s.Varint(f.fen)
		s.date(f.from)
		s.date(f.to)
		s.id(f.eventID)
		s.Bool(w.fees[f.id] == f)
	}
	s.Uvarint(uint64(len(w.feesBy)))
	for k, fs := range w.feesBy {
		s.name(k.inst)
		s.qual(k.q)
		s.count(len(fs), fs == nil)
		for _, f := range fs {
			s.Uvarint(uint64(fees.index[f]))
		}
	}
	s.Uvarint(uint64(len(w.targets)))
	for y, n := range w.targets {
		s.Varint(int64(y))
		s.Varint(int64(n))
	}

	// Trainees, then the records they link to, then the links.
	s.Uvarint(uint64(len(trainees)))
	for _, t := range trainees {
		s.person(t.key)
		s.name(t.unit)
		s.Varint(int64(t.education))
		s.Bool(t.employee)
		s.id(t.eventID)
		s.count(len(t.evidence), t.evidence == nil)
		for _, e := range t.evidence {
			s.String(e.id)
			s.name(e.source)
			s.Varint(int64(e.category))
			s.Bool(e.confirmed)
			s.Varint(int64(e.gradYear))
			s.date(e.insuredFrom)
			s.date(e.insuredTo)
			s.id(e.eventID)
			s.Varint(e.snapshotAt)
		}
	}
	enrolments := newLinked[enrolment](len(w.enrolments))
	assessments := newLinked[assessment](len(w.assessments))
	for _, t := range trainees {
		for _, e := range t.enrolments {
			enrolments.add(e)
		}
		for _, as := range t.attempts {
			for _, a := range as.v {
				assessments.add(a)
			}
		}
	}
	for _, e := range w.enrolments {
		enrolments.addKeyed(e) // and those no trainee lists
	}
	for _, a := range w.assessments {
		assessments.addKeyed(a)
	}
	s.Uvarint(uint64(len(enrolments.list)))
	for i, e := range enrolments.list {
		s.String(e.id)
		s.person(e.person)
		s.name(e.inst)
		s.qual(e.q)
		s.date(e.enrolledOn)
		s.date(e.completedOn)
		s.id(e.eventID)
		s.id(e.completionEventID)
		s.Bool(enrolments.keyed[i])
	}
	s.Uvarint(uint64(len(assessments.list)))
	for i, a := range assessments.list {
		s.String(a.id)
		s.person(a.person)
		s.name(a.evalInst)
		s.name(a.trainInst)
		s.qual(a.q)
		s.Uvarint(uint64(a.attempt))
		s.Bool(a.passed)
		s.Varint(int64(a.theory))
		s.Varint(int64(a.practical))
		s.date(a.assessedOn)
		s.String(a.enrolment)
		s.Bool(a.named)
		s.Bool(a.completed)
		s.id(a.eventID)
		s.String(a.cert)
		s.Bool(assessments.keyed[i])
	}
	for _, e := range ents.list {
		s.writeEntitlement(e)
	}
	certs := newLinked[certificate](len(w.certificates))
	for _, e := range ents.list {
		if c := w.certificates[e.certificate]; c != nil {
			certs.add(c)
		}
	}
	for _, c := range w.certificates {
		certs.add(c)
	}
	s.Uvarint(uint64(len(certs.list)))
	for _, c := range certs.list {
		s.String(c.id)
		s.person(c.person)
		s.name(c.evalInst)
		s.qual(c.q)
		s.date(c.issuedOn)
		s.id(c.eventID)
		s.Bool(c.revoked)
		s.ent(c.entitlement)
		s.Varint(int64(c.denied))
		s.Varint(int64(c.revised))
	}
	for _, t := range trainees {
		s.count(len(t.enrolments), t.enrolments == nil)
		for _, e := range t.enrolments {
			s.Uvarint(uint64(enrolments.index[e]))
		}
		s.count(len(t.attempts), t.attempts == nil)
		for _, as := range t.attempts {
			s.qual(as.q)
			s.count(len(as.v), as.v == nil)
			for _, a := range as.v {
				s.Uvarint(uint64(assessments.index[a]))
			}
		}
		s.count(len(t.entitlements), t.entitlements == nil)
		for _, e := range t.entitlements {
			s.qual(e.q)
			s.ent(e.v)
		}
		s.count(len(t.advances), t.advances == nil)
		for _, a := range t.advances {
			s.qual(a.q)
			s.Bool(a.v != nil)
			if a.v != nil {
				s.String(a.v.id)
				s.name(a.v.inst)
				s.Varint(a.v.fen)
				s.id(a.v.eventID)
			}
		}
	}

	// Money and its follow-ups.
	s.Uvarint(uint64(len(w.objections)))
	for _, o := range w.objections {
		s.String(o.id)
		s.ent(o.entitlement)
		s.date(o.raisedOn)
		s.date(o.resolvedOn)
		s.Bool(o.resolved)
		s.Bool(o.upheld)
		s.id(o.eventID)
	}
	orders := newLinked[order](len(w.orders))
	for _, e := range ents.list {
		for _, id := range e.orders {
			if o := w.orders[id]; o != nil {
				orders.add(o)
			}
		}
	}
	for _, o := range w.orders {
		orders.add(o)
	}
	s.Uvarint(uint64(len(orders.list)))
	for _, o := range orders.list {
		s.String(o.id)
		s.ent(o.entitlement)
		s.Uvarint(uint64(o.attempt))
		s.Varint(o.amount)
		s.Varint(o.offset)
		s.Varint(o.net)
		s.payee(o.payee)
		s.count(len(o.offsets), o.offsets == nil)
		for _, off := range o.offsets {
			s.String(off.clawback)
			s.Varint(off.fen)
		}
		s.Varint(int64(o.state))
		s.id(o.eventID)
		s.date(o.requestedOn)
		s.date(o.resultOn)
		s.id(o.resultID)
	}
	s.Uvarint(uint64(len(w.clawbacks)))
	for _, c := range w.clawbacks {
		s.String(c.id)
		s.ent(c.entitlement)
		s.payee(c.payee)
		s.Varint(c.amount)
		s.Varint(c.recovered)
		s.Varint(c.writtenOff)
		s.Varint(c.reserved)
		s.Varint(int64(c.cause))
		s.date(c.raisedOn)
		s.id(c.eventID)
		s.Bool(c.pending != nil)
		if c.pending != nil {
			s.name(c.pending.official)
			s.Varint(c.pending.amount)
			s.Fixed(c.pending.digest[:])
		}
		s.id(c.pendingID)
	}
	s.strings(w.clawbackSeq)
	s.Uvarint(uint64(len(w.funds)))
	for _, f := range w.funds {
		s.Varint(int64(f.key.year))
		s.name(f.key.unit)
		s.Varint(f.allocated)
		s.Varint(f.committed)
		s.count(len(f.queue), f.queue == nil)
		for _, e := range f.queue {
			s.ent(e)
		}
		s.count(len(f.allocations), f.allocations == nil)
		for _, id := range f.allocations {
			s.id(id)
		}
	}

	// Quality, anomalies.
	s.Uvarint(uint64(len(w.quality)))
	for k, q := range w.quality {
		s.name(k.inst)
		s.qual(k.q)
		s.count(len(q.results), q.results == nil)
		for _, r := range q.results {
			s.Bool(r)
		}
		s.count(len(q.ids), q.ids == nil)
		for _, id := range q.ids {
			s.id(id)
		}
		s.Int(q.passes)
		s.String(q.flag)
	}
	s.Uvarint(uint64(len(w.certMonths)))
	for inst, months := range w.certMonths {
		s.name(inst)
		s.Uvarint(uint64(len(months)))
		for m, n := range months {
			s.Int(m)
			s.Int(n)
		}
	}
	s.Uvarint(uint64(len(w.accounts)))
	for acct, persons := range w.accounts {
		s.String(acct)
		s.count(len(persons), persons == nil)
		for _, p := range persons {
			s.person(p)
		}
	}
	s.Uvarint(uint64(len(w.flags)))
	for k, f := range w.flags {
		s.String(k)
		s.String(f.ID)
		s.Varint(int64(f.Reason))
		s.String(f.Subject)
		s.String(f.Detail)
		s.Bool(f.Cleared)
	}
	s.strings(w.flagOrder)
	s.Uvarint(uint64(len(w.reissued)))
	for a, c := range w.reissued {
		s.String(a)
		s.String(c)
	}
	s.Magic("end", SnapshotVersion)
}

func (s *snapWriter) writeEntitlement(e *entitlement) {
	s.ent(e.id)
	s.id(e.eventID)
	s.person(e.person)
	s.qual(e.q)
	s.String(e.certificate)
	s.Varint(e.amount)
	s.payee(e.payee)
	s.Varint(int64(e.year))
	s.name(e.unit)
	s.name(e.trainInst)
	s.date(e.assessedOn)
	s.date(e.issuedOn)
	s.name(e.confirmedBy)
	s.name(e.approvedBy)
	s.date(e.confirmedOn)
	s.date(e.approvedOn)
	s.id(e.confirmEventID)
	s.id(e.approveEventID)
	s.date(e.noticeStart)
	s.date(e.noticeEnd)
	s.date(e.noticeClosed)
	s.id(e.noticeEventID)
	s.id(e.closeEventID)
	s.count(len(e.holds), e.holds == nil)
	for _, h := range e.holds {
		s.name(h.id)
		s.Varint(int64(h.reason))
		s.date(h.placedOn)
		s.id(h.eventID)
	}
	s.strings(e.objections)
	s.strings(e.orders)
	s.String(e.inFlight)
	s.date(e.requestedOn)
	s.Varint(e.paid)
	s.String(e.cancelled)
	s.String(e.clawback)
	s.Varint(e.counted)
	s.String(e.released.hold)
	s.date(e.released.on)
}

// The fixed-size records of the hash indexes: an applied event id, its
// stream and revision; a natural key's hash, digest and event id. They are
// written in blocks of about blockSize bytes.
const (
	appliedSize = 16 + 4 + 4
	naturalSize = 16 + 16 + 16
	blockSize   = 64 << 10
)

// block writes b out once it is nearly a block, and returns what is left
// to fill.
func (s *snapWriter) block(b []byte) []byte {
	if len(b) > blockSize-naturalSize {
		s.Fixed(b)
		return b[:0]
	}
	return b
}

// records reads n records of size bytes each, in blocks, and hands each to
// f with its index.
func (s *snapReader) records(n, size int, f func(i int, b []byte)) {
	buf := make([]byte, blockSize/size*size)
	for i := 0; i < n && s.Err() == nil; {
		m := min(n-i, len(buf)/size)
		s.Block(buf[:m*size])
		if s.Err() != nil {
			return
		}
		for j := range m {
			f(i+j, buf[j*size:(j+1)*size])
		}
		i += m
	}
}

// directLayout holds when the applied-id and natural-key entries lie in
// memory exactly as in a snapshot (little-endian, no padding): a restore
// then reads them straight into place, tens of millions of bytes in one
// copy, instead of record by record.
var directLayout = binary.NativeEndian.Uint16([]byte{1, 0}) == 1 &&
	unsafe.Sizeof(hashEntry[events.ID, appliedAt]{}) == appliedSize &&
	unsafe.Offsetof(hashEntry[events.ID, appliedAt]{}.val) == 16 && unsafe.Offsetof(appliedAt{}.rev) == 4 &&
	unsafe.Sizeof(hashEntry[naturalHash, naturalRec]{}) == naturalSize &&
	unsafe.Offsetof(hashEntry[naturalHash, naturalRec]{}.val) == 16 && unsafe.Offsetof(naturalRec{}.eventID) == 16

// readEntries reads len(dst) records of size bytes into dst: straight into
// its memory under directLayout, else record by record through decode.
func readEntries[E any](s *snapReader, dst []E, size int, decode func(i int, b []byte)) {
	if directLayout && len(dst) > 0 {
		s.Block(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst))), len(dst)*size))
		return
	}
	s.records(len(dst), size, decode)
}

// linked numbers the records of one kind that the World reaches through
// more than one map or list, so that each is written once. keyed marks
// those added from the World's map of them by id (addKeyed): the records
// that map holds, where others are reached only through a list.
type linked[T any] struct {
	list  []*T
	index map[*T]uint32
	keyed []bool
}

// newLinked returns a linked ready for about n records.
func newLinked[T any](n int) *linked[T] {
	return &linked[T]{list: make([]*T, 0, n), index: make(map[*T]uint32, n), keyed: make([]bool, 0, n)}
}

func (l *linked[T]) add(p *T) uint32 {
	i, ok := l.index[p]
	if !ok {
		i = uint32(len(l.list))
		l.index[p] = i
		l.list = append(l.list, p)
		l.keyed = append(l.keyed, false)
	}
	return i
}

func (l *linked[T]) addKeyed(p *T) { l.keyed[l.add(p)] = true }

// snapWriter writes a World's fields.
type snapWriter struct {
	*snap.Writer
	names, persons, ents *strTable
}

// strTable is a table of strings written once and referred to by index.
// Records come in trainee order, so the string a record names is mostly
// the one named last or the next, and the World shares one copy of each
// (interned): last is tried first, by the string's address alone (a
// byte comparison would read the other string's bytes, slower than the
// map), then the map.
type strTable struct {
	index map[string]uint32
	list  []string
	last  int
}

func (t *strTable) lookup(v string) (uint32, bool) {
	for i := t.last; i < min(t.last+2, len(t.list)); i++ {
		if unsafe.StringData(t.list[i]) == unsafe.StringData(v) && len(t.list[i]) == len(v) {
			t.last = i
			return uint32(i), true
		}
	}
	i, ok := t.index[v]
	if ok {
		t.last = int(i)
	}
	return i, ok
}

// table writes the strings all yields (n of them, distinct) and returns
// their table.
func (s *snapWriter) table(n int, all func(yield func(string))) *strTable {
	t := &strTable{index: make(map[string]uint32, n), list: make([]string, 0, n)}
	s.Uvarint(uint64(n))
	all(func(v string) {
		t.index[v] = uint32(len(t.list))
		t.list = append(t.list, v)
		s.String(v)
	})
	return t
}

// ref writes v as its index in t plus one, or 0 and v if t lacks it.
func (s *snapWriter) ref(t *strTable, v string) {
	if i, ok := t.lookup(v); ok {
		s.Uvarint(uint64(i) + 1)
		return
	}
	s.Uvarint(0)
	s.String(v)
}

func (s *snapWriter) name(v string)       { s.ref(s.names, v) }
func (s *snapWriter) person(v string)     { s.ref(s.persons, v) }
func (s *snapWriter) ent(v string)        { s.ref(s.ents, v) }
func (s *snapWriter) id(id events.ID)     { s.Fixed(id[:]) }
func (s *snapWriter) date(d refdata.Date) { s.Varint(int64(d)) }

// count writes the length of a list, telling a nil one (0) from an empty
// one (1): the restored World must equal the one written.
func (s *snapWriter) count(n int, isNil bool) {
	if isNil {
		s.Uvarint(0)
		return
	}
	s.Uvarint(uint64(n) + 1)
}

func (s *snapWriter) qual(q refdata.Qualification) {
	s.Varint(int64(q.Occupation))
	s.Varint(int64(q.Level))
}

func (s *snapWriter) strings(vs []string) {
	s.count(len(vs), vs == nil)
	for _, v := range vs {
		s.String(v)
	}
}

func (s *snapWriter) payee(p payee) {
	s.Varint(int64(p.kind))
	s.Bool(p.present)
	s.name(p.inst)
	s.person(p.person)
	s.String(p.account)
}

// RestoreWorld reads a World written by Snapshot, deciding under rs. Give
// in its input's size (snap.Reader.SetSize) where it is known: a damaged
// count then fails instead of allocating. Errors: ErrSnapshotMismatch
// (another SnapshotVersion, or a rule set with another Fingerprint: fold
// the log instead); a snapshot that does not decode (snap.ErrCorrupt).
func RestoreWorld(rs RuleSet, in *snap.Reader) (*World, error) {
	w := NewWorld(rs)
	s := &snapReader{Reader: in}
	n, v := s.String(), s.Uvarint()
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("rules: restore: %w", err)
	}
	if n != "rules.World" || v != SnapshotVersion {
		return nil, fmt.Errorf("%w: %q version %d, want version %d", ErrSnapshotMismatch, n, v, SnapshotVersion)
	}
	if id := s.String(); s.Err() == nil && id != rs.Identity() {
		return nil, fmt.Errorf("%w: written under rule set %.12s… (%s), this one is %.12s… (%s)", ErrSnapshotMismatch, id, id, rs.Identity(), rs.Identity())
	}
	if a := s.String(); a != "" {
		w.adopted = rs.Identity() // the same rule set, adopted in the log
	}
	if n := s.Len(1 << 16); n > 0 {
		w.versions = make(map[string]string, n)
		for range n {
			v := s.String()
			w.versions[v] = s.String()
		}
	}
	s.names = s.table()
	for _, n := range s.names {
		w.names[n] = n
	}
	s.persons = s.table()
	s.ents = s.table()

	// Maps are filled on another goroutine (ix) while the records after
	// them are read: inserting millions of keys was a third of the work.
	// Nothing below reads a map until ix.wait.
	ix := newIndexer()
	defer ix.wait()
	if n := s.Len(maxCount); n > 0 {
		w.streamList = make([]streamState, n)
		for i := range w.streamList {
			w.streamList[i] = streamState{name: s.String(), rev: s.Uvarint()}
		}
	}
	ix.add(func() {
		w.streams = make(map[string]uint32, len(w.streamList))
		for i, st := range w.streamList {
			w.streams[st.name] = uint32(i)
		}
	})
	le := binary.LittleEndian
	applied := make([]hashEntry[events.ID, appliedAt], s.LenOf(maxCount, appliedSize))
	readEntries(s, applied, appliedSize, func(i int, b []byte) {
		applied[i] = hashEntry[events.ID, appliedAt]{events.ID(b[:16]), appliedAt{stream: le.Uint32(b[16:]), rev: le.Uint32(b[20:])}}
	})
	for i := 0; i < len(applied) && s.Err() == nil; i++ {
		if i > 0 && compareKeys(applied[i-1].key, applied[i].key) >= 0 {
			s.Fail("applied event ids out of order at %d", i)
		}
		if int(applied[i].val.stream) >= len(w.streamList) {
			s.Fail("applied event %s in stream %d of %d", applied[i].key, applied[i].val.stream, len(w.streamList))
		}
	}
	w.applied.setFrozen(applied)
	natural := make([]hashEntry[naturalHash, naturalRec], s.LenOf(maxCount, naturalSize))
	readEntries(s, natural, naturalSize, func(i int, b []byte) {
		natural[i] = hashEntry[naturalHash, naturalRec]{naturalHash(b[:16]), naturalRec{digest: [16]byte(b[16:32]), eventID: events.ID(b[32:48])}}
	})
	for i := 1; i < len(natural) && s.Err() == nil; i++ {
		if compareKeys(natural[i-1].key, natural[i].key) >= 0 {
			s.Fail("natural keys out of order at %d", i)
		}
	}
	w.natural.setFrozen(natural)

	units := make([]refdata.Unit, s.Len(maxCount))
	for i := range units {
		units[i] = refdata.Unit{Code: s.name(), Name: s.String(), Kind: subsidyv1.UnitKind(s.i32()),
			ValidFrom: s.date(), ValidTo: s.date(), Successor: s.name()}
	}
	if s.Err() == nil {
		t, err := refdata.NewTable(units)
		if err != nil {
			s.Fail("units: %v", err)
		}
		w.units = t
	}
	for range s.Len(maxCount) {
		w.unitEvents[s.name()] = s.id()
	}
	for range s.Len(maxCount) {
		in := &institution{id: s.name(), kind: subsidyv1.InstitutionKind(s.i32()), unit: s.name(), account: s.String(), eventID: s.id()}
		if n, ok := s.count(); ok {
			in.approvals = make([]approval, n)
			for i := range in.approvals {
				in.approvals[i] = approval{occupation: subsidyv1.Occupation(s.i32()), from: s.date(), to: s.date(), eventID: s.id()}
			}
		}
		in.suspended, in.blacklisted, in.suspendedBy = s.Bool(), s.Bool(), s.id()
		w.institutions[in.id] = in
	}
	fees := make([]*fee, s.Len(maxCount))
	for i := range fees {
		f := &fee{id: s.String(), inst: s.name(), q: s.qual(), fen: s.Varint(), from: s.date(), to: s.date(), eventID: s.id()}
		if s.Bool() {
			w.fees[f.id] = f
		}
		fees[i] = f
	}
	for range s.Len(maxCount) {
		k := feeKey{inst: s.name(), q: s.qual()}
		var fs []*fee
		if n, ok := s.count(); ok {
			fs = make([]*fee, n)
			for i := range fs {
				fs[i] = linkTo(s, fees)
			}
		}
		w.feesBy[k] = fs
	}
	for range s.Len(maxCount) {
		y := s.i32()
		w.targets[y] = s.i32()
	}

	// The records of each kind are allocated together, one slice of them
	// (allocating millions one by one was half the reading goroutine's
	// time, even with the collector off).
	trainees := make([]*trainee, s.Len(maxCount))
	traineeSlab := make([]trainee, len(trainees))
	for i := range trainees {
		t := &traineeSlab[i]
		*t = trainee{key: s.person(), unit: s.name(), education: subsidyv1.Education(s.i32()), employee: s.Bool(), eventID: s.id()}
		if n, ok := s.count(); ok {
			t.evidence = make([]evidence, n)
			for j := range t.evidence {
				t.evidence[j] = evidence{id: s.String(), source: s.name(), category: subsidyv1.EligibilityCategory(s.i32()),
					confirmed: s.Bool(), gradYear: s.i32(), insuredFrom: s.date(), insuredTo: s.date(), eventID: s.id(),
					snapshotAt: s.Varint()}
			}
		}
		trainees[i] = t
	}
	ix.add(func() { fill(&w.trainees, trainees, func(t *trainee) string { return t.key }) })
	enrolments := make([]*enrolment, s.Len(maxCount))
	enrolmentSlab := make([]enrolment, len(enrolments))
	enrolled := make([]*enrolment, 0, len(enrolments)) // those w.enrolments maps
	for i := range enrolments {
		e := &enrolmentSlab[i]
		*e = enrolment{id: s.String(), person: s.person(), inst: s.name(), q: s.qual(), enrolledOn: s.date(),
			completedOn: s.date(), eventID: s.id(), completionEventID: s.id()}
		if s.Bool() {
			enrolled = append(enrolled, e)
		}
		enrolments[i] = e
	}
	ix.add(func() { fill(&w.enrolments, enrolled, func(e *enrolment) string { return e.id }) })
	assessments := make([]*assessment, s.Len(maxCount))
	assessmentSlab := make([]assessment, len(assessments))
	assessed := make([]*assessment, 0, len(assessments)) // those w.assessments maps
	for i := range assessments {
		a := &assessmentSlab[i]
		*a = assessment{id: s.String(), person: s.person(), evalInst: s.name(), trainInst: s.name(), q: s.qual(),
			attempt: s.u32(), passed: s.Bool(), theory: s.i32(), practical: s.i32(), assessedOn: s.date(),
			enrolment: s.String(), named: s.Bool(), completed: s.Bool(), eventID: s.id(), cert: s.String()}
		if s.Bool() {
			assessed = append(assessed, a)
		}
		assessments[i] = a
	}
	ix.add(func() { fill(&w.assessments, assessed, func(a *assessment) string { return a.id }) })
	ents := make([]*entitlement, len(s.ents))
	entSlab := make([]entitlement, len(ents))
	for i := range ents {
		ents[i] = &entSlab[i]
		s.readEntitlementInto(ents[i])
		if ents[i].id != s.ents[i] && s.Err() == nil {
			s.Fail("entitlement %d is %q, its table says %q", i, ents[i].id, s.ents[i])
		}
	}
	ix.add(func() { fill(&w.entitlements, ents, func(e *entitlement) string { return e.id }) })
	certs := make([]*certificate, s.Len(maxCount))
	certSlab := make([]certificate, len(certs))
	for i := range certs {
		c := &certSlab[i]
		*c = certificate{id: s.String(), person: s.person(), evalInst: s.name(), q: s.qual(), issuedOn: s.date(),
			eventID: s.id(), revoked: s.Bool()}
		var k int
		c.entitlement, k = s.entIndex()
		c.denied = subsidyv1.ReasonCode(s.i32())
		c.revised = subsidyv1.ReasonCode(s.i32())
		if k >= 0 && ents[k].certificate == c.id {
			ents[k].certificate = c.id // one copy of the text, as foldEntitled keeps it
		}
		certs[i] = c
	}
	ix.add(func() { fill(&w.certificates, certs, func(c *certificate) string { return c.id }) })
	for _, t := range trainees {
		if n, ok := s.count(); ok {
			t.enrolments = make([]*enrolment, n)
			for i := range t.enrolments {
				t.enrolments[i] = linkTo(s, enrolments)
			}
		}
		if n, ok := s.count(); ok {
			t.attempts = make(byQual[[]*assessment], n)
			for i := range t.attempts {
				t.attempts[i].q = s.qual()
				if m, ok := s.count(); ok {
					as := make([]*assessment, m)
					for j := range as {
						as[j] = linkTo(s, assessments)
					}
					t.attempts[i].v = as
				}
			}
		}
		if n, ok := s.count(); ok {
			t.entitlements = make(byQual[string], n)
			for i := range t.entitlements {
				t.entitlements[i] = qualValue[string]{s.qual(), s.ent()}
			}
		}
		if n, ok := s.count(); ok {
			t.advances = make(byQual[*advance], n)
			for i := range t.advances {
				t.advances[i].q = s.qual()
				if s.Bool() {
					t.advances[i].v = &advance{id: s.String(), inst: s.name(), fen: s.Varint(), eventID: s.id()}
				}
			}
		}
	}

	for range s.Len(maxCount) {
		o := &objection{id: s.String(), entitlement: s.ent(), raisedOn: s.date(), resolvedOn: s.date(), resolved: s.Bool(), upheld: s.Bool(), eventID: s.id()}
		w.objections[o.id] = o
	}
	orders := make([]*order, s.Len(maxCount))
	orderSlab := make([]order, len(orders))
	for i := range orders {
		o := &orderSlab[i]
		*o = order{id: s.String(), entitlement: s.ent(), attempt: s.u32(), amount: s.Varint(), offset: s.Varint(),
			net: s.Varint(), payee: s.payee()}
		if n, ok := s.count(); ok {
			o.offsets = make([]offset, n)
			for i := range o.offsets {
				o.offsets[i] = offset{clawback: s.String(), fen: s.Varint()}
			}
		}
		o.state, o.eventID, o.requestedOn, o.resultOn, o.resultID = orderState(s.Varint()), s.id(), s.date(), s.date(), s.id()
		orders[i] = o
	}
	ix.add(func() { fill(&w.orders, orders, func(o *order) string { return o.id }) })
	for range s.Len(maxCount) {
		c := &clawback{id: s.String(), entitlement: s.ent(), payee: s.payee(), amount: s.Varint(), recovered: s.Varint(),
			writtenOff: s.Varint(), reserved: s.Varint(), cause: subsidyv1.ClawbackCause(s.i32()), raisedOn: s.date(), eventID: s.id()}
		if s.Bool() {
			c.pending = &writeOff{official: s.name(), amount: s.Varint()}
			s.Fixed(c.pending.digest[:])
		}
		c.pendingID = s.id()
		w.clawbacks[c.id] = c
	}
	w.clawbackSeq = s.strings()
	for range s.Len(maxCount) {
		f := &fund{key: fundKey{year: s.i32(), unit: s.name()}, allocated: s.Varint(), committed: s.Varint()}
		if n, ok := s.count(); ok {
			f.queue = make([]string, n)
			for i := range f.queue {
				f.queue[i] = s.ent()
			}
		}
		if n, ok := s.count(); ok {
			f.allocations = make([]events.ID, n)
			for i := range f.allocations {
				f.allocations[i] = s.id()
			}
		}
		w.funds[f.key] = f
	}

	for range s.Len(maxCount) {
		k := qualityKey{inst: s.name(), q: s.qual()}
		q := &qualityWindow{}
		if n, ok := s.count(); ok {
			q.results = make([]bool, n)
			for i := range q.results {
				q.results[i] = s.Bool()
			}
		}
		if n, ok := s.count(); ok {
			q.ids = make([]events.ID, n)
			for i := range q.ids {
				q.ids[i] = s.id()
			}
		}
		q.passes = s.Int()
		q.flag = s.String()
		w.quality[k] = q
	}
	for range s.Len(maxCount) {
		inst := s.name()
		n := s.Len(maxCount)
		months := make(map[int]int, n)
		for range n {
			m := s.Int()
			months[m] = s.Int()
		}
		w.certMonths[inst] = months
	}
	for range s.Len(maxCount) {
		acct := s.String()
		var ps []string
		if n, ok := s.count(); ok {
			ps = make([]string, n)
			for i := range ps {
				ps[i] = s.person()
			}
		}
		w.accounts[acct] = ps
	}
	for range s.Len(maxCount) {
		k := s.String()
		w.flags[k] = Flag{ID: s.String(), Reason: subsidyv1.ReasonCode(s.i32()), Subject: s.String(), Detail: s.String(), Cleared: s.Bool()}
	}
	w.flagOrder = s.strings()
	for range s.Len(maxCount) {
		a := s.String()
		w.reissued[a] = s.String()
	}
	s.Magic("end", SnapshotVersion)
	ix.wait()
	if s.Err() == nil && len(w.streams) != len(w.streamList) {
		s.Fail("a stream named twice")
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("rules: restore: %w", err)
	}
	return w, nil
}

// indexer runs functions (filling maps) one after another on a goroutine
// of its own.
type indexer struct {
	work chan func()
	done chan struct{}
}

func newIndexer() *indexer {
	work, done := make(chan func(), 16), make(chan struct{})
	go func() {
		defer close(done)
		for f := range work {
			f()
		}
	}()
	ix := &indexer{work: work, done: done}
	return ix
}

func (ix *indexer) add(f func()) { ix.work <- f }

// wait waits for every function added; later calls do nothing.
func (ix *indexer) wait() {
	if ix.work != nil {
		close(ix.work)
		ix.work = nil
		<-ix.done
	}
}

// fill sets *m to a map of the records by their key.
func fill[T any](m *map[string]*T, recs []*T, key func(*T) string) {
	*m = make(map[string]*T, len(recs))
	for _, r := range recs {
		(*m)[key(r)] = r
	}
}

// readEntitlementInto reads an entitlement into e.
func (s *snapReader) readEntitlementInto(e *entitlement) {
	*e = entitlement{id: s.ent(), eventID: s.id(), person: s.person(), q: s.qual(), certificate: s.String(),
		amount: s.Varint(), payee: s.payee(), year: s.i32(), unit: s.name(), trainInst: s.name(),
		assessedOn: s.date(), issuedOn: s.date(), confirmedBy: s.name(), approvedBy: s.name(),
		confirmedOn: s.date(), approvedOn: s.date(), confirmEventID: s.id(), approveEventID: s.id(),
		noticeStart: s.date(), noticeEnd: s.date(), noticeClosed: s.date(), noticeEventID: s.id(), closeEventID: s.id()}
	if n, ok := s.count(); ok {
		e.holds = make([]hold, n)
		for i := range e.holds {
			e.holds[i] = hold{id: s.name(), reason: subsidyv1.ReasonCode(s.i32()), placedOn: s.date(), eventID: s.id()}
		}
	}
	e.objections, e.orders = s.strings(), s.strings()
	e.inFlight, e.requestedOn, e.paid, e.cancelled, e.clawback, e.counted = s.String(), s.date(), s.Varint(), s.String(), s.String(), s.Varint()
	e.released = datedRelease{hold: s.String(), on: s.date()}
}

// snapReader reads what snapWriter wrote.
type snapReader struct {
	*snap.Reader
	names, persons, ents []string
	chunk                []byte // see String
}

// maxString bounds one string of a snapshot.
const maxString = 1 << 26

// String reads a string into the reader's current chunk of memory: the
// strings of a restore (ids, millions of them) share allocations of a
// megabyte, with nothing in them for the collector to scan, instead of one
// allocation each. The bytes are never written again once read, as a
// string's must not be; a chunk lives as long as any string in it.
func (s *snapReader) String() string {
	n := s.Len(maxString)
	if n == 0 || s.Err() != nil {
		return ""
	}
	if n > len(s.chunk) {
		s.chunk = make([]byte, max(n, 1<<20))
	}
	b := s.chunk[:n:n]
	s.chunk = s.chunk[n:]
	s.Fixed(b)
	return unsafe.String(&b[0], n)
}

func (s *snapReader) table() []string {
	t := make([]string, s.Len(maxCount))
	for i := range t {
		t[i] = s.String()
	}
	return t
}

func (s *snapReader) ref(t []string) string {
	k := s.Uvarint()
	if k == 0 {
		return s.String()
	}
	if k > uint64(len(t)) {
		s.Fail("string index %d beyond a table of %d", k-1, len(t))
		return ""
	}
	return t[k-1]
}

func (s *snapReader) name() string { return s.ref(s.names) }

// entIndex reads an entitlement reference: the id, and its index in the
// table (-1 for an id not in it).
func (s *snapReader) entIndex() (string, int) {
	k := s.Uvarint()
	if k == 0 {
		return s.String(), -1
	}
	if k > uint64(len(s.ents)) {
		s.Fail("entitlement index %d beyond a table of %d", k-1, len(s.ents))
		return "", -1
	}
	return s.ents[k-1], int(k - 1)
}
func (s *snapReader) person() string { return s.ref(s.persons) }
func (s *snapReader) ent() string    { return s.ref(s.ents) }

func (s *snapReader) id() (id events.ID) {
	s.Fixed(id[:])
	return id
}

func (s *snapReader) date() refdata.Date { return refdata.Date(s.i32()) }
func (s *snapReader) i32() int32         { return s.Int32() }

func (s *snapReader) u32() uint32 {
	v := s.Uvarint()
	if v > 1<<32-1 {
		s.Fail("%d does not fit 32 bits", v)
		return 0
	}
	return uint32(v)
}

func (s *snapReader) qual() refdata.Qualification {
	return refdata.Qualification{Occupation: subsidyv1.Occupation(s.i32()), Level: subsidyv1.Level(s.i32())}
}

// count reads what snapWriter.count wrote: the length of a list, and false
// for a nil one.
func (s *snapReader) count() (int, bool) {
	k := s.Len(maxCount)
	if k == 0 {
		return 0, false
	}
	return k - 1, true
}

func (s *snapReader) strings() []string {
	n, ok := s.count()
	if !ok {
		return nil
	}
	vs := make([]string, n)
	for i := range vs {
		vs[i] = s.String()
	}
	return vs
}

func (s *snapReader) payee() payee {
	return payee{kind: subsidyv1.PayeeKind(s.i32()), present: s.Bool(), inst: s.name(), person: s.person(), account: s.String()}
}

// linkTo reads an index into list and returns its record (nil, with the
// reader failed, if it is out of range).
func linkTo[T any](s *snapReader, list []*T) *T {
	i := s.Uvarint()
	if i >= uint64(len(list)) {
		s.Fail("record index %d beyond %d", i, len(list))
		return nil
	}
	return list[i]
}
