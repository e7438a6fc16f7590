package api

import (
	"net/http"
	"strings"
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
// and uses def when it is absent. It authenticates nobody: use it only
// behind a gateway that sets the header (or in development, where the
// default is the municipal scope).
func HeaderScope(def Scope) ScopeFunc {
	return func(r *http.Request) (Scope, error) {
		v := r.Header.Get(ScopeHeader)
		if v == "" {
			return def, nil
		}
		return ParseScope(v)
	}
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
