package merkle

import (
	"encoding/binary"
	"sync"

	"go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// The tree's stored hashes (tlog.StoredHashIndex order, which is the order
// they are written in) are kept in chunks of chunkHashes consecutive hashes:
// key = index / chunkHashes (uint64 big-endian), value = the chunk's hashes
// concatenated. Only the last chunk is ever rewritten. A 64-hash chunk
// (2 KiB) fits a bbolt page, and bbolt's per-key overhead is paid once per
// 64 hashes.
const chunkHashes = 64

func chunkKey(c int64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(c))
	return k[:]
}

// topLevel is the lowest tree level whose stored hashes the sealer also
// keeps in memory (about 2/2^topLevel of all hashes: 2.5 MB for 10 million
// events). A proof needs one hash per level; those of the upper levels lie
// far apart in the file, so without the copy a proof on a cold cache would
// read a page per level.
const topLevel = 8

// topHashes holds the stored hashes of levels topLevel and above, by level
// and node. Hashes never change once stored, so readers may see more than
// their transaction's tree holds.
type topHashes struct {
	mu     sync.RWMutex
	levels [][]tlog.Hash // levels[l-topLevel][n]
}

// add records the stored hashes of leaf n (as StoredHashes returns them:
// hs[l] is the hash at level l of node n>>l).
func (t *topHashes) add(hs []tlog.Hash) {
	if len(hs) <= topLevel {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for l := topLevel; l < len(hs); l++ {
		for len(t.levels) <= l-topLevel {
			t.levels = append(t.levels, nil)
		}
		t.levels[l-topLevel] = append(t.levels[l-topLevel], hs[l])
	}
}

func (t *topHashes) get(index int64) (tlog.Hash, bool) {
	l, n := tlog.SplitStoredHashIndex(index)
	if l < topLevel {
		return tlog.Hash{}, false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if l-topLevel >= len(t.levels) || n >= int64(len(t.levels[l-topLevel])) {
		return tlog.Hash{}, false
	}
	return t.levels[l-topLevel][n], true
}

// load fills t from the file, for a tree of size leaves.
func (t *topHashes) load(r *hashReader, size int64) error {
	for l := topLevel; size>>l > 0; l++ {
		idx := make([]int64, size>>l)
		for n := range idx {
			idx[n] = tlog.StoredHashIndex(l, int64(n))
		}
		hs, err := r.ReadHashes(idx)
		if err != nil {
			return err
		}
		t.mu.Lock()
		t.levels = append(t.levels, hs)
		t.mu.Unlock()
	}
	return nil
}

// hashReader is a tlog.HashReader over the hashes bucket and, from index
// start on, hashes not yet written (pending); with top set, it takes the
// upper levels from memory. Values read from the bucket are valid only
// until the transaction modifies it: use a reader before writeHashes.
type hashReader struct {
	b        *bbolt.Bucket
	start    int64
	pending  []tlog.Hash
	top      *topHashes
	cacheKey int64
	cache    []byte
}

var _ tlog.HashReader = (*hashReader)(nil)

func newHashReader(b *bbolt.Bucket, start int64) *hashReader {
	return &hashReader{b: b, start: start, cacheKey: -1}
}

func (r *hashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x >= r.start {
			j := x - r.start
			if j >= int64(len(r.pending)) {
				return nil, errorf(CodeCorrupt, "read hashes", "stored hash %d is beyond the tree (%d stored)", x, r.start+int64(len(r.pending)))
			}
			out[i] = r.pending[j]
			continue
		}
		if r.top != nil {
			if h, ok := r.top.get(x); ok {
				out[i] = h
				continue
			}
		}
		c := x / chunkHashes
		if c != r.cacheKey {
			r.cache = r.b.Get(chunkKey(c))
			r.cacheKey = c
		}
		off := int(x%chunkHashes) * tlog.HashSize
		if off+tlog.HashSize > len(r.cache) {
			return nil, errorf(CodeCorrupt, "read hashes", "stored hash %d is missing from the sealer's file", x)
		}
		copy(out[i][:], r.cache[off:])
	}
	return out, nil
}

// writeHashes writes hs as the stored hashes from index start on, after
// the start hashes already in b.
func writeHashes(b *bbolt.Bucket, start int64, hs []tlog.Hash) error {
	i := start
	for len(hs) > 0 {
		c, off := i/chunkHashes, int(i%chunkHashes)
		buf := make([]byte, 0, chunkHashes*tlog.HashSize)
		if off > 0 {
			v := b.Get(chunkKey(c))
			if len(v) != off*tlog.HashSize {
				return errorf(CodeCorrupt, "write hashes", "chunk %d holds %d bytes where %d were due", c, len(v), off*tlog.HashSize)
			}
			buf = append(buf, v...)
		}
		k := min(chunkHashes-off, len(hs))
		for _, h := range hs[:k] {
			buf = append(buf, h[:]...)
		}
		if err := b.Put(chunkKey(c), buf); err != nil {
			return err
		}
		i += int64(k)
		hs = hs[k:]
	}
	return nil
}
