package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/redecide"
	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// adoptions reads the log's RuleSetAdopted events: version by position.
func adoptions(t *testing.T, s events.Store) (out []string, positions []events.Position) {
	t.Helper()
	page, err := s.ReadAll(context.Background(), events.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range page {
		d, err := codec.Decode(rec)
		if err != nil {
			t.Fatal(err)
		}
		if m, ok := d.Payload.(*subsidyv1.RuleSetAdopted); ok {
			out, positions = append(out, m.GetVersion()), append(positions, rec.Position)
		}
	}
	return out, positions
}

// intakeUnder loads an intake on the rig's store under rs.
func (r *rig) intakeUnder(t *testing.T, rs rules.RuleSet) *Intake {
	t.Helper()
	in := New(Config{Store: r.store, Conn: r.nc, Consumer: r.cons, RuleSet: rs, Metrics: NewMetrics(prometheus.NewRegistry())})
	if err := in.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return in
}

// sevenDays is the built-in rule set with 7 working days of notice, under
// a version of its own.
func sevenDays() rules.RuleSet {
	rs := rules.DefaultRuleSet()
	rs.Version, rs.NoticeWorkingDays = "test.7d", 7
	return rs
}

// TestRuleSetRecordedInTheLog: the intake records its rule set in the log
// before it decides anything, and again only when it starts with another;
// an auditor replaying the log (redecide) then decides each fact under
// the rule set that decided it, whatever rule set it starts from.
func TestRuleSetRecordedInTheLog(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	start := func(rs rules.RuleSet) *Intake { t.Helper(); return r.intakeUnder(t, rs) }
	def := rules.DefaultRuleSet()
	in := start(def)
	if got, pos := adoptions(t, r.store); len(got) != 1 || got[0] != def.Version || pos[0] != 1 {
		t.Fatalf("after the first start: adoptions %v at %v; want %s first in the log", got, pos, def.Version)
	}
	handleAll(t, in, r.simulated(t, 30))
	start(def) // the same rule set: nothing recorded
	if got, _ := adoptions(t, r.store); len(got) != 1 {
		t.Fatalf("a restart under the same rule set recorded %v", got)
	}
	long := sevenDays()
	in = start(long)
	r.publishSimulatedSeed(t, 30, 6) // JetStream drops the reference data's repeats (same message ids)
	info, err := r.cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	handleAll(t, in, r.fetch(t, int(info.NumPending)))
	got, _ := adoptions(t, r.store)
	if len(got) != 2 || got[1] != "test.7d" {
		t.Fatalf("adoptions %v; want %s then test.7d", got, def.Version)
	}
	// Back to the built-in rule set: adopted again. A rule set under a
	// version the log adopted with other parameters is refused.
	start(def)
	forged := def
	forged.NoticeWorkingDays = 6
	in2 := New(Config{Store: r.store, Conn: r.nc, Consumer: r.cons, RuleSet: forged, Metrics: NewMetrics(prometheus.NewRegistry())})
	var conflict *RuleSetConflictError
	if err := in2.Load(ctx); !errors.As(err, &conflict) || conflict.Version != def.Version {
		t.Errorf("Load under %s with other parameters = %v; want a RuleSetConflictError", def.Version, err)
	}
	if got, _ := adoptions(t, r.store); len(got) != 3 || got[2] != def.Version {
		t.Fatalf("adoptions %v; want %s, test.7d, %s", got, def.Version, def.Version)
	}

	// Each fact replays under the rule set that decided it: the built-in one up to
	// the second adoption, test.7d after it (its notices 7 working days),
	// from either rule set as the start.
	for _, from := range []rules.RuleSet{def, long} {
		byVersion := map[string]int64{}
		sum, err := redecide.Run(ctx, r.store, redecide.Options{RuleSet: from, Report: func(m redecide.Mismatch) { t.Errorf("redecide from %s: %s", from.Version, m) }})
		if err != nil {
			t.Fatal(err)
		}
		for v, n := range sum.ByVersion {
			byVersion[v] = n
		}
		if !sum.OK() || sum.Matched != sum.Facts || byVersion[def.Version] == 0 || byVersion["test.7d"] == 0 {
			t.Errorf("redecide from %s: %+v; want every fact reproduced, some under each rule set", from.Version, sum)
		}
	}
}

// TestReadOnlyIntakeRecordsNothing: a read-only intake (for measuring or
// inspecting a store) folds the log but records no rule set, and decides
// nothing.
func TestReadOnlyIntakeRecordsNothing(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	in := New(Config{Store: r.store, Conn: r.nc, Consumer: r.cons, RuleSet: rules.DefaultRuleSet(), ReadOnly: true, Metrics: NewMetrics(prometheus.NewRegistry())})
	if err := in.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := adoptions(t, r.store); len(got) != 0 {
		t.Errorf("a read-only Load recorded %v", got)
	}
	if err := in.Run(ctx); err == nil {
		t.Error("a read-only intake ran")
	}
}

// TestAnotherInstancesRuleSetStopsTheIntake: two intakes share a store;
// while A runs under the built-in rule set, B starts under another and
// records it. A must not decide under B's rule set (found by review: it
// switched silently), nor record its own again: it stops, saying why, and
// hands the messages back.
func TestAnotherInstancesRuleSetStopsTheIntake(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	a := r.intake(t)
	r.intakeUnder(t, sevenDays()) // B
	n := r.publishSimulated(t, 5)
	err := a.handle(ctx, r.fetch(t, n))
	var changed *RuleSetChangedError
	if !errors.As(err, &changed) || changed.Version != "test.7d" || changed.Ours != rules.DefaultRuleSet().Version {
		t.Fatalf("A's batch after B recorded its rule set: %v; want a RuleSetChangedError", err)
	}
	if got, _ := adoptions(t, r.store); len(got) != 2 {
		t.Errorf("adoptions %v; want A's and B's only", got)
	}
	page, err := r.store.ReadAll(ctx, events.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range page {
		if d, err := codec.Decode(rec); err == nil && d.Env.GetSource() != Source {
			t.Fatalf("A recorded fact %s after B's rule set", rec.Type)
		}
	}
}

// unwritable is a store whose appends fail (events.ErrUnavailable, a full
// disk) while broken is set; a wrapper hides the store's write probe, so
// the intake probes nothing and tries again.
type unwritable struct {
	events.Store
	broken atomic.Bool
}

func (s *unwritable) Append(ctx context.Context, stream string, exp events.ExpectedRevision, evs ...events.EventData) (events.AppendResult, error) {
	if s.broken.Load() {
		return events.AppendResult{}, fmt.Errorf("%w: no space left on device", events.ErrUnavailable)
	}
	return s.Store.Append(ctx, stream, exp, evs...)
}

// TestRuleSetRecordedOnceTheStoreCanWrite: an intake that starts on a store
// that cannot write loads the log all the same (ledgerd serves meanwhile,
// found by review: it exited), says the store is unavailable, and records
// its rule set once the store can write, before it decides anything.
func TestRuleSetRecordedOnceTheStoreCanWrite(t *testing.T) {
	r := newRig(t)
	s := &unwritable{Store: r.store}
	s.broken.Store(true)
	in := New(Config{Store: s, Conn: r.nc, Consumer: r.cons, RuleSet: rules.DefaultRuleSet(), ProbeInterval: 20 * time.Millisecond,
		Metrics: NewMetrics(prometheus.NewRegistry())})
	if err := in.Load(context.Background()); err != nil {
		t.Fatalf("Load on a store that cannot write: %v; want the state loaded", err)
	}
	if in.Unavailable() == nil {
		t.Error("the intake does not say the store cannot write")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	time.Sleep(100 * time.Millisecond)
	if got, _ := adoptions(t, r.store); len(got) != 0 {
		t.Fatalf("adoptions %v while the store could not write", got)
	}
	s.broken.Store(false)
	n := r.publishSimulated(t, 3)
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := r.cons.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the intake did not consume the %d messages once the store could write", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, pos := adoptions(t, r.store)
	if len(got) != 1 || pos[0] != 1 {
		t.Fatalf("adoptions %v at %v; want the rule set first in the log, before the facts", got, pos)
	}
}

// TestRuleSetChangedStopsForGood: once an intake has met another
// instance's rule set it stays stopped (found by review): its position does
// not move past that adoption (a snapshot would record a state without
// it), it writes no snapshot, and a reload after a failed batch (a
// conflict) does not record its own rule set again, which would make the
// two instances take turns.
func TestRuleSetChangedStopsForGood(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	a := r.intake(t)
	r.intakeUnder(t, sevenDays()) // B
	_, pos := adoptions(t, r.store)
	var changed *RuleSetChangedError
	if err := a.catchUp(ctx); !errors.As(err, &changed) {
		t.Fatalf("catching up with B's rule set: %v", err)
	}
	if a.seen >= pos[1] {
		t.Errorf("A's state is said to reach %d, past B's adoption at %d, which it did not fold", a.seen, pos[1])
	}
	if err := a.reloadAfter(ctx, errConflict); !errors.As(err, &changed) {
		t.Errorf("A's reload after a conflict: %v; want a RuleSetChangedError", err)
	}
	if got, _ := adoptions(t, r.store); len(got) != 2 {
		t.Errorf("adoptions %v; want A's and B's only", got)
	}
}

// TestReloadFindsAnotherRuleSet: a reload (after a failed batch) that
// finds another instance's rule set adopted since this intake recorded its
// own stops it, without recording its own again (found by review).
func TestReloadFindsAnotherRuleSet(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	a := r.intake(t)
	r.intakeUnder(t, sevenDays()) // B
	var changed *RuleSetChangedError
	if err := a.reloadAfter(ctx, errConflict); !errors.As(err, &changed) {
		t.Errorf("A's reload: %v; want a RuleSetChangedError", err)
	}
	if got, _ := adoptions(t, r.store); len(got) != 2 {
		t.Errorf("adoptions %v; want A's and B's only", got)
	}
}

// TestRuleSetRecordedAgainAtThisReleasesBehaviour: a log whose rule set an
// earlier release adopted (behaviour 1) gets the same parameters, under
// the same version, adopted again at this release's behaviour at the
// first start, and only once: decisions after it are made as this
// release makes them, those before replay as they were made.
func TestRuleSetRecordedAgainAtThisReleasesBehaviour(t *testing.T) {
	r := newRig(t)
	older := sevenDays()
	older.Behaviour = 1
	r.intakeUnder(t, older)
	r.intakeUnder(t, older) // the same: nothing recorded again
	if got, _ := adoptions(t, r.store); len(got) != 1 {
		t.Fatalf("adoptions %v; want one", got)
	}
	in := r.intakeUnder(t, sevenDays())
	if got, _ := adoptions(t, r.store); len(got) != 2 || got[1] != "test.7d" {
		t.Fatalf("adoptions %v; want test.7d twice (at behaviour 1, then %d)", got, rules.CurrentBehaviour)
	}
	if b := in.world.RuleSet().Behaviour; b != rules.CurrentBehaviour {
		t.Errorf("the intake decides at behaviour %d; want %d", b, rules.CurrentBehaviour)
	}
	r.intakeUnder(t, sevenDays())
	if got, _ := adoptions(t, r.store); len(got) != 2 {
		t.Fatalf("adoptions %v after another start; want two", got)
	}
}
