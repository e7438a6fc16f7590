package ledgerd

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqhrss/subsidyledger/services/api"
	"github.com/cqhrss/subsidyledger/services/api/apitest"
	"github.com/cqhrss/subsidyledger/services/simulate"
)

// TestMakerChecker drives the maker/checker actions through the whole
// service: bearer tokens, the API, NATS, the intake, the rules and the
// store. Official A confirms; A approving is rejected (CHECKER_IS_MAKER);
// the district's official B approves and the notice opens; the stored
// events carry both officials' ids. A repeated request records nothing
// new; callers who may not act, or may not see the entitlement, are told
// so without learning whether it exists.
func TestMakerChecker(t *testing.T) {
	const trainees = 40
	p, err := simulate.New(simulate.Config{Seed: 12, Year: 2025, Trainees: trainees, Keyer: keyer(t)})
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
	for i := range trainees {
		fs, _ := p.Trainee(i)
		lanes = append(lanes, enc(fs))
	}

	// Tokens: two municipal officials, an auditor, an institution, and
	// districts filled in once the entitlement's unit is known (the file
	// is read at start, so the unit comes from a first look at the data:
	// the simulator's units are fixed by its seed).
	dir := t.TempDir()
	cfg := testConfig(t, filepath.Join(dir, "data"), "")
	led := start(t, cfg)
	nc, err := nats.Connect(led.addr.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	publish(t, js, lanes[:1])
	publish(t, js, lanes[1:])
	waitDrained(t, js)
	base := "http://" + led.addr.HTTPAddr
	ent, key, unit, other := unconfirmedEntitlement(t, base)
	led.stop(t)

	tokens := filepath.Join(dir, "tokens.json")
	tb, _ := json.Marshal(map[string]any{"tokens": []api.Token{
		{SHA256: api.HashToken("muni-a"), Scope: "municipal", Name: "cq-official-a"},
		{SHA256: api.HashToken("muni-prose"), Scope: "municipal", Name: "市人社局 fund office"},
		{SHA256: api.HashToken("auditor"), Scope: "auditor", Official: "audit-official"},
		{SHA256: api.HashToken("district"), Scope: "district:" + unit, Name: "区人社局", Official: "district-official-b"},
		{SHA256: api.HashToken("other-district"), Scope: "district:" + other, Official: "other-official"},
		{SHA256: api.HashToken("institution"), Scope: "institution:T001", Official: "inst-official"},
	}})
	if err := os.WriteFile(tokens, tb, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.APITokens = tokens
	led = start(t, cfg)
	base = "http://" + led.addr.HTTPAddr
	waitStatus(t, base+"/v1/trainees/"+key, "muni-a", http.StatusOK)

	confirm := base + "/v1/entitlements/" + ent + "/confirm"
	approve := base + "/v1/entitlements/" + ent + "/approve"
	fake := base + "/v1/entitlements/0badc0de-0000-8000-8000-000000000000/confirm"

	// Who may not act.
	for _, c := range []struct {
		token string
		want  int
	}{{"", 401}, {"guessed", 401}, {"auditor", 403}, {"institution", 403}, {"muni-prose", 403}} {
		if code, body := post(t, confirm, c.token); code != c.want {
			t.Errorf("confirm with token %q = %d %s; want %d", c.token, code, body, c.want)
		}
	}
	// Another district: the same answer as an entitlement that does not exist.
	code, body := post(t, confirm, "other-district")
	fcode, fbody := post(t, fake, "other-district")
	if code != http.StatusNotFound || code != fcode || !bytes.Equal(body, fbody) {
		t.Errorf("another district confirming = %d %s; a nonexistent entitlement = %d %s", code, body, fcode, fbody)
	}

	// A confirms.
	doc := getDoc(t, base)
	code, body = post(t, confirm, "muni-a")
	var confirmed api.ActionResponse
	if code != http.StatusOK || json.Unmarshal(body, &confirmed) != nil || confirmed.OfficialID != "cq-official-a" || confirmed.Position == 0 || confirmed.Duplicate {
		t.Fatalf("A confirms = %d %s", code, body)
	}
	validate(t, doc, "/v1/entitlements/{id}/confirm", "200", body)
	// The same request again: the first outcome, nothing new recorded.
	code, body = post(t, confirm, "muni-a")
	var again api.ActionResponse
	if code != http.StatusOK || json.Unmarshal(body, &again) != nil || !again.Duplicate || again.Position != confirmed.Position {
		t.Errorf("A confirms again = %d %s; want the first outcome (position %d), duplicate", code, body, confirmed.Position)
	}
	// A may not approve what A confirmed.
	code, body = post(t, approve, "muni-a")
	var rej api.ErrorBody
	if code != http.StatusConflict || json.Unmarshal(body, &rej) != nil || rej.Error.Reason != "REASON_CODE_CHECKER_IS_MAKER" || rej.Error.Position == 0 {
		t.Fatalf("A approves = %d %s; want 409 REASON_CODE_CHECKER_IS_MAKER", code, body)
	}
	validate(t, doc, "/v1/entitlements/{id}/approve", "409", body)
	// B, the entitlement's district, approves.
	code, body = post(t, approve, "district")
	var approved api.ActionResponse
	if code != http.StatusOK || json.Unmarshal(body, &approved) != nil || approved.OfficialID != "district-official-b" || approved.Position <= confirmed.Position {
		t.Fatalf("B approves = %d %s", code, body)
	}

	// The store: the confirmation by A, the approval by B, the notice
	// opened, and A's rejected approval recorded with its reason.
	var trail api.AuditTrail
	getAuth(t, base+"/v1/audit/streams/trainee-"+key+"?limit=1000", "auditor", &trail)
	found := map[string]string{}
	for _, e := range trail.Events {
		var pl struct {
			OfficialID    string `json:"official_id"`
			EntitlementID string `json:"entitlement_id"`
		}
		_ = json.Unmarshal(e.Payload, &pl)
		if pl.EntitlementID == ent {
			found[e.Type] = pl.OfficialID
		}
	}
	if found["subsidy.v1.EntitlementConfirmed"] != "cq-official-a" || found["subsidy.v1.EntitlementApproved"] != "district-official-b" {
		t.Errorf("stored officials: %v", found)
	}
	if _, ok := found["subsidy.v1.NoticeOpened"]; !ok || !trail.Verified {
		t.Errorf("no notice opened after the approval (verified %v): %v", trail.Verified, found)
	}
	var rejected api.AuditEvent
	getAuth(t, base+"/v1/audit/events/"+strconv.FormatUint(rej.Error.Position, 10), "auditor", &rejected)
	if rejected.Type != "subsidy.v1.FactRejected" || !strings.Contains(string(rejected.Payload), "REASON_CODE_CHECKER_IS_MAKER") ||
		!strings.Contains(string(rejected.Payload), "api/approve/"+ent) {
		t.Errorf("the rejected approval is recorded as %s %s", rejected.Type, rejected.Payload)
	}
	// The trainee view shows both officials.
	var st struct {
		Entitlements []struct {
			EntitlementID string `json:"entitlement_id"`
			ConfirmedBy   string `json:"confirmed_by"`
			ApprovedBy    string `json:"approved_by"`
		} `json:"entitlements"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		getAuth(t, base+"/v1/trainees/"+key, "district", &st)
		ok := false
		for _, e := range st.Entitlements {
			ok = ok || (e.EntitlementID == ent && e.ConfirmedBy == "cq-official-a" && e.ApprovedBy == "district-official-b")
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("trainee view: %+v", st.Entitlements)
		}
	}
}

// unconfirmedEntitlement finds an entitlement (in --demo) and returns it,
// its trainee, its unit and another unit with trainees.
func unconfirmedEntitlement(t *testing.T, base string) (ent, key, unit, other string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var tl api.TraineeList
		getAuth(t, base+"/v1/trainees?limit=1000", "", &tl)
		units := map[string]bool{}
		for _, s := range tl.Trainees {
			units[s.CurrentUnitCode] = true
			if ent != "" || s.Entitlements == 0 {
				continue
			}
			var st struct {
				Entitlements []struct {
					EntitlementID string `json:"entitlement_id"`
					State         string `json:"state"`
					ConfirmedBy   string `json:"confirmed_by"`
					Unit          struct {
						CurrentCode string `json:"current_code"`
					} `json:"unit"`
				} `json:"entitlements"`
			}
			getAuth(t, base+"/v1/trainees/"+s.PersonKey, "", &st)
			for _, e := range st.Entitlements {
				if e.ConfirmedBy == "" && ent == "" {
					ent, key, unit = e.EntitlementID, s.PersonKey, e.Unit.CurrentCode
				}
			}
		}
		for u := range units {
			if u != unit {
				other = u
			}
		}
		if ent != "" && other != "" {
			return ent, key, unit, other
		}
	}
	t.Fatal("no unconfirmed entitlement (and second unit) after 30s")
	return
}

func post(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func getAuth(t *testing.T, url, token string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func waitStatus(t *testing.T, url, token string, want int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s never answered %d", url, want)
		}
	}
}

func getDoc(t *testing.T, base string) map[string]any {
	t.Helper()
	var doc map[string]any
	getAuth(t, base+"/v1/openapi.json", "", &doc)
	return doc
}

func validate(t *testing.T, doc map[string]any, path, status string, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	if err := (&apitest.Validator{Doc: doc}).Response(path, "post", status, v); err != nil {
		t.Errorf("POST %s %s: the answer does not match the OpenAPI document: %v", path, status, err)
	}
}

// TestWriteOffMakerChecker: the write-off of a clawback (rule 14) through
// the whole service: official A requests it, A approving it is rejected
// (WRITE_OFF_SAME_OFFICIAL), official B approves it and the receivable is
// written off. Districts, auditors and institutions may not.
func TestWriteOffMakerChecker(t *testing.T) {
	const trainees = 60
	p, err := simulate.New(simulate.Config{Seed: 13, Year: 2025, Trainees: trainees, Keyer: keyer(t), Officials: true, Violations: true})
	if err != nil {
		t.Fatal(err)
	}
	var lanes [][]*nats.Msg
	add := func(fs []simulate.Fact) {
		var out []*nats.Msg
		for _, f := range fs {
			m, err := simulate.Msg("subsidy.in", f, false)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		lanes = append(lanes, out)
	}
	add(p.Reference())
	for i := range trainees {
		fs, _ := p.Trainee(i)
		add(fs)
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.json")
	tb, _ := json.Marshal(map[string]any{"tokens": []api.Token{
		{SHA256: api.HashToken("muni-a"), Scope: "municipal", Name: "cq-official-a"},
		{SHA256: api.HashToken("muni-b"), Scope: "municipal", Name: "cq-official-b"},
		{SHA256: api.HashToken("auditor"), Scope: "auditor", Official: "audit-official"},
		{SHA256: api.HashToken("district"), Scope: "district:cq-yuzhong", Official: "district-official"},
		{SHA256: api.HashToken("institution"), Scope: "institution:T001", Official: "inst-official"},
	}})
	if err := os.WriteFile(tokens, tb, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, filepath.Join(dir, "data"), "")
	cfg.APITokens = tokens
	led := start(t, cfg)
	nc, err := nats.Connect(led.addr.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	publish(t, js, lanes[:1])
	publish(t, js, lanes[1:])
	waitDrained(t, js)
	base := "http://" + led.addr.HTTPAddr

	type clawback struct {
		ClawbackID     string `json:"clawback_id"`
		OutstandingFen int64  `json:"outstanding_fen"`
		WrittenOffFen  int64  `json:"written_off_fen"`
	}
	type status struct {
		Entitlements []struct {
			Clawback *clawback `json:"clawback"`
		} `json:"entitlements"`
	}
	var key string
	var claw clawback
	for deadline := time.Now().Add(30 * time.Second); claw.ClawbackID == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var tl api.TraineeList
		getAuth(t, base+"/v1/trainees?limit=1000", "muni-a", &tl)
		for _, s := range tl.Trainees {
			if s.ClawedBackFen == 0 {
				continue
			}
			var st status
			getAuth(t, base+"/v1/trainees/"+s.PersonKey, "muni-a", &st)
			for _, e := range st.Entitlements {
				if e.Clawback != nil && e.Clawback.OutstandingFen > 0 {
					key, claw = s.PersonKey, *e.Clawback
				}
			}
		}
	}
	if claw.ClawbackID == "" {
		t.Fatal("the simulated programme raised no clawback")
	}
	amount := claw.OutstandingFen
	request := base + "/v1/clawbacks/" + claw.ClawbackID + "/write-off/request"
	approve := base + "/v1/clawbacks/" + claw.ClawbackID + "/write-off/approve"
	reqBody := `{"amount_fen": ` + strconv.FormatInt(amount, 10) + `, "reason": "机构已注销，无法追回"}`
	approval := func(by string) string {
		return `{"amount_fen": ` + strconv.FormatInt(amount, 10) + `, "reason": "机构已注销，无法追回", "requested_by": "` + by + `"}`
	}
	for _, tok := range []string{"auditor", "district", "institution"} {
		if code, body := postBody(t, request, tok, reqBody); code != http.StatusForbidden {
			t.Errorf("write-off request with %s = %d %s; want 403", tok, code, body)
		}
	}
	code, body := postBody(t, request, "muni-a", reqBody)
	var requested api.ActionResponse
	if code != http.StatusOK || json.Unmarshal(body, &requested) != nil || requested.OfficialID != "cq-official-a" {
		t.Fatalf("A requests the write-off = %d %s", code, body)
	}
	code, body = postBody(t, approve, "muni-a", approval("cq-official-a"))
	var rej api.ErrorBody
	if code != http.StatusConflict || json.Unmarshal(body, &rej) != nil || rej.Error.Reason != "REASON_CODE_WRITE_OFF_SAME_OFFICIAL" {
		t.Fatalf("A approves A's write-off = %d %s; want 409 REASON_CODE_WRITE_OFF_SAME_OFFICIAL", code, body)
	}
	code, body = postBody(t, approve, "muni-b", approval("cq-official-a"))
	var approved api.ActionResponse
	if code != http.StatusOK || json.Unmarshal(body, &approved) != nil || approved.OfficialID != "cq-official-b" {
		t.Fatalf("B approves = %d %s", code, body)
	}
	var rec api.AuditEvent
	getAuth(t, base+"/v1/audit/events/"+strconv.FormatUint(approved.Position, 10), "auditor", &rec)
	if rec.Type != "subsidy.v1.ClawbackWrittenOff" || !strings.Contains(string(rec.Payload), `"requested_by":"cq-official-a"`) ||
		!strings.Contains(string(rec.Payload), `"approved_by":"cq-official-b"`) {
		t.Errorf("the stored write-off: %s %s", rec.Type, rec.Payload)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var st status
		getAuth(t, base+"/v1/trainees/"+key, "muni-a", &st)
		var got clawback
		for _, e := range st.Entitlements {
			if e.Clawback != nil && e.Clawback.ClawbackID == claw.ClawbackID {
				got = *e.Clawback
			}
		}
		if got.WrittenOffFen == amount && got.OutstandingFen == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("clawback after the write-off: %+v; want %d fen written off", got, amount)
		}
	}
}

func postBody(t *testing.T, url, token, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
