package projections_test

import (
	"context"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/gen"
)

// TestUnmarshalMatchesProto decodes every payload of a generated history
// (every kind of event the read models see) with the build's decoder,
// copying strings and pointing them into the payload, and with
// proto.Unmarshal, and requires the same messages; and that a truncated
// payload fails in all.
func TestUnmarshalMatchesProto(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "log.db"))
	defer s.Close()
	if _, err := gen.Append(ctx, s, gen.Config{Seed: 7, Trainees: 400}, gen.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	after := events.Start
	for {
		recs, err := s.ReadAll(ctx, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(r.Type))
			if err != nil {
				t.Fatal(err)
			}
			want := mt.New().Interface()
			if err := proto.Unmarshal(r.Data, want); err != nil {
				t.Fatalf("%s at %d: proto.Unmarshal: %v", r.Type, r.Position, err)
			}
			for _, alias := range []bool{false, true} {
				got := mt.New().Interface()
				if err := projections.Unmarshal(r.Data, got, alias); err != nil {
					t.Fatalf("%s at %d (alias %v): %v", r.Type, r.Position, alias, err)
				}
				if !proto.Equal(got, want) {
					t.Fatalf("%s at %d (alias %v) decodes to\n%v\nwant\n%v", r.Type, r.Position, alias, got, want)
				}
				if n := len(r.Data); n > 1 && types[r.Type] == 0 {
					short := mt.New().Interface()
					if proto.Unmarshal(r.Data[:n-1], mt.New().Interface()) != nil && projections.Unmarshal(r.Data[:n-1], short, alias) == nil {
						t.Errorf("%s (alias %v): a truncated payload decodes", r.Type, alias)
					}
				}
			}
			if _, ok := want.(interface{ UnmarshalVTUnsafe([]byte) error }); !ok && types[r.Type] == 0 {
				t.Errorf("%s has no generated decoder (UnmarshalVT, UnmarshalVTUnsafe)", r.Type)
			}
			types[r.Type]++
		}
		after = recs[len(recs)-1].Position
	}
	if len(types) < 15 {
		t.Errorf("the history has only %d kinds of event: %v", len(types), types)
	}
	t.Logf("%d kinds of event compared", len(types))
}
