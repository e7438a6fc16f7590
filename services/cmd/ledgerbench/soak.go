package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
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
	"github.com/cqhrss/subsidyledger/services/ledgerd"
	"github.com/cqhrss/subsidyledger/services/natsbus"
	"github.com/cqhrss/subsidyledger/services/simulate"
)

// soakConfig sizes `ledgerbench soak`.
type soakConfig struct {
	rate            int           // target facts/s
	duration        time.Duration // publishing time
	every           time.Duration // report period
	bulkShare       float64       // share of facts published in atomic batches
	batchSize       int           // facts per atomic batch
	publishers      int           // concurrent single publishers
	batchPublishers int           // concurrent batch publishers
	queryRate       int           // HTTP queries/s
	memAt           time.Duration // when the memory baseline is taken
	flatWithin      float64       // memory is flat if it grows by at most this share after memAt
	restartCheck    bool          // restart ledgerd at the end and compare live heaps
	dir             string
	ledgerdFlags    []string
}

// runSoak is `ledgerbench soak`: ledgerd as a separate process (this
// binary re-executed as ledgerd: embedded NATS syncing always, bbolt store)
// fed simulated facts at a steady rate for a long time while HTTP queries
// run, reporting every period and summing up at the end.
func runSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ledgerbench soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c soakConfig
	fs.IntVar(&c.rate, "rate", 5000, "target facts/s")
	fs.DurationVar(&c.duration, "duration", 10*time.Minute, "how long to publish")
	fs.DurationVar(&c.every, "every", 10*time.Second, "report period")
	fs.Float64Var(&c.bulkShare, "bulk", 0.5, "share of the trainees (and so about that share of the facts) published as bulk feeds in atomic batches, the rest in single publishes; each lane is generated and paced on its own, at its share of -rate")
	fs.IntVar(&c.batchSize, "batch", 500, "facts per atomic batch (at most 1000; a batch holds whole trainees, so one trainee with more facts goes alone)")
	fs.IntVar(&c.publishers, "publishers", 64, "concurrent single publishers")
	fs.IntVar(&c.batchPublishers, "batch-publishers", 4, "concurrent batch publishers")
	fs.IntVar(&c.queryRate, "query-rate", 50, "HTTP queries/s (trainee status and quota dashboard, alternately)")
	fs.DurationVar(&c.memAt, "mem-at", 2*time.Minute, "when the memory baseline is taken (at most a fifth of -duration)")
	fs.Float64Var(&c.flatWithin, "flat-within", 0.25, "memory counts as flat if heap in use and anonymous RSS at the end exceed the baseline by at most this share")
	fs.BoolVar(&c.restartCheck, "restart-check", true, "after the soak, restart ledgerd on its data directory and compare its live heap with the end of the soak's: memory that comes back is the state the log rebuilds, memory that does not was held by the run (a leak, or a cache)")
	fs.StringVar(&c.dir, "dir", "", "data directory of ledgerd (default: a new temporary directory, removed at the end)")
	fs.Func("ledgerd-flag", "an extra ledgerd flag (repeatable)", func(v string) error { c.ledgerdFlags = append(c.ledgerdFlags, v); return nil })
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ledgerbench soak [flags]\n\nSustained durable ingest at a steady rate with queries running; reports throughput,\nlatency and ledgerd's memory every period, and a summary.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case c.rate < 1:
		return fmt.Errorf("-rate must be at least 1")
	case c.duration < time.Second || c.every < time.Second:
		return fmt.Errorf("-duration and -every must be at least 1s")
	case c.bulkShare < 0 || c.bulkShare > 1:
		return fmt.Errorf("-bulk must be between 0 and 1")
	case c.batchSize < 1 || c.batchSize > natsbus.MaxAtomicBatch:
		return fmt.Errorf("-batch must be 1 to %d", natsbus.MaxAtomicBatch)
	case c.publishers < 1 || c.batchPublishers < 1:
		return fmt.Errorf("-publishers and -batch-publishers must be at least 1")
	}
	c.memAt = min(c.memAt, c.duration/5)
	if c.dir == "" {
		d, err := os.MkdirTemp("", "ledgersoak-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		c.dir = d
	} else if err := os.MkdirAll(c.dir, 0o750); err != nil {
		return fmt.Errorf("-dir: %w", err)
	}
	return soak(ctx, c, stdout, stderr)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func soak(ctx context.Context, c soakConfig, stdout, stderr io.Writer) error {
	p, err := startLedgerd(c.dir+"/data", c.dir+"/ledgerd.log", c.ledgerdFlags...)
	if err != nil {
		return err
	}
	defer p.stop()
	base := p.base
	if err := p.waitReady(ctx, 60*time.Second); err != nil {
		return err
	}
	nc, err := nats.Connect(p.nats, nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)

	// Facts: a simulated programme, generated as it is published. Without
	// the officials' and payment system's facts (see BenchIngest).
	keyer, err := person.NewKeyer([]byte("soak key, not a real one, 32 bytes or more"))
	if err != nil {
		return err
	}
	prog, err := simulate.New(simulate.Config{Seed: 31, Year: 2025, Trainees: 1 << 30, Keyer: keyer})
	if err != nil {
		return err
	}
	st := &soakStats{sent: map[string]time.Time{}}
	sub, err := nc.Subscribe("subsidy.outcome.>", st.outcome)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	for _, f := range prog.Reference() {
		m, err := simulate.Msg("subsidy.in", f, false)
		if err != nil {
			return err
		}
		st.mark(f.MsgID, time.Now())
		if _, err := js.PublishMsg(ctx, m); err != nil {
			return fmt.Errorf("reference data: %w", err)
		}
		st.published.Add(1)
	}
	for deadline := time.Now().Add(time.Minute); st.committed.Load() < st.published.Load(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return errors.New("the reference data was not recorded within a minute")
		}
	}
	st.reset()
	// Baseline: what raw single publishes of the same size reach on the
	// same server, from as many publishers, for a few seconds.
	raw, err := rawSingles(ctx, js, c.publishers, 5*time.Second)
	if err != nil {
		return fmt.Errorf("raw JetStream baseline: %w", err)
	}

	pubCtx, stopPub := context.WithTimeout(ctx, c.duration)
	defer stopPub()
	// Each lane keeps its own pace, its share of the rate.
	start := time.Now()
	singleLim, bulkLim := newPacer(float64(c.rate)*(1-c.bulkShare), start), newPacer(float64(c.rate)*c.bulkShare, start)
	errc := make(chan error, c.publishers+c.batchPublishers+2)
	var wg sync.WaitGroup
	singles := make(chan []*nats.Msg, 4*c.publishers)
	batches := make(chan []*nats.Msg, 2*c.batchPublishers)
	keys := &keyRing{}
	wg.Add(2)
	go func() { defer wg.Done(); generate(pubCtx, prog, c, false, singles, keys) }()
	go func() { defer wg.Done(); generate(pubCtx, prog, c, true, batches, keys) }()
	for range c.publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lane := range singles {
				for _, m := range lane {
					if !singleLim.take(pubCtx, 1) {
						return
					}
					st.mark(m.Header.Get(natsbus.HeaderMsgID), time.Now())
					if _, err := js.PublishMsg(ctx, m); err != nil {
						errc <- fmt.Errorf("single publish: %w", err)
						return
					}
					st.published.Add(1)
				}
			}
		}()
	}
	var batchN atomic.Int64
	for range c.batchPublishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				if !bulkLim.take(pubCtx, len(b)) {
					return
				}
				now := time.Now()
				for _, m := range b {
					st.mark(m.Header.Get(natsbus.HeaderMsgID), now)
				}
				if _, err := natsbus.PublishAtomic(ctx, nc, fmt.Sprintf("soak-%d", batchN.Add(1)), b); err != nil {
					errc <- fmt.Errorf("atomic batch: %w", err)
					return
				}
				st.published.Add(int64(len(b)))
				st.bulk.Add(int64(len(b)))
			}
		}()
	}
	// Queries all the time: a recently published trainee's status and the
	// quota dashboard, alternately.
	qctx, stopQueries := context.WithCancel(ctx)
	defer stopQueries()
	var qwg sync.WaitGroup
	qwg.Add(1)
	go func() { defer qwg.Done(); queries(qctx, base, c.queryRate, keys, st) }()

	fmt.Fprintf(stdout, "soak: %d facts/s for %s (%.0f%% in atomic batches of %d, the rest single publishes from %d publishers), %d queries/s; ledgerd pid %d, data %s\n",
		c.rate, c.duration, 100*c.bulkShare, c.batchSize, c.publishers, c.queryRate, p.cmd.Process.Pid, c.dir)
	fmt.Fprintf(stdout, "baseline: raw JetStream single publishes on the same server, %d publishers, before the soak: %.0f msgs/s\n", c.publishers, raw)
	fmt.Fprintf(stdout, "%8s %8s %8s %9s %10s %8s %8s %9s %9s %9s %9s %9s %8s\n",
		"elapsed", "pub/s", "bulk/s", "commit/s", "committed", "p50 ms", "p99 ms", "http p99", "heap MiB", "live MiB", "rss MiB", "anon MiB", "backlog")
	var samples []soakSample
	tick := time.NewTicker(c.every)
	defer tick.Stop()
	lastPub, lastBulk, lastCommit, lastT := int64(0), int64(0), int64(0), start
	report := func(now time.Time, label string) error {
		pub, bulk, com := st.published.Load(), st.bulk.Load(), st.committed.Load()
		lat, hq := st.interval()
		heap, live, err := scrapeHeap(base + "/metrics")
		if err != nil {
			return fmt.Errorf("scraping ledgerd's metrics: %w", err)
		}
		rss, anon, err := processRSS(p.cmd.Process.Pid)
		if err != nil {
			return err
		}
		dt := now.Sub(lastT).Seconds()
		s := soakSample{at: now.Sub(start), published: pub, committed: com, heap: heap, live: live, rss: rss, anon: anon}
		samples = append(samples, s)
		if label == "" {
			label = s.at.Round(time.Second).String()
		}
		fmt.Fprintf(stdout, "%8s %8.0f %8.0f %9.0f %10d %8.1f %8.1f %9.1f %9.1f %9.1f %9.1f %9.1f %8d\n",
			label, float64(pub-lastPub)/dt, float64(bulk-lastBulk)/dt, float64(com-lastCommit)/dt, com,
			ms(lat.quantile(0.5)), ms(lat.quantile(0.99)), ms(hq.quantile(0.99)), mib(heap), mib(live), mib(rss), mib(anon), pub-com)
		lastPub, lastBulk, lastCommit, lastT = pub, bulk, com, now
		return nil
	}
	pubDone := make(chan struct{})
	go func() { wg.Wait(); close(pubDone) }()
loop:
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			return err
		case <-p.exited:
			return p.exitedErr()
		case now := <-tick.C:
			if err := report(now, ""); err != nil {
				return err
			}
		case <-pubDone:
			break loop
		}
	}
	pubEnd := time.Now()
	published := st.published.Load()
	committedAtEnd := st.committed.Load()
	backlogAtEnd := published - committedAtEnd
	// Let the ledger finish what was published (queries keep running).
	for deadline := time.Now().Add(2 * time.Minute); st.committed.Load() < published && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	drained := time.Since(pubEnd)
	if err := report(time.Now(), "drained"); err != nil {
		return err
	}
	stopQueries()
	qwg.Wait()

	// Summary.
	elapsed := pubEnd.Sub(start)
	committed := st.committed.Load()
	due := float64(c.rate) * elapsed.Seconds()
	fmt.Fprintf(stdout, "\nsummary (%s of publishing, %s to drain):\n", elapsed.Round(100*time.Millisecond), drained.Round(10*time.Millisecond))
	fmt.Fprintf(stdout, "  published %d facts = %.0f facts/s (target %d: %.1f%%; %.0f/s in atomic batches, %.0f/s single); committed %d (%d accepted, %d rejected), %.0f facts/s while publishing\n",
		published, float64(published)/elapsed.Seconds(), c.rate, 100*float64(published)/due,
		float64(st.bulk.Load())/elapsed.Seconds(), float64(published-st.bulk.Load())/elapsed.Seconds(),
		committed, committed-st.rejected.Load(), st.rejected.Load(), float64(committedAtEnd)/elapsed.Seconds())
	fmt.Fprintf(stdout, "  publish-to-commit p50 %.1f ms, p99 %.1f ms, max %.1f ms; HTTP queries: %d, p99 %.1f ms, %d errors\n",
		ms(st.total.quantile(0.5)), ms(st.total.quantile(0.99)), ms(st.total.max()), st.httpTotal.count(), ms(st.httpTotal.quantile(0.99)), st.httpErrors.Load())
	fmt.Fprintf(stdout, "  single publishes reached %.0f/s beside %.0f msgs/s of raw JetStream single publishes (baseline)\n",
		float64(published-st.bulk.Load())/elapsed.Seconds(), raw)
	keptUp := float64(published) >= 0.99*due && float64(backlogAtEnd) <= 2*float64(c.rate) && committed >= published
	verdict := "yes"
	if !keptUp {
		verdict = "NO"
	}
	fmt.Fprintf(stdout, "  kept up with %d facts/s: %s (published %.1f%% of the target; backlog at the end of publishing %d facts, drained in %s)\n",
		c.rate, verdict, 100*float64(published)/due, backlogAtEnd, drained.Round(10*time.Millisecond))
	if drained > 10*time.Second {
		fmt.Fprintf(stdout, "  (a long drain with a short backlog is a fact waiting out ledgerd's --reference-wait for something never recorded, then rejected; the max latency above is that wait)\n")
	}
	var baseline *soakSample
	for i := range samples {
		if samples[i].at >= c.memAt {
			baseline = &samples[i]
			break
		}
	}
	last := samples[len(samples)-1]
	if baseline == nil || baseline == &samples[len(samples)-1] {
		fmt.Fprintln(stdout, "  memory: too few reports to compare")
		return restartCheck(ctx, c, p, keys.count(), stdout)
	}
	hg, rg := float64(last.heap)/float64(baseline.heap)-1, float64(last.rss)/float64(baseline.rss)-1
	ag := float64(last.anon)/float64(baseline.anon) - 1
	flat := "flat"
	if hg > c.flatWithin || ag > c.flatWithin {
		flat = "NOT flat"
	}
	perM := func(a, b int64) float64 {
		if last.committed == baseline.committed {
			return 0
		}
		return float64(a-b) / float64(last.committed-baseline.committed) * 1e6
	}
	fmt.Fprintf(stdout, "  memory from %s to the end: heap in use %.1f -> %.1f MiB (%+.1f%%), anonymous RSS %.1f -> %.1f MiB (%+.1f%%): %s (threshold +%.0f%% for both); RSS with the mapped store %.1f -> %.1f MiB (%+.1f%%)\n",
		baseline.at.Round(time.Second), mib(baseline.heap), mib(last.heap), 100*hg, mib(baseline.anon), mib(last.anon), 100*ag, flat, 100*c.flatWithin,
		mib(baseline.rss), mib(last.rss), 100*rg)
	fmt.Fprintf(stdout, "  growth per million facts committed since: heap in use %.0f MiB, live heap %.0f MiB (%.1f -> %.1f MiB), anonymous RSS %.0f MiB, RSS %.0f MiB\n",
		mib(int64(perM(last.heap, baseline.heap))), mib(int64(perM(last.live, baseline.live))), mib(baseline.live), mib(last.live),
		mib(int64(perM(last.anon, baseline.anon))), mib(int64(perM(last.rss, baseline.rss))))
	fmt.Fprintf(stdout, "  (the live heap is what the last collection marked: the state the ledger keeps in memory, which grows with every trainee; heap in use adds the cycle's garbage)\n")
	return restartCheck(ctx, c, p, keys.count(), stdout)
}

// restartCheck tells the state from the rest in ledgerd's memory at the end
// of a soak: it collects garbage and reads the live heap, stops ledgerd,
// starts it again on the same data directory, waits until it is ready and
// its followers have caught up, and reads the live heap again. What the
// restarted process holds is what the log (and the snapshots of it)
// rebuild: the rules' world, the read models, the recent-ID indexes. A live
// heap at the end of the soak well above that was held by the run itself:
// a leak, or a cache that does not come back.
func restartCheck(ctx context.Context, c soakConfig, p *ledgerdProc, trainees int, stdout io.Writer) error {
	if !c.restartCheck {
		return nil
	}
	endProfile, afterProfile := c.dir+"/heap-end.pprof", c.dir+"/heap-restarted.pprof"
	end, endShares, err := p.heap(ctx, endProfile)
	if err != nil {
		return fmt.Errorf("restart check: %w", err)
	}
	if err := p.stop(); err != nil {
		return err
	}
	again, err := startLedgerd(c.dir+"/data", c.dir+"/ledgerd-restarted.log", c.ledgerdFlags...)
	if err != nil {
		return err
	}
	defer again.stop()
	t0 := time.Now()
	if err := again.waitReady(ctx, 5*time.Minute); err != nil {
		return fmt.Errorf("restart check: %w", err)
	}
	ready := time.Since(t0)
	if err := ledgerd.WaitCaughtUp(ctx, again.base+"/metrics", 5*time.Minute); err != nil {
		return fmt.Errorf("restart check: %w", err)
	}
	after, afterShares, err := again.heap(ctx, afterProfile)
	if err != nil {
		return fmt.Errorf("restart check: %w", err)
	}
	fmt.Fprintf(stdout, "  restart check: live heap after a collection %.1f MiB at the end of the soak, %.1f MiB after a restart on the same data (ready in %s, followers caught up): %+.1f%%\n",
		mib(end), mib(after), ready.Round(10*time.Millisecond), 100*(float64(end)/float64(after)-1))
	var by []string
	for i, sh := range endShares {
		name := "the rest"
		if i < len(heapHolders) {
			name = heapHolders[i].name
		}
		by = append(by, fmt.Sprintf("%s %.0f -> %.0f", name, mib(int64(sh*float64(end))), mib(int64(afterShares[i]*float64(after)))))
	}
	fmt.Fprintf(stdout, "  by what holds it, MiB at the end -> after the restart (the heap profiles' shares of the live heap): %s\n", strings.Join(by, ", "))
	if trainees > 0 {
		fmt.Fprintf(stdout, "  that state: about %d trainees (%.1f KiB of live heap each, the reference data and the process's own included)\n",
			trainees, float64(after)/1024/float64(trainees))
	}
	fmt.Fprintf(stdout, "  heap profiles of both: %s, %s (what the first holds beyond the second: go tool pprof -sample_index=inuse_space -base %s %s)\n",
		endProfile, afterProfile, afterProfile, endProfile)
	return nil
}

type soakSample struct {
	at                    time.Duration
	published, committed  int64
	heap, live, rss, anon int64
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
func mib(b int64) float64        { return float64(b) / (1 << 20) }

// soakStats counts publishes and outcomes and keeps the latencies.
type soakStats struct {
	published, committed, rejected atomic.Int64
	bulk                           atomic.Int64 // published in atomic batches
	httpErrors                     atomic.Int64

	mu        sync.Mutex
	sent      map[string]time.Time // message id -> publish start, until its outcome
	lat, http hist                 // this report period
	total     hist                 // the whole run
	httpTotal hist
}

func (s *soakStats) mark(id string, t time.Time) {
	s.mu.Lock()
	s.sent[id] = t
	s.mu.Unlock()
}

// outcome handles an intake outcome: the message's record is durable.
func (s *soakStats) outcome(m *nats.Msg) {
	now := time.Now()
	o := &subsidyv1.IntakeOutcome{}
	if proto.Unmarshal(m.Data, o) != nil {
		return
	}
	s.mu.Lock()
	t0, ok := s.sent[o.GetMessageId()]
	if ok {
		delete(s.sent, o.GetMessageId())
		d := now.Sub(t0)
		s.lat.add(d)
		s.total.add(d)
	}
	s.mu.Unlock()
	if ok {
		s.committed.Add(1)
		if !o.GetAccepted() {
			s.rejected.Add(1)
		}
	}
}

func (s *soakStats) query(d time.Duration, ok bool) {
	if !ok {
		s.httpErrors.Add(1)
	}
	s.mu.Lock()
	s.http.add(d)
	s.httpTotal.add(d)
	s.mu.Unlock()
}

// interval returns the latencies of the period and starts a new one.
func (s *soakStats) interval() (lat, queries hist) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lat, queries = s.lat, s.http
	s.lat, s.http = hist{}, hist{}
	return lat, queries
}

func (s *soakStats) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lat, s.http, s.total, s.httpTotal = hist{}, hist{}, hist{}, hist{}
	s.published.Store(0)
	s.bulk.Store(0)
	s.committed.Store(0)
	s.rejected.Store(0)
}

// hist is a latency histogram with buckets 2% apart from 1µs to about 3h.
type hist struct {
	n       [1100]int64
	n_      int64
	maxSeen time.Duration
}

const histBase = 1.02

func (h *hist) add(d time.Duration) {
	us := max(float64(d.Nanoseconds())/1000, 1)
	i := min(int(math.Log(us)/math.Log(histBase)), len(h.n)-1)
	h.n[i]++
	h.n_++
	h.maxSeen = max(h.maxSeen, d)
}

func (h *hist) count() int64       { return h.n_ }
func (h *hist) max() time.Duration { return h.maxSeen }

// quantile returns the upper bound of the bucket holding quantile q.
func (h *hist) quantile(q float64) time.Duration {
	if h.n_ == 0 {
		return 0
	}
	want := int64(math.Ceil(q * float64(h.n_)))
	var seen int64
	for i, n := range h.n {
		seen += n
		if seen >= want {
			return min(time.Duration(math.Pow(histBase, float64(i+1))*1000), h.maxSeen)
		}
	}
	return h.maxSeen
}

// pacer spaces publishes at a steady rate shared by every publisher.
type pacer struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

// newPacer paces rate facts/s from start; at a rate of zero, take never
// lets anything through.
func newPacer(rate float64, start time.Time) *pacer {
	if rate <= 0 {
		return &pacer{interval: 24 * time.Hour, next: start.Add(24 * time.Hour)}
	}
	return &pacer{interval: time.Duration(float64(time.Second) / rate), next: start}
}

// take reserves n facts' worth of the rate and waits for its turn; false
// if ctx ends first.
func (p *pacer) take(ctx context.Context, n int) bool {
	p.mu.Lock()
	at := p.next
	p.next = p.next.Add(time.Duration(n) * p.interval)
	p.mu.Unlock()
	if d := time.Until(at); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return ctx.Err() == nil
}

// keyRing remembers the person keys of recently published trainees.
type keyRing struct {
	mu   sync.Mutex
	keys [1024]string
	n    int
}

func (k *keyRing) add(key string) {
	k.mu.Lock()
	k.keys[k.n%len(k.keys)] = key
	k.n++
	k.mu.Unlock()
}

// count is the number of trainees whose facts were generated.
func (k *keyRing) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.n
}

func (k *keyRing) pick(i int) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.n == 0 {
		return ""
	}
	return k.keys[i%min(k.n, len(k.keys))]
}

// bulkTrainee reports whether trainee i's facts belong to the bulk feeds:
// trainees are dealt to the two lanes so that share of them are bulk.
func bulkTrainee(i int, share float64) bool {
	return math.Floor(float64(i+1)*share) > math.Floor(float64(i)*share)
}

// generate turns the trainees of one lane into their messages: whole
// trainees go to the batch publishers (bulk feeds, in atomic batches of
// whole trainees, so that a trainee's facts stay in order) or one trainee
// at a time to the single publishers. The two lanes are generated
// independently (as the evaluation institutions' bulk feeds and the other
// services publish independently), so a lane that falls behind does not
// hold the other back.
func generate(ctx context.Context, prog *simulate.Programme, c soakConfig, bulk bool, out chan<- []*nats.Msg, keys *keyRing) {
	defer close(out)
	if (bulk && c.bulkShare == 0) || (!bulk && c.bulkShare == 1) {
		return // the lane has no trainees
	}
	var cur []*nats.Msg
	for i := 0; ; i++ {
		if bulkTrainee(i, c.bulkShare) != bulk {
			continue
		}
		fs, pr := prog.Trainee(i)
		lane := make([]*nats.Msg, 0, len(fs))
		for _, f := range fs {
			m, err := simulate.Msg("subsidy.in", f, false)
			if err != nil {
				panic(err) // the simulator's own facts always encode
			}
			lane = append(lane, m)
		}
		keys.add(pr.PersonKey)
		send := lane
		if bulk {
			if len(cur)+len(lane) <= c.batchSize {
				cur = append(cur, lane...)
				continue
			}
			send, cur = cur, lane
			if len(send) == 0 { // one trainee's facts alone fill a batch
				send, cur = lane, nil
			}
		}
		select {
		case <-ctx.Done():
			return
		case out <- send:
		}
	}
}

// queries runs the query load until ctx ends.
func queries(ctx context.Context, base string, rate int, keys *keyRing, st *soakStats) {
	if rate <= 0 {
		return
	}
	client := &http.Client{Timeout: 10 * time.Second}
	t := time.NewTicker(time.Second / time.Duration(rate))
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		url := base + "/v1/quota/2025"
		if i%2 == 0 {
			k := keys.pick(i / 2)
			if k == "" {
				continue
			}
			url = base + "/v1/trainees/" + k
		}
		t0 := time.Now()
		resp, err := client.Get(url)
		ok := err == nil
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			// A trainee published a moment ago may not be projected yet.
			ok = resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNotFound
		}
		if ctx.Err() != nil {
			return
		}
		st.query(time.Since(t0), ok)
	}
}

// scrapeHeap reads the heap in use (go_memstats_heap_inuse_bytes) and the
// heap the last collection found live (go_gc_heap_live_bytes) from
// ledgerd's metrics.
func scrapeHeap(url string) (inuse, live int64, err error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	want := map[string]*int64{"go_memstats_heap_inuse_bytes ": &inuse, "go_gc_heap_live_bytes ": &live}
	for sc.Scan() && len(want) > 0 {
		for name, dst := range want {
			if v, ok := strings.CutPrefix(sc.Text(), name); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					return 0, 0, fmt.Errorf("%s: %w", name, err)
				}
				*dst = int64(f)
				delete(want, name)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	for name := range want {
		return 0, 0, fmt.Errorf("no %s in ledgerd's metrics", strings.TrimSpace(name))
	}
	return inuse, live, nil
}

// processRSS reads a process's resident set size, all of it and its
// anonymous part (without the mapped files: the bbolt store's pages), from
// /proc (Linux).
func processRSS(pid int) (rss, anon int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("reading ledgerd's RSS (Linux /proc only): %w", err)
	}
	found := 0
	for _, line := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "RssAnon") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status: %s: %w", pid, name, err)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			anon = kb << 10
		}
		found++
	}
	if found != 2 {
		return 0, 0, errors.New("no VmRSS or RssAnon in /proc status")
	}
	return rss, anon, nil
}

// rawSingles publishes small messages with Nats-Msg-Id from publishers
// concurrent publishers to a scratch stream for d and returns the rate; the
// stream is deleted afterwards.
func rawSingles(ctx context.Context, js jetstream.JetStream, publishers int, d time.Duration) (float64, error) {
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "SOAK_RAW", Subjects: []string{"soak.raw.>"},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		return 0, err
	}
	defer func() { _ = js.DeleteStream(context.WithoutCancel(ctx), "SOAK_RAW") }()
	rctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return ledgerd.RawSingles(rctx, js, "soak.raw", publishers, 0, 400)
}
