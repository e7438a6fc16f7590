package rules

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
)

// A hashIndex answers as a map would through any mix of sets, overrides
// of frozen keys and freezes; sorted yields the map's entries in key order.
func TestHashIndexAnswersAsAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		var x hashIndex[events.ID, int]
		want := map[events.ID]int{}
		var keys []events.ID
		for step := range 3000 {
			switch op := r.IntN(100); {
			case op < 60 || len(keys) == 0:
				k := events.RandomID()
				if round%2 == 0 {
					k[0] = byte(r.IntN(3)) // crowded buckets
				}
				keys = append(keys, k)
				x.set(k, step)
				want[k] = step
			case op < 90:
				k := keys[r.IntN(len(keys))]
				x.set(k, step)
				want[k] = step
			case op < 97:
				k := keys[r.IntN(len(keys))]
				if v, ok := x.get(k); !ok || v != want[k] {
					t.Fatalf("round %d step %d: get = %d, %v; want %d", round, step, v, ok, want[k])
				}
			default:
				x.freeze()
			}
			if x.len() != len(want) {
				t.Fatalf("round %d step %d: len %d; want %d", round, step, x.len(), len(want))
			}
		}
		if _, ok := x.get(events.RandomID()); ok {
			t.Fatal("get found a key never set")
		}
		var got []events.ID
		for k, v := range x.sorted() {
			if want[k] != v {
				t.Fatalf("sorted yields %s=%d; want %d", k, v, want[k])
			}
			got = append(got, k)
		}
		wantKeys := slices.SortedFunc(maps.Keys(want), compareKeys[events.ID])
		if !slices.Equal(got, wantKeys) {
			t.Fatalf("round %d: sorted yields %d keys, not the %d in order", round, len(got), len(wantKeys))
		}
	}
}
