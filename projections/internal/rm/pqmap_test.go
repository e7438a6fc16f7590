package rm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/cqhrss/subsidyledger/events/snap"
)

func testKey(i int, made bool) PersonKey {
	var k PersonKey
	if made { // a made-up key: all but the last bytes zero
		binary.BigEndian.PutUint32(k[28:], uint32(i))
		return k
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(b[:])
}

func TestPQMapAgreesWithAMap(t *testing.T) {
	for _, made := range []bool{false, true} {
		var m PQMap[int]
		ref := map[pqSlotKey]int{}
		for i := range 20000 {
			k, q := testKey(i%7000, made), Q(i%3+5)
			*m.Put(k, q) += i
			ref[pqSlotKey{k, q}] += i
		}
		if m.Len() != len(ref) {
			t.Fatalf("Len = %d; want %d", m.Len(), len(ref))
		}
		for k, v := range ref {
			if got := m.Get(k.key, k.q); got == nil || *got != v {
				t.Fatalf("Get(%x, %d) = %v; want %d", k.key[:4], k.q, got, v)
			}
		}
		if m.Get(testKey(9999, made), 5) != nil || m.Get(testKey(1, made), 40) != nil {
			t.Fatal("Get of a missing key found something")
		}

		var buf bytes.Buffer
		w := snap.NewWriter(&buf)
		m.Write(w, func(w *snap.Writer, v *int) { w.Int(*v) })
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		var back PQMap[int]
		r := snap.NewReader(bytes.NewReader(buf.Bytes()))
		back.Read(r, func(r *snap.Reader, v *int) { *v = r.Int() })
		if r.Err() != nil {
			t.Fatal(r.Err())
		}
		if back.Len() != m.Len() || back.x.n != m.x.n {
			t.Fatalf("restored %d entries (%d in the index); want %d", back.Len(), back.x.n, m.Len())
		}
		for e, p := range m.entries.All() {
			if *back.entries.At(e) != *p {
				t.Fatalf("restored entry %d = %+v; want %+v", e, *back.entries.At(e), *p)
			}
		}
		for ti := range m.x.tables {
			a, b := &m.x.tables[ti], &back.x.tables[ti]
			if a.n != b.n || len(a.slots) != len(b.slots) {
				t.Fatalf("table %d: restored %d entries in %d slots; want %d in %d", ti, b.n, len(b.slots), a.n, len(a.slots))
			}
			for i := range a.slots {
				if a.slots[i] != b.slots[i] {
					t.Fatalf("table %d: restored slot %d = %+v; want %+v", ti, i, b.slots[i], a.slots[i])
				}
			}
		}
	}
}

type pqSlotKey struct {
	key PersonKey
	q   Q
}

func TestPQMapReadRejectsDamage(t *testing.T) {
	entry := func(w *snap.Writer, i int, q uint64) {
		k := testKey(i, false)
		w.Fixed(k[:])
		w.Uvarint(q)
		w.Int(i)
	}
	read := func(b []byte) (*PQMap[int], error) {
		var m PQMap[int]
		r := snap.NewReader(bytes.NewReader(b))
		m.Read(r, func(r *snap.Reader, v *int) { *v = r.Int() })
		return &m, r.Err()
	}
	for name, write := range map[string]func(w *snap.Writer){
		"fewer entries than counted": func(w *snap.Writer) { w.Uvarint(3); entry(w, 1, 5); entry(w, 2, 5) },
		"qualification over 255":     func(w *snap.Writer) { w.Uvarint(1); entry(w, 1, 256) },
		"no hash index":              func(w *snap.Writer) { w.Uvarint(2); entry(w, 1, 5); entry(w, 1, 6) },
	} {
		var buf bytes.Buffer
		w := snap.NewWriter(&buf)
		write(w)
		w.Flush()
		if _, err := read(buf.Bytes()); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// A map of two entries whose hash index is damaged before it is written.
	for name, tamper := range map[string]func(x *tagIndex){
		"a slot naming a missing entry": func(x *tagIndex) { x.slot(func(s *tagSlot) { s.e = 3 }) },
		"a slot dropped":                func(x *tagIndex) { x.slot(func(s *tagSlot) { s.e = 0 }) },
		"a table of 24 slots": func(x *tagIndex) {
			t := x.table()
			t.slots = append(t.slots, make([]tagSlot, 8)...)
		},
		"a full table": func(x *tagIndex) {
			t := x.table()
			for i := range t.slots {
				t.slots[i].e = 1
			}
		},
	} {
		var m PQMap[int]
		*m.Put(testKey(1, false), 5) = 1
		*m.Put(testKey(1, false), 6) = 2
		tamper(&m.x)
		var buf bytes.Buffer
		w := snap.NewWriter(&buf)
		m.Write(w, func(w *snap.Writer, v *int) { w.Int(*v) })
		w.Flush()
		if _, err := read(buf.Bytes()); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// The same entries, well formed, read back.
	var m PQMap[int]
	*m.Put(testKey(1, false), 5) = 1
	*m.Put(testKey(1, false), 6) = 2
	var buf bytes.Buffer
	w := snap.NewWriter(&buf)
	m.Write(w, func(w *snap.Writer, v *int) { w.Int(*v) })
	w.Flush()
	back, err := read(buf.Bytes())
	if err != nil || back.Len() != 2 || back.Get(testKey(1, false), 6) == nil || *back.Get(testKey(1, false), 6) != 2 {
		t.Errorf("well-formed entries: err %v, %d entries", err, back.Len())
	}
}

// table returns the first table that holds an entry.
func (x *tagIndex) table() *tagTable {
	for i := range x.tables {
		if x.tables[i].n > 0 {
			return &x.tables[i]
		}
	}
	return nil
}

// slot applies f to the first slot in use.
func (x *tagIndex) slot(f func(*tagSlot)) {
	t := x.table()
	for i := range t.slots {
		if t.slots[i].e != 0 {
			f(&t.slots[i])
			return
		}
	}
}
