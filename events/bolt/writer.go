package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"go.etcd.io/bbolt"

	"github.com/cqhrss/subsidyledger/events"
)

// Bounds on one group commit: it stops taking queued appends once it holds
// this many appends or events (a single larger append still goes alone).
const (
	maxGroupAppends = 1024
	maxGroupEvents  = 64 << 10
)

// writeLoop is the single writer. It ends when Close has closed reqs and
// every queued append is answered.
func (s *Store) writeLoop() {
	defer close(s.writerDone)
	defer s.loadPending() // if never loaded: only closes pendingLoaded
	if !s.deferIDs {
		s.loadPending()
	}
	var group []*appendReq
	last := 0 // callers in the previous group
	for rs := range s.reqs {
		s.loadPending() // no-op once loaded
		if len(rs) == 0 {
			continue // LoadIDs
		}
		group = append(group[:0], rs...)
		n := eventsIn(rs)
		if last > 1 {
			// Callers are concurrent: the ones just answered are about to
			// append again. Let them queue before taking the group, as
			// long as more keep arriving (a few scheduler turns, no sleep).
			// Not after a group of one caller (an AppendBatch, or appends
			// one at a time): it waits for its answer before it appends
			// again, and on a busy machine each turn can cost milliseconds.
			for i, q := 0, -1; i < 4 && len(s.reqs) > q; i++ {
				q = len(s.reqs)
				runtime.Gosched()
			}
		}
		callers := 1
	drain:
		for len(group) < maxGroupAppends && n < maxGroupEvents {
			select {
			case rs, ok := <-s.reqs:
				if !ok {
					break drain
				}
				group = append(group, rs...)
				n += eventsIn(rs)
				callers++
			default:
				break drain
			}
		}
		last = callers
		s.commitGroup(group)
		clear(group)
	}
}

func eventsIn(rs []*appendReq) int {
	n := 0
	for _, r := range rs {
		n += len(r.evs)
	}
	return n
}

// commitGroup commits a group of appends and answers each.
func (s *Store) commitGroup(group []*appendReq) {
	if s.hookGroup != nil {
		s.hookGroup(len(group))
	}
	live := make([]*appendReq, 0, len(group))
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.err = err // the caller has gone; do not apply
			continue
		}
		live = append(live, r)
	}
	if len(live) > 0 {
		if err := s.commit(live, true); err != nil && len(live) > 1 {
			// The transaction as a whole failed. Commit the appends one by
			// one, so that an append that cannot be stored (too big for the
			// space left) does not take the others down with it; but not
			// those of an AppendBatch, which fail together.
			for i := range live {
				if live[i].whole {
					continue
				}
				s.commit(live[i:i+1], false)
			}
		}
	}
	for _, r := range group {
		close(r.done)
	}
}

// loadPending loads the IDs of an existing file that are not merged into
// the ids bucket yet, before the writer's first append; a read-only store
// never appends and does not need them.
//
// Only the writer calls it; later calls do nothing.
func (s *Store) loadPending() {
	if s.idsLoaded {
		return
	}
	s.idsLoaded = true
	defer close(s.pendingLoaded)
	if s.pending != nil || s.readOnly || s.closed.Load() {
		return
	}
	err := s.view("load ids", "", func(tx *bbolt.Tx) error {
		p, err := loadPendingIDs(tx)
		s.pending = p
		return err
	})
	if err != nil {
		s.pendingErr = &events.Error{Code: events.CodeCorrupt, Op: "append", Detail: fmt.Sprintf("%s: loading the IDs of recent events: %v", s.path, err)}
	}
}

// LoadIDs has the writer load the IDs of recent events now, if
// Options.DeferIDLoad put that off, rather than at the first append. It
// does not wait for the load.
func (s *Store) LoadIDs() {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return
	}
	select {
	case s.reqs <- nil:
	default: // appends are queued: the first of them loads the IDs
	}
}

// errWrite marks a failure while writing an append that had passed
// validation: the transaction holds part of it and must be rolled back.
type errWrite struct{ err error }

func (e errWrite) Error() string { return e.err.Error() }

// commit applies reqs in order in one transaction and commits it, setting
// each request's res or err. If mayMerge, the transaction also moves the
// buffered event IDs into the ids bucket when the buffer is full. It
// returns the error that failed the transaction as a whole, if any (then
// every request has failed).
func (s *Store) commit(reqs []*appendReq, mayMerge bool) error {
	dropped := make([]bool, len(reqs)) // failed mid-write: left out of retries
	if s.readOnly {
		s.failAll(reqs, dropped, unavailable("", fmt.Sprintf("%s was opened read-only", s.path), nil))
		return nil
	}
	if s.pendingErr != nil {
		s.failAll(reqs, dropped, s.pendingErr)
		return nil
	}
	var merge []int
	if mayMerge {
		merge = s.pending.due(s.mergeIDsAt)
	}
	for {
		tx, err := s.db.Begin(true)
		if err != nil {
			s.failAll(reqs, dropped, unavailable("", "cannot begin a write transaction", s.diagnose(err)))
			return err
		}
		w := &writer{
			b:       bucketsOf(tx),
			now:     time.Now().UnixNano(),
			pending: s.pending,
			fresh:   make(map[events.ID]uint64),
			hookPut: s.hookPut,
		}
		if len(merge) > 0 {
			if err := w.mergeIDs(merge); err != nil {
				// Not worth failing appends for: try again next time.
				tx.Rollback()
				merge = nil
				continue
			}
		}
		retry, err := w.applyAll(reqs, dropped)
		if retry {
			tx.Rollback()
			continue
		}
		if err != nil {
			tx.Rollback()
			s.failAll(reqs, dropped, err)
			return err
		}
		if err := tx.Commit(); err != nil {
			s.failAll(reqs, dropped, unavailable("", "commit failed", s.diagnose(err)))
			return err
		}
		// Committed: the IDs written are now the store's.
		s.pending.merged(merge, w.first, w.fresh)
		if w.pos > w.first {
			s.head.Store(w.pos)
			s.signal()
		}
		return nil
	}
}

// failAll fails every request not dropped with err, naming its stream.
func (s *Store) failAll(reqs []*appendReq, dropped []bool, err error) {
	for i, r := range reqs {
		if dropped[i] {
			continue
		}
		rerr := err
		var e *events.Error
		if errors.As(err, &e) {
			c := *e
			c.Stream = r.stream
			rerr = &c
		}
		r.res, r.err = events.AppendResult{}, rerr
	}
}

func unavailable(stream, detail string, err error) error {
	return &events.Error{Code: events.CodeUnavailable, Op: "append", Stream: stream, Detail: detail, Err: err}
}

type buckets struct {
	meta, log, streams, index, ids *bbolt.Bucket
}

func bucketsOf(tx *bbolt.Tx) buckets {
	b := buckets{
		meta:    tx.Bucket(bucketMeta),
		log:     tx.Bucket(bucketLog),
		streams: tx.Bucket(bucketStreams),
		index:   tx.Bucket(bucketIndex),
		ids:     tx.Bucket(bucketIDs),
	}
	if tx.Writable() {
		// Log keys arrive in order: fill its pages fully.
		b.log.FillPercent = 1.0
	}
	return b
}

// writer applies appends inside one write transaction.
type writer struct {
	b     buckets
	now   int64
	first uint64 // the last position before the transaction
	pos   uint64 // the last position written

	// Event IDs live in the ids bucket, or, for the latest events, in
	// pending (committed, not yet merged into the bucket: see ids.go) or in
	// fresh (written by this transaction).
	pending *pendingIDs
	fresh   map[events.ID]uint64

	arena   []byte // keys and values that must stay valid until the commit
	hookPut func(string, uint64) error
}

func (w *writer) alloc(n int) []byte {
	if cap(w.arena)-len(w.arena) < n {
		w.arena = make([]byte, 0, max(n, 16<<10))
	}
	s := len(w.arena)
	w.arena = w.arena[:s+n]
	return w.arena[s : s+n : s+n]
}

// position returns where the event with id is stored, if it is.
func (w *writer) position(id events.ID) (uint64, bool) {
	if p, ok := w.fresh[id]; ok {
		return p, true
	}
	if p, ok := w.pending.get(id); ok {
		return p, true
	}
	if v := w.b.ids.Get(id[:]); len(v) == 8 {
		return binary.BigEndian.Uint64(v), true
	}
	return 0, false
}

// applyAll applies every request not dropped, in order. When a write fails
// after validation it drops that request and asks for a retry (the caller
// rolls back). A panic inside bbolt (a damaged page) fails the transaction.
func (w *writer) applyAll(reqs []*appendReq, dropped []bool) (retry bool, err error) {
	// A damaged page can send bbolt outside the mapped file: a memory
	// fault, made a panic here (see view).
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = &events.Error{Code: events.CodeCorrupt, Op: "append", Detail: fmt.Sprintf("storage engine failed: %v", p)}
		}
	}()
	w.first = lastPosition(w.b.log)
	w.pos = w.first
	for i, r := range reqs {
		if dropped[i] {
			continue
		}
		res, err := w.apply(r)
		var we errWrite
		if errors.As(err, &we) {
			dropped[i] = true
			r.res, r.err = events.AppendResult{}, unavailable(r.stream, "write failed", we.err)
			return true, nil
		}
		r.res, r.err = res, err
	}
	return false, nil
}

// head is a stream's entry in the streams bucket.
type head struct {
	revision uint64
	position uint64
	hash     events.Hash
}

const headLen = 48

// parseStream parses a stream's value in the streams bucket: its head,
// then its runs while they are inline (index.go).
func parseStream(v []byte) (h head, inline []byte, ok bool) {
	if len(v) < headLen || (len(v)-headLen)%runLen != 0 || len(v) > headLen+maxInlineRuns*runLen {
		return head{}, nil, false
	}
	h, ok = parseHead(v[:headLen])
	return h, v[headLen:], ok
}

// putHead writes h into the first headLen bytes of dst.
func putHead(dst []byte, h head) {
	binary.BigEndian.PutUint64(dst, h.revision)
	binary.BigEndian.PutUint64(dst[8:], h.position)
	copy(dst[16:headLen], h.hash[:])
}

func parseHead(v []byte) (head, bool) {
	if len(v) != headLen {
		return head{}, false
	}
	var h head
	h.revision = binary.BigEndian.Uint64(v)
	h.position = binary.BigEndian.Uint64(v[8:])
	copy(h.hash[:], v[16:])
	return h, true
}

// apply validates r against the transaction's state and, if it passes,
// writes it. Validation only reads: an append it rejects leaves no trace.
// A failure while writing comes back as errWrite.
func (w *writer) apply(r *appendReq) (events.AppendResult, error) {
	stored := 0
	for i := range r.evs {
		if _, ok := w.position(r.evs[i].ID); ok {
			stored++
		}
	}
	if stored > 0 {
		return w.replay(r, stored)
	}
	var h head
	var inline []byte
	v := w.b.streams.Get([]byte(r.stream))
	exists := v != nil
	if exists {
		var ok bool
		if h, inline, ok = parseStream(v); !ok {
			return events.AppendResult{}, errStream(events.CodeCorrupt, "append", r.stream, "stream head does not decode")
		}
	}
	if !r.expected.Allows(h.revision, exists) {
		actual := int64(-1)
		if exists {
			actual = int64(h.revision)
		}
		return events.AppendResult{}, &events.Error{Code: events.CodeWrongExpectedRevision, Op: "append",
			Stream: r.stream, Actual: actual, Expected: r.expected}
	}

	// Validated: write. From here on a failure is an errWrite.
	rev, prev := uint64(0), events.Hash{}
	if exists {
		rev, prev = h.revision+1, h.hash
	}
	firstRev, firstPos := rev, w.pos+1
	for i, rec := range r.recs {
		w.pos++
		hash := events.LinkHash(prev, r.stream, rev, r.evs[i])
		patchRecord(rec, rev, w.now, prev, hash)
		if w.hookPut != nil {
			if err := w.hookPut(r.stream, rev); err != nil {
				return events.AppendResult{}, errWrite{err}
			}
		}
		pk := w.alloc(8)
		binary.BigEndian.PutUint64(pk, w.pos)
		if err := w.b.log.Put(pk, rec); err != nil {
			return events.AppendResult{}, errWrite{err}
		}
		w.fresh[r.evs[i].ID] = w.pos
		prev = hash
		rev++
	}
	added := run{position: firstPos, count: uint64(len(r.recs))}
	hv, err := w.putRuns(r.stream, exists, inline, firstRev, added)
	if err != nil {
		return events.AppendResult{}, errWrite{err}
	}
	putHead(hv, head{revision: rev - 1, position: w.pos, hash: prev})
	if err := w.b.streams.Put([]byte(r.stream), hv); err != nil {
		return events.AppendResult{}, errWrite{err}
	}
	return events.AppendResult{NextExpectedRevision: rev - 1, Position: events.Position(w.pos), FirstPosition: events.Position(firstPos), LastHash: prev}, nil
}

// putRuns records the run added at revision first of stream, whose value
// held the runs inline (none: the stream is new, or its runs are in the
// index bucket), and returns the stream's new value with room for the head
// at its start (index.go). The run joins the last inline run when their
// events are contiguous in the log; a stream that would have more than
// maxInlineRuns moves them all to the index bucket.
func (w *writer) putRuns(stream string, exists bool, inline []byte, first uint64, added run) ([]byte, error) {
	n := len(inline) / runLen
	switch {
	case n > 0:
		if last, ok := parseRun(inline[(n-1)*runLen:]); ok && last.position+last.count == added.position {
			v := w.alloc(headLen + len(inline))
			copy(v[headLen:], inline)
			putRun(v[headLen+(n-1)*runLen:], run{position: last.position, count: last.count + added.count})
			return v, nil
		}
		if n < maxInlineRuns {
			v := w.alloc(headLen + len(inline) + runLen)
			copy(v[headLen:], inline)
			putRun(v[headLen+len(inline):], added)
			return v, nil
		}
		// Full: the runs move to the index bucket, with the new one.
		rs := &inlineRuns{b: inline}
		for f, r, ok := rs.seek(0); ok; f, r, ok = rs.next() {
			if err := w.putIndexRun(stream, f, r); err != nil {
				return nil, err
			}
		}
	case !exists:
		v := w.alloc(headLen + runLen)
		putRun(v[headLen:], added)
		return v, nil
	}
	if err := w.putIndexRun(stream, first, added); err != nil {
		return nil, err
	}
	return w.alloc(headLen), nil
}

func (w *writer) putIndexRun(stream string, first uint64, r run) error {
	ik := indexKey(w.alloc(indexKeyLen(stream))[:0], stream, first)
	iv := w.alloc(runLen)
	putRun(iv, r)
	return w.b.index.Put(ik, iv)
}

// replay answers an append some of whose IDs are stored: the original
// result if all of them are, in order, as one run in this stream, with the
// same bodies; ErrDuplicateID otherwise.
func (w *writer) replay(r *appendReq, stored int) (events.AppendResult, error) {
	dup := func(format string, args ...any) (events.AppendResult, error) {
		return events.AppendResult{}, errStream(events.CodeDuplicateID, "append", r.stream, fmt.Sprintf(format, args...))
	}
	if stored < len(r.evs) {
		return dup("the append mixes %d stored and %d new event IDs", stored, len(r.evs)-stored)
	}
	var res events.AppendResult
	var k [8]byte
	for i := range r.evs {
		e := &r.evs[i]
		pos, _ := w.position(e.ID)
		binary.BigEndian.PutUint64(k[:], pos)
		rec, err := parseRecord(w.b.log.Get(k[:]))
		if err != nil || rec.id != e.ID {
			return events.AppendResult{}, errStream(events.CodeCorrupt, "append", r.stream,
				fmt.Sprintf("the ID index points event %s at position %d, which does not hold it (%v)", e.ID, pos, err))
		}
		switch {
		case string(rec.stream) != r.stream:
			return dup("event %s is already stored in another stream", e.ID)
		case string(rec.typ) != e.Type || !bytes.Equal(rec.metadata, e.Metadata) || !bytes.Equal(rec.data, e.Data):
			return dup("event %s is already stored with a different body", e.ID)
		case i > 0 && rec.revision != res.NextExpectedRevision+1:
			return dup("events %s are stored, but not in this order as one append", e.ID)
		}
		first := res.FirstPosition
		if i == 0 {
			first = events.Position(pos)
		}
		res = events.AppendResult{NextExpectedRevision: rec.revision, Position: events.Position(pos), FirstPosition: first, LastHash: rec.hash}
	}
	return res, nil
}
