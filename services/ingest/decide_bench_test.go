package ingest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/services/simulate"
)

// fakeMsg is a delivered message for benchmarks of the decide path alone.
type fakeMsg struct {
	subject string
	data    []byte
	h       nats.Header
	md      *jetstream.MsgMetadata
}

func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) { return m.md, nil }
func (m *fakeMsg) Data() []byte                              { return m.data }
func (m *fakeMsg) Headers() nats.Header                      { return m.h }
func (m *fakeMsg) Subject() string                           { return m.subject }
func (m *fakeMsg) Reply() string                             { return "" }
func (m *fakeMsg) Ack() error                                { return nil }
func (m *fakeMsg) DoubleAck(context.Context) error           { return nil }
func (m *fakeMsg) Nak() error                                { return nil }
func (m *fakeMsg) NakWithDelay(time.Duration) error          { return nil }
func (m *fakeMsg) InProgress() error                         { return nil }
func (m *fakeMsg) Term() error                               { return nil }
func (m *fakeMsg) TermWithReason(string) error               { return nil }

// BenchmarkDecide measures the intake's per-fact work without NATS or the
// store: decode, validate, decide, encode and fold.
func BenchmarkDecide(b *testing.B) {
	k, _ := person.NewKeyer([]byte("benchmark key, not a real one, 32+ bytes"))
	p, _ := simulate.New(simulate.Config{Seed: 1, Year: 2025, Trainees: 20000, Keyer: k})
	var msgs []jetstream.Msg
	seq := uint64(0)
	add := func(fs []simulate.Fact) {
		for _, f := range fs {
			m, _ := simulate.Msg("subsidy.in", f, false)
			seq++
			msgs = append(msgs, &fakeMsg{subject: m.Subject, data: m.Data, h: m.Header,
				md: &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: seq}, NumDelivered: 1, Timestamp: time.Unix(1750000000, 0)}})
		}
	}
	add(p.Reference())
	for i := range 20000 {
		fs, _ := p.Trainee(i)
		add(fs)
	}
	s, err := bolt.Open(filepath.Join(b.TempDir(), "x.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		in := New(Config{Store: s, RuleSet: rules.DefaultRuleSet()})
		if err := in.Load(context.Background()); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < len(msgs); i += 500 {
			bt := in.prepare(context.Background(), msgs[i:min(i+500, len(msgs))])
			if bt.err != nil {
				b.Fatal(bt.err)
			}
		}
		n += len(msgs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "facts/s")
}
