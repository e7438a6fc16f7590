package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
)

func testIdempotency(t *testing.T, s *suite) {
	t.Run("Retry", func(t *testing.T) {
		st := s.store(t)
		mustAppend(t, st, "retry", events.NoStream, ev("storetest.First", "0"))
		batch := evs(3, "storetest.Retried", "r")
		res := mustAppend(t, st, "retry", events.Exact(0), batch...)
		mustAppend(t, st, "retry-other", events.NoStream, ev("storetest.Other", "o"))
		mustAppend(t, st, "retry", events.Exact(3), ev("storetest.Later", "l"))
		before := readAll(t, st, 0)
		for _, exp := range []events.ExpectedRevision{events.Any, events.NoStream, events.StreamExists, events.Exact(0), events.Exact(99)} {
			got, err := st.Append(context.Background(), "retry", exp, batch...)
			if err != nil {
				t.Errorf("retried Append(%v) = %v; want the original result %+v", exp, err, res)
				continue
			}
			if got != res {
				t.Errorf("retried Append(%v) = %+v; want the original result %+v", exp, got, res)
			}
		}
		after := readAll(t, st, 0)
		if len(after) != len(before) {
			t.Fatalf("after retries ReadAll returned %d events; want %d", len(after), len(before))
		}
	})

	t.Run("DifferentBody", func(t *testing.T) {
		st := s.store(t)
		orig := ev("storetest.Body", "original")
		mustAppend(t, st, "body", events.NoStream, orig)
		for _, c := range []struct {
			name   string
			change func(*events.EventData)
		}{
			{"data", func(e *events.EventData) { e.Data = []byte("changed") }},
			{"type", func(e *events.EventData) { e.Type = "storetest.Changed" }},
			{"metadata", func(e *events.EventData) { e.Metadata = []byte(`{"by":"someone else"}`) }},
		} {
			e := orig
			c.change(&e)
			_, err := st.Append(context.Background(), "body", events.Any, e)
			wantErr(t, fmt.Sprintf("Append(stored ID, different %s)", c.name), err, events.ErrDuplicateID)
		}
		if got := readStream(t, st, "body"); len(got) != 1 || !got[0].SameBody(orig) {
			t.Errorf("after rejected appends the stream holds %d events; want the original only", len(got))
		}
	})

	t.Run("MixedStoredAndNew", func(t *testing.T) {
		st := s.store(t)
		stored := ev("storetest.Stored", "s")
		mustAppend(t, st, "mixed", events.NoStream, stored)
		fresh := ev("storetest.Fresh", "f")
		for _, batch := range [][]events.EventData{{stored, fresh}, {fresh, stored}} {
			_, err := st.Append(context.Background(), "mixed", events.Any, batch...)
			wantErr(t, "Append(stored and new IDs)", err, events.ErrDuplicateID)
		}
		if got := readStream(t, st, "mixed"); len(got) != 1 {
			t.Errorf("after rejected appends the stream holds %d events; want 1", len(got))
		}
		mustAppend(t, st, "mixed", events.Exact(0), fresh)
	})

	t.Run("OtherStream", func(t *testing.T) {
		st := s.store(t)
		e := ev("storetest.Moved", "m")
		mustAppend(t, st, "home", events.NoStream, e)
		_, err := st.Append(context.Background(), "away", events.Any, e)
		wantErr(t, "Append(an ID stored in another stream)", err, events.ErrDuplicateID)
		wantStreamNotFound(t, st, "away")
	})

	t.Run("ConcurrentRetries", func(t *testing.T) {
		st := s.store(t)
		batch := evs(2, "storetest.Raced", "x")
		const n = 8
		results := make([]events.AppendResult, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				results[i], errs[i] = st.Append(context.Background(), "raced", events.NoStream, batch...)
			})
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Errorf("concurrent Append #%d of the same events = %v; want success", i, errs[i])
			} else if results[i] != results[0] {
				t.Errorf("concurrent Append #%d = %+v; want %+v like the others", i, results[i], results[0])
			}
		}
		if got := readStream(t, st, "raced"); len(got) != 2 {
			t.Errorf("stream holds %d events; want 2", len(got))
		}
	})

	t.Run("AfterReopen", func(t *testing.T) {
		st := s.store(t)
		batch := evs(2, "storetest.Durable", "d")
		res := mustAppend(t, st, "durable-ids", events.NoStream, batch...)
		st = s.reopen(t, st)
		got, err := st.Append(context.Background(), "durable-ids", events.NoStream, batch...)
		if err != nil || got != res {
			t.Errorf("retried Append after reopen = %+v, %v; want %+v, nil", got, err, res)
		}
		changed := batch[1]
		changed.Data = []byte("changed")
		_, err = st.Append(context.Background(), "durable-ids", events.Any, changed)
		wantErr(t, "Append(stored ID, different body) after reopen", err, events.ErrDuplicateID)
		_, err = st.Append(context.Background(), "elsewhere", events.Any, batch[0])
		wantErr(t, "Append(ID stored in another stream) after reopen", err, events.ErrDuplicateID)
	})
}
