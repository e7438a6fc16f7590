package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
)

func testConcurrency(t *testing.T, s *suite) {
	t.Run("ExactRace", func(t *testing.T) {
		// Many writers race for each revision of one stream with Exact: each
		// revision has exactly one winner and the stream has no gaps.
		st := s.store(t)
		const writers = 8
		revs := 120
		if testing.Short() {
			revs = 40
		}
		var (
			mu   sync.Mutex
			wins = map[uint64]events.ID{}
			errs []error
		)
		fail := func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				exp := events.NoStream
				next := uint64(0)
				for next < uint64(revs) {
					e := ev("storetest.Raced", fmt.Sprintf("writer %d for revision %d", w, next))
					res, err := st.Append(context.Background(), "race", exp, e)
					if err == nil {
						if res.NextExpectedRevision != next {
							fail(fmt.Errorf("Append(%v) won revision %d; want %d", exp, res.NextExpectedRevision, next))
							return
						}
						mu.Lock()
						if prev, ok := wins[next]; ok {
							errs = append(errs, fmt.Errorf("revision %d won twice: by %s and %s", next, prev, e.ID))
						}
						wins[next] = e.ID
						mu.Unlock()
						next++
						exp = events.Exact(next - 1)
						continue
					}
					var ee *events.Error
					if !errors.As(err, &ee) || ee.Code != events.CodeWrongExpectedRevision {
						fail(fmt.Errorf("Append(%v) = %v; want success or %v", exp, err, events.ErrWrongExpectedRevision))
						return
					}
					if ee.Actual < int64(next) {
						fail(fmt.Errorf("Append(%v) lost with Actual %d; want at least %d", exp, ee.Actual, next))
						return
					}
					next = uint64(ee.Actual) + 1
					exp = events.Exact(uint64(ee.Actual))
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			t.Error(err)
		}
		got := readStream(t, st, "race")
		if len(got) < revs {
			t.Fatalf("stream has %d events; want at least %d", len(got), revs)
		}
		for i, e := range got {
			if e.Revision != uint64(i) {
				t.Fatalf("event %d has revision %d; want a gapless stream", i, e.Revision)
			}
			if id, ok := wins[e.Revision]; !ok || id != e.ID {
				t.Errorf("revision %d holds %s; want the winner %s", e.Revision, e.ID, id)
			}
		}
		if len(wins) != len(got) {
			t.Errorf("%d appends won; the stream has %d events", len(wins), len(got))
		}
		s.checkLog(t, readAll(t, st, 0))
	})

	t.Run("DistinctStreams", func(t *testing.T) {
		// Concurrent appends to distinct streams all succeed, each stream in
		// its own order.
		st := s.store(t)
		const writers = 16
		per := 40
		if testing.Short() {
			per = 10
		}
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for w := range writers {
			wg.Go(func() {
				stream := fmt.Sprintf("distinct-%d", w)
				for i := range per {
					exp := events.Exact(uint64(i - 1))
					if i == 0 {
						exp = events.NoStream
					}
					if _, err := st.Append(context.Background(), stream, exp, ev("storetest.Distinct", fmt.Sprint(i))); err != nil {
						errs[w] = fmt.Errorf("Append(%q, %v) = %v; want success", stream, exp, err)
						return
					}
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		all := readAll(t, st, 0)
		s.checkLog(t, all)
		if len(all) != writers*per {
			t.Errorf("ReadAll returned %d events; want %d", len(all), writers*per)
		}
		for w := range writers {
			stream := fmt.Sprintf("distinct-%d", w)
			for i, e := range readStream(t, st, stream) {
				if string(e.Data) != fmt.Sprint(i) {
					t.Errorf("%s revision %d holds %q; want %q", stream, i, e.Data, fmt.Sprint(i))
				}
			}
		}
	})
}
