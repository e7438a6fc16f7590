package bolt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/cqhrss/subsidyledger/events"
)

// The ids bucket maps every stored event ID to its position, for permanent
// idempotency. Event IDs are random (UUIDs, or hashes from DeriveID), so
// inserting each one as it is appended would touch a different page of the
// bucket per event, and a commit of 1,000 events would rewrite hundreds of
// pages. Instead the writer buffers the IDs of recent events in memory
// (Store.pending) and merges them into the bucket in key order, so that
// each page rewrite carries many IDs.
//
// The merge is spread over commits. The ID space is cut into idSlices
// slices by the first bits of the ID; once mergeIDsAt IDs are buffered,
// each commit also merges the buffered IDs of the next slice in turn (of
// more slices when the buffer holds several times mergeIDsAt). A slice
// covers 1/idSlices of the bucket's pages, so a commit rewrites at most
// that share of them. Merging everything at once stalled the writer for
// longer the larger the bucket grew (0.3 s at 800,000 IDs, and growing
// linearly), and every append waiting behind it.
//
// The buffer is not lost on a crash: the meta bucket records, per slice,
// the position up to which the bucket holds that slice's IDs
// ("ids-merged-slices"; "ids-merged" keeps the least of them, which a
// store that merged all slices at once wrote alone), and the writer
// rebuilds the buffer from the log records after the least mark before its
// first append (loadPending), off Open's path: reads need not wait for it.
// The buffer therefore holds about mergeIDsAt IDs plus a few groups' worth.
//
// mergeIDsAt is 2^20: a slice then merges about 16,000 IDs at a time, more
// than its share of the bucket's pages once the bucket holds millions, so
// each page rewrite carries many IDs. With 2^16 a merge carried about
// 1,000, each in a page of its own, and as the bucket grew the merges came
// to dominate what the store wrote. Appending 3,000,000 events in commits
// of 200 (100 streams of 2) took 23.3 s and 721,220 page writes instead of
// 28.9 s and 1,179,081; the longest commit, one merging a slice, rose from
// 29 to 47 ms. The buffer costs about 45 MB of
// pointer-free memory, and the writer reads up to that many events of the
// log again after Open (0.34 s for 1,042,707 buffered IDs; 0.5-1 s on a
// 3 GB store after a 10-minute soak).

const (
	defaultMergeIDsAt = 1 << 20
	idSliceBits       = 6
	idSlices          = 1 << idSliceBits
)

var (
	keyIDsMerged       = []byte("ids-merged")
	keyIDsMergedSlices = []byte("ids-merged-slices")
)

// idSlice returns the slice of the ID space that id falls in.
func idSlice(id events.ID) int { return int(id[0] >> (8 - idSliceBits)) }

// pendingIDs are the committed event IDs not yet merged into the ids
// bucket, by slice, with each slice's merge mark.
type pendingIDs struct {
	slices [idSlices]map[events.ID]uint64
	marks  [idSlices]uint64 // the bucket holds the slice's IDs up to this position
	n      int
	next   int // the slice to merge next
}

func newPendingIDs() *pendingIDs {
	p := &pendingIDs{}
	for i := range p.slices {
		p.slices[i] = make(map[events.ID]uint64)
	}
	return p
}

func (p *pendingIDs) get(id events.ID) (uint64, bool) {
	pos, ok := p.slices[idSlice(id)][id]
	return pos, ok
}

func (p *pendingIDs) add(id events.ID, pos uint64) {
	m := p.slices[idSlice(id)]
	n := len(m)
	m[id] = pos
	p.n += len(m) - n
}

// due returns the slices a commit should merge: none while fewer than at
// IDs are buffered, then one per at IDs buffered, in turn.
func (p *pendingIDs) due(at int) []int {
	k := min(p.n/max(at, 1), idSlices)
	out := make([]int, 0, k)
	for i := range k {
		out = append(out, (p.next+i)%idSlices)
	}
	return out
}

// merged records that the transaction that merged the slices which up to position
// last committed; fresh are the IDs that transaction appended.
func (p *pendingIDs) merged(which []int, last uint64, fresh map[events.ID]uint64) {
	for _, sl := range which {
		p.n -= len(p.slices[sl])
		p.slices[sl] = make(map[events.ID]uint64)
		p.marks[sl] = last
	}
	if len(which) > 0 {
		p.next = (which[len(which)-1] + 1) % idSlices
	}
	for id, pos := range fresh {
		p.add(id, pos)
	}
}

// readMarks reads the merge marks: per slice, or, in a store that merged
// all slices at once, the one mark for all.
func readMarks(meta *bbolt.Bucket) ([idSlices]uint64, error) {
	var marks [idSlices]uint64
	if v := meta.Get(keyIDsMergedSlices); v != nil {
		if len(v) != 8*idSlices {
			return marks, fmt.Errorf("the ids merge marks are %d bytes; want %d", len(v), 8*idSlices)
		}
		for i := range marks {
			marks[i] = binary.BigEndian.Uint64(v[8*i:])
		}
		return marks, nil
	}
	if v := meta.Get(keyIDsMerged); len(v) == 8 {
		for i := range marks {
			marks[i] = binary.BigEndian.Uint64(v)
		}
	}
	return marks, nil
}

// loadPendingIDs reads the IDs of the events after their slice's mark.
func loadPendingIDs(tx *bbolt.Tx) (*pendingIDs, error) {
	p := newPendingIDs()
	marks, err := readMarks(tx.Bucket(bucketMeta))
	if err != nil {
		return nil, err
	}
	p.marks = marks
	after := slices.Min(marks[:])
	c := tx.Bucket(bucketLog).Cursor()
	if k, _ := c.Last(); len(k) == 8 {
		// Positions are dense and IDs random: a slice holds about its
		// share of the positions after its mark. Sized at once, no map
		// grows.
		last := binary.BigEndian.Uint64(k)
		for i, m := range marks {
			if n := (last - min(m, last)) / idSlices; n > 0 {
				p.slices[i] = make(map[events.ID]uint64, n+n/8)
			}
		}
	}
	var start [8]byte
	binary.BigEndian.PutUint64(start[:], after+1)
	for k, v := c.Seek(start[:]); k != nil; k, v = c.Next() {
		if len(k) != 8 || len(v) < headerLen {
			return nil, fmt.Errorf("record after position %d does not decode", after)
		}
		var id events.ID
		copy(id[:], v[offID:offCreated])
		if pos := binary.BigEndian.Uint64(k); pos > marks[idSlice(id)] {
			p.add(id, pos)
		}
	}
	return p, nil
}

// mergeIDs writes the pending IDs of the slices which into the ids
// bucket, in key order, and moves their marks to the last position before
// this transaction's appends. Call it before applyAll.
func (w *writer) mergeIDs(which []int) error {
	last := lastPosition(w.b.log)
	marks := w.pending.marks
	for _, sl := range which {
		m := w.pending.slices[sl]
		ids := make([]events.ID, 0, len(m))
		for id := range m {
			ids = append(ids, id)
		}
		slices.SortFunc(ids, func(a, b events.ID) int { return bytes.Compare(a[:], b[:]) })
		vals := make([]byte, 8*len(ids))
		for i, id := range ids {
			v := vals[8*i : 8*i+8 : 8*i+8]
			binary.BigEndian.PutUint64(v, m[id])
			if err := w.b.ids.Put(id[:], v); err != nil {
				return err
			}
		}
		marks[sl] = last
	}
	mv := w.alloc(8 * idSlices)
	least := marks[0]
	for i, m := range marks {
		binary.BigEndian.PutUint64(mv[8*i:], m)
		least = min(least, m)
	}
	if err := w.b.meta.Put(keyIDsMergedSlices, mv); err != nil {
		return err
	}
	lv := w.alloc(8)
	binary.BigEndian.PutUint64(lv, least)
	return w.b.meta.Put(keyIDsMerged, lv)
}
