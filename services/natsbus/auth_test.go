package natsbus

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadUsers: a users file names each user once, with a password, a
// known role and a name that is one subject token (its inbox prefix is
// _INBOX.<user>); each source user may read its own inbox only.
func TestLoadUsers(t *testing.T) {
	for _, tc := range []struct{ name, file, err string }{
		{"good", `{"users": [{"user": "enrolment-svc", "password": "x", "role": "enrolment"}, {"user": "rep_1", "password": "y", "role": "reporting"}]}`, ""},
		{"no password", `{"users": [{"user": "a", "role": "enrolment"}]}`, "needs a user name and a password"},
		{"twice", `{"users": [{"user": "a", "password": "x", "role": "enrolment"}, {"user": "a", "password": "x", "role": "payment"}]}`, "appears twice"},
		{"unknown role", `{"users": [{"user": "a", "password": "x", "role": "admin"}]}`, `role "admin"`},
		{"a dot", `{"users": [{"user": "svc.enrolment", "password": "x", "role": "enrolment"}]}`, "letters, digits"},
		{"a wildcard", `{"users": [{"user": "svc>", "password": "x", "role": "enrolment"}]}`, "letters, digits"},
		{"a space", `{"users": [{"user": "svc 1", "password": "x", "role": "enrolment"}]}`, "letters, digits"},
		{"a misspelt field", `{"userz": [{"user": "a", "password": "x", "role": "enrolment"}]}`, `unknown field "userz"`},
		{"a misspelt user field", `{"users": [{"user": "a", "pasword": "x", "role": "enrolment"}]}`, `unknown field "pasword"`},
		{"no users", `{"users": []}`, "names no user"},
		{"two values", `{"users": [{"user": "a", "password": "x", "role": "enrolment"}]} {}`, "more after its JSON object"},
	} {
		path := filepath.Join(t.TempDir(), "users.json")
		if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
			t.Fatal(err)
		}
		users, err := LoadUsers(path)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: err %v; want one saying %q", tc.name, err, tc.err)
		case tc.err == "" && len(users) != 2:
			t.Errorf("%s: %d users", tc.name, len(users))
		}
	}
	s := Subjects{Prefix: "subsidy"}
	for _, role := range append([]string{RoleReporting}, Sources...) {
		p := s.Permissions("svc-1", role)
		for _, subj := range p.Subscribe.Allow {
			if strings.HasPrefix(subj, "_") && subj != "_INBOX.svc-1.>" {
				t.Errorf("role %s may subscribe to %s", role, subj)
			}
		}
		if !strings.Contains(strings.Join(p.Subscribe.Allow, " "), "_INBOX.svc-1.>") {
			t.Errorf("role %s may not read its own inbox: %v", role, p.Subscribe.Allow)
		}
	}
}
