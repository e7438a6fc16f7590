package api

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/anomaly"
	"github.com/cqhrss/subsidyledger/projections/fund"
	"github.com/cqhrss/subsidyledger/projections/notice"
	"github.com/cqhrss/subsidyledger/projections/readmodels"
	"github.com/cqhrss/subsidyledger/projections/scorecard"
	"github.com/cqhrss/subsidyledger/projections/trainee"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/api/apitest"
	"github.com/cqhrss/subsidyledger/services/api/changefeed"
	"github.com/cqhrss/subsidyledger/services/vault"
)

// fixture is a ledger with a generated history, its projections caught up,
// and the API on an httptest server.
type fixture struct {
	srv   *httptest.Server
	reg   *prometheus.Registry
	set   *projections.Set
	store *bolt.Store
	h     http.Handler
	// vault holds the personal data of one trainee, piiKey, registered in
	// unit piiUnit from the ID number piiRecord.IDNumber.
	vault     *vault.Vault
	keyer     *person.Keyer
	piiKey    string
	piiRecord vault.Record
}

// The trainee whose personal data the fixture keeps.
const piiUnit = "cq-yuzhong"

// piiInstitutions are the training institutions the trainee of piiRecord
// is enrolled at.
var piiInstitutions = [2]string{"T0001", "T0002"}

var piiRecord = vault.Record{IDNumber: "500103200305120011", Name: "李娜娜", PayeeAccount: "6217000099990001", SubmittedAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}

var fx *fixture

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "api-test")
	if err != nil {
		panic(err)
	}
	var stop func()
	fx, stop, err = newFixture(filepath.Join(dir, "ledger.db"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// crossUnit is the unit enrolInAnotherUnit enrols a trainee of another unit
// in.
const crossUnit = "cq-wanzhou"

// enrolInAnotherUnit gives the first entitled trainee not of crossUnit an
// enrolment there (at the institution that trained them, for another
// qualification), so that crossUnit's district sees the trainee but not
// the entitlement, which is of the trainee's unit.
func enrolInAnotherUnit(store events.Store) error {
	page, err := store.ReadAll(context.Background(), 0, 0)
	if err != nil {
		return err
	}
	for _, rec := range page {
		if rec.Type != "subsidy.v1.SubsidyEntitled" {
			continue
		}
		d, err := codec.Decode(rec)
		if err != nil {
			return err
		}
		e := d.Payload.(*subsidyv1.SubsidyEntitled)
		if e.GetUnitCode() == crossUnit || e.GetTrainingInstitutionId() == "" {
			continue
		}
		q := proto.Clone(e.GetQualification()).(*subsidyv1.Qualification)
		q.Level = subsidyv1.Level_LEVEL_SENIOR
		if e.GetQualification().GetLevel() == subsidyv1.Level_LEVEL_SENIOR {
			q.Level = subsidyv1.Level_LEVEL_JUNIOR
		}
		enr := &subsidyv1.Enrolled{EnrolmentId: "api-test-cross-unit", PersonKey: e.GetPersonKey(), TrainingInstitutionId: e.GetTrainingInstitutionId(),
			Qualification: q, EnrolledOn: refdata.D(2026, 3, 2).Proto(), UnitCode: crossUnit}
		ev, err := codec.Encode(events.DeriveID("api-test-cross-unit"), rules.TraineeStream(e.GetPersonKey()),
			&subsidyv1.Envelope{Source: "enrolment", RecordedAt: timestamppb.New(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))}, enr)
		if err != nil {
			return err
		}
		_, err = store.Append(context.Background(), rules.TraineeStream(e.GetPersonKey()), events.Any, ev)
		return err
	}
	return fmt.Errorf("api test fixture: no entitled trainee outside %s", crossUnit)
}

func newFixture(path string) (*fixture, func(), error) {
	store, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		return nil, nil, err
	}
	if err := apitest.Generate(context.Background(), store, 3000); err != nil {
		return nil, nil, err
	}
	keyer, err := person.NewKeyer([]byte("api test: the person-key secret, 32 bytes or more"))
	if err != nil {
		return nil, nil, err
	}
	pk, _ := keyer.Key(piiRecord.IDNumber)
	reg0 := &subsidyv1.TraineeRegistered{PersonKey: pk, MaskedName: person.MaskName(piiRecord.Name), MaskedId: person.MaskID(piiRecord.IDNumber),
		UnitCode: piiUnit, Education: subsidyv1.Education_EDUCATION_BACHELOR, GraduationYear: 2026}
	ev, err := codec.Encode(events.DeriveID("api-test", pk), rules.TraineeStream(pk), &subsidyv1.Envelope{Source: "enrolment", RecordedAt: timestamppb.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))}, reg0)
	if err != nil {
		return nil, nil, err
	}
	if _, err := store.Append(context.Background(), rules.TraineeStream(pk), events.NoStream, ev); err != nil {
		return nil, nil, err
	}
	// Evidence and enrolments at two institutions: what one of them may
	// see of the trainee is its own enrolment, no evidence.
	q := &subsidyv1.Qualification{Occupation: subsidyv1.Occupation(1), Level: subsidyv1.Level_LEVEL_JUNIOR}
	for i, m := range []proto.Message{
		&subsidyv1.EligibilityEvidenceRecorded{EvidenceId: "api-test-pii-evidence", PersonKey: pk, Category: subsidyv1.EligibilityCategory(1),
			Source: "api-test-register", SnapshotAt: timestamppb.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)), Confirmed: true, GraduationYear: 2026},
		&subsidyv1.Enrolled{EnrolmentId: "api-test-pii-enr-1", PersonKey: pk, TrainingInstitutionId: piiInstitutions[0], Qualification: q,
			EnrolledOn: refdata.D(2026, 3, 2).Proto(), UnitCode: piiUnit},
		&subsidyv1.Enrolled{EnrolmentId: "api-test-pii-enr-2", PersonKey: pk, TrainingInstitutionId: piiInstitutions[1], Qualification: q,
			EnrolledOn: refdata.D(2026, 3, 3).Proto(), UnitCode: piiUnit},
	} {
		ev, err := codec.Encode(events.DeriveID("api-test-pii", pk, fmt.Sprint(i)), rules.TraineeStream(pk), &subsidyv1.Envelope{Source: "enrolment", RecordedAt: timestamppb.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))}, m)
		if err != nil {
			return nil, nil, err
		}
		if _, err := store.Append(context.Background(), rules.TraineeStream(pk), events.Exact(uint64(i)), ev); err != nil {
			return nil, nil, err
		}
	}
	if err := enrolInAnotherUnit(store); err != nil {
		return nil, nil, err
	}
	v, err := vault.Open(filepath.Join(filepath.Dir(path), "personal.db"), make([]byte, vault.KeySize))
	if err != nil {
		return nil, nil, err
	}
	if err := v.Put(pk, piiRecord); err != nil {
		return nil, nil, err
	}
	reg := prometheus.NewRegistry()
	feed := changefeed.New(changefeed.Config{Registerer: reg}) // its metrics are linted too; it never publishes here
	set, err := projections.NewSet(projections.Config{Store: store, Metrics: projections.NewMetrics(reg), Observer: feed.Observer}, readmodels.Factories()...)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { set.Run(ctx); close(done) }()
	deadline := time.Now().Add(60 * time.Second)
	for set.Ready() != nil {
		if time.Now().After(deadline) {
			cancel()
			return nil, nil, fmt.Errorf("projections not ready: %v", set.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
	now := time.Date(2026, 5, 20, 10, 0, 0, 0, time.UTC)
	h := New(Config{Projections: set, Store: store, Registerer: reg, Now: func() time.Time { return now }, Keyer: keyer, Vault: v})
	srv := httptest.NewServer(h)
	return &fixture{srv: srv, reg: reg, set: set, store: store, h: h, vault: v, keyer: keyer, piiKey: pk, piiRecord: piiRecord}, func() {
		srv.Close()
		cancel()
		<-done
		store.Close()
		v.Close()
	}, nil
}

func get(t *testing.T, path, scope string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", fx.srv.URL+path, nil)
	if scope != "" {
		req.Header.Set(ScopeHeader, scope)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func getJSON[T any](t *testing.T, path, scope string) T {
	t.Helper()
	resp, b := get(t, path, scope)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s (%s) = %d %s", path, scope, resp.StatusCode, b)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return v
}

// samples are concrete values for the documented path parameters.
func samples(t *testing.T) map[string]string {
	t.Helper()
	tl := getJSON[TraineeList](t, "/v1/trainees?limit=200", "")
	var key string
	for _, tr := range tl.Trainees {
		if tr.Entitlements > 0 {
			key = tr.PersonKey
			break
		}
	}
	if key == "" {
		t.Fatal("no trainee with an entitlement")
	}
	return map[string]string{"person_key": key, "year": "2026", "id": "T0001", "stream": "trainee-" + key, "position": "5", "name": trainee.Name}
}

// TestOpenAPIMatchesHandlers checks the served OpenAPI document against the
// mux: every route the API registers is documented with its parameters,
// every documented operation is answered (not the mux's 404/405), and every
// documented JSON response validates against its schema.
func TestOpenAPIMatchesHandlers(t *testing.T) {
	doc := getJSON[map[string]any](t, "/v1/openapi.json", "")
	paths := doc["paths"].(map[string]any)
	s := &server{}
	documented := map[string]bool{}
	for p, item := range paths {
		for m := range item.(map[string]any) {
			documented[strings.ToUpper(m)+" "+p] = true
		}
	}
	registered := map[string]bool{}
	for _, rt := range s.table() {
		registered[rt.method+" "+rt.pattern] = true
		if !documented[rt.method+" "+rt.pattern] {
			t.Errorf("route %s %s is not in the OpenAPI document", rt.method, rt.pattern)
		}
		for _, seg := range strings.Split(rt.pattern, "/") {
			if strings.HasPrefix(seg, "{") {
				name := strings.Trim(seg, "{}")
				found := false
				for _, p := range rt.params {
					found = found || (p.name == name && p.in == "path")
				}
				if !found {
					t.Errorf("route %s: path parameter %s undocumented", rt.pattern, name)
				}
			}
		}
		// A route that takes as_of documents it, and only such a route
		// (the others answer 400 to it).
		if takes := slices.ContainsFunc(rt.params, func(p param) bool { return p.name == "as_of" }); takes != rt.asOf {
			t.Errorf("route %s %s takes as_of: %t; documents it: %t", rt.method, rt.pattern, rt.asOf, takes)
		}
	}
	audit := map[string]bool{} // served beside the API (services/ledgerd checks them)
	for _, op := range AuditOperations() {
		audit[op], registered[op] = true, true
	}
	for op := range documented {
		if !registered[op] {
			t.Errorf("documented operation %s has no route", op)
		}
	}
	v := &apitest.Validator{Doc: doc}
	sample := samples(t)
	picked := pickWorld(t)
	actions := map[string]bool{}
	for _, rt := range s.table() {
		actions[rt.method+" "+rt.pattern] = rt.action
	}
	for op := range documented {
		if audit[op] {
			continue
		}
		method, path, _ := strings.Cut(op, " ")
		url := path
		switch {
		case strings.HasPrefix(path, "/v1/entitlements/"):
			url = strings.ReplaceAll(url, "{id}", picked.entA)
		case strings.HasPrefix(path, "/v1/clawbacks/"):
			url = strings.ReplaceAll(url, "{id}", picked.claw)
		}
		for k, val := range sample {
			url = strings.ReplaceAll(url, "{"+k+"}", val)
		}
		var reqBody io.Reader
		switch {
		case actions[op] && strings.HasPrefix(path, "/v1/entitlements/"):
			// confirm and approve take no body
		case actions[op] && strings.HasSuffix(path, "/approve"):
			reqBody = strings.NewReader(writeOffApprove)
		case actions[op]:
			reqBody = strings.NewReader(writeOffBody)
		case path == "/v1/trainees/lookup":
			reqBody = strings.NewReader(`{"id_number": "` + fx.piiRecord.IDNumber + `"}`)
		case strings.HasSuffix(path, "/personal-data"):
			url = strings.ReplaceAll(path, "{person_key}", fx.piiKey)
			if err := fx.vault.Put(fx.piiKey, fx.piiRecord); err != nil { // again, after an erasure
				t.Fatal(err)
			}
		}
		req := httptest.NewRequest(method, url, reqBody)
		req.Header.Set(OfficialHeader, "openapi-official")
		w := httptest.NewRecorder()
		fx.h.ServeHTTP(w, req)
		want := 200
		for _, rt := range s.table() {
			if rt.method == method && rt.pattern == path && rt.status != 0 {
				want = rt.status
			}
		}
		if actions[op] {
			// No intake in this fixture: an action that passes every
			// check answers 503 (services/ledgerd checks the 200s).
			want = 503
		}
		if w.Code != want || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Errorf("%s %s = %d %q %.200s; want %d JSON", method, url, w.Code, w.Header().Get("Content-Type"), w.Body.String(), want)
			continue
		}
		var body any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Errorf("%s %s: %v", method, url, err)
			continue
		}
		if err := v.Response(path, strings.ToLower(method), fmt.Sprint(want), body); err != nil {
			t.Errorf("%s %s: response does not match the document: %v", method, url, err)
		}
	}
	// Errors too.
	req := httptest.NewRequest("GET", "/v1/quota/notayear", nil)
	w := httptest.NewRecorder()
	fx.h.ServeHTTP(w, req)
	var body any
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	if err := v.Response("/v1/quota/{year}", "get", "400", body); w.Code != 400 || err != nil {
		t.Errorf("bad year = %d %s (%v)", w.Code, w.Body, err)
	}
	// Wait for the rebuild the document test started.
	waitReady(t)
}

func waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		busy := false
		for _, st := range fx.set.Status(context.Background()) {
			busy = busy || st.Rebuilding || !st.Ready
		}
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("projections not ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestScopes(t *testing.T) {
	// Pick a district with trainees and an institution in it.
	insts := getJSON[InstitutionList](t, "/v1/institutions?kind=training", "").Institutions
	sort.Slice(insts, func(i, j int) bool { return insts[i].Enrolments > insts[j].Enrolments })
	unit := insts[0].CurrentUnitCode
	inst := insts[0].InstitutionID
	district := "district:" + unit

	t.Run("district quota is its unit", func(t *testing.T) {
		all := getJSON[QuotaResponse](t, "/v1/quota/2026", "")
		mine := getJSON[QuotaResponse](t, "/v1/quota/2026", district)
		if len(mine.ByUnit) != 1 || mine.ByUnit[0].UnitCode != unit || mine.Totals.Enrolled >= all.Totals.Enrolled {
			t.Errorf("district quota by unit = %+v (all: %d enrolled, mine %d)", mine.ByUnit, all.Totals.Enrolled, mine.Totals.Enrolled)
		}
		var fromAll int64
		for _, u := range all.ByUnit {
			if u.UnitCode == unit {
				fromAll = u.Enrolled
			}
		}
		if mine.Totals.Enrolled != fromAll {
			t.Errorf("district total %d != its row in the municipal view %d", mine.Totals.Enrolled, fromAll)
		}
		if resp, _ := get(t, "/v1/quota/2026?unit=cq-nosuch", district); resp.StatusCode != 403 {
			t.Errorf("district asking for another unit = %d; want 403", resp.StatusCode)
		}
	})
	t.Run("district reads its fund streams only", func(t *testing.T) {
		if resp, b := get(t, "/v1/audit/streams/fund-2025-"+unit, district); resp.StatusCode != 200 {
			t.Errorf("own fund stream = %d %s", resp.StatusCode, b)
		}
		if resp, _ := get(t, "/v1/audit/streams/fund-2025-cq-nosuch", district); resp.StatusCode != 404 {
			t.Errorf("another fund stream = %d; want 404", resp.StatusCode)
		}
	})
	t.Run("district fund is its unit", func(t *testing.T) {
		l := getJSON[fund.Ledger](t, "/v1/fund", district)
		for _, f := range l.Funds {
			if f.UnitCode != unit {
				t.Errorf("district sees fund %d/%s", f.Year, f.UnitCode)
			}
		}
		if !l.TrialBalance.Balanced {
			t.Error("unbalanced")
		}
	})
	t.Run("institution sees itself only", func(t *testing.T) {
		sc := "institution:" + inst
		l := getJSON[InstitutionList](t, "/v1/institutions", sc)
		if len(l.Institutions) != 1 || l.Institutions[0].InstitutionID != inst {
			t.Errorf("institution list = %+v", l.Institutions)
		}
		if resp, _ := get(t, "/v1/institutions/"+insts[1].InstitutionID, sc); resp.StatusCode != 404 {
			t.Errorf("another institution's card = %d; want 404", resp.StatusCode)
		}
		for _, p := range []string{"/v1/fund", "/v1/quota/2026", "/v1/trainees?masked_id=5001**********1234"} {
			if resp, _ := get(t, p, sc); resp.StatusCode != 403 {
				t.Errorf("institution GET %s = %d; want 403", p, resp.StatusCode)
			}
		}
		a := getJSON[anomaly.List](t, "/v1/anomalies", sc)
		for _, f := range a.Flags {
			if f.InstitutionID != inst {
				t.Errorf("institution sees flag of %s", f.InstitutionID)
			}
		}
		tl := getJSON[TraineeList](t, "/v1/trainees?limit=50", sc)
		if len(tl.Trainees) == 0 {
			t.Fatal("institution sees none of its trainees")
		}
		st := getJSON[trainee.Status](t, "/v1/trainees/"+tl.Trainees[0].PersonKey, sc)
		if !st.WithInstitution(inst) && len(st.Enrolments) > 0 && st.Enrolments[0].TrainingInstitutionID != inst {
			t.Errorf("institution sees a trainee of another: %+v", st.Enrolments)
		}
	})
	t.Run("trainee outside the district is not found", func(t *testing.T) {
		tl := getJSON[TraineeList](t, "/v1/trainees?limit=300", "")
		var outside, inside string
		for _, tr := range tl.Trainees {
			// Judged from the JSON (a decoded Status's InUnit knows nothing).
			if touchesUnit(t, getJSON[trainee.Status](t, "/v1/trainees/"+tr.PersonKey, ""), unit) {
				inside = tr.PersonKey
			} else {
				outside = tr.PersonKey
			}
		}
		if outside == "" || inside == "" {
			t.Fatalf("of %d trainees listed, none is in %s or all are", len(tl.Trainees), unit)
		}
		if resp, _ := get(t, "/v1/trainees/"+outside, district); resp.StatusCode != 404 {
			t.Errorf("trainee outside the district = %d; want 404", resp.StatusCode)
		}
		if resp, b := get(t, "/v1/trainees/"+inside, district); resp.StatusCode != 200 {
			t.Errorf("trainee inside the district = %d %s", resp.StatusCode, b)
		}
		if resp, _ := get(t, "/v1/audit/streams/trainee-"+outside, district); resp.StatusCode != 404 {
			t.Errorf("audit trail of a trainee outside the district = %d; want 404", resp.StatusCode)
		}
	})
	t.Run("unknown scope is unauthenticated", func(t *testing.T) {
		resp, b := get(t, "/v1/status", "mayor")
		var e ErrorBody
		_ = json.Unmarshal(b, &e)
		if resp.StatusCode != 401 || e.Error.Code != CodeUnauthenticated {
			t.Errorf("GET with scope mayor = %d %s", resp.StatusCode, b)
		}
	})
	t.Run("only municipal rebuilds", func(t *testing.T) {
		req, _ := http.NewRequest("POST", fx.srv.URL+"/v1/projections/fund/rebuild", nil)
		req.Header.Set(ScopeHeader, "auditor")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("auditor rebuild = %d; want 403", resp.StatusCode)
		}
	})
}

func TestMaskedLookup(t *testing.T) {
	tl := getJSON[TraineeList](t, "/v1/trainees?limit=10", "")
	want := tl.Trainees[3]
	got := getJSON[TraineeList](t, "/v1/trainees?masked_id="+want.MaskedID+"&masked_name="+want.MaskedName, "auditor")
	found := false
	for _, tr := range got.Trainees {
		found = found || tr.PersonKey == want.PersonKey
		if tr.MaskedID != want.MaskedID || tr.MaskedName != want.MaskedName {
			t.Errorf("lookup returned %s %s", tr.MaskedID, tr.MaskedName)
		}
	}
	if !found {
		t.Errorf("masked lookup did not find %s", want.PersonKey)
	}
}

func TestCSVExports(t *testing.T) {
	for _, c := range []struct {
		path string
		rows func() int
	}{
		{"/v1/institutions", func() int { return len(getJSON[InstitutionList](t, "/v1/institutions", "").Institutions) }},
		{"/v1/fund", func() int { return len(getJSON[fund.Ledger](t, "/v1/fund", "").Funds) }},
		{"/v1/notice?on=all", func() int { return len(getJSON[notice.List](t, "/v1/notice?on=all", "").Entries) }},
		{"/v1/anomalies", func() int { return len(getJSON[anomaly.List](t, "/v1/anomalies", "").Flags) }},
		{"/v1/quota", func() int { return 6 }},
		{"/v1/trainees", func() int { return fx.set.Runners()[0].Current().(*trainee.Model).Count() }},
		{"/v1/quota/2026", nil},
	} {
		sep := "?"
		if strings.Contains(c.path, "?") {
			sep = "&"
		}
		resp, b := get(t, c.path+sep+"format=csv", "")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
			t.Errorf("%s CSV = %d %s", c.path, resp.StatusCode, resp.Header.Get("Content-Type"))
			continue
		}
		recs, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
		if err != nil || len(recs) < 2 {
			t.Errorf("%s CSV: %d records, %v", c.path, len(recs), err)
			continue
		}
		if strings.Contains(string(b), "person_key") == false && c.path == "/v1/trainees" {
			t.Errorf("trainee CSV header: %v", recs[0])
		}
		if c.rows != nil {
			if want := c.rows(); len(recs)-1 != want {
				t.Errorf("%s CSV has %d rows; JSON has %d", c.path, len(recs)-1, want)
			}
		}
	}
	if resp, _ := get(t, "/v1/trainees/abc?format=csv", ""); resp.StatusCode != 400 {
		t.Errorf("CSV of a single trainee = %d; want 400", resp.StatusCode)
	}
}

func TestAuditTrailAndAsOf(t *testing.T) {
	key := samples(t)["person_key"]
	tr := getJSON[AuditTrail](t, "/v1/audit/streams/trainee-"+key, "")
	if !tr.Verified || len(tr.Events) < 5 {
		t.Fatalf("trail verified=%v with %d events", tr.Verified, len(tr.Events))
	}
	page := getJSON[AuditTrail](t, "/v1/audit/streams/trainee-"+key+"?from=2&limit=2", "")
	if !page.Verified || len(page.Events) != 2 || page.Events[0].Revision != 2 || page.Next == nil || *page.Next != 4 {
		t.Fatalf("page = %+v", page)
	}
	st := getJSON[trainee.Status](t, "/v1/trainees/"+key, "")
	ev := getJSON[AuditEvent](t, fmt.Sprintf("/v1/audit/events/%d", st.Entitlements[0].Decision.Position), "")
	if ev.Type != "subsidy.v1.SubsidyEntitled" || !ev.HashOK || !ev.LinkOK || !strings.Contains(string(ev.Payload), "rule_set_version") {
		t.Fatalf("decision event = %+v", ev)
	}
	// As of the decision, the entitlement exists and is merely entitled.
	asOf := getJSON[trainee.Status](t, fmt.Sprintf("/v1/trainees/%s?as_of=%d", key, ev.Position), "")
	if len(asOf.Entitlements) != 1 || asOf.Entitlements[0].State != trainee.StateEntitled || asOf.Position > ev.Position {
		t.Fatalf("as of %d: %+v", ev.Position, asOf.Entitlements)
	}
	before := getJSON[trainee.Status](t, fmt.Sprintf("/v1/trainees/%s?as_of=%d", key, ev.Position-1), "")
	if len(before.Entitlements) != 0 {
		t.Fatalf("as of %d: %d entitlements", ev.Position-1, len(before.Entitlements))
	}
	q := getJSON[QuotaResponse](t, "/v1/quota/2026?as_of="+ev.Committed.Add(-time.Hour).Format(time.RFC3339Nano), "")
	if q.Position >= ev.Position {
		t.Errorf("as of a time before the decision: position %d", q.Position)
	}
	if resp, _ := get(t, "/v1/quota/2026?as_of=99999999", ""); resp.StatusCode != 400 {
		t.Errorf("as_of beyond the head = %d; want 400", resp.StatusCode)
	}
	// Only the routes that document as_of take it.
	for _, path := range []string{"/v1/audit/streams/trainee-" + key, fmt.Sprintf("/v1/audit/events/%d", ev.Position), "/v1/fund/journal", "/v1/trainees/" + key + "/personal-data"} {
		if resp, body := get(t, path+"?as_of=1", ""); resp.StatusCode != 400 || !strings.Contains(string(body), "does not take it") {
			t.Errorf("GET %s?as_of=1 = %d %s; want 400", path, resp.StatusCode, body)
		}
	}
	if resp, _ := get(t, "/v1/trainees?limit=1&as_of=1", ""); resp.StatusCode != 200 {
		t.Errorf("GET /v1/trainees?as_of=1 = %d; want 200", resp.StatusCode)
	}
}

// TestAuditLogPagesTheWholeLog reads the log a page at a time, as a feed
// consumer filling a gap would: every position once, in order, each event
// as /v1/audit/events shows it, every hash and link verified.
func TestAuditLogPagesTheWholeLog(t *testing.T) {
	head, err := fx.store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var after events.Position
	pages := 0
	for {
		page := getJSON[AuditLog](t, fmt.Sprintf("/v1/audit/log?after=%d&limit=317", after), "")
		pages++
		if !page.Verified {
			t.Fatalf("page after %d not verified", after)
		}
		for _, e := range page.Events {
			if e.Position != after+1 || !e.HashOK || !e.LinkOK {
				t.Fatalf("after %d: event %+v", after, e)
			}
			after = e.Position
		}
		if page.Next == nil {
			if len(page.Events) == 317 && after != head {
				t.Fatalf("no next after a full page ending at %d of %d", after, head)
			}
			break
		}
		if *page.Next != after || len(page.Events) != 317 {
			t.Fatalf("next %d after a page of %d ending at %d", *page.Next, len(page.Events), after)
		}
	}
	if after != head || pages != int(head+316)/317 {
		t.Fatalf("read to %d in %d pages; the log ends at %d", after, pages, head)
	}
	mid := head / 2
	one := getJSON[AuditLog](t, fmt.Sprintf("/v1/audit/log?after=%d&limit=1", mid-1), "")
	ev := getJSON[AuditEvent](t, fmt.Sprintf("/v1/audit/events/%d", mid), "")
	if len(one.Events) != 1 || !reflect.DeepEqual(one.Events[0], ev) {
		t.Fatalf("log at %d = %+v; /v1/audit/events = %+v", mid, one.Events, ev)
	}
	// Past the head: an empty page read through the head, not beyond it
	// (found by review: X-Ledger-Position said after).
	resp, b := get(t, fmt.Sprintf("/v1/audit/log?after=%d", head+10), "")
	if got := resp.Header.Get("X-Ledger-Position"); resp.StatusCode != http.StatusOK || got != fmt.Sprint(head) {
		t.Errorf("/v1/audit/log after the head = %d, X-Ledger-Position %q %.100s; want 200 at %d", resp.StatusCode, got, b, head)
	}
	for _, q := range []string{"after=-1", "after=x", "limit=0", "limit=1001"} {
		if resp, _ := get(t, "/v1/audit/log?"+q, ""); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("/v1/audit/log?%s = %d; want 400", q, resp.StatusCode)
		}
	}
}

// TestMetricsLint scrapes the registry after some traffic and lints it.
func TestMetricsLint(t *testing.T) {
	get(t, "/v1/quota/2026", "")
	get(t, "/v1/trainees/"+strings.Repeat("ab", 32), "")
	mfs, err := fx.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if len(l.GetValue()) >= 32 && !strings.Contains(l.GetValue(), "/") {
					t.Errorf("%s: label %s=%q looks like personal data", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	for _, n := range []string{"subsidy_ledger_http_request_duration_seconds", "subsidy_ledger_projection_position",
		"subsidy_ledger_projection_lag_events", "subsidy_ledger_projection_lag_seconds"} {
		if !names[n] {
			t.Errorf("metric %s missing", n)
		}
	}
}

func TestScorecardMatchesQuota(t *testing.T) {
	q := getJSON[QuotaYears](t, "/v1/quota", "")
	var enrolled int64
	for _, r := range getJSON[InstitutionList](t, "/v1/institutions", "").Institutions {
		enrolled += r.Enrolments
	}
	var qe int64
	for y := 2024; y <= 2032; y++ {
		qe += getJSON[QuotaResponse](t, fmt.Sprintf("/v1/quota/%d", y), "").Totals.Enrolled
	}
	if enrolled != qe || len(q.Years) != 6 {
		t.Errorf("institutions' enrolments %d != quota's %d", enrolled, qe)
	}
	_ = scorecard.Name
}

// touchesUnit reports whether a trainee's status, as the API serves it,
// names the unit: where the trainee registered, enrolled or is entitled,
// old units rolled up into their successors.
func touchesUnit(t *testing.T, st trainee.Status, unit string) bool {
	t.Helper()
	codes := []string{st.Unit.Code, st.Unit.CurrentCode}
	for _, e := range st.Enrolments {
		codes = append(codes, e.UnitCode)
	}
	for _, e := range st.Entitlements {
		codes = append(codes, e.Unit.Code, e.Unit.CurrentCode)
	}
	for _, c := range codes {
		if c == unit {
			return true
		}
		if cur, err := refdata.Seed().Current(c); err == nil && cur.Code == unit {
			return true
		}
	}
	return false
}

// TestAnomaliesStatus: the anomalies list takes status=open (the default),
// cleared or all; its counts cover open and cleared flags whatever is
// asked; anything else is 400.
func TestAnomaliesStatus(t *testing.T) {
	def := getJSON[anomaly.List](t, "/v1/anomalies", "")
	all := getJSON[anomaly.List](t, "/v1/anomalies?status=all", "")
	open := getJSON[anomaly.List](t, "/v1/anomalies?status=open", "")
	cleared := getJSON[anomaly.List](t, "/v1/anomalies?status=cleared", "")
	if def.Open == 0 || len(def.Flags) != def.Open || !reflect.DeepEqual(def, open) {
		t.Errorf("default list: %d open, %d listed; want the open flags, as status=open", def.Open, len(def.Flags))
	}
	if len(all.Flags) != all.Open+all.Cleared || len(cleared.Flags) != cleared.Cleared || all.Open != def.Open || cleared.Open != def.Open {
		t.Errorf("status=all lists %d (open %d, cleared %d), status=cleared %d", len(all.Flags), all.Open, all.Cleared, len(cleared.Flags))
	}
	for _, f := range cleared.Flags {
		if f.Status != anomaly.StatusCleared || f.Cleared == nil {
			t.Errorf("status=cleared listed %s %s", f.FlagID, f.Status)
		}
	}
	for _, q := range []string{"status=closed", "status=OPEN"} {
		if resp, body := get(t, "/v1/anomalies?"+q, ""); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("/v1/anomalies?%s = %d %s; want 400", q, resp.StatusCode, body)
		}
	}
}
