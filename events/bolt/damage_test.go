package bolt_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
)

// bbolt's page layout (go.etcd.io/bbolt/internal/common/page.go): a 16-byte
// header (id uint64, flags uint16, count uint16, overflow uint32), then
// 16-byte elements: a branch's are pos, ksize (uint32) and the child's page
// id (uint64); a leaf's are flags, pos, ksize, vsize (uint32), pos counted
// from the element itself.
const (
	pageHeader  = 16
	pageElement = 16
	branchPage  = 0x01
)

// damagedStore writes a store of n events (enough for the log bucket's root
// to be a branch page) and returns its path, the page size, and the log's
// root page id.
func damagedStore(t *testing.T, n int) (path string, pageSize int, root uint64) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "events.db")
	s := openAt(t, path)
	for i := 0; i < n; i += 100 {
		evs := make([]events.EventData, 100)
		for j := range evs {
			evs[j] = events.EventData{ID: events.RandomID(), Type: "test.Damaged", Data: []byte(strings.Repeat("x", 100))}
		}
		if _, err := s.Append(context.Background(), fmt.Sprint("s-", i%7), events.Any, evs...); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pageSize = db.Info().PageSize
	if err := db.View(func(tx *bbolt.Tx) error {
		root = uint64(tx.Bucket([]byte("log")).Root())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return path, pageSize, root
}

// editPages applies edit to the bytes of the file at path.
func editPages(t *testing.T, path string, edit func(raw []byte)) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edit(raw)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// leafRef descends from the branch page root to a leaf: the last one, or
// the second of the first bottom branch (one the log's first read reaches
// but its last position does not). It returns the leaf's page id and the
// offset in raw of the branch element's field holding that id.
func leafRef(t *testing.T, raw []byte, pageSize int, root uint64, last bool) (off int, leaf uint64) {
	t.Helper()
	id := root
	for {
		p := raw[int(id)*pageSize:]
		if p[8]&branchPage == 0 {
			t.Fatalf("page %d is not a branch page (flags %#x): the store is too small", id, p[8])
		}
		count := int(binary.LittleEndian.Uint16(p[10:]))
		i := 0
		if last {
			i = count - 1
		}
		off = int(id)*pageSize + pageHeader + i*pageElement + 8
		child := binary.LittleEndian.Uint64(raw[off:])
		if raw[int(child)*pageSize+8]&branchPage == 0 { // a leaf: id is the bottom branch
			if !last {
				if count < 2 {
					t.Fatalf("branch page %d has %d elements", id, count)
				}
				off += pageElement
				child = binary.LittleEndian.Uint64(raw[off:])
			}
			return off, child
		}
		id = child
	}
}

// TestOpenAndReadDamagedPages overwrites fields of the log bucket's pages
// with huge values, as a damaged disk or a careless edit might, and
// expects ErrCorrupt naming the file, not a crash: bbolt slices keys out
// of range (a panic) or follows page ids outside the mapped file (a memory
// fault, which only debug.SetPanicOnFault makes recoverable).
func TestOpenAndReadDamagedPages(t *testing.T) {
	for _, tc := range []struct {
		name string
		// edit damages the file; read is true when Open still succeeds
		// (the damage lies where only a read of the log goes).
		edit func(t *testing.T, raw []byte, pageSize int, root uint64)
		read bool
	}{
		{"the last key's offset out of range", func(t *testing.T, raw []byte, pageSize int, root uint64) {
			// Open looks up the last position: the last element of the
			// last leaf. A pos past 2 GiB slices out of range (a panic).
			_, leaf := leafRef(t, raw, pageSize, root, true)
			p := int(leaf) * pageSize
			count := int(binary.LittleEndian.Uint16(raw[p+10:]))
			binary.LittleEndian.PutUint32(raw[p+pageHeader+(count-1)*pageElement+4:], 0xFFFFFFF0)
		}, false},
		{"the last leaf's page id out of the file", func(t *testing.T, raw []byte, pageSize int, root uint64) {
			// bbolt checks the page's header at that id: a memory fault.
			off, _ := leafRef(t, raw, pageSize, root, true)
			binary.LittleEndian.PutUint64(raw[off:], 1<<32)
		}, false},
		{"a middle leaf's page id out of the file", func(t *testing.T, raw []byte, pageSize int, root uint64) {
			off, _ := leafRef(t, raw, pageSize, root, false)
			binary.LittleEndian.PutUint64(raw[off:], 1<<32)
		}, true},
		{"a middle leaf's key offset out of the file", func(t *testing.T, raw []byte, pageSize int, root uint64) {
			// Under 2 GiB, so no slice goes out of range: reading the key
			// is a memory fault.
			_, leaf := leafRef(t, raw, pageSize, root, false)
			binary.LittleEndian.PutUint32(raw[int(leaf)*pageSize+pageHeader+4:], 0x7FFF0000)
		}, true},
	} {
		for _, readOnly := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/read-only=%v", tc.name, readOnly), func(t *testing.T) {
				path, pageSize, root := damagedStore(t, 3000)
				editPages(t, path, func(raw []byte) { tc.edit(t, raw, pageSize, root) })
				// The writer reads the log's tail at once (no DeferIDLoad),
				// and must not crash on the damage either.
				s, err := bolt.Open(path, bolt.Options{ReadOnly: readOnly})
				if !tc.read {
					e := wantCode(t, "Open(a damaged file)", err, events.CodeCorrupt)
					if !strings.Contains(e.Error(), path) || !strings.Contains(e.Error(), "damaged") {
						t.Errorf("Open(a damaged file) = %v; want it to name %s as damaged", e, path)
					}
					return
				}
				if err != nil {
					t.Fatalf("Open = %v; want the damage to show only when the log is read", err)
				}
				defer s.Close()
				var p events.Page
				for after := events.Start; err == nil; {
					if err = events.ReadPage(context.Background(), s, after, 1000, &p); err == nil {
						if len(p.Events) == 0 {
							t.Fatal("the whole log read: the damage is not where the test meant it")
						}
						after = p.Events[len(p.Events)-1].Position
					}
				}
				wantCode(t, "ReadAll over a damaged page", err, events.CodeCorrupt)
				if !readOnly {
					// The writer reads the damage loading the IDs of recent
					// events, or meets it appending: an error, never a
					// crash. (An offset out of the file may land in memory
					// mapped for something else, read as garbage: then the
					// append may succeed; the test is that it returns.)
					ev := events.EventData{ID: events.DeriveID("damage", "append"), Type: "t", Data: []byte("x")}
					_, err := s.Append(context.Background(), "after-the-damage", events.Any, ev)
					if code := events.CodeOf(err); err != nil && code != events.CodeCorrupt && code != events.CodeUnavailable {
						t.Errorf("Append to a damaged store = %v; want success, ErrCorrupt or ErrUnavailable", err)
					}
				}
			})
		}
	}
}
