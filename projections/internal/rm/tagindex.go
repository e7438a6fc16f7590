package rm

import (
	"encoding/binary"
	"math/bits"

	"github.com/cqhrss/subsidyledger/events/snap"
)

// tagIndex is the hash table under PQMap and KeyIndex. It maps a hash to
// the numbers of entries that its owner keeps elsewhere, in insertion
// order, beside their keys. A slot is 8 bytes: 32 bits of the hash (the
// tag) and the entry's number plus one (0: empty), so a probe reads eight
// slots per cache line, growing moves 8 bytes per entry, and a table
// holds no key; the owner confirms a tag that matches against the entry's
// key. Open addressing with linear probing; the slots are spread over 256
// tables by the top bits of the hash, each growing on its own when three
// quarters are in use, so that growing copies a small table at a time.
// Entries are never removed.
//
// Where a slot lands depends on the order of insertion and on when each
// table grew; a snapshot holds the slots as they are (write), and a
// restore reads them back (read) instead of inserting every entry again:
// for a million people that probing and growing took about half a second.
type tagIndex struct {
	tables [1 << dirBits]tagTable
	n      int
}

// dirBits is how many top bits of the hash choose the table.
const dirBits = 8

// minSlots is the size of a table's first array.
const minSlots = 16

type tagTable struct {
	slots []tagSlot
	n     int
}

type tagSlot struct {
	tag uint32
	e   int32 // entry + 1; 0: empty
}

// keyHash hashes a person key and a qualification. Person keys are HMAC
// outputs, but the hash folds all of the key in so that made-up keys
// spread too.
func keyHash(k *PersonKey, q Q) uint64 {
	h := binary.LittleEndian.Uint64(k[0:]) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(k[8:]), 17) ^
		bits.RotateLeft64(binary.LittleEndian.Uint64(k[16:]), 31) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(k[24:]), 47) ^ uint64(q)
	return h * 0x9e3779b97f4a7c15
}

// split divides a hash into the number of its table (the top bits) and
// the tag (the 32 bits after them). The tag chooses the slot a probe
// starts at, so a table grows from its slots alone.
func split(h uint64) (int, uint32) { return int(h >> (64 - dirBits)), uint32(h >> (64 - dirBits - 32)) }

// home returns the slot where the probe for tag starts: its top bits.
func (t *tagTable) home(tag uint32) int {
	return int(tag >> (32 - bits.TrailingZeros(uint(len(t.slots)))))
}

// lookup returns the entry of hash h for which same holds, or -1.
func (x *tagIndex) lookup(h uint64, same func(e int32) bool) int32 {
	ti, tag := split(h)
	t := &x.tables[ti]
	if t.n == 0 {
		return -1
	}
	mask := len(t.slots) - 1
	for i := t.home(tag); ; i = (i + 1) & mask {
		s := t.slots[i]
		if s.e == 0 {
			return -1
		}
		if s.tag == tag && same(s.e-1) {
			return s.e - 1
		}
	}
}

// insert records entry e under hash h, which the caller knows is not
// there yet.
func (x *tagIndex) insert(h uint64, e int32) {
	ti, tag := split(h)
	t := &x.tables[ti]
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	t.place(tag, e+1)
	x.n++
}

// place puts a slot's entry+1 in the first empty slot of the tag's probe.
func (t *tagTable) place(tag uint32, e1 int32) {
	mask := len(t.slots) - 1
	i := t.home(tag)
	for t.slots[i].e != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = tagSlot{tag: tag, e: e1}
	t.n++
}

// grow doubles the table's slots and moves the entries over in slot
// order.
func (t *tagTable) grow() {
	old := t.slots
	t.slots = make([]tagSlot, max(2*len(old), minSlots))
	t.n = 0
	for _, s := range old {
		if s.e != 0 {
			t.place(s.tag, s.e)
		}
	}
}

// maxTableSlots bounds a table a snapshot may hold: 2^31 slots in all.
const maxTableSlots = 1 << (31 - dirBits)

// write writes each table's slots: their number, then 8 bytes each (the
// tag and the entry plus one, little-endian).
func (x *tagIndex) write(w *snap.Writer) {
	var buf []byte
	for i := range x.tables {
		t := &x.tables[i]
		w.Uvarint(uint64(len(t.slots)))
		buf = buf[:0]
		for _, s := range t.slots {
			buf = binary.LittleEndian.AppendUint32(buf, s.tag)
			buf = binary.LittleEndian.AppendUint32(buf, uint32(s.e))
		}
		w.Fixed(buf)
	}
}

// read replaces the index with the one write wrote for entries entries.
// A table that is not a power of two of at least minSlots slots, or is
// fuller than insert lets it be, or a slot naming an entry that does not
// exist, or a count other than entries fails r.
func (x *tagIndex) read(r *snap.Reader, entries int) {
	*x = tagIndex{}
	var buf []byte
	for i := range x.tables {
		t := &x.tables[i]
		n := r.LenOf(maxTableSlots, 8)
		if r.Err() != nil {
			return
		}
		if n == 0 {
			continue
		}
		if n < minSlots || n&(n-1) != 0 {
			r.Fail("hash table %d has %d slots", i, n)
			return
		}
		if cap(buf) < 8*n {
			buf = make([]byte, 8*n)
		}
		buf = buf[:8*n]
		r.Block(buf)
		if r.Err() != nil {
			return
		}
		t.slots = make([]tagSlot, n)
		for j := range t.slots {
			s := tagSlot{tag: binary.LittleEndian.Uint32(buf[8*j:]), e: int32(binary.LittleEndian.Uint32(buf[8*j+4:]))}
			if s.e < 0 || int(s.e) > entries {
				r.Fail("hash table %d names entry %d of %d", i, s.e-1, entries)
				return
			}
			if s.e != 0 {
				t.n++
			}
			t.slots[j] = s
		}
		if t.n*4 > n*3 { // a full table: a probe for an absent key would not end
			r.Fail("hash table %d holds %d entries in %d slots", i, t.n, n)
			return
		}
		x.n += t.n
	}
	if x.n != entries {
		r.Fail("the hash tables hold %d entries; want %d", x.n, entries)
	}
}
