package ledgerctl

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/esdb"
	"github.com/cqhrss/subsidyledger/events/esdb/esdbtest"
	"github.com/cqhrss/subsidyledger/projections/readmodels"
)

// TestMigrateToEventStoreDBStandIn copies the fixture store into the
// in-process EventStoreDB STAND-IN (not a real EventStoreDB): every hash
// link must come out identical and both logs verify; running it again
// resumes without copying anything twice.
func TestMigrateToEventStoreDBStandIn(t *testing.T) {
	standIn := esdbtest.NewStandIn()
	if err := standIn.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer standIn.Stop()
	path := copyStore(t)
	out, _, err := run(t, "", nil, "migrate", "--store", path, "--to", standIn.URL(), "--progress", "off")
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	if !strings.Contains(out, "verdict: OK") {
		t.Fatalf("migrate printed %q; want an OK verdict", out)
	}
	for _, p := range readmodels.Fresh() {
		if !strings.Contains(out, p.Name()) {
			t.Errorf("migrate printed %q; want read model %q compared", out, p.Name())
		}
	}
	t.Log(out)
	n := standIn.Events()
	if n == 0 {
		t.Fatal("nothing was copied")
	}
	out, _, err = run(t, "", nil, "migrate", "--store", path, "--to", standIn.URL(), "--progress", "off")
	if err != nil || !strings.Contains(out, "verdict: OK") || standIn.Events() != n {
		t.Fatalf("second migrate = %v, %q, %d events (was %d); want a no-op", err, out, standIn.Events(), n)
	}
	if _, _, err := run(t, "", nil, "migrate", "--store", path); exitCode(err) != 2 {
		t.Fatalf("migrate without --to = %v; want a usage error", err)
	}
}

// TestMigrateComparesReadModels: a copy that keeps every stream and every
// hash link but not the global order of the log — streams copied one after
// the other, into the EventStoreDB STAND-IN (not a real EventStoreDB) —
// passes Verify, yet its read models are not the source's; the comparison
// names the first that differs. The same comparison of the source with
// itself finds nothing (the rebuilt states are deterministic).
func TestMigrateComparesReadModels(t *testing.T) {
	ctx := context.Background()
	standIn := esdbtest.NewStandIn()
	if err := standIn.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer standIn.Stop()
	src, err := openStore(copyStore(t))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := esdb.Open(ctx, standIn.URL(), esdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()

	if names, err := compareReadModels(ctx, src, src); err != nil || len(names) != len(readmodels.Factories()) {
		t.Fatalf("compareReadModels(source, source) = %v, %v; want every read model equal", names, err)
	}
	// Stream by stream, in name order.
	byStream := map[string][]events.RecordedEvent{}
	for after := events.Start; ; {
		page, err := src.ReadAll(ctx, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, ev := range page {
			byStream[ev.Stream] = append(byStream[ev.Stream], ev)
			after = ev.Position
		}
	}
	streams := make([]string, 0, len(byStream))
	for s := range byStream {
		streams = append(streams, s)
	}
	slices.Sort(streams)
	for _, s := range streams {
		for _, ev := range byStream[s] {
			expected := events.NoStream
			if ev.Revision > 0 {
				expected = events.Exact(ev.Revision - 1)
			}
			if res, err := dst.Append(ctx, s, expected, ev.EventData); err != nil || res.LastHash != ev.Hash {
				t.Fatalf("copying %s revision %d: %v (hash %s; the source has %s)", s, ev.Revision, err, res.LastHash, ev.Hash)
			}
		}
	}
	if rep, err := events.Verify(ctx, dst, nil); err != nil || rep.Break != nil {
		t.Fatalf("Verify(reordered copy) = %+v, %v; want every hash link intact", rep, err)
	}
	_, err = compareReadModels(ctx, src, dst)
	var mm *ReadModelMismatch
	if !errors.As(err, &mm) {
		t.Fatalf("compareReadModels(source, reordered copy) = %v; want a *ReadModelMismatch", err)
	}
	known := false
	for _, p := range readmodels.Fresh() {
		known = known || p.Name() == mm.Model
	}
	if !known || !strings.Contains(mm.Error(), mm.Model) {
		t.Fatalf("mismatch %q names read model %q; want one of the read models, named in the message", mm.Error(), mm.Model)
	}
	t.Log(mm)
}
