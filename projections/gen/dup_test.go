package gen_test

import (
	"testing"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/projections/gen"
)

func TestNoDuplicateIDs(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		seen := map[events.ID]string{}
		_, err := gen.Generate(gen.Config{Seed: seed, Trainees: 3000}, func(b gen.Batch) error {
			for _, e := range b.Events {
				if prev, ok := seen[e.ID]; ok {
					t.Errorf("seed %d: id %s used by %s and %s (%s)", seed, e.ID, prev, e.Type, b.Stream)
				}
				seen[e.ID] = e.Type
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
