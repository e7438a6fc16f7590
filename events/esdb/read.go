package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/cqhrss/subsidyledger/events"
)

const (
	// defaultPage is ReadAll's page size when the caller leaves it to us.
	defaultPage = 4096
	// scanPage is how many records one read of $all asks for while
	// skipping what is not the store's.
	scanPage = 4096
	// unknownPosition is what EventStoreDB before 22.10 reports as the
	// $all position of an event read from a stream.
	unknownPosition = math.MaxUint64
)

// readAllRaw reads up to count records of $all forwards from the record at
// raw position from (from the start of $all when !at), the record at from
// included, and returns them.
func (s *Store) readAllRaw(ctx context.Context, from uint64, at bool, count int) ([]*esdbclient.RecordedEvent, error) {
	return do(s, ctx, func(c *esdbclient.Client) ([]*esdbclient.RecordedEvent, error) {
		rctx, cancel := s.rpcContext(ctx)
		defer cancel()
		o := esdbclient.ReadAllOptions{Direction: esdbclient.Forwards, From: esdbclient.Start{}}
		if at {
			o.From = esdbclient.Position{Commit: from, Prepare: from}
		}
		rs, err := c.ReadAll(rctx, o, uint64(count))
		if err != nil {
			return nil, err
		}
		defer rs.Close()
		var out []*esdbclient.RecordedEvent
		for {
			ev, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return nil, err
			}
			if r := ev.OriginalEvent(); r != nil {
				out = append(out, r)
			}
		}
	})
}

// catchUp brings the ID index up to date with $all: once it returns, the
// index holds every event committed before catchUp was called.
func (s *Store) catchUp(ctx context.Context, op string) error {
	x := s.idx
	x.mu.Lock()
	arrived := x.started
	x.mu.Unlock()
	select {
	case x.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return errClosed(op)
	}
	defer func() { <-x.sem }()
	x.mu.Lock()
	if x.finished > arrived { // a catch-up that began after we arrived has finished
		x.mu.Unlock()
		return nil
	}
	x.started++
	x.mu.Unlock()

	from, at := x.from()
	for {
		page, err := s.readAllRaw(ctx, from, at, scanPage)
		if err != nil {
			return s.fail(ctx, op, "", err)
		}
		var ids []events.ID
		var positions []uint64
		last, fresh := from, false
		for _, r := range page {
			p := r.Position.Commit
			if at && p <= from {
				continue // the record we started at
			}
			last, fresh = p, true
			if _, ok := s.mine(r.StreamID, r.EventType); ok {
				ids = append(ids, events.ID(r.EventID))
				positions = append(positions, p)
			}
		}
		if fresh {
			x.add(ids, positions, last)
			from, at = last, true
		}
		if len(page) < scanPage {
			break
		}
	}
	x.mu.Lock()
	x.finished++
	x.mu.Unlock()
	return nil
}

// decode turns an event of the store as EventStoreDB returns it into the
// contract's, unwrapping its hash link.
func (s *Store) decode(op string, r *esdbclient.RecordedEvent) (events.RecordedEvent, error) {
	stream, ok := s.mine(r.StreamID, r.EventType)
	if !ok {
		return events.RecordedEvent{}, &events.Error{Code: events.CodeCorrupt, Op: op, Stream: r.StreamID,
			Detail: fmt.Sprintf("event %s of type %q is not one of the store's", r.EventID, r.EventType)}
	}
	prev, hash, meta, ok := unwrap(r.UserMetadata)
	if !ok {
		return events.RecordedEvent{}, &events.Error{Code: events.CodeCorrupt, Op: op, Stream: stream,
			Detail: fmt.Sprintf("event %s at revision %d carries no hash link: it was not written by this store", r.EventID, r.EventNumber)}
	}
	if r.Position.Commit == unknownPosition || r.Position.Commit >= math.MaxInt64 {
		return events.RecordedEvent{}, &events.Error{Code: events.CodeCorrupt, Op: op, Stream: stream,
			Detail: fmt.Sprintf("EventStoreDB reported no $all position for event %s (servers before 22.10 do not on stream reads)", r.EventID)}
	}
	return events.RecordedEvent{
		EventData: events.EventData{ID: events.ID(r.EventID), Type: r.EventType, Metadata: meta, Data: r.Data},
		Stream:    stream,
		Revision:  r.EventNumber,
		Position:  events.Position(r.Position.Commit + 1),
		Created:   r.CreatedDate.UTC(),
		PrevHash:  prev,
		Hash:      hash,
	}, nil
}

// readStream reads up to count events of the store's stream from revision
// from (from its end when end) in direction dir. A missing stream is the
// library's ResourceNotFound error.
func (s *Store) readStream(ctx context.Context, op, stream string, dir events.Direction, from uint64, end bool, count uint64) ([]events.RecordedEvent, error) {
	out, err := do(s, ctx, func(c *esdbclient.Client) ([]events.RecordedEvent, error) {
		rctx, cancel := s.rpcContext(ctx)
		defer cancel()
		o := esdbclient.ReadStreamOptions{Direction: esdbclient.Forwards, From: esdbclient.Revision(from)}
		if dir == events.Backwards {
			o.Direction = esdbclient.Backwards
		}
		if end {
			o.From = esdbclient.End{}
		}
		rs, err := c.ReadStream(rctx, s.prefix+stream, o, count)
		if err != nil {
			return nil, err
		}
		defer rs.Close()
		var out []events.RecordedEvent
		for {
			ev, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return nil, err
			}
			r := ev.OriginalEvent()
			if r == nil || r.EventType == "" || r.EventType[0] == '$' {
				continue // a tombstone or metadata record, never one of the store's events
			}
			e, err := s.decode(op, r)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
	})
	if err != nil {
		return nil, s.fail(ctx, op, stream, err)
	}
	return out, nil
}

// streamHead is where a stream ends: its last revision and hash.
type streamHead struct {
	exists   bool
	revision uint64
	hash     events.Hash
}

func (h streamHead) actual() int64 {
	if !h.exists {
		return -1
	}
	return int64(h.revision)
}

// head reads the last event of stream.
func (s *Store) head(ctx context.Context, op, stream string) (streamHead, error) {
	last, err := s.readStream(ctx, op, stream, events.Backwards, 0, true, 1)
	if errors.Is(err, events.ErrStreamNotFound) {
		return streamHead{}, nil
	}
	if err != nil {
		return streamHead{}, err
	}
	if len(last) == 0 {
		return streamHead{}, nil
	}
	return streamHead{exists: true, revision: last[0].Revision, hash: last[0].Hash}, nil
}

// ReadStream returns up to max events of stream from revision from
// (inclusive) in direction dir; max <= 0 means all. Backwards from End, or
// from any revision past the last, starts at the last event; forwards past
// the end returns no events.
//
// Errors: ErrStreamNotFound; ErrInvalidArgument (unknown direction);
// ErrClosed; ErrCorrupt (an event not written by this backend, or a server
// that does not report positions); ErrUnavailable.
func (s *Store) ReadStream(ctx context.Context, stream string, dir events.Direction, from uint64, max int) ([]events.RecordedEvent, error) {
	const op = "read stream"
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if dir != events.Forwards && dir != events.Backwards {
		return nil, &events.Error{Code: events.CodeInvalidArgument, Op: op, Stream: stream, Detail: fmt.Sprintf("unknown direction %d", dir)}
	}
	if stream == "" || stream[0] == '$' {
		return nil, &events.Error{Code: events.CodeStreamNotFound, Op: op, Stream: stream}
	}
	count := uint64(math.MaxInt64)
	if max > 0 {
		count = uint64(max)
	}
	end := false
	switch {
	case dir == events.Backwards && from == events.End:
		end = true
	case dir == events.Backwards || from > math.MaxInt64:
		// EventStoreDB reads backwards only from a revision the stream
		// has, and takes huge revisions for its "end" marker: find the end.
		h, err := s.head(ctx, op, stream)
		if err != nil {
			return nil, err
		}
		if !h.exists {
			return nil, &events.Error{Code: events.CodeStreamNotFound, Op: op, Stream: stream}
		}
		if dir == events.Forwards {
			return nil, nil // from is past the end
		}
		from = min(from, h.revision)
	}
	evs, err := s.readStream(ctx, op, stream, dir, from, end, count)
	if errors.Is(err, events.ErrStreamNotFound) {
		return nil, &events.Error{Code: events.CodeStreamNotFound, Op: op, Stream: stream}
	}
	return evs, err
}

// ReadAll returns up to limit events of the store with positions greater
// than after, in position order; limit <= 0 means 4096. It reads $all from
// the nearest position known to hold a record at or before after (see the
// package documentation) and skips system events and other streams.
//
// Errors: ErrClosed; ErrCorrupt; ErrUnavailable.
func (s *Store) ReadAll(ctx context.Context, after events.Position, limit int) ([]events.RecordedEvent, error) {
	const op = "read all"
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = defaultPage
	}
	after = max(after, s.since)
	from, at := s.start(after)
	var out []events.RecordedEvent
	for len(out) < limit {
		// Ask for what is missing (and the record at from), at least a
		// little and at most a page: most of $all may not be the store's.
		count := min(scanPage, limit-len(out)+1)
		count = max(count, 64)
		page, err := s.readAllRaw(ctx, from, at, count)
		if err != nil {
			return nil, s.fail(ctx, op, "", err)
		}
		for _, r := range page {
			p := events.Position(r.Position.Commit + 1)
			if p <= after {
				continue
			}
			after = p
			if _, ok := s.mine(r.StreamID, r.EventType); !ok {
				continue
			}
			e, err := s.decode(op, r)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
			if len(out) == limit {
				break
			}
		}
		if len(page) < count {
			break
		}
		from, at = uint64(after)-1, true
	}
	return out, nil
}

// start returns where a read of $all for the events after position after
// begins: the greatest raw position at or before after-1 known to hold a
// record (EventStoreDB rejects positions inside records), or the start of
// $all.
func (s *Store) start(after events.Position) (uint64, bool) {
	if after == events.Start {
		return 0, false
	}
	return s.idx.floor(uint64(after) - 1)
}
