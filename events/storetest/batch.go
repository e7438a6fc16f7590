package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
)

// testAppendMany checks events.AppendMany (a Batcher's AppendBatch, or the
// concurrent fallback): each op gets the verdict Append would give it
// alone, a failing op leaves no trace and does not fail the others, and
// every successful op is durable and readable when AppendMany returns.
func testAppendMany(t *testing.T, s *suite) {
	st := s.store(t)
	mustAppend(t, st, "many-existing", events.NoStream, evs(2, "storetest.Setup", "s")...)
	retried := ev("storetest.Retried", "r")
	mustAppend(t, st, "many-retried", events.NoStream, retried)
	mixed := []events.EventData{retried, ev("storetest.New", "n")}

	ops := []*events.AppendOp{
		{Stream: "many-new-a", Expected: events.NoStream, Events: evs(3, "storetest.Many", "a")},
		{Stream: "many-existing", Expected: events.Exact(1), Events: evs(2, "storetest.Many", "b")},
		{Stream: "many-existing-conflict", Expected: events.Exact(4), Events: evs(1, "storetest.Many", "c")},
		{Stream: "", Expected: events.Any, Events: evs(1, "storetest.Many", "d")},
		{Stream: "many-retried", Expected: events.NoStream, Events: []events.EventData{retried}},
		{Stream: "many-mixed", Expected: events.Any, Events: mixed},
		{Stream: "many-new-b", Expected: events.Any, Events: evs(1, "storetest.Many", "e")},
	}
	events.AppendMany(context.Background(), st, ops)

	ok := func(i int, next uint64) {
		t.Helper()
		if ops[i].Err != nil {
			t.Errorf("op %d (%s) = %v; want success", i, ops[i].Stream, ops[i].Err)
		} else if ops[i].Result.NextExpectedRevision != next {
			t.Errorf("op %d (%s) NextExpectedRevision = %d; want %d", i, ops[i].Stream, ops[i].Result.NextExpectedRevision, next)
		}
	}
	ok(0, 2)
	ok(1, 3)
	wantErr(t, "op 2 (wrong expected revision)", ops[2].Err, events.ErrWrongExpectedRevision)
	wantStreamNotFound(t, st, "many-existing-conflict")
	wantErr(t, "op 3 (empty stream name)", ops[3].Err, events.ErrInvalidArgument)
	ok(4, 0) // idempotent retry: the original result
	wantErr(t, "op 5 (stored and new ids mixed)", ops[5].Err, events.ErrDuplicateID)
	wantStreamNotFound(t, st, "many-mixed")
	ok(6, 0)

	for i, want := range map[int]int{0: 3, 1: 4, 4: 1, 6: 1} {
		stream := ops[i].Stream
		got := readStream(t, st, stream)
		if len(got) != want {
			t.Errorf("stream %s has %d events after AppendMany; want %d", stream, len(got), want)
			continue
		}
		n := len(ops[i].Events)
		s.checkFirstPosition(t, fmt.Sprintf("op %d (%s)", i, stream), ops[i].Result, got[len(got)-n:])
	}
	// Positions are distinct and the log holds exactly the successes.
	seen := map[events.Position]bool{}
	for _, i := range []int{0, 1, 6} {
		p := ops[i].Result.Position
		if seen[p] {
			t.Errorf("op %d shares position %d with another op", i, p)
		}
		seen[p] = true
	}
	if got, want := len(readAll(t, st, 100)), 2+1+3+2+1; got != want {
		t.Errorf("log holds %d events; want %d", got, want)
	}

	t.Run("Many", func(t *testing.T) {
		st := s.store(t)
		var ops []*events.AppendOp
		for i := range 200 {
			ops = append(ops, &events.AppendOp{Stream: fmt.Sprintf("many-%d", i), Expected: events.NoStream, Events: evs(1+i%3, "storetest.Many", "m")})
		}
		events.AppendMany(context.Background(), st, ops)
		total := 0
		for i, o := range ops {
			if o.Err != nil {
				t.Fatalf("op %d = %v", i, o.Err)
			}
			total += len(o.Events)
		}
		if got := len(readAll(t, st, 1000)); got != total {
			t.Errorf("log holds %d events; want %d", got, total)
		}
		for i, o := range ops {
			s.checkFirstPosition(t, fmt.Sprintf("op %d", i), o.Result, readStream(t, st, o.Stream))
		}
	})
	t.Run("CancelledContext", func(t *testing.T) {
		st := s.store(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		ops := []*events.AppendOp{{Stream: "many-cancelled", Expected: events.Any, Events: evs(1, "storetest.Many", "x")}}
		events.AppendMany(ctx, st, ops)
		if ops[0].Err == nil {
			t.Error("AppendMany with a cancelled context succeeded")
		}
	})
}
