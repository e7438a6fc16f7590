package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/services/ingest"
)

// intakeStart is what ledgerd's intake does at a start before it decides
// anything (ingest.Intake.Load), measured both ways: without a snapshot it
// folds the whole log into the rules' World and then writes one; with one
// it restores the snapshot and folds only what came after (nothing, here).
type intakeStart struct {
	Events        uint64
	Fold          time.Duration // the whole log, no snapshot
	FoldHeap      uint64        // Go heap after a collection, after the fold
	SnapshotWrite time.Duration
	SnapshotBytes int64
	Restore       time.Duration // restore the snapshot; nothing left to fold
	RestoreHeap   uint64
}

func measureIntakeStart(ctx context.Context, storePath, dir string) (intakeStart, error) {
	var res intakeStart
	store, err := bolt.Open(storePath, bolt.Options{InitialMmapSize: 16 << 30, ReadOnly: true})
	if err != nil {
		return res, err
	}
	defer store.Close()
	snapDir := filepath.Join(dir, "intake-snapshots")
	if err := os.RemoveAll(snapDir); err != nil {
		return res, err
	}
	cps, err := projections.OpenCheckpoints(snapDir)
	if err != nil {
		return res, err
	}
	defer cps.Close()

	load := func(every int) (*ingest.Intake, *ingest.Metrics, time.Duration, error) {
		runtime.GC()
		m := ingest.NewMetrics(prometheus.NewRegistry())
		in := ingest.New(ingest.Config{Store: store, RuleSet: rules.DefaultRuleSet(), ReadOnly: true, Snapshots: cps, SnapshotEvery: every, Metrics: m})
		t0 := time.Now()
		if err := in.Load(ctx); err != nil {
			return nil, nil, 0, fmt.Errorf("intake load: %w", err)
		}
		return in, m, time.Since(t0), nil
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}

	// No snapshot: fold the whole log, then write one (due after 1 event).
	in, m, took, err := load(1)
	if err != nil {
		return res, err
	}
	res.Events = uint64(in.Position())
	res.SnapshotWrite = time.Duration(testutil.ToFloat64(m.SnapshotSeconds) * float64(time.Second))
	if res.SnapshotWrite <= 0 {
		return res, fmt.Errorf("intake load wrote no snapshot")
	}
	res.Fold = took - res.SnapshotWrite
	res.FoldHeap = heap()
	runtime.KeepAlive(in)
	cp, ok, err := cps.Load(ingest.SnapshotName)
	if err != nil || !ok {
		return res, fmt.Errorf("the intake's snapshot: %v, %v", ok, err)
	}
	res.SnapshotBytes = cp.Size
	in = nil

	// With the snapshot: restore it; nothing after it to fold.
	in, _, res.Restore, err = load(1 << 30)
	if err != nil {
		return res, err
	}
	if uint64(in.Position()) != res.Events {
		return res, fmt.Errorf("restored at %d; the fold reached %d", in.Position(), res.Events)
	}
	res.RestoreHeap = heap()
	runtime.KeepAlive(in)
	return res, nil
}
