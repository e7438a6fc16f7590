package merkle

import (
	"errors"
	"fmt"
)

// Code is a stable error code of this package. Codes are only ever added,
// never renumbered or reused.
type Code string

const (
	// CodeInvalidArgument: the call's arguments are not acceptable (a tree
	// size beyond the sealed tree, a malformed key or checkpoint).
	CodeInvalidArgument Code = "invalid_argument"
	// CodeNotSealed: the position is not (yet) in the sealed tree, or no
	// event has that position.
	CodeNotSealed Code = "not_sealed"
	// CodeTampered: the log does not match what was sealed or signed.
	CodeTampered Code = "tampered"
	// CodeBadSignature: a checkpoint's signature does not verify with the
	// given key, or it names another log.
	CodeBadSignature Code = "bad_signature"
	// CodeBadProof: a proof does not prove what it claims.
	CodeBadProof Code = "bad_proof"
	// CodeCorrupt: the sealer's own file failed to decode.
	CodeCorrupt Code = "corrupt"
	// CodeClosed: the sealer is closed.
	CodeClosed Code = "closed"
	// CodeUnavailable: the sealer's file cannot be opened or written.
	CodeUnavailable Code = "unavailable"
)

// Error is the typed error this package returns. Compare with errors.Is
// against the sentinels below (which compare by Code) or inspect with
// errors.As.
type Error struct {
	Code   Code
	Op     string
	Detail string
	Err    error
}

func (e *Error) Error() string {
	msg := "merkle"
	if e.Op != "" {
		msg += ": " + e.Op
	}
	msg += ": " + string(e.Code)
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
	return t.Code == e.Code && t.Op == "" && t.Detail == ""
}

// Sentinels for errors.Is.
var (
	ErrInvalidArgument = &Error{Code: CodeInvalidArgument}
	ErrNotSealed       = &Error{Code: CodeNotSealed}
	ErrTampered        = &Error{Code: CodeTampered}
	ErrBadSignature    = &Error{Code: CodeBadSignature}
	ErrBadProof        = &Error{Code: CodeBadProof}
	ErrCorrupt         = &Error{Code: CodeCorrupt}
	ErrClosed          = &Error{Code: CodeClosed}
	ErrUnavailable     = &Error{Code: CodeUnavailable}
)

// CodeOf returns the Code of err, or "" if err is not an *Error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func errorf(code Code, op, format string, args ...any) *Error {
	return &Error{Code: code, Op: op, Detail: fmt.Sprintf(format, args...)}
}
