package projections

import (
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// gcSettings reads the collector's percent and memory limit.
func gcSettings() (int, int64) {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p, debug.SetMemoryLimit(-1)
}

// Restores that overlap keep the collector off until the last ends, under
// a memory limit that grows with each snapshot and never passes the
// process's own; then the settings are what they were.
func TestPauseGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(150))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))

	a := pauseGC(100 << 20)
	pa, la := gcSettings()
	b := pauseGC(200 << 20)
	pb, lb := gcSettings()
	if pa != -1 || pb != -1 {
		t.Fatalf("GC percent during restores %d, %d; want -1 (off)", pa, pb)
	}
	if want := la + restoreBudget*200<<20 + 64<<20; lb != want || la < restoreBudget*100<<20 {
		t.Fatalf("memory limits %d then %d; want at least %d, then %d", la, lb, restoreBudget*100<<20, want)
	}
	a()
	a() // once only
	if p, l := gcSettings(); p != -1 || l != lb {
		t.Fatalf("after the first restore ended: percent %d, limit %d; want -1, %d", p, l, lb)
	}
	b()
	if p, l := gcSettings(); p != 150 || l != math.MaxInt64 {
		t.Fatalf("after both ended: percent %d, limit %d; want 150, no limit", p, l)
	}

	// The process's own limit, lower, stands.
	debug.SetMemoryLimit(50 << 20)
	c := pauseGC(1 << 30)
	if p, l := gcSettings(); p != -1 || l != 50<<20 {
		t.Fatalf("under GOMEMLIMIT 50 MiB: percent %d, limit %d; want -1, 50 MiB", p, l)
	}
	c()
	if p, l := gcSettings(); p != 150 || l != 50<<20 {
		t.Fatalf("after: percent %d, limit %d; want 150, 50 MiB", p, l)
	}
}

// gcProbe records the collector's percent while it is restored.
type gcProbe struct {
	blob
	during int
}

func (g *gcProbe) Restore(r io.Reader) error {
	g.during, _ = gcSettings()
	return g.blob.Restore(r)
}

// Checkpoints.Restore pauses the collector while the snapshot is read,
// and puts it back whether the restore succeeds or finds damage.
func TestRestorePausesGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	c := openCheckpoints(t)
	cp := saved(t, c, randomBytes(1000))
	for _, damaged := range []bool{false, true} {
		if damaged {
			if err := os.WriteFile(filepath.Join(c.Dir(), cp.File), randomBytes(999), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		g := &gcProbe{}
		err := c.Restore(g, cp)
		if p, _ := gcSettings(); g.during != -1 || p != 100 || (err != nil) != damaged {
			t.Errorf("damaged %v: percent %d during the restore, %d after, err %v; want -1, 100", damaged, g.during, p, err)
		}
	}
}
