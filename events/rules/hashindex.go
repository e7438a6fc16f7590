package rules

import (
	"cmp"
	"encoding/binary"
	"iter"
	"math/bits"
	"slices"
)

// hashKey is a key whose leading bytes are uniformly distributed: a
// SHA-256-derived event id or natural-key hash.
type hashKey interface{ ~[16]byte }

// hashIndex maps hash keys to values, in two parts: a frozen part, a slice
// sorted by key with a table of where each run of leading bits starts, and a
// live map of what was set since. The World's two largest maps (an entry
// for every event) are hashIndexes so that a restart restores them by
// reading sorted entries in one pass, where filling a map of ten million
// entries took most of the restore. A lookup in the frozen part reads its
// bucket (a handful of entries on average) after the start table.
//
// The zero hashIndex is empty and ready to use.
type hashIndex[K hashKey, V any] struct {
	frozen []hashEntry[K, V] // sorted by key, distinct keys
	starts []uint32          // frozen[starts[b]:starts[b+1]] hold the keys whose top `bits` bits are b
	bits   uint
	live   map[K]V // set since the freeze; overrides frozen
	// shadowed counts frozen keys that live overrides, so that len is exact.
	shadowed int
}

type hashEntry[K hashKey, V any] struct {
	key K
	val V
}

func top64[K hashKey](k K) uint64 { return binary.BigEndian.Uint64(k[:8]) }

func compareKeys[K hashKey](a, b K) int {
	if c := cmp.Compare(top64(a), top64(b)); c != 0 {
		return c
	}
	return cmp.Compare(binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:]))
}

func (x *hashIndex[K, V]) len() int { return len(x.frozen) + len(x.live) - x.shadowed }

func (x *hashIndex[K, V]) get(k K) (V, bool) {
	if v, ok := x.live[k]; ok {
		return v, true
	}
	return x.getFrozen(k)
}

func (x *hashIndex[K, V]) getFrozen(k K) (V, bool) {
	if len(x.frozen) > 0 {
		b := top64(k) >> (64 - x.bits)
		run := x.frozen[x.starts[b]:x.starts[b+1]]
		if i, ok := slices.BinarySearchFunc(run, k, func(e hashEntry[K, V], k K) int { return compareKeys(e.key, k) }); ok {
			return run[i].val, true
		}
	}
	var zero V
	return zero, false
}

func (x *hashIndex[K, V]) set(k K, v V) {
	if x.live == nil {
		x.live = make(map[K]V)
	}
	if _, ok := x.live[k]; !ok {
		if _, ok := x.getFrozen(k); ok {
			x.shadowed++
		}
	}
	x.live[k] = v
}

// sorted yields every entry in key order, live values over frozen ones.
func (x *hashIndex[K, V]) sorted() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		live := x.sortedLive()
		i, j := 0, 0
		for i < len(x.frozen) || j < len(live) {
			var e hashEntry[K, V]
			switch {
			case j == len(live) || i < len(x.frozen) && compareKeys(x.frozen[i].key, live[j].key) < 0:
				e = x.frozen[i]
				i++
			case i < len(x.frozen) && x.frozen[i].key == live[j].key:
				e = live[j]
				i, j = i+1, j+1
			default:
				e = live[j]
				j++
			}
			if !yield(e.key, e.val) {
				return
			}
		}
	}
}

// sortedLive returns the live entries sorted by key: counted out into
// buckets by their leading bits (the keys are uniform hashes, so a bucket
// holds a few), then each bucket sorted. Sorting ten million entries by
// comparison alone took seconds.
func (x *hashIndex[K, V]) sortedLive() []hashEntry[K, V] {
	n := len(x.live)
	b := bucketBits(n)
	starts := make([]uint32, 1<<b+1)
	for k := range x.live {
		starts[top64(k)>>(64-b)+1]++
	}
	for i := 1; i < len(starts); i++ {
		starts[i] += starts[i-1]
	}
	out := make([]hashEntry[K, V], n)
	next := slices.Clone(starts)
	for k, v := range x.live {
		i := top64(k) >> (64 - b)
		out[next[i]] = hashEntry[K, V]{k, v}
		next[i]++
	}
	for i := range 1 << b {
		if run := out[starts[i]:starts[i+1]]; len(run) > 1 {
			slices.SortFunc(run, func(a, b hashEntry[K, V]) int { return compareKeys(a.key, b.key) })
		}
	}
	return out
}

// bucketBits is how many leading bits of a key pick its bucket among n
// entries: about eight entries a bucket, at least one bit.
func bucketBits(n int) uint { return uint(max(1, bits.Len(uint(n/8)))) }

// freeze moves the live entries into the frozen part.
func (x *hashIndex[K, V]) freeze() {
	if len(x.live) == 0 {
		x.live = nil
		return
	}
	if len(x.frozen) == 0 {
		x.setFrozen(x.sortedLive()) // nothing to merge with
		return
	}
	all := make([]hashEntry[K, V], 0, x.len())
	for k, v := range x.sorted() {
		all = append(all, hashEntry[K, V]{k, v})
	}
	x.setFrozen(all)
}

// setFrozen makes entries (sorted by key, distinct) the whole index.
func (x *hashIndex[K, V]) setFrozen(entries []hashEntry[K, V]) {
	x.frozen, x.live, x.shadowed = entries, nil, 0
	x.bits = bucketBits(len(entries))
	x.starts = make([]uint32, 1<<x.bits+1)
	i := 0
	for b := range 1 << x.bits {
		x.starts[b] = uint32(i)
		for i < len(entries) && top64(entries[i].key)>>(64-x.bits) == uint64(b) {
			i++
		}
	}
	x.starts[1<<x.bits] = uint32(len(entries))
	if len(entries) == 0 {
		x.frozen, x.starts, x.bits = nil, nil, 0
	}
}
