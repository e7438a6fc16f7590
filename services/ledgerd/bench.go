package ledgerd

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events/person"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/natsbus"
	"github.com/cqhrss/subsidyledger/services/simulate"
)

// IngestBenchConfig sizes the end-to-end ingest benchmark.
type IngestBenchConfig struct {
	// SingleTrainees and BatchTrainees: trainees (about 12 facts each) for
	// mode (a) single publishes and mode (b) atomic batches.
	SingleTrainees, BatchTrainees int
	// Publishers for mode (a) (16 in the issue) and batch publishers for (b).
	Publishers, BatchPublishers int
	// BatchSize of mode (b) (500 in the issue).
	BatchSize int
	// BatchRounds: mode (b) runs this many times, BatchTrainees new
	// trainees each, the followers of the log caught up before each; its
	// figure is the median round (zero: one round).
	BatchRounds int
	// PacedRate and PacedFacts: the latency run at a steady rate.
	PacedRate, PacedFacts int
	// RawMessages per raw JetStream baseline; RawBatchMessages for the
	// atomic batches' (zero: RawMessages), which go ten times as fast.
	RawMessages, RawBatchMessages int
	// Flags are extra ledgerd flags (e.g. --feed-batch 1000).
	Flags []string
	// CPU, if set, reads the process's CPU time so far (every thread);
	// mode (b) and its raw baseline then report CPU per fact and message.
	CPU func() time.Duration
	// BatchProfile, if set, receives a CPU profile of mode (b)'s rounds
	// only (runtime/pprof), without the raw baselines and mode (a).
	BatchProfile io.Writer
	// BatchMemBase and BatchMem, if set, receive the heap profile
	// (runtime/pprof "allocs") as of the start and the end of mode (b)'s
	// rounds: go tool pprof -sample_index=alloc_space -base on them
	// shows what mode (b) allocated.
	BatchMemBase, BatchMem io.Writer
}

// IngestBenchResult holds the figures, each mode beside the raw JetStream
// rate of the same publishing mode on the same server in the same run.
type IngestBenchResult struct {
	SingleFactsPerSec, SingleRawPerSec float64
	SingleP50, SingleP99               time.Duration
	BatchFactsPerSec, BatchRawPerSec   float64
	// BatchRoundFactsPerSec: mode (b)'s rounds in the order run;
	// BatchFactsPerSec is their median.
	BatchRoundFactsPerSec []float64
	// BatchCPUPerFact and BatchRawCPUPerMsg: the whole process's CPU time
	// (NATS server, ledger, publishers) per fact of mode (b), per message
	// of its raw baseline; zero without IngestBenchConfig.CPU.
	// BatchAllocPerFact: bytes the Go heap allocated per fact of mode (b).
	BatchCPUPerFact, BatchRawCPUPerMsg time.Duration
	BatchAllocPerFact                  float64
	BatchP50, BatchP99                 time.Duration
	PacedRate                          int
	PacedP50, PacedP99                 time.Duration
	Facts                              int
}

// BenchIngest measures durable end-to-end ingest on an in-process ledgerd
// with its embedded NATS server (syncing always) and the bbolt store
// (fsync per group commit): facts/s and publish-to-commit latency (publish
// start to the outcome the intake publishes after the durable append).
func BenchIngest(ctx context.Context, bc IngestBenchConfig) (IngestBenchResult, error) {
	var res IngestBenchResult
	dir, err := os.MkdirTemp("", "ingestbench")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	cfg, err := ParseConfig(append([]string{"--demo", "--data-dir", dir, "--nats-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"}, bc.Flags...), func(string) string { return "" }, io.Discard)
	if err != nil {
		return res, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	up := make(chan Started, 1)
	done := make(chan error, 1)
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("LEDGER_BENCH_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	go func() { done <- run(runCtx, cfg, log, func(s Started) { up <- s }) }()
	var st Started
	select {
	case st = <-up:
	case err := <-done:
		return res, fmt.Errorf("ledgerd: %w", err)
	}
	defer func() { stop(); <-done }()

	nc, err := nats.Connect(st.NATSURL)
	if err != nil {
		return res, err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	keyer, err := person.NewKeyer([]byte("benchmark key, not a real one, 32+ bytes"))
	if err != nil {
		return res, err
	}
	rounds := max(bc.BatchRounds, 1)
	total := bc.SingleTrainees + rounds*bc.BatchTrainees + bc.PacedFacts/10 + 1
	// Without the officials' and payment system's facts: the simulator cannot know
	// which entitlements the rules will hold, and a settlement of an order
	// that was never made waits for it (--reference-wait) before it is
	// rejected, which would time the wait rather than the ingest.
	prog, err := simulate.New(simulate.Config{Seed: 11, Year: 2025, Trainees: total, Keyer: keyer})
	if err != nil {
		return res, err
	}
	// Outcomes: the time each message's record was durable.
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lat []time.Duration
	var outcomes atomic.Int64
	sub, err := nc.Subscribe("subsidy.outcome.>", func(m *nats.Msg) {
		now := time.Now()
		o := &subsidyv1.IntakeOutcome{}
		if proto.Unmarshal(m.Data, o) != nil {
			return
		}
		mu.Lock()
		if t0, ok := sent[o.GetMessageId()]; ok {
			lat = append(lat, now.Sub(t0))
			delete(sent, o.GetMessageId())
			outcomes.Add(1)
		}
		mu.Unlock()
	})
	if err != nil {
		return res, err
	}
	defer sub.Unsubscribe()
	mark := func(id string, t time.Time) { mu.Lock(); sent[id] = t; mu.Unlock() }
	waitFor := func(n int64) error {
		deadline := time.Now().Add(5 * time.Minute)
		for outcomes.Load() < n {
			if time.Now().After(deadline) {
				return fmt.Errorf("only %d of %d outcomes", outcomes.Load(), n)
			}
			time.Sleep(200 * time.Microsecond)
		}
		return nil
	}
	reset := func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		out := lat
		lat = nil
		outcomes.Store(0)
		return out
	}

	// Reference data first.
	ref := prog.Reference()
	for _, f := range ref {
		m, _ := simulate.Msg("subsidy.in", f, false)
		mark(f.MsgID, time.Now())
		if _, err := js.PublishMsg(ctx, m); err != nil {
			return res, err
		}
	}
	if err := waitFor(int64(len(ref))); err != nil {
		return res, err
	}
	reset()
	trainee := 0
	lanes := func(n int) ([][]*nats.Msg, [][]string, int) {
		var ms [][]*nats.Msg
		var ids [][]string
		count := 0
		for range n {
			fs, _ := prog.Trainee(trainee)
			trainee++
			var lm []*nats.Msg
			var li []string
			for _, f := range fs {
				m, _ := simulate.Msg("subsidy.in", f, false)
				lm, li = append(lm, m), append(li, f.MsgID)
			}
			ms, ids = append(ms, lm), append(ids, li)
			count += len(lm)
		}
		return ms, ids, count
	}

	// Raw baselines on the same server: a stream like the inbound one.
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "BENCH_RAW", Subjects: []string{"bench.raw.>"},
		Storage: jetstream.FileStorage, AllowAtomicPublish: true, Duplicates: 10 * time.Minute, Retention: jetstream.LimitsPolicy}); err != nil {
		return res, err
	}
	payload := make([]byte, 180)
	rawSingle := func() (float64, error) {
		return RawSingles(ctx, js, "bench.raw", bc.Publishers, bc.RawMessages/bc.Publishers, len(payload))
	}
	rawBatch := func() (float64, error) {
		per := rawBatchesPer(bc)
		t0 := time.Now()
		var wg sync.WaitGroup
		errc := make(chan error, bc.BatchPublishers)
		for w := range bc.BatchPublishers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range per {
					msgs := make([]*nats.Msg, bc.BatchSize)
					for i := range msgs {
						msgs[i] = nats.NewMsg(fmt.Sprintf("bench.raw.b%d", w))
						msgs[i].Data = payload
						msgs[i].Header.Set(natsbus.HeaderMsgID, fmt.Sprintf("rawb-%d-%d-%d", w, b, i))
					}
					if _, err := natsbus.PublishAtomic(ctx, nc, fmt.Sprintf("raw-%d-%d", w, b), msgs); err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		select {
		case err := <-errc:
			return 0, err
		default:
		}
		return float64(per*bc.BatchPublishers*bc.BatchSize) / time.Since(t0).Seconds(), nil
	}
	if res.SingleRawPerSec, err = rawSingle(); err != nil {
		return res, fmt.Errorf("raw single publishes: %w", err)
	}
	cpu := bc.CPU
	if cpu == nil {
		cpu = func() time.Duration { return 0 }
	}
	c0 := cpu()
	if res.BatchRawPerSec, err = rawBatch(); err != nil {
		return res, fmt.Errorf("raw atomic batches: %w", err)
	}
	res.BatchRawCPUPerMsg = (cpu() - c0) / time.Duration(rawBatchesPer(bc)*bc.BatchPublishers*bc.BatchSize)

	// Mode (a): single publishes from concurrent publishers, each trainee's
	// facts in order by one publisher.
	ms, ids, count := lanes(bc.SingleTrainees)
	res.Facts += count
	t0 := time.Now()
	next := make(chan int)
	var wg sync.WaitGroup
	errc := make(chan error, bc.Publishers)
	for range bc.Publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range next {
				for i, m := range ms[l] {
					mark(ids[l][i], time.Now())
					if _, err := js.PublishMsg(ctx, m); err != nil {
						errc <- err
						return
					}
				}
			}
		}()
	}
	for l := range ms {
		next <- l
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errc:
		return res, err
	default:
	}
	if err := waitFor(int64(count)); err != nil {
		return res, fmt.Errorf("mode (a): %w", err)
	}
	res.SingleFactsPerSec = float64(count) / time.Since(t0).Seconds()
	res.SingleP50, res.SingleP99 = percentiles(reset())

	// Mode (b): atomic batches of up to BatchSize facts. A trainee's facts
	// never straddle two batches, so concurrent batch publishers keep each
	// trainee's order. Each round starts once the followers of the log have
	// caught up with what came before, so that rounds do not pay for each
	// other's catch-up.
	var batchLat []time.Duration
	var batchCPU time.Duration
	var batchAlloc float64
	batchFacts := 0
	if bc.BatchProfile != nil {
		if err := pprof.StartCPUProfile(bc.BatchProfile); err != nil {
			return res, fmt.Errorf("mode (b)'s CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile() // on an early return; a second stop does nothing
	}
	if err := writeAllocs(bc.BatchMemBase); err != nil {
		return res, fmt.Errorf("mode (b)'s heap profile: %w", err)
	}
	for round := range rounds {
		if round > 0 {
			if err := WaitCaughtUp(ctx, "http://"+st.HTTPAddr+"/metrics", 2*time.Minute); err != nil {
				return res, fmt.Errorf("mode (b), round %d: %w", round+1, err)
			}
		}
		rate, cpuUsed, allocated, n, err := batchRound(ctx, bc, nc, lanes, mark, waitFor, cpu)
		if err != nil {
			return res, fmt.Errorf("mode (b), round %d: %w", round+1, err)
		}
		res.Facts += n
		batchFacts += n
		batchCPU += cpuUsed
		batchAlloc += allocated
		res.BatchRoundFactsPerSec = append(res.BatchRoundFactsPerSec, rate)
		batchLat = append(batchLat, reset()...)
	}
	if bc.BatchProfile != nil {
		pprof.StopCPUProfile()
	}
	if err := writeAllocs(bc.BatchMem); err != nil {
		return res, fmt.Errorf("mode (b)'s heap profile: %w", err)
	}
	sorted := slices.Clone(res.BatchRoundFactsPerSec)
	slices.Sort(sorted)
	res.BatchFactsPerSec = sorted[len(sorted)/2]
	res.BatchCPUPerFact = batchCPU / time.Duration(batchFacts)
	res.BatchAllocPerFact = batchAlloc / float64(batchFacts)
	res.BatchP50, res.BatchP99 = percentiles(batchLat)

	// Latency at a steady rate: once the followers of the log (projections,
	// outbound feed, Merkle sealer) have caught up with the burst of mode
	// (b), so that the figure is the steady state's, not the tail of a
	// catch-up.
	if bc.PacedRate > 0 && bc.PacedFacts > 0 {
		if err := WaitCaughtUp(ctx, "http://"+st.HTTPAddr+"/metrics", 2*time.Minute); err != nil {
			return res, fmt.Errorf("paced: %w", err)
		}
		ms, ids, _ = lanes(bc.PacedFacts/10 + 1)
		var flat []*nats.Msg
		var flatIDs []string
		for l := range ms {
			flat, flatIDs = append(flat, ms[l]...), append(flatIDs, ids[l]...)
		}
		flat, flatIDs = flat[:min(len(flat), bc.PacedFacts)], flatIDs[:min(len(flat), bc.PacedFacts)]
		interval := time.Second / time.Duration(bc.PacedRate)
		start := time.Now()
		var pending []jetstream.PubAckFuture
		for i, m := range flat {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
			mark(flatIDs[i], time.Now())
			f, err := js.PublishMsgAsync(m)
			if err != nil {
				return res, err
			}
			pending = append(pending, f)
		}
		for _, f := range pending {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return res, err
			}
		}
		if err := waitFor(int64(len(flat))); err != nil {
			return res, fmt.Errorf("paced: %w", err)
		}
		res.PacedRate = bc.PacedRate
		res.PacedP50, res.PacedP99 = percentiles(reset())
		res.Facts += len(flat)
	}
	return res, nil
}

// rawBatchesPer is the number of atomic batches each publisher of the raw
// baseline sends (at least one).
func rawBatchesPer(bc IngestBenchConfig) int {
	n := bc.RawBatchMessages
	if n <= 0 {
		n = bc.RawMessages
	}
	return max(1, n/bc.BatchPublishers/bc.BatchSize)
}

// writeAllocs writes the heap profile as of now to w (nil: nothing),
// after a collection so that the profile includes the latest allocations.
func writeAllocs(w io.Writer) error {
	if w == nil {
		return nil
	}
	runtime.GC()
	return pprof.Lookup("allocs").WriteTo(w, 0)
}

// heapAllocs is the bytes the Go heap has allocated so far.
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// batchRound publishes BatchTrainees trainees' facts in atomic batches
// from BatchPublishers publishers and waits for every outcome: facts/s, the
// process's CPU time and the Go heap's allocations meanwhile, and the facts.
func batchRound(ctx context.Context, bc IngestBenchConfig, nc *nats.Conn,
	lanes func(int) ([][]*nats.Msg, [][]string, int), mark func(string, time.Time),
	waitFor func(int64) error, cpu func() time.Duration) (rate float64, cpuUsed time.Duration, allocated float64, count int, err error) {
	ms, ids, count := lanes(bc.BatchTrainees)
	type chunk struct {
		msgs []*nats.Msg
		ids  []string
	}
	var chunks []chunk
	cur := chunk{}
	for l := range ms {
		if len(cur.msgs)+len(ms[l]) > bc.BatchSize {
			chunks, cur = append(chunks, cur), chunk{}
		}
		cur.msgs, cur.ids = append(cur.msgs, ms[l]...), append(cur.ids, ids[l]...)
	}
	if len(cur.msgs) > 0 {
		chunks = append(chunks, cur)
	}
	t0, c0 := time.Now(), cpu()
	a0 := heapAllocs()
	nextChunk := make(chan int)
	errc := make(chan error, bc.BatchPublishers)
	var wg sync.WaitGroup
	for range bc.BatchPublishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range nextChunk {
				now := time.Now()
				for _, id := range chunks[c].ids {
					mark(id, now)
				}
				if _, err := natsbus.PublishAtomic(ctx, nc, fmt.Sprintf("facts-%d-%d", c, t0.UnixNano()), chunks[c].msgs); err != nil {
					errc <- err
					for range nextChunk { // let the feeder finish
					}
					return
				}
			}
		}()
	}
	for c := range len(chunks) {
		nextChunk <- c
	}
	close(nextChunk)
	wg.Wait()
	select {
	case err := <-errc:
		return 0, 0, 0, count, err
	default:
	}
	if err := waitFor(int64(count)); err != nil {
		return 0, 0, 0, count, err
	}
	return float64(count) / time.Since(t0).Seconds(), cpu() - c0, float64(heapAllocs() - a0), count, nil
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	return d[len(d)*50/100], d[min(len(d)-1, len(d)*99/100)]
}

// RawSingles is the raw JetStream baseline of single publishes: publishers
// concurrent publishers each publish size-byte messages with a Nats-Msg-Id
// on <prefix>.<publisher>, waiting for each acknowledgement, until each has
// published per messages (per > 0) or ctx ends. It returns the rate. A
// stream must hold the subjects.
func RawSingles(ctx context.Context, js jetstream.JetStream, prefix string, publishers, per, size int) (float64, error) {
	payload := make([]byte, size)
	pctx := context.WithoutCancel(ctx) // a publish under way when ctx ends is waited for
	var n atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, publishers)
	t0 := time.Now()
	for w := range publishers {
		wg.Go(func() {
			for i := 0; (per <= 0 || i < per) && ctx.Err() == nil; i++ {
				m := nats.NewMsg(fmt.Sprintf("%s.%d", prefix, w))
				m.Data = payload
				m.Header.Set(natsbus.HeaderMsgID, fmt.Sprintf("%s-%d-%d", prefix, w, i))
				if _, err := js.PublishMsg(pctx, m); err != nil {
					errc <- err
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errc:
		return 0, err
	default:
	}
	return float64(n.Load()) / time.Since(t0).Seconds(), nil
}

// WaitCaughtUp polls ledgerd's metrics (url: its /metrics) until every
// projection's lag is zero and the outbound feed and the Merkle sealer have
// reached the intake's position, or within ends.
func WaitCaughtUp(ctx context.Context, url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		ok, err := followersCaughtUp(url)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the followers of the log did not catch up within %v", within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func followersCaughtUp(url string) (bool, error) {
	resp, err := http.Get(url)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var intake, feed, sealed float64
	lagging := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			continue
		}
		switch {
		case name == "subsidy_ledger_intake_position":
			intake = f
		case name == "subsidy_ledger_feed_position":
			feed = f
		case name == "subsidy_ledger_merkle_sealed_position":
			sealed = f
		case strings.HasPrefix(name, "subsidy_ledger_projection_lag_events{"):
			lagging = lagging || f > 0
		}
	}
	if err := sc.Err(); err != nil {
		return false, err
	}
	return !lagging && intake > 0 && feed >= intake && sealed >= intake, nil
}
