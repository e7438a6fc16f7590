package rules_test

import (
	"sync"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/facts"
	"github.com/cqhrss/subsidyledger/events/rules"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var (
	fuzzOnce  sync.Once
	fuzzWorld *rules.World
	fuzzSeeds []rules.Fact
)

// fuzzSetup builds, once, a World with a random history behind it (so that
// decoded facts meet entitlements, orders, clawbacks...) and the facts of
// that history as seeds.
func fuzzSetup(t testing.TB) {
	fuzzOnce.Do(func() {
		rs := rules.DefaultRuleSet()
		rs.PassRateWindow, rs.Version = 3, "fuzz"
		g, _ := history(t, 1, 400, rs)
		fuzzWorld, fuzzSeeds = g.f.l.w, g.out
	})
}

// FuzzDecodeDecide: whatever arrives on whatever subject, decoding and
// deciding never panic; an accepted fact yields a well-formed decision.
func FuzzDecodeDecide(f *testing.F) {
	fuzzSetup(f)
	kinds := facts.All()
	index := map[string]uint8{}
	for i, k := range kinds {
		index[string(k.Name)+k.Source] = uint8(i)
	}
	for i, fact := range fuzzSeeds {
		if i%5 != 0 {
			continue
		}
		ks := facts.ByName(fact.Payload.ProtoReflect().Descriptor().FullName())
		k := index[string(ks[0].Name)+ks[0].Source]
		b, _ := proto.Marshal(fact.Payload)
		j, _ := protojson.Marshal(fact.Payload)
		f.Add(k, false, b)
		f.Add(k, true, j)
	}
	f.Fuzz(func(t *testing.T, kind uint8, json bool, payload []byte) {
		k := kinds[int(kind)%len(kinds)]
		ct := facts.ContentTypeProtobuf
		if json {
			ct = facts.ContentTypeJSON
		}
		msg, err := facts.Decode(k, ct, payload)
		if err != nil {
			if facts.ReasonOf(err) == 0 {
				t.Fatalf("Decode error without a reason code: %v", err)
			}
			return
		}
		fact := rules.Fact{EventID: events.DeriveID("fuzz", string(payload)), Source: k.Source, Payload: msg}
		d, rej := fuzzWorld.Decide(fact)
		if rej != nil {
			if rej.Reason == 0 || rules.RuleOf(rej.Reason) != rej.Rule {
				t.Fatalf("rejection %+v", rej)
			}
			return
		}
		if d.Stream == "" || len(d.Events) == 0 || d.Events[0].ID != fact.EventID || d.Events[0].Derived {
			t.Fatalf("malformed decision %+v", d)
		}
		for _, e := range d.Derived() {
			if _, err := rules.Marshal(e.Payload); err != nil || e.ID.IsZero() || !e.Derived {
				t.Fatalf("derived event %v: %v", e, err)
			}
		}
	})
}
