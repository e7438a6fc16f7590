// Package auditapi serves the log's tamper evidence over HTTP: the latest
// signed checkpoint (and issuing one on demand), inclusion and consistency
// proofs, and the verifier key. Everything it serves is checkable offline
// with only the verifier key (ledgerctl checkpoint / prove / verify), and
// none of it carries personal data: positions, sizes and hashes.
package auditapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/merkle"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// Handler serves, on a mux of its own:
//
//	GET  /v1/audit/checkpoint                               the latest signed checkpoint (404 before the first)
//	POST /v1/audit/checkpoint                               issue one now (waits until the head is sealed)
//	GET  /v1/audit/proof/inclusion?position=P&tree_size=N   N = 0: the whole sealed tree
//	GET  /v1/audit/proof/consistency?old_size=M&new_size=N
//	GET  /v1/audit/verifier-key                             the note verifier key checkpoints are signed for
//
// Errors are {"error":{"code","message"}}: bad_request (400), not_found
// (404: not sealed yet), internal (500).
func Handler(sl *merkle.Sealer, cps *merkle.Checkpointer, verifierKey string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/audit/checkpoint", func(w http.ResponseWriter, r *http.Request) {
		cp := cps.Latest()
		if cp == nil {
			writeJSON(w, nil, &merkle.Error{Code: merkle.CodeNotSealed, Detail: "no checkpoint yet"})
			return
		}
		writeJSON(w, cp, nil)
	})
	mux.HandleFunc("POST /v1/audit/checkpoint", func(w http.ResponseWriter, r *http.Request) {
		cp, _, err := cps.Issue(r.Context())
		writeJSON(w, cp, err)
	})
	mux.HandleFunc("GET /v1/audit/proof/inclusion", func(w http.ResponseWriter, r *http.Request) {
		pos, err1 := num(r, "position")
		size, err2 := num(r, "tree_size")
		if err := firstErr(err1, err2); err != nil {
			writeJSON(w, nil, err)
			return
		}
		p, err := sl.InclusionProof(r.Context(), events.Position(pos), size)
		writeJSON(w, p, err)
	})
	mux.HandleFunc("GET /v1/audit/proof/consistency", func(w http.ResponseWriter, r *http.Request) {
		old, err1 := num(r, "old_size")
		size, err2 := num(r, "new_size")
		if err := firstErr(err1, err2); err != nil {
			writeJSON(w, nil, err)
			return
		}
		p, err := sl.ConsistencyProof(old, size)
		writeJSON(w, p, err)
	})
	mux.HandleFunc("GET /v1/audit/verifier-key", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"verifier_key": verifierKey}, nil)
	})
	return mux
}

func num(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, &merkle.Error{Code: merkle.CodeInvalidArgument, Detail: name + " must be a whole number"}
	}
	return n, nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		code, status, msg := "internal", http.StatusInternalServerError, "internal error"
		switch merkle.CodeOf(err) {
		case merkle.CodeInvalidArgument:
			code, status, msg = "bad_request", http.StatusBadRequest, err.Error()
		case merkle.CodeNotSealed:
			code, status, msg = "not_found", http.StatusNotFound, err.Error()
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
		return
	}
	if m, ok := v.(*subsidyv1.AuditCheckpoint); ok {
		b, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
		_, _ = w.Write(b)
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}
