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
// and hashes and compares a 33-byte key through calls. Entries are never
// removed. Not safe for concurrent writers.
//
// Where an entry lands depends on the order of insertion, so Write
// records the slots as they are and Read puts them back in place: a
// restored table is the same as the one written, field by field.
type PQMap[V any] struct {
	slots []pqSlot[V]
	n     int
}

type pqSlot[V any] struct {
	key  PersonKey
	q    Q
	used bool
	val  V
}

// pqMinSlots is the size of a table's first array; it doubles when three
// quarters are in use.
const pqMinSlots = 64

// home returns the slot where the probe for (k, q) starts, in a table of
// len(slots) slots (a power of two). Person keys are HMAC outputs, but
// the hash folds all of the key in so that made-up keys spread too.
func home(k *PersonKey, q Q, slots int) int {
	h := binary.LittleEndian.Uint64(k[0:]) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(k[8:]), 17) ^
		bits.RotateLeft64(binary.LittleEndian.Uint64(k[16:]), 31) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(k[24:]), 47) ^ uint64(q)
	h *= 0x9e3779b97f4a7c15
	return int(h >> (64 - bits.TrailingZeros(uint(slots))))
}

// Get returns the value of (k, q), nil if there is none. The pointer is
// valid until the next Put.
func (m *PQMap[V]) Get(k PersonKey, q Q) *V {
	if m.n == 0 {
		return nil
	}
	mask := len(m.slots) - 1
	for i := home(&k, q, len(m.slots)); ; i = (i + 1) & mask {
		s := &m.slots[i]
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
	if (m.n+1)*4 > len(m.slots)*3 {
		m.grow()
	}
	mask := len(m.slots) - 1
	for i := home(&k, q, len(m.slots)); ; i = (i + 1) & mask {
		s := &m.slots[i]
		if !s.used {
			s.key, s.q, s.used = k, q, true
			m.n++
			return &s.val
		}
		if s.key == k && s.q == q {
			return &s.val
		}
	}
}

// grow doubles the slots and moves the entries over in slot order.
func (m *PQMap[V]) grow() {
	old := m.slots
	m.slots = make([]pqSlot[V], max(2*len(old), pqMinSlots))
	mask := len(m.slots) - 1
	for j := range old {
		o := &old[j]
		if !o.used {
			continue
		}
		i := home(&o.key, o.q, len(m.slots))
		for m.slots[i].used {
			i = (i + 1) & mask
		}
		m.slots[i] = *o
	}
}

// Len returns the number of entries.
func (m *PQMap[V]) Len() int { return m.n }

// Write writes the table: its size, then each entry with its slot, the
// person key and the qualification, and the value as val writes it.
func (m *PQMap[V]) Write(w *snap.Writer, val func(*snap.Writer, *V)) {
	w.Uvarint(uint64(len(m.slots)))
	w.Uvarint(uint64(m.n))
	last := -1
	for i := range m.slots {
		s := &m.slots[i]
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

// Read replaces the table with one written by Write, reading each value
// with val.
func (m *PQMap[V]) Read(r *snap.Reader, val func(*snap.Reader, *V)) {
	*m = PQMap[V]{}
	size, n := r.Uvarint(), r.Uvarint()
	switch {
	case r.Err() != nil:
		return
	case size == 0 && n == 0:
		return
	case size < pqMinSlots || size&(size-1) != 0 || n*4 > size*3 || size > 4*n+pqMinSlots:
		r.Fail("table of %d entries in %d slots", n, size)
		return
	}
	m.slots = make([]pqSlot[V], size)
	i := -1
	for range n {
		i += int(r.Uvarint())
		if r.Err() != nil {
			return
		}
		if i < 0 || i >= len(m.slots) || m.slots[i].used {
			r.Fail("table entry in slot %d of %d", i, len(m.slots))
			return
		}
		s := &m.slots[i]
		r.Fixed(s.key[:])
		s.q = Q(r.Uvarint())
		s.used = true
		val(r, &s.val)
		m.n++
	}
}
