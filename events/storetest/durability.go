package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events"
)

func testDurability(t *testing.T, s *suite) {
	t.Run("Reopen", func(t *testing.T) {
		st := s.store(t)
		for i := range 20 {
			mustAppend(t, st, fmt.Sprintf("durable-%d", i%5), events.Any, evs(1+i%4, "storetest.Durable", fmt.Sprint(i))...)
		}
		mustAppend(t, st, "durable-big", events.NoStream, evs(1000, "storetest.Durable", "big")...)
		before := readAll(t, st, 0)
		head, err := st.Head(context.Background())
		if err != nil {
			t.Fatalf("Head() = %v", err)
		}

		st = s.reopen(t, st)
		after := readAll(t, st, 0)
		if len(after) != len(before) {
			t.Fatalf("after reopen ReadAll returned %d events; want %d", len(after), len(before))
		}
		for i := range after {
			if !sameEvent(after[i], before[i]) {
				t.Fatalf("after reopen ReadAll[%d] = %s; want %s", i, describe(after[i]), describe(before[i]))
			}
		}
		if h, err := st.Head(context.Background()); err != nil || h != head {
			t.Errorf("after reopen Head() = %d, %v; want %d", h, err, head)
		}
		// The streams carry on where they were.
		last := readStream(t, st, "durable-3")
		tail := last[len(last)-1]
		_, err = st.Append(context.Background(), "durable-3", events.NoStream, ev("storetest.Durable", "no"))
		wantErr(t, "Append(existing stream, NoStream) after reopen", err, events.ErrWrongExpectedRevision)
		res := mustAppend(t, st, "durable-3", events.Exact(tail.Revision), ev("storetest.Durable", "more"))
		got, err := st.ReadStream(context.Background(), "durable-3", events.Backwards, events.End, 1)
		if err != nil || len(got) != 1 {
			t.Fatalf("ReadStream(Backwards, End, 1) = %d events, %v", len(got), err)
		}
		if got[0].PrevHash != tail.Hash || got[0].Revision != tail.Revision+1 || got[0].Position != res.Position {
			t.Errorf("first event after reopen = %s prev %s; want revision %d position %d after hash %s",
				describe(got[0]), got[0].PrevHash, tail.Revision+1, res.Position, tail.Hash)
		}
		if res.Position <= head {
			t.Errorf("Append after reopen Position = %d; want more than the old head %d", res.Position, head)
		}
		rep, err := events.Verify(context.Background(), st, nil)
		if err != nil || rep.Break != nil {
			t.Errorf("Verify after reopen = %+v, %v; want no break", rep, err)
		}
	})

	t.Run("SubscribeAfterReopen", func(t *testing.T) {
		st := s.store(t)
		res := mustAppend(t, st, "resume", events.NoStream, evs(3, "storetest.Resume", "r")...)
		st = s.reopen(t, st)
		sub := subscribe(t, st, res.Position-1, events.Filter{})
		if got := next(t, timeout(t), sub); got.Position != res.Position {
			t.Errorf("Next after reopen = %s; want position %d", describe(got), res.Position)
		}
		live := mustAppend(t, st, "resume", events.Exact(2), ev("storetest.Resume", "live"))
		if got := next(t, timeout(t), sub); got.Position != live.Position {
			t.Errorf("Next (live) after reopen = %s; want position %d", describe(got), live.Position)
		}
	})
}

// testCloseInFlight closes the store under a load of appends: each append
// either completes, and is there after reopening, or fails with ErrClosed.
func testCloseInFlight(t *testing.T, s *suite) {
	st := s.store(t)
	if s.f.Reopen == nil {
		t.Skip("backend has no Reopen feature")
	}
	const writers = 8
	type outcome struct {
		id  events.ID
		res events.AppendResult
		err error
	}
	outcomes := make([][]outcome, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				e := ev("storetest.InFlight", fmt.Sprintf("%d-%d", w, i))
				res, err := st.Append(context.Background(), fmt.Sprintf("inflight-%d", w), events.Any, e)
				outcomes[w] = append(outcomes[w], outcome{e.ID, res, err})
				if err != nil {
					return
				}
			}
		})
	}
	time.Sleep(30 * time.Millisecond)
	reopened := s.reopen(t, st)
	wg.Wait()
	stored := map[events.ID]events.RecordedEvent{}
	for _, e := range readAll(t, reopened, 0) {
		stored[e.ID] = e
	}
	ok := 0
	for w := range writers {
		for _, o := range outcomes[w] {
			e, found := stored[o.id]
			switch {
			case o.err == nil && !found:
				t.Errorf("Append of %s succeeded with %+v but the event is gone after reopen", o.id, o.res)
			case o.err == nil && e.Position != o.res.Position:
				t.Errorf("Append of %s succeeded at position %d; after reopen it is at %d", o.id, o.res.Position, e.Position)
			case o.err == nil:
				ok++
			case !errors.Is(o.err, events.ErrClosed):
				t.Errorf("Append during Close = %v; want success or %v", o.err, events.ErrClosed)
			}
		}
	}
	t.Logf("%d appends completed before Close", ok)
}

func testClose(t *testing.T, s *suite) {
	t.Run("InFlight", func(t *testing.T) { testCloseInFlight(t, s) })
	t.Run("Calls", func(t *testing.T) { testCloseCalls(t, s) })
}

// testCloseCalls checks that Close ends subscriptions and later calls fail.
func testCloseCalls(t *testing.T, s *suite) {
	st := s.store(t)
	mustAppend(t, st, "closed", events.NoStream, ev("storetest.Close", "c"))
	sub := subscribe(t, st, events.Start, events.Filter{})
	next(t, timeout(t), sub)
	done := make(chan error, 1)
	ctx := timeout(t)
	go func() {
		_, err := sub.Next(ctx)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := st.Close(); err != nil {
		t.Fatalf("Close() = %v; want nil", err)
	}
	select {
	case err := <-done:
		wantErr(t, "blocked Next after the store's Close", err, events.ErrClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("Next still blocked 10s after the store's Close")
	}
	ctx = context.Background()
	_, err := st.Append(ctx, "closed", events.Any, ev("storetest.Close", "late"))
	wantErr(t, "Append after Close", err, events.ErrClosed)
	_, err = st.ReadAll(ctx, events.Start, 0)
	wantErr(t, "ReadAll after Close", err, events.ErrClosed)
	_, err = st.ReadStream(ctx, "closed", events.Forwards, 0, 0)
	wantErr(t, "ReadStream after Close", err, events.ErrClosed)
	_, err = st.Head(ctx)
	wantErr(t, "Head after Close", err, events.ErrClosed)
	_, err = st.Subscribe(ctx, events.Start, events.Filter{})
	wantErr(t, "Subscribe after Close", err, events.ErrClosed)
	_, err = sub.Next(ctx)
	wantErr(t, "Next after Close", err, events.ErrClosed)
}
