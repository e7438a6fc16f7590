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
// (Store.pending) and merges them into the bucket, sorted, in one
// transaction once there are mergeIDsAt of them, so that each page rewrite
// carries many IDs.
//
// The buffer is not lost on a crash: the meta bucket records the position
// up to which the bucket is complete ("ids-merged"), and Open rebuilds the
// buffer from the log records after it. The buffer therefore holds at most
// mergeIDsAt IDs plus one group's worth.

const defaultMergeIDsAt = 1 << 16

var keyIDsMerged = []byte("ids-merged")

// idsMerged returns the position up to which the ids bucket is complete.
func idsMerged(meta *bbolt.Bucket) uint64 {
	v := meta.Get(keyIDsMerged)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// loadPendingIDs reads the IDs of the events after the merge mark.
func loadPendingIDs(tx *bbolt.Tx) (map[events.ID]uint64, error) {
	pending := make(map[events.ID]uint64)
	after := idsMerged(tx.Bucket(bucketMeta))
	c := tx.Bucket(bucketLog).Cursor()
	var start [8]byte
	binary.BigEndian.PutUint64(start[:], after+1)
	for k, v := c.Seek(start[:]); k != nil; k, v = c.Next() {
		if len(k) != 8 || len(v) < headerLen {
			return nil, fmt.Errorf("record after position %d does not decode", after)
		}
		var id events.ID
		copy(id[:], v[offID:offCreated])
		pending[id] = binary.BigEndian.Uint64(k)
	}
	return pending, nil
}

// mergeIDs writes the pending IDs into the ids bucket, in key order, and
// moves the merge mark to the last position before this transaction's
// appends. Call it before applyAll.
func (w *writer) mergeIDs() error {
	last := lastPosition(w.b.log)
	ids := make([]events.ID, 0, len(w.pending))
	for id := range w.pending {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b events.ID) int { return bytes.Compare(a[:], b[:]) })
	vals := make([]byte, 8*len(ids))
	for i, id := range ids {
		v := vals[8*i : 8*i+8 : 8*i+8]
		binary.BigEndian.PutUint64(v, w.pending[id])
		if err := w.b.ids.Put(id[:], v); err != nil {
			return err
		}
	}
	mark := w.alloc(8)
	binary.BigEndian.PutUint64(mark, last)
	return w.b.meta.Put(keyIDsMerged, mark)
}
