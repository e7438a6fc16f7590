package ledgerd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/events/redecide"
	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/feed"
	"github.com/cqhrss/subsidyledger/services/internal/logbuf"
	"github.com/cqhrss/subsidyledger/services/internal/natstest"
	"github.com/cqhrss/subsidyledger/services/natsbus"
	"github.com/cqhrss/subsidyledger/services/simulate"
)

// instance is a ledgerd started in-process by a test.
type instance struct {
	cancel context.CancelFunc
	done   chan error
	addr   Started
}

func testConfig(t *testing.T, dataDir, natsURL string) Config {
	t.Helper()
	cfg, err := ParseConfig([]string{"--demo", "--data-dir", dataDir, "--nats-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--ack-wait", "2s", "--nats-url", natsURL, "--retry-delay", "50ms", "--reference-wait", "4s"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func start(t *testing.T, cfg Config) *instance {
	t.Helper()
	w := io.Discard
	if os.Getenv("LEDGER_TEST_LOG") != "" {
		w = os.Stderr
	}
	return startLogged(t, cfg, w)
}

// startLogged starts ledgerd logging at debug level to w.
func startLogged(t *testing.T, cfg Config, w io.Writer) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{cancel: cancel, done: make(chan error, 1)}
	up := make(chan Started, 1)
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() { in.done <- run(ctx, cfg, log, func(s Started) { up <- s }) }()
	select {
	case in.addr = <-up:
	case err := <-in.done:
		t.Fatalf("ledgerd did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("ledgerd did not start in 30s")
	}
	t.Cleanup(func() { in.stop(t) })
	return in
}

func (in *instance) stop(t *testing.T) {
	t.Helper()
	if in.cancel == nil {
		return
	}
	in.cancel()
	in.cancel = nil
	select {
	case err := <-in.done:
		if err != nil {
			t.Errorf("ledgerd stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("ledgerd did not stop in 30s")
	}
}

// testPersonSecret is the person-key secret of the tests' publishers.
const testPersonSecret = "test key: 32 bytes or more, not a real one"

func keyer(t *testing.T) *person.Keyer {
	t.Helper()
	k, err := person.NewKeyer([]byte(testPersonSecret))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// mixedExpect builds the messages of a small programme plus one message of
// every invalid class, and returns them with their message ids and the ids
// the ledger must reject: the invalid messages and the enrolments of
// trainees without the education or employment to train (rule 2).
func mixedExpect(t *testing.T, trainees int) (lanes [][]*nats.Msg, ids []string, rejected map[string]bool) {
	t.Helper()
	p, err := simulate.New(simulate.Config{Seed: 7, Year: 2025, Trainees: trainees, Keyer: keyer(t), Officials: true})
	if err != nil {
		t.Fatal(err)
	}
	enc := func(fs []simulate.Fact) []*nats.Msg {
		var out []*nats.Msg
		for i, f := range fs {
			m, err := simulate.Msg("subsidy.in", f, i%5 == 0) // some as JSON
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
			ids = append(ids, f.MsgID)
		}
		return out
	}
	lanes = append(lanes, enc(p.Reference()))
	rejected = map[string]bool{}
	for i := range trainees {
		fs, pr := p.Trainee(i)
		lanes = append(lanes, enc(fs))
		if pr.Category == "untrainable" {
			for _, f := range fs {
				if _, ok := f.Msg.(*subsidyv1.Enrolled); ok {
					rejected[f.MsgID] = true
				}
			}
		}
	}
	bad := func(subject, id, ct string, data []byte) *nats.Msg {
		m := nats.NewMsg(subject)
		m.Data = data
		m.Header.Set(natsbus.HeaderMsgID, id)
		if ct != "" {
			m.Header.Set(natsbus.HeaderContentType, ct)
		}
		ids = append(ids, id)
		rejected[id] = true
		return m
	}
	lanes = append(lanes, []*nats.Msg{
		bad("subsidy.in.enrolment.enrolled", "bad-garbage", "", []byte{0xff, 0xff, 0x01}),
		bad("subsidy.in.nobody.nothing", "bad-subject", "", []byte{}),
		bad("subsidy.in.enrolment.enrolled", "bad-json", natsbus.ContentJSON, []byte(`{"enrolmentId": 12`)),
		bad("subsidy.in.enrolment.enrolled", "bad-ct", "text/csv", []byte("a,b")),
		bad("subsidy.in.enrolment.enrolled", "bad-missing", natsbus.ContentJSON, []byte(`{}`)),
		bad("subsidy.in.evaluation.assessment_recorded", "bad-unknown-trainee", natsbus.ContentJSON,
			[]byte(`{"assessmentId":"x","personKey":"`+fmt.Sprintf("%064x", 1)+`","evaluationInstitutionId":"E001","qualification":{"occupation":"OCCUPATION_BIG_DATA","level":"LEVEL_JUNIOR"},"attempt":1,"theoryScore":70,"practicalScore":70,"assessedOn":{"year":2025,"month":5,"day":5}}`)),
	})
	return lanes, ids, rejected
}

// records reads the store and returns, per message id, how many accepted
// fact events and rejections record it.
func records(t *testing.T, path string) (facts, rejections map[string]int, derived int) {
	t.Helper()
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	facts, rejections = map[string]int{}, map[string]int{}
	reasons := map[string]int{}
	defer func() { t.Logf("rejections by reason: %v", reasons) }()
	ctx := context.Background()
	after := events.Start
	for {
		page, err := s.ReadAll(ctx, after, 1000)
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
			switch {
			case d.Env.GetSource() == "ledger":
				if r, ok := d.Payload.(*subsidyv1.FactRejected); ok {
					rejections[r.GetMessageId()]++
					reasons[r.GetReason().String()]++
					if reasons[r.GetReason().String()] <= 2 {
						t.Logf("rejected %s: %s: %s", r.GetSubject(), r.GetReason(), r.GetDetail())
					}
				} else {
					derived++
				}
			default:
				facts[d.Env.GetMessageId()]++
			}
		}
	}
	rep, err := events.Verify(ctx, s, nil)
	if err != nil || rep.Break != nil {
		t.Fatalf("Verify = %+v, %v; want an intact log", rep.Break, err)
	}
	checkRedecided(t, s)
	return facts, rejections, derived
}

// checkRedecided decides every fact of the log again, as an auditor would
// (ledgerctl redecide), and fails on any decision that does not reproduce.
func checkRedecided(t *testing.T, s events.Store) {
	t.Helper()
	sum, err := redecide.Run(context.Background(), s, redecide.Options{RuleSet: rules.DefaultRuleSet(), Report: func(m redecide.Mismatch) {
		t.Errorf("redecide: %s", m)
	}})
	if err != nil {
		t.Fatalf("redecide: %v", err)
	}
	if !sum.OK() || sum.Facts == 0 || sum.Matched != sum.Facts || sum.RejectionsMatched != sum.RejectionsDecided ||
		sum.RejectionsDecided+sum.RejectionsUndecided+sum.RejectionsAltered != sum.Rejections {
		t.Fatalf("redecide: %+v; want every fact's decision reproduced, and every rejection's the rules made", sum)
	}
	t.Logf("redecide: %d facts decided again, each as recorded (%d derived events); %d of %d rejections decided again, each as recorded (%d the rules did not make, %d with a masked payload)",
		sum.Facts, sum.Derived, sum.RejectionsDecided, sum.Rejections, sum.RejectionsUndecided, sum.RejectionsAltered)
}

func publish(t *testing.T, js jetstream.JetStream, lanes [][]*nats.Msg) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(lanes))
	sem := make(chan struct{}, 8)
	for _, lane := range lanes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			for _, m := range lane {
				if _, err := js.PublishMsg(ctx, m); err != nil {
					errs <- fmt.Errorf("publish %s: %w", m.Header.Get(natsbus.HeaderMsgID), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// waitDrained waits until the ledger's consumer has nothing pending: every
// inbound message delivered and acknowledged.
func waitDrained(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		c, err := js.Consumer(ctx, natsbus.InboundStream, natsbus.LedgerConsumer)
		if err == nil {
			if info, err := c.Info(ctx); err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the ledger's consumer still has messages after 2 minutes")
}

// recordCounts is records' accepted facts and rejections together, per
// message id.
func recordCounts(t *testing.T, path string) map[string]int {
	t.Helper()
	facts, rejections, _ := records(t, path)
	for id, n := range rejections {
		facts[id] += n
	}
	return facts
}

func checkExactlyOnce(t *testing.T, storePath string, ids []string, wantRejected map[string]bool) {
	t.Helper()
	facts, rejections, derived := records(t, storePath)
	for _, id := range ids {
		if got := rejections[id] > 0; got != wantRejected[id] {
			t.Errorf("message %s rejected = %v; want %v", id, got, wantRejected[id])
		}
	}
	for _, id := range ids {
		if n := facts[id] + rejections[id]; n != 1 {
			t.Errorf("message %s recorded %d times (%d accepted, %d rejected); want exactly once", id, n, facts[id], rejections[id])
		}
	}
	if len(facts)+len(rejections) != len(ids) {
		t.Errorf("store records %d messages; %d were published", len(facts)+len(rejections), len(ids))
	}
	if derived == 0 {
		t.Error("no derived decisions were recorded")
	}
	t.Logf("%d messages: %d accepted, %d rejected; %d derived events", len(ids), len(facts), len(rejections), derived)
}

// TestEmbeddedMixedBatchWithRestart publishes a mixed batch of valid and
// invalid facts to ledgerd's embedded NATS server, restarts ledgerd while it
// still has a backlog, and checks every message ended as exactly one
// accepted event or one recorded rejection.
func TestEmbeddedMixedBatchWithRestart(t *testing.T) {
	dir := t.TempDir()
	if d := os.Getenv("LEDGER_TEST_DIR"); d != "" {
		dir = d
	}
	cfg := testConfig(t, dir, "")
	cfg.NATSListen = fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t, "127.0.0.1"))
	cfg.IntakeSnapshotEvery = 300 // snapshots while running and at each stop
	lanes, ids, rejected := mixedExpect(t, 150)
	half := len(lanes) / 2

	a := start(t, cfg)
	nc, err := nats.Connect(a.addr.NATSURL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	publish(t, js, lanes[:1]) // reference data first, as the bureau would
	publish(t, js, lanes[1:half])
	a.stop(t) // mid-stream: the intake still has a backlog
	b := start(t, cfg)
	publish(t, js, lanes[half:])
	waitDrained(t, js)
	resp, err := http.Get("http://" + b.addr.HTTPAddr + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz = %v, %v; want 200", resp, err)
	}
	checkOutcomes(t, js, ids)
	checkAudit(t, b.addr.HTTPAddr, 7)
	lintMetrics(t, b.addr.HTTPAddr)
	head := waitFeed(t, js, b.addr.HTTPAddr)
	b.stop(t)
	checkExactlyOnce(t, filepath.Join(dir, "ledger.db"), ids, rejected)
	if sh := storeHead(t, filepath.Join(dir, "ledger.db")); sh != head {
		t.Fatalf("feed reached position %d; the store's head is %d", head, sh)
	}
	// After a restart the feed resumes without gaps or duplicates, and the
	// intake restores the snapshot the stop wrote instead of folding the log.
	var logs logbuf.Buffer
	c := startLogged(t, cfg, &logs)
	checkFeed(t, js, head)
	c.stop(t)
	if said := string(logs.Bytes()); !strings.Contains(said, "intake state restored from its snapshot") || !strings.Contains(said, fmt.Sprintf("position=%d", head)) {
		t.Errorf("the last start did not restore the intake's snapshot at %d; log:\n%s", head, said)
	}
}

// TestExternalServerProcessWithRestart does the same against a separate
// nats-server process, restarting ledgerd while publishers keep publishing.
func TestExternalServerProcessWithRestart(t *testing.T) {
	srv := natstest.Start(t, "127.0.0.1")
	dir := t.TempDir()
	cfg := testConfig(t, dir, srv.URL())
	lanes, ids, rejected := mixedExpect(t, 150)

	a := start(t, cfg)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	var wg sync.WaitGroup
	wg.Add(1)
	publish(t, js, lanes[:1]) // reference data first, as the bureau would
	go func() { defer wg.Done(); publish(t, js, lanes[1:]) }()
	time.Sleep(300 * time.Millisecond)
	a.stop(t) // mid-stream
	start(t, cfg)
	wg.Wait()
	waitDrained(t, js)
	// Redelivered and re-published messages: the same Nats-Msg-Id again.
	publish(t, js, lanes[:3])
	waitDrained(t, js)
	time.Sleep(200 * time.Millisecond)
	checkExactlyOnceAfterStop(t, dir, ids, rejected)
}

func checkExactlyOnceAfterStop(t *testing.T, dir string, ids []string, rejected map[string]bool) {
	t.Helper()
	// The store is still open by the running ledgerd; stop it via cleanup
	// order is not guaranteed, so open a read copy of the file.
	src := filepath.Join(dir, "ledger.db")
	cp := filepath.Join(t.TempDir(), "copy.db")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, cp, ids, rejected)
}

// checkOutcomes reads the outcome stream: every message id has one.
func checkOutcomes(t *testing.T, js jetstream.JetStream, ids []string) {
	t.Helper()
	ctx := context.Background()
	cons, err := js.OrderedConsumer(ctx, natsbus.OutcomeStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(seen) < len(want) && time.Now().Before(deadline) {
		mb, err := cons.Fetch(1000, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		for m := range mb.Messages() {
			o := &subsidyv1.IntakeOutcome{}
			if err := proto.Unmarshal(m.Data(), o); err != nil {
				t.Fatalf("outcome: %v", err)
			}
			if want[o.GetMessageId()] {
				seen[o.GetMessageId()] = true
			}
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("outcomes for %d of %d messages", len(seen), len(want))
	}
}

// waitFeed waits until the feed has published up to the store's head (read
// from the metrics) and returns that head.
func storeHead(t *testing.T, path string) events.Position {
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

func waitFeed(t *testing.T, js jetstream.JetStream, httpAddr string) events.Position {
	t.Helper()
	var last events.Position
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		p, err := feed.LastPublished(context.Background(), js)
		if err != nil {
			t.Fatal(err)
		}
		if p == last && p > 0 {
			return p
		}
		last = p
	}
	t.Fatal("feed did not settle")
	return 0
}

// checkFeed reads the whole feed stream: positions 1..head, each once, in order.
func checkFeed(t *testing.T, js jetstream.JetStream, head events.Position) {
	t.Helper()
	time.Sleep(300 * time.Millisecond) // let a restarted feed publish anything it would wrongly repeat
	// On a cluster that has just failed over, creating a consumer can take
	// a while: retry.
	var cons jetstream.Consumer
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cons, err = js.OrderedConsumer(ctx, natsbus.FeedStream, jetstream.OrderedConsumerConfig{})
		cancel()
		if err == nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("reading the feed: %v", err)
	}
	next := uint64(1)
	for empty := 0; empty < 2; {
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
			empty++
		} else {
			empty = 0
		}
	}
	if events.Position(next-1) != head {
		t.Fatalf("feed ends at position %d; want %d", next-1, head)
	}
}
