package merkle

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events/esdb"
	"github.com/cqhrss/subsidyledger/events/esdb/esdbtest"
)

// TestSealerOnEventStoreDB seals a log whose positions are sparse (the
// EventStoreDB backend, against its in-process stand-in).
func TestSealerOnEventStoreDB(t *testing.T) {
	si := esdbtest.NewStandIn()
	if err := si.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(si.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := esdb.Open(ctx, si.URL(), esdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	fill(t, s, 0, 60)
	sl := runSealer(t, filepath.Join(t.TempDir(), "tree.db"), s)
	size := sealAll(t, sl, s)
	fill(t, s, 60, 15)
	size = sealAll(t, sl, s)
	evs := readAll(t, s)
	if size != int64(len(evs)) || evs[1].Position == evs[0].Position+1 {
		t.Fatalf("sealed %d of %d events; positions %d, %d (want sparse)", size, len(evs), evs[0].Position, evs[1].Position)
	}
	tr := treeOf(evs, len(evs))
	head, err := sl.TreeHead(0)
	if err != nil || head.Root != tr.Root() {
		t.Fatalf("sealed root %v, %v; recomputed %v", head.Root, err, tr.Root())
	}
	for _, i := range []int{0, 37, len(evs) - 1} {
		p, err := sl.InclusionProof(ctx, evs[i].Position, 0)
		if err != nil {
			t.Fatal(err)
		}
		if p.LeafIndex != int64(i) || CheckInclusion(head, p) != nil {
			t.Errorf("event %d at position %d: leaf %d, %v", i, evs[i].Position, p.LeafIndex, CheckInclusion(head, p))
		}
	}
	if _, err := sl.InclusionProof(ctx, evs[5].Position+1, 0); CodeOf(err) != CodeNotSealed {
		t.Errorf("a position between events: %v; want ErrNotSealed", err)
	}
	rep, err := VerifyLog(ctx, s, VerifyOptions{Trusted: []Checkpoint{head}})
	if err != nil || rep.Verdict() != VerdictOK {
		t.Fatalf("VerifyLog: %v, verdict %s, %v", err, rep.Verdict(), rep.Problems)
	}
}
