package rm

import (
	"encoding/binary"
	"math/bits"

	"github.com/cqhrss/subsidyledger/projections/internal/snap"
)

// PQMap is a hash table from a person and a qualification to a V, for the
// read models that look one up for most events of a rebuild. It is open
// addressed (linear probing) with the key in the slot, so that a lookup
// usually reads one slot, where a Go map reads a control word and a slot
// and hashes and compares a 33-byte key through calls. The entries are
// spread over 256 tables by the top bits of their hash, each growing on
// its own, so that growing copies a small table at a time into memory the
// allocator recycles (doubling one big array faults in fresh pages every
// time). Entries are never removed. Not safe for concurrent writers.
//
// Where an entry lands depends on the order of insertion, so Write
// records the slots as they are and Read puts them back in place: a
// restored table is the same as the one written, field by field.
type PQMap[V any] struct {
	tables [1 << pqDirBits]pqTable[V]
	n      int
}

// pqDirBits is how many top bits of the hash choose the table.
const pqDirBits = 8

// pqMinSlots is the size of a table's first array; it doubles when three
// quarters are in use.
const pqMinSlots = 16

type pqTable[V any] struct {
	slots []pqSlot[V]
	n     int
}

type pqSlot[V any] struct {
	key  PersonKey
	q    Q
	used bool
	val  V
}

// pqHash hashes a key. Person keys are HMAC outputs, but the hash folds
// all of the key in so that made-up keys spread too.
func pqHash(k *PersonKey, q Q) uint64 {
	h := binary.LittleEndian.Uint64(k[0:]) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(k[8:]), 17) ^
		bits.RotateLeft64(binary.LittleEndian.Uint64(k[16:]), 31) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(k[24:]), 47) ^ uint64(q)
	return h * 0x9e3779b97f4a7c15
}

// split divides a hash into the number of its table and the bits left to
// choose the slot.
func split(h uint64) (int, uint64) { return int(h >> (64 - pqDirBits)), h << pqDirBits }

// home returns the slot where the probe for the hash's remaining bits h
// starts in the table.
func (t *pqTable[V]) home(h uint64) int {
	return int(h >> (64 - bits.TrailingZeros(uint(len(t.slots)))))
}

// Get returns the value of (k, q), nil if there is none. The pointer is
// valid until the next Put.
func (m *PQMap[V]) Get(k PersonKey, q Q) *V {
	ti, h := split(pqHash(&k, q))
	t := &m.tables[ti]
	if t.n == 0 {
		return nil
	}
	mask := len(t.slots) - 1
	for i := t.home(h); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if !s.used {
			return nil
		}
		if s.key == k && s.q == q {
			return &s.val
		}
	}
}

// Put returns the value of (k, q), adding a zero value if there is none.
// The pointer is valid until the next Put.
func (m *PQMap[V]) Put(k PersonKey, q Q) *V {
	ti, h := split(pqHash(&k, q))
	t := &m.tables[ti]
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	mask := len(t.slots) - 1
	for i := t.home(h); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if !s.used {
			s.key, s.q, s.used = k, q, true
			t.n++
			m.n++
			return &s.val
		}
		if s.key == k && s.q == q {
			return &s.val
		}
	}
}

// grow doubles the table's slots and moves the entries over in slot
// order.
func (t *pqTable[V]) grow() {
	old := t.slots
	t.slots = make([]pqSlot[V], max(2*len(old), pqMinSlots))
	mask := len(t.slots) - 1
	for j := range old {
		o := &old[j]
		if !o.used {
			continue
		}
		_, h := split(pqHash(&o.key, o.q))
		i := t.home(h)
		for t.slots[i].used {
			i = (i + 1) & mask
		}
		t.slots[i] = *o
	}
}

// Len returns the number of entries.
func (m *PQMap[V]) Len() int { return m.n }

// Write writes the tables: for each, its size, then each entry with its
// slot, the person key and the qualification, and the value as val writes
// it.
func (m *PQMap[V]) Write(w *snap.Writer, val func(*snap.Writer, *V)) {
	for ti := range m.tables {
		t := &m.tables[ti]
		w.Uvarint(uint64(len(t.slots)))
		w.Uvarint(uint64(t.n))
		last := -1
		for i := range t.slots {
			s := &t.slots[i]
			if !s.used {
				continue
			}
			w.Uvarint(uint64(i - last))
			last = i
			w.Fixed(s.key[:])
			w.Uvarint(uint64(s.q))
			val(w, &s.val)
		}
	}
}

// Read replaces the tables with those written by Write, reading each
// value with val.
func (m *PQMap[V]) Read(r *snap.Reader, val func(*snap.Reader, *V)) {
	*m = PQMap[V]{}
	for ti := range m.tables {
		t := &m.tables[ti]
		size, n := r.Uvarint(), r.Uvarint()
		switch {
		case r.Err() != nil:
			return
		case size == 0 && n == 0:
			continue
		case size < pqMinSlots || size&(size-1) != 0 || n*4 > size*3 || size > 4*n+pqMinSlots:
			r.Fail("table of %d entries in %d slots", n, size)
			return
		}
		t.slots = make([]pqSlot[V], size)
		i := -1
		for range n {
			i += int(r.Uvarint())
			if r.Err() != nil {
				return
			}
			if i < 0 || i >= len(t.slots) || t.slots[i].used {
				r.Fail("table entry in slot %d of %d", i, len(t.slots))
				return
			}
			s := &t.slots[i]
			r.Fixed(s.key[:])
			s.q = Q(r.Uvarint())
			s.used = true
			val(r, &s.val)
			t.n++
			m.n++
		}
	}
}
