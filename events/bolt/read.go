package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/cqhrss/subsidyledger/events"
)

const (
	// defaultPage is ReadAll's page size when the caller leaves it to us.
	defaultPage = 4096
	// subscriptionScan bounds the records one subscription read looks at,
	// so that a selective filter does not hold a read transaction long.
	subscriptionScan = 1024
)

// view runs fn in a read transaction and types its errors. bbolt panics on
// damaged pages, or follows them outside the mapped file, a memory fault
// that SetPanicOnFault makes a panic too; either becomes ErrCorrupt rather
// than a crash.
func (s *Store) view(op, stream string, fn func(*bbolt.Tx) error) (err error) {
	if s.closed.Load() {
		return errClosed(op)
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = &events.Error{Code: events.CodeCorrupt, Op: op, Stream: stream, Detail: fmt.Sprintf("storage engine failed: %v", p)}
		}
	}()
	err = s.db.View(fn)
	var e *events.Error
	switch {
	case err == nil, errors.As(err, &e), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return errClosed(op)
	default:
		return &events.Error{Code: events.CodeUnavailable, Op: op, Stream: stream, Err: err}
	}
}

func corrupt(op, stream string, err error) error {
	return &events.Error{Code: events.CodeCorrupt, Op: op, Stream: stream, Detail: err.Error()}
}

// ReadAll returns up to max events with positions after after, in position
// order; max <= 0 means 4096. The events of one call share backing memory.
//
// Errors: ErrClosed; ErrCorrupt (a record does not decode; the detail names
// its position).
func (s *Store) ReadAll(ctx context.Context, after events.Position, max int) ([]events.RecordedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if max <= 0 {
		max = defaultPage
	}
	out, _, _, err := s.scan(ctx, "read all", uint64(after), max, max, nil, nil)
	return out, err
}

var _ events.PageReader = (*Store)(nil)

// ReadAllInto implements events.PageReader: ReadAll into p's memory.
func (s *Store) ReadAllInto(ctx context.Context, after events.Position, max int, p *events.Page) error {
	p.Reset()
	if err := ctx.Err(); err != nil {
		return err
	}
	if max <= 0 {
		max = defaultPage
	}
	_, _, _, err := s.scan(ctx, "read all", uint64(after), max, max, nil, p)
	return err
}

// scan reads the log after position after, looking at up to maxScan records
// and returning up to maxOut of those that match f (all when f is nil). It
// also returns the position of the last record it looked at (after when
// none) and whether it stopped at a limit rather than at the end of the log.
// With into, the events go to into.Events (reset beforehand) and their bytes
// into its memory.
func (s *Store) scan(ctx context.Context, op string, after uint64, maxOut, maxScan int, f *events.Filter, into *events.Page) (out []events.RecordedEvent, last uint64, more bool, err error) {
	last = after
	if after == ^uint64(0) {
		return nil, last, false, nil
	}
	if into != nil {
		out = into.Events[:0]
	} else if h := s.head.Load(); h > after && f == nil {
		out = make([]events.RecordedEvent, 0, min(uint64(maxOut), h-after))
	}
	err = s.view(op, "", func(tx *bbolt.Tx) error {
		d := decoder{page: into}
		var start [8]byte
		binary.BigEndian.PutUint64(start[:], after+1)
		c := tx.Bucket(bucketLog).Cursor()
		scanned := 0
		k, v := c.Seek(start[:])
		for ; k != nil && len(out) < maxOut && scanned < maxScan; k, v = c.Next() {
			scanned++
			if scanned%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if len(k) != 8 {
				return corrupt(op, "", fmt.Errorf("log key of %d bytes after position %d", len(k), last))
			}
			pos := binary.BigEndian.Uint64(k)
			r, err := parseRecord(v)
			if err != nil {
				return corrupt(op, "", fmt.Errorf("record at position %d: %w", pos, err))
			}
			last = pos
			if f != nil && !f.Match(string(r.stream), string(r.typ)) {
				continue
			}
			out = append(out, d.event(pos, &r))
		}
		more = k != nil
		return nil
	})
	if into != nil {
		into.Events = out[:0]
		if err == nil {
			into.Events = out
		}
	}
	if err != nil {
		return nil, after, false, err
	}
	return out, last, more, nil
}

// ReadStream returns up to max events of stream from revision from in the
// given direction; max <= 0 means all. Backwards from End, or from any
// revision past the last, starts at the last event. Forwards past the end
// returns no events.
//
// Errors: ErrStreamNotFound; ErrInvalidArgument (unknown direction);
// ErrClosed; ErrCorrupt.
func (s *Store) ReadStream(ctx context.Context, stream string, dir events.Direction, from uint64, max int) ([]events.RecordedEvent, error) {
	const op = "read stream"
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if dir != events.Forwards && dir != events.Backwards {
		return nil, errStream(events.CodeInvalidArgument, op, stream, fmt.Sprintf("unknown direction %d", dir))
	}
	var out []events.RecordedEvent
	err := s.view(op, stream, func(tx *bbolt.Tx) error {
		b := bucketsOf(tx)
		v := b.streams.Get([]byte(stream))
		if v == nil {
			return errStream(events.CodeStreamNotFound, op, stream, "")
		}
		h, inline, ok := parseStream(v)
		if !ok {
			return corrupt(op, stream, errors.New("stream head does not decode"))
		}
		var n uint64
		if dir == events.Forwards {
			if from > h.revision {
				return nil
			}
			n = h.revision - from + 1
		} else {
			from = min(from, h.revision)
			n = from + 1
		}
		if max > 0 && uint64(max) < n {
			n = uint64(max)
		}
		checked := 0
		check := func() error {
			if checked++; checked%4096 == 0 {
				return ctx.Err()
			}
			return nil
		}
		var err error
		out, err = readRuns(b, runsOf(b, stream, inline), stream, dir, from, n, check)
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			return corrupt(op, stream, err)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Subscribe starts a catch-up subscription to the events after after that
// match f. Next is for one goroutine at a time; Close may be called from any.
//
// Errors: ErrClosed.
func (s *Store) Subscribe(ctx context.Context, after events.Position, f events.Filter) (events.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, errClosed("subscribe")
	}
	sub := &subscription{s: s, after: uint64(after), closed: make(chan struct{})}
	if len(f.StreamPrefixes) > 0 || len(f.Types) > 0 {
		sub.f = &f
	}
	return sub, nil
}

var _ events.PageSubscription = (*subscription)(nil)

type subscription struct {
	s     *Store
	f     *events.Filter
	after uint64                 // the last position looked at
	buf   []events.RecordedEvent // read but not yet delivered

	closed    chan struct{}
	closeOnce sync.Once
}

// Next returns the next matching event, waiting for one to commit if need
// be. A Next that ends with ctx's error loses nothing: the following Next
// carries on from the same place.
//
// Errors: ctx's error; ErrClosed (the subscription or the store closed);
// ErrCorrupt.
func (sub *subscription) Next(ctx context.Context) (events.RecordedEvent, error) {
	for {
		if err := sub.ended(ctx); err != nil {
			return events.RecordedEvent{}, err
		}
		if len(sub.buf) > 0 {
			e := sub.buf[0]
			sub.buf[0] = events.RecordedEvent{}
			sub.buf = sub.buf[1:]
			return e, nil
		}
		// Take the signal before reading: a commit the read misses closes it.
		sig := sub.s.commitSignal()
		page, last, more, err := sub.s.scan(ctx, "next", sub.after, subscriptionScan, subscriptionScan, sub.f, nil)
		if err != nil {
			return events.RecordedEvent{}, err
		}
		sub.after = last
		if len(page) > 0 || more {
			sub.buf = page
			continue
		}
		if err := sub.wait(ctx, sig); err != nil {
			return events.RecordedEvent{}, err
		}
	}
}

// ended reports, without blocking, why Next may not go on: ctx's error, or
// ErrClosed once the subscription or the store closed.
func (sub *subscription) ended(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-sub.closed:
		return errClosed("next")
	case <-sub.s.done:
		return errClosed("next")
	default:
		return nil
	}
}

// wait blocks until sig closes (a commit) and returns nil, or returns
// ctx's error or ErrClosed.
func (sub *subscription) wait(ctx context.Context, sig <-chan struct{}) error {
	select {
	case <-sig:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-sub.closed:
		return errClosed("next")
	case <-sub.s.done:
		return errClosed("next")
	}
}

// NextPage is Next for up to max events at a time (subscriptionScan when
// max <= 0), read into p's recycled memory (events.PageSubscription). A
// filtered subscription looks at no more than subscriptionScan records a
// read; an unfiltered one fills the page when the log holds enough.
func (sub *subscription) NextPage(ctx context.Context, max int, p *events.Page) error {
	if max <= 0 {
		max = subscriptionScan
	}
	scan := subscriptionScan
	if sub.f == nil {
		scan = max
	}
	for {
		p.Reset()
		if err := sub.ended(ctx); err != nil {
			return err
		}
		if len(sub.buf) > 0 { // left by Next
			n := min(max, len(sub.buf))
			p.Events = append(p.Events, sub.buf[:n]...)
			clear(sub.buf[:n])
			sub.buf = sub.buf[n:]
			return nil
		}
		sig := sub.s.commitSignal()
		_, last, more, err := sub.s.scan(ctx, "next", sub.after, max, scan, sub.f, p)
		if err != nil {
			return err
		}
		sub.after = last
		if len(p.Events) > 0 {
			return nil
		}
		if more {
			continue
		}
		if err := sub.wait(ctx, sig); err != nil {
			return err
		}
	}
}

// Close ends the subscription; a blocked Next returns ErrClosed.
func (sub *subscription) Close() error {
	sub.closeOnce.Do(func() { close(sub.closed) })
	return nil
}
