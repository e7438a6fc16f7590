package ledgerctl

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/merkle"
	"github.com/cqhrss/subsidyledger/projections/gen"
)

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// run runs ledgerctl with env (NAME=value pairs) and returns stdout,
// stderr and the error.
func run(t *testing.T, stdin string, env []string, args ...string) (string, string, error) {
	t.Helper()
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	var out, errb bytes.Buffer
	err := Run(ctxT(t), args, func(k string) string { return vars[k] }, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return -1
}

// fixture is a realistic log (projections/gen) with a checkpoint of it
// recorded in the log, made once per test binary.
type fixture struct {
	path        string // the template store file: copy it, do not open it
	signerKey   string
	verifierKey string
	size        int64 // events before the recorded checkpoint
	root        merkle.Checkpoint
}

var (
	fixOnce sync.Once
	fix     fixture
	fixErr  error
)

func getFixture(t *testing.T) fixture {
	t.Helper()
	fixOnce.Do(func() { fix, fixErr = makeFixture() })
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

func makeFixture() (fixture, error) {
	dir, err := os.MkdirTemp("", "ledgerctl-test")
	if err != nil {
		return fixture{}, err
	}
	f := fixture{path: filepath.Join(dir, "ledger.db")}
	s, err := bolt.Open(f.path, bolt.Options{InitialMmapSize: 1 << 24})
	if err != nil {
		return f, err
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := gen.Append(ctx, s, gen.Config{Seed: 3, Trainees: 40, FirstYear: 2025, LastYear: 2025}, gen.AppendOptions{Parallel: 4}); err != nil {
		return f, err
	}
	if f.signerKey, f.verifierKey, err = merkle.GenerateKey(nil, "test.example/ledger"); err != nil {
		return f, err
	}
	sg, err := merkle.NewSigner(f.signerKey)
	if err != nil {
		return f, err
	}
	var tr merkle.Tree
	for after := events.Start; ; {
		page, err := s.ReadAll(ctx, after, 1000)
		if err != nil {
			return f, err
		}
		if len(page) == 0 {
			break
		}
		for i := range page {
			tr.Append(merkle.LeafHash(&page[i]))
		}
		after = page[len(page)-1].Position
	}
	f.size = tr.Size()
	cp, err := sg.Sign(tr.Size(), tr.Root(), time.Now())
	if err != nil {
		return f, err
	}
	f.root = merkle.Checkpoint{Origin: sg.Origin(), Size: tr.Size(), Root: tr.Root(), Note: []byte(cp.GetSignedNote())}
	ev, err := merkle.CheckpointEvent(cp)
	if err != nil {
		return f, err
	}
	_, err = s.Append(ctx, merkle.CheckpointStream, events.Any, ev)
	return f, err
}

// copyStore copies the fixture's store file into the test's directory.
func copyStore(t *testing.T) string {
	t.Helper()
	f := getFixture(t)
	b, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ledger.db")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// editLog edits a store file's log bucket directly with bbolt, as a
// tamperer with access to the file would.
func editLog(t *testing.T, path string, edit func(log *bbolt.Bucket) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bbolt.Tx) error { return edit(tx.Bucket([]byte("log"))) }); err != nil {
		t.Fatal(err)
	}
}

func posKey(p uint64) []byte { return binary.BigEndian.AppendUint64(nil, p) }

// readEvents reads a store file's whole log.
func readEvents(t *testing.T, path string) []events.RecordedEvent {
	t.Helper()
	s, err := bolt.Open(path, bolt.Options{InitialMmapSize: 1 << 24})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out []events.RecordedEvent
	for after := events.Start; ; {
		page, err := s.ReadAll(ctxT(t), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Position
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
