package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events"
)

func testAppend(t *testing.T, s *suite) {
	t.Run("Ordering", func(t *testing.T) {
		st := s.store(t)
		type appended struct {
			stream string
			evs    []events.EventData
			res    events.AppendResult
		}
		var log []appended
		wantRev := map[string]uint64{}
		var prevPos events.Position
		for i, a := range []struct {
			stream string
			n      int
		}{{"order-a", 1}, {"order-b", 2}, {"order-a", 3}, {"order-c", 1}, {"order-b", 1}, {"order-a", 1}} {
			e := evs(a.n, "storetest.Ordered", fmt.Sprint(i))
			res := mustAppend(t, st, a.stream, events.Any, e...)
			last := wantRev[a.stream] + uint64(a.n) - 1
			if res.NextExpectedRevision != last {
				t.Errorf("Append(%q, %d events) NextExpectedRevision = %d; want %d", a.stream, a.n, res.NextExpectedRevision, last)
			}
			if res.Position <= prevPos {
				t.Errorf("Append #%d Position = %d; want more than the previous append's %d", i, res.Position, prevPos)
			}
			wantRev[a.stream] = last + 1
			prevPos = res.Position
			log = append(log, appended{a.stream, e, res})
		}
		all := readAll(t, st, 0)
		s.checkLog(t, all)
		i := 0
		for _, a := range log {
			for j, e := range a.evs {
				if i >= len(all) {
					t.Fatalf("ReadAll returned %d events; want more", len(all))
				}
				checkData(t, fmt.Sprintf("ReadAll event %d", i), all[i], a.stream, e)
				if j == 0 && i+len(a.evs) <= len(all) {
					s.checkFirstPosition(t, fmt.Sprintf("Append #%d", i), a.res, all[i:i+len(a.evs)])
				}
				if j == len(a.evs)-1 && (all[i].Position != a.res.Position || all[i].Revision != a.res.NextExpectedRevision || all[i].Hash != a.res.LastHash) {
					t.Errorf("ReadAll event %d = %s hash %s; want the append result %+v", i, describe(all[i]), all[i].Hash, a.res)
				}
				i++
			}
		}
		if i != len(all) {
			t.Errorf("ReadAll returned %d events; want %d", len(all), i)
		}
		if s.f.DensePositions && len(all) > 0 && all[0].Position != 1 {
			t.Errorf("first position = %d; want 1", all[0].Position)
		}
	})

	t.Run("InvalidArgument", func(t *testing.T) {
		st := s.store(t)
		good := ev("storetest.Good", "x")
		dup := ev("storetest.Dup", "y")
		for _, c := range []struct {
			name   string
			stream string
			evs    []events.EventData
		}{
			{"empty stream", "", []events.EventData{good}},
			{"no events", "invalid", nil},
			{"zero id", "invalid", []events.EventData{{Type: "storetest.NoID", Data: []byte("x")}}},
			{"no type", "invalid", []events.EventData{{ID: events.RandomID(), Data: []byte("x")}}},
			{"two events with one id", "invalid", []events.EventData{dup, ev("storetest.Other", "z"), dup}},
			{"second event invalid", "invalid", []events.EventData{good, {ID: events.RandomID()}}},
		} {
			_, err := st.Append(context.Background(), c.stream, events.Any, c.evs...)
			wantErr(t, fmt.Sprintf("Append(%s)", c.name), err, events.ErrInvalidArgument)
		}
		wantStreamNotFound(t, st, "invalid")
		if all := readAll(t, st, 0); len(all) != 0 {
			t.Errorf("after invalid appends ReadAll returned %d events; want none", len(all))
		}
		// The rejected IDs are not burned.
		mustAppend(t, st, "valid", events.NoStream, good, dup)
	})
}

func testExpectedRevision(t *testing.T, s *suite) {
	st := s.store(t)
	for i, c := range []struct {
		exists bool // the stream holds three events (last revision 2)
		exp    events.ExpectedRevision
		ok     bool
	}{
		{false, events.Any, true},
		{true, events.Any, true},
		{false, events.NoStream, true},
		{true, events.NoStream, false},
		{false, events.StreamExists, false},
		{true, events.StreamExists, true},
		{true, events.Exact(2), true},
		{true, events.Exact(1), false},
		{true, events.Exact(3), false},
		{false, events.Exact(0), false},
	} {
		stream := fmt.Sprintf("expect-%d", i)
		actual := int64(-1)
		if c.exists {
			mustAppend(t, st, stream, events.NoStream, evs(3, "storetest.Setup", "s")...)
			actual = 2
		}
		call := fmt.Sprintf("Append(stream with last revision %d, %v)", actual, c.exp)
		res, err := st.Append(context.Background(), stream, c.exp, ev("storetest.Expected", "e"))
		if c.ok {
			if err != nil {
				t.Errorf("%s = %v; want success", call, err)
			} else if res.NextExpectedRevision != uint64(actual+1) {
				t.Errorf("%s NextExpectedRevision = %d; want %d", call, res.NextExpectedRevision, actual+1)
			}
			continue
		}
		e := wantErr(t, call, err, events.ErrWrongExpectedRevision)
		if e.Code != events.CodeWrongExpectedRevision || e.Actual != actual || e.Stream != stream || e.Expected != c.exp {
			t.Errorf("%s = %+v; want Code %s, Actual %d, Stream %q, Expected %v", call, *e, events.CodeWrongExpectedRevision, actual, stream, c.exp)
		}
		if c.exists {
			if got := readStream(t, st, stream); len(got) != 3 {
				t.Errorf("after %s the stream has %d events; want 3", call, len(got))
			}
		} else {
			wantStreamNotFound(t, st, stream)
		}
	}
}

func testLargeBatch(t *testing.T, s *suite) {
	st := s.store(t)
	n := s.f.LargeBatch
	mustAppend(t, st, "before-large", events.NoStream, ev("storetest.Small", "x"))
	big := evs(n, "storetest.Large", strings.Repeat("p", 80))
	res := mustAppend(t, st, "large", events.NoStream, big...)
	if res.NextExpectedRevision != uint64(n-1) {
		t.Errorf("Append(%d events) NextExpectedRevision = %d; want %d", n, res.NextExpectedRevision, n-1)
	}
	got := readStream(t, st, "large")
	if len(got) != n {
		t.Fatalf("ReadStream(large) returned %d events; want %d", len(got), n)
	}
	for i := range got {
		checkData(t, fmt.Sprintf("ReadStream(large)[%d]", i), got[i], "large", big[i])
		if got[i].Revision != uint64(i) {
			t.Fatalf("ReadStream(large)[%d].Revision = %d; want %d", i, got[i].Revision, i)
		}
	}
	if got[n-1].Position != res.Position {
		t.Errorf("last event Position = %d; want the append's %d", got[n-1].Position, res.Position)
	}
	if s.f.DensePositions && got[n-1].Position-got[0].Position != events.Position(n-1) {
		t.Errorf("large append spans positions %d..%d; want %d dense positions", got[0].Position, got[n-1].Position, n)
	}
	all := readAll(t, st, 0)
	s.checkLog(t, all)
	if len(all) != n+1 {
		t.Errorf("ReadAll returned %d events; want %d", len(all), n+1)
	}
}

func testAtomicity(t *testing.T, s *suite) {
	t.Run("FailedAppendStoresNothing", func(t *testing.T) {
		st := s.store(t)
		stored := ev("storetest.Stored", "original")
		mustAppend(t, st, "atomic", events.NoStream, stored)
		changed := stored
		changed.Data = []byte("changed")
		fresh := evs(3, "storetest.Fresh", "f")
		// The third event reuses a stored ID with another body.
		_, err := st.Append(context.Background(), "atomic", events.Any, fresh[0], fresh[1], changed)
		wantErr(t, "Append(two new events and a stored ID with another body)", err, events.ErrDuplicateID)
		// The expected revision is wrong.
		_, err = st.Append(context.Background(), "atomic", events.Exact(5), fresh...)
		wantErr(t, "Append(three new events, wrong revision)", err, events.ErrWrongExpectedRevision)
		if got := readStream(t, st, "atomic"); len(got) != 1 {
			t.Fatalf("after failed appends the stream has %d events; want 1", len(got))
		}
		if all := readAll(t, st, 0); len(all) != 1 {
			t.Fatalf("after failed appends ReadAll returned %d events; want 1", len(all))
		}
		// None of the failed appends' IDs was taken.
		res := mustAppend(t, st, "atomic-elsewhere", events.NoStream, fresh...)
		if res.NextExpectedRevision != 2 {
			t.Errorf("Append(the failed appends' events) NextExpectedRevision = %d; want 2", res.NextExpectedRevision)
		}
	})

	t.Run("NoPartialReads", func(t *testing.T) {
		st := s.store(t)
		const batch = 20
		batches := 40
		if testing.Short() {
			batches = 10
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var wg sync.WaitGroup
		var readErr error
		var reads int
		wg.Go(func() {
			for ctx.Err() == nil {
				got, err := st.ReadStream(ctx, "batches", events.Forwards, 0, 0)
				if errors.Is(err, events.ErrStreamNotFound) || errors.Is(err, context.Canceled) {
					continue
				}
				if err != nil {
					readErr = fmt.Errorf("ReadStream(batches) = %v; want success", err)
					return
				}
				if len(got)%batch != 0 {
					readErr = fmt.Errorf("ReadStream(batches) saw %d events; want a multiple of the batch size %d", len(got), batch)
					return
				}
				all, err := st.ReadAll(ctx, events.Start, 10_000)
				if err != nil && !errors.Is(err, context.Canceled) {
					readErr = fmt.Errorf("ReadAll = %v; want success", err)
					return
				}
				if len(all)%batch != 0 {
					readErr = fmt.Errorf("ReadAll saw %d events; want a multiple of the batch size %d", len(all), batch)
					return
				}
				reads++
			}
		})
		for i := range batches {
			mustAppend(t, st, "batches", events.Any, evs(batch, "storetest.Batch", fmt.Sprint(i))...)
		}
		cancel()
		wg.Wait()
		if readErr != nil {
			t.Fatal(readErr)
		}
		t.Logf("%d concurrent reads saw only whole appends", reads)
	})
}

func testContext(t *testing.T, s *suite) {
	st := s.store(t)
	mustAppend(t, st, "ctx", events.NoStream, ev("storetest.Ctx", "a"))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	_, err := st.Append(cancelled, "ctx-new", events.Any, ev("storetest.Ctx", "b"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Append(cancelled ctx) = %v; want %v", err, context.Canceled)
	}
	wantStreamNotFound(t, st, "ctx-new")
	if _, err := st.ReadAll(cancelled, events.Start, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadAll(cancelled ctx) = %v; want %v", err, context.Canceled)
	}
	if _, err := st.ReadStream(cancelled, "ctx", events.Forwards, 0, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadStream(cancelled ctx) = %v; want %v", err, context.Canceled)
	}

	sub, err := st.Subscribe(context.Background(), events.Start, events.Filter{})
	if err != nil {
		t.Fatalf("Subscribe = %v; want success", err)
	}
	defer sub.Close()
	if _, err := sub.Next(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("Next(cancelled ctx) = %v; want %v", err, context.Canceled)
	}
	// Catch up, then wait in vain: the deadline ends Next.
	if _, err := sub.Next(context.Background()); err != nil {
		t.Fatalf("Next = %v; want the stored event", err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel2()
	if e, err := sub.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next(idle, deadline) = %s, %v; want %v", describe(e), err, context.DeadlineExceeded)
	}
	// A Next that ended with its context lost nothing.
	later := ev("storetest.Ctx", "later")
	mustAppend(t, st, "ctx", events.Exact(0), later)
	got, err := sub.Next(timeout(t))
	if err != nil {
		t.Fatalf("Next after an ended Next = %v; want the next event", err)
	}
	checkData(t, "Next after an ended Next", got, "ctx", later)
}

// timeout returns a context that ends a hung test rather than the binary.
func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testHead(t *testing.T, s *suite) {
	st := s.store(t)
	head := func() events.Position {
		t.Helper()
		h, err := st.Head(context.Background())
		if err != nil {
			t.Fatalf("Head() = %v; want success", err)
		}
		return h
	}
	if h := head(); h != events.Start {
		t.Fatalf("Head() of an empty store = %d; want Start", h)
	}
	e := evs(3, "storetest.Head", "h")
	res := mustAppend(t, st, "head", events.NoStream, e...)
	if h := head(); h != res.Position {
		t.Errorf("Head() = %d; want the append's position %d", h, res.Position)
	}
	mustAppend(t, st, "head", events.Any, e...) // an idempotent retry
	if _, err := st.Append(context.Background(), "head", events.NoStream, ev("storetest.Head", "x")); err == nil {
		t.Fatalf("Append(existing stream, NoStream) = nil; want an error")
	}
	if h := head(); h != res.Position {
		t.Errorf("Head() after a retry and a failed append = %d; want %d", h, res.Position)
	}
	res2 := mustAppend(t, st, "head-2", events.NoStream, ev("storetest.Head", "y"))
	if h := head(); h != res2.Position || h <= res.Position {
		t.Errorf("Head() = %d; want %d", h, res2.Position)
	}
	all := readAll(t, st, 0)
	if got := all[len(all)-1].Position; got != head() {
		t.Errorf("last ReadAll position = %d; want Head() %d", got, head())
	}
	if !slices.IsSorted(positions(all)) {
		t.Errorf("ReadAll positions %v are not sorted", positions(all))
	}
}
