package readmodels_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/anomaly"
	"github.com/cqhrss/subsidyledger/projections/fund"
	"github.com/cqhrss/subsidyledger/projections/gen"
	"github.com/cqhrss/subsidyledger/projections/notice"
	"github.com/cqhrss/subsidyledger/projections/quota"
	"github.com/cqhrss/subsidyledger/projections/readmodels"
	"github.com/cqhrss/subsidyledger/projections/scorecard"
	"github.com/cqhrss/subsidyledger/projections/trainee"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestGoldenViews builds every read model over a small fixed history and
// compares what each answers with testdata/views.golden.json, so that a
// change in any read model's meaning shows up as a reviewable diff. Run
// with -update to accept a change.
func TestGoldenViews(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	if _, err := gen.Append(ctx, s, gen.Config{Seed: 77, Trainees: 150, FirstYear: 2025, LastYear: 2025, Until: refdata.D(2026, time.March, 1)},
		gen.AppendOptions{Parallel: 1}); err != nil {
		t.Fatal(err)
	}
	ms := readmodels.Fresh()
	if _, err := projections.Build(ctx, s, ms, projections.BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, q, sc, f, n, an := ms[0].(*trainee.Model), ms[1].(*quota.Model), ms[2].(*scorecard.Model), ms[3].(*fund.Model), ms[4].(*notice.Model), ms[5].(*anomaly.Model)
	page, _ := tr.Page(0, 1000)
	var statuses []trainee.Status
	for _, p := range page[:3] {
		st, _ := tr.Get(p.PersonKey)
		statuses = append(statuses, st)
	}
	for _, p := range page { // and one with every kind of money
		if st, _ := tr.Get(p.PersonKey); len(st.Entitlements) > 0 && st.Entitlements[0].State == trainee.StatePaid {
			statuses = append(statuses, st)
			break
		}
	}
	flags := an.List(anomaly.Filter{})
	for i := range flags.Flags {
		flags.Flags[i].RecordedAt = time.Time{} // a commit time: differs from run to run
	}
	card, _ := sc.Get("T0001")
	views := map[string]any{
		"trainees":     page[:20],
		"statuses":     statuses,
		"quota_years":  q.Years(quota.Filter{}),
		"quota_2025":   q.Dashboard(2025, quota.Filter{}),
		"quota_2025_r": q.Dashboard(2025, quota.Filter{View: "recorded", Measure: quota.MeasureCertified}),
		"institutions": sc.List(scorecard.Filter{}),
		"T0001":        card,
		"fund":         f.Ledger(fund.Filter{}),
		"fund_r":       f.Ledger(fund.Filter{View: "recorded"}),
		"journal":      f.Journal(30, ""),
		"notice":       n.List(notice.Filter{}),
		"anomalies":    flags,
	}
	got, err := json.MarshalIndent(views, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "views.golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGoldenViews -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
		for i := 0; i < len(gl) && i < len(wl); i++ {
			if !bytes.Equal(gl[i], wl[i]) {
				t.Fatalf("views differ from %s at line %d:\n got: %s\nwant: %s\n(if the change is intended, run go test -run TestGoldenViews -update)", path, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("views differ from %s in length (%d lines, want %d); run with -update if intended", path, len(gl), len(wl))
	}
}
