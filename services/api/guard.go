package api

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/cqhrss/subsidyledger/events"
)

// Guard applies the API's authentication to a handler served beside it: a
// caller needs a scope (ScopeFunc) for anything; GET and HEAD are reads and
// open to every scope, anything else changes the ledger and is the
// municipal scope's alone. Refusals are the API's error bodies (401, 403).
// ledgerd's tamper-evidence routes (package auditapi) take Handler.Audit,
// which adds the scopes' limits on what an inclusion proof names.
func Guard(scope ScopeFunc, log *slog.Logger, h http.Handler) http.Handler {
	return guard(scope, log, func(w http.ResponseWriter, r *http.Request, _ Scope) { h.ServeHTTP(w, r) })
}

// guard is Guard, handing the caller's scope to next.
func guard(scope ScopeFunc, log *slog.Logger, next func(http.ResponseWriter, *http.Request, Scope)) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc, err := scope(r)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && sc.Role != RoleMunicipal {
			writeError(w, r, log, errorf(CodeForbidden, "only the municipal scope may do this"))
			return
		}
		next(w, r, sc)
	})
}

// inclusionPath is auditapi's inclusion proof, whose leaf names the
// event's stream and revision.
const inclusionPath = "/v1/audit/proof/inclusion"

// Audit guards the tamper-evidence routes served beside the API (package
// auditapi) as Guard does, with the API's scope function. Their answers
// are positions, sizes and hashes, except an inclusion proof's leaf, which
// names its event's stream and revision: a "trainee-<person key>" is a
// person the scope may not know of. A scope that does not read everything
// therefore gets an inclusion proof only for an event of a stream it may
// read, else the same 404 as GET /v1/audit/events/{position}.
func (h *Handler) Audit(next http.Handler) http.Handler {
	s := h.s
	return guard(s.cfg.Scope, s.log, func(w http.ResponseWriter, r *http.Request, sc Scope) {
		if r.URL.Path == inclusionPath && !sc.readsAll() {
			// Only a position checked here goes on: what auditapi reads
			// from the query is checked the way it reads it.
			v := r.URL.Query().Get("position")
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				writeError(w, r, s.log, errorf(CodeBadRequest, "position %q: want a positive whole number", v))
				return
			}
			if _, err := s.eventInScope(r, sc, events.Position(n)); err != nil {
				writeError(w, r, s.log, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
