package changefeed

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/projections/fund"
)

// appendJSON writes what encoding/json writes for a Change, byte for byte,
// over awkward strings and every optional field present or not.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	awkward := []string{"", "plain", `q"uote\back`, "tab\tnl\nnul\x00\x1f", "<a&b>", "汉字 ok", "\u2028\u2029", "bad\xff\xfeutf8", "\xe6\xb1", "é\u00a0\U0001F600"}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() string {
		if rng.IntN(3) == 0 {
			return ""
		}
		return awkward[rng.IntN(len(awkward))] + awkward[rng.IntN(len(awkward))]
	}
	for i := range 2000 {
		c := Change{Projection: pick(), Position: events.Position(rng.Uint64()), EventType: pick(), EventID: pick(),
			PersonKey: pick(), EntitlementID: pick(), ClawbackID: pick(), FlagID: pick(), UnitCode: pick()}
		if rng.IntN(2) == 0 {
			c.Year = int32(rng.IntN(4000) - 2000)
		}
		for range rng.IntN(3) {
			c.Institutions = append(c.Institutions, pick())
		}
		if rng.IntN(5) == 0 {
			c.Postings = []fund.Entry{{Seq: 1, Position: 9, EventType: pick(), Reference: pick(), Year: 2025, UnitCode: pick()}}
		}
		c.Resync = rng.IntN(4) == 0
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendJSON(nil, &c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("change %d:\nappendJSON   %s\njson.Marshal %s", i, got, want)
		}
	}
}
