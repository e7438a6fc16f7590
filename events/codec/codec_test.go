package codec_test

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/codec"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

func TestRoundTripIsDeterministic(t *testing.T) {
	id := events.DeriveID("fact", "m-1")
	env := &subsidyv1.Envelope{Source: "enrolment", MessageId: "m-1", CorrelationId: "m-1"}
	p := &subsidyv1.Enrolled{EnrolmentId: "e1", PersonKey: "pk", TrainingInstitutionId: "t1",
		Qualification: &subsidyv1.Qualification{Occupation: subsidyv1.Occupation_OCCUPATION_BIG_DATA, Level: subsidyv1.Level_LEVEL_JUNIOR}}
	a, err := codec.Encode(id, "trainee-pk", env, p)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := codec.Encode(id, "trainee-pk", env, p)
	if !bytes.Equal(a.Metadata, b.Metadata) || !bytes.Equal(a.Data, b.Data) {
		t.Fatal("Encode is not deterministic")
	}
	if a.Type != "subsidy.v1.Enrolled" {
		t.Fatalf("Type = %q; want subsidy.v1.Enrolled", a.Type)
	}
	d, err := codec.Decode(events.RecordedEvent{EventData: a, Stream: "trainee-pk"})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(d.Payload, p) || d.Env.EventId != id.String() || d.Env.Stream != "trainee-pk" || d.Env.Source != "enrolment" {
		t.Fatalf("Decode = %v %v; want the encoded event", d.Env, d.Payload)
	}
	if env.EventId != "" {
		t.Fatal("Encode modified the caller's envelope")
	}
	if _, err := codec.Payload(events.EventData{Type: "no.such.Type"}); err == nil {
		t.Fatal("Payload(unknown type) = nil error")
	}
	if _, err := codec.Payload(events.EventData{Type: a.Type, Data: []byte{0xff}}); err == nil {
		t.Fatal("Payload(garbage) = nil error")
	}
	if got := codec.Category("fund-2025-cq"); got != "fund" {
		t.Fatalf("Category = %q; want fund", got)
	}
}
