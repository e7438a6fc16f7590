package readmodels_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/anomaly"
	"github.com/cqhrss/subsidyledger/projections/fund"
	"github.com/cqhrss/subsidyledger/projections/gen"
	"github.com/cqhrss/subsidyledger/projections/internal/deepdiff"
	"github.com/cqhrss/subsidyledger/projections/notice"
	"github.com/cqhrss/subsidyledger/projections/quota"
	"github.com/cqhrss/subsidyledger/projections/readmodels"
	"github.com/cqhrss/subsidyledger/projections/scorecard"
	"github.com/cqhrss/subsidyledger/projections/trainee"
)

func openStore(t *testing.T) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "ledger.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func runSet(t *testing.T, s events.Store, cps *projections.Checkpoints) (*projections.Set, func()) {
	t.Helper()
	set, err := projections.NewSet(projections.Config{Store: s, Checkpoints: cps, SnapshotEvery: 2500, SnapshotInterval: 50 * time.Millisecond},
		readmodels.Factories()...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- set.Run(ctx) }()
	return set, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Set.Run = %v", err)
		}
	}
}

func waitCaughtUp(t *testing.T, s events.Store, set *projections.Set) {
	t.Helper()
	head, err := s.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		done := true
		for _, r := range set.Runners() {
			if f := r.Failure(); f != nil {
				t.Fatalf("projection %s stopped: %v", r.Name(), f)
			}
			if r.Position() < head {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("projections did not catch up with head %d: %+v", head, set.Status(context.Background()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRebuildEqualsLive appends a long mixed history in two parts while the
// projections follow it live (snapshotting often, restarting between the
// parts from their checkpoints), then rebuilds every projection from
// scratch and compares it with the live one, field by field and snapshot
// byte for byte.
func TestRebuildEqualsLive(t *testing.T) {
	s := openStore(t)
	cps, err := projections.OpenCheckpoints(filepath.Join(t.TempDir(), "cp"))
	if err != nil {
		t.Fatal(err)
	}
	defer cps.Close()
	cfg := gen.Config{Seed: 42, Trainees: 2500}
	total, err := gen.Generate(cfg, func(gen.Batch) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	set, stop := runSet(t, s, cps)
	if _, err := gen.Append(ctx, s, cfg, gen.AppendOptions{To: total.Batches / 2}); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, s, set)
	stop()

	set, stop = runSet(t, s, cps) // restores from the checkpoints
	if _, err := gen.Append(ctx, s, cfg, gen.AppendOptions{From: total.Batches / 2}); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, s, set)
	defer stop()
	head, _ := s.Head(ctx)
	if int(head) != total.Events {
		t.Fatalf("head %d; want %d events", head, total.Events)
	}

	fresh := readmodels.Fresh()
	if _, err := projections.Build(ctx, s, fresh, projections.BuildOptions{ScrubPages: true}); err != nil {
		t.Fatal(err)
	}
	for i, r := range set.Runners() {
		live := r.Current()
		if d := deepdiff.Diff(live, fresh[i]); d != "" {
			t.Errorf("%s: live and rebuilt differ at %s", r.Name(), d)
		}
		var a, b bytes.Buffer
		if err := live.Snapshot(&a); err != nil {
			t.Fatal(err)
		}
		if err := fresh[i].Snapshot(&b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%s: snapshots of live and rebuilt differ (%d and %d bytes)", r.Name(), a.Len(), b.Len())
		}
		// And a snapshot restores to an equal model.
		back := readmodels.Factories()[i]()
		if err := back.Restore(bytes.NewReader(b.Bytes())); err != nil {
			t.Fatalf("%s: Restore: %v", r.Name(), err)
		}
		if d := deepdiff.Diff(back, fresh[i]); d != "" {
			t.Errorf("%s: restored snapshot differs at %s", r.Name(), d)
		}
	}
	checkConsistent(t, fresh, total)
}

// checkConsistent cross-checks the read models against each other.
func checkConsistent(t *testing.T, ms []projections.Projection, st gen.Stats) {
	t.Helper()
	tr, q, sc, f, n, an := ms[0].(*trainee.Model), ms[1].(*quota.Model), ms[2].(*scorecard.Model), ms[3].(*fund.Model), ms[4].(*notice.Model), ms[5].(*anomaly.Model)
	if tr.Count() != st.Trainees {
		t.Errorf("trainees = %d; want %d", tr.Count(), st.Trainees)
	}
	var paid, entitled, subsidised int64
	for from := 0; from >= 0; {
		var page []trainee.Summary
		page, from = tr.Page(from, 1000)
		for _, s := range page {
			paid += s.PaidFen
			entitled += s.EntitledFen
			subsidised += int64(s.Entitlements)
		}
	}
	led := f.Ledger(fund.Filter{View: "recorded"})
	var ledPaid, ledCommittedEtc int64
	for _, y := range led.Years {
		ledPaid += y.Balances.Paid
		ledCommittedEtc += y.Balances.Paid + y.Balances.Payable + y.Balances.Committed + y.Balances.HeldForBudget
	}
	if ledPaid != paid {
		t.Errorf("fund ledger paid %d != trainees' paid %d", ledPaid, paid)
	}
	if ledCommittedEtc > entitled || ledCommittedEtc == 0 {
		t.Errorf("fund ledger's entitlements %d against %d entitled", ledCommittedEtc, entitled)
	}
	if !led.TrialBalance.Balanced || led.TrialBalance.DebitsFen == 0 {
		t.Errorf("trial balance %+v", led.TrialBalance)
	}
	var qs int64
	for y := 2020; y < 2040; y++ {
		qs += q.Dashboard(y, quota.Filter{}).Totals.Subsidised
	}
	if qs != subsidised {
		t.Errorf("quota subsidised %d != trainees' entitlements %d", qs, subsidised)
	}
	var reimb int64
	for _, r := range sc.List(scorecard.Filter{}) {
		reimb += r.ReimbursedFen
	}
	if reimb == 0 || reimb > paid {
		t.Errorf("scorecards reimbursed %d of %d paid", reimb, paid)
	}
	if l := an.List(anomaly.Filter{}); l.Open == 0 {
		t.Error("no flags")
	}
	if l := n.List(notice.Filter{}); l.Closed == nil || *l.Closed == 0 {
		t.Errorf("notice: %+v", l)
	}
}

// TestFundDebitsEqualCreditsAfterEveryEvent applies long random histories
// to the fund ledger one event at a time and checks after each that debits
// equal credits and the ledger's identities hold.
func TestFundDebitsEqualCreditsAfterEveryEvent(t *testing.T) {
	seeds := []int64{1, 2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		s := openStore(t)
		ctx := context.Background()
		st, err := gen.Append(ctx, s, gen.Config{Seed: seed, Trainees: 3000, BudgetFactor: 0.5 + float64(seed)*0.2}, gen.AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m := fund.New()
		checked := 0
		probe := &checker{Model: m, m: m, n: &checked}
		if _, err := projections.Build(ctx, s, []projections.Projection{probe}, projections.BuildOptions{}); err != nil {
			t.Fatal(err)
		}
		d, c := m.Totals()
		if checked < 4000 || d == 0 {
			t.Fatalf("seed %d: checked only %d events (debits %d)", seed, checked, d)
		}
		t.Logf("seed %d: %d events, %d checked after each fund event; debits = credits = %d fen", seed, st.Events, checked, c)
	}
}

// checker wraps the fund model and checks it after every event (the build
// then stops with the first broken invariant).
type checker struct {
	*fund.Model
	m *fund.Model
	n *int
}

// ApplyBatch checks after every event too (the embedded model's would
// apply the run without the checks).
func (c *checker) ApplyBatch(evs []*projections.Event) (int, error) {
	for i, ev := range evs {
		if err := c.Apply(ev); err != nil {
			return i, err
		}
	}
	return len(evs), nil
}

func (c *checker) Apply(ev *projections.Event) error {
	if err := c.m.Apply(ev); err != nil {
		return err
	}
	*c.n++
	if err := c.m.Check(); err != nil {
		return fmt.Errorf("invariant broken: %w", err)
	}
	return nil
}
