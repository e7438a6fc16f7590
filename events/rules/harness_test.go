package rules_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/events/rules"
	"google.golang.org/protobuf/proto"
)

// testSecret is the person-key secret of the tests (not a real one).
var testSecret = []byte("test-only-person-key-secret-0123456789")

func testKeyer(t testing.TB) *person.Keyer {
	t.Helper()
	k, err := person.NewKeyer(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// stored is an event as a store would hold it.
type stored struct {
	stream   string
	revision uint64
	ev       rules.Event
	data     []byte
}

// ledger drives a World the way the ingest service does: Decide, append,
// Apply. It checks on every decision that Decide is pure (twice the same
// bytes) and does not touch the World.
type ledger struct {
	t   testing.TB
	w   *rules.World
	log []stored
}

func newLedger(t testing.TB, rs rules.RuleSet) *ledger {
	return &ledger{t: t, w: rules.NewWorld(rs)}
}

func encode(t testing.TB, evs []rules.Event) [][]byte {
	t.Helper()
	out := make([][]byte, len(evs))
	for i, e := range evs {
		b, err := rules.Marshal(e.Payload)
		if err != nil {
			t.Fatalf("marshal %s: %v", e.Type(), err)
		}
		out[i] = b
	}
	return out
}

func sameDecision(t testing.TB, a, b rules.Decision) error {
	if a.Stream != b.Stream || len(a.Events) != len(b.Events) {
		return fmt.Errorf("stream %q/%q, %d/%d events", a.Stream, b.Stream, len(a.Events), len(b.Events))
	}
	ea, eb := encode(t, a.Events), encode(t, b.Events)
	for i := range ea {
		if a.Events[i].ID != b.Events[i].ID || a.Events[i].Type() != b.Events[i].Type() || !bytes.Equal(ea[i], eb[i]) ||
			a.Events[i].CausationID != b.Events[i].CausationID || a.Events[i].Derived != b.Events[i].Derived {
			return fmt.Errorf("event %d differs: %v / %v", i, a.Events[i].Payload, b.Events[i].Payload)
		}
	}
	return nil
}

// decide decides f and, if accepted, appends and applies the decision.
func (l *ledger) decide(f rules.Fact) (rules.Decision, *rules.Rejection) {
	l.t.Helper()
	d, rej := l.w.Decide(f)
	d2, rej2 := l.w.Decide(f)
	if (rej == nil) != (rej2 == nil) || (rej != nil && (rej.Reason != rej2.Reason || rej.Detail != rej2.Detail)) {
		l.t.Fatalf("Decide is not pure: %v then %v", rej, rej2)
	}
	if rej != nil {
		return d, rej
	}
	if err := sameDecision(l.t, d, d2); err != nil {
		l.t.Fatalf("Decide is not pure: %v", err)
	}
	l.append(d)
	return d, nil
}

// append stores a decision's events in its stream and applies them.
func (l *ledger) append(d rules.Decision) {
	l.t.Helper()
	if len(d.Events) == 0 || d.Events[0].Derived {
		l.t.Fatalf("decision without its fact first: %+v", d)
	}
	seen := map[events.ID]bool{}
	for i, e := range d.Events {
		if seen[e.ID] {
			l.t.Fatalf("decision has two events with id %s", e.ID)
		}
		seen[e.ID] = true
		if i > 0 && (!e.Derived || e.CausationID != d.Events[0].ID.String()) {
			l.t.Fatalf("derived event %d (%s) not marked derived from the fact", i, e.Type())
		}
	}
	data := encode(l.t, d.Events)
	for i, e := range d.Events {
		rev, ok := l.w.StreamRevision(d.Stream)
		next := uint64(0)
		if ok {
			next = rev + 1
		}
		if err := l.w.Apply(d.Stream, next, e); err != nil {
			l.t.Fatalf("Apply: %v", err)
		}
		l.log = append(l.log, stored{d.Stream, next, e, data[i]})
	}
}

// replay folds a log into a fresh World with Apply only, as a restarted
// ingest service does.
func replay(t testing.TB, rs rules.RuleSet, log []stored) *rules.World {
	t.Helper()
	w := rules.NewWorld(rs)
	applyAll(t, w, log)
	return w
}

// applyAll folds log into w with Apply, each payload round-tripped through
// its bytes, as a store read would.
func applyAll(t testing.TB, w *rules.World, log []stored) {
	t.Helper()
	for _, s := range log {
		m := s.ev.Payload.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(s.data, m); err != nil {
			t.Fatal(err)
		}
		ev := s.ev
		ev.Payload = m
		if err := w.Apply(s.stream, s.revision, ev); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
}
