package merkle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events"
)

func TestTreeMatchesTlog(t *testing.T) {
	var stored []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	var tr Tree
	for n := int64(0); n <= 300; n++ {
		want, err := tlog.TreeHash(n, r)
		if err != nil {
			t.Fatal(err)
		}
		if got := tr.Root(); got != want {
			t.Fatalf("Tree.Root() at size %d = %v; want tlog.TreeHash %v", n, got, want)
		}
		leaf := tlog.RecordHash([]byte(fmt.Sprint("leaf ", n)))
		hs, err := tlog.StoredHashesForRecordHash(n, leaf, r)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
		tr.Append(leaf)
	}
}

// TestLeafFormat freezes the leaf encoding: a change breaks every
// checkpoint ever issued.
func TestLeafFormat(t *testing.T) {
	l := Leaf{Position: 42, Stream: "trainee-abc", Revision: 3, Committed: time.Date(2025, 9, 1, 8, 30, 0, 123456789, time.UTC), Hash: sha256.Sum256([]byte("x"))}
	data := l.AppendData(nil)
	want := "737562736964792d6c65646765722f6d65726b6c652d6c6561662f763100" + // domain
		"000000000000002a" + "000000000000000b" + hex.EncodeToString([]byte("trainee-abc")) +
		"0000000000000003" + fmt.Sprintf("%016x", l.Committed.UnixNano()) + hex.EncodeToString(l.Hash[:])
	if got := hex.EncodeToString(data); got != want {
		t.Errorf("leaf data\n got %s\nwant %s", got, want)
	}
	if got, want := l.RecordHash(), tlog.RecordHash(data); got != want {
		t.Errorf("RecordHash() = %v; want tlog.RecordHash(data) %v", got, want)
	}
}

func TestSealerProofs(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t)
	fill(t, s, 0, 100)
	sl, err := OpenSealer(filepath.Join(dir, "tree.db"), s, SealerOptions{MaxBatch: 16})
	if err != nil {
		t.Fatal(err)
	}
	stop := runIn(t, sl)
	if got := sealAll(t, sl, s); got != 100 {
		t.Fatalf("sealed size %d; want 100", got)
	}
	fill(t, s, 100, 37) // live, after the catch-up
	size := sealAll(t, sl, s)
	evs := readAll(t, s)
	if size != int64(len(evs)) {
		t.Fatalf("sealed %d of %d events", size, len(evs))
	}
	tr := treeOf(evs, len(evs))
	if _, _, root := sl.Sealed(); root != tr.Root() {
		t.Fatalf("sealed root %v; recomputed %v", root, tr.Root())
	}
	heads := map[int64]Checkpoint{}
	for _, n := range []int64{1, 2, 7, 64, 100, 137} {
		c, err := sl.TreeHead(n)
		if err != nil {
			t.Fatal(err)
		}
		tn := treeOf(evs, int(n))
		if c.Root != tn.Root() {
			t.Fatalf("TreeHead(%d) = %v; want %v", n, c.Root, tn.Root())
		}
		heads[n] = c
	}
	for _, n := range []int64{1, 7, 64, 137} {
		for _, i := range []int{0, 1, 5, 63, 99, 136} {
			if int64(i) >= n {
				continue
			}
			p, err := sl.InclusionProof(ctxT(t), evs[i].Position, n)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", evs[i].Position, n, err)
			}
			if err := CheckInclusion(heads[n], p); err != nil {
				t.Errorf("CheckInclusion(size %d, leaf %d): %v", n, i, err)
			}
			if err := p.Leaf.Matches(&evs[i]); err != nil {
				t.Errorf("leaf %d does not match its event: %v", i, err)
			}
			if i > 0 {
				if err := p.Leaf.Matches(&evs[i-1]); err == nil {
					t.Errorf("leaf %d matches event %d", i, i-1)
				}
			}
		}
	}
	for _, pair := range [][2]int64{{1, 2}, {1, 137}, {7, 64}, {64, 100}, {100, 137}, {137, 137}} {
		p, err := sl.ConsistencyProof(pair[0], pair[1])
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckConsistency(heads[pair[0]], heads[pair[1]], p); err != nil {
			t.Errorf("CheckConsistency(%d, %d): %v", pair[0], pair[1], err)
		}
		if pair[0] < pair[1] {
			if err := CheckConsistency(heads[pair[0]], Checkpoint{Size: pair[1], Root: heads[pair[0]].Root}, p); !errors.Is(err, ErrBadProof) {
				t.Errorf("CheckConsistency against a wrong root = %v; want ErrBadProof", err)
			}
		}
	}
	if _, err := sl.InclusionProof(ctxT(t), evs[len(evs)-1].Position+1, 0); !errors.Is(err, ErrNotSealed) {
		t.Errorf("InclusionProof(beyond the log) = %v; want ErrNotSealed", err)
	}
	if _, err := sl.ConsistencyProof(1, 1000); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("ConsistencyProof(1, 1000) = %v; want ErrInvalidArgument", err)
	}

	// Restart: the sealer resumes where it was and keeps up.
	stop()
	if err := sl.Close(); err != nil {
		t.Fatal(err)
	}
	fill(t, s, 137, 20)
	sl = runSealer(t, filepath.Join(dir, "tree.db"), s)
	size = sealAll(t, sl, s)
	evs = readAll(t, s)
	tr = treeOf(evs, len(evs))
	if _, _, root := sl.Sealed(); size != 157 || root != tr.Root() {
		t.Fatalf("after restart: size %d root %v; want 157 %v", size, root, tr.Root())
	}
	st := sl.Stats()
	if st.Size != 157 || st.Position != evs[156].Position {
		t.Errorf("Stats() = %+v", st)
	}
}

// runIn runs sl in the background; the returned func stops it.
func runIn(t *testing.T, sl *Sealer) func() {
	t.Helper()
	ctx, cancel := ctxWithCancel()
	done := make(chan error, 1)
	go func() { done <- sl.Run(ctx) }()
	var stopped bool
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func TestSealerDetectsReplacedLog(t *testing.T) {
	dir := t.TempDir()
	a := openStore(t)
	fill(t, a, 0, 30)
	path := filepath.Join(dir, "tree.db")
	sl, err := OpenSealer(path, a, SealerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stop := runIn(t, sl)
	sealAll(t, sl, a)
	stop()
	sl.Close()

	for _, tc := range []struct {
		name string
		n    int
		why  string
	}{
		{"truncated", 20, "truncated"},
		{"replaced", 30, "differs"},
	} {
		b := openStore(t)
		fill(t, b, 0, tc.n)
		if tc.name == "replaced" {
			// Same length, another last event.
			b = openStore(t)
			fill(t, b, 0, 29)
			if _, err := b.Append(ctxT(t), "trainee-x", events.Any, events.EventData{ID: events.RandomID(), Type: "test.Event"}); err != nil {
				t.Fatal(err)
			}
		}
		sl, err := OpenSealer(path, b, SealerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		err = sl.Run(ctxT(t))
		sl.Close()
		if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s: Run = %v; want ErrTampered saying %q", tc.name, err, tc.why)
		}
	}
}

func TestCheckpoints(t *testing.T) {
	skey, vkey, err := GenerateKey(nil, "example.org/ledger")
	if err != nil {
		t.Fatal(err)
	}
	sg, err := NewSigner(skey + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if sg.VerifierKey() != vkey {
		t.Fatalf("VerifierKey() = %q; want %q", sg.VerifierKey(), vkey)
	}
	v, err := NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	root := tlog.RecordHash([]byte("root"))
	m, err := sg.Sign(12, root, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(m.SignedNote, "example.org/ledger\n12\n"+root.String()+"\n\n— example.org/ledger ") {
		t.Errorf("signed note:\n%s", m.SignedNote)
	}
	c, err := v.OpenMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != 12 || c.Root != root || c.Origin != "example.org/ledger" {
		t.Errorf("OpenMessage = %v", c)
	}

	_, other, _ := GenerateKey(nil, "example.org/ledger")
	ov, _ := NewVerifier(other)
	forged := strings.Replace(m.SignedNote, "\n12\n", "\n13\n", 1)
	for name, f := range map[string]func() error{
		"altered size": func() error { _, err := v.Open([]byte(forged)); return err },
		"other key":    func() error { _, err := ov.Open([]byte(m.SignedNote)); return err },
		"not a note":   func() error { _, err := v.Open([]byte("hello\n")); return err },
		"field differs": func() error {
			m2 := proto.CloneOf(m)
			m2.TreeSize = 11
			_, err := v.OpenMessage(m2)
			return err
		},
	} {
		if err := f(); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v; want ErrBadSignature", name, err)
		}
	}
	if _, err := NewSigner(vkey); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("NewSigner(verifier key) = %v; want ErrInvalidArgument", err)
	}
	if _, err := ParseBody("o\n-1\nAAAA\n"); err == nil {
		t.Error("ParseBody accepted a negative size")
	}
}

func TestSealerRefusesAnEventThatDoesNotMatchItsLink(t *testing.T) {
	s := openStore(t)
	fill(t, s, 0, 20)
	evs := readAll(t, s)
	evs[12].Data = []byte("altered")
	sl, err := OpenSealer(filepath.Join(t.TempDir(), "tree.db"), &sliceStore{evs: evs}, SealerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	err = sl.Run(ctxT(t))
	if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "position 13") {
		t.Errorf("Run = %v; want ErrTampered at position 13", err)
	}
	if size, _, _ := sl.Sealed(); size > 12 {
		t.Errorf("sealed %d events, past the altered one", size)
	}
}

// synthetic returns n events with valid hash links, in memory.
func synthetic(n int) []events.RecordedEvent {
	evs := make([]events.RecordedEvent, n)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range evs {
		evs[i] = events.RecordedEvent{
			EventData: events.EventData{ID: events.DeriveID("synthetic", fmt.Sprint(i)), Type: "test.Event", Data: []byte(fmt.Sprint("event ", i))},
			Stream:    fmt.Sprintf("trainee-%d", i%17), Position: events.Position(3 * (i + 1)), Created: t0.Add(time.Duration(i) * time.Second),
		}
	}
	relink(evs)
	return evs
}

// TestSealerTopLevels seals a tree deep enough for the in-memory upper
// levels, proves against it, and again after a reopen (which loads them).
func TestSealerTopLevels(t *testing.T) {
	const n = 1500
	evs := synthetic(n)
	st := &sliceStore{evs: evs}
	path := filepath.Join(t.TempDir(), "tree.db")
	check := func(sl *Sealer) {
		t.Helper()
		for _, size := range []int64{256, 511, 512, 1024, 1300, n} {
			tr := treeOf(evs, int(size))
			c := Checkpoint{Size: size, Root: tr.Root()}
			for _, i := range []int{0, 255, 256, 700, int(size) - 1} {
				if int64(i) >= size {
					continue
				}
				p, err := sl.InclusionProof(ctxT(t), evs[i].Position, size)
				if err != nil {
					t.Fatal(err)
				}
				if err := CheckInclusion(c, p); err != nil {
					t.Errorf("size %d leaf %d: %v", size, i, err)
				}
			}
			if size < n {
				p, err := sl.ConsistencyProof(size, n)
				if err != nil {
					t.Fatal(err)
				}
				full := treeOf(evs, n)
				if err := CheckConsistency(c, Checkpoint{Size: n, Root: full.Root()}, p); err != nil {
					t.Errorf("consistency %d..%d: %v", size, n, err)
				}
			}
		}
	}
	sl, err := OpenSealer(path, st, SealerOptions{MaxBatch: 100})
	if err != nil {
		t.Fatal(err)
	}
	stop := runIn(t, sl)
	if _, err := sl.WaitSealed(ctxT(t), evs[n-1].Position); err != nil {
		t.Fatal(err)
	}
	if len(sl.top.levels) != 3 || len(sl.top.levels[0]) != n>>8 {
		t.Fatalf("top levels %d", len(sl.top.levels))
	}
	check(sl)
	stop()
	sl.Close()
	sl, err = OpenSealer(path, st, SealerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	if len(sl.top.levels) != 3 || len(sl.top.levels[0]) != n>>8 || len(sl.top.levels[2]) != n>>10 {
		t.Fatalf("top levels after reopen: %d", len(sl.top.levels))
	}
	check(sl)
}

// A sealer behind the log does not linger between reads, even when its
// subscription hands over fewer than MaxBatch events at a time (here one):
// only commits younger than Linger are waited for.
func TestSealerBehindTheLogDoesNotLinger(t *testing.T) {
	s := openStore(t)
	fill(t, s, 0, 50)
	evs := readAll(t, s)
	for i := range evs {
		evs[i].Created = evs[i].Created.Add(-time.Hour)
	}
	st := &sliceStore{evs: evs}
	sl, err := OpenSealer(filepath.Join(t.TempDir(), "tree.db"), st, SealerOptions{Linger: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	runIn(t, sl)
	if size := sealAll(t, sl, st); size != 50 {
		t.Fatalf("sealed %d events, want 50", size)
	}
	if b := sl.Stats().Batches; b < 2 {
		t.Fatalf("%d commits: the subscription handed over one event at a time", b)
	}
}

// TestSealerLinger: once caught up, a sealer with a linger seals what
// commits meanwhile in one transaction, and the tree is the one a sealer
// without linger builds from the same log.
func TestSealerLinger(t *testing.T) {
	const linger = 300 * time.Millisecond
	s := openStore(t)
	fill(t, s, 0, 10)
	dir := t.TempDir()
	sl, err := OpenSealer(filepath.Join(dir, "linger.db"), s, SealerOptions{Linger: linger})
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	runIn(t, sl)
	sealAll(t, sl, s)
	before := sl.Stats().Batches
	start := time.Now()
	for i := range 60 { // 60 store commits, one event each
		fill(t, s, 10+i, 1)
	}
	elapsed := time.Since(start)
	size := sealAll(t, sl, s)
	if size != 70 {
		t.Fatalf("sealed %d events, want 70", size)
	}
	// A read at most every linger, plus the one in hand when the appends
	// began and the one that follows the last wait.
	commits := sl.Stats().Batches - before
	if most := uint64(elapsed/linger) + 3; commits > most || commits == 0 {
		t.Fatalf("%d commits sealed 60 store commits made in %v: want 1 to %d with a linger of %v", commits, elapsed, most, linger)
	}
	plain := runSealer(t, filepath.Join(dir, "plain.db"), s)
	if sealAll(t, plain, s) != 70 {
		t.Fatal("the sealer without linger did not seal 70 events")
	}
	_, _, a := sl.Sealed()
	_, _, b := plain.Sealed()
	if a != b {
		t.Fatalf("root with linger %x, without %x", a, b)
	}
	t.Logf("60 store commits in %v sealed in %d commits", elapsed, commits)
}
