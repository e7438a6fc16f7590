package esdb

import (
	"context"
	"sync"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/cqhrss/subsidyledger/events"
)

// subscriptionBuffer is how many events a subscription holds ahead of its
// reader.
const subscriptionBuffer = 256

// Subscribe starts a catch-up subscription to $all for the store's events
// after after that match f. The filter is applied by EventStoreDB (stream
// prefixes if there are any, else event types) and again here, exactly. A
// subscription EventStoreDB drops (connection lost, server restart) is
// resumed from the last event it saw, for up to Options.ResubscribeFor;
// events are delivered exactly once, in position order. Next is for one
// goroutine at a time; Close may be called from any.
//
// Errors: ErrClosed.
func (s *Store) Subscribe(ctx context.Context, after events.Position, f events.Filter) (events.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errClosed("subscribe")
	}
	s.pumps.Add(1)
	s.mu.Unlock()
	sub := &subscription{
		s:      s,
		f:      f,
		after:  max(after, s.since),
		ch:     make(chan events.RecordedEvent, subscriptionBuffer),
		failed: make(chan struct{}),
		closed: make(chan struct{}),
	}
	sub.ctx, sub.cancel = context.WithCancel(s.base)
	go sub.pump()
	return sub, nil
}

type subscription struct {
	s      *Store
	f      events.Filter
	after  events.Position // the last position seen; only the pump touches it
	ch     chan events.RecordedEvent
	err    error         // why the pump stopped, set before failed closes
	failed chan struct{} // closed when the pump stopped for good with err

	ctx       context.Context // the pump's; ends at Close
	cancel    context.CancelFunc
	closed    chan struct{}
	closeOnce sync.Once
}

// filter returns the server-side filter for f: stream prefixes if f has
// any (types are then checked here), else event types (by prefix: the
// exact match is checked here), else the store's prefix, else every event
// that is not a system event.
func (sub *subscription) filter() *esdbclient.SubscriptionFilter {
	s, f := sub.s, sub.f
	switch {
	case len(f.StreamPrefixes) > 0:
		p := make([]string, len(f.StreamPrefixes))
		for i, x := range f.StreamPrefixes {
			p[i] = s.prefix + x
		}
		return &esdbclient.SubscriptionFilter{Type: esdbclient.StreamFilterType, Prefixes: p}
	case len(f.Types) > 0:
		return &esdbclient.SubscriptionFilter{Type: esdbclient.EventFilterType, Prefixes: f.Types}
	case s.prefix != "":
		return &esdbclient.SubscriptionFilter{Type: esdbclient.StreamFilterType, Prefixes: []string{s.prefix}}
	default:
		return esdbclient.ExcludeSystemEventsFilter()
	}
}

// pump subscribes to $all and feeds ch, resubscribing after drops with
// growing pauses. A subscription that drops within a second of starting
// counts as a failure to subscribe; after ResubscribeFor of such failures,
// or at once if EventStoreDB refuses the subscription as invalid, the
// subscription ends with the error.
func (sub *subscription) pump() {
	s := sub.s
	defer s.pumps.Done()
	defer sub.cancel()
	var failingSince time.Time
	backoff := 20 * time.Millisecond
	for {
		started := time.Now()
		es, err := sub.subscribe()
		if err == nil {
			err = sub.receive(es)
			es.Close()
			if err != nil {
				sub.stop(err) // an event that does not decode
				return
			}
			if sub.ctx.Err() != nil {
				return
			}
			s.log.Info("subscription to $all dropped; resubscribing", "after", sub.after)
			if time.Since(started) > time.Second { // it worked for a while: a new outage
				failingSince, backoff = time.Now(), 20*time.Millisecond
			}
			err = errConnLost
		}
		if sub.ctx.Err() != nil {
			return
		}
		err = s.fail(context.Background(), "next", "", err)
		if failingSince.IsZero() {
			failingSince = started
		}
		if events.CodeOf(err) != events.CodeUnavailable || time.Since(failingSince) > s.opts.ResubscribeFor {
			sub.stop(err) // refused for good, or unreachable for too long
			return
		}
		s.log.Debug("resubscribing to $all after a pause", "after", sub.after, "pause", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-sub.ctx.Done():
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// subscribe starts EventStoreDB's subscription after the last position
// seen, from a position known to hold a record.
func (sub *subscription) subscribe() (*esdbclient.Subscription, error) {
	s := sub.s
	o := esdbclient.SubscribeToAllOptions{From: esdbclient.Start{}, Filter: sub.filter()}
	if p, ok := s.start(sub.after); ok {
		o.From = esdbclient.Position{Commit: p, Prepare: p}
	}
	return do(s, sub.ctx, func(c *esdbclient.Client) (*esdbclient.Subscription, error) {
		return c.SubscribeToAll(sub.ctx, o) // lives on after the call: ends with sub.ctx
	})
}

// receive feeds ch from es until es drops (nil) or an event does not
// decode (the error).
func (sub *subscription) receive(es *esdbclient.Subscription) error {
	s := sub.s
	for {
		m := es.Recv()
		switch {
		case m.SubscriptionDropped != nil:
			return nil
		case m.EventAppeared == nil:
			continue // checkpoints, caught up, fell behind
		}
		r := m.EventAppeared.OriginalEvent()
		if r == nil {
			continue
		}
		p := events.Position(r.Position.Commit + 1)
		if p <= sub.after {
			continue // before the start, or seen before a drop
		}
		sub.after = p
		stream, ok := s.mine(r.StreamID, r.EventType)
		if !ok || !sub.f.Match(stream, r.EventType) {
			continue
		}
		e, err := s.decode("next", r)
		if err != nil {
			return err
		}
		select {
		case sub.ch <- e:
		case <-sub.ctx.Done():
			return nil
		}
	}
}

// stop ends the subscription with err, which Next returns once the events
// before it are delivered.
func (sub *subscription) stop(err error) {
	sub.err = err
	close(sub.failed)
}

// Next returns the next matching event, waiting for one if need be. A Next
// that ends with ctx's error loses nothing.
//
// Errors: ctx's error; ErrClosed (the subscription or the store closed);
// ErrCorrupt; ErrUnavailable (EventStoreDB could not be resubscribed to
// for Options.ResubscribeFor).
func (sub *subscription) Next(ctx context.Context) (events.RecordedEvent, error) {
	for {
		if err := ctx.Err(); err != nil {
			return events.RecordedEvent{}, err
		}
		select {
		case <-sub.closed:
			return events.RecordedEvent{}, errClosed("next")
		case <-sub.s.done:
			return events.RecordedEvent{}, errClosed("next")
		default:
		}
		select {
		case e := <-sub.ch:
			return e, nil
		default:
		}
		select {
		case e := <-sub.ch:
			return e, nil
		case <-sub.failed:
			select {
			case e := <-sub.ch:
				return e, nil
			default:
				return events.RecordedEvent{}, sub.err
			}
		case <-ctx.Done():
		case <-sub.closed:
		case <-sub.s.done:
		}
	}
}

// NextPage is Next for up to max events at a time (events.PageSubscription;
// max <= 0: as many as have arrived): it waits for the first, then takes
// those already received, so that a follower (the Merkle sealer) handles
// them together. The events' bytes are the subscription's, not p's.
func (sub *subscription) NextPage(ctx context.Context, max int, p *events.Page) error {
	p.Reset()
	e, err := sub.Next(ctx)
	if err != nil {
		return err
	}
	p.Events = append(p.Events, e)
	for max <= 0 || len(p.Events) < max {
		select {
		case e := <-sub.ch:
			p.Events = append(p.Events, e)
		default:
			return nil
		}
	}
	return nil
}

var _ events.PageSubscription = (*subscription)(nil)

// Close ends the subscription; a blocked Next returns ErrClosed.
func (sub *subscription) Close() error {
	sub.closeOnce.Do(func() {
		close(sub.closed)
		sub.cancel()
	})
	return nil
}
