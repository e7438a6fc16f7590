package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/cqhrss/subsidyledger/projections/scorecard"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/projections/anomaly"
	"github.com/cqhrss/subsidyledger/projections/fund"
	"github.com/cqhrss/subsidyledger/projections/notice"
	"github.com/cqhrss/subsidyledger/projections/trainee"
)

// The endpoint × role matrix: every route of the route table, for every
// kind of caller, with bearer tokens (TokenScope), on the generated
// history. A route without expectations here fails the test: whoever adds
// a route says who may use it.
//
// The fixture has no intake, so an action that passes every check answers
// 503 ("actions are not available"): that it got that far is what the
// matrix checks; services/ledgerd tests the actions against a real ledger.

// caller is one kind of caller and the records in its scope.
type caller struct {
	name, token string
	unit, inst  string
	// own* are records the caller may see (for municipal and auditor:
	// district A's).
	trainee, entitlement, institution, stream string
	event                                     events.Position
}

// world is what the matrix picked from the generated history.
type world struct {
	unitA, unitB, instX, instY string
	keyA, keyB, keyX, keyY     string // trainees only in A, only in B, only with X, only with Y
	entA, entB                 string // entitlements of units A and B (of keyA, keyB)
	claw                       string // a clawback of a trainee only in A
	posA, posB, posX, posY     events.Position
	head                       events.Position
}

func pickWorld(t *testing.T) world {
	t.Helper()
	var w world
	insts := getJSON[InstitutionList](t, "/v1/institutions?kind=training", "").Institutions
	sort.Slice(insts, func(i, j int) bool { return insts[i].Enrolments > insts[j].Enrolments })
	w.instX, w.unitA = insts[0].InstitutionID, insts[0].CurrentUnitCode
	for _, in := range insts[1:] {
		if in.CurrentUnitCode != w.unitA && in.Enrolments > 0 {
			w.instY, w.unitB = in.InstitutionID, in.CurrentUnitCode
			break
		}
	}
	if w.instY == "" {
		t.Fatal("no second unit with a training institution")
	}
	run, _ := fx.set.Runner(trainee.Name)
	m := run.Current().(*trainee.Model)
	entIn := func(st *trainee.Status, unit string) string {
		for _, e := range st.Entitlements {
			if e.Unit.CurrentCode == unit && e.Unit.Code == unit {
				return e.EntitlementID
			}
		}
		return ""
	}
	for from := 0; from >= 0; {
		var page []trainee.Summary
		page, from = m.Page(from, 500)
		for _, s := range page {
			st, _ := m.Get(s.PersonKey)
			inA, inB := st.InUnit(w.unitA), st.InUnit(w.unitB)
			withX, withY := st.WithInstitution(w.instX), st.WithInstitution(w.instY)
			if inA && !inB && w.entA == "" {
				if e := entIn(&st, w.unitA); e != "" {
					w.keyA, w.entA, w.posA = s.PersonKey, e, events.Position(st.Entitlements[0].Decision.Position)
				}
			}
			if inB && !inA && w.entB == "" {
				if e := entIn(&st, w.unitB); e != "" {
					w.keyB, w.entB, w.posB = s.PersonKey, e, events.Position(st.Entitlements[0].Decision.Position)
				}
			}
			if withX && !withY && !inB && w.keyX == "" {
				w.keyX = s.PersonKey
			}
			if withY && !withX && !inA && w.keyY == "" {
				w.keyY = s.PersonKey
			}
			if inA && !inB && w.claw == "" {
				for _, e := range st.Entitlements {
					if e.Clawback != nil {
						w.claw = e.Clawback.ClawbackID
					}
				}
			}
		}
	}
	if w.entA == "" || w.entB == "" || w.keyX == "" || w.keyY == "" || w.claw == "" {
		t.Fatalf("the generated history lacks a record the matrix needs: %+v", w)
	}
	first := func(stream string) events.Position {
		recs, err := fx.store.ReadStream(context.Background(), stream, events.Forwards, 0, 1)
		if err != nil || len(recs) == 0 {
			t.Fatalf("stream %s: %v", stream, err)
		}
		return recs[0].Position
	}
	w.posX, w.posY = first("institution-"+w.instX), first("institution-"+w.instY)
	head, err := fx.store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w.head = head
	return w
}

func matrixCallers(w world) []caller {
	a := caller{trainee: w.keyA, entitlement: w.entA, institution: w.instX, stream: "trainee-" + w.keyA, event: w.posA}
	c := func(name, token, unit, inst string, own caller) caller {
		own.name, own.token, own.unit, own.inst = name, token, unit, inst
		return own
	}
	return []caller{
		c("none", "", "", "", a),
		c("unknown", "guessed-token", "", "", a),
		c("municipal", "muni-token", "", "", a),
		c("auditor", "audit-token", "", "", a),
		c("districtA", "a-token", w.unitA, "", caller{trainee: w.keyA, entitlement: w.entA, institution: w.instX, stream: "fund-2025-" + w.unitA, event: w.posA}),
		c("districtB", "b-token", w.unitB, "", caller{trainee: w.keyB, entitlement: w.entB, institution: w.instY, stream: "fund-2025-" + w.unitB, event: w.posB}),
		c("institutionX", "x-token", "", w.instX, caller{trainee: w.keyX, entitlement: w.entA, institution: w.instX, stream: "institution-" + w.instX, event: w.posX}),
		c("institutionY", "y-token", "", w.instY, caller{trainee: w.keyY, entitlement: w.entB, institution: w.instY, stream: "institution-" + w.instY, event: w.posY}),
	}
}

// matrixTokens are the matrix's credentials (matrixCallers' tokens).
func matrixTokens(w world) []Token {
	return []Token{
		{SHA256: HashToken("muni-token"), Scope: "municipal", Name: "muni-official-1"},
		{SHA256: HashToken("audit-token"), Scope: "auditor", Name: "审计 read-only"},
		{SHA256: HashToken("a-token"), Scope: "district:" + w.unitA, Name: "district A", Official: "a-official-1"},
		{SHA256: HashToken("b-token"), Scope: "district:" + w.unitB, Name: "district B", Official: "b-official-1"},
		{SHA256: HashToken("x-token"), Scope: "institution:" + w.instX, Name: "inst-x"},
		{SHA256: HashToken("y-token"), Scope: "institution:" + w.instY, Name: "inst-y"},
	}
}

func matrixHandler(t *testing.T, w world) http.Handler {
	t.Helper()
	scope, err := TokenScope(matrixTokens(w))
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{Projections: fx.set, Store: fx.store, Scope: scope, Keyer: fx.keyer, Vault: fx.vault})
}

type reply struct {
	code   int
	body   []byte
	header http.Header
}

func do(h http.Handler, method, path, token string, body string) reply {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set(ScopeHeader, "municipal") // ignored: only the token counts
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return reply{rec.Code, rec.Body.Bytes(), rec.Header()}
}

// want is the status of each caller; a route lists every caller.
type want map[string]int

func all(code int) want {
	return want{"none": code, "unknown": code, "municipal": code, "auditor": code, "districtA": code, "districtB": code, "institutionX": code, "institutionY": code}
}

func (w want) with(code int, names ...string) want {
	out := want{}
	for k, v := range w {
		out[k] = v
	}
	for _, n := range names {
		out[n] = code
	}
	return out
}

// read: 401 without a valid token, 200 for everyone else.
var read = all(http.StatusOK).with(http.StatusUnauthorized, "none", "unknown")

// act: 401, 403 for auditor and institutions, 503 (no intake here) for
// those who may act.
var act = all(http.StatusForbidden).with(http.StatusUnauthorized, "none", "unknown").
	with(http.StatusServiceUnavailable, "municipal", "districtA", "districtB")

const (
	writeOffBody    = `{"amount_fen": 100, "reason": "机构已注销"}`
	writeOffApprove = `{"amount_fen": 100, "reason": "机构已注销", "requested_by": "someone-else"}`
)

// matrixRoutes are the expectations by route: the request path (for the
// caller's own records) and each caller's status.
func matrixRoutes(w world) map[string]struct {
	path func(c caller) string
	body string
	want want
} {
	type r = struct {
		path func(c caller) string
		body string
		want want
	}
	fixed := func(p string) func(caller) string { return func(caller) string { return p } }
	// The fixture keeps one trainee's personal data (unit piiUnit): a
	// district sees it only if that is its unit.
	inPII := func(base want) want {
		for _, d := range []struct{ name, unit string }{{"districtA", w.unitA}, {"districtB", w.unitB}} {
			if d.unit == piiUnit {
				base = base.with(http.StatusOK, d.name)
			} else {
				base = base.with(http.StatusNotFound, d.name)
			}
		}
		return base
	}
	personalData := "/v1/trainees/" + fx.piiKey + "/personal-data"
	return map[string]r{
		"POST /v1/trainees/lookup": {fixed("/v1/trainees/lookup"), `{"id_number": "` + fx.piiRecord.IDNumber + `"}`,
			inPII(read.with(http.StatusNotFound, "institutionX", "institutionY"))},
		"GET /v1/trainees/{person_key}/personal-data": {fixed(personalData), "",
			inPII(read.with(http.StatusForbidden, "institutionX", "institutionY"))},
		"DELETE /v1/trainees/{person_key}/personal-data": {fixed(personalData), "",
			all(http.StatusForbidden).with(http.StatusUnauthorized, "none", "unknown").with(http.StatusOK, "municipal")},
		"GET /v1/openapi.json":                {fixed("/v1/openapi.json"), "", all(http.StatusOK)},
		"GET /v1/status":                      {fixed("/v1/status"), "", read},
		"POST /v1/projections/{name}/rebuild": {fixed("/v1/projections/notice/rebuild"), "", all(http.StatusForbidden).with(http.StatusUnauthorized, "none", "unknown").with(http.StatusAccepted, "municipal")},
		"GET /v1/trainees":                    {fixed("/v1/trainees?limit=50"), "", read},
		"GET /v1/trainees/{person_key}":       {func(c caller) string { return "/v1/trainees/" + c.trainee }, "", read},
		"GET /v1/quota":                       {fixed("/v1/quota"), "", read.with(http.StatusForbidden, "institutionX", "institutionY")},
		"GET /v1/quota/{year}":                {fixed("/v1/quota/2026"), "", read.with(http.StatusForbidden, "institutionX", "institutionY")},
		"GET /v1/institutions":                {fixed("/v1/institutions"), "", read},
		"GET /v1/institutions/{id}":           {func(c caller) string { return "/v1/institutions/" + c.institution }, "", read},
		"GET /v1/fund":                        {fixed("/v1/fund"), "", read.with(http.StatusForbidden, "institutionX", "institutionY")},
		"GET /v1/fund/journal":                {fixed("/v1/fund/journal"), "", read.with(http.StatusForbidden, "institutionX", "institutionY")},
		"GET /v1/notice":                      {fixed("/v1/notice?on=all"), "", read},
		"GET /v1/anomalies":                   {fixed("/v1/anomalies"), "", read},
		"GET /v1/audit/streams/{stream}":      {func(c caller) string { return "/v1/audit/streams/" + c.stream }, "", read},
		"GET /v1/audit/events/{position}":     {func(c caller) string { return fmt.Sprintf("/v1/audit/events/%d", c.event) }, "", read},
		"GET /v1/audit/log": {fixed("/v1/audit/log?limit=20"), "",
			all(http.StatusForbidden).with(http.StatusUnauthorized, "none", "unknown").with(http.StatusOK, "municipal", "auditor")},
		"POST /v1/entitlements/{id}/confirm": {func(c caller) string { return "/v1/entitlements/" + c.entitlement + "/confirm" }, "", act},
		"POST /v1/entitlements/{id}/approve": {func(c caller) string { return "/v1/entitlements/" + c.entitlement + "/approve" }, "", act},
		"POST /v1/clawbacks/{id}/write-off/request": {func(caller) string { return "/v1/clawbacks/" + w.claw + "/write-off/request" }, writeOffBody,
			act.with(http.StatusForbidden, "districtA", "districtB")},
		"POST /v1/clawbacks/{id}/write-off/approve": {func(caller) string { return "/v1/clawbacks/" + w.claw + "/write-off/approve" }, writeOffApprove,
			act.with(http.StatusForbidden, "districtA", "districtB")},
	}
}

// readOnlyPOST are the POST routes that only read (a body keeps an ID
// number out of the URL).
var readOnlyPOST = map[string]bool{"POST /v1/trainees/lookup": true}

func TestRoleMatrix(t *testing.T) {
	w := pickWorld(t)
	h := matrixHandler(t, w)
	callers := matrixCallers(w)
	routes := matrixRoutes(w)
	seen := map[string]bool{}
	for _, rt := range (&server{}).table() {
		key := rt.method + " " + rt.pattern
		seen[key] = true
		spec, ok := routes[key]
		if !ok {
			t.Errorf("route %s has no expectations in the role matrix: say who may use it", key)
			continue
		}
		for _, c := range callers {
			code, ok := spec.want[c.name]
			if !ok {
				t.Errorf("route %s: no expectation for caller %s", key, c.name)
				continue
			}
			path := spec.path(c)
			if strings.HasSuffix(rt.pattern, "/personal-data") {
				// Present whatever erased it before (another test, or the
				// municipal DELETE of this one).
				if err := fx.vault.Put(fx.piiKey, fx.piiRecord); err != nil {
					t.Fatal(err)
				}
			}
			got := do(h, rt.method, path, c.token, spec.body)
			if got.code != code {
				t.Errorf("%s %s as %s = %d %.200s; want %d", rt.method, path, c.name, got.code, got.body, code)
			}
			if c.name == "auditor" && rt.method == "GET" && got.code != http.StatusOK {
				t.Errorf("auditor %s %s = %d; an auditor reads everything", rt.method, path, got.code)
			}
			if c.name == "auditor" && rt.method != "GET" && !readOnlyPOST[key] && got.code != http.StatusForbidden {
				t.Errorf("auditor %s %s = %d; an auditor changes nothing", rt.method, path, got.code)
			}
		}
	}
	for key := range routes {
		if !seen[key] {
			t.Errorf("the matrix expects route %s, which the table does not have", key)
		}
	}
	waitReady(t) // the municipal rebuild
}

// fakeKey, fakeEntitlement and friends exist nowhere.
const (
	fakeKey         = "abababababababababababababababababababababababababababababababab"
	fakeEntitlement = "0badc0de-0000-8000-8000-000000000000"
)

var digits = regexp.MustCompile(`[0-9]+`)

// TestGuessedIDs: a scoped caller asking for another unit's or
// institution's records by id gets exactly the answer (status and body)
// of an id that does not exist: nothing tells the two apart.
func TestGuessedIDs(t *testing.T) {
	w := pickWorld(t)
	h := matrixHandler(t, w)
	type probe struct {
		method, foreign, fake string
	}
	get := func(foreign, fake string) probe { return probe{"GET", foreign, fake} }
	post := func(foreign, fake string) probe { return probe{"POST", foreign, fake} }
	asOf := fmt.Sprintf("?as_of=%d", w.head)
	fakePos := fmt.Sprintf("/v1/audit/events/%d", w.head+1000)
	probes := map[string][]probe{
		"a-token": { // district A guessing district B's records
			get("/v1/trainees/"+w.keyB, "/v1/trainees/"+fakeKey),
			get("/v1/trainees/"+w.keyB+asOf, "/v1/trainees/"+fakeKey+asOf),
			get("/v1/institutions/"+w.instY, "/v1/institutions/T-nosuch"),
			get("/v1/institutions/"+w.instY+asOf, "/v1/institutions/T-nosuch"+asOf),
			get("/v1/audit/streams/trainee-"+w.keyB, "/v1/audit/streams/trainee-"+fakeKey),
			get("/v1/audit/streams/fund-2025-"+w.unitB, "/v1/audit/streams/fund-2025-cq-nosuch"),
			get("/v1/audit/streams/institution-"+w.instY, "/v1/audit/streams/institution-T-nosuch"),
			get(fmt.Sprintf("/v1/audit/events/%d", w.posB), fakePos),
			post("/v1/entitlements/"+w.entB+"/confirm", "/v1/entitlements/"+fakeEntitlement+"/confirm"),
			post("/v1/entitlements/"+w.entB+"/approve", "/v1/entitlements/"+fakeEntitlement+"/approve"),
		},
		"b-token": { // district B guessing district A's
			get("/v1/trainees/"+w.keyA, "/v1/trainees/"+fakeKey),
			get("/v1/institutions/"+w.instX, "/v1/institutions/T-nosuch"),
			get("/v1/audit/streams/trainee-"+w.keyA, "/v1/audit/streams/trainee-"+fakeKey),
			get("/v1/audit/streams/fund-2025-"+w.unitA, "/v1/audit/streams/fund-2025-cq-nosuch"),
			get(fmt.Sprintf("/v1/audit/events/%d", w.posA), fakePos),
			post("/v1/entitlements/"+w.entA+"/confirm", "/v1/entitlements/"+fakeEntitlement+"/confirm"),
			post("/v1/clawbacks/"+w.claw+"/write-off/request", "/v1/clawbacks/"+fakeEntitlement+"/write-off/request"),
		},
		"y-token": { // institution Y guessing institution X's
			get("/v1/trainees/"+w.keyX, "/v1/trainees/"+fakeKey),
			get("/v1/trainees/"+w.keyX+asOf, "/v1/trainees/"+fakeKey+asOf),
			get("/v1/institutions/"+w.instX, "/v1/institutions/T-nosuch"),
			get("/v1/audit/streams/institution-"+w.instX, "/v1/audit/streams/institution-T-nosuch"),
			get("/v1/audit/streams/trainee-"+w.keyX, "/v1/audit/streams/trainee-"+fakeKey),
			get(fmt.Sprintf("/v1/audit/events/%d", w.posX), fakePos),
			post("/v1/entitlements/"+w.entA+"/confirm", "/v1/entitlements/"+fakeEntitlement+"/confirm"),
		},
		"x-token": { // institution X guessing institution Y's
			get("/v1/trainees/"+w.keyY, "/v1/trainees/"+fakeKey),
			get("/v1/institutions/"+w.instY, "/v1/institutions/T-nosuch"),
			get("/v1/audit/streams/institution-"+w.instY, "/v1/audit/streams/institution-T-nosuch"),
			get(fmt.Sprintf("/v1/audit/events/%d", w.posY), fakePos),
		},
	}
	for token, ps := range probes {
		for _, p := range ps {
			body := ""
			if strings.Contains(p.foreign, "/write-off/") {
				body = writeOffBody
			}
			f := do(h, p.method, p.foreign, token, body)
			n := do(h, p.method, p.fake, token, body)
			if f.code != http.StatusNotFound && f.code != http.StatusForbidden {
				t.Errorf("%s %s with %s = %d %s; want 403 or 404", p.method, p.foreign, token, f.code, f.body)
			}
			// The same answer, but for the numbers of the ids themselves.
			if f.code != n.code || !bytes.Equal(digits.ReplaceAll(f.body, nil), digits.ReplaceAll(n.body, nil)) {
				t.Errorf("%s with %s: another's record answers %d %s, a nonexistent one %d %s", p.method, token, f.code, f.body, n.code, n.body)
			}
		}
	}
}

// TestEntitlementOfAnotherUnit: a district that sees a trainee through an
// enrolment in its unit, but not the trainee's entitlement, which is of
// another unit, may not act on it and learns nothing of it: the answer is
// that of an entitlement that does not exist (enrolInAnotherUnit makes the
// case).
func TestEntitlementOfAnotherUnit(t *testing.T) {
	run, _ := fx.set.Runner(trainee.Name)
	model := run.Current().(*trainee.Model)
	scope, err := TokenScope([]Token{{SHA256: HashToken("d-token"), Scope: "district:" + crossUnit, Official: "d-official-1"}})
	if err != nil {
		t.Fatal(err)
	}
	h := New(Config{Projections: fx.set, Store: fx.store, Scope: scope, Keyer: fx.keyer, Vault: fx.vault})
	var tl TraineeList
	if err := json.Unmarshal(do(h, "GET", "/v1/trainees?limit=1000", "d-token", "").body, &tl); err != nil {
		t.Fatal(err)
	}
	for _, s := range tl.Trainees {
		st, _ := model.Get(s.PersonKey)
		for _, e := range st.Entitlements {
			if e.Unit.Code == crossUnit || e.Unit.CurrentCode == crossUnit {
				continue
			}
			f := do(h, "POST", "/v1/entitlements/"+e.EntitlementID+"/confirm", "d-token", "")
			n := do(h, "POST", "/v1/entitlements/"+fakeEntitlement+"/confirm", "d-token", "")
			if f.code != http.StatusNotFound || f.code != n.code || !bytes.Equal(digits.ReplaceAll(f.body, nil), digits.ReplaceAll(n.body, nil)) {
				t.Errorf("%s confirming entitlement %s of %s: %d %s; a nonexistent one: %d %s", crossUnit, e.EntitlementID, e.Unit.CurrentCode, f.code, f.body, n.code, n.body)
			}
			return
		}
	}
	t.Fatalf("%s sees no trainee with an entitlement of another unit", crossUnit)
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pagesOf pages through the trainees token sees, 7 at a time, and checks
// that the pages hold all of them once, in order, and that each cursor
// counts the token's own trainees only (7, 14, ...): a cursor into the
// city-wide order would tell how many others registered in between.
func pagesOf(t *testing.T, getAs func(path, token string, v any) []byte, token string, all []trainee.Summary) {
	t.Helper()
	var got []string
	from := 0
	for {
		var tl TraineeList
		getAs(fmt.Sprintf("/v1/trainees?limit=7&from=%d", from), token, &tl)
		for _, s := range tl.Trainees {
			got = append(got, s.PersonKey)
		}
		if tl.Next == nil {
			break
		}
		if *tl.Next != from+7 || len(tl.Trainees) != 7 {
			t.Fatalf("%s: page from %d holds %d, next %d; want 7 and %d", token, from, len(tl.Trainees), *tl.Next, from+7)
		}
		from = *tl.Next
	}
	if len(got) != len(all) {
		t.Fatalf("%s: pages hold %d trainees; one page of all holds %d", token, len(got), len(all))
	}
	for i := range all {
		if got[i] != all[i].PersonKey {
			t.Fatalf("%s: trainee %d of the pages is %s; of one page, %s", token, i, got[i], all[i].PersonKey)
		}
	}
}

// TestScopedTotals: what a scoped caller counts, lists and exports holds
// only its own unit's or institution's records.
func TestScopedTotals(t *testing.T) {
	w := pickWorld(t)
	h := matrixHandler(t, w)
	getAs := func(path, token string, v any) []byte {
		t.Helper()
		r := do(h, "GET", path, token, "")
		if r.code != http.StatusOK {
			t.Fatalf("GET %s with %s = %d %s", path, token, r.code, r.body)
		}
		if v != nil {
			if err := json.Unmarshal(r.body, v); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
		}
		return r.body
	}
	run, _ := fx.set.Runner(trainee.Name)
	model := run.Current().(*trainee.Model)
	// A status's Summary is its list row (what an institution's rows are
	// made from).
	var everyone TraineeList
	getAs("/v1/trainees?limit=1000", "muni-token", &everyone)
	for _, row := range everyone.Trainees {
		full, _ := model.Get(row.PersonKey)
		if a, b := jsonOf(t, row), jsonOf(t, full.Summary()); a != b {
			t.Fatalf("list row %s; the status sums to %s", a, b)
		}
	}
	var all QuotaResponse
	getAs("/v1/quota/2026", "muni-token", &all)
	var allNotices notice.List
	getAs("/v1/notice?on=all", "muni-token", &allNotices)
	if allNotices.Closed == nil || allNotices.Open != len(allNotices.Entries) {
		t.Errorf("municipal notice: %d open of %d listed, closed %v", allNotices.Open, len(allNotices.Entries), allNotices.Closed)
	}
	for _, d := range []struct{ token, unit, foreignKey string }{{"a-token", w.unitA, w.keyB}, {"b-token", w.unitB, w.keyA}} {
		var mine QuotaResponse
		getAs("/v1/quota/2026", d.token, &mine)
		var row int64 = -1
		for _, u := range all.ByUnit {
			if u.UnitCode == d.unit {
				row = u.Enrolled
			}
		}
		if mine.Totals.Enrolled != row || len(mine.ByUnit) != 1 {
			t.Errorf("%s quota: %d enrolled in %d units; the municipal view's row of %s has %d", d.token, mine.Totals.Enrolled, len(mine.ByUnit), d.unit, row)
		}
		if csv := getAs("/v1/trainees?format=csv", d.token, nil); bytes.Contains(csv, []byte(d.foreignKey)) {
			t.Errorf("%s trainee export contains a trainee of another unit", d.token)
		}
		var tl TraineeList
		getAs("/v1/trainees?limit=1000", d.token, &tl)
		for _, s := range tl.Trainees {
			if st, _ := model.Get(s.PersonKey); !st.InUnit(d.unit) {
				t.Errorf("%s lists trainee %s of units %s/%s", d.token, s.PersonKey, s.UnitCode, s.CurrentUnitCode)
			}
		}
		pagesOf(t, getAs, d.token, tl.Trainees)
		var il InstitutionList
		getAs("/v1/institutions", d.token, &il)
		for _, in := range il.Institutions {
			if in.UnitCode != d.unit && in.CurrentUnitCode != d.unit {
				t.Errorf("%s lists institution %s of unit %s", d.token, in.InstitutionID, in.CurrentUnitCode)
			}
		}
		var l fund.Ledger
		getAs("/v1/fund", d.token, &l)
		for _, f := range l.Funds {
			if f.UnitCode != d.unit {
				t.Errorf("%s sees fund %d/%s", d.token, f.Year, f.UnitCode)
			}
		}
		var j JournalResponse
		getAs("/v1/fund/journal?limit=1000", d.token, &j)
		for _, e := range j.Entries {
			if e.UnitCode != d.unit {
				t.Errorf("%s sees journal entry of %s", d.token, e.UnitCode)
			}
		}
		var nl notice.List
		getAs("/v1/notice?on=all", d.token, &nl)
		for _, e := range nl.Entries {
			if e.CurrentUnitCode != d.unit && e.UnitCode != d.unit {
				t.Errorf("%s sees a notice of %s", d.token, e.CurrentUnitCode)
			}
		}
		if nl.Open != len(nl.Entries) || nl.Closed != nil {
			t.Errorf("%s notice counts %d open (of %d listed), closed %v: counts of other units' notices", d.token, nl.Open, len(nl.Entries), nl.Closed)
		}
	}
	concurrent := 0 // concurrent-enrolment flags the institutions saw
	var allInsts InstitutionList
	getAs("/v1/institutions", "muni-token", &allInsts)
	// namesOther reports whether text names an institution other than own.
	namesOther := func(text, own string) bool {
		for _, in := range allInsts.Institutions {
			if id := in.InstitutionID; id != own && regexp.MustCompile(regexp.QuoteMeta(id)+`\b`).MatchString(text) {
				return true
			}
		}
		return false
	}
	for _, in := range []struct{ token, inst, foreignKey string }{{"x-token", w.instX, w.keyY}, {"y-token", w.instY, w.keyX}} {
		if csv := getAs("/v1/trainees?format=csv", in.token, nil); bytes.Contains(csv, []byte(in.foreignKey)) {
			t.Errorf("%s trainee export contains another institution's trainee", in.token)
		}
		var tl TraineeList
		getAs("/v1/trainees?limit=1000", in.token, &tl)
		if len(tl.Trainees) == 0 {
			t.Errorf("%s sees none of its trainees", in.token)
		}
		pagesOf(t, getAs, in.token, tl.Trainees)
		// Its own records only, of a trainee of several institutions too.
		cut := 0
		for _, row := range tl.Trainees {
			var st trainee.Status
			getAs("/v1/trainees/"+row.PersonKey, in.token, &st)
			full, _ := model.Get(row.PersonKey)
			if len(st.Enrolments)+len(st.Attempts)+len(st.Advances)+len(st.Entitlements)+len(st.Evidence) <
				len(full.Enrolments)+len(full.Attempts)+len(full.Advances)+len(full.Entitlements)+len(full.Evidence) {
				cut++
			}
			for _, e := range st.Enrolments {
				if e.TrainingInstitutionID != in.inst {
					t.Errorf("%s sees trainee %s's enrolment at %s", in.token, row.PersonKey, e.TrainingInstitutionID)
				}
			}
			for _, a := range st.Advances {
				if a.TrainingInstitutionID != in.inst {
					t.Errorf("%s sees trainee %s's advance by %s", in.token, row.PersonKey, a.TrainingInstitutionID)
				}
			}
			for _, a := range st.Attempts {
				if a.TrainingInstitutionID != in.inst && a.EvaluationInstitutionID != in.inst {
					t.Errorf("%s sees trainee %s's attempt %s", in.token, row.PersonKey, a.AssessmentID)
				}
			}
			for _, e := range st.Entitlements {
				if e.TrainingInstitutionID != in.inst && e.PayeeInstitutionID != in.inst && e.EvaluationInstitutionID != in.inst {
					t.Errorf("%s sees trainee %s's entitlement %s", in.token, row.PersonKey, e.EntitlementID)
				}
			}
			if len(st.Evidence) != 0 {
				t.Errorf("%s sees trainee %s's eligibility evidence", in.token, row.PersonKey)
			}
			if a, b := jsonOf(t, row), jsonOf(t, st.Summary()); a != b {
				t.Errorf("%s list row %s; its status sums to %s", in.token, a, b)
			}
			if r := do(h, "GET", "/v1/audit/streams/trainee-"+row.PersonKey, in.token, ""); r.code != http.StatusNotFound {
				t.Errorf("%s reads trainee %s's audit trail: %d", in.token, row.PersonKey, r.code)
			}
		}
		if cut == 0 {
			t.Errorf("%s: none of its %d trainees has records it may not see; the fixture does not test the cut", in.token, len(tl.Trainees))
		}
		for _, s := range tl.Trainees {
			if st, _ := model.Get(s.PersonKey); !st.WithInstitution(in.inst) {
				t.Errorf("%s lists trainee %s", in.token, s.PersonKey)
			}
		}
		var il InstitutionList
		getAs("/v1/institutions?format=csv", in.token, nil)
		getAs("/v1/institutions", in.token, &il)
		if len(il.Institutions) != 1 || il.Institutions[0].InstitutionID != in.inst {
			t.Errorf("%s institutions = %+v", in.token, il.Institutions)
		}
		var a anomaly.List
		getAs("/v1/anomalies", in.token, &a)
		for _, f := range a.Flags {
			if f.InstitutionID != in.inst {
				t.Errorf("%s sees a flag of %s", in.token, f.InstitutionID)
			}
			// A concurrent-enrolment flag's recorded detail names the
			// other institution and its enrolment.
			if f.Reason.Number == int32(subsidyv1.ReasonCode_REASON_CODE_CONCURRENT_ENROLMENT) {
				concurrent++
				if j := jsonOf(t, f); namesOther(j, in.inst) {
					t.Errorf("%s sees another institution's enrolment in a flag: %s", in.token, j)
				}
				st, _ := model.Get(f.Subject)
				for _, ff := range st.ForInstitution(in.inst).Flags {
					if namesOther(ff.Detail, in.inst) {
						t.Errorf("%s sees another institution's enrolment in trainee %s's flag: %s", in.token, f.Subject, ff.Detail)
					}
				}
				var viaAPI trainee.Status
				getAs("/v1/trainees/"+f.Subject, in.token, &viaAPI)
				if j := jsonOf(t, viaAPI.Flags); namesOther(j, in.inst) {
					t.Errorf("%s sees another institution in trainee %s's flags: %s", in.token, f.Subject, j)
				}
			}
		}
		if csv := getAs("/v1/anomalies?format=csv", in.token, nil); namesOther(string(csv), in.inst) {
			t.Errorf("%s anomalies export names another institution", in.token)
		}
		var card scorecard.Card
		getAs("/v1/institutions/"+in.inst, in.token, &card)
		for _, f := range card.Flags {
			if namesOther(f.Detail, in.inst) {
				t.Errorf("%s sees another institution in its own card's flag: %s", in.token, f.Detail)
			}
		}
		var nl notice.List
		getAs("/v1/notice?on=all", in.token, &nl)
		for _, e := range nl.Entries {
			if e.TrainingInstitutionID != in.inst {
				t.Errorf("%s sees a notice of %s", in.token, e.TrainingInstitutionID)
			}
		}
		if nl.Open != len(nl.Entries) || nl.Closed != nil {
			t.Errorf("%s notice counts %d open (of %d listed), closed %v: counts of other institutions' notices", in.token, nl.Open, len(nl.Entries), nl.Closed)
		}
	}
	if concurrent == 0 {
		t.Errorf("neither institution has a concurrent-enrolment flag: the fixture does not test their detail")
	}
}
