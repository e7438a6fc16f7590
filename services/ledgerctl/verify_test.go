package ledgerctl

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/merkle"
)

func TestVerifyIntactLog(t *testing.T) {
	f := getFixture(t)
	store := copyStore(t)
	cp := writeFile(t, "cp.note", string(f.root.Note))
	key := []string{"LEDGER_VERIFIER_KEY=" + f.verifierKey}
	out, _, err := run(t, "", key, "verify", "--store", store, "--checkpoint", cp)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	for _, w := range []string{
		"1 given and 1 in the log match",
		fmt.Sprintf("anchored:     the last matched checkpoint covers %s events, up to position %s; 1 event after it (covered by hash links only)", group(uint64(f.size)), group(uint64(f.size))),
		"stream index: checked against the log",
		"verdict:      OK: every hash link holds and the tree matches every checkpoint checked (2), and the stream index matches the log",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("verify output:\n%s\nwant it to say %q", out, w)
		}
	}
	out, _, err = run(t, "", key, "verify", "--store", store, "--json")
	var rep verifyJSON
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK || rep.Verdict != "OK" || !rep.Anchored || rep.AfterAnchor != 1 || !rep.IndexChecked ||
		rep.Events != f.size+1 || len(rep.Checkpoints) != 1 || rep.Checkpoints[0].Checkpoint.Note != nil {
		t.Errorf("verify --json with the key = %v\n%s", err, out)
	}
	// Without the key the log's checkpoint proves nothing: no break, but
	// not OK either.
	out, _, err = run(t, "", nil, "verify", "--store", store, "--json")
	if exitCode(err) != 3 {
		t.Errorf("verify --json without a key: %v; want exit 3", err)
	}
	rep = verifyJSON{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.OK || rep.Verdict != "UNANCHORED" || rep.Anchored || len(rep.Problems) != 0 ||
		rep.Events != f.size+1 || rep.Unchecked != 1 {
		t.Errorf("verify --json without a key = %+v, %v", rep, err)
	}
	if _, _, err := run(t, "", nil, "verify", "--store", store, "--checkpoint", cp); exitCode(err) != 2 {
		t.Errorf("verify --checkpoint without a key: %v; want a usage error", err)
	}
}

// TestVerifyUnanchored: a log that holds together but that no checkpoint
// anchors (none given, and no key or every checkpoint deleted from the
// log) is UNANCHORED, exit 3, never "matches every checkpoint"; an empty
// log is OK.
func TestVerifyUnanchored(t *testing.T) {
	f := getFixture(t)
	key := []string{"LEDGER_VERIFIER_KEY=" + f.verifierKey}
	noCheckpoints := copyStore(t)
	// The checkpoint is the log's last event: whoever deletes it, and its
	// stream's head, leaves a log that holds together.
	editStore(t, noCheckpoints, func(tx *bbolt.Tx) error {
		if err := tx.Bucket([]byte("log")).Delete(posKey(uint64(f.size + 1))); err != nil {
			return err
		}
		return tx.Bucket([]byte("streams")).Delete([]byte(merkle.CheckpointStream))
	})
	empty := filepath.Join(t.TempDir(), "empty.db")
	s, err := bolt.Open(empty, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, tc := range []struct {
		name  string
		store string
		env   []string
		code  int
		wants []string
	}{
		{"no key", copyStore(t), nil, 3, []string{"verdict:      " + unanchoredVerdict, "1 in the log not checked (no verifier key)"}},
		{"the log's checkpoints deleted", noCheckpoints, key, 3, []string{"verdict:      " + unanchoredVerdict, "the log holds no checkpoint at all"}},
		{"the log's checkpoints deleted, no key", noCheckpoints, nil, 3, []string{"verdict:      " + unanchoredVerdict}},
		{"an empty log", empty, nil, 0, []string{"verdict:      OK: the log is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := run(t, "", tc.env, "verify", "--store", tc.store)
			if exitCode(err) != tc.code {
				t.Fatalf("verify: %v; want exit %d\n%s", err, tc.code, out)
			}
			if strings.Contains(out, "matches every checkpoint") || strings.Contains(out, "anchored:") {
				t.Errorf("verify says the log matches checkpoints it did not check:\n%s", out)
			}
			for _, w := range tc.wants {
				if !strings.Contains(out, w) {
					t.Errorf("verify output:\n%s\nwant it to say %q", out, w)
				}
			}
			if tc.code == 3 && !strings.Contains(err.Error(), "UNANCHORED") {
				t.Errorf("verify's error %q; want it to say UNANCHORED", err)
			}
		})
	}
}

// TestVerifyChecksStreamIndex lowers a stream's head revision in the
// streams bucket (8 bytes): audits and ReadStream would stop there and the
// next append land on top of it; verify names the stream.
func TestVerifyChecksStreamIndex(t *testing.T) {
	f := getFixture(t)
	// The stream with the most events.
	counts := map[string]int{}
	long := ""
	for _, e := range readEvents(t, f.path) {
		if counts[e.Stream]++; counts[e.Stream] > counts[long] {
			long = e.Stream
		}
	}
	if counts[long] < 10 {
		t.Fatalf("the longest stream, %q, has %d events", long, counts[long])
	}
	store := copyStore(t)
	editStore(t, store, func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("streams"))
		v := append([]byte(nil), b.Get([]byte(long))...)
		binary.BigEndian.PutUint64(v, 5)
		return b.Put([]byte(long), v)
	})
	cp := writeFile(t, "cp.note", string(f.root.Note))
	out, _, err := run(t, "", []string{"LEDGER_VERIFIER_KEY=" + f.verifierKey}, "verify", "--store", store, "--checkpoint", cp)
	want := fmt.Sprintf("index of stream %q: the index says head revision 5 at position", long)
	if exitCode(err) != 1 || !strings.Contains(out, "verdict:      BROKEN") || !strings.Contains(out, want) ||
		!strings.Contains(out, fmt.Sprintf("the log says head revision %d at position", counts[long]-1)) {
		t.Errorf("verify: %v\n%s\nwant BROKEN, %q", err, out, want)
	}
}

// TestVerifyDetectsTampering alters the store file the way someone with the
// file would, and expects verify to fail and say where.
func TestVerifyDetectsTampering(t *testing.T) {
	f := getFixture(t)
	evs := readEvents(t, f.path)
	// Two neighbours in different streams, early in the log.
	swap := 10
	for evs[swap].Stream == evs[swap+1].Stream {
		swap++
	}
	n := uint64(len(evs))
	for _, tc := range []struct {
		name  string
		edit  func(log *bbolt.Bucket) error
		wants []string // in the error message
	}{
		{"a byte of a payload altered", func(log *bbolt.Bucket) error {
			v := append([]byte(nil), log.Get(posKey(100))...)
			v[len(v)-1] ^= 0x01
			return log.Put(posKey(100), v)
		}, []string{"hash-link at position 100", "hash does not match"}},
		{"a commit time altered", func(log *bbolt.Bucket) error {
			v := append([]byte(nil), log.Get(posKey(50))...)
			binary.BigEndian.PutUint64(v[25:], binary.BigEndian.Uint64(v[25:])+1e9)
			return log.Put(posKey(50), v)
		}, []string{"merkle-root at positions 1 to", "altered, removed, inserted or reordered"}},
		{"an event deleted", func(log *bbolt.Bucket) error { return log.Delete(posKey(200)) }, []string{"missing: position 200 missing (the next event is at position 201)", "BROKEN"}},
		{"two events reordered", func(log *bbolt.Bucket) error {
			a := append([]byte(nil), log.Get(posKey(uint64(swap+1)))...)
			b := append([]byte(nil), log.Get(posKey(uint64(swap+2)))...)
			if err := log.Put(posKey(uint64(swap+1)), b); err != nil {
				return err
			}
			return log.Put(posKey(uint64(swap+2)), a)
		}, []string{"merkle-root"}},
		{"truncated", func(log *bbolt.Bucket) error {
			for p := n - 5; p <= n; p++ {
				if err := log.Delete(posKey(p)); err != nil {
					return err
				}
			}
			return nil
		}, []string{"truncated", "events were removed or the log truncated"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := copyStore(t)
			editLog(t, store, tc.edit)
			cp := writeFile(t, "cp.note", string(f.root.Note))
			out, _, err := run(t, "", []string{"LEDGER_VERIFIER_KEY=" + f.verifierKey}, "verify", "--store", store, "--checkpoint", cp)
			if exitCode(err) != 1 {
				t.Fatalf("verify of a tampered log: %v; want exit 1\n%s", err, out)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error()+"\n"+out, w) {
					t.Errorf("verify says\n%v\n%s\nwant it to mention %q", err, out, w)
				}
			}
		})
	}
}

func TestVerifyDetectsShorterRewrittenLog(t *testing.T) {
	// A log replaced by a shorter one that is consistent in itself (links,
	// index, everything) verifies on its own; only the checkpoint saved
	// earlier shows the loss.
	f := getFixture(t)
	evs := readEvents(t, f.path)
	store := filepath.Join(t.TempDir(), "ledger.db")
	s, err := bolt.Open(store, bolt.Options{InitialMmapSize: 1 << 24})
	if err != nil {
		t.Fatal(err)
	}
	evs = evs[:len(evs)-4]
	for i := 0; i < len(evs); {
		j := i + 1
		for j < len(evs) && evs[j].Stream == evs[i].Stream {
			j++
		}
		batch := make([]events.EventData, 0, j-i)
		for _, e := range evs[i:j] {
			batch = append(batch, e.EventData)
		}
		if _, err := s.Append(ctxT(t), evs[i].Stream, events.Any, batch...); err != nil {
			t.Fatal(err)
		}
		i = j
	}
	s.Close()
	// On its own it holds together, and nothing anchors it.
	if out, _, err := run(t, "", nil, "verify", "--store", store); exitCode(err) != 3 || !strings.Contains(out, "verdict:      UNANCHORED") {
		t.Fatalf("the shorter log on its own: %v; want it UNANCHORED, exit 3\n%s", err, out)
	}
	cp := writeFile(t, "cp.note", string(f.root.Note))
	_, _, err = run(t, "", []string{"LEDGER_VERIFIER_KEY=" + f.verifierKey}, "verify", "--store", store, "--checkpoint", cp)
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("verify against the saved checkpoint: %v; want truncated", err)
	}
}

func TestVerifyOutputShowsWhere(t *testing.T) {
	f := getFixture(t)
	store := copyStore(t)
	editLog(t, store, func(log *bbolt.Bucket) error {
		v := append([]byte(nil), log.Get(posKey(50))...)
		binary.BigEndian.PutUint64(v[25:], binary.BigEndian.Uint64(v[25:])+1e9)
		return log.Put(posKey(50), v)
	})
	out, _, err := run(t, "", []string{"LEDGER_VERIFIER_KEY=" + f.verifierKey}, "verify", "--store", store)
	if exitCode(err) != 1 || !strings.Contains(out, "verdict:      BROKEN") ||
		!strings.Contains(out, fmt.Sprintf("merkle-root at positions 1 to %d: the tree of the first %d events does not have the root of the checkpoint (recorded at position %d)", f.size, f.size, f.size+1)) {
		t.Errorf("verify: %v\n%s", err, out)
	}
}

// editStore edits a store file with bbolt directly, all its buckets.
func editStore(t *testing.T, path string, edit func(tx *bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(edit); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyDamagedStore overwrites a page id in the log bucket's branch
// pages with one far outside the file: bbolt follows it into unmapped
// memory. verify gives a verdict, not a Go stack trace: at Open (the last
// leaf, which Open reads) or where the walk stops (a middle one), with the
// events before it walked.
func TestVerifyDamagedStore(t *testing.T) {
	f := getFixture(t)
	for _, tc := range []struct {
		name  string
		last  bool
		wants []string
	}{
		{"the last leaf", true, []string{"verify: the log is BROKEN: the store file cannot be read", "is damaged"}},
		{"a middle leaf", false, []string{"verdict:      BROKEN", "unreadable at position", "the store cannot read the event at this position"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := copyStore(t)
			var root uint64
			var pageSize int
			db, err := bbolt.Open(store, 0o600, &bbolt.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			pageSize = db.Info().PageSize
			db.View(func(tx *bbolt.Tx) error { root = uint64(tx.Bucket([]byte("log")).Root()); return nil })
			db.Close()
			raw, err := os.ReadFile(store)
			if err != nil {
				t.Fatal(err)
			}
			// bbolt's pages: a 16-byte header (id uint64, flags uint16,
			// count uint16, ...), then a branch's 16-byte elements (pos,
			// ksize uint32, child page id uint64). Descend to the bottom
			// branch along the last (or first) elements, and point its
			// last (or second) element outside the file.
			for id := root; ; {
				p := raw[int(id)*pageSize:]
				if p[8]&0x01 == 0 {
					t.Fatalf("page %d is not a branch page: the store is too small", id)
				}
				count := int(binary.LittleEndian.Uint16(p[10:]))
				i := 0
				if tc.last {
					i = count - 1
				}
				off := int(id)*pageSize + 16 + 16*i + 8
				child := binary.LittleEndian.Uint64(raw[off:])
				if raw[int(child)*pageSize+8]&0x01 == 0 { // a leaf
					if !tc.last {
						off += 16
					}
					binary.LittleEndian.PutUint64(raw[off:], 1<<32)
					break
				}
				id = child
			}
			if err := os.WriteFile(store, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			out, _, err := run(t, "", []string{"LEDGER_VERIFIER_KEY=" + f.verifierKey}, "verify", "--store", store)
			if exitCode(err) != 1 {
				t.Fatalf("verify of a damaged store: %v; want exit 1\n%s", err, out)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error()+"\n"+out, w) {
					t.Errorf("verify says\n%v\n%s\nwant it to mention %q", err, out, w)
				}
			}
		})
	}
}
