package ledgerd

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestBenchIngestSmall runs the ingest benchmark at a tiny size so that it
// keeps working; the figures come from `make bench`.
func TestBenchIngestSmall(t *testing.T) {
	start := time.Now()
	res, err := BenchIngest(context.Background(), IngestBenchConfig{SingleTrainees: 20, BatchTrainees: 40, Publishers: 4, BatchPublishers: 2,
		BatchSize: 100, BatchRounds: 3, PacedRate: 500, PacedFacts: 100, RawMessages: 800,
		// A clock for the CPU time: this checks what is measured over
		// which span, not the process's CPU.
		CPU: func() time.Duration { return time.Since(start) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.SingleFactsPerSec <= 0 || res.BatchFactsPerSec <= 0 || res.SingleRawPerSec <= 0 || res.BatchRawPerSec <= 0 || res.PacedP99 <= 0 ||
		res.BatchCPUPerFact <= 0 || res.BatchRawCPUPerMsg <= 0 || res.BatchAllocPerFact <= 0 {
		t.Fatalf("BenchIngest = %+v; want every figure measured", res)
	}
	if r := res.BatchRoundFactsPerSec; len(r) != 3 || res.BatchFactsPerSec != slices.Sorted(slices.Values(r))[1] {
		t.Fatalf("mode (b) rounds %v, figure %v; want three rounds and their median", r, res.BatchFactsPerSec)
	}
	t.Logf("%+v", res)
}
