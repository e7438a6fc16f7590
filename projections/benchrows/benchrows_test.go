package benchrows_test

import (
	"context"
	"testing"

	"github.com/cqhrss/subsidyledger/projections/benchrows"
)

func TestRunSmall(t *testing.T) {
	dir := t.TempDir()
	res, err := benchrows.Run(context.Background(), benchrows.Config{Dir: dir, Trainees: 1500, Seed: 3, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if res.Events < 10000 || res.RawReadAllPerSec <= 0 || res.ReadAllPerSec <= 0 || res.RebuildPerSec <= 0 || res.PeakHeapBytes == 0 ||
		res.SnapshotBytes == 0 || res.RestartToReady <= 0 || res.GenerateTime <= 0 {
		t.Fatalf("Run = %+v", res)
	}
	// A second run reuses the store.
	again, err := benchrows.Run(context.Background(), benchrows.Config{Dir: dir, Trainees: 1500, Seed: 3})
	if err != nil || again.GenerateTime != 0 || again.Events != res.Events {
		t.Fatalf("second Run = %+v, %v; want the store reused", again, err)
	}
}
