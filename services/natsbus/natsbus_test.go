package natsbus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqhrss/subsidyledger/services/internal/natstest"
	"github.com/cqhrss/subsidyledger/services/natsbus"
)

func startServer(t *testing.T) (*natsbus.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	return natstest.Embedded(t)
}

func TestAtomicBatchStoresAllOrNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, nc, js := startServer(t)
	subj := natsbus.DefaultSubjects
	if _, err := natsbus.EnsureStreams(ctx, js, subj, natsbus.DefaultStreamOptions); err != nil {
		t.Fatal(err)
	}
	var msgs []*nats.Msg
	for i := range 500 {
		m := nats.NewMsg(subj.Inbound("enrolment", "enrolled"))
		m.Data = []byte(fmt.Sprintf("fact %d", i))
		m.Header.Set(natsbus.HeaderMsgID, fmt.Sprintf("m-%d", i))
		msgs = append(msgs, m)
	}
	ack, err := natsbus.PublishAtomic(ctx, nc, "b1", msgs)
	if err != nil {
		t.Fatalf("PublishAtomic = %v", err)
	}
	if ack.Count != 500 || ack.Sequence != 500 {
		t.Fatalf("PublishAtomic ack = %+v; want count 500 seq 500", ack)
	}
	// A batch containing an already-stored message id is refused whole.
	dup := []*nats.Msg{nats.NewMsg(subj.Inbound("enrolment", "enrolled")), nats.NewMsg(subj.Inbound("enrolment", "enrolled"))}
	dup[0].Header.Set(natsbus.HeaderMsgID, "new-1")
	dup[1].Header.Set(natsbus.HeaderMsgID, "m-3")
	_, err = natsbus.PublishAtomic(ctx, nc, "b2", dup)
	var be *natsbus.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("PublishAtomic(duplicate id) = %v; want *BatchError", err)
	}
	st, err := js.Stream(ctx, natsbus.InboundStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 500 {
		t.Fatalf("stream holds %d messages; want 500 (refused batch must store nothing)", info.State.Msgs)
	}
}

func TestSubjects(t *testing.T) {
	s := natsbus.Subjects{Prefix: "x"}
	for _, c := range []struct{ got, want string }{
		{s.Inbound("evaluation", "assessment_recorded"), "x.in.evaluation.assessment_recorded"},
		{s.Outcome("x.in.evaluation.assessment_recorded"), "x.outcome.evaluation.assessment_recorded"},
		{s.Feed("trainee", "subsidy.v1.Enrolled"), "x.feed.trainee.Enrolled"},
		{s.Feed("", "T"), "x.feed.other.T"},
	} {
		if c.got != c.want {
			t.Errorf("got %q; want %q", c.got, c.want)
		}
	}
}

// The inbound consumer of a ledger moving from the embedded store to
// EventStoreDB (and back) gains (loses) the pinned priority group in place:
// its acknowledgement state is kept, and only the pinned client is served.
func TestEnsureStreamsSwitchesPinning(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, nc, js := startServer(t)
	subj := natsbus.DefaultSubjects
	if _, err := natsbus.EnsureStreams(ctx, js, subj, natsbus.DefaultStreamOptions); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := nc.Publish(subj.Inbound("enrolment", "enrolled"), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	one, err := js.Consumer(ctx, natsbus.InboundStream, natsbus.LedgerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	fetchAcked(t, ctx, one, 1)
	pinned := natsbus.DefaultStreamOptions
	pinned.PinnedTTL = 5 * time.Second
	cons, err := natsbus.EnsureStreams(ctx, js, subj, pinned)
	if err != nil {
		t.Fatalf("EnsureStreams with a pinned TTL on an existing consumer = %v", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.PriorityPolicy != jetstream.PriorityPolicyPinned || info.Config.PinnedTTL != 5*time.Second || info.AckFloor.Stream != 1 {
		t.Fatalf("consumer after the switch: policy %v, TTL %v, ack floor %d; want pinned, 5s, 1", info.Config.PriorityPolicy, info.Config.PinnedTTL, info.AckFloor.Stream)
	}
	// Two clients pull in turn: the first is pinned, the second is served
	// nothing even though a message waits for it.
	a, _ := js.Consumer(ctx, natsbus.InboundStream, natsbus.LedgerConsumer)
	b, _ := js.Consumer(ctx, natsbus.InboundStream, natsbus.LedgerConsumer)
	got := map[string]int{}
	for _, turn := range []struct {
		name string
		c    jetstream.Consumer
		n    int
	}{{"a", a, 1}, {"b", b, 2}, {"a", a, 1}} {
		mb, err := turn.c.Fetch(turn.n, jetstream.FetchMaxWait(time.Second), jetstream.FetchPriorityGroup(natsbus.LedgerPriorityGroup))
		if err != nil {
			t.Fatal(err)
		}
		for m := range mb.Messages() {
			got[turn.name]++
			_ = m.Ack()
		}
	}
	if got["a"] != 2 || got["b"] != 0 {
		t.Fatalf("messages per client = %v; want both to the pinned client a, none to b", got)
	}
	// And back: the embedded store's single instance, no groups.
	cons, err = natsbus.EnsureStreams(ctx, js, subj, natsbus.DefaultStreamOptions)
	if err != nil {
		t.Fatalf("EnsureStreams without a pinned TTL on a pinned consumer = %v", err)
	}
	if info, err := cons.Info(ctx); err != nil || len(info.Config.PriorityGroups) != 0 {
		t.Fatalf("consumer after switching back: %+v, %v; want no priority groups", info, err)
	}
}

// TestStreamKeepsItsDenyFlags: a stream another release made deny purge
// (the server cannot cancel it) is brought to this release's configuration
// with the flag kept, instead of failing every start: a release that adds
// a deny flag must not stop an earlier one from starting on the same data.
func TestStreamKeepsItsDenyFlags(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _, js := startServer(t)
	stricter := jetstream.StreamConfig{Name: "OUTCOMES_TEST", Subjects: []string{"test.outcome.>"}, Storage: jetstream.FileStorage, DenyDelete: true, DenyPurge: true}
	if _, err := js.CreateStream(ctx, stricter); err != nil {
		t.Fatal(err)
	}
	ours := stricter
	ours.DenyPurge, ours.Description = false, "as an earlier release configures it"
	if _, err := js.CreateOrUpdateStream(ctx, ours); err == nil {
		t.Fatal("the server cancelled deny purge: the test shows nothing")
	}
	if err := natsbus.CreateOrUpdate(ctx, js, ours); err != nil {
		t.Fatalf("createOrUpdate with deny purge off on a stream that has it: %v", err)
	}
	s, err := js.Stream(ctx, "OUTCOMES_TEST")
	if err != nil {
		t.Fatal(err)
	}
	if cfg := s.CachedInfo().Config; !cfg.DenyPurge || !cfg.DenyDelete || cfg.Description != ours.Description {
		t.Fatalf("stream after: deny purge %v, deny delete %v, description %q; want the flags kept and the rest updated", cfg.DenyPurge, cfg.DenyDelete, cfg.Description)
	}
	bad := ours
	bad.Storage = jetstream.MemoryStorage // not a deny flag: still an error
	if err := natsbus.CreateOrUpdate(ctx, js, bad); err == nil {
		t.Fatal("createOrUpdate changed the storage of a stream")
	}
}
