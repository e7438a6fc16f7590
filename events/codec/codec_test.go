package codec_test

import (
	"bytes"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

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

// Encode's copy of the envelope must carry every field: a field added to
// Envelope and not to the copy fails here.
func TestEncodeKeepsEveryEnvelopeField(t *testing.T) {
	env := &subsidyv1.Envelope{}
	m := env.ProtoReflect()
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch fd.Kind() {
		case protoreflect.StringKind:
			m.Set(fd, protoreflect.ValueOfString("v-"+string(fd.Name())))
		case protoreflect.MessageKind:
			ts := timestamppb.New(time.Unix(1750000000+int64(i), int64(i)))
			m.Set(fd, protoreflect.ValueOfMessage(ts.ProtoReflect()))
		default:
			t.Fatalf("Envelope field %s of kind %v: teach this test and Encode about it", fd.Name(), fd.Kind())
		}
	}
	m.SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 7))
	want := proto.Clone(env).(*subsidyv1.Envelope)
	id := events.DeriveID("fact", "m-1")
	p := &subsidyv1.Enrolled{EnrolmentId: "e1"}
	got, err := codec.Encode(id, "trainee-pk", env, p)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(env, want) {
		t.Fatal("Encode modified the caller's envelope")
	}
	want.EventId, want.Type, want.Stream = id.String(), "subsidy.v1.Enrolled", "trainee-pk"
	wantMeta, _ := proto.MarshalOptions{Deterministic: true}.Marshal(want)
	wantData, _ := proto.MarshalOptions{Deterministic: true}.Marshal(p)
	if !bytes.Equal(got.Metadata, wantMeta) || !bytes.Equal(got.Data, wantData) {
		t.Fatalf("Encode = %x %x; want %x %x", got.Metadata, got.Data, wantMeta, wantData)
	}
	if cap(got.Metadata) != len(got.Metadata) {
		t.Fatal("Metadata's capacity reaches into Data: an append to it would overwrite the payload")
	}
}
