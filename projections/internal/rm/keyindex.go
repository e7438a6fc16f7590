package rm

// KeyIndex maps person keys to indexes (into a model's records of people).
// It is an open-addressing table of the keys' first eight bytes beside
// the index: person keys are HMAC outputs, so the prefix is itself a
// uniform hash, and a lookup usually reads one cache line, where a Go map
// of a million keys reads its directory, a control word and a slot. The
// caller gives the full key of an index (keyAt), so that the rare keys
// sharing a prefix are told apart. The table is split by the prefix's
// first byte into 256 parts that grow on their own: growing one rehashes a
// few thousand slots within the cache, where doubling one table of
// millions scattered its writes over memory.
type KeyIndex struct {
	parts [256]keyPart
	n     int
}

type keyPart struct {
	slots []keySlot // a power of two long; at most 3/4 full
	n     int
}

type keySlot struct {
	prefix uint64
	i      int32 // index+1; 0: empty
}

// NewKeyIndex returns an empty index (the zero value is one too).
func NewKeyIndex() KeyIndex { return KeyIndex{} }

func prefix(k PersonKey) uint64 {
	return uint64(k[0])<<56 | uint64(k[1])<<48 | uint64(k[2])<<40 | uint64(k[3])<<32 |
		uint64(k[4])<<24 | uint64(k[5])<<16 | uint64(k[6])<<8 | uint64(k[7])
}

// Get returns the index of k.
func (x *KeyIndex) Get(k PersonKey, keyAt func(int32) PersonKey) (int32, bool) {
	p := prefix(k)
	part := &x.parts[p>>56]
	if len(part.slots) == 0 {
		return 0, false
	}
	mask := uint64(len(part.slots) - 1)
	for s := p & mask; ; s = (s + 1) & mask {
		sl := &part.slots[s]
		if sl.i == 0 {
			return 0, false
		}
		if sl.prefix == p && keyAt(sl.i-1) == k {
			return sl.i - 1, true
		}
	}
}

// Put records that k is at index i (k must not be in the index yet).
func (x *KeyIndex) Put(k PersonKey, i int32) {
	p := prefix(k)
	part := &x.parts[p>>56]
	if (part.n+1)*4 > len(part.slots)*3 {
		part.grow()
	}
	part.put(p, i+1)
	part.n++
	x.n++
}

func (t *keyPart) put(p uint64, i1 int32) {
	mask := uint64(len(t.slots) - 1)
	s := p & mask
	for t.slots[s].i != 0 {
		s = (s + 1) & mask
	}
	t.slots[s] = keySlot{prefix: p, i: i1}
}

func (t *keyPart) grow() {
	old := t.slots
	t.slots = make([]keySlot, max(16, 2*len(old)))
	for _, sl := range old {
		if sl.i != 0 {
			t.put(sl.prefix, sl.i)
		}
	}
}

// Len returns the number of keys.
func (x *KeyIndex) Len() int { return x.n }
