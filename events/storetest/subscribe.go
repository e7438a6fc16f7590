package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events"
)

func subscribe(t testing.TB, st events.Store, after events.Position, f events.Filter) events.Subscription {
	t.Helper()
	sub, err := st.Subscribe(context.Background(), after, f)
	if err != nil {
		t.Fatalf("Subscribe(%d, %+v) = %v; want success", after, f, err)
	}
	t.Cleanup(func() { sub.Close() })
	return sub
}

func next(t testing.TB, ctx context.Context, sub events.Subscription) events.RecordedEvent {
	t.Helper()
	e, err := sub.Next(ctx)
	if err != nil {
		t.Fatalf("Next = %v; want an event", err)
	}
	return e
}

func testSubscribe(t *testing.T, s *suite) {
	t.Run("CatchUpThenLive", func(t *testing.T) {
		st := s.store(t)
		history := evs(5, "storetest.History", "h")
		mustAppend(t, st, "sub", events.NoStream, history[:3]...)
		mustAppend(t, st, "sub-2", events.NoStream, history[3:]...)
		sub := subscribe(t, st, events.Start, events.Filter{})
		ctx := timeout(t)
		var prev events.Position
		for i, want := range history {
			got := next(t, ctx, sub)
			stream := "sub"
			if i >= 3 {
				stream = "sub-2"
			}
			checkData(t, fmt.Sprintf("Next #%d (history)", i), got, stream, want)
			if got.Position <= prev {
				t.Errorf("Next #%d position %d after %d; want increasing", i, got.Position, prev)
			}
			prev = got.Position
		}
		// Next waits for events that commit later.
		live := evs(3, "storetest.Live", "l")
		appended := make(chan error, 1)
		go func() {
			time.Sleep(20 * time.Millisecond)
			for _, e := range live {
				if _, err := st.Append(context.Background(), "sub", events.Any, e); err != nil {
					appended <- fmt.Errorf("Append(live) = %v; want success", err)
					return
				}
			}
			appended <- nil
		}()
		defer func() {
			if err := <-appended; err != nil {
				t.Error(err)
			}
		}()
		for i, want := range live {
			got := next(t, ctx, sub)
			checkData(t, fmt.Sprintf("Next #%d (live)", i), got, "sub", want)
			if got.Position <= prev {
				t.Errorf("Next (live) position %d after %d; want increasing", got.Position, prev)
			}
			prev = got.Position
		}
	})

	t.Run("Pages", func(t *testing.T) { testSubscribePages(t, s) })

	t.Run("After", func(t *testing.T) {
		st := s.store(t)
		var results []events.AppendResult
		for i := range 6 {
			results = append(results, mustAppend(t, st, "after", events.Any, ev("storetest.After", fmt.Sprint(i))))
		}
		sub := subscribe(t, st, results[2].Position, events.Filter{})
		ctx := timeout(t)
		for i := 3; i < 6; i++ {
			if got := next(t, ctx, sub); got.Position != results[i].Position || string(got.Data) != fmt.Sprint(i) {
				t.Errorf("Next = %s; want position %d data %q", describe(got), results[i].Position, fmt.Sprint(i))
			}
		}
		// From the head: only what commits later.
		sub = subscribe(t, st, results[5].Position, events.Filter{})
		res := mustAppend(t, st, "after", events.Any, ev("storetest.After", "new"))
		if got := next(t, ctx, sub); got.Position != res.Position {
			t.Errorf("Next after Subscribe(head) = %s; want the new event at %d", describe(got), res.Position)
		}
	})

	t.Run("Filter", func(t *testing.T) {
		st := s.store(t)
		appendMix := func(round string) {
			for i, a := range []struct{ stream, typ string }{
				{"person-1", "storetest.A"}, {"org-1", "storetest.A"}, {"person-2", "storetest.B"},
				{"org-1", "storetest.B"}, {"personnel-1", "storetest.C"}, {"person-1", "storetest.B"},
			} {
				mustAppend(t, st, a.stream, events.Any, ev(a.typ, fmt.Sprintf("%s-%d", round, i)))
			}
		}
		appendMix("history")
		filters := []events.Filter{
			{StreamPrefixes: []string{"person-"}},
			{StreamPrefixes: []string{"org-", "personnel-"}},
			{Types: []string{"storetest.B"}},
			{Types: []string{"storetest.A", "storetest.C"}},
			{StreamPrefixes: []string{"person"}, Types: []string{"storetest.B", "storetest.C"}},
			{StreamPrefixes: []string{"nobody-"}},
		}
		subs := make([]events.Subscription, len(filters))
		for i, f := range filters {
			subs[i] = subscribe(t, st, events.Start, f)
		}
		// Much that no filter selects, before the live events.
		mustAppend(t, st, "zz-noise", events.NoStream, evs(2500, "storetest.Noise", "n")...)
		appendMix("live")
		end := mustAppend(t, st, "zz-end", events.NoStream, ev("storetest.End", "end"))
		all := readAll(t, st, 0)
		for i, f := range filters {
			var want []events.RecordedEvent
			for _, e := range all {
				if f.Match(e.Stream, e.Type) {
					want = append(want, e)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			var got []events.RecordedEvent
			for {
				e, err := subs[i].Next(ctx)
				if err != nil {
					break // the filter saw everything it will before the deadline
				}
				if e.Position > end.Position {
					t.Fatalf("filter %+v delivered %s after the end", f, describe(e))
				}
				got = append(got, e)
				if len(got) == len(want) {
					break
				}
			}
			cancel()
			if len(got) != len(want) {
				t.Errorf("filter %+v delivered %d events; want %d", f, len(got), len(want))
				continue
			}
			for j := range got {
				if !sameEvent(got[j], want[j]) {
					t.Errorf("filter %+v event %d = %s; want %s", f, j, describe(got[j]), describe(want[j]))
				}
			}
		}
	})

	t.Run("Close", func(t *testing.T) {
		st := s.store(t)
		mustAppend(t, st, "closing", events.NoStream, ev("storetest.Close", "c"))
		sub := subscribe(t, st, events.Start, events.Filter{})
		next(t, timeout(t), sub)
		done := make(chan error, 1)
		ctx := timeout(t)
		go func() {
			_, err := sub.Next(ctx)
			done <- err
		}()
		time.Sleep(20 * time.Millisecond)
		if err := sub.Close(); err != nil {
			t.Errorf("Subscription.Close() = %v; want nil", err)
		}
		select {
		case err := <-done:
			wantErr(t, "blocked Next after Subscription.Close", err, events.ErrClosed)
		case <-time.After(10 * time.Second):
			t.Fatal("Next still blocked 10s after Subscription.Close")
		}
		_, err := sub.Next(timeout(t))
		wantErr(t, "Next after Subscription.Close", err, events.ErrClosed)
		// The store and other subscriptions go on.
		mustAppend(t, st, "closing", events.Exact(0), ev("storetest.Close", "d"))
		if got := next(t, timeout(t), subscribe(t, st, events.Start, events.Filter{})); got.Revision != 0 {
			t.Errorf("new subscription's first event = %s; want revision 0", describe(got))
		}
	})

	t.Run("NoSkip", func(t *testing.T) { testNoSkip(t, s) })
	t.Run("Lockstep", func(t *testing.T) { testLockstep(t, s) })
}

// testLockstep appends one event at a time, each as soon as the subscriber
// has the previous one, so that commits keep landing while the subscriber
// is between finding nothing new and starting to wait: a subscription that
// can miss the wake-up of such a commit hangs here.
func testLockstep(t *testing.T, s *suite) {
	st := s.store(t)
	rounds := 300
	if testing.Short() {
		rounds = 100
	}
	sub := subscribe(t, st, events.Start, events.Filter{})
	got := make(chan events.RecordedEvent)
	errc := make(chan error, 1)
	go func() {
		defer close(got)
		for range rounds {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			e, err := sub.Next(ctx)
			cancel()
			if err != nil {
				errc <- err
				return
			}
			got <- e
		}
	}()
	for i := range rounds {
		res := mustAppend(t, st, "lockstep", events.Any, ev("storetest.Lockstep", fmt.Sprint(i)))
		select {
		case e, ok := <-got:
			if !ok {
				t.Fatalf("round %d: Next = %v; want the event at %d", i, <-errc, res.Position)
			}
			if e.Position != res.Position {
				t.Fatalf("round %d: Next = %s; want the event at %d", i, describe(e), res.Position)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: no event 10s after its append", i)
		}
	}
}

// testNoSkip tries hard to make a subscription miss an event that commits
// late: many appenders race (some losing on expected revisions) while
// subscribers, started before, during and after the load, follow the log.
// Every subscriber must see every position after its start exactly once and
// in order, and what it sees must be what ReadAll returns.
func testNoSkip(t *testing.T, s *suite) {
	st := s.store(t)
	appenders, rounds := 8, 60
	if testing.Short() {
		appenders, rounds = 4, 25
	}
	const endType = "storetest.End"
	ctx := timeout(t)

	type follower struct {
		after events.Position
		got   []events.RecordedEvent
		err   error
	}
	var followers []*follower
	var fwg sync.WaitGroup
	follow := func(after events.Position, f *follower) {
		f.after = after
		sub := subscribe(t, st, after, events.Filter{})
		fwg.Go(func() {
			for {
				e, err := sub.Next(ctx)
				if err != nil {
					f.err = err
					return
				}
				if n := len(f.got); n > 0 && e.Position <= f.got[n-1].Position {
					f.err = fmt.Errorf("Next delivered position %d after %d", e.Position, f.got[n-1].Position)
					return
				}
				f.got = append(f.got, e)
				if e.Type == endType {
					return
				}
			}
		})
	}
	start := func(after events.Position) {
		f := &follower{}
		followers = append(followers, f)
		follow(after, f)
	}
	start(events.Start)
	start(events.Start)

	var awg sync.WaitGroup
	var mu sync.Mutex
	var appendErrs []error
	startedMid := make(chan struct{})
	for a := range appenders {
		awg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(a), 7))
			for r := range rounds {
				if a == 0 && r == rounds/2 {
					close(startedMid)
				}
				stream := fmt.Sprintf("noskip-%d", rng.IntN(6))
				batch := evs(1+rng.IntN(3), "storetest.Load", fmt.Sprintf("%d-%d", a, r))
				exp := events.Any
				if rng.IntN(3) == 0 {
					// Guess a revision: often wrong, and a failed append
					// must leave no trace a subscriber could see.
					exp = events.Exact(uint64(rng.IntN(40)))
				}
				_, err := st.Append(context.Background(), stream, exp, batch...)
				if err != nil && !errors.Is(err, events.ErrWrongExpectedRevision) {
					mu.Lock()
					appendErrs = append(appendErrs, fmt.Errorf("Append(%q, %v) = %v", stream, exp, err))
					mu.Unlock()
				}
			}
		})
	}
	<-startedMid
	start(events.Start)
	if h, err := st.Head(ctx); err == nil {
		start(h)
	} else {
		t.Fatalf("Head() = %v", err)
	}
	awg.Wait()
	for _, err := range appendErrs {
		t.Error(err)
	}
	end := mustAppend(t, st, "noskip-end", events.NoStream, ev(endType, "end"))
	start(end.Position - 1) // sees just the end, at least
	fwg.Wait()

	all := readAll(t, st, 0)
	s.checkLog(t, all)
	if all[len(all)-1].Position != end.Position {
		t.Fatalf("ReadAll ends at %d; want the end event at %d", all[len(all)-1].Position, end.Position)
	}
	for i, f := range followers {
		if f.err != nil {
			t.Errorf("subscriber %d (after %d): %v", i, f.after, f.err)
			continue
		}
		var want []events.RecordedEvent
		for _, e := range all {
			if e.Position > f.after {
				want = append(want, e)
			}
		}
		if len(f.got) != len(want) {
			t.Errorf("subscriber %d (after %d) saw %d events; ReadAll has %d after its start", i, f.after, len(f.got), len(want))
		}
		for j := range min(len(f.got), len(want)) {
			if !sameEvent(f.got[j], want[j]) {
				t.Errorf("subscriber %d (after %d) event %d = %s; ReadAll has %s", i, f.after, j, describe(f.got[j]), describe(want[j]))
				break
			}
		}
	}
	t.Logf("%d events, %d subscribers", len(all), len(followers))
}

// testSubscribePages follows the log with events.NextPage, reusing one
// Page, mixed with Next: every event once, in order, bytes intact, history
// then live; through the subscription's NextPage when it is an
// events.PageSubscription.
func testSubscribePages(t *testing.T, s *suite) {
	st := s.store(t)
	for i := range 30 {
		data := strings.Repeat(fmt.Sprint(i), 1+i*89%300) // of differing sizes
		mustAppend(t, st, fmt.Sprintf("pages-%d", i%4), events.Any, ev("storetest.Pages", data))
	}
	want := readAll(t, st, 0)
	sub := subscribe(t, st, events.Start, events.Filter{})
	ctx := timeout(t)
	var p events.Page
	n := 0
	check := func(e events.RecordedEvent, how string) {
		t.Helper()
		if n >= len(want) || !sameEvent(e, want[n]) {
			t.Fatalf("%s: event %d = %s; want %s", how, n, describe(e), describe(want[min(n, len(want)-1)]))
		}
		n++
	}
	for round := 0; n < len(want); round++ {
		if round%3 == 2 { // Next in between
			check(next(t, ctx, sub), "Next between pages")
			continue
		}
		size := []int{1, 4, 0}[round%3]
		if err := events.NextPage(ctx, sub, size, &p); err != nil {
			t.Fatalf("NextPage(%d): %v", size, err)
		}
		if len(p.Events) == 0 || size > 0 && len(p.Events) > size {
			t.Fatalf("NextPage(%d) = %d events", size, len(p.Events))
		}
		for _, e := range p.Events {
			check(e, fmt.Sprintf("NextPage(%d)", size))
		}
	}
	// A NextPage waits for events that commit later.
	live := ev("storetest.Pages", "live")
	appended := make(chan events.AppendResult, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		res, err := st.Append(context.Background(), "pages-live", events.NoStream, live)
		if err != nil {
			t.Errorf("Append(live) = %v", err)
		}
		appended <- res
	}()
	if err := events.NextPage(ctx, sub, 0, &p); err != nil {
		t.Fatalf("NextPage (live): %v", err)
	}
	res := <-appended
	if len(p.Events) != 1 || p.Events[0].ID != live.ID || p.Events[0].Position != res.Position || string(p.Events[0].Data) != "live" {
		t.Fatalf("NextPage (live) = %d events, first %s; want the live event at %d", len(p.Events), describe(p.Events[0]), res.Position)
	}
}
