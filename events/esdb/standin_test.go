package esdb_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/esdb"
	"github.com/cqhrss/subsidyledger/events/esdb/esdbtest"
)

// Everything in this file runs against the in-process STAND-IN for
// EventStoreDB (package esdbtest), not against EventStoreDB.

// fastFail makes the client give up discovering an unreachable server
// after two quick attempts instead of ten.
const fastFail = "&maxDiscoverAttempts=2&discoveryInterval=20"

func ev(typ, data string) events.EventData {
	return events.EventData{ID: events.RandomID(), Type: typ, Metadata: []byte(`{"by":"esdb test"}`), Data: []byte(data)}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustAppend(t *testing.T, st events.Store, stream string, exp events.ExpectedRevision, evs ...events.EventData) events.AppendResult {
	t.Helper()
	res, err := st.Append(testContext(t), stream, exp, evs...)
	if err != nil {
		t.Fatalf("Append(%q, %v, %d events) = %v; want success", stream, exp, len(evs), err)
	}
	return res
}

func wantCode(t *testing.T, call string, err error, code events.Code) *events.Error {
	t.Helper()
	var e *events.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("%s = %v; want an *events.Error with code %s", call, err, code)
	}
	return e
}

func next(t *testing.T, sub events.Subscription) events.RecordedEvent {
	t.Helper()
	e, err := sub.Next(testContext(t))
	if err != nil {
		t.Fatalf("Next = %v; want an event", err)
	}
	return e
}

// nothingMore checks that sub has no event for a moment.
func nothingMore(t *testing.T, sub events.Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if e, err := sub.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next = %+v, %v; want nothing more (%v)", e, err, context.DeadlineExceeded)
	}
}

// testLogger logs to t, for what the backend says while it reconnects.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func TestStandInReconnect(t *testing.T) {
	si := startStandIn(t)
	addr := si.Addr()
	st := open(t, si.URL()+fastFail, esdb.Options{Logger: testLogger(t)})
	defer st.Close()

	first := ev("esdbtest.Reconnect", "first")
	mustAppend(t, st, "reconnect", events.NoStream, first)
	sub, err := st.Subscribe(testContext(t), events.Start, events.Filter{})
	if err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	defer sub.Close()
	if got := next(t, sub); got.ID != first.ID {
		t.Fatalf("Next = %s; want the first event %s", got.ID, first.ID)
	}

	si.Stop()
	_, err = st.Append(testContext(t), "reconnect", events.Exact(0), ev("esdbtest.Reconnect", "while down"))
	wantCode(t, "Append while the server is down", err, events.CodeUnavailable)
	_, err = st.ReadAll(testContext(t), events.Start, 0)
	wantCode(t, "ReadAll while the server is down", err, events.CodeUnavailable)

	if err := si.Listen(addr); err != nil {
		t.Fatalf("stand-in Listen(%s) again = %v", addr, err)
	}
	second := ev("esdbtest.Reconnect", "second")
	var res events.AppendResult
	for deadline := time.Now().Add(20 * time.Second); ; {
		res, err = st.Append(testContext(t), "reconnect", events.Exact(0), second)
		if err == nil {
			break
		}
		if !errors.Is(err, events.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("Append after the server came back = %v; want success", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The subscription resumed after the last event it delivered.
	if got := next(t, sub); got.ID != second.ID || got.Position != res.Position || got.Revision != 1 {
		t.Fatalf("Next after the server came back = %s@%d pos %d; want %s@1 pos %d", got.ID, got.Revision, got.Position, second.ID, res.Position)
	}
	nothingMore(t, sub)
}

func TestStandInSubscriptionDropped(t *testing.T) {
	si := startStandIn(t)
	st := open(t, si.URL(), esdb.Options{})
	defer st.Close()
	sub, err := st.Subscribe(testContext(t), events.Start, events.Filter{Types: []string{"esdbtest.Wanted"}})
	if err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	defer sub.Close()
	var want []events.EventData
	for i := range 3 {
		e := ev("esdbtest.Wanted", "before "+string(rune('a'+i)))
		mustAppend(t, st, "dropped", events.Any, e, ev("esdbtest.Unwanted", "noise"))
		want = append(want, e)
	}
	for _, w := range want {
		if got := next(t, sub); got.ID != w.ID {
			t.Fatalf("Next = %s %q; want %s %q", got.ID, got.Data, w.ID, w.Data)
		}
	}
	for round := range 3 {
		si.DropSubscriptions()
		e := ev("esdbtest.Wanted", "after drop "+string(rune('a'+round)))
		mustAppend(t, st, "dropped", events.Any, ev("esdbtest.Unwanted", "noise"), e)
		if got := next(t, sub); got.ID != e.ID {
			t.Fatalf("Next after drop %d = %s %q; want %s %q", round, got.ID, got.Data, e.ID, e.Data)
		}
	}
	nothingMore(t, sub)
}

func TestStandInSubscriptionGivesUp(t *testing.T) {
	si := startStandIn(t)
	st := open(t, si.URL()+fastFail, esdb.Options{ResubscribeFor: 300 * time.Millisecond})
	defer st.Close()
	mustAppend(t, st, "gives-up", events.NoStream, ev("esdbtest.GivesUp", "x"))
	sub, err := st.Subscribe(testContext(t), events.Start, events.Filter{})
	if err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	defer sub.Close()
	next(t, sub)
	si.Stop()
	_, err = sub.Next(testContext(t))
	wantCode(t, "Next with the server gone for longer than ResubscribeFor", err, events.CodeUnavailable)
	_, err = sub.Next(testContext(t))
	wantCode(t, "Next again", err, events.CodeUnavailable)
}

// TestStandInTwoStores has two stores (two ledger processes) share one
// database: each recognises the other's appends as stored.
func TestStandInTwoStores(t *testing.T) {
	si := startStandIn(t)
	a := open(t, si.URL(), esdb.Options{})
	defer a.Close()
	b := open(t, si.URL(), esdb.Options{})
	defer b.Close()

	batch := []events.EventData{ev("esdbtest.Two", "1"), ev("esdbtest.Two", "2")}
	res := mustAppend(t, a, "shared", events.NoStream, batch...)
	mustAppend(t, b, "shared", events.Exact(1), ev("esdbtest.Two", "3"))
	// A retry of a's append through b, after the stream moved on.
	if got := mustAppend(t, b, "shared", events.Any, batch...); got != res {
		t.Errorf("retry through the other store = %+v; want the original %+v", got, res)
	}
	_, err := b.Append(testContext(t), "elsewhere", events.Any, batch[0])
	wantCode(t, "Append(an ID the other store stored, another stream)", err, events.CodeDuplicateID)
	changed := batch[1]
	changed.Data = []byte("changed")
	_, err = a.Append(testContext(t), "shared", events.Any, changed)
	wantCode(t, "Append(a stored ID, another body)", err, events.CodeDuplicateID)
	for _, st := range []events.Store{a, b} {
		rep, err := events.Verify(testContext(t), st, nil)
		if err != nil || rep.Break != nil || rep.Events != 3 {
			t.Errorf("Verify = %+v, %v; want 3 events and no break", rep, err)
		}
	}
}

func TestStandInOpenErrors(t *testing.T) {
	ctx := testContext(t)
	_, err := esdb.Open(ctx, "esdb://admin:s3cret@localhost:notaport?tls=false", esdb.Options{})
	e := wantCode(t, "Open(malformed connection string)", err, events.CodeInvalidArgument)
	if strings.Contains(e.Error(), "s3cret") {
		t.Errorf("Open(malformed connection string) = %v; the message shows the password", e)
	}
	_, err = esdb.Open(ctx, "http://localhost:2113", esdb.Options{})
	wantCode(t, "Open(http://...)", err, events.CodeInvalidArgument)

	si := startStandIn(t)
	_, err = esdb.Open(ctx, si.URL(), esdb.Options{Prefix: "$ledger-"})
	wantCode(t, "Open(prefix starting with $)", err, events.CodeInvalidArgument)

	first := open(t, si.URL(), esdb.Options{})
	mustAppend(t, first, "since", events.NoStream, ev("esdbtest.Since", "x"))
	first.Close()
	_, err = esdb.Open(ctx, si.URL(), esdb.Options{Since: 2})
	wantCode(t, "Open(Since inside a record)", err, events.CodeInvalidArgument)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := lis.Addr().String()
	lis.Close()
	_, err = esdb.Open(ctx, "esdb://"+closed+"?tls=false"+fastFail, esdb.Options{})
	e = wantCode(t, "Open(nothing listening)", err, events.CodeUnavailable)
	if !strings.Contains(e.Error(), closed) {
		t.Errorf("Open(nothing listening) = %v; want the address %s named", e, closed)
	}

	for _, c := range []struct {
		version string
		ok      bool
	}{{"21.10.9", false}, {"22.6.0", false}, {"22.10.0", true}, {"25.1.0", true}} {
		old := esdbtest.NewStandIn()
		old.Version = c.version
		if err := old.Listen("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		st, err := esdb.Open(ctx, old.URL(), esdb.Options{})
		if c.ok {
			if err != nil {
				t.Errorf("Open(server %s) = %v; want success", c.version, err)
			} else {
				st.Close()
			}
		} else if !errors.Is(err, events.ErrInvalidArgument) {
			t.Errorf("Open(server %s) = %v; want %v", c.version, err, events.ErrInvalidArgument)
		}
		old.Stop()
	}
}

// rawClient returns a client of the esdb library itself, to put into the
// database what the backend never writes.
func rawClient(t *testing.T, url string) *esdbclient.Client {
	t.Helper()
	cfg, err := esdbclient.ParseConnectionString(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdbclient.NoopLogging()
	c, err := esdbclient.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func rawAppend(t *testing.T, c *esdbclient.Client, stream, typ string) {
	t.Helper()
	_, err := c.AppendToStream(testContext(t), stream, esdbclient.AppendToStreamOptions{},
		esdbclient.EventData{EventID: uuid.New(), EventType: typ, ContentType: esdbclient.ContentTypeJson, Data: []byte(`{}`)})
	if err != nil {
		t.Fatalf("raw AppendToStream(%s) = %v", stream, err)
	}
}

// TestStandInForeignEvents puts events the backend did not write into the
// database: system events and other prefixes are not the store's and are
// skipped; an event without a hash link in one of the store's streams is
// reported as corrupt.
func TestStandInForeignEvents(t *testing.T) {
	si := startStandIn(t)
	c := rawClient(t, si.URL())
	st := open(t, si.URL(), esdb.Options{Prefix: "ledger-"})
	defer st.Close()

	first := mustAppend(t, st, "a", events.NoStream, ev("esdbtest.Mine", "1"))
	rawAppend(t, c, "$stats-127.0.0.1:2113", "$statsCollected")
	rawAppend(t, c, "other-a", "esdbtest.NotMine")
	second := mustAppend(t, st, "a", events.Exact(0), ev("esdbtest.Mine", "2"))
	if h, err := st.Head(testContext(t)); err != nil || h != second.Position {
		t.Errorf("Head = %d, %v; want %d", h, err, second.Position)
	}
	all, err := st.ReadAll(testContext(t), events.Start, 0)
	if err != nil || len(all) != 2 || all[0].Position != first.Position || all[1].Position != second.Position {
		t.Fatalf("ReadAll = %d events, %v; want the store's 2", len(all), err)
	}
	// After a position that is not an event's of the store.
	if got, err := st.ReadAll(testContext(t), first.Position+1, 0); err != nil || len(got) != 1 || got[0].Position != second.Position {
		t.Errorf("ReadAll(after %d) = %d events, %v; want the second event", first.Position+1, len(got), err)
	}

	rawAppend(t, c, "ledger-a", "esdbtest.Unwrapped")
	_, err = st.ReadStream(testContext(t), "a", events.Forwards, 0, 0)
	wantCode(t, "ReadStream(stream holding an event without hash link)", err, events.CodeCorrupt)
	_, err = st.ReadAll(testContext(t), events.Start, 0)
	wantCode(t, "ReadAll(log holding an event without hash link)", err, events.CodeCorrupt)
	rep, err := events.Verify(testContext(t), st, nil)
	if err != nil || rep.Break == nil {
		t.Errorf("Verify = %+v, %v; want a break", rep, err)
	}
}

func TestStandInAppendSize(t *testing.T) {
	si := esdbtest.NewStandIn()
	si.MaxAppendSize = 4096
	if err := si.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer si.Stop()
	sized := func(n int) events.EventData {
		e := ev("esdbtest.Sized", "")
		e.Data = make([]byte, n-esdb.AppendSize(e))
		return e
	}

	// The backend refuses what it knows to be too large without sending it.
	st := open(t, si.URL(), esdb.Options{MaxAppendSize: 4096})
	_, err := st.Append(testContext(t), "sized", events.NoStream, sized(4097))
	wantCode(t, "Append(4097 bytes, limit 4096)", err, events.CodeInvalidArgument)
	if n := si.Events(); n != 0 {
		t.Fatalf("after a refused append the server holds %d events; want 0", n)
	}
	mustAppend(t, st, "sized", events.NoStream, sized(2000), sized(2096))
	st.Close()

	// The server's refusal, where the backend's limit is higher, is
	// ErrInvalidArgument too: retrying will not help. The stand-in counts
	// sizes as AppendSize does.
	st = open(t, si.URL(), esdb.Options{MaxAppendSize: 1 << 20})
	defer st.Close()
	_, err = st.Append(testContext(t), "sized", events.Exact(1), sized(4097))
	wantCode(t, "Append(4097 bytes, server limit 4096)", err, events.CodeInvalidArgument)
	mustAppend(t, st, "sized", events.Exact(1), sized(4096))
}

// TestStandInSubscriptionDroppedLater drops a subscription that has been
// up for a while: a new outage, resumed even with a short ResubscribeFor.
func TestStandInSubscriptionDroppedLater(t *testing.T) {
	si := startStandIn(t)
	st := open(t, si.URL(), esdb.Options{ResubscribeFor: 300 * time.Millisecond})
	defer st.Close()
	sub, err := st.Subscribe(testContext(t), events.Start, events.Filter{})
	if err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	defer sub.Close()
	mustAppend(t, st, "later", events.NoStream, ev("esdbtest.Later", "1"))
	next(t, sub)
	time.Sleep(1200 * time.Millisecond)
	si.DropSubscriptions()
	e := ev("esdbtest.Later", "2")
	mustAppend(t, st, "later", events.Exact(0), e)
	if got := next(t, sub); got.ID != e.ID {
		t.Fatalf("Next after a late drop = %s %q; want %s %q", got.ID, got.Data, e.ID, e.Data)
	}
}
