package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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

// appendReq is one Append on its way through the writer. The caller fills
// the first fields and waits on done; the writer sets res or err and closes
// done. Everything the writer reads is owned by the request, so a caller
// that gives up (ctx) cannot change bytes the writer still uses.
type appendReq struct {
	ctx      context.Context
	stream   string
	expected events.ExpectedRevision
	evs      []events.EventData // Metadata and Data point into recs
	recs     [][]byte           // the encoded records; the writer patches their headers

	done chan struct{}
	res  events.AppendResult
	err  error
}

// Append appends evs to stream if the stream is in the expected state and
// returns once they are durable. Concurrent appends share commits (see the
// package documentation). If ctx ends while the append waits for its commit,
// Append returns ctx's error and the append may still be committed; retrying
// with the same event IDs tells which.
//
// Errors: ErrInvalidArgument (empty or over-long stream name, no events, an
// event with no ID or Type, two events with one ID, an event too large);
// ErrWrongExpectedRevision; ErrDuplicateID; ErrClosed; ErrUnavailable (the
// commit failed: disk full, I/O error, Options.MaxSize reached); ErrCorrupt
// (a stored event needed for the idempotency check does not decode).
func (s *Store) Append(ctx context.Context, stream string, expected events.ExpectedRevision, evs ...events.EventData) (events.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return events.AppendResult{}, err
	}
	r, err := newAppendReq(ctx, stream, expected, evs)
	if err != nil {
		return events.AppendResult{}, err
	}
	s.mu.RLock()
	if s.closed.Load() {
		s.mu.RUnlock()
		return events.AppendResult{}, errClosed("append")
	}
	select {
	case s.reqs <- r:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return events.AppendResult{}, ctx.Err()
	}
	select {
	case <-r.done:
		return r.res, r.err
	case <-ctx.Done():
		return events.AppendResult{}, ctx.Err()
	}
}

// newAppendReq checks the arguments and encodes the records into one buffer
// that the request owns.
func newAppendReq(ctx context.Context, stream string, expected events.ExpectedRevision, evs []events.EventData) (*appendReq, error) {
	invalid := func(format string, args ...any) error {
		return errStream(events.CodeInvalidArgument, "append", stream, fmt.Sprintf(format, args...))
	}
	switch {
	case stream == "":
		return nil, invalid("empty stream name")
	case len(stream) > MaxStreamLen:
		return nil, invalid("stream name of %d bytes is longer than %d", len(stream), MaxStreamLen)
	case len(evs) == 0:
		return nil, invalid("no events")
	}
	total := 0
	for i := range evs {
		e := &evs[i]
		if e.ID.IsZero() {
			return nil, invalid("event %d has no ID", i)
		}
		if e.Type == "" {
			return nil, invalid("event %d (%s) has no type", i, e.ID)
		}
		n := encodedLen(stream, e)
		if n > bbolt.MaxValueSize {
			return nil, invalid("event %d (%s) is %d bytes encoded; the limit is %d", i, e.ID, n, bbolt.MaxValueSize)
		}
		total += n
	}
	if err := uniqueIDs(evs); err != nil {
		return nil, invalid("%v", err)
	}
	r := &appendReq{
		ctx:      ctx,
		stream:   stream,
		expected: expected,
		evs:      make([]events.EventData, len(evs)),
		recs:     make([][]byte, len(evs)),
		done:     make(chan struct{}),
	}
	buf := make([]byte, 0, total)
	for i := range evs {
		start := len(buf)
		var meta, data []byte
		buf, meta, data = appendRecord(buf, stream, &evs[i])
		r.recs[i] = buf[start:len(buf):len(buf)]
		r.evs[i] = events.EventData{ID: evs[i].ID, Type: evs[i].Type, Metadata: meta, Data: data}
	}
	return r, nil
}

func uniqueIDs(evs []events.EventData) error {
	if len(evs) <= 16 {
		for i := range evs {
			for j := i + 1; j < len(evs); j++ {
				if evs[i].ID == evs[j].ID {
					return fmt.Errorf("events %d and %d share ID %s", i, j, evs[i].ID)
				}
			}
		}
		return nil
	}
	seen := make(map[events.ID]int, len(evs))
	for i := range evs {
		if j, ok := seen[evs[i].ID]; ok {
			return fmt.Errorf("events %d and %d share ID %s", j, i, evs[i].ID)
		}
		seen[evs[i].ID] = i
	}
	return nil
}

// writeLoop is the single writer. It ends when Close has closed reqs and
// every queued append is answered.
func (s *Store) writeLoop() {
	defer close(s.writerDone)
	var group []*appendReq
	for r := range s.reqs {
		group = append(group[:0], r)
		n := len(r.evs)
	drain:
		for len(group) < maxGroupAppends && n < maxGroupEvents {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break drain
				}
				group = append(group, r)
				n += len(r.evs)
			default:
				break drain
			}
		}
		s.commitGroup(group)
		clear(group)
	}
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
		if err := s.commit(live); err != nil && len(live) > 1 {
			// The transaction as a whole failed. Commit the appends one by
			// one, so that an append that cannot be stored (too big for the
			// space left) does not take the others down with it.
			for i := range live {
				s.commit(live[i : i+1])
			}
		}
	}
	for _, r := range group {
		close(r.done)
	}
}

// errWrite marks a failure while writing an append that had passed
// validation: the transaction holds part of it and must be rolled back.
type errWrite struct{ err error }

func (e errWrite) Error() string { return e.err.Error() }

// commit applies reqs in order in one transaction and commits it, setting
// each request's res or err. It returns the error that failed the
// transaction as a whole, if any (then every request has failed).
func (s *Store) commit(reqs []*appendReq) error {
	dropped := make([]bool, len(reqs)) // failed mid-write: left out of retries
	for {
		tx, err := s.db.Begin(true)
		if err != nil {
			s.failAll(reqs, dropped, unavailable("", "cannot begin a write transaction", err))
			return err
		}
		retry, err := s.applyAll(tx, reqs, dropped)
		if retry {
			continue
		}
		if err != nil {
			tx.Rollback()
			s.failAll(reqs, dropped, err)
			return err
		}
		if err := tx.Commit(); err != nil {
			s.failAll(reqs, dropped, unavailable("", "commit failed", err))
			return err
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

// applyAll applies every request not dropped, in order, to tx. When a write
// fails after validation it drops that request, rolls tx back and asks for a
// retry. A panic inside bbolt (a damaged page) fails the whole transaction.
func (s *Store) applyAll(tx *bbolt.Tx, reqs []*appendReq, dropped []bool) (retry bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &events.Error{Code: events.CodeCorrupt, Op: "append", Detail: fmt.Sprintf("storage engine failed: %v", p)}
		}
	}()
	b := bucketsOf(tx)
	pos := lastPosition(b.log)
	first := pos
	w := writer{b: b, now: time.Now().UnixNano(), pos: &pos, hookPut: s.hookPut}
	for i, r := range reqs {
		if dropped[i] {
			continue
		}
		res, err := w.apply(r)
		var we errWrite
		if errors.As(err, &we) {
			dropped[i] = true
			r.res, r.err = events.AppendResult{}, unavailable(r.stream, "write failed", we.err)
			tx.Rollback()
			return true, nil
		}
		r.res, r.err = res, err
	}
	if pos > first {
		// Runs only if the commit succeeds, after the transaction is
		// visible to readers and before any caller is answered.
		tx.OnCommit(func() {
			s.head.Store(pos)
			s.signal()
		})
	}
	return false, nil
}

func unavailable(stream, detail string, err error) error {
	return &events.Error{Code: events.CodeUnavailable, Op: "append", Stream: stream, Detail: detail, Err: err}
}

type buckets struct {
	log, streams, index, ids *bbolt.Bucket
}

func bucketsOf(tx *bbolt.Tx) buckets {
	b := buckets{
		log:     tx.Bucket(bucketLog),
		streams: tx.Bucket(bucketStreams),
		index:   tx.Bucket(bucketIndex),
		ids:     tx.Bucket(bucketIDs),
	}
	if tx.Writable() {
		// Keys of log and index mostly arrive in order: fill pages fully.
		b.log.FillPercent = 1.0
		b.index.FillPercent = 0.9
	}
	return b
}

// writer applies appends inside one write transaction.
type writer struct {
	b       buckets
	now     int64
	pos     *uint64
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

// head is a stream's entry in the streams bucket.
type head struct {
	revision uint64
	position uint64
	hash     events.Hash
}

const headLen = 48

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

// indexKey appends the index key of stream at revision to dst.
func indexKey(dst []byte, stream string, revision uint64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(stream)))
	dst = append(dst, stream...)
	return binary.BigEndian.AppendUint64(dst, revision)
}

// apply validates r against the transaction's state and, if it passes,
// writes it. Validation reads only: an append it rejects leaves no trace.
// A failure while writing comes back as errWrite.
func (w *writer) apply(r *appendReq) (events.AppendResult, error) {
	stored := 0
	for i := range r.evs {
		if w.b.ids.Get(r.evs[i].ID[:]) != nil {
			stored++
		}
	}
	if stored > 0 {
		return w.replay(r, stored)
	}
	var h head
	v := w.b.streams.Get([]byte(r.stream))
	exists := v != nil
	if exists {
		var ok bool
		if h, ok = parseHead(v); !ok {
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

	rev, prev := uint64(0), events.Hash{}
	if exists {
		rev, prev = h.revision+1, h.hash
	}
	ikLen := uvarintLen(len(r.stream)) + len(r.stream) + 8
	for i, rec := range r.recs {
		*w.pos++
		hash := events.LinkHash(prev, r.stream, rev, r.evs[i])
		patchRecord(rec, rev, w.now, prev, hash)
		pk := w.alloc(8)
		binary.BigEndian.PutUint64(pk, *w.pos)
		ik := indexKey(w.alloc(ikLen)[:0], r.stream, rev)
		if w.hookPut != nil {
			if err := w.hookPut(r.stream, rev); err != nil {
				return events.AppendResult{}, errWrite{err}
			}
		}
		if err := w.b.log.Put(pk, rec); err != nil {
			return events.AppendResult{}, errWrite{err}
		}
		if err := w.b.index.Put(ik, pk); err != nil {
			return events.AppendResult{}, errWrite{err}
		}
		if err := w.b.ids.Put(rec[offID:offCreated], pk); err != nil {
			return events.AppendResult{}, errWrite{err}
		}
		prev = hash
		rev++
	}
	hv := w.alloc(headLen)
	binary.BigEndian.PutUint64(hv, rev-1)
	binary.BigEndian.PutUint64(hv[8:], *w.pos)
	copy(hv[16:], prev[:])
	if err := w.b.streams.Put([]byte(r.stream), hv); err != nil {
		return events.AppendResult{}, errWrite{err}
	}
	return events.AppendResult{NextExpectedRevision: rev - 1, Position: events.Position(*w.pos), LastHash: prev}, nil
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
	for i := range r.evs {
		e := &r.evs[i]
		pk := w.b.ids.Get(e.ID[:])
		v := w.b.log.Get(pk)
		rec, err := parseRecord(v)
		if err != nil || len(pk) != 8 {
			return events.AppendResult{}, errStream(events.CodeCorrupt, "append", r.stream,
				fmt.Sprintf("stored event %s does not decode: %v", e.ID, err))
		}
		pos := binary.BigEndian.Uint64(pk)
		switch {
		case string(rec.stream) != r.stream:
			return dup("event %s is already stored in another stream", e.ID)
		case string(rec.typ) != e.Type || !bytes.Equal(rec.metadata, e.Metadata) || !bytes.Equal(rec.data, e.Data):
			return dup("event %s is already stored with a different body", e.ID)
		case i > 0 && rec.revision != res.NextExpectedRevision+1:
			return dup("events %s are stored, but not in this order as one append", e.ID)
		}
		res = events.AppendResult{NextExpectedRevision: rec.revision, Position: events.Position(pos), LastHash: rec.hash}
	}
	return res, nil
}
