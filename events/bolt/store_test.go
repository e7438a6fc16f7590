package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/storetest"
)

func openAt(t testing.TB, path string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("Open(%s) = %v; want success", path, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t,
		func(t *testing.T) events.Store {
			return openAt(t, filepath.Join(t.TempDir(), "events.db"))
		},
		storetest.Features{
			DensePositions: true,
			Reopen: func(t *testing.T, s events.Store) events.Store {
				path := s.(*bolt.Store).Path()
				if err := s.Close(); err != nil {
					t.Fatalf("Close() = %v; want nil", err)
				}
				return openAt(t, path)
			},
		})
}

func wantCode(t *testing.T, call string, err error, code events.Code) *events.Error {
	t.Helper()
	var e *events.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("%s = %v; want an *events.Error with code %s", call, err, code)
	}
	return e
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()

	t.Run("Locked", func(t *testing.T) {
		path := filepath.Join(dir, "locked.db")
		s := openAt(t, path)
		defer s.Close()
		start := time.Now()
		_, err := bolt.Open(path, bolt.Options{LockTimeout: 100 * time.Millisecond})
		e := wantCode(t, "Open(a file another store holds)", err, events.CodeUnavailable)
		if !strings.Contains(e.Error(), "locked") || !strings.Contains(e.Error(), path) {
			t.Errorf("Open(locked) error %q; want it to say the file %s is locked", e, path)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Open(locked) took %v; want it to give up after its timeout", d)
		}
	})

	t.Run("MissingDirectory", func(t *testing.T) {
		path := filepath.Join(dir, "no", "such", "dir", "x.db")
		_, err := bolt.Open(path, bolt.Options{})
		e := wantCode(t, "Open(path in a missing directory)", err, events.CodeInvalidArgument)
		if !strings.Contains(e.Error(), "does not exist") {
			t.Errorf("Open(missing dir) error %q; want it to say the directory does not exist", e)
		}
	})

	t.Run("Directory", func(t *testing.T) {
		_, err := bolt.Open(dir, bolt.Options{})
		wantCode(t, "Open(a directory)", err, events.CodeInvalidArgument)
	})

	t.Run("EmptyPath", func(t *testing.T) {
		_, err := bolt.Open("", bolt.Options{})
		wantCode(t, `Open("")`, err, events.CodeInvalidArgument)
	})

	t.Run("NotBbolt", func(t *testing.T) {
		path := filepath.Join(dir, "notes.txt")
		if err := os.WriteFile(path, bytes.Repeat([]byte("this is not a database\n"), 1000), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := bolt.Open(path, bolt.Options{})
		e := wantCode(t, "Open(a text file)", err, events.CodeCorrupt)
		if !strings.Contains(e.Error(), "not an event store") {
			t.Errorf("Open(text file) error %q; want it to say the file is not an event store", e)
		}
	})

	t.Run("SmallFile", func(t *testing.T) {
		path := filepath.Join(dir, "small.bin")
		if err := os.WriteFile(path, bytes.Repeat([]byte{0x5a}, os.Getpagesize()), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := bolt.Open(path, bolt.Options{})
		e := wantCode(t, "Open(one page of garbage)", err, events.CodeCorrupt)
		if !strings.Contains(e.Error(), "not an event store") {
			t.Errorf("Open(small file) error %q; want it to say the file is not an event store", e)
		}
	})

	t.Run("OtherBboltFile", func(t *testing.T) {
		path := filepath.Join(dir, "other.db")
		db, err := bbolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bbolt.Tx) error {
			_, err := tx.CreateBucket([]byte("somebody-elses"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		db.Close()
		_, err = bolt.Open(path, bolt.Options{})
		e := wantCode(t, "Open(another program's bbolt file)", err, events.CodeCorrupt)
		if !strings.Contains(e.Error(), "not an event store") {
			t.Errorf("Open(other bbolt file) error %q; want it to say the file is not an event store", e)
		}
	})
}

// TestTamperedRecord flips one byte of a stored event's payload in the data
// file and expects Verify to point at that event.
func TestTamperedRecord(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s := openAt(t, path)
	ev := func(data string) events.EventData {
		return events.EventData{ID: events.RandomID(), Type: "test.Tampered", Data: []byte(data)}
	}
	for i := range 50 {
		if _, err := s.Append(ctx, "before", events.Any, ev(strings.Repeat("x", i))); err != nil {
			t.Fatal(err)
		}
	}
	marker := "MARKER-5f0c2e9a-the-amount-is-100"
	if _, err := s.Append(ctx, "victim", events.NoStream, ev("a"), ev("b")); err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(ctx, "victim", events.Exact(1), ev(marker))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := s.Append(ctx, "after", events.Any, ev(strings.Repeat("y", i))); err != nil {
			t.Fatal(err)
		}
	}
	if rep, err := events.Verify(ctx, s, nil); err != nil || rep.Break != nil {
		t.Fatalf("Verify before tampering = %+v, %v; want no break", rep, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Old copies of a page may linger in freed pages: flip every copy.
	n := bytes.Count(raw, []byte(marker))
	if n == 0 {
		t.Fatalf("marker not found in %s", path)
	}
	for off := 0; ; {
		i := bytes.Index(raw[off:], []byte(marker))
		if i < 0 {
			break
		}
		raw[off+i+len(marker)-3] ^= 0x01 // "100" becomes "000"
		off += i + len(marker)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, path)
	defer s.Close()
	rep, err := events.Verify(ctx, s, nil)
	if err != nil {
		t.Fatalf("Verify after tampering = %v; want a report", err)
	}
	want := events.Break{Stream: "victim", Revision: 2, Position: res.Position, Reason: "hash does not match the event's content"}
	if rep.Break == nil || *rep.Break != want {
		t.Fatalf("Verify after tampering with %d copies = %+v; want break %v", n, rep.Break, &want)
	}
}
