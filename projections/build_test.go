package projections_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/projections"
)

// batchTally is a tally that folds runs of events (projections.BatchApplier).
type batchTally struct {
	tally
	batches int
}

func (t *batchTally) ApplyBatch(evs []*projections.Event) (int, error) {
	t.batches++
	for i, ev := range evs {
		if err := t.tally.Apply(ev); err != nil {
			return i, err
		}
	}
	return len(evs), nil
}

// TestBuildStopsAtTheFailingEvent builds one projection that applies event
// by event and one that applies runs; both must report the failing event's
// position and hold exactly the events before it.
func TestBuildStopsAtTheFailingEvent(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "log.db"))
	defer s.Close()
	appendTargets(t, s, 1, 2, 3, 4, 5)
	for _, c := range []struct {
		name string
		p    interface {
			projections.Projection
			state() ([]events.Position, int64)
		}
	}{{"event by event", &tally{}}, {"in runs", &batchTally{}}} {
		t.Run(c.name, func(t *testing.T) {
			switch p := c.p.(type) {
			case *tally:
				p.failOn.Store(4)
			case *batchTally:
				p.failOn.Store(4)
			}
			_, err := projections.Build(context.Background(), s, []projections.Projection{c.p}, projections.BuildOptions{PageSize: 3})
			var be *projections.BuildError
			if !errors.As(err, &be) {
				t.Fatalf("Build = %v; want a *BuildError", err)
			}
			// Target 4 is the seventh event (targets at odd positions).
			if be.Position != 7 || be.Projection != "tally" {
				t.Errorf("stopped at %d in %q; want 7 in tally", be.Position, be.Projection)
			}
			seen, sum := c.p.state()
			if len(seen) != 3 || sum != 1+2+3 {
				t.Errorf("applied %v (sum %d); want the first three targets", seen, sum)
			}
			if bt, ok := c.p.(*batchTally); ok && bt.batches == 0 {
				t.Error("Build did not apply in runs")
			}
		})
	}
}

// TestBuildReadsPagesBeyondItsPool reads many more pages than the build
// keeps in its pool (a page goes back once every projection has applied
// it), with projections and with none, and reaches the head.
func TestBuildReadsPagesBeyondItsPool(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "log.db"))
	defer s.Close()
	vals := make([]int32, 100)
	for i := range vals {
		vals[i] = int32(i + 1)
	}
	appendTargets(t, s, vals...) // 200 events: 100 pages of 2
	head, _ := s.Head(context.Background())
	for _, ps := range [][]projections.Projection{nil, {&tally{}, &batchTally{}}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := projections.Build(ctx, s, ps, projections.BuildOptions{PageSize: 2})
		cancel()
		if err != nil || st.Position != head || st.Events != uint64(head) {
			t.Fatalf("%d projections: Build = %+v, %v; want every event up to %d", len(ps), st, err, head)
		}
		for _, p := range ps {
			if seen, sum := p.(interface {
				state() ([]events.Position, int64)
			}).state(); len(seen) != 100 || sum != 5050 {
				t.Errorf("applied %d targets (sum %d); want 100 (5050)", len(seen), sum)
			}
		}
	}
}
