package bolt_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/cqhrss/subsidyledger/events/bolt"
)

// sideFile makes a bbolt file of rounds transactions: one or two make a
// small file, whose freelist page is within the memory bbolt maps (32 KiB
// at least), many a file whose freelist page is beyond it.
func sideFile(t *testing.T, rounds int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "side.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	for round := range rounds {
		if err := db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			for i := range min(50, 4*rounds) {
				if err := b.Put(fmt.Appendf(nil, "key-%04d", round*50+i), make([]byte, 1000)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestOpenDB: a side file cut short, empty or not bbolt is ErrDamaged,
// never a crash (a file cut short sends bbolt past the end of its
// mapping: SIGBUS) or a fresh file in its place; an absent one is made.
func TestOpenDB(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rounds  int
		damage  func(t *testing.T, path string)
		damaged bool
	}{
		{"absent", 20, func(t *testing.T, path string) { os.Remove(path) }, false},
		{"whole", 20, func(*testing.T, string) {}, false},
		{"empty", 20, func(t *testing.T, path string) { truncateTo(t, path, 0) }, true},
		// The freelist page past the end of the file but mapped: reading
		// it is a SIGBUS, a crash unless made a panic.
		{"small, cut to 8 KiB", 1, func(t *testing.T, path string) { truncateTo(t, path, 8<<10) }, true},
		{"cut to 8 KiB", 20, func(t *testing.T, path string) { truncateTo(t, path, 8<<10) }, true},
		{"cut to 16 KiB", 20, func(t *testing.T, path string) { truncateTo(t, path, 16<<10) }, true},
		{"not bbolt", 20, func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("this is not a bbolt file, but it is long enough to have a header"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := sideFile(t, tc.rounds)
			tc.damage(t, path)
			db, err := bolt.OpenDB(path, nil)
			if db != nil {
				db.Close()
			}
			t.Logf("%s: %v", tc.name, err)
			if got := errors.Is(err, bolt.ErrDamaged); got != tc.damaged || (!tc.damaged && err != nil) {
				t.Fatalf("OpenDB = %v; want damaged %v", err, tc.damaged)
			}
		})
	}
}

func truncateTo(t *testing.T, path string, n int64) {
	t.Helper()
	if err := os.Truncate(path, n); err != nil {
		t.Fatal(err)
	}
}
