package facts

import (
	"fmt"
	"mime"

	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Content types Decode accepts.
const (
	ContentTypeProtobuf = "application/protobuf"
	ContentTypeJSON     = "application/json"
)

// MaxPayloadSize is the largest payload Decode accepts (64 KiB); a fact is
// a few hundred bytes.
const MaxPayloadSize = 64 << 10

// Error is a typed fact error: Decode and Validate return it. Reason is the
// stable code the ledger records in FactRejected; Field names the offending
// field (proto name, dotted path), when there is one.
type Error struct {
	Reason subsidyv1.ReasonCode
	Field  string
	Detail string
	Err    error
}

func (e *Error) Error() string {
	s := "facts: " + e.Reason.String()
	if e.Field != "" {
		s += ": " + e.Field
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the reason code of a fact error (errors.As), or
// REASON_CODE_UNSPECIFIED.
func ReasonOf(err error) subsidyv1.ReasonCode {
	for err != nil {
		if e, ok := err.(*Error); ok {
			return e.Reason
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			break
		}
		err = u.Unwrap()
	}
	return subsidyv1.ReasonCode_REASON_CODE_UNSPECIFIED
}

// Decode decodes payload as a message of kind. contentType is
// application/protobuf (also when empty) or application/json (canonical
// protojson; unknown fields are an error), parameters such as charset are
// ignored. Binary payloads with fields unknown to the schema are refused
// too, so that a fact is stored exactly as the ledger understood it.
//
// Errors (*Error): OVERSIZED (more than MaxPayloadSize bytes),
// UNSUPPORTED_CONTENT_TYPE, UNDECODABLE. Decode does not Validate.
func Decode(kind Kind, contentType string, payload []byte) (proto.Message, error) {
	if kind.IsZero() {
		return nil, &Error{Reason: subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_SUBJECT, Detail: "no kind"}
	}
	if len(payload) > MaxPayloadSize {
		return nil, &Error{Reason: subsidyv1.ReasonCode_REASON_CODE_OVERSIZED, Detail: fmt.Sprintf("%d bytes, limit %d", len(payload), MaxPayloadSize)}
	}
	mt := ContentTypeProtobuf
	if contentType != "" {
		var err error
		mt, _, err = mime.ParseMediaType(contentType)
		if err != nil {
			return nil, &Error{Reason: subsidyv1.ReasonCode_REASON_CODE_UNSUPPORTED_CONTENT_TYPE, Detail: fmt.Sprintf("%q", contentType), Err: err}
		}
	}
	m := kind.New()
	switch mt {
	case ContentTypeProtobuf, "application/x-protobuf":
		if err := (proto.UnmarshalOptions{}).Unmarshal(payload, m); err != nil {
			return nil, &Error{Reason: subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE, Detail: "protobuf", Err: err}
		}
		if hasUnknown(m) {
			return nil, &Error{Reason: subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE, Detail: "fields unknown to " + string(kind.Name)}
		}
	case ContentTypeJSON:
		if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(payload, m); err != nil {
			return nil, &Error{Reason: subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE, Detail: "json", Err: err}
		}
	default:
		return nil, &Error{Reason: subsidyv1.ReasonCode_REASON_CODE_UNSUPPORTED_CONTENT_TYPE, Detail: fmt.Sprintf("%q", mt)}
	}
	return m, nil
}
