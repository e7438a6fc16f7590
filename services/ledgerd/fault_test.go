package ledgerd_test

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

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/person"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
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

// storeRecords counts, per message id, the accepted fact events and the
// rejections in a store file, and verifies its hash links.
func storeRecords(t *testing.T, path string) map[string]int {
	t.Helper()
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	n := map[string]int{}
	for after := events.Start; ; {
		page, err := s.ReadAll(ctx, after, 2000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, rec := range page {
			after = rec.Position
			d, err := codec.Decode(rec)
			if err != nil {
				t.Fatal(err)
			}
			if r, ok := d.Payload.(*subsidyv1.FactRejected); ok {
				n[r.GetMessageId()]++
			} else if d.Env.GetSource() != "ledger" {
				n[d.Env.GetMessageId()]++
			}
		}
	}
	rep, err := events.Verify(ctx, s, nil)
	if err != nil || rep.Break != nil {
		t.Fatalf("Verify = %v, %v; want an intact log", rep.Break, err)
	}
	return n
}

func waitConsumed(t *testing.T, js jetstream.JetStream, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if c, err := js.Consumer(ctx, natsbus.InboundStream, natsbus.LedgerConsumer); err == nil {
			if info, err := c.Info(ctx); err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the ledger's consumer still has messages after %v", d)
}

// checkFeedGapless reads the whole feed: positions 1, 2, ... each once.
func checkFeedGapless(t *testing.T, js jetstream.JetStream, want int) {
	t.Helper()
	ctx := context.Background()
	cons, err := js.OrderedConsumer(ctx, natsbus.FeedStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	next := uint64(1)
	for {
		mb, err := cons.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range mb.Messages() {
			n++
			p, err := strconv.ParseUint(m.Headers().Get(natsbus.HeaderPosition), 10, 64)
			if err != nil || p != next {
				t.Fatalf("feed message %d has position %q; want %d (no gap, no repeat)", next, m.Headers().Get(natsbus.HeaderPosition), next)
			}
			next++
		}
		if n == 0 {
			break
		}
	}
	if int(next-1) != want {
		t.Fatalf("feed ends at position %d; the store's head is %d", next-1, want)
	}
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
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	next := make(chan []*nats.Msg)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lane := range next {
				for _, m := range lane {
					if err := pub.publish(ctx, m); err != nil {
						errc <- err
						return
					}
					time.Sleep(25 * time.Millisecond) // spread the faults over the stream
				}
			}
		}()
	}
	go func() {
		for _, l := range lanes {
			next <- l
		}
		close(next)
	}()
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
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	waitConsumed(t, js, 2*time.Minute)
	if !waitFeedCaughtUp(t, led.HTTPAddr, time.Minute) {
		b, _ := os.ReadFile(led.Log)
		t.Fatalf("the feed did not catch up with the intake; ledgerd's log:\n%s", b[max(0, len(b)-4000):])
	}
	led.Stop()
	recs := storeRecords(t, filepath.Join(dir, "ledger.db"))
	missing, dup := 0, 0
	pub.ids.Range(func(k, _ any) bool {
		switch n := recs[k.(string)]; {
		case n == 0:
			missing++
		case n > 1:
			dup++
		}
		return true
	})
	if missing > 0 || dup > 0 || int(pub.acked.Load()) < total {
		t.Fatalf("%d published, %d acknowledged: %d never recorded, %d recorded twice", total, pub.acked.Load(), missing, dup)
	}
	head := storeHeadOf(t, filepath.Join(dir, "ledger.db"))
	checkFeedGapless(t, js, int(head))
	t.Logf("%d facts, each recorded once; feed gapless up to %d", total, head)
}

func storeHeadOf(t *testing.T, path string) events.Position {
	t.Helper()
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := s.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
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
