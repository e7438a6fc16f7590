package api

import (
	"log/slog"
	"net/http"
)

// Guard applies the API's authentication to a handler served beside it
// (ledgerd's tamper-evidence routes, package auditapi): a caller needs a
// scope (ScopeFunc) for anything; GET and HEAD are reads and open to every
// scope (none of those routes carries personal data: positions, sizes and
// hashes), anything else changes the ledger and is the municipal scope's
// alone. Refusals are the API's error bodies (401, 403).
func Guard(scope ScopeFunc, log *slog.Logger, h http.Handler) http.Handler {
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
		h.ServeHTTP(w, r)
	})
}
