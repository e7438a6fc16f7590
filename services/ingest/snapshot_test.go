package ingest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/services/internal/logbuf"
)

// Load restores the intake's state from the snapshot an earlier Load
// wrote and folds only the events after it; the result equals folding the
// whole log one record at a time (world, rejections, recent message ids).
func TestLoadRestoresItsSnapshotAndFoldsTheRest(t *testing.T) {
	r := newRig(t)
	msgs := r.simulated(t, 600)
	half := len(msgs) / 2
	writer := r.intake(t)
	handleAll(t, writer, msgs[:half])
	atSnapshot := head(t, r.store)

	cps, err := projections.OpenCheckpoints(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cps.Close() })
	var logs logbuf.Buffer
	cfg := Config{Store: r.store, RuleSet: rules.DefaultRuleSet(), RecentIDs: 1 << 20, Snapshots: cps,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	first := New(cfg)
	first.cfg.SnapshotEvery = 1 // so that Load writes one
	if err := first.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	cp, ok, err := cps.Load(SnapshotName)
	if err != nil || !ok || cp.Position != atSnapshot {
		t.Fatalf("after Load: snapshot %+v, %v, %v; want one at %d", cp, ok, err, atSnapshot)
	}

	handleAll(t, writer, msgs[half:])
	end := head(t, r.store)
	second := New(cfg)
	if err := second.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "intake state restored from its snapshot") || second.snapAt != atSnapshot {
		t.Fatalf("the second Load did not restore the snapshot at %d (snapAt %d); log:\n%s", atSnapshot, second.snapAt, logs.String())
	}
	if want := int(end - atSnapshot); second.sinceSnap != want {
		t.Errorf("the second Load folded %d events; want the %d after the snapshot", second.sinceSnap, want)
	}
	sameState(t, "restore and fold the rest", second, foldedOneAtATime(t, cfg))

}

// A snapshot the intake cannot use is not used: one of another rule set,
// a damaged file, or one whose event the store does not hold. Load folds
// the whole log instead, and says why.
func TestLoadFoldsTheLogWhenTheSnapshotCannotBeUsed(t *testing.T) {
	r := newRig(t)
	handleAll(t, r.intake(t), r.simulated(t, 50))
	cps, err := projections.OpenCheckpoints(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cps.Close() })
	var logs logbuf.Buffer
	cfg := Config{Store: r.store, RuleSet: rules.DefaultRuleSet(), RecentIDs: 1 << 20, Snapshots: cps, SnapshotEvery: 1,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	write := func() projections.Checkpoint {
		t.Helper()
		if err := New(cfg).Load(context.Background()); err != nil {
			t.Fatal(err)
		}
		cp, ok, err := cps.Load(SnapshotName)
		if !ok || err != nil {
			t.Fatalf("no snapshot written: %v", err)
		}
		return cp
	}
	check := func(what string, c Config, store events.Store, because string) {
		t.Helper()
		c.Store, c.SnapshotEvery = store, 1<<30
		before := len(logs.String())
		in := New(c)
		if err := in.Load(context.Background()); err != nil {
			t.Fatal(err)
		}
		said := logs.String()[before:]
		if strings.Contains(said, "restored from its snapshot") || !strings.Contains(said, because) {
			t.Fatalf("%s: Load should fold the whole log because %q; log:\n%s", what, because, said)
		}
		if store == r.store {
			sameState(t, what, in, foldedOneAtATime(t, c))
		}
	}

	other := cfg
	other.RuleSet.Version, other.RuleSet.PassRateWindow = "test.other", other.RuleSet.PassRateWindow+1
	write()
	check("another rule set", other, r.store, "another rule set")

	cp := write()
	path := filepath.Join(cps.Dir(), cp.File)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	check("a damaged snapshot", cfg, r.store, "cannot restore the intake's snapshot")

	write()
	empty, err := bolt.Open(filepath.Join(t.TempDir(), "other.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { empty.Close() })
	check("another store", cfg, empty, "does not match the store")
}

// While it runs, the intake writes a snapshot every SnapshotEvery events
// (pausing between batches; no message is lost meanwhile) and another when
// it stops; a Load after it restores the last and has nothing to fold.
func TestRunWritesSnapshotsPeriodicallyAndWhenItStops(t *testing.T) {
	r := newRig(t)
	n := r.publishSimulated(t, 300)
	cps, err := projections.OpenCheckpoints(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cps.Close() })
	var logs logbuf.Buffer
	cfg := Config{Store: r.store, Conn: r.nc, Consumer: r.cons, RuleSet: rules.DefaultRuleSet(), RecentIDs: 1 << 20,
		Snapshots: cps, SnapshotEvery: 1500, SnapshotAtStop: 1, BatchSize: 100,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Metrics: NewMetrics(prometheus.NewRegistry())}
	in := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	if got := len(r.outcomes(t, n, 30*time.Second)); got != n {
		t.Fatalf("%d outcomes; want %d", got, n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	end := head(t, r.store)
	said := logs.String()
	if c := strings.Count(said, "why=periodic"); c < 2 || int(end)/1500 > c+1 {
		t.Errorf("%d periodic snapshots over %d events, one due every 1,500; log:\n%s", c, end, said)
	}
	if !strings.Contains(said, "why=stopping") {
		t.Errorf("no snapshot when Run stopped; log:\n%s", said)
	}
	if cp, ok, err := cps.Load(SnapshotName); !ok || err != nil || cp.Position != end {
		t.Fatalf("last snapshot %+v, %v, %v; want one at the end of the log, %d", cp, ok, err, end)
	}
	again := New(cfg)
	if err := again.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if again.snapAt != end || again.sinceSnap != 0 {
		t.Errorf("Load after Run: restored at %d, folded %d; want %d and none", again.snapAt, again.sinceSnap, end)
	}
	// The restored state is the one Run stopped with. (Its world is also
	// the one folding the log gives; the records of messages it answered
	// hold the position the append reported, the last of its events.)
	sameState(t, "restore after Run", again, in)
	folded := foldedOneAtATime(t, Config{Store: r.store, RuleSet: cfg.RuleSet, RecentIDs: cfg.RecentIDs})
	folded.world.Compact()
	if !reflect.DeepEqual(again.world, folded.world) {
		t.Error("the world restored after Run differs from folding the log")
	}
}
