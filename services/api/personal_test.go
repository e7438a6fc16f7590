package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/services/internal/logbuf"
)

// TestPersonalData: the lookup by ID number, reading and erasing personal
// data, under every scope; each access logged with the person key only and
// counted without personal labels.
func TestPersonalData(t *testing.T) {
	var logs logbuf.Buffer
	reg := prometheus.NewRegistry()
	keyer, _ := person.NewKeyer([]byte("api test: the person-key secret, 32 bytes or more"))
	h := New(Config{Projections: fx.set, Store: fx.store, Registerer: reg, Keyer: keyer, Vault: fx.vault,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	restore := func() {
		if err := fx.vault.Put(fx.piiKey, fx.piiRecord); err != nil {
			t.Fatal(err)
		}
	}
	restore() // other tests may have erased it
	t.Cleanup(restore)
	do := func(h http.Handler, method, path, scope, body string) (int, map[string]any) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if scope != "" {
			req.Header.Set(ScopeHeader, scope)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		var v map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatalf("%s %s (%s): %v: %s", method, path, scope, err, w.Body)
		}
		return w.Code, v
	}
	code := func(v map[string]any) string {
		e, _ := v["error"].(map[string]any)
		s, _ := e["code"].(string)
		return s
	}
	id, pk := fx.piiRecord.IDNumber, fx.piiKey
	lookup := `{"id_number": "` + id + `"}`
	pd := "/v1/trainees/" + pk + "/personal-data"

	// Without a vault: 503 with its own code.
	bare := New(Config{Projections: fx.set, Store: fx.store})
	for _, c := range []struct{ method, path, body string }{{"POST", "/v1/trainees/lookup", lookup}, {"GET", pd, ""}, {"DELETE", pd, ""}} {
		if st, v := do(bare, c.method, c.path, "", c.body); st != 503 || code(v) != string(CodePersonalDataUnavailable) {
			t.Errorf("%s %s without a vault = %d %v; want 503 %s", c.method, c.path, st, v, CodePersonalDataUnavailable)
		}
	}

	_, notFound := do(h, "POST", "/v1/trainees/lookup", "district:cq-banan", lookup)
	for _, tc := range []struct {
		scope string
		want  int
	}{{"municipal", 200}, {"auditor", 200}, {"district:" + piiUnit, 200}, {"district:cq-banan", 404}, {"institution:" + piiInstitutions[0], 200}, {"institution:T0003", 404}} {
		st, v := do(h, "POST", "/v1/trainees/lookup", tc.scope, lookup)
		if st != tc.want {
			t.Errorf("lookup (%s) = %d %v; want %d", tc.scope, st, v, tc.want)
		}
		if st == 200 && v["person_key"] != pk {
			t.Errorf("lookup (%s) = %v; want person key %s", tc.scope, v, pk)
		}
		if st == 404 && code(v) != code(notFound) {
			t.Errorf("lookup (%s) = %v; want the same not-found body as for an unknown trainee", tc.scope, v)
		}
	}
	// An institution's lookup shows what GET /v1/trainees/{key} shows it:
	// its own enrolment, not the other institution's, and no evidence.
	inst := "institution:" + piiInstitutions[0]
	_, looked := do(h, "POST", "/v1/trainees/lookup", inst, lookup)
	_, viaGet := do(h, "GET", "/v1/trainees/"+pk, inst, "")
	if got, want := fmtJSON(looked["trainee"]), fmtJSON(viaGet); got != want || strings.Contains(got, piiInstitutions[1]) || strings.Contains(got, "api-test-register") || !strings.Contains(got, "api-test-pii-enr-1") {
		t.Errorf("lookup as %s shows %s; want what GET shows it, its own enrolment only: %s", inst, got, want)
	}
	if _, v := do(h, "POST", "/v1/trainees/lookup", "municipal", lookup); !strings.Contains(fmtJSON(v), piiInstitutions[1]) || !strings.Contains(fmtJSON(v), "api-test-register") {
		t.Errorf("lookup as municipal = %v; want both enrolments and the evidence (the test shows nothing otherwise)", v)
	}
	other := "11010519491231002X" // valid, not a trainee here
	if st, v := do(h, "POST", "/v1/trainees/lookup", "municipal", `{"id_number": "`+other+`"}`); st != 404 || code(v) != code(notFound) {
		t.Errorf("lookup of an unknown person = %d %v; want 404 like out of scope", st, v)
	}
	for _, body := range []string{`{"id_number": "500103200305120012"}`, `{"id": "x"}`, `not json`, ``} {
		st, v := do(h, "POST", "/v1/trainees/lookup", "municipal", body)
		if st != 400 || strings.Contains(fmtJSON(v), "500103200305120012") {
			t.Errorf("lookup %q = %d %v; want 400 without the number", body, st, v)
		}
	}

	for _, tc := range []struct {
		scope string
		want  int
	}{{"municipal", 200}, {"district:" + piiUnit, 200}, {"district:cq-banan", 404}, {"auditor", 200}, {"institution:T0001", 403}} {
		st, v := do(h, "GET", pd, tc.scope, "")
		if st != tc.want {
			t.Errorf("GET personal-data (%s) = %d %v; want %d", tc.scope, st, v, tc.want)
		}
		if st == 200 && (v["id_number"] != id || v["name"] != fx.piiRecord.Name || v["payee_account"] != fx.piiRecord.PayeeAccount) {
			t.Errorf("GET personal-data (%s) = %v; want %+v", tc.scope, v, fx.piiRecord)
		}
	}
	if st, _ := do(h, "GET", "/v1/trainees/"+strings.Repeat("0", 64)+"/personal-data", "municipal", ""); st != 404 {
		t.Errorf("GET personal-data of an unknown key = %d; want 404", st)
	}
	for _, scope := range []string{"auditor", "district:" + piiUnit, "institution:T0001"} {
		if st, v := do(h, "DELETE", pd, scope, ""); st != 403 {
			t.Errorf("DELETE personal-data (%s) = %d %v; want 403", scope, st, v)
		}
	}
	if st, v := do(h, "DELETE", pd, "municipal", ""); st != 200 || v["erased"] != true {
		t.Fatalf("DELETE personal-data (municipal) = %d %v; want 200 erased", st, v)
	}
	if st, v := do(h, "GET", pd, "municipal", ""); st != 410 || code(v) != string(CodeErased) {
		t.Errorf("GET personal-data after erasure = %d %v; want 410 %s", st, v, CodeErased)
	}

	// Logged with the person key, never the plain data; counted without
	// personal labels.
	l := logs.String()
	if !strings.Contains(l, "person_key="+pk) || !strings.Contains(l, "action=erase") {
		t.Errorf("the accesses are not logged with their person key:\n%s", l)
	}
	for _, s := range []string{id, other, "500103200305120012", fx.piiRecord.Name, fx.piiRecord.PayeeAccount} {
		if strings.Contains(l, s) {
			t.Errorf("the log holds %q", s)
		}
	}
	if n := testutil.ToFloat64(accessCounter(t, reg, "read", "municipal", "ok")); n != 1 {
		t.Errorf("read/municipal/ok accesses = %v; want 1", n)
	}
	var out bytes.Buffer
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		out.WriteString(mf.String())
	}
	if strings.Contains(out.String(), pk) || strings.Contains(out.String(), id) {
		t.Error("a metric carries the person key or the ID number")
	}
}

func fmtJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// accessCounter returns the registered access counter's child with these
// labels.
func accessCounter(t *testing.T, reg *prometheus.Registry, action, role, outcome string) prometheus.Collector {
	t.Helper()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "subsidy_ledger_personal_data_access_total",
		Help: "Accesses to personal data over the API (lookup by ID number, read, erase), by scope role and outcome."}, []string{"action", "role", "outcome"})
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			return are.ExistingCollector.(*prometheus.CounterVec).WithLabelValues(action, role, outcome)
		}
		t.Fatal(err)
	}
	t.Fatal("the access counter was not registered")
	return nil
}
