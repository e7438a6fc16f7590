package api

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"math"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/projections/anomaly"
	"github.com/cqhrss/subsidyledger/projections/fund"
	"github.com/cqhrss/subsidyledger/projections/scorecard"
	"github.com/cqhrss/subsidyledger/projections/trainee"
)

// chromiumPath is Debian's chromium; CI installs it (apt-get install
// chromium). LEDGER_CHROMIUM overrides it.
func chromiumPath() string {
	if p := os.Getenv("LEDGER_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// dumpDOM loads url in headless Chromium, lets the page's scripts run for a
// virtual time budget, and returns the serialised DOM.
func dumpDOM(t *testing.T, url string) string {
	t.Helper()
	bin := chromiumPath()
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("LEDGER_REQUIRE_CHROMIUM") != "" { // make test installs it: a skip there would hide a missing install step
			t.Fatalf("headless-browser test: %s not found (make test-deps installs Debian's chromium)", bin)
		}
		t.Skipf("headless-browser test skipped: %s not found (install Debian's chromium: apt-get install -y chromium, or set LEDGER_CHROMIUM)", bin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--no-first-run", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=15000", "--dump-dom", url)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, errb.String())
	}
	return out.String()
}

var (
	tagRe    = regexp.MustCompile(`<[a-zA-Z][^>]*\bdata-testid="([^"]*)"[^>]*>`)
	valueRe  = regexp.MustCompile(`\bdata-value="([^"]*)"`)
	readyRe  = regexp.MustCompile(`<body[^>]*\bdata-ready="([^"]*)"`)
	statusRe = regexp.MustCompile(`id="status"[^>]*>([^<]*)<`)
)

// values returns data-testid -> data-value from the DOM.
func values(dom string) map[string]string {
	out := map[string]string{}
	for _, m := range tagRe.FindAllStringSubmatch(dom, -1) {
		if v := valueRe.FindStringSubmatch(m[0]); v != nil {
			out[html.UnescapeString(m[1])] = html.UnescapeString(v[1])
		}
	}
	return out
}

// TestDashboardMatchesAPI drives the dashboard in headless Chromium and
// checks that every number on the page equals the API's.
func TestDashboardMatchesAPI(t *testing.T) {
	waitReady(t)
	key := samples(t)["person_key"]
	const year = 2025
	dom := dumpDOM(t, fmt.Sprintf("%s/dashboard/?year=%d&trainee=%s&institution=T0001", fx.srv.URL, year, key))
	if m := readyRe.FindStringSubmatch(dom); m == nil || m[1] != "1" {
		st := statusRe.FindStringSubmatch(dom)
		t.Fatalf("the page did not finish loading (data-ready=%v, status %v)", m, st)
	}
	got := values(dom)

	q := getJSON[QuotaResponse](t, fmt.Sprintf("/v1/quota/%d", year), "")
	l := getJSON[fund.Ledger](t, fmt.Sprintf("/v1/fund?year=%d", year), "")
	a := getJSON[anomaly.List](t, "/v1/anomalies?limit=25", "")
	st := getJSON[trainee.Status](t, "/v1/trainees/"+key, "")
	card := getJSON[scorecard.Card](t, "/v1/institutions/T0001", "")

	want := map[string]any{
		"target": q.Target, "progress": q.Progress, "percent": q.PercentOfTarget,
		"totals.trained": q.Totals.Trained, "totals.certified": q.Totals.Certified, "totals.subsidised": q.Totals.Subsidised,
		"totals.first_attempt_pass_rate": q.Totals.FirstAttemptRate,
		"fund.balanced":                  l.TrialBalance.Balanced, "anomalies.open": a.Open, "position": q.Position,
		"institution.first_attempt.rate": card.FirstAttempt.Rate, "institution.reimbursed_fen": card.ReimbursedFen,
		"institution.advances.outstanding_fen": card.Advances.OutstandingFen,
	}
	for _, m := range q.Months {
		want[fmt.Sprintf("months.%d.cumulative_progress", m.Month)] = m.CumulativeProgress
		want[fmt.Sprintf("months.%d.trained", m.Month)] = m.Trained
		want[fmt.Sprintf("months.%d.pro_rata_target", m.Month)] = m.ProRataTarget
	}
	for _, r := range q.ByLevel {
		want["by_level."+r.Level+".trained"] = r.Trained
		want["by_level."+r.Level+".certified"] = r.Certified
		want["by_level."+r.Level+".subsidised"] = r.Subsidised
		want["by_level."+r.Level+".first_attempt_pass_rate"] = r.FirstAttemptRate
	}
	for _, r := range q.ByOccupation {
		want["by_occupation."+r.Occupation+".trained"] = r.Trained
		want["by_occupation."+r.Occupation+".certified"] = r.Certified
		want["by_occupation."+r.Occupation+".subsidised"] = r.Subsidised
		want["by_occupation."+r.Occupation+".first_attempts"] = r.FirstAttempts
		want["by_occupation."+r.Occupation+".first_attempt_pass_rate"] = r.FirstAttemptRate
	}
	for _, r := range q.ByUnit {
		want["by_unit."+r.UnitCode+".trained"] = r.Trained
		want["by_unit."+r.UnitCode+".certified"] = r.Certified
		want["by_unit."+r.UnitCode+".subsidised"] = r.Subsidised
		want["by_unit."+r.UnitCode+".subsidised_fen"] = r.SubsidisedFen
		want["by_unit."+r.UnitCode+".first_attempt_pass_rate"] = r.FirstAttemptRate
	}
	for k, v := range map[string]int64{
		"appropriation": q.Fund.Appropriation, "budget_available": q.Fund.BudgetAvailable, "committed": q.Fund.Committed,
		"payable": q.Fund.Payable, "paid": q.Fund.Paid, "held_for_budget": q.Fund.HeldForBudget, "clawed_back": q.Fund.ClawedBack,
		"clawback_receivable": q.Fund.ClawbackReceivable, "recovered": q.Fund.Recovered, "written_off": q.Fund.WrittenOff,
	} {
		want["fund."+k] = v
	}
	if q.Totals.Trained == 0 || q.Fund.Paid == 0 || len(q.ByUnit) < 5 {
		t.Fatalf("the fixture is too thin to test the page: %+v", q.Totals)
	}
	checked := 0
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("the page shows no %s (API: %v)", k, w)
			continue
		}
		if !same(g, w) {
			t.Errorf("page %s = %s; API says %v", k, g, w)
		}
		checked++
	}
	// Every number the page shows is one the test knows.
	for k := range got {
		if _, ok := want[k]; !ok && !strings.HasPrefix(k, "trainee.") {
			t.Errorf("the page shows %s, which the test does not check", k)
		}
	}
	// The trainee lookup shows the entitlements of the API's status.
	for _, e := range st.Entitlements {
		if !strings.Contains(dom, `data-testid="trainee.entitlement.amount_fen" data-value="`+strconv.FormatInt(e.AmountFen, 10)+`"`) {
			t.Errorf("the lookup does not show the entitlement of %d fen", e.AmountFen)
		}
	}
	if !strings.Contains(dom, "chain verified") {
		t.Error("the lookup's timeline does not show a verified chain")
	}
	t.Logf("compared %d numbers on the page with the API", checked)
}

func same(got string, want any) bool {
	switch w := want.(type) {
	case bool:
		return got == strconv.FormatBool(w)
	case float64:
		g, err := strconv.ParseFloat(got, 64)
		return err == nil && math.Abs(g-w) < 1e-9
	default:
		return got == fmt.Sprint(w)
	}
}
