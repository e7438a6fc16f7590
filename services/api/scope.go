package api

import (
	"github.com/cqhrss/subsidyledger/events/facts"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cqhrss/subsidyledger/events/refdata"
)

// Role is what a caller may see.
type Role string

// The roles (DOMAIN.md §1: who does what).
const (
	// RoleMunicipal: the municipal bureau; everything.
	RoleMunicipal Role = "municipal"
	// RoleAuditor: reads everything, changes nothing.
	RoleAuditor Role = "auditor"
	// RoleDistrict: a district or county bureau (or functional zone): its
	// unit only.
	RoleDistrict Role = "district"
	// RoleInstitution: a training or evaluation institution: its own
	// records only.
	RoleInstitution Role = "institution"
)

// Scope is the caller's scope. Every handler applies it.
type Scope struct {
	Role Role
	// Unit is the district's unit code (today's code: an abolished unit's
	// records are shown to its successor).
	Unit string
	// Institution is the institution's id.
	Institution string
	// Official is the acting official's id that maker/checker actions
	// record (Token.Official); empty: the caller may not act.
	Official string
}

func (s Scope) String() string {
	switch s.Role {
	case RoleDistrict:
		return "district:" + s.Unit
	case RoleInstitution:
		return "institution:" + s.Institution
	}
	return string(s.Role)
}

// readsAll reports whether the scope sees every record.
func (s Scope) readsAll() bool { return s.Role == RoleMunicipal || s.Role == RoleAuditor }

// ScopeFunc takes the caller's scope from a request. It returns an *Error
// with CodeUnauthenticated when the caller is unknown and CodeForbidden
// when the caller may not use the API at all. The security issue replaces
// the default with one backed by authentication.
type ScopeFunc func(*http.Request) (Scope, error)

// ScopeHeader is the request header HeaderScope reads.
const ScopeHeader = "X-Ledger-Scope"

// OfficialHeader names the acting official for HeaderScope (--demo only):
// with it, the demo may try maker/checker out with two made-up officials.
const OfficialHeader = "X-Ledger-Official"

// ParseScope parses "municipal", "auditor", "district:<unit code>" or
// "institution:<institution id>".
func ParseScope(v string) (Scope, error) {
	role, arg, _ := strings.Cut(strings.TrimSpace(v), ":")
	s := Scope{Role: Role(role)}
	switch s.Role {
	case RoleMunicipal, RoleAuditor:
		if arg == "" {
			return s, nil
		}
	case RoleDistrict:
		s.Unit = arg
		if arg != "" {
			// A district is a unit in force: an abolished unit's scope
			// would keep its records (and actions on them) from its
			// successor's officials' oversight, an unknown one is a typo.
			u, err := refdata.Seed().Current(arg)
			switch {
			case err != nil:
				return Scope{}, errorf(CodeUnauthenticated, "scope %q: %q is not a management unit", v, arg)
			case u.Code != arg:
				return Scope{}, errorf(CodeUnauthenticated, "scope %q: unit %q was abolished; %q answers for it now", v, arg, u.Code)
			}
			return s, nil
		}
	case RoleInstitution:
		s.Institution = arg
		if arg != "" {
			return s, nil
		}
	}
	return Scope{}, errorf(CodeUnauthenticated, "scope %q: want municipal, auditor, district:<unit code> or institution:<institution id>", v)
}

// HeaderScope returns a ScopeFunc that trusts the X-Ledger-Scope header
// and uses def when it is absent, and takes the acting official from the
// X-Ledger-Official header (none without it: no actions). It
// authenticates nobody: use it only behind a gateway that sets the
// headers (or in development, where the default is the municipal scope).
func HeaderScope(def Scope) ScopeFunc {
	return func(r *http.Request) (Scope, error) {
		sc := def
		if v := r.Header.Get(ScopeHeader); v != "" {
			var err error
			if sc, err = ParseScope(v); err != nil {
				return Scope{}, err
			}
		}
		if o := r.Header.Get(OfficialHeader); o != "" {
			if !ValidOfficial(o) {
				return Scope{}, errorf(CodeUnauthenticated, "%s: an official id is 1 to %d characters without white space", OfficialHeader, maxOfficialLen)
			}
			sc.Official = o
		}
		return sc, nil
	}
}

// maxOfficialLen is facts.MaxIDLen: the official id goes into facts.
const maxOfficialLen = 128

// ValidOfficial reports whether id can be an official id in a fact: 1 to
// 128 bytes of UTF-8 without white space or control characters.
func ValidOfficial(id string) bool {
	if id == "" || len(id) > maxOfficialLen || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if unicode.IsSpace(r) || unicode.IsControl(r) || facts.Invisible(r) {
			return false // one official, two ids that read the same
		}
	}
	return true
}

// unitFilter returns the unit a query is narrowed to: a district always
// its own (asking for another is forbidden); other scopes what they asked.
func (s Scope) unitFilter(asked string) (string, error) {
	if s.Role != RoleDistrict {
		return asked, nil
	}
	if asked != "" && asked != s.Unit {
		return "", errorf(CodeForbidden, "a district scope sees only its unit %s", s.Unit)
	}
	return s.Unit, nil
}

// institutionFilter returns the institution a query is narrowed to.
func (s Scope) institutionFilter(asked string) (string, error) {
	if s.Role != RoleInstitution {
		return asked, nil
	}
	if asked != "" && asked != s.Institution {
		return "", errorf(CodeForbidden, "an institution scope sees only its own records")
	}
	return s.Institution, nil
}

func (s Scope) forbidInstitution(what string) error {
	if s.Role == RoleInstitution {
		return errorf(CodeForbidden, "an institution scope may not read %s", what)
	}
	return nil
}
