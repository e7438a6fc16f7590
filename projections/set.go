package projections

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cqhrss/subsidyledger/events"
)

// Set is the runners of a service, one per projection.
type Set struct {
	cfg     Config
	runners []*Runner
	byName  map[string]*Runner
}

// NewSet returns a Set running the projections the factories make, all
// with cfg. Errors: two projections with one name.
func NewSet(cfg Config, fs ...Factory) (*Set, error) {
	cfg = cfg.withDefaults() // one asofSlots for every runner
	s := &Set{cfg: cfg, byName: make(map[string]*Runner, len(fs))}
	for _, f := range fs {
		r := NewRunner(f, cfg)
		if _, dup := s.byName[r.name]; dup {
			return nil, fmt.Errorf("projections: two projections named %q", r.name)
		}
		s.byName[r.name] = r
		s.runners = append(s.runners, r)
	}
	return s, nil
}

// Run runs every runner until ctx ends, and returns nil then; as each
// Runner's Run would, except that the runners far behind the log at the
// same position (a first start, lost snapshots, several new versions)
// catch up in one build, reading and decoding the log once for all of
// them. Errors: ErrBusy for a runner already running (the others run).
func (s *Set) Run(ctx context.Context) error {
	errs := make([]error, len(s.runners))
	var rs []*Runner
	for i, r := range s.runners {
		if err := r.begin(); err != nil {
			errs[i] = err
			continue
		}
		defer r.end()
		rs = append(rs, r)
	}
	// Restore the checkpoints, cfg.Restores at a time (all at once if 0).
	heads := make([]events.Position, len(rs))
	ok := make([]bool, len(rs))
	slots := make(chan struct{}, max(1, cmp.Or(s.cfg.Restores, len(rs))))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			heads[i], ok[i] = r.prepare(ctx)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return errors.Join(errs...)
	}
	// One build for each position that runners far behind share, up to
	// the last head any of them read.
	states := make([]loopState, len(rs))
	groups := map[events.Position][]int{}
	var from []events.Position
	for i, r := range rs {
		if ok[i] && r.behind(heads[i]) {
			p := r.Position()
			if groups[p] == nil {
				from = append(from, p)
			}
			groups[p] = append(groups[p], i)
		}
	}
	slices.Sort(from)
	for _, p := range from {
		idx := groups[p]
		var head events.Position
		group := make([]*Runner, len(idx))
		for j, i := range idx {
			group[j], head = rs[i], max(head, heads[i])
		}
		for j, st := range catchUp(ctx, group[0].cfg.Store, group, head) {
			states[idx[j]] = st
		}
	}
	for i, r := range rs {
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.loop(ctx, states[i]) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Runner returns the runner of the named projection.
func (s *Set) Runner(name string) (*Runner, bool) {
	r, ok := s.byName[name]
	return r, ok
}

// Runners returns the runners in the order of the factories.
func (s *Set) Runners() []*Runner { return append([]*Runner(nil), s.runners...) }

// Ready returns nil when every runner is ready, else the reasons joined.
func (s *Set) Ready() error {
	var errs []error
	for _, r := range s.runners {
		if err := r.Ready(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Status returns every runner's status.
func (s *Set) Status(ctx context.Context) []Status {
	out := make([]Status, len(s.runners))
	for i, r := range s.runners {
		out[i] = r.Status(ctx)
	}
	return out
}

// RebuildAll rebuilds every projection from Start in one pass over the log
// (each event read and decoded once), while the live instances keep
// serving, then swaps each new instance in once it has caught up.
//
// Errors: ErrBusy (a rebuild of one of them is running); ErrStopped;
// *BuildError; the store's; ctx's. When the build fails no instance is
// swapped; a swap that fails (its catch-up meets a failing event) leaves
// that projection's live instance in place and is reported.
func (s *Set) RebuildAll(ctx context.Context) error {
	var claimed []*Runner
	defer func() {
		for _, r := range claimed {
			r.rebuilding.Store(false)
		}
	}()
	for _, r := range s.runners {
		if !r.rebuilding.CompareAndSwap(false, true) {
			return fmt.Errorf("projection %q: %w", r.name, ErrBusy)
		}
		claimed = append(claimed, r)
		if !r.isRunning() {
			return fmt.Errorf("projection %q: %w", r.name, ErrStopped)
		}
	}
	t0 := time.Now()
	cands := make([]Projection, len(s.runners))
	for i, r := range s.runners {
		cands[i] = r.factory()
	}
	stats, err := Build(ctx, s.cfg.Store, cands, BuildOptions{})
	if err != nil {
		return err
	}
	var errs []error
	for i, r := range s.runners {
		if err := r.send(ctx, ctlReq{kind: ctlSwap, p: cands[i], pos: stats.Position, created: stats.Created}); err != nil {
			errs = append(errs, fmt.Errorf("projection %q: %w", r.name, err))
			continue
		}
		if m := s.cfg.Metrics; m != nil {
			m.rebuild.WithLabelValues(r.name).Observe(time.Since(t0).Seconds())
		}
	}
	s.cfg.Logger.Info("rebuilt all projections", "events", stats.Events, "position", stats.Position, "took", time.Since(t0).Round(time.Millisecond))
	return errors.Join(errs...)
}
