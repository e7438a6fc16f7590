// Package codec turns ledger events into store records and back: the payload
// is a subsidy.v1 protobuf message, the metadata its subsidy.v1.Envelope, both
// marshalled deterministically so that the same event always has the same
// bytes (and so the same hash link and the same idempotent append).
package codec

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/cqhrss/subsidyledger/events"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

var (
	marshal = proto.MarshalOptions{Deterministic: true}
	// sized marshals a message whose sizes marshal.Size has just cached.
	sized = proto.MarshalOptions{Deterministic: true, UseCachedSize: true}
)

// TypeName is the store Type of a payload: its full protobuf name.
func TypeName(m proto.Message) string { return string(m.ProtoReflect().Descriptor().FullName()) }

// Encode builds the record of an event. The envelope's event_id, type and
// stream are filled from id, payload and stream; env's fields are not
// changed (its timestamps are shared with the copy marshalled, which
// caches their sizes in them).
func Encode(id events.ID, stream string, env *subsidyv1.Envelope, payload proto.Message) (events.EventData, error) {
	env = withEvent(env, id, stream, TypeName(payload))
	// Metadata and Data share one allocation of the exact size.
	n := marshal.Size(env)
	buf := make([]byte, 0, n+marshal.Size(payload))
	buf, err := sized.MarshalAppend(buf, env)
	if err != nil {
		return events.EventData{}, fmt.Errorf("codec: envelope of %s: %w", env.Type, err)
	}
	meta := buf[:len(buf):len(buf)]
	buf, err = sized.MarshalAppend(buf, payload)
	if err != nil {
		return events.EventData{}, fmt.Errorf("codec: payload %s: %w", env.Type, err)
	}
	return events.EventData{ID: id, Type: env.Type, Metadata: meta, Data: buf[len(meta):]}, nil
}

// withEvent is a shallow copy of env with the event's id, stream and type:
// its timestamps are shared, not cloned (they are only read, to marshal).
func withEvent(env *subsidyv1.Envelope, id events.ID, stream, typ string) *subsidyv1.Envelope {
	c := &subsidyv1.Envelope{
		EventId:        id.String(),
		Type:           typ,
		Stream:         stream,
		OccurredAt:     env.GetOccurredAt(),
		RecordedAt:     env.GetRecordedAt(),
		Source:         env.GetSource(),
		CausationId:    env.GetCausationId(),
		CorrelationId:  env.GetCorrelationId(),
		RuleSetVersion: env.GetRuleSetVersion(),
		MessageId:      env.GetMessageId(),
	}
	if u := env.ProtoReflect().GetUnknown(); len(u) > 0 {
		c.ProtoReflect().SetUnknown(u)
	}
	return c
}

// Payload decodes a record's payload into a new message of its Type.
func Payload(rec events.EventData) (proto.Message, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(rec.Type))
	if err != nil {
		return nil, fmt.Errorf("codec: unknown event type %q: %w", rec.Type, err)
	}
	m := mt.New().Interface()
	if err := proto.Unmarshal(rec.Data, m); err != nil {
		return nil, fmt.Errorf("codec: payload %s %s: %w", rec.Type, rec.ID, err)
	}
	return m, nil
}

// Envelope decodes a record's metadata.
func Envelope(rec events.EventData) (*subsidyv1.Envelope, error) {
	env := &subsidyv1.Envelope{}
	if err := proto.Unmarshal(rec.Metadata, env); err != nil {
		return nil, fmt.Errorf("codec: envelope of %s: %w", rec.ID, err)
	}
	return env, nil
}

// Decoded is a stored event with its envelope and payload decoded.
type Decoded struct {
	events.RecordedEvent
	Env     *subsidyv1.Envelope
	Payload proto.Message
}

// Decode decodes a recorded event's envelope and payload.
func Decode(rec events.RecordedEvent) (Decoded, error) {
	env, err := Envelope(rec.EventData)
	if err != nil {
		return Decoded{}, err
	}
	p, err := Payload(rec.EventData)
	if err != nil {
		return Decoded{}, err
	}
	return Decoded{RecordedEvent: rec, Env: env, Payload: p}, nil
}

// Category is the stream's category: the part before the first '-'
// ("trainee-abc" -> "trainee").
func Category(stream string) string {
	for i := 0; i < len(stream); i++ {
		if stream[i] == '-' {
			return stream[:i]
		}
	}
	return stream
}
