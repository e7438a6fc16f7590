package rm

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cqhrss/subsidyledger/events/snap"
)

// TestKeyIndex fills an index past several growths, with a share of keys
// that share their first eight bytes with another, and finds each key at
// its index and no key that was never put.
func TestKeyIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var keys []PersonKey
	var x KeyIndex
	keyAt := func(i int32) *PersonKey { return &keys[i] }
	for i := range 5000 {
		var k PersonKey
		for j := range k {
			k[j] = byte(r.Uint32())
		}
		if i%10 == 9 { // same prefix as an earlier key, different tail
			copy(k[:8], keys[r.IntN(len(keys))][:8])
		}
		keys = append(keys, k)
		x.Put(k, int32(i))
	}
	if x.Len() != len(keys) {
		t.Fatalf("Len = %d; want %d", x.Len(), len(keys))
	}
	for i, k := range keys {
		if got, ok := x.Get(k, keyAt); !ok || got != int32(i) {
			t.Fatalf("Get(key %d) = %d, %v", i, got, ok)
		}
	}
	for range 1000 {
		k := keys[r.IntN(len(keys))]
		k[31] ^= 0xff // same prefix, another key
		if i, ok := x.Get(k, keyAt); ok {
			t.Fatalf("an unknown key was found at %d", i)
		}
		k[0] ^= 0xff
		if i, ok := x.Get(k, keyAt); ok {
			t.Fatalf("an unknown key was found at %d", i)
		}
	}
	var empty KeyIndex
	if _, ok := empty.Get(keys[0], keyAt); ok {
		t.Error("the zero index found a key")
	}

	// Written and read back, it is the same index; read for other records
	// than it was written for, it fails.
	var buf bytes.Buffer
	w := snap.NewWriter(&buf)
	x.Write(w)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	var back KeyIndex
	sr := snap.NewReader(bytes.NewReader(buf.Bytes()))
	back.Read(sr, len(keys))
	if sr.Err() != nil || !sameTables(&back.x, &x.x) || back.Len() != len(keys) {
		t.Fatalf("read back: %v, %d keys; want the index written", sr.Err(), back.Len())
	}
	for i, k := range keys {
		if got, ok := back.Get(k, keyAt); !ok || got != int32(i) {
			t.Fatalf("read back: Get(key %d) = %d, %v", i, got, ok)
		}
	}
	sr = snap.NewReader(bytes.NewReader(buf.Bytes()))
	back.Read(sr, len(keys)-1)
	if sr.Err() == nil {
		t.Fatal("an index read for fewer records than it names: no error")
	}
}

func sameTables(a, b *tagIndex) bool {
	for i := range a.tables {
		if a.tables[i].n != b.tables[i].n || !slices.Equal(a.tables[i].slots, b.tables[i].slots) {
			return false
		}
	}
	return a.n == b.n
}
