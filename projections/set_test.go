package projections_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/projections"
)

// named is a tally under another name, so that a set can hold several.
type named struct {
	*tally
	name string
}

func (n named) Name() string { return n.name }

// readCounter counts the events read through ReadAll (what a build reads
// the log with when the store has no page reader).
type readCounter struct {
	events.Store
	read atomic.Int64
}

func (c *readCounter) ReadAll(ctx context.Context, after events.Position, limit int) ([]events.RecordedEvent, error) {
	evs, err := c.Store.ReadAll(ctx, after, limit)
	c.read.Add(int64(len(evs)))
	return evs, err
}

// runSet runs a set of fs until the test ends.
func runSet(t *testing.T, cfg projections.Config, fs ...projections.Factory) *projections.Set {
	t.Helper()
	set, err := projections.NewSet(cfg, fs...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- set.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return set
}

// The runners of a set far behind the log catch up in one build per
// position they start from, reading the log once for all of them, and end
// where each catching up alone would; then each follows the log.
func TestSetCatchesUpInOneBuildPerPosition(t *testing.T) {
	dir := t.TempDir()
	bs := openStore(t, filepath.Join(dir, "log.db"))
	t.Cleanup(func() { bs.Close() })
	vals := make([]int32, 300)
	for i := range vals {
		vals[i] = int32(i + 1)
	}
	appendTargets(t, bs, vals...) // 600 events
	cps, err := projections.OpenCheckpoints(filepath.Join(dir, "cp"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cps.Close() })
	factory := func(name string) projections.Factory {
		return func() projections.Projection { return named{&tally{}, name} }
	}
	// c has a checkpoint at 100; a and b have none.
	c := factory("c")()
	if _, err := projections.Build(context.Background(), bs, []projections.Projection{c}, projections.BuildOptions{Until: &projections.At{Position: 100}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cps.Save(c, 100, time.Now(), idAt(t, bs, 100)); err != nil {
		t.Fatal(err)
	}

	store := &readCounter{Store: bs}
	set := runSet(t, projections.Config{Store: store, Checkpoints: cps, CatchUpBatch: 50}, factory("a"), factory("b"), factory("c"))
	waitFor(t, "every projection ready", func() bool { return set.Ready() == nil })
	if got, want := store.read.Load(), int64(600+500+1); got != want {
		t.Errorf("the catch-up read %d events; want %d (the log once from the start for a and b, once from 100 for c, and c's checkpoint's event to check it is this log's)", got, want)
	}
	want := &tally{}
	if _, err := projections.Build(context.Background(), bs, []projections.Projection{want}, projections.BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	wantSeen, wantSum := want.state()
	check := func(when string, wantSeen []events.Position, wantSum int64) {
		t.Helper()
		for _, name := range []string{"a", "b", "c"} {
			r, _ := set.Runner(name)
			seen, sum := r.Current().(named).state()
			if !slices.Equal(seen, wantSeen) || sum != wantSum {
				t.Errorf("%s: %s applied %d events (sum %d); want %d (sum %d)", when, name, len(seen), sum, len(wantSeen), wantSum)
			}
		}
	}
	check("after the catch-up", wantSeen, wantSum)

	// Then each follows the log.
	appendTargets(t, bs, 1000)
	waitFor(t, "the new event applied", func() bool {
		for _, name := range []string{"a", "b", "c"} {
			if r, _ := set.Runner(name); r.Position() != 602 {
				return false
			}
		}
		return true
	})
	check("after following", append(wantSeen, 601), wantSum+1000)
}

// When one projection fails during the shared catch-up, the others still
// catch up and follow the log; the failing one stops just before its
// failing event, as it would alone.
func TestSetCatchUpWithAFailingProjection(t *testing.T) {
	dir := t.TempDir()
	bs := openStore(t, filepath.Join(dir, "log.db"))
	t.Cleanup(func() { bs.Close() })
	vals := make([]int32, 100)
	for i := range vals {
		vals[i] = int32(i + 1) // target 13 is the event at position 25
	}
	appendTargets(t, bs, vals...)
	factory := func(name string, poison int32) projections.Factory {
		return func() projections.Projection {
			p := named{&tally{}, name}
			p.failOn.Store(poison)
			return p
		}
	}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	set := runSet(t, projections.Config{Store: bs, CatchUpBatch: 50, Logger: log}, factory("a", 0), factory("poisoned", 13), factory("b", 0))
	poisoned, _ := set.Runner("poisoned")
	waitFor(t, "the others caught up and the poisoned one stopped", func() bool {
		for _, name := range []string{"a", "b"} {
			if r, _ := set.Runner(name); r.Ready() != nil {
				return false
			}
		}
		return poisoned.Failure() != nil
	})
	if f := poisoned.Failure(); f.Position != 25 || poisoned.Position() != 24 {
		t.Errorf("poisoned: failure at %d, position %d; want the failure at 25 and position 24", f.Position, poisoned.Position())
	}
	for _, name := range []string{"a", "b"} {
		r, _ := set.Runner(name)
		if seen, sum := r.Current().(named).state(); len(seen) != 100 || sum != 5050 || r.Position() != 200 {
			t.Errorf("%s: %d events applied (sum %d), position %d; want 100 (5050) at 200", name, len(seen), sum, r.Position())
		}
		// Caught up by a build of their own, not event by event.
		if said := logs.String(); !regexp.MustCompile(`msg="caught up" projection=` + name + ` .*projections=1 `).MatchString(said) {
			t.Errorf("%s did not catch up alone after the shared build failed; log:\n%s", name, said)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// concurrency tracks how many restores run at once.
type concurrency struct{ now, most atomic.Int32 }

// slowRestore is a named tally whose restore takes a while and counts
// itself in c.
type slowRestore struct {
	named
	c *concurrency
}

func (s slowRestore) Restore(r io.Reader) error {
	n := s.c.now.Add(1)
	defer s.c.now.Add(-1)
	for m := s.c.most.Load(); n > m && !s.c.most.CompareAndSwap(m, n); m = s.c.most.Load() {
	}
	time.Sleep(20 * time.Millisecond)
	return s.named.Restore(r)
}

// Config.Restores bounds the snapshots a set restores at once; zero
// restores them all at once.
func TestSetRestoresAtMostRestoresAtOnce(t *testing.T) {
	for _, tc := range []struct{ restores, most int32 }{{1, 1}, {2, 2}, {0, 4}} {
		dir := t.TempDir()
		bs := openStore(t, filepath.Join(dir, "log.db"))
		t.Cleanup(func() { bs.Close() })
		appendTargets(t, bs, 1, 2, 3)
		cps, err := projections.OpenCheckpoints(filepath.Join(dir, "cp"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cps.Close() })
		var c concurrency
		var fs []projections.Factory
		for _, name := range []string{"a", "b", "c", "d"} {
			p := slowRestore{named{&tally{}, name}, &c}
			if _, err := projections.Build(context.Background(), bs, []projections.Projection{p}, projections.BuildOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := cps.Save(p, 6, time.Now(), idAt(t, bs, 6)); err != nil {
				t.Fatal(err)
			}
			fs = append(fs, func() projections.Projection { return slowRestore{named{&tally{}, name}, &c} })
		}
		set := runSet(t, projections.Config{Store: bs, Checkpoints: cps, Restores: int(tc.restores)}, fs...)
		waitFor(t, "every projection ready", func() bool { return set.Ready() == nil })
		got := c.most.Load()
		if tc.restores > 0 && got > tc.most || tc.restores == 0 && got < 2 {
			t.Errorf("Restores %d: %d restores ran at once; want at most %d (all four at once for 0)", tc.restores, got, tc.most)
		}
		for _, name := range []string{"a", "b", "c", "d"} {
			r, _ := set.Runner(name)
			if seen, sum := r.Current().(slowRestore).state(); len(seen) != 3 || sum != 6 {
				t.Errorf("Restores %d: %s restored %d events (sum %d); want 3 (sum 6)", tc.restores, name, len(seen), sum)
			}
		}
	}
}
