package rm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/cqhrss/subsidyledger/projections/internal/snap"
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
		if back.n != m.n {
			t.Fatalf("restored %d entries; want %d", back.n, m.n)
		}
		for ti := range m.tables {
			a, b := &m.tables[ti], &back.tables[ti]
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
	for _, sizes := range [][2]uint64{{100, 3}, {16, 13}, {1 << 20, 3}} {
		var buf bytes.Buffer
		w := snap.NewWriter(&buf)
		w.Uvarint(sizes[0])
		w.Uvarint(sizes[1])
		w.Flush()
		var m PQMap[int]
		r := snap.NewReader(bytes.NewReader(buf.Bytes()))
		m.Read(r, func(r *snap.Reader, v *int) { *v = r.Int() })
		if r.Err() == nil {
			t.Errorf("Read of %d entries in %d slots: no error", sizes[1], sizes[0])
		}
	}
}
