package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/projections/trainee"
	"github.com/cqhrss/subsidyledger/services/vault"
)

// The personal-data routes: look a trainee up by plain ID number (in the
// body, never in the URL, which is logged), read and erase the data kept in
// the encrypted vault. Every access is logged with the person key (never
// the plain data) and counted without personal labels.

// LookupRequest is the body of POST /v1/trainees/lookup.
type LookupRequest struct {
	IDNumber string `json:"id_number"`
}

// LookupResponse is POST /v1/trainees/lookup.
type LookupResponse struct {
	PersonKey string          `json:"person_key"`
	Trainee   trainee.Status  `json:"trainee"`
	Position  events.Position `json:"position"`
}

// PersonalData is GET /v1/trainees/{person_key}/personal-data.
type PersonalData struct {
	PersonKey    string    `json:"person_key"`
	IDNumber     string    `json:"id_number"`
	Name         string    `json:"name"`
	PayeeAccount string    `json:"payee_account,omitempty"`
	SubmittedAt  time.Time `json:"submitted_at"`
}

// ErasureResponse is DELETE /v1/trainees/{person_key}/personal-data.
type ErasureResponse struct {
	PersonKey string `json:"person_key"`
	Erased    bool   `json:"erased"`
}

// newAccessMetric counts personal-data accesses by action, scope role and
// outcome (an error code or "ok"); no person key or ID in any label.
func newAccessMetric(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "subsidy_ledger_personal_data_access_total",
		Help: "Accesses to personal data over the API (lookup by ID number, read, erase), by scope role and outcome.",
	}, []string{"action", "role", "outcome"})
	if reg != nil {
		reg.MustRegister(c)
	}
	return c
}

// audit logs and counts one access. err is the handler's error (nil: ok).
func (s *server) audit(r *http.Request, action string, sc Scope, personKey string, err error) {
	outcome := "ok"
	if err != nil {
		outcome = string(classify(err).Code)
	}
	s.access.WithLabelValues(action, string(sc.Role), outcome).Inc()
	if !person.ValidKey(personKey) {
		// What the caller put where the key belongs, which may be the
		// ID number itself.
		personKey = "invalid: " + person.RedactIDString(personKey)
	}
	s.log.Info("personal data access", "action", action, "scope", sc.String(), "person_key", personKey, "outcome", outcome,
		"remote", r.RemoteAddr)
}

func (s *server) personalEnabled() error {
	if s.cfg.Keyer == nil || s.cfg.Vault == nil {
		return errorf(CodePersonalDataUnavailable, "this ledger keeps no personal data (no vault or person-key secret configured)")
	}
	return nil
}

// errNotInScope is the one answer for unknown and out-of-scope trainees.
func errNotInScope() error { return errorf(CodeNotFound, "no such trainee in your scope") }

func (s *server) lookup(r *http.Request, sc Scope) (res result, err error) {
	pk := ""
	defer func() { s.audit(r, "lookup", sc, pk, err) }()
	if err := s.personalEnabled(); err != nil {
		return result{}, err
	}
	var req LookupRequest
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return result{}, errorf(CodeBadRequest, `want a JSON body {"id_number": "..."}`)
	}
	pk, err = s.cfg.Keyer.Key(req.IDNumber)
	if err != nil {
		var ie *person.IDError
		if errors.As(err, &ie) {
			return result{}, errorf(CodeBadRequest, "id_number is not a valid resident ID number (%s)", ie.Problem)
		}
		return result{}, errorf(CodeBadRequest, "id_number is not a valid resident ID number")
	}
	m, pos, err := modelOf[*trainee.Model](s, r, trainee.Name)
	if err != nil {
		return result{}, err
	}
	st, ok := statusFor(sc, m, pk)
	if !ok {
		return result{}, errNotInScope()
	}
	return result{body: LookupResponse{PersonKey: pk, Trainee: st, Position: pos}, position: pos}, nil
}

// personalScope: municipal reads and erases; the auditor reads everything
// and changes nothing, so it reads but does not erase; a district reads
// its own unit's trainees; institutions are forbidden.
func (s *server) personalScope(r *http.Request, sc Scope, pk string, erase bool) error {
	if err := s.personalEnabled(); err != nil {
		return err
	}
	switch {
	case sc.Role == RoleMunicipal:
	case sc.Role == RoleAuditor && !erase:
	case sc.Role == RoleDistrict && !erase:
		m, _, err := modelOf[*trainee.Model](s, r, trainee.Name)
		if err != nil {
			return err
		}
		st, ok := m.Get(pk)
		if !ok || !st.InUnit(sc.Unit) {
			return errNotInScope()
		}
	case erase:
		return errorf(CodeForbidden, "only the municipal scope may erase personal data")
	default:
		return errorf(CodeForbidden, "the %s scope may not read personal data", sc.Role)
	}
	if !person.ValidKey(pk) {
		return errNotInScope()
	}
	return nil
}

func (s *server) personalData(r *http.Request, sc Scope) (res result, err error) {
	pk := r.PathValue("person_key")
	defer func() { s.audit(r, "read", sc, pk, err) }()
	if err := s.personalScope(r, sc, pk, false); err != nil {
		return result{}, err
	}
	rec, err := s.cfg.Vault.Get(pk)
	if err != nil {
		return result{}, vaultError(err)
	}
	return result{body: PersonalData{PersonKey: pk, IDNumber: rec.IDNumber, Name: rec.Name, PayeeAccount: rec.PayeeAccount, SubmittedAt: rec.SubmittedAt}}, nil
}

func (s *server) erasePersonalData(r *http.Request, sc Scope) (res result, err error) {
	pk := r.PathValue("person_key")
	defer func() { s.audit(r, "erase", sc, pk, err) }()
	if err := s.personalScope(r, sc, pk, true); err != nil {
		return result{}, err
	}
	if err := s.cfg.Vault.Erase(pk); err != nil {
		return result{}, vaultError(err)
	}
	return result{body: ErasureResponse{PersonKey: pk, Erased: true}}, nil
}

// vaultError translates the vault's errors.
func vaultError(err error) error {
	switch {
	case errors.Is(err, vault.ErrNotFound), errors.Is(err, vault.ErrInvalidPersonKey):
		return &Error{Code: CodeNotFound, Message: "no personal data for this person key", Err: err}
	case errors.Is(err, vault.ErrErased):
		return &Error{Code: CodeErased, Message: "the personal data of this person key was erased", Err: err}
	case errors.Is(err, vault.ErrClosed):
		return &Error{Code: CodeUnavailable, Message: "the personal-data vault is closed", Err: err}
	}
	return &Error{Code: CodeInternal, Message: "internal error", Err: err}
}
