package main

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/services/ingest"
)

// intakeReplay measures what ledgerd's intake does at every start: fold
// the whole log into the rules' World (ingest.Intake.Load), which it
// decides on. ledgerd is not ready until that is done, whatever the
// projections' snapshots save. It returns the time, the events folded and
// the Go heap after a collection (the World and the intake's indexes).
func intakeReplay(ctx context.Context, path string) (time.Duration, uint64, uint64, error) {
	store, err := bolt.Open(path, bolt.Options{InitialMmapSize: 16 << 30, ReadOnly: true})
	if err != nil {
		return 0, 0, 0, err
	}
	defer store.Close()
	runtime.GC()
	in := ingest.New(ingest.Config{Store: store, RuleSet: rules.DefaultRuleSet()})
	t0 := time.Now()
	if err := in.Load(ctx); err != nil {
		return 0, 0, 0, fmt.Errorf("intake replay: %w", err)
	}
	d := time.Since(t0)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	runtime.KeepAlive(in)
	return d, uint64(in.Position()), ms.HeapAlloc, nil
}
