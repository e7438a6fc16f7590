package events

import (
	"errors"
	"fmt"
)

// Code is a stable error code of the store contract. Codes are only ever
// added, never renumbered or reused.
type Code string

const (
	// CodeWrongExpectedRevision: the stream was not at the expected revision.
	CodeWrongExpectedRevision Code = "wrong_expected_revision"
	// CodeStreamNotFound: the stream has no events.
	CodeStreamNotFound Code = "stream_not_found"
	// CodeDuplicateID: an event id is already stored with a different body
	// or stream, or an append mixes stored and new ids.
	CodeDuplicateID Code = "duplicate_id"
	// CodeInvalidArgument: the call's arguments are not acceptable.
	CodeInvalidArgument Code = "invalid_argument"
	// CodeClosed: the store or subscription is closed.
	CodeClosed Code = "closed"
	// CodeCorrupt: stored data failed to decode or verify.
	CodeCorrupt Code = "corrupt"
	// CodeUnavailable: the backend cannot be reached or cannot write now
	// (disk full, read-only, connection lost). Retry later.
	CodeUnavailable Code = "unavailable"
)

// Error is the typed error every Store method returns. Compare with errors.Is
// against the sentinels below (which compare by Code) or inspect with
// errors.As.
type Error struct {
	Code   Code
	Op     string // the method, e.g. "append"
	Stream string // the stream concerned, if any
	// Actual is the stream's last revision for CodeWrongExpectedRevision,
	// -1 when the stream has no events.
	Actual   int64
	Expected ExpectedRevision
	Detail   string
	Err      error // the underlying cause, if any
}

func (e *Error) Error() string {
	msg := "events"
	if e.Op != "" {
		msg += ": " + e.Op
	}
	if e.Stream != "" {
		msg += " " + fmt.Sprintf("%q", e.Stream)
	}
	msg += ": " + string(e.Code)
	if e.Code == CodeWrongExpectedRevision {
		msg += fmt.Sprintf(" (expected %s, actual %d)", e.Expected, e.Actual)
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrX) true for any *Error with ErrX's code.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Code == e.Code && t.Op == "" && t.Stream == ""
}

// Sentinels for errors.Is.
var (
	ErrWrongExpectedRevision = &Error{Code: CodeWrongExpectedRevision}
	ErrStreamNotFound        = &Error{Code: CodeStreamNotFound}
	ErrDuplicateID           = &Error{Code: CodeDuplicateID}
	ErrInvalidArgument       = &Error{Code: CodeInvalidArgument}
	ErrClosed                = &Error{Code: CodeClosed}
	ErrCorrupt               = &Error{Code: CodeCorrupt}
	ErrUnavailable           = &Error{Code: CodeUnavailable}
)

// CodeOf returns the Code of err, or "" if err is not an *Error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
