package ledgerd

import (
	"bytes"
	"context"
	"sort"
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
	// revision) both met.
	before    [2]float64
	after     float64
	conflicts float64
}

// runWriters publishes lanes to a fresh nats-server and a fresh EventStoreDB
// stand-in with n (1 or 2) ledgerd instances sharing the inbound consumer,
// and returns the stand-in's log. With two, the one deciding is stopped once
// a third of the messages are acknowledged, and the other takes over.
func runWriters(t *testing.T, n int, lanes [][]*nats.Msg) writersRun {
	t.Helper()
	standIn := esdbtest.NewStandIn()
	if err := standIn.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer standIn.Stop()
	srv := natstest.Start(t, "127.0.0.1")
	var instances []*instance
	for range n {
		cfg := testConfig(t, t.TempDir(), srv.URL())
		cfg.Store = standIn.URL()
		instances = append(instances, start(t, cfg))
	}
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	// One publisher, a fixed order: both runs see the same inbound stream.
	var all []*nats.Msg
	for _, l := range lanes {
		all = append(all, l...)
	}
	var run writersRun
	published := make(chan struct{})
	go func() {
		defer close(published)
		publish(t, js, [][]*nats.Msg{all})
	}()
	if n == 2 {
		waitAcked(t, js, uint64(len(all)/3))
		batches := func(in *instance) float64 {
			v, _ := metric(t, in.addr.HTTPAddr, "subsidy_ledger_intake_batch_messages_count")
			return v
		}
		run.before = [2]float64{batches(instances[0]), batches(instances[1])}
		active, standby := instances[0], instances[1]
		if run.before[1] > 0 {
			active, standby = standby, active
		}
		conflicts := func(in *instance) float64 {
			v, _ := metric(t, in.addr.HTTPAddr, "subsidy_ledger_append_conflicts_total")
			return v
		}
		// A graceful stop: the batch in hand is finished, the rest handed
		// back, the pin given up; the standby takes over.
		run.conflicts = conflicts(active)
		active.stop(t)
		<-published
		waitDrained(t, js)
		run.after = batches(standby)
		run.conflicts += conflicts(standby)
	}
	<-published
	waitDrained(t, js)
	for _, in := range instances {
		in.stop(t)
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

// TestTwoWritersOnEventStoreDBStandIn runs two ledgerd instances sharing the
// inbound consumer against one EventStoreDB — the in-process STAND-IN, not a
// real EventStoreDB — with the facts of the same trainees spread over the
// whole run, and stops the one deciding a third of the way through: one
// instance decides at a time (the consumer is pinned to it), the other
// takes over, no message is lost or recorded twice, and every derived
// decision is byte for byte a single writer's. The guard against two
// writers overlapping (a decision made on a state another writer has
// changed since) is raced directly in the ingest package's tests.
func TestTwoWritersOnEventStoreDBStandIn(t *testing.T) {
	lanes, ids, _ := mixedExpect(t, 80)
	single := runWriters(t, 1, lanes)
	double := runWriters(t, 2, lanes)
	for _, id := range ids {
		if single.msgs[id] != 1 || double.msgs[id] != 1 {
			t.Errorf("message %s recorded %d times by one writer, %d by two; want once", id, single.msgs[id], double.msgs[id])
		}
	}
	if n := len(double.msgs); n != len(ids) {
		t.Errorf("two writers recorded %d message ids; want %d", n, len(ids))
	}
	// One decides at a time: before the handover only one instance had
	// decided anything; after it, the other did.
	if (double.before[0] > 0) == (double.before[1] > 0) {
		t.Errorf("batches decided before the handover: %v; want one instance deciding and one standing by", double.before)
	}
	if double.after == 0 {
		t.Error("the standby decided nothing after the active instance stopped; want it to take over")
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
	t.Logf("%d messages recorded once each by one and by two writers; %d derived decisions identical; batches before the handover %v, after %v; conflicts retried %v",
		len(ids), len(single.derived), double.before, double.after, double.conflicts)
}
