package esdb

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/esdb/esdbtest"
)

// TestStandInServerDedupe takes the path where EventStoreDB (here the
// STAND-IN) dedupes an append by its event IDs, answering success without
// storing anything: another process appended the same events at the
// revision this one expected. The backend must answer from what is stored,
// and refuse a different body, which EventStoreDB does not compare.
func TestStandInServerDedupe(t *testing.T) {
	si := esdbtest.NewStandIn()
	if err := si.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer si.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := Open(ctx, si.URL(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, si.URL(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	batch := []events.EventData{
		{ID: events.RandomID(), Type: "esdbtest.Dedupe", Data: []byte("1")},
		{ID: events.RandomID(), Type: "esdbtest.Dedupe", Data: []byte("2")},
	}
	stale, err := b.head(ctx, "append", "dedupe") // b reads the head before a appends
	if err != nil || stale.exists {
		t.Fatalf("head = %+v, %v; want no stream", stale, err)
	}
	res, err := a.Append(ctx, "dedupe", events.NoStream, batch...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.appendAt(ctx, "dedupe", stale, batch); !errors.Is(err, errIdempotent) {
		t.Fatalf("appendAt(stale head, the same events) = %v; want the server's dedupe", err)
	}
	changed := append([]events.EventData(nil), batch...)
	changed[1].Data = []byte("changed")
	if _, err := b.appendAt(ctx, "dedupe", stale, changed); !errors.Is(err, errIdempotent) {
		t.Fatalf("appendAt(stale head, same IDs, another body) = %v; want the server's dedupe (it compares IDs only)", err)
	}
	if n := si.Events(); n != 2 {
		t.Fatalf("the server holds %d events; want 2", n)
	}
	if got, err := b.Append(ctx, "dedupe", events.NoStream, batch...); err != nil || got != res {
		t.Errorf("Append(the same events) = %+v, %v; want %+v", got, err, res)
	}
	if _, err := b.Append(ctx, "dedupe", events.NoStream, changed...); !errors.Is(err, events.ErrDuplicateID) {
		t.Errorf("Append(same IDs, another body) = %v; want %v", err, events.ErrDuplicateID)
	}
}

func TestWrap(t *testing.T) {
	prev := events.Hash{1, 2, 3}
	hash := events.Hash{4, 5, 6}
	for _, meta := range [][]byte{nil, {}, []byte(`{"by":"x"}`)} {
		b := wrap(prev, hash, meta)
		if len(b) != wrapLen+len(meta) {
			t.Errorf("wrap(%q) is %d bytes; want %d", meta, len(b), wrapLen+len(meta))
		}
		p, h, m, ok := unwrap(b)
		if !ok || p != prev || h != hash || string(m) != string(meta) {
			t.Errorf("unwrap(wrap(%q)) = %v %v %q %v; want the inputs back", meta, p, h, m, ok)
		}
	}
	for _, b := range [][]byte{nil, []byte("{}"), []byte(wrapMagic), append([]byte("slh\x02"), make([]byte, 64)...)} {
		if _, _, _, ok := unwrap(b); ok {
			t.Errorf("unwrap(%q) ok; want not a wrapper", b)
		}
	}
}
