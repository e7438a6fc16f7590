package rm

import (
	"math"

	"github.com/cqhrss/subsidyledger/events/snap"
)

// PQMap is a hash table from a person and a qualification to a V, for the
// read models that look one up for most events of a rebuild. The entries
// (key, qualification, value) are kept in insertion order in chunks, so
// none is ever moved and a pointer to a value stays valid; a tagIndex of
// 8-byte slots finds them (a lookup usually reads one slot and its entry,
// where a Go map reads a control word and a slot and hashes and compares
// a 33-byte key through calls). Entries are never removed. Not safe for
// concurrent writers.
type PQMap[V any] struct {
	x       tagIndex
	entries Chunks[pqEntry[V]]
}

type pqEntry[V any] struct {
	key PersonKey
	q   Q
	val V
}

// find returns the entry of (k, q), whose hash is h, or -1.
func (m *PQMap[V]) find(h uint64, k *PersonKey, q Q) int32 {
	return m.x.lookup(h, func(e int32) bool { p := m.entries.At(e); return p.key == *k && p.q == q })
}

// Get returns the value of (k, q), nil if there is none.
func (m *PQMap[V]) Get(k PersonKey, q Q) *V {
	e := m.find(keyHash(&k, q), &k, q)
	if e < 0 {
		return nil
	}
	return &m.entries.At(e).val
}

// Put returns the value of (k, q), adding a zero value if there is none.
func (m *PQMap[V]) Put(k PersonKey, q Q) *V {
	h := keyHash(&k, q)
	e := m.find(h, &k, q)
	if e < 0 {
		e = m.entries.Append(pqEntry[V]{key: k, q: q})
		m.x.insert(h, e)
	}
	return &m.entries.At(e).val
}

// Len returns the number of entries.
func (m *PQMap[V]) Len() int { return m.entries.Len() }

// Write writes the number of entries, then each entry in the order it was
// added: the person key, the qualification, and the value as val writes
// it; then the hash index.
func (m *PQMap[V]) Write(w *snap.Writer, val func(*snap.Writer, *V)) {
	w.Uvarint(uint64(m.entries.Len()))
	for _, p := range m.entries.All() {
		w.Fixed(p.key[:])
		w.Uvarint(uint64(p.q))
		val(w, &p.val)
	}
	m.x.write(w)
}

// Read replaces the map with the one written by Write, reading each value
// with val.
func (m *PQMap[V]) Read(r *snap.Reader, val func(*snap.Reader, *V)) {
	*m = PQMap[V]{}
	n := r.Len(math.MaxInt32)
	var p pqEntry[V] // outside the loop: &p.val escapes to val, one allocation
	for range n {
		p = pqEntry[V]{}
		r.Fixed(p.key[:])
		q := r.Uvarint()
		if q > math.MaxUint8 {
			r.Fail("qualification %d", q)
		}
		p.q = Q(q)
		val(r, &p.val)
		if r.Err() != nil {
			return
		}
		m.entries.Append(p)
	}
	m.x.read(r, m.entries.Len())
}
