package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/benchrows"
	"github.com/cqhrss/subsidyledger/services/api/apibench"
)

// projectionsSuite measures rebuilding every read model beside the raw
// read-all rate of the same store in the same run, restarting from the
// snapshots, and the latency of the trainee-status and quota-dashboard
// queries at 5,000 requests/s each (wrk on loopback) over the restarted
// models. The figures are for 1,050,000 trainees (about
// 10,000,000 events): -projection-trainees 1050000; generating that store
// takes about half an hour and is reused from the scratch directory (-dir)
// by later runs.
func projectionsSuite(ctx context.Context, cfg *config) ([]row, error) {
	const queryRate = 5000
	logf := func(format string, args ...any) { fmt.Fprintf(cfg.log, "  "+format+"\n", args...) }
	var lat []apibench.Latency
	serving := func(ctx context.Context, store events.Store, set *projections.Set) error {
		var err error
		lat, err = apibench.Run(ctx, apibench.Config{Projections: set, Store: store, Rate: queryRate, Duration: 10 * time.Second})
		if errors.Is(err, apibench.ErrNoWrk) {
			logf("query latency not measured: %v (make bench installs it)", err)
			return nil
		}
		for _, l := range lat {
			logf("%s: %d requests at %.0f/s, p50 %v, p99 %v, %d errors", l.Query, l.Requests, l.Rate, l.P50, l.P99, l.Errors)
		}
		return err
	}
	const seed = 1 // of the generated store, which the intake's replay reads too
	res, err := benchrows.Run(ctx, benchrows.Config{Dir: cfg.dir, Trainees: cfg.projectionTrainees, Seed: seed, Logf: logf, Serving: serving})
	if err != nil {
		return nil, err
	}
	n := fmt.Sprintf(" (%s events)", group(float64(res.Events)))
	rows := []row{
		{name: "rebuild all projections" + n, figure: res.RebuildPerSec, unit: "events/s",
			baseline: "raw read-all (page reader), same store", base: res.RawReadAllPerSec, goal: atLeast(1_000_000, "events/s")},
		{name: "rebuild all projections, ratio to raw read-all", figure: res.RebuildPerSec, unit: "events/s",
			baseline: "raw read-all (page reader), same store", base: res.RawReadAllPerSec, goal: timesBaseline(0.5)},
		{name: "rebuild all projections, ratio to Store.ReadAll (allocating; the old baseline)", figure: res.RebuildPerSec, unit: "events/s",
			baseline: "Store.ReadAll, same store", base: res.ReadAllPerSec},
		{name: "rebuild peak Go heap" + n, figure: float64(res.PeakHeapBytes) / (1 << 20), unit: "MiB", goal: atMost(2048, "MiB")},
		{name: "projections restart to ready (snapshots restored)" + n, figure: float64(res.RestartToReady.Milliseconds()), unit: "ms", goal: atMost(3000, "ms")},
	}
	st, err := measureIntakeStart(ctx, benchrows.StorePath(cfg.dir, cfg.projectionTrainees, seed), cfg.dir)
	if err != nil {
		return rows, err
	}
	logf("intake start (ledgerd): no snapshot, folds %d events in %v (heap after %d MiB), writes a %d MiB snapshot in %v; with it, restores in %v (heap after %d MiB)",
		st.Events, st.Fold.Round(time.Millisecond), st.FoldHeap>>20, st.SnapshotBytes>>20, st.SnapshotWrite.Round(time.Millisecond),
		st.Restore.Round(time.Millisecond), st.RestoreHeap>>20)
	rows = append(rows,
		row{name: "ledgerd restart: intake restores its snapshot" + n, figure: float64(st.Restore.Milliseconds()), unit: "ms", goal: atMost(3000, "ms")},
		row{name: "ledgerd restart: Go heap after the intake's restore" + n, figure: float64(st.RestoreHeap) / (1 << 20), unit: "MiB"},
		row{name: "intake snapshot write (after a fold; consuming pauses)" + n, figure: float64(st.SnapshotWrite.Milliseconds()), unit: "ms"},
		row{name: "intake snapshot size" + n, figure: float64(st.SnapshotBytes) / (1 << 20), unit: "MiB"},
		row{name: "ledgerd first start (no snapshot): intake folds the whole log" + n, figure: float64(st.Fold.Milliseconds()), unit: "ms"},
		row{name: "ledgerd first start: intake fold rate" + n, figure: float64(st.Events) / st.Fold.Seconds(), unit: "events/s"},
		row{name: "ledgerd first start: Go heap after the intake's fold" + n, figure: float64(st.FoldHeap) / (1 << 20), unit: "MiB"})
	took, err := measureLedgerdRestart(ctx, benchrows.StorePath(cfg.dir, cfg.projectionTrainees, seed), cfg.dir, cfg.rounds, logf)
	if err != nil {
		return rows, fmt.Errorf("ledgerd restart: %w", err)
	}
	rows = append(rows, row{name: "ledgerd restart to ready (whole process, /readyz 200)" + n, figure: float64(slices.Min(took).Milliseconds()), unit: "ms", goal: atMost(3000, "ms")})
	people := fmt.Sprintf(" (%s trainees)", group(float64(res.Trainees)))
	for _, l := range lat {
		rows = append(rows,
			row{name: fmt.Sprintf("%s at %s req/s, p50%s", l.Query, group(queryRate), people), figure: micros(l.P50), unit: "µs"},
			row{name: fmt.Sprintf("%s at %s req/s, p99%s", l.Query, group(queryRate), people), figure: micros(l.P99), unit: "µs", goal: atMost(2000, "µs")})
		if l.Errors != 0 {
			return rows, fmt.Errorf("%s: %d of %d requests failed", l.Query, l.Errors, l.Requests)
		}
	}
	return rows, nil
}
