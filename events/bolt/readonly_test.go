package bolt_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
)

// TestReadOnly opens a written store read-only: it reads and verifies the
// log, refuses appends, leaves the file's bytes as they were, shares the
// file with another read-only open, waits for no writer and is refused
// while one holds the file; a file on which it has no write permission
// opens too.
func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	w := openAt(t, path)
	for i := range 20 {
		ev := events.EventData{ID: events.RandomID(), Type: "test.ReadOnly", Data: []byte{byte(i)}}
		if _, err := w.Append(ctx, "s-"+string(rune('a'+i%3)), events.Any, ev); err != nil {
			t.Fatal(err)
		}
	}
	ro := bolt.Options{ReadOnly: true, LockTimeout: 200 * time.Millisecond}
	if _, err := bolt.Open(path, ro); err == nil {
		t.Fatal("a read-only open succeeded while a writer held the file")
	} else {
		wantCode(t, "Open(read-only) beside a writer", err, events.CodeUnavailable)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := bolt.Open(path, ro)
	if err != nil {
		t.Fatalf("Open(read-only) = %v", err)
	}
	b, err := bolt.Open(path, ro)
	if err != nil {
		t.Fatalf("a second Open(read-only) = %v", err)
	}
	if h, err := a.Head(ctx); err != nil || h != 20 {
		t.Errorf("Head = %d, %v; want 20", h, err)
	}
	recs, err := b.ReadAll(ctx, events.Start, 100)
	if err != nil || len(recs) != 20 {
		t.Fatalf("ReadAll = %d events, %v; want 20", len(recs), err)
	}
	if _, err := events.Verify(ctx, a, nil); err != nil {
		t.Errorf("Verify = %v", err)
	}
	_, err = a.Append(ctx, "s-a", events.Any, events.EventData{ID: events.RandomID(), Type: "test.ReadOnly", Data: []byte{1}})
	wantCode(t, "Append on a read-only store", err, events.CodeUnavailable)
	if err := a.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("a read-only open changed the file")
	}
	if _, err := bolt.Open(filepath.Join(filepath.Dir(path), "none.db"), ro); err == nil {
		t.Error("a read-only open of a missing file succeeded")
	}
}
