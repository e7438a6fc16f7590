package rules

import (
	"fmt"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"google.golang.org/protobuf/proto"
)

// Fact is an inbound fact, decoded and ready to decide.
type Fact struct {
	// EventID is the id the fact's event will be stored under; the caller
	// derives it from the publisher's message id so a redelivery dedupes.
	EventID events.ID
	// MessageID is the publisher's idempotency key (Nats-Msg-Id).
	MessageID string
	// Source is the publishing service (facts.Kind.Source).
	Source string
	// OccurredAt is when the fact happened at its source. No rule reads it:
	// decisions use the dates inside the payload.
	OccurredAt time.Time
	// Payload is the fact message, e.g. *subsidyv1.CertificateIssued.
	Payload proto.Message
}

// Event is an event to append or an event read back for Apply.
type Event struct {
	ID      events.ID
	Payload proto.Message
	// Derived is true for the ledger's own decisions, false for the fact.
	Derived bool
	// CausationID is the fact's event id (text form) for derived events,
	// empty for the fact itself.
	CausationID string
}

// Type returns the full protobuf name of the payload, the stored event type.
func (e Event) Type() string { return string(e.Payload.ProtoReflect().Descriptor().FullName()) }

// Decision is what Decide wants appended: Events to Stream in one atomic
// append, the fact's event first and then the derived events in order.
type Decision struct {
	Stream string
	Events []Event
	// RuleSetVersion is the version of the rule set that decided.
	RuleSetVersion string
}

// Derived returns the derived events (all but the fact).
func (d Decision) Derived() []Event {
	if len(d.Events) == 0 {
		return nil
	}
	return d.Events[1:]
}

// Rejection is a fact the rules refuse, with a stable reason code (see
// REASONS.md). It implements error.
type Rejection struct {
	Reason subsidyv1.ReasonCode
	// Rule is the rule of DOMAIN.md §4 (1-16), 0 for intake reasons.
	Rule   int
	Detail string
}

func (r *Rejection) Error() string {
	return fmt.Sprintf("rules: rejected: %s: %s", r.Reason, r.Detail)
}

func reject(code subsidyv1.ReasonCode, format string, args ...any) *Rejection {
	return &Rejection{Reason: code, Rule: RuleOf(code), Detail: fmt.Sprintf(format, args...)}
}

// marshal is the deterministic encoding decisions are compared with.
var marshal = proto.MarshalOptions{Deterministic: true}

// Marshal encodes a payload deterministically (what "byte for byte" means).
func Marshal(m proto.Message) ([]byte, error) { return marshal.Marshal(m) }
