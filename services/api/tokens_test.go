package api

import (
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
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
	// A district is a unit in force: not one abolished on 2025-11-06 (its
	// records answer to its successor's officials), nor an unknown one.
	for scope, want := range map[string]string{
		"district:cq-jiangbei": `unit "cq-jiangbei" was abolished; "cq-liangjiang" answers for it now`,
		"district:cq-yubei":    `"cq-liangjiang" answers for it now`,
		"district:cq-nosuch":   `"cq-nosuch" is not a management unit`,
	} {
		if _, err := TokenScope([]Token{{SHA256: HashToken("x"), Scope: scope}}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("TokenScope(%s) = %v; want an error saying %s", scope, err, want)
		}
	}
	if _, err := TokenScope([]Token{{SHA256: HashToken("x"), Scope: "district:cq-liangjiang"}}); err != nil {
		t.Errorf("TokenScope(district:cq-liangjiang) = %v", err)
	}
}

// TestTokenOfficial: a token's official id is "official", else its name
// when that is a valid official id; a token without one may not act.
func TestTokenOfficial(t *testing.T) {
	f, err := TokenScope([]Token{
		{SHA256: HashToken("named"), Scope: "municipal", Name: "cq-official-3"},
		{SHA256: HashToken("explicit"), Scope: "district:cq-yuzhong", Name: "渝中区 supervisor", Official: "cq-yuzhong-official-1"},
		{SHA256: HashToken("prose"), Scope: "municipal", Name: "市人社局 fund office"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for token, want := range map[string]string{"named": "cq-official-3", "explicit": "cq-yuzhong-official-1", "prose": ""} {
		r := httptest.NewRequest("POST", "/v1/entitlements/x/confirm", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set(OfficialHeader, "forged") // ignored: only the token counts
		sc, err := f(r)
		if err != nil || sc.Official != want {
			t.Errorf("token %s: official %q, %v; want %q", token, sc.Official, err, want)
		}
	}
	for _, o := range []string{"two words", "cq-official-1\u200b", "\ufeffcq-official-1", "official-li\ufe0f", "\u034f", "\u3164", "\u2800"} {
		if _, err := TokenScope([]Token{{SHA256: HashToken("x"), Scope: "municipal", Official: o}}); err == nil {
			t.Errorf("TokenScope(official %q: a space or an invisible character) = nil error", o)
		}
	}
	// --demo: the header names the official.
	r := httptest.NewRequest("POST", "/v1/entitlements/x/confirm", nil)
	r.Header.Set(OfficialHeader, "demo-official-1")
	if sc, err := HeaderScope(Scope{Role: RoleMunicipal})(r); err != nil || sc.Official != "demo-official-1" {
		t.Errorf("HeaderScope official = %q, %v", sc.Official, err)
	}
	r.Header.Set(OfficialHeader, "demo official")
	if _, err := HeaderScope(Scope{Role: RoleMunicipal})(r); err == nil {
		t.Error("HeaderScope accepted an official id with a space")
	}
}

// TestLoadTokensIsStrict: a tokens file with a misspelt field, or naming
// no token, is refused at start (it used to leave every request refused,
// with ledgerd ready and nothing logged).
func TestLoadTokensIsStrict(t *testing.T) {
	good := `{"tokens": [{"sha256": "` + HashToken("a-token") + `", "scope": "municipal", "name": "ops"}]}`
	for _, tc := range []struct{ name, file, err string }{
		{"good", good, ""},
		{"a misspelt field", `{"tokenz": []}`, `unknown field "tokenz"`},
		{"a misspelt token field", `{"tokens": [{"sha": "` + HashToken("a-token") + `", "scope": "municipal"}]}`, `unknown field "sha"`},
		{"no tokens", `{"tokens": []}`, "names no token"},
		{"two values", good + ` {}`, "more after its JSON object"},
		{"a stray brace", good + ` }`, "more after its JSON object"},
	} {
		path := filepath.Join(t.TempDir(), "tokens.json")
		if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadTokens(path)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: err %v; want one saying %q", tc.name, err, tc.err)
		}
	}
}
