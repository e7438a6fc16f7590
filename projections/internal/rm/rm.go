// Package rm is the read models' shared kit: compact keys (person keys and
// ids as fixed-size arrays), string interning, the versioned unit table fed
// by UnitDefined events, dates and qualifications in one byte.
package rm

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/snap"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// PersonKey is a person key (64 hex characters) in 32 bytes.
type PersonKey [32]byte

// ParsePersonKey parses the hex form. Errors: not 64 lower-case hex
// characters.
func ParsePersonKey(s string) (PersonKey, error) {
	var k PersonKey
	if len(s) != 64 {
		return k, fmt.Errorf("person key of %d characters, want 64", len(s))
	}
	// In halves: a conversion of up to 32 bytes to []byte stays on the
	// stack, so a rebuild parsing millions of keys allocates nothing.
	for h := range 2 {
		if _, err := hex.Decode(k[16*h:], []byte(s[32*h:32*h+32])); err != nil {
			return k, fmt.Errorf("person key is not hex: %w", err)
		}
	}
	return k, nil
}

// String returns the hex form.
func (k PersonKey) String() string { return hex.EncodeToString(k[:]) }

// ID parses an id in UUID text form (entitlement, payment order, clawback
// and flag ids are derived event ids).
func ID(s string) (events.ID, error) { return events.ParseID(s) }

// Q packs a qualification into one byte: occupation*4 + level (0 when
// either is unknown).
type Q uint8

// QOf packs a proto qualification.
func QOf(q *pb.Qualification) Q {
	o, l := q.GetOccupation(), q.GetLevel()
	if o <= 0 || o > 10 || l <= 0 || l > 3 {
		return 0
	}
	return Q(int(o)*4 + int(l))
}

// Occupation and Level unpack the byte.
func (q Q) Occupation() pb.Occupation { return pb.Occupation(q / 4) }
func (q Q) Level() pb.Level           { return pb.Level(q % 4) }

// Qualification is the JSON form of a qualification.
type Qualification struct {
	Occupation string `json:"occupation"`
	Level      string `json:"level"`
}

// JSON returns the slugs ("big-data", "junior"), or "unknown".
func (q Q) JSON() Qualification {
	o, ok1 := refdata.OccupationOf(q.Occupation())
	l, ok2 := refdata.LevelOf(q.Level())
	if !ok1 || !ok2 {
		return Qualification{"unknown", "unknown"}
	}
	return Qualification{o.Slug, l.Slug}
}

// Date converts a proto date; an invalid date becomes zero. (It checks
// validity itself: refdata.FromProto formats the date to check it, which is
// too slow for a rebuild of millions of events.)
func Date(p *pb.Date) refdata.Date {
	if p == nil {
		return 0
	}
	y, m, d := p.Year, p.Month, p.Day
	if y < 1 || y > 9999 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0
	}
	return refdata.Date(y*10000 + m*100 + d)
}

func daysIn(y, m int32) int32 {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// DateString is the JSON form of a date: yyyy-mm-dd, "" when unset.
func DateString(d refdata.Date) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// Reason is the JSON form of a reason code.
type Reason struct {
	Code   string `json:"code"`
	Number int32  `json:"number"`
}

// ConcurrentEnrolmentForInstitution is a concurrent-enrolment flag's
// detail as the institution it is filed under sees it: the recorded detail
// names the trainee's other institution and its enrolment.
const ConcurrentEnrolmentForInstitution = "enrolled here while an enrolment of the trainee at another institution was not completed"

// FlagDetailForInstitution returns a flag's detail as the institution it
// is filed under may see it, and whether that is not the recorded one
// (its checks and evidence then name what the institution may not see
// either). Only a concurrent-enrolment flag (rule 16) names another
// institution: the first enrolment's.
func FlagDetailForInstitution(r Reason, detail string) (string, bool) {
	if r.Number == int32(pb.ReasonCode_REASON_CODE_CONCURRENT_ENROLMENT) {
		return ConcurrentEnrolmentForInstitution, true
	}
	return detail, false
}

// ReasonOf returns the JSON form ("" code for unspecified).
func ReasonOf(c pb.ReasonCode) Reason {
	if c == 0 {
		return Reason{}
	}
	return Reason{Code: c.String(), Number: int32(c)}
}

// Strings interns strings as small integers (0 is ""). Not safe for
// concurrent writers; readers share the models' lock.
type Strings struct {
	ids  map[string]uint32
	strs []string
}

// NewStrings returns an empty table.
func NewStrings() *Strings { return &Strings{ids: map[string]uint32{"": 0}, strs: []string{""}} }

// ID returns s's number, adding a copy of s if new (a build's strings
// point into memory it reuses).
func (t *Strings) ID(s string) uint32 {
	if id, ok := t.ids[s]; ok {
		return id
	}
	s = strings.Clone(s)
	id := uint32(len(t.strs))
	t.ids[s] = id
	t.strs = append(t.strs, s)
	return id
}

// Lookup returns s's number if known.
func (t *Strings) Lookup(s string) (uint32, bool) {
	id, ok := t.ids[s]
	return id, ok
}

// Str returns the string numbered id.
func (t *Strings) Str(id uint32) string {
	if int(id) < len(t.strs) {
		return t.strs[id]
	}
	return ""
}

// Len returns the number of strings (including "").
func (t *Strings) Len() int { return len(t.strs) }

// Write writes the table.
func (t *Strings) Write(w *snap.Writer) {
	w.Uvarint(uint64(len(t.strs)))
	for _, s := range t.strs[1:] {
		w.String(s)
	}
}

// Read reads a table written by Write.
func (t *Strings) Read(r *snap.Reader) {
	n := r.Len(1 << 28)
	*t = *NewStrings()
	for i := 1; i < n && r.Err() == nil; i++ {
		s := r.String()
		t.ids[s] = uint32(len(t.strs))
		t.strs = append(t.strs, s)
	}
}

// Units is the versioned unit table as the log defines it: the seed plus
// every UnitDefined applied.
type Units struct {
	table   *refdata.Table
	defined []*pb.UnitDefined // for snapshots
}

// NewUnits returns the seed table.
func NewUnits() *Units { return &Units{table: refdata.Seed()} }

// Apply adds a UnitDefined row. Errors: an inconsistent row.
func (u *Units) Apply(m *pb.UnitDefined) error {
	// A copy whose strings are its own: a build's strings point into
	// memory it reuses.
	m = &pb.UnitDefined{UnitCode: strings.Clone(m.UnitCode), Name: strings.Clone(m.Name), Kind: m.Kind,
		ValidFrom: m.ValidFrom, ValidTo: m.ValidTo, SuccessorCode: strings.Clone(m.SuccessorCode)}
	row, err := refdata.FromUnitDefined(m)
	if err != nil {
		return err
	}
	t, err := u.table.With(row)
	if err != nil {
		return err
	}
	u.table = t
	u.defined = append(u.defined, m)
	return nil
}

// Current returns the code of the unit that answers for code today (old
// units rolled up into their successors); code itself if unknown.
func (u *Units) Current(code string) string {
	c, err := u.table.Current(code)
	if err != nil {
		return code
	}
	return c.Code
}

// Name returns the latest name of code ("" if unknown).
func (u *Units) Name(code string) string {
	rs, ok := u.table.Lookup(code)
	if !ok || len(rs) == 0 {
		return ""
	}
	return rs[len(rs)-1].Name
}

// Table returns the table.
func (u *Units) Table() *refdata.Table { return u.table }

// Write writes the rows defined by events.
func (u *Units) Write(w *snap.Writer) {
	w.Uvarint(uint64(len(u.defined)))
	for _, m := range u.defined {
		w.String(m.GetUnitCode())
		w.String(m.GetName())
		w.Uvarint(uint64(m.GetKind()))
		w.Int(int(Date(m.GetValidFrom())))
		w.Int(int(Date(m.GetValidTo())))
		w.String(m.GetSuccessorCode())
	}
}

// Read reads rows written by Write and applies them to the seed.
func (u *Units) Read(r *snap.Reader) {
	*u = *NewUnits()
	n := r.Len(1 << 20)
	for range n {
		m := &pb.UnitDefined{UnitCode: r.String(), Name: r.String(), Kind: pb.UnitKind(r.Uvarint())}
		m.ValidFrom = refdata.Date(r.Int()).Proto()
		m.ValidTo = refdata.Date(r.Int()).Proto()
		m.SuccessorCode = r.String()
		if r.Err() != nil {
			return
		}
		if err := u.Apply(m); err != nil {
			r.Fail("unit row: %v", err)
			return
		}
	}
}

// SortedKeys returns a map's keys sorted (for deterministic snapshots).
func SortedKeys[K interface {
	~string | ~int32 | ~uint32 | ~int
}, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}

// Rate returns n/d rounded to 4 decimals (0 when d is 0), computed in
// integers so that it is the same on every machine.
func Rate(n, d int64) float64 {
	if d == 0 {
		return 0
	}
	return float64((n*20000+d)/(2*d)) / 10000
}

// Err wraps a problem with an event into the error Apply returns.
func Err(ev string, format string, args ...any) error {
	return fmt.Errorf("%s: %s", ev, fmt.Sprintf(format, args...))
}

// Arena stores many small strings (ids, names) without a string header and
// an allocation each: in chunks of 1 MiB, addressed by a Ref of 8 bytes.
// Strings are never removed. Not safe for concurrent writers.
type Arena struct {
	chunks [][]byte
}

// Ref addresses a string in an Arena: chunk<<20 | offset, and length. The
// zero Ref is "".
type Ref struct {
	off uint32
	n   uint32
}

const chunkBits = 20

// Put stores s and returns its Ref.
func (a *Arena) Put(s string) Ref {
	if s == "" {
		return Ref{}
	}
	if len(s) > 1<<chunkBits {
		s = s[:1<<chunkBits] // longer than any payload the intake accepts
	}
	last := len(a.chunks) - 1
	if last < 0 || len(a.chunks[last])+len(s) > cap(a.chunks[last]) {
		a.chunks = append(a.chunks, make([]byte, 0, 1<<chunkBits))
		last++
	}
	c := a.chunks[last]
	r := Ref{off: uint32(last)<<chunkBits | uint32(len(c)), n: uint32(len(s))}
	a.chunks[last] = append(c, s...)
	return r
}

// Get returns the string r addresses ("" for a Ref out of range).
func (a *Arena) Get(r Ref) string {
	if r.n == 0 {
		return ""
	}
	c, o := int(r.off>>chunkBits), int(r.off&(1<<chunkBits-1))
	if c >= len(a.chunks) || o+int(r.n) > len(a.chunks[c]) {
		return ""
	}
	return string(a.chunks[c][o : o+int(r.n)])
}

// Equal reports whether r addresses s, without allocating.
func (a *Arena) Equal(r Ref, s string) bool {
	if int(r.n) != len(s) {
		return false
	}
	if r.n == 0 {
		return true
	}
	c, o := int(r.off>>chunkBits), int(r.off&(1<<chunkBits-1))
	return c < len(a.chunks) && o+int(r.n) <= len(a.chunks[c]) && string(a.chunks[c][o:o+int(r.n)]) == s
}

// Valid reports whether r lies inside the arena (for restored snapshots).
func (a *Arena) Valid(r Ref) bool {
	if r.n == 0 {
		return true
	}
	c, o := int(r.off>>chunkBits), int(r.off&(1<<chunkBits-1))
	return c < len(a.chunks) && o+int(r.n) <= len(a.chunks[c])
}

// WriteRef and ReadRef encode a Ref.
func WriteRef(w *snap.Writer, r Ref) { w.Uvarint(uint64(r.off)); w.Uvarint(uint64(r.n)) }

// ReadRef decodes a Ref written by WriteRef.
func ReadRef(r *snap.Reader) Ref { return Ref{off: uint32(r.Uvarint()), n: uint32(r.Uvarint())} }

// Write writes the arena.
func (a *Arena) Write(w *snap.Writer) {
	w.Uvarint(uint64(len(a.chunks)))
	for _, c := range a.chunks {
		w.Bytes(c)
	}
}

// Read reads an arena written by Write.
func (a *Arena) Read(r *snap.Reader) {
	n := r.Len(1 << 12)
	a.chunks = make([][]byte, n)
	for i := range a.chunks {
		m := r.Len(1 << chunkBits)
		if r.Err() != nil {
			return
		}
		c := make([]byte, m, 1<<chunkBits)
		r.Block(c)
		a.chunks[i] = c
	}
}
