package api

import (
	"errors"
	"net/http/httptest"
	"testing"
)

func TestTokenScope(t *testing.T) {
	f, err := TokenScope([]Token{
		{SHA256: HashToken("muni-token"), Scope: "municipal"},
		{SHA256: HashToken("yz-token"), Scope: "district:cq-yuzhong"},
		{SHA256: HashToken("t1-token"), Scope: "institution:T001"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		header string
		want   Scope
		code   Code
	}{
		{"Bearer muni-token", Scope{Role: RoleMunicipal}, ""},
		{"Bearer yz-token", Scope{Role: RoleDistrict, Unit: "cq-yuzhong"}, ""},
		{"Bearer t1-token", Scope{Role: RoleInstitution, Institution: "T001"}, ""},
		{"", Scope{}, CodeUnauthenticated},
		{"Bearer ", Scope{}, CodeUnauthenticated},
		{"Basic bXVuaQ==", Scope{}, CodeUnauthenticated},
		{"Bearer guessed", Scope{}, CodeUnauthenticated},
	} {
		r := httptest.NewRequest("GET", "/v1/quota", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		r.Header.Set(ScopeHeader, "municipal") // ignored: only the token counts
		got, err := f(r)
		var e *Error
		switch {
		case tc.code == "" && (err != nil || got != tc.want):
			t.Errorf("scope(%q) = %v, %v; want %v", tc.header, got, err, tc.want)
		case tc.code != "" && (!errors.As(err, &e) || e.Code != tc.code):
			t.Errorf("scope(%q) = %v, %v; want error %s", tc.header, got, err, tc.code)
		}
	}
	if _, err := TokenScope([]Token{{SHA256: "abc", Scope: "municipal"}}); err == nil {
		t.Error("TokenScope(bad hash) = nil error")
	}
	if _, err := TokenScope([]Token{{SHA256: HashToken("x"), Scope: "mayor"}}); err == nil {
		t.Error("TokenScope(bad scope) = nil error")
	}
}
