package merkle

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
)

// benchStore is a store of n events of about 300 bytes over 1,000 trainee
// streams, made once per size.
var (
	benchMu     sync.Mutex
	benchStores = map[int]string{}
)

func benchStore(b *testing.B, n int) string {
	b.Helper()
	benchMu.Lock()
	defer benchMu.Unlock()
	if p, ok := benchStores[n]; ok {
		return p
	}
	dir, err := filepathTemp()
	if err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(dir, "ledger.db")
	s, err := bolt.Open(p, bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for i := 0; i < n; i += 500 {
		evs := make([]events.EventData, min(500, n-i))
		for j := range evs {
			data := make([]byte, 160)
			for k := range data {
				data[k] = byte('a' + (i+j+k)%26)
			}
			evs[j] = events.EventData{ID: events.RandomID(), Type: "subsidy.v1.EntitlementApproved",
				Metadata: []byte(`{"correlation":"4f7c1c9e","source":"district","recorded":"2025-09-01T08:00:00Z"}`), Data: data}
		}
		if _, err := s.Append(ctx, fmt.Sprintf("trainee-%064d", (i/500)%1000), events.Any, evs...); err != nil {
			b.Fatal(err)
		}
	}
	benchStores[n] = p
	return p
}

func BenchmarkVerifyLog(b *testing.B) {
	const n = 200_000
	p := benchStore(b, n)
	s, err := bolt.Open(p, bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("VerifyLog-workers-%d", workers), func(b *testing.B) {
			c0 := cpuTime()
			for b.Loop() {
				rep, err := VerifyLog(context.Background(), s, VerifyOptions{Workers: workers})
				if err != nil || !rep.OK() || rep.Events != n {
					b.Fatal(err, rep.Problems)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/float64(n*b.N), "cpu-ns/event")
		})
	}
	b.Run("events.Verify", func(b *testing.B) {
		for b.Loop() {
			if _, err := events.Verify(context.Background(), s, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	})
	// The baseline of ledgerbench's verify figure: raw SHA-256 over the
	// same bytes, one sha256.Sum256 per event over the bytes its hash link
	// covers, laid out beforehand; only the hashing is timed.
	b.Run("raw-sha256", func(b *testing.B) {
		var hashTime time.Duration
		var buf []byte
		var ends []int
		var p events.Page
		for b.Loop() {
			after := events.Start
			for {
				if err := events.ReadPage(context.Background(), s, after, 4096, &p); err != nil {
					b.Fatal(err)
				}
				page := p.Events
				if len(page) == 0 {
					break
				}
				buf, ends = buf[:0], ends[:0]
				for i := range page {
					e := &page[i]
					buf = append(buf, e.PrevHash[:]...)
					buf = append(buf, e.Stream...)
					buf = binary.BigEndian.AppendUint64(buf, e.Revision)
					buf = append(buf, e.ID[:]...)
					buf = append(buf, e.Type...)
					buf = append(buf, e.Metadata...)
					buf = append(buf, e.Data...)
					ends = append(ends, len(buf))
				}
				t0 := time.Now()
				from := 0
				for _, end := range ends {
					sha256.Sum256(buf[from:end])
					from = end
				}
				hashTime += time.Since(t0)
				after = page[len(page)-1].Position
			}
		}
		b.ReportMetric(float64(n*b.N)/hashTime.Seconds(), "events/s")
		b.ReportMetric(float64(hashTime.Nanoseconds())/float64(n*b.N), "ns/event-hashed")
	})
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchSealed seals the n-event bench store into a new sealer file.
func benchSealed(b *testing.B, n int) (*Sealer, *bolt.Store, func()) {
	b.Helper()
	s, err := bolt.Open(benchStore(b, n), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	dir, _ := filepathTemp()
	sl, err := OpenSealer(filepath.Join(dir, "tree.db"), s, SealerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sl.Run(ctx) }()
	if _, err := sl.WaitSealed(context.Background(), events.Position(n)); err != nil {
		b.Fatal(err)
	}
	return sl, s, func() {
		cancel()
		<-done
		sl.Close()
		s.Close()
		os.RemoveAll(dir)
	}
}

// BenchmarkSeal measures sealing a log from scratch (the catch-up rate).
func BenchmarkSeal(b *testing.B) {
	const n = 200_000
	benchStore(b, n)
	for b.Loop() {
		_, _, stop := benchSealed(b, n)
		stop()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkProofs(b *testing.B) {
	const n = 200_000
	sl, _, stop := benchSealed(b, n)
	defer stop()
	skey, vkey, _ := GenerateKey(nil, "bench.example/ledger")
	sg, _ := NewSigner(skey)
	v, _ := NewVerifier(vkey)
	size, _, root := sl.Sealed()
	cp, _ := sg.Sign(size, root, time.Now())
	ctx := context.Background()
	b.Run("InclusionProof", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i = (i + 7919) % n
			if _, err := sl.InclusionProof(ctx, events.Position(i+1), size); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ConsistencyProof", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i = (i+7919)%(n-1) + 1
			if _, err := sl.ConsistencyProof(int64(i), size); err != nil {
				b.Fatal(err)
			}
		}
	})
	p, _ := sl.InclusionProof(ctx, 12345, size)
	b.Run("CheckInclusion+signature", func(b *testing.B) {
		for b.Loop() {
			c, err := v.Open([]byte(cp.GetSignedNote()))
			if err != nil {
				b.Fatal(err)
			}
			if err := CheckInclusion(c, p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
