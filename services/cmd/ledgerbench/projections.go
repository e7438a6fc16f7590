package main

import (
	"context"
	"fmt"

	"github.com/cqhrss/subsidyledger/projections/benchrows"
)

// projectionsSuite measures rebuilding every read model beside the raw
// read-all rate of the same store in the same run. The figure is
// for 1,050,000 trainees (about 10,000,000 events): -projection-trainees
// 1050000; generating that store takes about half an hour and is reused
// from the scratch directory (-dir) by later runs.
func projectionsSuite(ctx context.Context, cfg *config) ([]row, error) {
	res, err := benchrows.Run(ctx, benchrows.Config{Dir: cfg.dir, Trainees: cfg.projectionTrainees, Seed: 1,
		Logf: func(format string, args ...any) { fmt.Fprintf(cfg.log, "  "+format+"\n", args...) }})
	if err != nil {
		return nil, err
	}
	n := fmt.Sprintf(" (%s events)", group(float64(res.Events)))
	return []row{
		{name: "rebuild all projections" + n, figure: res.RebuildPerSec, unit: "events/s",
			baseline: "raw read-all, same store", base: res.RawReadAllPerSec, goal: atLeast(1_000_000, "events/s")},
		{name: "rebuild all projections, ratio to raw read-all", figure: res.RebuildPerSec, unit: "events/s",
			baseline: "raw read-all, same store", base: res.RawReadAllPerSec, goal: timesBaseline(0.5)},
		{name: "rebuild peak Go heap" + n, figure: float64(res.PeakHeapBytes) / (1 << 20), unit: "MiB", goal: atMost(2048, "MiB")},
		{name: "restart to ready (snapshots restored)" + n, figure: float64(res.RestartToReady.Milliseconds()), unit: "ms", goal: atMost(3000, "ms")},
	}, nil
}
