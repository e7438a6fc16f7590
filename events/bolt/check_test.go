package bolt

import (
	"context"
	"fmt"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
)

// logHeads reads the whole log and returns each stream's head, and the
// last position.
func logHeads(t *testing.T, s *Store) (map[string]head, events.Position) {
	t.Helper()
	heads := map[string]head{}
	after := events.Start
	for {
		page, err := s.ReadAll(context.Background(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return heads, after
		}
		for _, e := range page {
			heads[e.Stream] = head{revision: e.Revision, position: uint64(e.Position), hash: e.Hash}
		}
		after = page[len(page)-1].Position
	}
}

// checkIndexClean runs CheckIndex with the heads read from the log and
// expects every stream's head to agree and no mismatch.
func checkIndexClean(t *testing.T, s *Store) {
	t.Helper()
	heads, last := logHeads(t, s)
	seen := map[string]bool{}
	checked, err := s.CheckIndex(context.Background(), last,
		func(stream string, rev uint64, pos events.Position, hash events.Hash) bool {
			if seen[stream] {
				t.Errorf("stream %q listed twice", stream)
			}
			seen[stream] = true
			if h := (head{rev, uint64(pos), hash}); h != heads[stream] {
				t.Errorf("stream %q: head %+v; the log's %+v", stream, h, heads[stream])
				return false
			}
			return true
		},
		func(stream, index, log string) {
			t.Errorf("stream %q: the index says %s; the log says %s", stream, index, log)
		})
	if err != nil || !checked {
		t.Fatalf("CheckIndex = %v, %v; want checked", checked, err)
	}
	if len(seen) != len(heads) {
		t.Errorf("CheckIndex listed %d streams; the log has %d", len(seen), len(heads))
	}
}

// TestCheckIndex: an intact index checks clean whatever way its streams
// keep their runs (inline, joined into one, in the index bucket) (TestFormat1 checks format 1 files), and nothing is
// checked once the log has grown past the walk.
func TestCheckIndex(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	checkIndexClean(t, s) // empty
	app := func(stream string, i int) {
		t.Helper()
		evs := make([]events.EventData, 1+i%3)
		for j := range evs {
			evs[j] = ev("t.Check", fmt.Sprint(stream, i, "-", j))
		}
		if _, err := s.Append(ctx, stream, events.Any, evs...); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		app("indexed", i)
		if i < 5 {
			app("inline", i)
		} else {
			app("other", i)
		}
	}
	for i := range 5 {
		app("one-run", i)
	}
	for stream, want := range map[string][2]int{"indexed": {0, 30}, "inline": {5, 0}, "one-run": {1, 0}} {
		if in, ix := runsLayout(t, s, stream); in != want[0] || ix != want[1] {
			t.Fatalf("%s: %d inline runs, %d indexed; want %d and %d", stream, in, ix, want[0], want[1])
		}
	}
	checkIndexClean(t, s)
	_, last := logHeads(t, s)
	called := false
	checked, err := s.CheckIndex(ctx, last-1,
		func(string, uint64, events.Position, events.Hash) bool { called = true; return true },
		func(string, string, string) { called = true })
	if err != nil || checked || called {
		t.Errorf("CheckIndex after a walk to %d of a log that ends at %d = %v, %v (called %v); want nothing checked", last-1, last, checked, err, called)
	}
}
