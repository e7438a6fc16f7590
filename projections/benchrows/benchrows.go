// Package benchrows measures the projections for the benchmark harness
// (services/cmd/ledgerbench): rebuilding every read model from a large
// generated store, beside the raw read-all rate of the same store in the
// same run; peak memory; snapshot size; and restart to ready from the
// checkpoints (no full replay).
//
// A store of the configured size is generated once into Config.Dir and
// reused by later runs (generation appends through the store's group
// commit and is far slower than reading).
package benchrows

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/gen"
	"github.com/cqhrss/subsidyledger/projections/readmodels"
	"github.com/cqhrss/subsidyledger/projections/trainee"
)

// Config configures Run.
type Config struct {
	// Dir holds the generated store (rebuild-<trainees>-<seed>.db) and the
	// checkpoints of the restart measurement. Required.
	Dir string
	// Trainees to generate; the history has about 9.5 events per trainee,
	// so 1,050,000 make about 10,000,000 events. Zero means 1,050,000 (about 10,000,000 events).
	Trainees int
	Seed     int64
	// MemoryLimit is the Go runtime's soft memory limit during the rebuild
	// (debug.SetMemoryLimit), so that the collector works harder as the heap
	// nears the budget instead of letting it double; zero means 1.75 GiB.
	// Negative leaves the runtime's settings alone.
	MemoryLimit int64
	// Logf, if set, reports progress.
	Logf func(format string, args ...any)
	// Serving, if set, is called with the projections restarted from the
	// snapshots, once they are ready and while they run (the query-latency
	// figures are measured there, over the same million trainees).
	Serving func(ctx context.Context, store events.Store, set *projections.Set) error
}

// Result holds the figures. Rates are events per second.
type Result struct {
	Trainees   int
	Events     uint64
	StoreBytes int64
	// GenerateTime is zero when an existing store was reused.
	GenerateTime time.Duration

	// RawReadAllPerSec is the baseline: every record of the log read
	// through the store's page reader (events.ReadPage into one reused
	// Page, as a build reads), no decoding: the fastest way the store
	// offers to read the whole log.
	RawReadAllPerSec float64
	RawReadAllTime   time.Duration
	// ReadAllPerSec reads the whole log through Store.ReadAll, which
	// allocates every page afresh; the baseline used to be this, at about
	// 55-60% of the page reader's rate, which flattered the ratio.
	ReadAllPerSec float64
	// RebuildPerSec: every read model built from Start in one pass
	// (projections.Build).
	RebuildPerSec float64
	RebuildTime   time.Duration
	// PeakHeapBytes is the largest Go heap (live and not yet collected
	// objects) sampled during the rebuild; PeakGoBytes the largest memory
	// the Go runtime held from the OS (minus what it returned). The store
	// is memory-mapped: its pages count toward the process's RSS but not
	// here.
	PeakHeapBytes uint64
	PeakGoBytes   uint64
	// LiveHeapBytes is the heap after a collection, holding every model.
	LiveHeapBytes uint64
	// SnapshotTime writes every model's snapshot and checkpoint;
	// SnapshotBytes is their total size.
	SnapshotTime  time.Duration
	SnapshotBytes int64
	// RestartToReady opens the store and the checkpoints, restores every
	// snapshot and waits until every projection is ready.
	RestartToReady time.Duration
}

func (c *Config) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

// Run generates (or reuses) the store and measures.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Dir == "" {
		return Result{}, fmt.Errorf("benchrows: no directory")
	}
	if cfg.Trainees <= 0 {
		cfg.Trainees = 1_050_000
	}
	if cfg.MemoryLimit == 0 {
		cfg.MemoryLimit = 1792 << 20
	}
	res := Result{Trainees: cfg.Trainees}
	path := StorePath(cfg.Dir, cfg.Trainees, cfg.Seed)
	if err := Ensure(ctx, path, cfg.Trainees, cfg.Seed, &res, cfg.logf); err != nil {
		return res, err
	}
	store, err := bolt.Open(path, bolt.Options{InitialMmapSize: 16 << 30, ReadOnly: true})
	if err != nil {
		return res, err
	}
	defer store.Close()
	if fi, err := os.Stat(path); err == nil {
		res.StoreBytes = fi.Size()
	}

	// Baseline: the raw read-all rate. Read twice, measure the second, so
	// that both figures meet the file in the page cache.
	for range 2 {
		n, d, err := ReadPages(ctx, store)
		if err != nil {
			return res, err
		}
		res.Events, res.RawReadAllTime = n, d
		res.RawReadAllPerSec = float64(n) / d.Seconds()
	}
	cfg.logf("raw read-all (page reader): %d events in %v (%.0f events/s)", res.Events, res.RawReadAllTime.Round(time.Millisecond), res.RawReadAllPerSec)
	n, d, err := ReadAll(ctx, store)
	if err != nil {
		return res, err
	}
	res.ReadAllPerSec = float64(n) / d.Seconds()
	cfg.logf("read-all through Store.ReadAll (allocating): %d events in %v (%.0f events/s)", n, d.Round(time.Millisecond), res.ReadAllPerSec)

	// Rebuild every read model in one pass.
	if cfg.MemoryLimit > 0 {
		old := debug.SetMemoryLimit(cfg.MemoryLimit)
		defer debug.SetMemoryLimit(old)
	}
	runtime.GC()
	models := readmodels.Fresh()
	stop := sampleMemory(&res)
	stats, err := projections.Build(ctx, store, models, projections.BuildOptions{})
	stop()
	if err != nil {
		return res, err
	}
	res.RebuildTime = stats.Duration
	res.RebuildPerSec = float64(stats.Events) / stats.Duration.Seconds()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.LiveHeapBytes = ms.HeapAlloc
	cfg.logf("rebuild: %d events in %v (%.0f events/s), peak heap %d MiB, live %d MiB", stats.Events,
		stats.Duration.Round(time.Millisecond), res.RebuildPerSec, res.PeakHeapBytes>>20, res.LiveHeapBytes>>20)

	// Snapshots, then a restart from them.
	cpDir := filepath.Join(cfg.Dir, "checkpoints")
	os.RemoveAll(cpDir)
	cps, err := projections.OpenCheckpoints(cpDir)
	if err != nil {
		return res, err
	}
	id, err := projections.EventIDAt(ctx, store, stats.Position)
	if err != nil {
		cps.Close()
		return res, err
	}
	t0 := time.Now()
	for _, p := range models {
		cp, err := cps.Save(p, stats.Position, stats.Created, id)
		if err != nil {
			cps.Close()
			return res, err
		}
		res.SnapshotBytes += cp.Size
	}
	res.SnapshotTime = time.Since(t0)
	cps.Close()
	models = nil
	runtime.GC()
	cfg.logf("snapshots: %d MiB in %v", res.SnapshotBytes>>20, res.SnapshotTime.Round(time.Millisecond))

	d, err = RestartToReady(ctx, store, cpDir, cfg.Serving)
	if err != nil {
		return res, err
	}
	res.RestartToReady = d
	cfg.logf("restart to ready: %v", d.Round(time.Millisecond))
	return res, nil
}

// StorePath is where Run keeps the generated store of trainees (zero:
// 1,050,000) and seed under dir.
func StorePath(dir string, trainees int, seed int64) string {
	if trainees <= 0 {
		trainees = 1_050_000
	}
	return filepath.Join(dir, fmt.Sprintf("rebuild-%d-%d.db", trainees, seed))
}

// Ensure generates a store of trainees at path unless one is there (a
// marker file records a finished generation).
func Ensure(ctx context.Context, path string, trainees int, seed int64, res *Result, logf func(string, ...any)) error {
	done := path + ".complete"
	if _, err := os.Stat(done); err == nil {
		return nil
	}
	os.Remove(path)
	store, err := bolt.Open(path, bolt.Options{InitialMmapSize: 16 << 30})
	if err != nil {
		return err
	}
	t0 := time.Now()
	logf("generating %d trainees into %s (once; later runs reuse it)", trainees, path)
	st, err := gen.Append(ctx, store, gen.Config{Seed: seed, Trainees: trainees}, gen.AppendOptions{Parallel: 1024})
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if res != nil {
		res.GenerateTime = time.Since(t0)
	}
	logf("generated %d events in %v", st.Events, time.Since(t0).Round(time.Second))
	return os.WriteFile(done, []byte(fmt.Sprintf("%d events\n", st.Events)), 0o644)
}

// ReadAll reads the whole log in pages and returns the number of events
// and the time taken.
func ReadAll(ctx context.Context, s events.Store) (uint64, time.Duration, error) {
	t0 := time.Now()
	var n uint64
	after := events.Start
	for {
		recs, err := s.ReadAll(ctx, after, 4096)
		if err != nil {
			return n, 0, err
		}
		if len(recs) == 0 {
			return n, time.Since(t0), nil
		}
		n += uint64(len(recs))
		after = recs[len(recs)-1].Position
	}
}

// ReadPages reads the whole log through events.ReadPage, pages of 4096 into
// one reused Page, and returns the number of events and the time taken.
func ReadPages(ctx context.Context, s events.Store) (uint64, time.Duration, error) {
	t0 := time.Now()
	var n uint64
	after := events.Start
	p := new(events.Page)
	for {
		if err := events.ReadPage(ctx, s, after, 4096, p); err != nil {
			return n, 0, err
		}
		if len(p.Events) == 0 {
			return n, time.Since(t0), nil
		}
		n += uint64(len(p.Events))
		after = p.Events[len(p.Events)-1].Position
	}
}

// RestartToReady runs a projection Set over the checkpoints in cpDir, as
// ledgerd does at start, and returns the time until every projection is
// ready. Then, if serving is set, it calls it with the running Set.
func RestartToReady(ctx context.Context, store events.Store, cpDir string, serving func(context.Context, events.Store, *projections.Set) error) (time.Duration, error) {
	t0 := time.Now()
	cps, err := projections.OpenCheckpoints(cpDir)
	if err != nil {
		return 0, err
	}
	defer cps.Close()
	set, err := projections.NewSet(projections.Config{Store: store, Checkpoints: cps, SnapshotInterval: time.Hour, SnapshotEvery: 1 << 30},
		readmodels.Factories()...)
	if err != nil {
		return 0, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- set.Run(rctx) }()
	defer func() { cancel(); <-done }()
	for set.Ready() != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		time.Sleep(2 * time.Millisecond)
	}
	d := time.Since(t0)
	// A sanity check that the restored models hold the history.
	if tm, ok := projections.CurrentOf[*trainee.Model](must(set.Runner(trainee.Name))); !ok || tm.Count() == 0 {
		return d, fmt.Errorf("benchrows: the restored trainee model is empty")
	}
	if serving != nil {
		if err := serving(rctx, store, set); err != nil {
			return d, err
		}
	}
	return d, nil
}

func must(r *projections.Runner, ok bool) *projections.Runner {
	if !ok {
		panic("benchrows: no runner")
	}
	return r
}

// sampleMemory records the peak heap and Go memory every 20 ms until stop.
func sampleMemory(res *Result) (stop func()) {
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"}}
	var wg sync.WaitGroup
	quit := make(chan struct{})
	take := func() {
		metrics.Read(samples)
		heap := samples[0].Value.Uint64()
		total := samples[1].Value.Uint64() - samples[2].Value.Uint64()
		res.PeakHeapBytes = max(res.PeakHeapBytes, heap)
		res.PeakGoBytes = max(res.PeakGoBytes, total)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				take()
				return
			case <-t.C:
				take()
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}
