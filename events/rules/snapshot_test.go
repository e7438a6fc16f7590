package rules_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"

	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/events/snap"
)

// snapshotOf writes w's snapshot.
func snapshotOf(t testing.TB, w *rules.World) []byte {
	t.Helper()
	var b bytes.Buffer
	sw := snap.NewWriter(&b)
	w.Snapshot(sw)
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func restore(rs rules.RuleSet, b []byte) (*rules.World, error) {
	r := snap.NewReader(bytes.NewReader(b))
	r.SetSize(int64(len(b)))
	return rules.RestoreWorld(rs, r)
}

// A World restored from a snapshot equals the World it was taken of, field
// by field (compacted, as a restored World is), and stays equal as the rest
// of the log is folded into both: records the World reaches through two
// paths (an enrolment through its id and its trainee) are shared again, so
// a later event that changes one through one path is seen through the
// other.
func TestSnapshotRestoresTheWorld(t *testing.T) {
	rs := rules.DefaultRuleSet()
	rs.PassRateWindow, rs.SharedAccountThreshold, rs.Version = 3, 2, "prop"
	seeds := 12
	if testing.Short() {
		seeds = 4
	}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		g, _ := history(t, seed, 600, rs)
		log := g.f.l.log
		r := rand.New(rand.NewPCG(seed, 3))
		for _, cut := range []int{0, r.IntN(len(log)), r.IntN(len(log)), len(log)} {
			a := replay(t, rs, log[:cut])
			b, err := restore(rs, snapshotOf(t, a))
			if err != nil {
				t.Fatalf("seed %d, cut %d: %v", seed, cut, err)
			}
			c := replay(t, rs, log[:cut])
			c.Compact()
			if !reflect.DeepEqual(c, b) {
				t.Fatalf("seed %d: the World restored at %d of %d events differs from the one snapshotted", seed, cut, len(log))
			}
			applyAll(t, a, log[cut:])
			applyAll(t, b, log[cut:])
			a.Compact()
			b.Compact()
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("seed %d: restored at %d of %d events, then folded to the end, the World differs from one folded throughout", seed, cut, len(log))
			}
		}
	}
}

// A restore reads the applied ids and natural keys straight into memory
// where their layout allows (it does on amd64 and arm64), and record by
// record elsewhere: both give the World snapshotted.
func TestRestoreReadsEntriesEitherWay(t *testing.T) {
	rs := rules.DefaultRuleSet()
	g, _ := history(t, 5, 600, rs)
	w := replay(t, rs, g.f.l.log)
	b := snapshotOf(t, w)
	w.Compact()
	direct := rules.SetDirectLayout(true)
	defer rules.SetDirectLayout(direct)
	if (runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64") && !direct {
		t.Errorf("on %s the entries' layout is not the snapshot's: restores read them record by record", runtime.GOARCH)
	}
	for _, on := range []bool{true, false} {
		rules.SetDirectLayout(on)
		got, err := restore(rs, b)
		if err != nil || !reflect.DeepEqual(got, w) {
			t.Errorf("direct %v: restore = %v, or a World that differs from the one snapshotted", on, err)
		}
	}
}

func TestRestoreRefusesAnotherRuleSetOrVersion(t *testing.T) {
	rs := rules.DefaultRuleSet()
	rs.PassRateWindow, rs.SharedAccountThreshold, rs.Version = 3, 2, "prop"
	g, _ := history(t, 1, 200, rs)
	b := snapshotOf(t, replay(t, rs, g.f.l.log))

	other := rs
	other.PassRateWindow = 4
	if _, err := restore(other, b); !errors.Is(err, rules.ErrSnapshotMismatch) {
		t.Errorf("restoring under another rule set: %v; want ErrSnapshotMismatch", err)
	}
	var old bytes.Buffer
	sw := snap.NewWriter(&old)
	sw.Magic("rules.World", rules.SnapshotVersion-1)
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := restore(rs, old.Bytes()); !errors.Is(err, rules.ErrSnapshotMismatch) {
		t.Errorf("restoring a snapshot of another version: %v; want ErrSnapshotMismatch", err)
	}
}

// A damaged snapshot fails with snap.ErrCorrupt (or, where the damage
// happens to decode, gives some World), never a panic or an allocation
// beyond the input's size.
func TestRestoreOfADamagedSnapshotFails(t *testing.T) {
	rs := rules.DefaultRuleSet()
	g, _ := history(t, 2, 300, rs)
	b := snapshotOf(t, replay(t, rs, g.f.l.log))
	for cut := 0; cut < len(b); cut += 1 + len(b)/97 {
		if _, err := restore(rs, b[:cut]); !errors.Is(err, snap.ErrCorrupt) && !errors.Is(err, rules.ErrSnapshotMismatch) {
			t.Fatalf("a snapshot cut at %d of %d bytes: %v; want ErrCorrupt", cut, len(b), err)
		}
	}
	r := rand.New(rand.NewPCG(2, 2))
	for range 300 {
		d := bytes.Clone(b)
		for range 1 + r.IntN(4) {
			d[r.IntN(len(d))] = byte(r.Uint32())
		}
		_, _ = restore(rs, d) // must not panic
	}
}

func FuzzRestoreWorld(f *testing.F) {
	rs := rules.DefaultRuleSet()
	g, _ := history(f, 3, 60, rs)
	f.Add(snapshotOf(f, replay(f, rs, g.f.l.log)))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := restore(rs, b)
		if err == nil {
			// What decodes must snapshot again.
			_ = snapshotOf(t, w)
		}
	})
}
