package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cqhrss/subsidyledger/services/ledgerd"
)

// atMost is a goal that a figure (e.g. a latency) stays below max.
func atMost(max float64, unit string) goal {
	return goal{
		text: "< " + group(max) + " " + unit,
		met:  func(r row) bool { return r.figure > 0 && r.figure < max },
	}
}

func micros(d time.Duration) float64 { return float64(d.Microseconds()) }

// batchRounds: mode (b) is measured this many times on one ledgerd (new
// trainees each round) and reported as the median: single runs of it on
// this 2-core machine spread from 22,500 to 29,000 facts/s (2026-11-27).
const batchRounds = 3

// ingestSuite measures durable end-to-end ingest on an in-process ledgerd
// (embedded NATS syncing always, bbolt store): each publishing mode beside
// the raw JetStream rate of the same mode on the same server.
func ingestSuite(ctx context.Context, cfg *config) ([]row, error) {
	res, err := ledgerd.BenchIngest(ctx, ledgerd.IngestBenchConfig{
		SingleTrainees: cfg.ingestTrainees / 4, BatchTrainees: cfg.ingestTrainees,
		Publishers: 16, BatchPublishers: 4, BatchSize: 500, BatchRounds: batchRounds,
		PacedRate: 1000, PacedFacts: 3000, RawMessages: 20000, RawBatchMessages: 100_000,
		Flags: cfg.ledgerdFlags, CPU: processCPU, BatchProfile: cfg.ingestProfile,
		BatchMemBase: cfg.ingestMemBase, BatchMem: cfg.ingestMem,
	})
	if err != nil {
		return nil, err
	}
	rows := []row{
		{name: "ingest (a): single publishes, 16 publishers", figure: res.SingleFactsPerSec, unit: "facts/s",
			baseline: "raw JetStream single publishes, 16 publishers", base: res.SingleRawPerSec, goal: timesBaseline(0.5)},
		{name: "ingest (a): publish-to-commit p50", figure: micros(res.SingleP50), unit: "µs"},
		{name: "ingest (a): publish-to-commit p99", figure: micros(res.SingleP99), unit: "µs"},
		{name: fmt.Sprintf("ingest (b): atomic batches of 500 (median of %d rounds)", len(res.BatchRoundFactsPerSec)), figure: res.BatchFactsPerSec, unit: "facts/s",
			baseline: "raw JetStream atomic batches of 500", base: res.BatchRawPerSec, goal: atLeast(30_000, "facts/s")},
		{name: "ingest (b): slowest round", figure: slices.Min(res.BatchRoundFactsPerSec), unit: "facts/s"},
		{name: "ingest (b): fastest round", figure: slices.Max(res.BatchRoundFactsPerSec), unit: "facts/s"},
		{name: "ingest (b): publish-to-commit p50", figure: micros(res.BatchP50), unit: "µs"},
		{name: "ingest (b): publish-to-commit p99", figure: micros(res.BatchP99), unit: "µs"},
	}
	if res.BatchCPUPerFact > 0 {
		// Where mode (b)'s figure comes from: the process (NATS server,
		// ledger and publishers, on this machine's CPUs) is CPU-bound in
		// mode (b), so the figure follows the CPU a fact costs.
		rows = append(rows,
			row{name: "ingest (b): CPU per fact (the whole process)", figure: float64(res.BatchCPUPerFact.Nanoseconds()) / 1000, unit: "µs",
				baseline: "raw atomic batches: CPU per message", base: float64(res.BatchRawCPUPerMsg.Nanoseconds()) / 1000},
			row{name: "ingest (b): Go heap allocated per fact", figure: res.BatchAllocPerFact, unit: "bytes"})
	}
	return append(rows,
		row{name: "ingest at 1,000 facts/s: publish-to-commit p50", figure: micros(res.PacedP50), unit: "µs"},
		row{name: "ingest at 1,000 facts/s: publish-to-commit p99", figure: micros(res.PacedP99), unit: "µs", goal: atMost(50_000, "µs")},
	), nil
}
