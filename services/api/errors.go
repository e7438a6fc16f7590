package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/projections"
)

// Code is a stable error code of the API. Codes are only ever added.
type Code string

const (
	CodeBadRequest      Code = "bad_request"
	CodeUnauthenticated Code = "unauthenticated"
	CodeForbidden       Code = "forbidden"
	CodeNotFound        Code = "not_found"
	CodeConflict        Code = "conflict"
	CodeNotReady        Code = "not_ready"
	CodeUnavailable     Code = "unavailable"
	CodeTimeout         Code = "timeout"
	CodeInternal        Code = "internal"
	// CodeRejected: the ledger recorded the action's fact as rejected by a
	// rule (Error.Reason names the rule's reason code).
	CodeRejected Code = "rejected"
	// CodeErased: the personal data asked for was crypto-shredded.
	CodeErased Code = "erased"
	// CodePersonalDataUnavailable: this ledger runs without a personal-data
	// vault or person-key secret.
	CodePersonalDataUnavailable Code = "personal_data_unavailable"
)

// statusOf is the one table from codes to HTTP statuses.
var statusOf = map[Code]int{
	CodeBadRequest:      http.StatusBadRequest,
	CodeUnauthenticated: http.StatusUnauthorized,
	CodeForbidden:       http.StatusForbidden,
	CodeNotFound:        http.StatusNotFound,
	CodeConflict:        http.StatusConflict,
	CodeNotReady:        http.StatusServiceUnavailable,
	CodeUnavailable:     http.StatusServiceUnavailable,
	CodeTimeout:         http.StatusGatewayTimeout,
	CodeInternal:        http.StatusInternalServerError,
	CodeRejected:        http.StatusUnprocessableEntity,
	CodeErased:          http.StatusGone,

	CodePersonalDataUnavailable: http.StatusServiceUnavailable,
}

// Error is an error with a code; its Message is shown to the caller.
type Error struct {
	Code    Code
	Message string
	// Reason is the ledger's reason code of a rejected action, and
	// Position the log position of the rejection's record.
	Reason   string
	Position uint64
	Err      error // the cause, logged, never shown
}

func (e *Error) Error() string {
	if e.Err != nil {
		return string(e.Code) + ": " + e.Message + ": " + e.Err.Error()
	}
	return string(e.Code) + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error struct {
		Code    Code   `json:"code"`
		Message string `json:"message"`
		// Reason is the reason code of an action the ledger rejected
		// (e.g. REASON_CODE_CHECKER_IS_MAKER), Position the log
		// position of the rejection's record.
		Reason   string `json:"reason,omitempty"`
		Position uint64 `json:"position,omitempty"`
	} `json:"error"`
}

// classify translates any error into an *Error, once, at the edge.
func classify(err error) *Error {
	var e *Error
	var be *projections.BuildError
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeTimeout, Message: "the request took too long", Err: err}
	case errors.Is(err, context.Canceled):
		return &Error{Code: CodeUnavailable, Message: "the request was cancelled", Err: err}
	case errors.Is(err, projections.ErrBusy):
		return &Error{Code: CodeConflict, Message: "a rebuild is already running", Err: err}
	case errors.Is(err, projections.ErrBeyondHead):
		return &Error{Code: CodeBadRequest, Message: "as-of position is beyond the head of the log", Err: err}
	case errors.Is(err, projections.ErrNotReady), errors.Is(err, projections.ErrStopped):
		return &Error{Code: CodeNotReady, Message: "the read model is not ready", Err: err}
	case errors.As(err, &be):
		return &Error{Code: CodeInternal, Message: "the read model could not be built", Err: err}
	case errors.Is(err, events.ErrStreamNotFound):
		return &Error{Code: CodeNotFound, Message: "no such stream", Err: err}
	case errors.Is(err, events.ErrInvalidArgument):
		return &Error{Code: CodeBadRequest, Message: "invalid argument", Err: err}
	case errors.Is(err, events.ErrClosed), errors.Is(err, events.ErrUnavailable):
		return &Error{Code: CodeUnavailable, Message: "the event store is unavailable", Err: err}
	}
	return &Error{Code: CodeInternal, Message: "internal error", Err: err}
}

func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := classify(err)
	status, ok := statusOf[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		log.Error("request failed", "route", r.Pattern, "code", e.Code, "err", err)
	}
	var body ErrorBody
	body.Error.Code, body.Error.Message = e.Code, e.Message
	body.Error.Reason, body.Error.Position = e.Reason, e.Position
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
