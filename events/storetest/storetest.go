// Package storetest is the conformance suite of the events.Store contract.
// Every Store implementation runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) events.Store { return openFresh(t) },
//			storetest.Features{DensePositions: true, Reopen: reopen})
//	}
//
// Each check is a named subtest, so `go test -run 'Conformance/Idempotency'`
// runs one area. Load-heavy tests shrink under -short.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events"
)

// Features describes what a backend can do beyond the contract's minimum.
type Features struct {
	// DensePositions: positions are 1, 2, 3, ... in commit order, without
	// gaps (the embedded store), rather than merely increasing.
	DensePositions bool

	// Reopen closes s and opens the same store again, returning the
	// reopened store; the durability tests use it. Nil skips them.
	Reopen func(t *testing.T, s events.Store) events.Store

	// LargeBatch is the number of events in the large-append test; zero
	// means 10,000.
	LargeBatch int
}

// Run runs the conformance suite. open must return a fresh, empty store
// each time it is called; the suite closes every store it opens (and every
// store Reopen returns) when its test ends, ignoring ErrClosed.
func Run(t *testing.T, open func(t *testing.T) events.Store, f Features) {
	s := &suite{open: open, f: f}
	if s.f.LargeBatch <= 0 {
		s.f.LargeBatch = 10_000
	}
	for _, g := range []struct {
		name string
		run  func(*testing.T, *suite)
	}{
		{"Append", testAppend},
		{"ExpectedRevision", testExpectedRevision},
		{"Concurrency", testConcurrency},
		{"Idempotency", testIdempotency},
		{"Atomicity", testAtomicity},
		{"AppendMany", testAppendMany},
		{"LargeBatch", testLargeBatch},
		{"Context", testContext},
		{"ReadStream", testReadStream},
		{"ReadAll", testReadAll},
		{"ReadPage", testReadPage},
		{"Head", testHead},
		{"HashLinks", testHashLinks},
		{"Subscribe", testSubscribe},
		{"Durability", testDurability},
		{"Close", testClose},
	} {
		t.Run(g.name, func(t *testing.T) { g.run(t, s) })
	}
}

type suite struct {
	open func(t *testing.T) events.Store
	f    Features
}

// store opens a fresh store that is closed when t ends.
func (s *suite) store(t *testing.T) events.Store {
	t.Helper()
	st := s.open(t)
	if st == nil {
		t.Fatal("open returned a nil store")
	}
	t.Cleanup(func() { closeQuietly(t, st) })
	return st
}

// reopen closes st and opens it again; it skips t if the backend cannot.
func (s *suite) reopen(t *testing.T, st events.Store) events.Store {
	t.Helper()
	if s.f.Reopen == nil {
		t.Skip("backend has no Reopen feature")
	}
	st = s.f.Reopen(t, st)
	if st == nil {
		t.Fatal("Reopen returned a nil store")
	}
	t.Cleanup(func() { closeQuietly(t, st) })
	return st
}

func closeQuietly(t *testing.T, st events.Store) {
	t.Helper()
	if err := st.Close(); err != nil && !errors.Is(err, events.ErrClosed) {
		t.Errorf("Close() = %v; want nil", err)
	}
}

// ev returns an event with a fresh random ID.
func ev(typ, data string) events.EventData {
	return events.EventData{
		ID:       events.RandomID(),
		Type:     typ,
		Metadata: []byte(`{"by":"storetest"}`),
		Data:     []byte(data),
	}
}

// evs returns n events of one type with distinct data.
func evs(n int, typ, prefix string) []events.EventData {
	out := make([]events.EventData, n)
	for i := range out {
		out[i] = ev(typ, fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

func mustAppend(t testing.TB, st events.Store, stream string, exp events.ExpectedRevision, e ...events.EventData) events.AppendResult {
	t.Helper()
	res, err := st.Append(context.Background(), stream, exp, e...)
	if err != nil {
		t.Fatalf("Append(%q, %v, %d events) = %v; want success", stream, exp, len(e), err)
	}
	return res
}

// readAll reads the whole log in pages of page events.
func readAll(t testing.TB, st events.Store, page int) []events.RecordedEvent {
	t.Helper()
	var out []events.RecordedEvent
	after := events.Start
	for {
		got, err := st.ReadAll(context.Background(), after, page)
		if err != nil {
			t.Fatalf("ReadAll(%d, %d) = %v; want success", after, page, err)
		}
		if len(got) == 0 {
			return out
		}
		if page > 0 && len(got) > page {
			t.Fatalf("ReadAll(%d, %d) returned %d events; want at most %d", after, page, len(got), page)
		}
		if got[0].Position <= after {
			t.Fatalf("ReadAll(%d, %d) starts at position %d; want positions after %d", after, page, got[0].Position, after)
		}
		out = append(out, got...)
		after = got[len(got)-1].Position
	}
}

func readStream(t testing.TB, st events.Store, stream string) []events.RecordedEvent {
	t.Helper()
	got, err := st.ReadStream(context.Background(), stream, events.Forwards, 0, 0)
	if err != nil {
		t.Fatalf("ReadStream(%q, Forwards, 0, 0) = %v; want success", stream, err)
	}
	return got
}

// wantErr checks that err is an *events.Error matching the sentinel and
// returns it.
func wantErr(t testing.TB, call string, err, sentinel error) *events.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("%s = nil error; want %v", call, sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("%s = %v; want %v", call, err, sentinel)
	}
	var e *events.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s = %T %v; want an *events.Error", call, err, err)
	}
	return e
}

func wantStreamNotFound(t testing.TB, st events.Store, stream string) {
	t.Helper()
	_, err := st.ReadStream(context.Background(), stream, events.Forwards, 0, 0)
	wantErr(t, fmt.Sprintf("ReadStream(%q) of a stream with no events", stream), err, events.ErrStreamNotFound)
}

// sameEvent compares an event as read with one as read elsewhere.
func sameEvent(a, b events.RecordedEvent) bool {
	return a.ID == b.ID && a.Type == b.Type && bytes.Equal(a.Metadata, b.Metadata) && bytes.Equal(a.Data, b.Data) &&
		a.Stream == b.Stream && a.Revision == b.Revision && a.Position == b.Position &&
		a.Created.Equal(b.Created) && a.PrevHash == b.PrevHash && a.Hash == b.Hash
}

// checkData checks that a recorded event carries what was appended.
func checkData(t testing.TB, what string, got events.RecordedEvent, stream string, want events.EventData) {
	t.Helper()
	if got.Stream != stream || got.ID != want.ID || !got.SameBody(want) {
		t.Errorf("%s = %s; want stream %q id %s type %s data %q", what, describe(got), stream, want.ID, want.Type, want.Data)
	}
}

func describe(e events.RecordedEvent) string {
	return fmt.Sprintf("{%q@%d pos %d id %s type %s data %q}", e.Stream, e.Revision, e.Position, e.ID, e.Type, e.Data)
}

func revisions(es []events.RecordedEvent) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Revision
	}
	return out
}

func positions(es []events.RecordedEvent) []events.Position {
	out := make([]events.Position, len(es))
	for i, e := range es {
		out[i] = e.Position
	}
	return out
}

// checkFirstPosition checks an append's FirstPosition against its events
// as read back: an append of one event always knows it; otherwise it is
// zero or the first event's position, and the span from it to Position
// covers the events exactly when positions are dense.
func (s *suite) checkFirstPosition(t testing.TB, what string, res events.AppendResult, got []events.RecordedEvent) {
	t.Helper()
	n := events.Position(len(got))
	switch {
	case n == 0:
		t.Errorf("%s: no events read back", what)
	case res.FirstPosition == 0 && (n == 1 || s.f.DensePositions):
		t.Errorf("%s: FirstPosition = 0; want %d (the first event's position)", what, got[0].Position)
	case res.FirstPosition != 0 && res.FirstPosition != got[0].Position:
		t.Errorf("%s: FirstPosition = %d; the first event is at %d", what, res.FirstPosition, got[0].Position)
	case s.f.DensePositions && res.Position-res.FirstPosition != n-1:
		t.Errorf("%s: positions %d..%d for %d events; want them consecutive", what, res.FirstPosition, res.Position, n)
	}
}

// checkLog checks the invariants of a whole log as ReadAll returns it:
// positions increase (by one when dense), each stream's revisions run 0, 1,
// 2, ... and Created is a plausible UTC time.
func (s *suite) checkLog(t testing.TB, log []events.RecordedEvent) {
	t.Helper()
	next := map[string]uint64{}
	var prev events.Position
	for i, e := range log {
		if e.Position <= prev {
			t.Fatalf("ReadAll event %d at position %d after position %d; want increasing positions", i, e.Position, prev)
		}
		if s.f.DensePositions && e.Position != prev+1 {
			t.Fatalf("ReadAll event %d at position %d after position %d; want dense positions", i, e.Position, prev)
		}
		if e.Revision != next[e.Stream] {
			t.Fatalf("ReadAll event %d = %s; want revision %d of its stream", i, describe(e), next[e.Stream])
		}
		if e.Created.IsZero() || e.Created.Location() != time.UTC || time.Since(e.Created) > time.Hour || time.Until(e.Created) > time.Minute {
			t.Fatalf("ReadAll event %d Created = %v; want a recent UTC time", i, e.Created)
		}
		next[e.Stream]++
		prev = e.Position
	}
}
