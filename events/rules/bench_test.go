package rules_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/rules"
)

// BenchmarkDecide measures Decide alone on a World with a history behind it
// (the cost per inbound fact, without the store).
func BenchmarkDecide(b *testing.B) {
	rs := rules.DefaultRuleSet()
	g, _ := history(b, 1, 2000, rs)
	probe := &gen{r: rand.New(rand.NewPCG(2, 2)), f: g.f}
	var fs []rules.Fact
	for i := 0; i < 1000; i++ {
		fs = append(fs, rules.Fact{EventID: events.DeriveID("bench", fmt.Sprint(i)), Payload: probe.next()})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g.f.l.w.Decide(fs[i%len(fs)])
	}
}
