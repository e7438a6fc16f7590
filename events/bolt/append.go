package bolt

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/cqhrss/subsidyledger/events"
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
	// whole: part of an AppendBatch; when its transaction fails as a
	// whole, it is not retried alone (the batch fails together).
	whole bool
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
	case s.reqs <- []*appendReq{r}:
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

// AppendBatch performs ops in one transaction with one sync, each decided
// as Append would decide it alone, in order; see events.Batcher. If the
// transaction fails as a whole (disk full, read-only file, I/O error),
// every op fails: unlike a lone Append, none is retried alone, so a batch
// is never stored in part for such a reason. Each op's Result and Err are
// set when AppendBatch returns.
func (s *Store) AppendBatch(ctx context.Context, ops []*events.AppendOp) {
	if err := ctx.Err(); err != nil {
		for _, o := range ops {
			o.Result, o.Err = events.AppendResult{}, err
		}
		return
	}
	rs := make([]*appendReq, 0, len(ops))
	byReq := make([]*events.AppendOp, 0, len(ops))
	for _, o := range ops {
		r, err := newAppendReq(ctx, o.Stream, o.Expected, o.Events)
		if err != nil {
			o.Result, o.Err = events.AppendResult{}, err
			continue
		}
		r.whole = true
		rs, byReq = append(rs, r), append(byReq, o)
	}
	if len(rs) == 0 {
		return
	}
	fail := func(err error) {
		for _, o := range byReq {
			o.Result, o.Err = events.AppendResult{}, err
		}
	}
	s.mu.RLock()
	if s.closed.Load() {
		s.mu.RUnlock()
		fail(errClosed("append"))
		return
	}
	select {
	case s.reqs <- rs:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		fail(ctx.Err())
		return
	}
	for i, r := range rs {
		select {
		case <-r.done:
			byReq[i].Result, byReq[i].Err = r.res, r.err
		case <-ctx.Done():
			byReq[i].Result, byReq[i].Err = events.AppendResult{}, ctx.Err()
		}
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

// Exclusive reports true: bbolt holds an exclusive lock on the data file
// while the store is open, so no other process appends (events.Exclusive).
func (s *Store) Exclusive() bool { return true }
