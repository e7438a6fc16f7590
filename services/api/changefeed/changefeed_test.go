package changefeed_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/readmodels"
	"github.com/cqhrss/subsidyledger/services/api/apitest"
	"github.com/cqhrss/subsidyledger/services/api/changefeed"
	"github.com/cqhrss/subsidyledger/services/natsbus"
)

func TestFeedPublishesEveryChange(t *testing.T) {
	srv, err := natsbus.StartServer(natsbus.ServerConfig{Addr: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	var mu sync.Mutex
	got := map[string][]*nats.Msg{}
	sub, err := nc.Subscribe("subsidy.projection.>", func(m *nats.Msg) {
		mu.Lock()
		got[m.Header.Get("Ledger-Projection")] = append(got[m.Header.Get("Ledger-Projection")], m)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	store, err := bolt.Open(filepath.Join(t.TempDir(), "l.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	feed := changefeed.New(changefeed.Config{Conn: nc})
	set, err := projections.NewSet(projections.Config{Store: store, Observer: feed.Observer, Swapped: feed.Swapped, CatchUpBatch: 1 << 30}, readmodels.Factories()...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); set.Run(ctx) }()
	go func() { defer wg.Done(); feed.Run(ctx) }()
	if err := apitest.Generate(ctx, store, 400); err != nil {
		t.Fatal(err)
	}
	head, _ := store.Head(ctx)
	deadline := time.Now().Add(20 * time.Second)
	for {
		done := true
		for _, r := range set.Runners() {
			done = done && r.Position() == head
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("projections did not catch up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A rebuilt read model is announced (Ledger-Resync), after its
	// changes, at the position it is live from.
	quota, _ := set.Runner("quota")
	if err := quota.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	wg.Wait()
	nc.Flush()
	time.Sleep(100 * time.Millisecond)

	// The keys each message names are the event's: the runner decodes
	// payloads into a page it reuses, so a key the feed kept without
	// copying would have changed under it by the time it was published.
	type keys struct {
		person, entitlement, unit string
		year                      int32
	}
	expect := map[uint64]keys{}
	recs, err := store.ReadAll(context.Background(), 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		p, err := codec.Payload(rec.EventData)
		if err != nil {
			t.Fatal(err)
		}
		m := p.ProtoReflect()
		str := func(name string) string {
			if fd := m.Descriptor().Fields().ByName(protoreflect.Name(name)); fd != nil && fd.Kind() == protoreflect.StringKind {
				return m.Get(fd).String()
			}
			return ""
		}
		k := keys{person: str("person_key"), entitlement: str("entitlement_id"), unit: str("unit_code")}
		if s := str("subject"); k.person == "" && str("flag_id") != "" && person.ValidKey(s) {
			k.person = s // a flag about a person
		}
		if fd := m.Descriptor().Fields().ByName("year"); fd != nil && fd.Kind() == protoreflect.Int32Kind {
			k.year = int32(m.Get(fd).Int())
		}
		expect[uint64(rec.Position)] = k
	}

	mu.Lock()
	defer mu.Unlock()
	for _, name := range []string{"trainee", "quota", "scorecard", "fund", "notice", "anomaly"} {
		ms := got[name]
		if len(ms) == 0 {
			t.Errorf("no changes of %s", name)
			continue
		}
		var last uint64
		var lastPos uint64
		resyncs := 0
		for i, m := range ms {
			seq, _ := strconv.ParseUint(m.Header.Get("Ledger-Seq"), 10, 64)
			pos, _ := strconv.ParseUint(m.Header.Get("Ledger-Position"), 10, 64)
			var c changefeed.Change
			if err := json.Unmarshal(m.Data, &c); err != nil || c.Projection != name || uint64(c.Position) != pos {
				t.Fatalf("%s message %d: %s (%v)", name, i, m.Data, err)
			}
			if m.Header.Get("Ledger-Instance") != feed.Instance() || feed.Instance() == "" {
				t.Fatalf("%s message %d: Ledger-Instance %q; want %q", name, i, m.Header.Get("Ledger-Instance"), feed.Instance())
			}
			if c.Resync || m.Header.Get("Ledger-Resync") != "" {
				resyncs++
				if !c.Resync || m.Header.Get("Ledger-Resync") != "true" || name != "quota" || seq != last+1 || pos != uint64(head) || i != len(ms)-1 {
					t.Fatalf("%s message %d (seq %d after %d): resync at %d, header %q; want quota's last, at %d", name, i, seq, last, pos, m.Header.Get("Ledger-Resync"), head)
				}
				continue
			}
			if seq != last+1 || pos <= lastPos {
				t.Fatalf("%s message %d: seq %d after %d, position %d after %d", name, i, seq, last, pos, lastPos)
			}
			last, lastPos = seq, pos
			k := expect[pos]
			if name == "notice" {
				k.person = "" // masked data only: no person key
			}
			if c.PersonKey != k.person || c.EntitlementID != k.entitlement || c.UnitCode != k.unit || c.Year != k.year {
				t.Fatalf("%s message %d at %d: keys %+v, the event's are %+v", name, i, pos, c, k)
			}
			if h := m.Header; h.Get("Content-Type") != "application/json" || h.Get("Ledger-Event-Type") != c.EventType ||
				h.Get(nats.MsgIdHdr) != name+"-"+strconv.FormatUint(pos, 10) {
				t.Fatalf("%s message %d: headers %v", name, i, h)
			}
			if name == "fund" {
				var dr, cr int64
				for _, e := range c.Postings {
					for _, l := range e.Lines {
						dr += l.DebitFen
						cr += l.CreditFen
					}
				}
				if len(c.Postings) == 0 || dr != cr {
					t.Fatalf("fund message %d: postings %+v (debits %d, credits %d)", i, c.Postings, dr, cr)
				}
			}
		}
		if want := map[bool]int{true: 1}[name == "quota"]; resyncs != want {
			t.Errorf("%s: %d resync messages; want %d", name, resyncs, want)
		}
		t.Logf("%s: %d changes", name, len(ms))
	}
	if c := got["trainee"][len(got["trainee"])-1]; !json.Valid(c.Data) || len(c.Data) == 0 {
		t.Error("bad trainee change")
	}
}
