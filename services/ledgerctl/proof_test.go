package ledgerctl

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/merkle"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/auditapi"
)

func TestKeygen(t *testing.T) {
	out, _, err := run(t, "", nil, "keygen", "--name", "example.org/l")
	if err != nil || !strings.Contains(out, "PRIVATE+KEY+example.org/l+") {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	prefix := filepath.Join(t.TempDir(), "ck")
	if _, _, err := run(t, "", nil, "keygen", "--out", prefix); err != nil {
		t.Fatal(err)
	}
	skey, _ := os.ReadFile(prefix + ".key")
	vkey, _ := os.ReadFile(prefix + ".pub")
	sg, err := merkle.NewSigner(string(skey))
	if err != nil || sg.VerifierKey() != strings.TrimSpace(string(vkey)) || sg.Origin() != merkle.DefaultOrigin {
		t.Fatalf("keygen --out wrote keys that do not pair: %v", err)
	}
	if fi, _ := os.Stat(prefix + ".key"); fi.Mode().Perm() != 0o600 {
		t.Errorf("signer key file mode %v; want 0600", fi.Mode().Perm())
	}
	if _, _, err := run(t, "", nil, "keygen", "--out", prefix); exitCode(err) != 2 {
		t.Errorf("keygen over existing keys: %v; want a usage error", err)
	}
}

// sealed runs a sealer over a copy of the fixture's store and returns it
// with the store.
func sealed(t *testing.T) (*merkle.Sealer, *bolt.Store) {
	t.Helper()
	s, err := bolt.Open(copyStore(t), bolt.Options{InitialMmapSize: 1 << 24})
	if err != nil {
		t.Fatal(err)
	}
	sl, err := merkle.OpenSealer(filepath.Join(t.TempDir(), "tree.db"), s, merkle.SealerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		sl.Close()
		s.Close()
	})
	head, _ := s.Head(ctxT(t))
	if _, err := sl.WaitSealed(ctxT(t), head); err != nil {
		t.Fatal(err)
	}
	return sl, s
}

func TestProveOffline(t *testing.T) {
	f := getFixture(t)
	sl, _ := sealed(t)
	env := []string{"LEDGER_VERIFIER_KEY=" + f.verifierKey}
	cp := writeFile(t, "cp.note", string(f.root.Note))

	p, err := sl.InclusionProof(ctxT(t), 123, f.size)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p)
	pf := writeFile(t, "p.json", string(b))
	out, _, err := run(t, "", env, "prove", "inclusion", "--checkpoint", cp, "--proof", pf)
	if err != nil || !strings.Contains(out, "proved: the event at position 123") {
		t.Fatalf("prove inclusion: %v\n%s", err, out)
	}
	// An altered proof, leaf or checkpoint fails.
	p.Leaf.Revision++
	b, _ = json.Marshal(p)
	if _, _, err := run(t, "", env, "prove", "inclusion", "--checkpoint", cp, "--proof", writeFile(t, "bad.json", string(b))); exitCode(err) != 1 {
		t.Errorf("an altered leaf proved: %v", err)
	}
	forged := strings.Replace(string(f.root.Note), "\n"+strconv.FormatInt(f.size, 10)+"\n", "\n"+strconv.FormatInt(f.size-1, 10)+"\n", 1)
	if _, _, err := run(t, "", env, "prove", "inclusion", "--checkpoint", writeFile(t, "forged.note", forged), "--proof", pf); exitCode(err) != 1 || !strings.Contains(err.Error(), "signature") {
		t.Errorf("a forged checkpoint was accepted: %v", err)
	}

	// Consistency of the fixture's checkpoint with a later one.
	sg, _ := merkle.NewSigner(f.signerKey)
	size, _, root := sl.Sealed()
	later, _ := sg.Sign(size, root, time.Now())
	lf := writeFile(t, "later.json", protojson.Format(later))
	cproof, err := sl.ConsistencyProof(f.size, size)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(cproof)
	out, _, err = run(t, "", env, "prove", "consistency", "--old", cp, "--new", lf, "--proof", writeFile(t, "c.json", string(b)))
	if err != nil || !strings.Contains(out, "consistent") {
		t.Fatalf("prove consistency: %v\n%s", err, out)
	}
	// A checkpoint of the same size with another root is caught.
	other, _ := sg.Sign(f.size, root, time.Now())
	_, _, err = run(t, "", env, "prove", "consistency", "--old", cp, "--new", writeFile(t, "other.json", protojson.Format(other)))
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "rewritten") {
		t.Errorf("two roots for one size: %v", err)
	}

	// checkpoint --store shows the log's last checkpoint.
	out, _, err = run(t, "", env, "checkpoint", "--store", copyStore(t), "--out", filepath.Join(t.TempDir(), "saved.note"))
	if err != nil || !strings.Contains(out, "checkpoint: "+group(uint64(f.size))+" events") {
		t.Errorf("checkpoint --store: %v\n%s", err, out)
	}
}

// auditHandler serves the audit endpoints as ledgerd does (a reference for
// its wiring).
func auditHandler(sl *merkle.Sealer, cps *merkle.Checkpointer) http.Handler {
	return auditapi.Handler(sl, cps, "")
}

func TestCheckpointAndProveAgainstServer(t *testing.T) {
	f := getFixture(t)
	sl, s := sealed(t)
	sg, _ := merkle.NewSigner(f.signerKey)
	cps := merkle.NewCheckpointer(merkle.CheckpointerConfig{Sealer: sl, Signer: sg,
		Publish: func(ctx context.Context, cp *subsidyv1.AuditCheckpoint) (events.Position, error) {
			ev, err := merkle.CheckpointEvent(cp)
			if err != nil {
				return 0, err
			}
			r, err := s.Append(ctx, merkle.CheckpointStream, events.Any, ev)
			return r.Position, err
		}})
	srv := httptest.NewServer(auditHandler(sl, cps))
	defer srv.Close()
	env := []string{"LEDGER_VERIFIER_KEY=" + f.verifierKey, "LEDGER_SERVER=" + srv.URL}
	dir := t.TempDir()
	saved := writeFile(t, "saved.note", string(f.root.Note))

	if _, _, err := run(t, "", env, "checkpoint"); exitCode(err) != 1 || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("checkpoint before any: %v", err)
	}
	out, _, err := run(t, "", env, "checkpoint", "--new", "--since", saved, "--out", filepath.Join(dir, "new.note"))
	if err != nil || !strings.Contains(out, "consistent: the tree of") {
		t.Fatalf("checkpoint --new --since: %v\n%s", err, out)
	}
	out, _, err = run(t, "", env, "prove", "inclusion", "--checkpoint", filepath.Join(dir, "new.note"), "--position", "42", "--out", filepath.Join(dir, "p.json"))
	if err != nil || !strings.Contains(out, "proved: the event at position 42") {
		t.Fatalf("prove inclusion --server: %v\n%s", err, out)
	}
	out, _, err = run(t, "", env, "prove", "consistency", "--old", saved, "--new", filepath.Join(dir, "new.note"))
	if err != nil || !strings.Contains(out, "consistent") {
		t.Fatalf("prove consistency --server: %v\n%s", err, out)
	}
	// A checkpoint of another log is refused.
	_, other, _ := merkle.GenerateKey(nil, "test.example/ledger")
	if _, _, err := run(t, "", []string{"LEDGER_VERIFIER_KEY=" + other, "LEDGER_SERVER=" + srv.URL}, "checkpoint"); exitCode(err) != 1 {
		t.Errorf("checkpoint with another key: %v; want exit 1", err)
	}
}
