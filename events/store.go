package events

import "context"

// Store is the append-only event store. Implementations are safe for
// concurrent use. Every error returned is an *Error (see errors.go), except
// the context's own error when ctx ends first, which is returned as is
// (errors.Is(err, context.Canceled) holds).
type Store interface {
	// Append atomically appends evs to the end of stream if the stream is in
	// the expected state. It returns once the events are durable.
	//
	// Errors: ErrInvalidArgument (empty stream name, no events, an event
	// with no ID or Type, two events with one ID); ErrWrongExpectedRevision
	// (Actual says where the stream is); ErrDuplicateID (an ID stored with
	// another body or stream, or an append mixing stored and new IDs);
	// ErrClosed; ErrUnavailable. If every ID is already stored, in order, in
	// this stream, with the same bodies, Append stores nothing and returns
	// the original result, whatever the expected revision.
	Append(ctx context.Context, stream string, expected ExpectedRevision, evs ...EventData) (AppendResult, error)

	// ReadStream returns up to max events of stream starting at revision from
	// (inclusive) in the given direction; from End reads backwards from the
	// last event. max <= 0 means no limit. A read past the end returns no
	// events and no error.
	//
	// Errors: ErrStreamNotFound (no such stream); ErrClosed; ErrCorrupt.
	ReadStream(ctx context.Context, stream string, dir Direction, from uint64, max int) ([]RecordedEvent, error)

	// ReadAll returns up to max events of the global log with positions
	// greater than after, in position order. max <= 0 means a
	// backend-chosen page size; an empty result means the end of the log.
	//
	// Errors: ErrClosed; ErrCorrupt.
	ReadAll(ctx context.Context, after Position, max int) ([]RecordedEvent, error)

	// Head returns the position of the last committed event (Start when the
	// log is empty).
	//
	// Errors: ErrClosed.
	Head(ctx context.Context) (Position, error)

	// Subscribe starts a catch-up subscription that delivers every event with
	// a position greater than after that matches f, exactly once and in
	// position order: first the stored history, then live events as they
	// commit. It never skips an event that commits late.
	//
	// Errors: ErrClosed.
	Subscribe(ctx context.Context, after Position, f Filter) (Subscription, error)

	// Close releases the store. Appends in flight either complete or fail
	// with ErrClosed; later calls fail with ErrClosed. Open subscriptions end
	// with ErrClosed.
	Close() error
}

// Subscription is a catch-up subscription to the global log.
type Subscription interface {
	// Next blocks until the next matching event is available and returns it.
	//
	// Errors: ctx's error when ctx ends; ErrClosed when the subscription or
	// the store was closed; ErrCorrupt; ErrUnavailable when a remote backend
	// dropped the subscription for good (the backend already retried).
	Next(ctx context.Context) (RecordedEvent, error)

	// Close ends the subscription; a blocked Next returns ErrClosed.
	Close() error
}

// WriteProber is implemented by stores that can test, without appending to
// the log, whether they can durably write now (bolt.Store). The intake uses
// it while the store is unavailable to find out when to resume.
type WriteProber interface {
	// ProbeWrite durably writes and then removes about n bytes outside the
	// log. It returns nil when both writes were committed.
	//
	// Errors: ErrUnavailable (the write failed: disk full, read-only, I/O
	// error); ErrClosed.
	ProbeWrite(ctx context.Context, n int) error
}
