package api

import (
	"encoding/json"
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
		if r.URL.Query().Has("as_of") {
			// Tamper evidence is of the log as it is (a past size is
			// tree_size, old_size).
			writeError(w, r, s.log, errorf(CodeBadRequest, "as_of: %s %s does not take it (see /v1/openapi.json)", r.Method, r.URL.Path))
			return
		}
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

// auditRoutes describes, for the OpenAPI document, the routes Audit guards
// (auditapi serves them; ledgerd's tests check that each is answered). Their
// bodies are auditapi's (a checkpoint is protobuf's canonical JSON of
// AuditCheckpoint; proofs are merkle's), checked offline by ledgerctl.
func auditRoutes() []route {
	size := func(name, desc string) param { return param{name: name, in: "query", typ: "integer", desc: desc} }
	body := json.RawMessage(nil)
	return []route{
		{method: "GET", pattern: "/v1/audit/verifier-key", id: "getVerifierKey", response: body,
			summary: "The note verifier key checkpoints are signed for (better: take it from the bureau out of band)."},
		{method: "GET", pattern: "/v1/audit/checkpoint", id: "getCheckpoint", response: body,
			summary: "The latest signed checkpoint of the log (404 before the first)."},
		{method: "POST", pattern: "/v1/audit/checkpoint", id: "issueCheckpoint", response: body,
			summary: "Issue a signed checkpoint now, once the head is sealed (municipal scope)."},
		{method: "GET", pattern: inclusionPath, id: "proveInclusion", response: body,
			summary: "An inclusion proof of the event at a position in the tree of a checkpoint's size (a scope that does not read everything: only of an event it may read).",
			params: []param{{name: "position", in: "query", typ: "integer", required: true, desc: "The event's log position."},
				size("tree_size", "The checkpoint's size (0: the whole sealed tree).")}},
		{method: "GET", pattern: "/v1/audit/proof/consistency", id: "proveConsistency", response: body,
			summary: "A consistency proof: the tree of new_size extends the tree of old_size.",
			params:  []param{size("old_size", "The earlier checkpoint's size."), size("new_size", "The later checkpoint's size.")}},
	}
}

// AuditOperations lists the operations of auditRoutes ("GET /v1/audit/checkpoint", ...).
func AuditOperations() []string {
	var ops []string
	for _, rt := range auditRoutes() {
		ops = append(ops, rt.method+" "+rt.pattern)
	}
	return ops
}
