package esdb_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/esdb"
	"github.com/cqhrss/subsidyledger/events/esdb/esdbtest"
	"github.com/cqhrss/subsidyledger/events/storetest"
)

// largeBatch is the size of the conformance suite's large append here:
// EventStoreDB refuses appends over its maximum append size (1 MiB by
// default), which the suite's default of 10,000 events exceeds.
const largeBatch = 3000

// startStandIn starts an EventStoreDB stand-in (NOT EventStoreDB) on a
// free local port, stopped when t ends.
func startStandIn(t testing.TB) *esdbtest.StandIn {
	t.Helper()
	si := esdbtest.NewStandIn()
	if err := si.Listen("127.0.0.1:0"); err != nil {
		t.Fatalf("stand-in Listen = %v", err)
	}
	t.Cleanup(si.Stop)
	return si
}

func open(t testing.TB, url string, opts esdb.Options) *esdb.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := esdb.Open(ctx, url, opts)
	if err != nil {
		t.Fatalf("esdb.Open(%s) = %v; want success", redact(url), err)
	}
	return st
}

// redact drops the credentials from a connection string for messages.
func redact(url string) string {
	if at := strings.LastIndex(url, "@"); at >= 0 {
		if scheme := strings.Index(url, "://"); scheme >= 0 && scheme < at {
			return url[:scheme+3] + "…@" + url[at+1:]
		}
	}
	return url
}

// conformance runs the store contract's conformance suite against the
// esdb backend. fresh returns the connection string and options of an
// empty store; reopening a store opens the same connection string with
// the same options.
func conformance(t *testing.T, fresh func(t *testing.T) (string, esdb.Options)) {
	var mu sync.Mutex
	where := map[events.Store]struct {
		url  string
		opts esdb.Options
	}{}
	openAt := func(t *testing.T, url string, opts esdb.Options) events.Store {
		st := open(t, url, opts)
		mu.Lock()
		where[st] = struct {
			url  string
			opts esdb.Options
		}{url, opts}
		mu.Unlock()
		return st
	}
	storetest.Run(t,
		func(t *testing.T) events.Store {
			url, opts := fresh(t)
			return openAt(t, url, opts)
		},
		storetest.Features{
			LargeBatch: largeBatch,
			Reopen: func(t *testing.T, s events.Store) events.Store {
				mu.Lock()
				w := where[s]
				mu.Unlock()
				if err := s.Close(); err != nil {
					t.Fatalf("Close() = %v; want nil", err)
				}
				return openAt(t, w.url, w.opts)
			},
		})
}

// TestStandInConformance runs the conformance suite through the real
// EventStoreDB client against the in-process STAND-IN (package esdbtest),
// one stand-in per store. It checks the backend's wiring to the client and
// EventStoreDB's documented semantics as the stand-in models them; it does
// not show that the backend works with EventStoreDB (TestRealEventStoreDB
// does, where one is reachable).
func TestStandInConformance(t *testing.T) {
	conformance(t, func(t *testing.T) (string, esdb.Options) {
		return startStandIn(t).URL(), esdb.Options{}
	})
}

// TestStandInConformanceSharedDatabase runs the suite against one STAND-IN
// shared by every store, each in its own prefix and starting after the
// head of $all, as TestRealEventStoreDB does against a real server.
func TestStandInConformanceSharedDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("the shared-database run repeats TestStandInConformance; skipped under -short")
	}
	si := startStandIn(t)
	conformance(t, func(t *testing.T) (string, esdb.Options) {
		return si.URL(), namespace(t, si.URL())
	})
}

// namespace returns options for a fresh, empty store in the database at
// url: a new prefix, and the log starting after the current end of $all.
func namespace(t testing.TB, url string) esdb.Options {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	return esdb.Options{Prefix: "storetest-" + hex.EncodeToString(b[:]) + "-", Since: logEnd(t, url)}
}

// logEnd returns the position of the last record of $all (system records
// included), through the client directly.
func logEnd(t testing.TB, url string) events.Position {
	t.Helper()
	cfg, err := esdbclient.ParseConnectionString(url)
	if err != nil {
		t.Fatalf("ParseConnectionString = %v", err)
	}
	cfg.Logger = esdbclient.NoopLogging()
	c, err := esdbclient.NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient = %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rs, err := c.ReadAll(ctx, esdbclient.ReadAllOptions{Direction: esdbclient.Backwards, From: esdbclient.End{}}, 1)
	if err != nil {
		t.Fatalf("ReadAll(backwards from the end) = %v", err)
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if errors.Is(err, io.EOF) {
		return events.Start
	}
	if err != nil {
		t.Fatalf("ReadAll(backwards from the end).Recv = %v", err)
	}
	return events.Position(ev.OriginalEvent().Position.Commit + 1)
}

// TestRealEventStoreDB runs the conformance suite against a real
// EventStoreDB or KurrentDB at $LEDGER_ESDB_URL (make test-esdb), each store
// in its own prefix of the database. Without the variable it is skipped,
// and says so: nothing here has then been tested against EventStoreDB.
func TestRealEventStoreDB(t *testing.T) {
	url := os.Getenv("LEDGER_ESDB_URL")
	if url == "" {
		t.Skip("NOT TESTED against a real EventStoreDB: set LEDGER_ESDB_URL (e.g. esdb://localhost:2113?tls=false) " +
			"to a disposable EventStoreDB/KurrentDB 22.10+ and run `make test-esdb`; the stand-in tests do not prove compatibility")
	}
	t.Logf("running the conformance suite against the server at LEDGER_ESDB_URL=%s", redact(url))
	conformance(t, func(t *testing.T) (string, esdb.Options) {
		return url, namespace(t, url)
	})
}
