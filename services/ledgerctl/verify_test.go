package ledgerctl

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
)

func TestVerifyIntactLog(t *testing.T) {
	f := getFixture(t)
	store := copyStore(t)
	cp := writeFile(t, "cp.note", string(f.root.Note))
	out, _, err := run(t, "", []string{"LEDGER_VERIFIER_KEY=" + f.verifierKey}, "verify", "--store", store, "--checkpoint", cp)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	if !strings.Contains(out, "verdict:      OK") || !strings.Contains(out, "1 given and 1 in the log match") {
		t.Errorf("verify output:\n%s", out)
	}
	out, _, err = run(t, "", nil, "verify", "--store", store, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep verifyJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.OK || rep.Events != f.size+1 || rep.Unchecked != 1 {
		t.Errorf("verify --json = %+v, %v", rep, err)
	}
	if _, _, err := run(t, "", nil, "verify", "--store", store, "--checkpoint", cp); exitCode(err) != 2 {
		t.Errorf("verify --checkpoint without a key: %v; want a usage error", err)
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
		{"an event deleted", func(log *bbolt.Bucket) error { return log.Delete(posKey(200)) }, []string{"hash-link", "BROKEN"}},
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
	if out, _, err := run(t, "", nil, "verify", "--store", store); err != nil {
		t.Fatalf("the shorter log on its own should verify: %v\n%s", err, out)
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
