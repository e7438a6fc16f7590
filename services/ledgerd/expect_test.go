package ledgerd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/services/ledgerctl"
	"github.com/cqhrss/subsidyledger/services/simulate"
)

// TestSimulatorExpectationMatchesDashboard publishes a simulated year with
// its planted violations, then compares what the simulator expects the
// dashboard to show (totals and by occupation) with the quota API, and the
// planted flags with the anomalies API.
func TestSimulatorExpectationMatchesDashboard(t *testing.T) {
	dir := t.TempDir()
	in := start(t, testConfig(t, dir, ""))
	p, err := simulate.New(simulate.Config{Seed: 9, Year: 2025, Trainees: 400, Keyer: keyer(t), Officials: true, Violations: true})
	if err != nil {
		t.Fatal(err)
	}
	enc := func(fs []simulate.Fact) []*nats.Msg {
		var out []*nats.Msg
		for _, f := range fs {
			m, err := simulate.Msg("subsidy.in", f, false)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		return out
	}
	lanes := [][]*nats.Msg{enc(p.Reference())}
	var profiles []simulate.Profile
	if p.Spike() == nil || p.Trainees() <= 400 {
		t.Fatalf("the simulator planted no certificate spike (%d trainees)", p.Trainees())
	}
	for i := range p.Trainees() {
		fs, pr := p.Trainee(i)
		profiles = append(profiles, pr)
		lanes = append(lanes, enc(fs))
	}
	want := p.Expect(profiles)
	t.Log(want)
	nc, err := nats.Connect(in.addr.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	publish(t, js, lanes[:1])
	publish(t, js, lanes[1:])
	waitDrained(t, js)

	type counts struct {
		Enrolled, Trained, Certified, Subsidised int64
		SubsidisedFen                            int64 `json:"subsidised_fen"`
		FirstAttempts                            int64 `json:"first_attempts"`
		FirstAttemptPasses                       int64 `json:"first_attempt_passes"`
	}
	var got struct {
		Totals       counts `json:"totals"`
		ByOccupation []struct {
			Occupation string `json:"occupation"`
			counts
		} `json:"by_occupation"`
	}
	conv := func(c simulate.Counts) counts {
		return counts{c.Enrolled, c.Trained, c.Certified, c.Subsidised, c.SubsidisedFen, c.FirstAttempts, c.FirstAttemptPasses}
	}
	// The projections follow the log; wait until they show every fact.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get("http://" + in.addr.HTTPAddr + "/v1/quota/2025")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got.Totals == conv(want.Totals) || time.Now().After(deadline) {
			break
		}
	}
	if got.Totals != conv(want.Totals) {
		t.Fatalf("dashboard totals = %+v; the simulator expects %+v", got.Totals, conv(want.Totals))
	}
	seen := 0
	for _, row := range got.ByOccupation {
		w, ok := want.ByOccupation[row.Occupation]
		if !ok {
			if row.counts != (counts{}) {
				t.Errorf("dashboard shows occupation %q the simulator did not publish: %+v", row.Occupation, row.counts)
			}
			continue
		}
		seen++
		if row.counts != conv(w) {
			t.Errorf("dashboard %s = %+v; the simulator expects %+v", row.Occupation, row.counts, conv(w))
		}
	}
	if seen != len(want.ByOccupation) {
		t.Errorf("dashboard shows %d of the simulator's %d occupations", seen, len(want.ByOccupation))
	}
	// The planted violations: a flag per shared account, a flag per
	// certificate spike, a clawback per revoked certificate.
	type flag struct {
		InstitutionID string `json:"institution_id"`
		Detail        string `json:"detail"`
	}
	var anomalies struct {
		ByReason []struct {
			Reason struct {
				Code string `json:"code"`
			} `json:"reason"`
			Count int `json:"count"`
		} `json:"by_reason"`
		Flags []flag `json:"flags"`
	}
	get := func(query string) {
		t.Helper()
		resp, err := http.Get("http://" + in.addr.HTTPAddr + "/v1/anomalies" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		anomalies.ByReason, anomalies.Flags = nil, nil
		if err := json.NewDecoder(resp.Body).Decode(&anomalies); err != nil {
			t.Fatal(err)
		}
	}
	// The anomalies projection follows the log on its own: wait for it.
	flagged := map[string]int{}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		get("")
		for _, r := range anomalies.ByReason {
			flagged[r.Reason.Code] = r.Count
		}
		if (flagged["REASON_CODE_SHARED_PAYEE_ACCOUNT"] == want.SharedAccounts &&
			flagged["REASON_CODE_CERTIFICATE_SPIKE"] == len(want.CertificateSpikes)) || time.Now().After(deadline) {
			break
		}
	}
	for code, n := range flagged {
		t.Logf("open flags: %s %d", code, n)
	}
	if n := flagged["REASON_CODE_SHARED_PAYEE_ACCOUNT"]; want.SharedAccounts == 0 || n != want.SharedAccounts {
		t.Errorf("shared-account flags = %d; the simulator planted %d", n, want.SharedAccounts)
	}
	// Only the planted month has more certificates than the rule set's
	// minimum, so no order of ingest can flag another.
	if n := flagged["REASON_CODE_CERTIFICATE_SPIKE"]; len(want.CertificateSpikes) != 1 || n != len(want.CertificateSpikes) {
		t.Errorf("certificate-spike flags = %d; the simulator expects %d (%+v)", n, len(want.CertificateSpikes), want.CertificateSpikes)
	}
	get("?reason=REASON_CODE_CERTIFICATE_SPIKE")
	for i, s := range want.CertificateSpikes {
		if i >= len(anomalies.Flags) {
			break
		}
		f := anomalies.Flags[i]
		// The flag is raised by the certificate that crosses the threshold,
		// so its count may be below the month's final one.
		month := fmt.Sprintf(" certificates in %04d-%02d;", s.Year, int(s.Month))
		if f.InstitutionID != s.Institution || !strings.Contains(f.Detail, month) {
			t.Errorf("certificate-spike flag on %s: %q; the simulator expects %s with %q", f.InstitutionID, f.Detail, s.Institution, month)
		}
	}
	if want.Revoked == 0 {
		t.Error("the simulator planted no revoked certificate")
	}
	// The late completions' flags: raised, then cleared, none left open.
	if n := flagged["REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION"]; n != 0 {
		t.Errorf("%d ASSESSMENT_WITHOUT_COMPLETION flags open; the simulator's completions all came (dated before their assessments)", n)
	}
	get("?status=cleared&reason=REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION")
	if want.ClearedFlags == 0 || len(anomalies.Flags) != want.ClearedFlags {
		t.Errorf("%d cleared ASSESSMENT_WITHOUT_COMPLETION flags; the simulator expects %d", len(anomalies.Flags), want.ClearedFlags)
	}
	// The year's decisions — entitlements, holds, the flags, the
	// clawbacks — replay to the same answer, as an auditor would check
	// with ledgerctl redecide on the stopped ledger's file.
	in.stop(t)
	var out, errOut bytes.Buffer
	err = ledgerctl.Run(context.Background(), []string{"redecide", "--store", filepath.Join(dir, "ledger.db"), "--json"}, func(string) string { return "" }, nil, &out, &errOut)
	var rep struct {
		OK               bool             `json:"ok"`
		Facts            int64            `json:"facts"`
		Matched          int64            `json:"matched"`
		Derived          int64            `json:"derived"`
		Rejections       int64            `json:"rejections"`
		RejMatched       int64            `json:"rejections_matched"`
		RejNotDecided    int64            `json:"rejections_not_decided"`
		Problems         []string         `json:"problems"`
		RecordedRuleSets map[string]int64 `json:"facts_by_recorded_rule_set"`
		Adopted          []struct {
			Position  uint64 `json:"position"`
			Version   string `json:"version"`
			Behaviour int    `json:"behaviour"`
		} `json:"rule_sets_adopted"`
	}
	if jerr := json.Unmarshal(out.Bytes(), &rep); err != nil || jerr != nil || !rep.OK || rep.Facts < 1000 || rep.Matched != rep.Facts || rep.Derived < 500 || len(rep.Problems) != 0 ||
		rep.RejMatched == 0 || rep.RejMatched+rep.RejNotDecided != rep.Rejections || rep.RecordedRuleSets["2026.6"] == 0 ||
		len(rep.Adopted) != 1 || rep.Adopted[0].Position != 1 || rep.Adopted[0].Version != "2026.6" || rep.Adopted[0].Behaviour != rules.CurrentBehaviour {
		t.Fatalf("ledgerctl redecide: %v, %v\n%s%s", err, jerr, out.Bytes(), errOut.Bytes())
	}
	t.Logf("ledgerctl redecide: %d facts decided again as recorded, %d derived events; %d of %d rejections decided again as recorded", rep.Facts, rep.Derived, rep.RejMatched, rep.Rejections)
}
