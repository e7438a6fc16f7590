package ledgerd

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/services/internal/natstest"
	"github.com/cqhrss/subsidyledger/services/internal/proctest"
	"github.com/cqhrss/subsidyledger/services/natsbus"
	"github.com/cqhrss/subsidyledger/services/simulate"
)

// publisher publishes facts as an internal service would, retrying a
// publish that fails (a node died) with the same Nats-Msg-Id until
// JetStream acknowledges it.
type publisher struct {
	js    jetstream.JetStream
	acked atomic.Int64
	ids   sync.Map // msg id -> true once acknowledged
}

func (p *publisher) publish(ctx context.Context, m *nats.Msg) error {
	for attempt := 0; ; attempt++ {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := p.js.PublishMsg(c, m, jetstream.WithRetryAttempts(0))
		cancel()
		if err == nil {
			p.acked.Add(1)
			p.ids.Store(m.Header.Get(natsbus.HeaderMsgID), true)
			return nil
		}
		if ctx.Err() != nil || attempt > 200 {
			return fmt.Errorf("publish %s: %w", m.Header.Get(natsbus.HeaderMsgID), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// publishLanes publishes lanes with workers concurrent publishers (each
// lane in order by one of them, pausing between messages) and returns a
// function that waits for them and reports the first error.
func (p *publisher) publishLanes(ctx context.Context, lanes [][]*nats.Msg, workers int, pause time.Duration) (wait func() error) {
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	next := make(chan []*nats.Msg)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lane := range next {
				for _, m := range lane {
					if err := p.publish(ctx, m); err != nil {
						errc <- err
						return
					}
					time.Sleep(pause)
				}
			}
		}()
	}
	go func() {
		defer close(next)
		for _, l := range lanes {
			select {
			case next <- l:
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() error {
		wg.Wait()
		select {
		case err := <-errc:
			return err
		default:
			return nil
		}
	}
}

// lostAndDoubled counts the acknowledged messages recs never recorded and
// those it recorded more than once.
func (p *publisher) lostAndDoubled(recs map[string]int) (missing, dup int) {
	p.ids.Range(func(k, _ any) bool {
		switch n := recs[k.(string)]; {
		case n == 0:
			missing++
		case n > 1:
			dup++
		}
		return true
	})
	return missing, dup
}

func programme(t *testing.T, trainees int) (ref []*nats.Msg, lanes [][]*nats.Msg) {
	t.Helper()
	k, _ := person.NewKeyer([]byte("fault test key, not a real one, 32+ bytes"))
	p, err := simulate.New(simulate.Config{Seed: 21, Year: 2025, Trainees: trainees, Keyer: k})
	if err != nil {
		t.Fatal(err)
	}
	enc := func(fs []simulate.Fact) []*nats.Msg {
		var out []*nats.Msg
		for _, f := range fs {
			m, err := simulate.Msg("subsidy.in", f, false)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		return out
	}
	ref = enc(p.Reference())
	for i := range trainees {
		fs, _ := p.Trainee(i)
		lanes = append(lanes, enc(fs))
	}
	return ref, lanes
}

// TestClusterFaults runs three nats-server processes on 127.0.0.1, .2 and
// .3 as a JetStream cluster with R3 streams and ledgerd as a separate
// process on the embedded store, publishes a few thousand facts, and kills
// -9 one NATS node, ledgerd, and (once the first is back) another node, all
// mid-stream. Afterwards every published fact is exactly one event or one
// recorded rejection, and the outbound feed has no gap or repeat.
func TestClusterFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: skipped with -short")
	}
	nodes := natstest.StartCluster(t, "127.0.0.1", "127.0.0.2", "127.0.0.3")
	url := natstest.URLs(nodes)
	dir := t.TempDir()
	args := []string{"--demo", "--data-dir", dir, "--nats-url", url, "--replicas", "3", "--ack-wait", "3s",
		"--retry-delay", "50ms", "--reference-wait", "20s", "--log-level", "warn"}
	// The cluster elects its JetStream leaders; ledgerd retries its setup.
	led := proctest.Start(t, args...)
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	pub := &publisher{js: js}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ref, lanes := programme(t, 300)
	for _, m := range ref {
		if err := pub.publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	total := len(ref)
	for _, l := range lanes {
		total += len(l)
	}
	wait := pub.publishLanes(ctx, lanes, 8, 25*time.Millisecond) // spread the faults over the stream
	at := func(frac float64) {
		for pub.acked.Load() < int64(float64(total)*frac) && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
	at(0.2)
	nodes[1].Kill()
	t.Logf("killed nats node 2 at %d acknowledged publishes", pub.acked.Load())
	at(0.35)
	led.Kill()
	t.Logf("killed ledgerd at %d", pub.acked.Load())
	led.Restart()
	at(0.5)
	nodes[1].Restart()
	t.Logf("restarted nats node 2 at %d", pub.acked.Load())
	time.Sleep(2 * time.Second) // let it catch up before the next fault
	at(0.65)
	nodes[2].Kill()
	t.Logf("killed nats node 3 at %d", pub.acked.Load())
	at(0.8)
	nodes[2].Restart()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, js)
	if !waitFeedCaughtUp(t, led.HTTPAddr, time.Minute) {
		b, _ := os.ReadFile(led.Log)
		t.Fatalf("the feed did not catch up with the intake; ledgerd's log:\n%s", b[max(0, len(b)-4000):])
	}
	led.Stop()
	recs := recordCounts(t, filepath.Join(dir, "ledger.db"))
	missing, dup := pub.lostAndDoubled(recs)
	if missing > 0 || dup > 0 || int(pub.acked.Load()) < total {
		t.Fatalf("%d published, %d acknowledged: %d never recorded, %d recorded twice", total, pub.acked.Load(), missing, dup)
	}
	head := storeHead(t, filepath.Join(dir, "ledger.db"))
	checkFeed(t, js, head)
	t.Logf("%d facts, each recorded once; feed gapless up to %d", total, head)
}

// metric reads one gauge from ledgerd's /metrics.
func metric(t *testing.T, httpAddr, name string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// lintMetrics checks ledgerd's whole /metrics with promlint (the Go and
// process collectors included) and that it reports the live heap.
func lintMetrics(t *testing.T, httpAddr string) {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	problems, err := promlint.New(resp.Body).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if v, ok := metric(t, httpAddr, "go_gc_heap_live_bytes"); !ok || v <= 0 {
		t.Errorf("go_gc_heap_live_bytes = %v (reported %v); want the live heap", v, ok)
	}
}

// waitFeedCaughtUp waits until the outbound feed has published everything
// the intake recorded.
func waitFeedCaughtUp(t *testing.T, httpAddr string, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		in, ok1 := metric(t, httpAddr, "subsidy_ledger_intake_position")
		fd, ok2 := metric(t, httpAddr, "subsidy_ledger_feed_position")
		if ok1 && ok2 && in > 0 && fd == in {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}
