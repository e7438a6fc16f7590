package api

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzQueryParameters sends arbitrary query strings and path values to the
// read API under every scope: no panic, no 5xx, and the body is always
// JSON or CSV (an error body for bad input). `make fuzz` runs it longer.
func FuzzQueryParameters(f *testing.F) {
	for _, s := range []string{
		"as_of=12", "as_of=2025-05-01T00:00:00Z", "as_of=-1", "as_of=99999999999999999999", "format=csv", "format=xml",
		"from=abc&limit=0", "limit=1001", "on=all", "on=2025-02-30", "masked_id=5001**********123X", "masked_name=%E5%BC%A0*",
		"unit=cq-yuzhong", "year=2031", "view=recorded", "view=x", "position=1&tree_size=-3", "",
	} {
		f.Add("/v1/quota/2025", s, "municipal")
		f.Add("/v1/trainees", s, "district:cq-yuzhong")
		f.Add("/v1/notice", s, "institution:T001")
	}
	f.Add("/v1/trainees/"+strings.Repeat("ab", 32), "as_of=3", "auditor")
	f.Add("/v1/institutions/T001", "format=csv", "institution:T002")
	f.Add("/v1/trainees/"+strings.Repeat("ab", 32)+"/personal-data", "", "district:cq-yuzhong")
	f.Add("/v1/trainees/lookup", "", "municipal")
	f.Add("/v1/audit/streams/trainee-x", "from=5", "municipal")
	f.Add("/v1/audit/events/0", "", "municipal")
	f.Fuzz(func(t *testing.T, path, rawQuery, scope string) {
		if !strings.HasPrefix(path, "/v1/") || strings.ContainsAny(path, " \x00?#") || len(path) > 512 || len(rawQuery) > 2048 {
			return
		}
		u := &url.URL{Path: path, RawQuery: rawQuery}
		req, err := http.NewRequest("GET", "http://ledger.test"+u.String(), nil)
		if err != nil {
			return
		}
		req.Header.Set(ScopeHeader, scope)
		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("GET %s with scope %q = %d %s", u, scope, rec.Code, rec.Body.String())
		}
		if rec.Code/100 == 3 {
			return // the mux cleans paths such as /v1/./x with a redirect
		}
		if ct := rec.Header().Get("Content-Type"); rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed &&
			!strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "text/csv") && !strings.HasPrefix(ct, "text/plain") {
			t.Fatalf("GET %s = %d with Content-Type %q", u, rec.Code, ct)
		}
	})
}
