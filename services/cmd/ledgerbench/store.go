package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
)

// rawValue is the size of the values the raw bbolt baselines put: about
// the size of the records the store writes for benchEvent's events.
const rawValue = 300

// benchEvent returns an event whose stored record is about rawValue bytes,
// like a ledger event with its envelope.
func benchEvent(i int) events.EventData {
	data := make([]byte, 120)
	for j := range data {
		data[j] = byte('a' + (i+j)%26)
	}
	return events.EventData{
		ID:       events.RandomID(),
		Type:     "subsidy.v1.EntitlementApproved",
		Metadata: []byte(`{"correlation":"4f7c1c9e","actor":"ledgerbench"}`),
		Data:     data,
	}
}

func benchEvents(n, from int) []events.EventData {
	evs := make([]events.EventData, n)
	for i := range evs {
		evs[i] = benchEvent(from + i)
	}
	return evs
}

// scratch returns a fresh file path in the scratch directory.
func scratch(cfg *config, name string) string {
	dir, err := os.MkdirTemp(cfg.dir, name+"-")
	if err != nil {
		panic(err) // the scratch directory was writable a moment ago
	}
	return filepath.Join(dir, name+".db")
}

func rawOptions() *bbolt.Options {
	// As the store opens its file, so that the difference is the store's work.
	return &bbolt.Options{Timeout: time.Second, FreelistType: bbolt.FreelistMapType, InitialMmapSize: 1 << 30}
}

func storeSuite(ctx context.Context, cfg *config) ([]row, error) {
	var rows []row
	progress := func(what string) { fmt.Fprintf(cfg.log, "  %s\n", what) }

	var single float64
	for _, b := range []struct {
		batch, appends int
		goal           goal
	}{
		{1, cfg.batch1, atLeast(3000, "events/s")},
		{100, cfg.batch100, goal{}},
		{1000, cfg.batch1000, atLeast(100_000, "events/s")},
	} {
		progress(fmt.Sprintf("append, batch %d: %d appends", b.batch, b.appends))
		raw, err := best(ctx, cfg.rounds, func() (float64, error) { return rawPuts(cfg, b.batch, b.appends) })
		if err != nil {
			return nil, err
		}
		fig, err := best(ctx, cfg.rounds, func() (float64, error) { return appends(ctx, cfg, b.batch, b.appends) })
		if err != nil {
			return nil, err
		}
		if b.batch == 1 {
			single = fig
		}
		rows = append(rows, row{
			name: fmt.Sprintf("durable append, batch %d, 1 caller", b.batch), figure: fig, unit: "events/s",
			baseline: fmt.Sprintf("raw bbolt, %d × %d B puts per tx", b.batch, rawValue), base: raw,
			goal: b.goal,
		})
	}

	progress(fmt.Sprintf("append, batch 1, %d callers: %d appends each", cfg.callers, cfg.concurrent))
	fig, err := best(ctx, cfg.rounds, func() (float64, error) { return concurrentAppends(ctx, cfg) })
	if err != nil {
		return nil, err
	}
	rows = append(rows, row{
		name: fmt.Sprintf("durable append, batch 1, %d callers", cfg.callers), figure: fig, unit: "events/s",
		baseline: "same, 1 caller (above)", base: single, goal: timesBaseline(3),
	})

	progress(fmt.Sprintf("commit latency while the ID index grows: %d events", cfg.stall))
	p50, longest, err := commitStalls(ctx, cfg)
	if err != nil {
		return nil, err
	}
	rows = append(rows, row{
		name: fmt.Sprintf("longest commit of 100 appends as the store grows to %d events", cfg.stall), figure: us(longest), unit: "µs",
		baseline: "median commit, same run", base: us(p50),
	})

	progress(fmt.Sprintf("read all: filling a store with %d events", cfg.read))
	path, err := fill(ctx, cfg)
	if err != nil {
		return nil, err
	}
	progress("read all: scanning")
	raw, err := best(ctx, cfg.rounds, func() (float64, error) { return rawScan(path) })
	if err != nil {
		return nil, err
	}
	readFig, err := best(ctx, cfg.rounds, func() (float64, error) { return readAll(ctx, path, nil) })
	if err != nil {
		return nil, err
	}
	rows = append(rows, row{
		name: "read all, decoded events", figure: readFig, unit: "events/s",
		baseline: "raw bbolt cursor scan, same file", base: raw, goal: atLeast(1_000_000, "events/s"),
	})

	progress("verify")
	verFig, err := best(ctx, cfg.rounds, func() (float64, error) { return verify(ctx, path) })
	if err != nil {
		return nil, err
	}
	rows = append(rows, row{
		name: "verify (read all + hash links)", figure: verFig, unit: "events/s",
		baseline: "read all, decoded (above)", base: readFig,
	})

	progress("hash links")
	var all []events.RecordedEvent
	if _, err := readAll(ctx, path, &all); err != nil {
		return nil, err
	}
	plain, err := best(ctx, cfg.rounds, func() (float64, error) { return plainHashes(all), nil })
	if err != nil {
		return nil, err
	}
	link, err := best(ctx, cfg.rounds, func() (float64, error) { return linkHashes(all), nil })
	if err != nil {
		return nil, err
	}
	rows = append(rows, row{
		name: "chained LinkHash, same events", figure: link, unit: "events/s",
		baseline: "one SHA-256 per event's bytes", base: plain,
	})
	return rows, nil
}

// commitStalls appends cfg.stall events in AppendBatch commits of 100
// appends of 2 events to 300,000 streams (about an intake commit), and
// returns the median and the longest commit. The buffered event IDs are
// merged into the ID index along the way; a merge that rewrote the whole
// index in one commit showed here as a stall that grew with the store.
func commitStalls(ctx context.Context, cfg *config) (p50, longest time.Duration, err error) {
	path := scratch(cfg, "stalls")
	defer os.RemoveAll(filepath.Dir(path))
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		return 0, 0, err
	}
	defer s.Close()
	const appends, per = 100, 2
	var lat []time.Duration
	for n := 0; n < cfg.stall; n += appends * per {
		ops := make([]*events.AppendOp, appends)
		for i := range ops {
			ops[i] = &events.AppendOp{Stream: fmt.Sprintf("trainee-%d", (n/per+i)%300_000), Expected: events.Any,
				Events: benchEvents(per, n+i*per)}
		}
		t0 := time.Now()
		s.AppendBatch(ctx, ops)
		lat = append(lat, time.Since(t0))
		for _, o := range ops {
			if o.Err != nil {
				return 0, 0, o.Err
			}
		}
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)-1], nil
}

func us(d time.Duration) float64 { return float64(d.Microseconds()) }

// rawPuts commits appends transactions of batch sequential puts of rawValue
// bytes into one bucket and returns puts per second.
func rawPuts(cfg *config, batch, appends int) (float64, error) {
	path := scratch(cfg, "raw")
	defer os.RemoveAll(filepath.Dir(path))
	db, err := bbolt.Open(path, 0o600, rawOptions())
	if err != nil {
		return 0, err
	}
	defer db.Close()
	vals := make([][]byte, batch)
	for i := range vals {
		vals[i] = make([]byte, rawValue)
		copy(vals[i], benchEvent(i).Data)
	}
	var n uint64
	start := time.Now()
	for range appends {
		err := db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("log"))
			if err != nil {
				return err
			}
			b.FillPercent = 1.0
			for _, v := range vals {
				n++
				if err := b.Put(binary.BigEndian.AppendUint64(nil, n), v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return rate(batch*appends, time.Since(start)), nil
}

// appends makes appends durable appends of batch events from one caller
// and returns events per second.
func appends(ctx context.Context, cfg *config, batch, appends int) (float64, error) {
	path := scratch(cfg, "append")
	defer os.RemoveAll(filepath.Dir(path))
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	batches := make([][]events.EventData, appends)
	for i := range batches {
		batches[i] = benchEvents(batch, i*batch)
	}
	start := time.Now()
	for i, evs := range batches {
		if _, err := s.Append(ctx, fmt.Sprintf("stream-%d", i%1000), events.Any, evs...); err != nil {
			return 0, err
		}
	}
	return rate(batch*appends, time.Since(start)), nil
}

// concurrentAppends runs cfg.callers callers, each appending single events
// to its own stream, and returns events per second.
func concurrentAppends(ctx context.Context, cfg *config) (float64, error) {
	path := scratch(cfg, "concurrent")
	defer os.RemoveAll(filepath.Dir(path))
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	evs := benchEvents(cfg.callers*cfg.concurrent, 0)
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for c := range cfg.callers {
		wg.Go(func() {
			stream := fmt.Sprintf("caller-%d", c)
			for i := range cfg.concurrent {
				if _, err := s.Append(ctx, stream, events.Any, evs[c*cfg.concurrent+i]); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	if err := failed.Load(); err != nil {
		return 0, *err
	}
	return rate(cfg.callers*cfg.concurrent, d), nil
}

// fill makes a store of cfg.read events in appends of 1,000 across 100
// streams, closes it and returns its path.
func fill(ctx context.Context, cfg *config) (string, error) {
	path := scratch(cfg, "read")
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		return "", err
	}
	for i := 0; i < cfg.read; i += 1000 {
		evs := benchEvents(min(1000, cfg.read-i), i)
		if _, err := s.Append(ctx, fmt.Sprintf("stream-%d", i/1000%100), events.Any, evs...); err != nil {
			s.Close()
			return "", err
		}
	}
	return path, s.Close()
}

// rawScan walks the store's log bucket with a bare bbolt cursor, touching
// each value, and returns records per second.
func rawScan(path string) (float64, error) {
	opts := rawOptions()
	opts.ReadOnly = true
	db, err := bbolt.Open(path, 0o600, opts)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	n, size := 0, 0
	start := time.Now()
	err = db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("log"))
		if b == nil {
			return fmt.Errorf("%s has no log bucket", path)
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			n++
			size += len(v)
		}
		return nil
	})
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if size == 0 {
		return 0, fmt.Errorf("%s holds no records", path)
	}
	return rate(n, d), nil
}

// readAll reads the whole store with ReadAll, decoding every event, and
// returns events per second. If keep is not nil, it also collects the
// events there (outside the timing).
func readAll(ctx context.Context, path string, keep *[]events.RecordedEvent) (float64, error) {
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	n := 0
	var d time.Duration
	after := events.Start
	for {
		start := time.Now()
		page, err := s.ReadAll(ctx, after, 4096)
		d += time.Since(start)
		if err != nil {
			return 0, err
		}
		if len(page) == 0 {
			break
		}
		n += len(page)
		after = page[len(page)-1].Position
		if keep != nil {
			*keep = append(*keep, page...)
		}
	}
	return rate(n, d), nil
}

func verify(ctx context.Context, path string) (float64, error) {
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	start := time.Now()
	rep, err := events.Verify(ctx, s, nil)
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if rep.Break != nil {
		return 0, fmt.Errorf("verify: %v", rep.Break)
	}
	return rate(int(rep.Events), d), nil
}

func plainHashes(all []events.RecordedEvent) float64 {
	start := time.Now()
	var sink byte
	for i := range all {
		h := sha256.New()
		h.Write([]byte(all[i].Type))
		h.Write(all[i].Metadata)
		h.Write(all[i].Data)
		var sum [32]byte
		h.Sum(sum[:0])
		sink ^= sum[0]
	}
	_ = sink
	return rate(len(all), time.Since(start))
}

func linkHashes(all []events.RecordedEvent) float64 {
	heads := make(map[string]events.Hash)
	start := time.Now()
	for i := range all {
		e := &all[i]
		heads[e.Stream] = events.LinkHash(heads[e.Stream], e.Stream, e.Revision, e.EventData)
	}
	return rate(len(all), time.Since(start))
}
