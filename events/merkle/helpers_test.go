package merkle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
)

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openStore(t *testing.T) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "ledger.db"), bolt.Options{InitialMmapSize: 1 << 24})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fill appends n events to s over a few streams, in appends of 1 to 7
// events, starting at event number from.
func fill(t *testing.T, s events.Store, from, n int) {
	t.Helper()
	ctx := ctxT(t)
	for i := from; i < from+n; {
		k := min(1+i%7, from+n-i)
		evs := make([]events.EventData, k)
		for j := range evs {
			evs[j] = events.EventData{ID: events.DeriveID("test", fmt.Sprint(i+j)), Type: "test.Event",
				Metadata: []byte(fmt.Sprintf(`{"n":%d}`, i+j)), Data: []byte(fmt.Sprintf("payload %d of the test log", i+j))}
		}
		if _, err := s.Append(ctx, fmt.Sprintf("trainee-%d", i%5), events.Any, evs...); err != nil {
			t.Fatal(err)
		}
		i += k
	}
}

func readAll(t *testing.T, s events.Store) []events.RecordedEvent {
	t.Helper()
	var out []events.RecordedEvent
	after := events.Start
	for {
		page, err := s.ReadAll(ctxT(t), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Position
	}
}

func treeOf(evs []events.RecordedEvent, n int) Tree {
	var tr Tree
	for i := range evs[:n] {
		tr.Append(LeafHash(&evs[i]))
	}
	return tr
}

// sliceStore is a read-only events.Store over a slice of recorded events,
// which tests tamper with at will.
type sliceStore struct {
	events.Store // nil: the methods not overridden panic
	evs          []events.RecordedEvent
}

func (s *sliceStore) ReadAll(_ context.Context, after events.Position, max int) ([]events.RecordedEvent, error) {
	i := sort.Search(len(s.evs), func(i int) bool { return s.evs[i].Position > after })
	if max <= 0 {
		max = 100
	}
	return append([]events.RecordedEvent(nil), s.evs[i:min(len(s.evs), i+max)]...), nil
}

func (s *sliceStore) ReadStream(_ context.Context, stream string, dir events.Direction, from uint64, max int) ([]events.RecordedEvent, error) {
	var out []events.RecordedEvent
	for _, e := range s.evs {
		if e.Stream == stream && e.Revision >= from {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, events.ErrStreamNotFound
	}
	if dir == events.Backwards {
		out = out[len(out)-1:]
	}
	return out, nil
}

func (s *sliceStore) Head(context.Context) (events.Position, error) {
	if len(s.evs) == 0 {
		return events.Start, nil
	}
	return s.evs[len(s.evs)-1].Position, nil
}

// runSealer runs a sealer over s until the test ends.
func runSealer(t *testing.T, path string, s events.Store) *Sealer {
	t.Helper()
	sl, err := OpenSealer(path, s, SealerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		sl.Close()
	})
	return sl
}

func sealAll(t *testing.T, sl *Sealer, s events.Store) int64 {
	t.Helper()
	head, err := s.Head(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	size, err := sl.WaitSealed(ctxT(t), head)
	if err != nil {
		t.Fatal(err)
	}
	return size
}

func ctxWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// Subscribe delivers the slice's events after after, then blocks.
func (s *sliceStore) Subscribe(_ context.Context, after events.Position, _ events.Filter) (events.Subscription, error) {
	i := sort.Search(len(s.evs), func(i int) bool { return s.evs[i].Position > after })
	return &sliceSub{evs: s.evs[i:]}, nil
}

type sliceSub struct{ evs []events.RecordedEvent }

func (s *sliceSub) Next(ctx context.Context) (events.RecordedEvent, error) {
	if len(s.evs) == 0 {
		<-ctx.Done()
		return events.RecordedEvent{}, ctx.Err()
	}
	e := s.evs[0]
	s.evs = s.evs[1:]
	return e, nil
}

func (s *sliceSub) Close() error { return nil }

// benchDirs are the benchmarks' directories: their stores are shared by
// the benchmarks of one run (building one takes seconds), so TestMain
// removes them when the run ends.
var benchDirs struct {
	sync.Mutex
	list []string
}

func filepathTemp() (string, error) {
	d, err := os.MkdirTemp("", "merkle-bench")
	if err == nil {
		benchDirs.Lock()
		benchDirs.list = append(benchDirs.list, d)
		benchDirs.Unlock()
	}
	return d, err
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range benchDirs.list {
		os.RemoveAll(d)
	}
	os.Exit(code)
}
