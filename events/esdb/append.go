package esdb

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/cqhrss/subsidyledger/events"
)

// maxAttempts bounds how often one Append reads the stream's head and
// tries again after losing a race for the next revision.
const maxAttempts = 32

// Append appends evs to stream if the stream is in the expected state and
// returns once EventStoreDB has committed them. See the package
// documentation for how it keeps hash links from forking and appends
// idempotent.
//
// Errors: ErrInvalidArgument (empty stream name or one starting with "$",
// no events, an event with no ID or Type or a Type starting with "$", two
// events with one ID, an append larger than Options.MaxAppendSize);
// ErrWrongExpectedRevision; ErrDuplicateID; ErrClosed; ErrUnavailable
// (the server cannot be reached, or the append lost the race for the
// stream's next revision maxAttempts times); ErrCorrupt.
func (s *Store) Append(ctx context.Context, stream string, expected events.ExpectedRevision, evs ...events.EventData) (events.AppendResult, error) {
	const op = "append"
	if err := ctx.Err(); err != nil {
		return events.AppendResult{}, err
	}
	if err := s.checkAppend(stream, evs); err != nil {
		return events.AppendResult{}, err
	}
	release, err := s.idx.reserve(ctx, s.done, evs)
	if err != nil {
		return events.AppendResult{}, s.fail(ctx, op, stream, err)
	}
	defer release()

	if err := s.catchUp(ctx, op); err != nil {
		return events.AppendResult{}, err
	}
	if res, stored, err := s.replay(ctx, stream, evs); stored || err != nil {
		return res, err
	}
	for attempt := 1; ; attempt++ {
		h, err := s.head(ctx, op, stream)
		if err != nil {
			return events.AppendResult{}, err
		}
		if !expected.Allows(h.revision, h.exists) {
			return events.AppendResult{}, &events.Error{Code: events.CodeWrongExpectedRevision, Op: op,
				Stream: stream, Actual: h.actual(), Expected: expected}
		}
		res, err := s.appendAt(ctx, stream, h, evs)
		if err == nil {
			return res, nil
		}
		var ee *esdbclient.Error
		switch {
		case errors.Is(err, errIdempotent):
			// EventStoreDB found the IDs already there (its own, partial
			// dedupe) and stored nothing: answer from what is stored.
		case errors.As(err, &ee) && ee.Code() == esdbclient.ErrorCodeWrongExpectedVersion:
			// Another append took the revision; it may have been a retry
			// of this one, from elsewhere.
		default:
			return events.AppendResult{}, s.fail(ctx, op, stream, err)
		}
		if err := s.catchUp(ctx, op); err != nil {
			return events.AppendResult{}, err
		}
		if res, stored, err := s.replay(ctx, stream, evs); stored || err != nil {
			return res, err
		}
		if errors.Is(err, errIdempotent) {
			return events.AppendResult{}, &events.Error{Code: events.CodeCorrupt, Op: op, Stream: stream,
				Detail: "EventStoreDB reported the events as stored already, but they are not in $all"}
		}
		if attempt == maxAttempts {
			return events.AppendResult{}, &events.Error{Code: events.CodeUnavailable, Op: op, Stream: stream,
				Detail: fmt.Sprintf("lost the race for the stream's next revision %d times; retry later", attempt)}
		}
		select { // let the winners finish before reading the head again
		case <-time.After(time.Duration(rand.IntN(1+min(attempt, 10))) * time.Millisecond):
		case <-ctx.Done():
			return events.AppendResult{}, ctx.Err()
		case <-s.done:
			return events.AppendResult{}, errClosed(op)
		}
	}
}

// errIdempotent: EventStoreDB accepted an append without storing it
// because the same event IDs follow the expected revision.
var errIdempotent = errors.New("EventStoreDB deduplicated the append")

func (s *Store) checkAppend(stream string, evs []events.EventData) error {
	invalid := func(format string, args ...any) error {
		return &events.Error{Code: events.CodeInvalidArgument, Op: "append", Stream: stream, Detail: fmt.Sprintf(format, args...)}
	}
	switch {
	case stream == "":
		return invalid("empty stream name")
	case stream[0] == '$':
		return invalid("stream names starting with $ are EventStoreDB's system streams")
	case len(evs) == 0:
		return invalid("no events")
	}
	size := 0
	for i := range evs {
		e := &evs[i]
		switch {
		case e.ID.IsZero():
			return invalid("event %d has no ID", i)
		case e.Type == "":
			return invalid("event %d (%s) has no type", i, e.ID)
		case e.Type[0] == '$':
			return invalid("event %d (%s) has type %q: types starting with $ are EventStoreDB's system types", i, e.ID, e.Type)
		}
		size += AppendSize(*e)
	}
	if size > s.opts.MaxAppendSize {
		return invalid("%d events of %d bytes exceed EventStoreDB's maximum append size of %d bytes; split the append", len(evs), size, s.opts.MaxAppendSize)
	}
	seen := make(map[events.ID]int, len(evs))
	for i := range evs {
		if j, ok := seen[evs[i].ID]; ok {
			return invalid("events %d and %d share ID %s", j, i, evs[i].ID)
		}
		seen[evs[i].ID] = i
	}
	return nil
}

// appendAt appends evs right after h, the stream's head as read, with the
// hash links computed from it: EventStoreDB is asked for exactly the
// revision the links were computed for (no stream, or h's revision), so
// links never fork, whatever the caller expected.
func (s *Store) appendAt(ctx context.Context, stream string, h streamHead, evs []events.EventData) (events.AppendResult, error) {
	rev, prev := uint64(0), events.Hash{}
	o := esdbclient.AppendToStreamOptions{ExpectedRevision: esdbclient.NoStream{}}
	if h.exists {
		rev, prev = h.revision+1, h.hash
		o.ExpectedRevision = esdbclient.Revision(h.revision)
	}
	data := make([]esdbclient.EventData, len(evs))
	for i := range evs {
		e := &evs[i]
		hash := events.LinkHash(prev, stream, rev+uint64(i), *e)
		data[i] = esdbclient.EventData{
			EventID:     uuid.UUID(e.ID), // always set: the library would invent a random one
			EventType:   e.Type,
			ContentType: esdbclient.ContentTypeBinary,
			Data:        e.Data,
			Metadata:    wrap(prev, hash, e.Metadata),
		}
		prev = hash
	}
	last := rev + uint64(len(evs)) - 1
	wr, err := do(s, ctx, func(c *esdbclient.Client) (*esdbclient.WriteResult, error) {
		rctx, cancel := s.rpcContext(ctx)
		defer cancel()
		return c.AppendToStream(rctx, s.prefix+stream, o, data...)
	})
	if err != nil {
		return events.AppendResult{}, err
	}
	// EventStoreDB reports an append it deduplicated with the revision the
	// events already have and no position (the library reads that as 0).
	if wr.NextExpectedVersion != last || wr.CommitPosition == 0 && wr.PreparePosition == 0 {
		return events.AppendResult{}, errIdempotent
	}
	res := events.AppendResult{NextExpectedRevision: last, Position: events.Position(wr.CommitPosition + 1), LastHash: prev}
	return withFirst(res, len(evs)), nil
}

// replay answers an append some of whose IDs the index holds: the original
// result if all of them are stored, in order, as one run in this stream,
// with the same bodies; ErrDuplicateID otherwise. stored is false when
// none of the IDs is stored.
func (s *Store) replay(ctx context.Context, stream string, evs []events.EventData) (res events.AppendResult, stored bool, err error) {
	const op = "append"
	dup := func(format string, args ...any) (events.AppendResult, bool, error) {
		return events.AppendResult{}, true, &events.Error{Code: events.CodeDuplicateID, Op: op, Stream: stream, Detail: fmt.Sprintf(format, args...)}
	}
	pos, n := s.idx.stored(evs)
	switch {
	case n == 0:
		return events.AppendResult{}, false, nil
	case n < len(evs):
		return dup("the append mixes %d stored and %d new event IDs", n, len(evs)-n)
	}
	// Read the first event by its position: a forward read of $all starts
	// with the record at the position it is given.
	page, err := s.readAllRaw(ctx, pos[0], true, 1)
	if err != nil {
		return events.AppendResult{}, true, s.fail(ctx, op, stream, err)
	}
	i := slices.IndexFunc(page, func(r *esdbclient.RecordedEvent) bool { return r.Position.Commit == pos[0] })
	if i < 0 || events.ID(page[i].EventID) != evs[0].ID {
		return events.AppendResult{}, true, &events.Error{Code: events.CodeCorrupt, Op: op, Stream: stream,
			Detail: fmt.Sprintf("the ID index puts event %s at $all position %d, which does not hold it", evs[0].ID, pos[0])}
	}
	first := page[i]
	if got, _ := s.mine(first.StreamID, first.EventType); got != stream {
		return dup("event %s is already stored in another stream", evs[0].ID)
	}
	got, err := s.readStream(ctx, op, stream, events.Forwards, first.EventNumber, false, uint64(len(evs)))
	if err != nil {
		return events.AppendResult{}, true, err
	}
	for i := range evs {
		switch {
		case i >= len(got) || got[i].ID != evs[i].ID:
			return dup("events %s are stored, but not in this order as one append", evs[i].ID)
		case !got[i].SameBody(evs[i]):
			return dup("event %s is already stored with a different body", evs[i].ID)
		}
	}
	last := got[len(got)-1]
	return withFirst(events.AppendResult{NextExpectedRevision: last.Revision, Position: last.Position, LastHash: last.Hash}, len(evs)), true, nil
}

// withFirst sets res.FirstPosition where EventStoreDB's write result tells
// it: for an append of one event. Of a longer append it reports only the
// last event's commit position, and positions are byte offsets, so the
// others' cannot be worked out. A retried append answers the same.
func withFirst(res events.AppendResult, n int) events.AppendResult {
	if n == 1 {
		res.FirstPosition = res.Position
	}
	return res
}
