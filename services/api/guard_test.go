package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestGuard(t *testing.T) {
	scope, err := TokenScope([]Token{
		{SHA256: HashToken("muni"), Scope: "municipal"},
		{SHA256: HashToken("audit"), Scope: "auditor"},
		{SHA256: HashToken("district"), Scope: "district:cq-yuzhong"},
		{SHA256: HashToken("inst"), Scope: "institution:T001"},
	})
	if err != nil {
		t.Fatal(err)
	}
	served := 0
	h := Guard(scope, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ }))
	for _, tc := range []struct {
		method, token string
		want          int
	}{
		{"GET", "", 401}, {"GET", "guessed", 401}, {"POST", "", 401},
		{"GET", "muni", 200}, {"GET", "audit", 200}, {"GET", "district", 200}, {"GET", "inst", 200},
		{"POST", "muni", 200}, {"POST", "audit", 403}, {"POST", "district", 403}, {"POST", "inst", 403}, {"DELETE", "audit", 403},
	} {
		before := served
		req := httptest.NewRequest(tc.method, "/v1/audit/checkpoint", nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want || (served > before) != (tc.want == 200) {
			t.Errorf("%s with %q = %d (served: %v); want %d", tc.method, tc.token, rec.Code, served > before, tc.want)
		}
	}
}
