package bolt_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
)

// benchEvent is an event of about 300 bytes encoded, like a ledger event.
func benchEvent(i int) events.EventData {
	data := make([]byte, 220)
	for j := range data {
		data[j] = byte('a' + (i+j)%26)
	}
	return events.EventData{
		ID:       events.RandomID(),
		Type:     "subsidy.v1.EntitlementApproved",
		Metadata: []byte(`{"correlation":"4f7c1c9e-0d7a-4e43","actor":"bench"}`),
		Data:     data,
	}
}

func benchStore(b *testing.B) *bolt.Store {
	b.Helper()
	s, err := bolt.Open(filepath.Join(b.TempDir(), "events.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func reportRate(b *testing.B, n int, start time.Time) {
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkAppend measures durable appends from one caller at several
// batch sizes; each op is one Append of batch events.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := benchStore(b)
			ctx := context.Background()
			evs := make([]events.EventData, batch)
			b.ResetTimer()
			start := time.Now()
			n := 0
			for b.Loop() {
				for i := range evs {
					evs[i] = benchEvent(n + i)
				}
				if _, err := s.Append(ctx, fmt.Sprintf("stream-%d", n%1000), events.Any, evs...); err != nil {
					b.Fatal(err)
				}
				n += batch
			}
			reportRate(b, n, start)
		})
	}
}

// BenchmarkAppendConcurrent measures single-event appends from 16 callers,
// which the writer groups into shared commits.
func BenchmarkAppendConcurrent(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(max(1, 16/testingProcs()))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(n.Add(1))
			if _, err := s.Append(ctx, fmt.Sprintf("stream-%d", i%1000), events.Any, benchEvent(i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b, int(n.Load()), start)
}

// BenchmarkReadAll measures decoding the whole log; each op reads 100,000
// events in pages of 4096.
func BenchmarkReadAll(b *testing.B) {
	const total = 100_000
	s := benchStore(b)
	ctx := context.Background()
	for i := 0; i < total; i += 1000 {
		evs := make([]events.EventData, 1000)
		for j := range evs {
			evs[j] = benchEvent(i + j)
		}
		if _, err := s.Append(ctx, fmt.Sprintf("stream-%d", i/1000%50), events.Any, evs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	n := 0
	for b.Loop() {
		after := events.Start
		for {
			page, err := s.ReadAll(ctx, after, 4096)
			if err != nil {
				b.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			n += len(page)
			after = page[len(page)-1].Position
		}
	}
	reportRate(b, n, start)
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }
