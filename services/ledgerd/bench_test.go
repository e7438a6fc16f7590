package ledgerd

import (
	"context"
	"testing"
)

// TestBenchIngestSmall runs the ingest benchmark at a tiny size so that it
// keeps working; the figures come from `make bench`.
func TestBenchIngestSmall(t *testing.T) {
	res, err := BenchIngest(context.Background(), IngestBenchConfig{SingleTrainees: 20, BatchTrainees: 40, Publishers: 4, BatchPublishers: 2,
		BatchSize: 100, PacedRate: 500, PacedFacts: 100, RawMessages: 800})
	if err != nil {
		t.Fatal(err)
	}
	if res.SingleFactsPerSec <= 0 || res.BatchFactsPerSec <= 0 || res.SingleRawPerSec <= 0 || res.BatchRawPerSec <= 0 || res.PacedP99 <= 0 {
		t.Fatalf("BenchIngest = %+v; want every figure measured", res)
	}
	t.Logf("%+v", res)
}
