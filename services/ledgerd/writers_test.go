package ledgerd

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/esdb"
	"github.com/cqhrss/subsidyledger/events/esdb/esdbtest"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/internal/natstest"
	"github.com/cqhrss/subsidyledger/services/internal/proctest"
	"github.com/cqhrss/subsidyledger/services/natsbus"
)

// ledgerLog reads a whole store: the records of each message id, and every
// derived decision by event id with its payload bytes.
func ledgerLog(t *testing.T, s events.Store) (msgs map[string]int, derived map[string][]byte) {
	t.Helper()
	msgs, derived = map[string]int{}, map[string][]byte{}
	for after := events.Start; ; {
		page, err := s.ReadAll(context.Background(), after, 1000)
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
			switch p := d.Payload.(type) {
			case *subsidyv1.FactRejected:
				msgs[p.GetMessageId()]++
			default:
				if d.Env.GetSource() == "ledger" {
					derived[rec.ID.String()] = append([]byte(rec.Type+" "), rec.Data...)
				} else {
					msgs[d.Env.GetMessageId()]++
				}
			}
		}
	}
	return msgs, derived
}

// writersRun is what runWriters observed besides the log.
type writersRun struct {
	msgs    map[string]int    // records per message id
	derived map[string][]byte // derived decisions: type and payload by event id
	// Two writers only: the batches each decided before the handover, the
	// successor's batches after it, and the conflicts (guard or expected
	// revision) the successor met.
	before    [2]float64
	after     float64
	conflicts float64
	// redelivered: messages the successor found already recorded (the
	// predecessor appended them but did not acknowledge them).
	redelivered float64
	// changes: the trainee change feed's positions by Ledger-Instance,
	// in the order received, and the instances whose Ledger-Seq ran
	// other than 1, 2, 3...
	changes   map[string][]uint64
	seqBroken []string
}

// handover is how the deciding instance goes away in a two-writer run.
type handover int

const (
	gracefulStop handover = iota // SIGTERM: finish the batch in hand, give up the pin
	crash                        // SIGKILL: the pin expires, unacknowledged messages are redelivered
)

func (h handover) String() string { return [...]string{"SIGTERM", "SIGKILL"}[h] }

// runWriters publishes lanes to a fresh nats-server and a fresh EventStoreDB
// stand-in with one ledgerd, or with two ledgerd processes sharing the
// inbound consumer, and returns the stand-in's log. With two, the one
// deciding is stopped or killed (h) once a third of the messages are
// acknowledged, and the other takes over.
func runWriters(t *testing.T, n int, h handover, lanes [][]*nats.Msg) writersRun {
	t.Helper()
	standIn := esdbtest.NewStandIn()
	if err := standIn.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer standIn.Stop()
	srv := natstest.Start(t, "127.0.0.1")
	// --reference-wait is longer than the pinned TTL (ack wait + 5s), as
	// the defaults are (60s, 35s): a fact waiting for something it refers
	// to must not run out of time during a takeover.
	const referenceWait = 12 * time.Second
	var single *instance
	var writers []*proctest.Ledgerd
	if n == 1 {
		cfg := testConfig(t, t.TempDir(), srv.URL())
		cfg.Store, cfg.ReferenceWait = standIn.URL(), referenceWait
		single = start(t, cfg)
	} else {
		for range n {
			writers = append(writers, proctest.Start(t, "--demo", "--data-dir", t.TempDir(), "--nats-url", srv.URL(),
				"--store", standIn.URL(), "--ack-wait", "2s", "--retry-delay", "50ms", "--reference-wait", referenceWait.String()))
		}
	}
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	var run writersRun
	var changesMu sync.Mutex
	changes, lastSeq := map[string][]uint64{}, map[string]uint64{}
	var seqBroken []string
	sub, err := nc.Subscribe("subsidy.projection.trainee", func(m *nats.Msg) {
		changesMu.Lock()
		defer changesMu.Unlock()
		inst := m.Header.Get("Ledger-Instance")
		pos, _ := strconv.ParseUint(m.Header.Get("Ledger-Position"), 10, 64)
		seq, _ := strconv.ParseUint(m.Header.Get("Ledger-Seq"), 10, 64)
		if seq != lastSeq[inst]+1 && !slices.Contains(seqBroken, inst) {
			seqBroken = append(seqBroken, inst)
		}
		lastSeq[inst] = seq
		changes[inst] = append(changes[inst], pos)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	// One publisher, a fixed order: both runs see the same inbound stream.
	var all []*nats.Msg
	for _, l := range lanes {
		all = append(all, l...)
	}
	// Published while the writers decide, so that the handover falls in
	// the middle of the stream.
	published := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for _, m := range all {
			if _, err := js.PublishMsg(ctx, m); err != nil {
				published <- fmt.Errorf("publish %s: %w", m.Header.Get(natsbus.HeaderMsgID), err)
				return
			}
		}
		published <- nil
	}()
	if n == 2 {
		waitAcked(t, js, uint64(len(all)/3))
		batches := func(l *proctest.Ledgerd) float64 {
			v, _ := metric(t, l.HTTPAddr, "subsidy_ledger_intake_batch_messages_count")
			return v
		}
		run.before = [2]float64{batches(writers[0]), batches(writers[1])}
		active, standby := writers[0], writers[1]
		if run.before[1] > 0 {
			active, standby = standby, active
		}
		switch h {
		case gracefulStop:
			active.Stop()
		case crash:
			active.Kill()
		}
		if err := <-published; err != nil {
			t.Fatal(err)
		}
		waitDrained(t, js)
		run.after = batches(standby)
		run.conflicts, _ = metric(t, standby.HTTPAddr, "subsidy_ledger_append_conflicts_total")
		run.redelivered, _ = metric(t, standby.HTTPAddr, "subsidy_ledger_facts_duplicate_total")
		standby.Stop()
	}
	if single != nil {
		if err := <-published; err != nil {
			t.Fatal(err)
		}
		waitDrained(t, js)
		single.stop(t)
	}
	s, err := esdb.Open(context.Background(), standIn.URL(), esdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rep, err := events.Verify(context.Background(), s, nil)
	if err != nil || rep.Break != nil {
		t.Fatalf("Verify = %v, %v; want an intact log", rep.Break, err)
	}
	run.msgs, run.derived = ledgerLog(t, s)
	_ = nc.Flush()
	_ = sub.Unsubscribe()
	changesMu.Lock()
	defer changesMu.Unlock()
	run.changes, run.seqBroken = maps.Clone(changes), slices.Clone(seqBroken)
	return run
}

// waitAcked waits until the ledger's consumer has acknowledged at least n
// inbound messages.
func waitAcked(t *testing.T, js jetstream.JetStream, n uint64) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		c, err := js.Consumer(ctx, natsbus.InboundStream, natsbus.LedgerConsumer)
		if err == nil {
			if info, err := c.Info(ctx); err == nil && info.AckFloor.Consumer >= n {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the ledger's consumer acknowledged fewer than %d messages in 2 minutes", n)
}

// TestTwoWritersOnEventStoreDBStandIn runs two ledgerd processes sharing the
// inbound consumer against one EventStoreDB — the in-process STAND-IN, not a
// real EventStoreDB — with the facts of the same trainees spread over the
// whole run, and stops (SIGTERM) or kills (SIGKILL) the one deciding a third
// of the way through: one instance decides at a time (the consumer is
// pinned to it), the other takes over (after a kill: answering the
// redelivered messages the dead one had recorded but not acknowledged with
// their records), no message is lost or recorded twice, and every derived
// decision is byte for byte a single writer's. The guard against two
// writers overlapping (a decision made on a state another writer has
// changed since) is raced directly in the ingest package's tests.
func TestTwoWritersOnEventStoreDBStandIn(t *testing.T) {
	lanes, ids, _ := mixedExpect(t, 80)
	single := runWriters(t, 1, gracefulStop, lanes)
	for _, h := range []handover{gracefulStop, crash} {
		t.Run(h.String(), func(t *testing.T) {
			double := runWriters(t, 2, h, lanes)
			for _, id := range ids {
				if single.msgs[id] != 1 || double.msgs[id] != 1 {
					t.Errorf("message %s recorded %d times by one writer, %d by two; want once", id, single.msgs[id], double.msgs[id])
				}
			}
			if n := len(double.msgs); n != len(ids) {
				t.Errorf("two writers recorded %d message ids; want %d", n, len(ids))
			}
			// One decides at a time: before the handover only one
			// instance had decided anything; after it, the other did.
			if (double.before[0] > 0) == (double.before[1] > 0) {
				t.Errorf("batches decided before the handover: %v; want one instance deciding and one standing by", double.before)
			}
			if double.after == 0 {
				t.Error("the standby decided nothing after the active instance went away; want it to take over")
			}
			var differ []string
			for id, b := range single.derived {
				if !bytes.Equal(double.derived[id], b) {
					differ = append(differ, id)
				}
			}
			for id := range double.derived {
				if _, ok := single.derived[id]; !ok {
					differ = append(differ, id)
				}
			}
			sort.Strings(differ)
			if len(differ) > 0 {
				t.Errorf("%d of %d derived decisions differ from a single writer's (first %s); want none", len(differ), len(single.derived), differ[0])
			}
			// The change feed: each instance announces the changes its read
			// models apply, once each, under its own Ledger-Instance and a
			// gap-free Ledger-Seq; the one that stayed announced every
			// change the other did (found by review: with no instance
			// header, a consumer saw each change twice and Ledger-Seq
			// restarting).
			if len(double.changes) != 2 || len(double.seqBroken) > 0 {
				t.Errorf("change feed: %d instances, Ledger-Seq broken for %v; want 2, gap-free", len(double.changes), double.seqBroken)
			}
			var sets []map[uint64]bool
			for inst, ps := range double.changes {
				seen := map[uint64]bool{}
				for _, p := range ps {
					if seen[p] {
						t.Errorf("change feed: instance %s announced position %d twice", inst, p)
					}
					seen[p] = true
				}
				sets = append(sets, seen)
			}
			if len(sets) == 2 {
				small, large := sets[0], sets[1]
				if len(small) > len(large) {
					small, large = large, small
				}
				for p := range small {
					if !large[p] {
						t.Errorf("change feed: position %d announced by one instance only, not the one that stayed", p)
						break
					}
				}
			}
			t.Logf("%d messages recorded once each by one and by two writers; %d derived decisions identical; batches before the handover %v, after %v; conflicts retried %v; already recorded when redelivered %v",
				len(ids), len(single.derived), double.before, double.after, double.conflicts, double.redelivered)
		})
	}
}
