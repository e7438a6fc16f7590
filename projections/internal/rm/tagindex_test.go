package rm

import (
	"encoding/binary"
	"math/bits"
	"testing"
)

// twin returns a key other than k whose hash (with q) differs from k's
// only in the lowest bit: the same table and the same tag, so only the
// comparison of keys tells them apart.
func twin(t *testing.T, k PersonKey, q Q) PersonKey {
	const golden = 0x9e3779b97f4a7c15
	inv := uint64(golden) // Newton's iteration for golden's inverse mod 2^64
	for range 6 {
		inv *= 2 - golden*inv
	}
	h := keyHash(&k, q)
	x1, x2 := h*inv, (h^1)*inv
	k2 := k
	binary.LittleEndian.PutUint64(k2[0:], binary.LittleEndian.Uint64(k[0:])^x1^x2)
	h2 := keyHash(&k2, q)
	ti1, tag1 := split(h)
	ti2, tag2 := split(h2)
	if k2 == k || ti1 != ti2 || tag1 != tag2 || bits.OnesCount64(h^h2) != 1 {
		t.Fatalf("no twin: hashes %x and %x", h, h2)
	}
	return k2
}

// TestTagCollisions puts keys that share a table and a tag: each is found
// at its own entry, and one that was not put is not found.
func TestTagCollisions(t *testing.T) {
	keys := []PersonKey{testKey(1, false)}
	keys = append(keys, twin(t, keys[0], 0))
	keyAt := func(i int32) *PersonKey { return &keys[i] }
	var x KeyIndex
	x.Put(keys[0], 0)
	if i, ok := x.Get(keys[1], keyAt); ok {
		t.Fatalf("the twin of a key was found at %d before it was put", i)
	}
	x.Put(keys[1], 1)
	for want, k := range keys {
		if got, ok := x.Get(k, keyAt); !ok || got != int32(want) {
			t.Fatalf("Get(key %d) = %d, %v", want, got, ok)
		}
	}

	var m PQMap[int]
	k, q := testKey(2, true), Q(5)
	k2 := twin(t, k, q)
	*m.Put(k, q) = 1
	if v := m.Get(k2, q); v != nil {
		t.Fatalf("the twin of a key was found with %d before it was put", *v)
	}
	*m.Put(k2, q) = 2
	if a, b := m.Get(k, q), m.Get(k2, q); a == nil || b == nil || *a != 1 || *b != 2 || m.Len() != 2 {
		t.Fatalf("after putting twins: %v, %v, %d entries", a, b, m.Len())
	}
}

// TestTagIndexGrows fills one table well past its first size: every entry
// is found after each growth, and the table stays at most three quarters
// full.
func TestTagIndexGrows(t *testing.T) {
	var x tagIndex
	var hs []uint64
	for i := uint64(0); len(hs) < 1000; i++ {
		h := (i * 0x9e3779b97f4a7c15) >> dirBits // all in table 0
		hs = append(hs, h)
		x.insert(h, int32(len(hs)-1))
		for e, h := range hs {
			if got := x.lookup(h, func(g int32) bool { return g == int32(e) }); got != int32(e) {
				t.Fatalf("after %d entries: entry %d not found (%d)", len(hs), e, got)
			}
		}
	}
	tb := &x.tables[0]
	if tb.n != 1000 || x.n != 1000 || tb.n*4 > len(tb.slots)*3 || len(tb.slots) != 2048 {
		t.Fatalf("table 0: %d entries in %d slots, index %d", tb.n, len(tb.slots), x.n)
	}
}
