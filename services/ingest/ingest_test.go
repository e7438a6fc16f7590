package ingest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/internal/natstest"
	"github.com/cqhrss/subsidyledger/services/natsbus"
	"github.com/cqhrss/subsidyledger/services/simulate"
)

type rig struct {
	store events.Store
	nc    *nats.Conn
	js    jetstream.JetStream
	cons  jetstream.Consumer
	outc  chan *subsidyv1.IntakeOutcome
}

func newRig(t *testing.T) *rig {
	t.Helper()
	return newRigWith(t, natsbus.DefaultStreamOptions)
}

// newRigWith is newRig with the streams made with o.
func newRigWith(t *testing.T, o natsbus.StreamOptions) *rig {
	t.Helper()
	_, nc, js := natstest.Embedded(t)
	cons, err := natsbus.EnsureStreams(context.Background(), js, natsbus.DefaultSubjects, o)
	if err != nil {
		t.Fatal(err)
	}
	s, err := bolt.Open(filepath.Join(t.TempDir(), "ledger.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	r := &rig{store: s, nc: nc, js: js, cons: cons, outc: make(chan *subsidyv1.IntakeOutcome, 10000)}
	if _, err := nc.Subscribe("subsidy.outcome.>", func(m *nats.Msg) {
		o := &subsidyv1.IntakeOutcome{}
		if err := proto.Unmarshal(m.Data, o); err == nil {
			r.outc <- o
		}
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) intake(t *testing.T) *Intake {
	t.Helper()
	in := New(Config{Store: r.store, Conn: r.nc, Consumer: r.cons, RuleSet: rules.DefaultRuleSet(), Metrics: NewMetrics(prometheus.NewRegistry())})
	if err := in.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return in
}

func (r *rig) publish(t *testing.T, facts []simulate.Fact) {
	t.Helper()
	for _, f := range facts {
		m, err := simulate.Msg("subsidy.in", f, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

func (r *rig) fetch(t *testing.T, n int) []jetstream.Msg {
	t.Helper()
	mb, err := r.cons.Fetch(n, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for m := range mb.Messages() {
		out = append(out, m)
	}
	if len(out) != n {
		t.Fatalf("fetched %d messages; want %d", len(out), n)
	}
	return out
}

// outcomes waits up to within for n outcomes.
func (r *rig) outcomes(t *testing.T, n int, within time.Duration) []*subsidyv1.IntakeOutcome {
	t.Helper()
	var out []*subsidyv1.IntakeOutcome
	deadline := time.After(within)
	for len(out) < n {
		select {
		case o := <-r.outc:
			out = append(out, o)
		case <-deadline:
			t.Fatalf("%d of %d outcomes within %v", len(out), n, within)
		}
	}
	return out
}

func programme(t *testing.T) ([]simulate.Fact, []simulate.Fact) {
	t.Helper()
	k, _ := person.NewKeyer([]byte("test key: 32 bytes or more, not a real one"))
	p, err := simulate.New(simulate.Config{Seed: 3, Year: 2025, Trainees: 5, Keyer: k, Officials: true})
	if err != nil {
		t.Fatal(err)
	}
	var trainees []simulate.Fact
	for i := range 5 {
		fs, _ := p.Trainee(i)
		trainees = append(trainees, fs...)
	}
	return p.Reference(), trainees
}

func head(t *testing.T, s events.Store) events.Position {
	t.Helper()
	h, err := s.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// A message redelivered after a crash (recorded, not acknowledged) is
// answered with its original outcome by a restarted intake; nothing new is
// stored.
func TestRedeliveryAfterRestartStoresNothingNew(t *testing.T) {
	r := newRig(t)
	ref, trainees := programme(t)
	r.publish(t, ref)
	r.publish(t, trainees)
	all := len(ref) + len(trainees)
	msgs := r.fetch(t, all)
	first := r.intake(t)
	if err := first.handle(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	h := head(t, r.store)
	if h == 0 {
		t.Fatal("nothing was stored")
	}
	// "Restart": a new intake folds the store and gets the same messages.
	second := r.intake(t)
	if err := second.handle(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	if got := head(t, r.store); got != h {
		t.Fatalf("store head after redelivery = %d; want %d (nothing new)", got, h)
	}
	dups := 0
	for _, o := range r.outcomes(t, 2*all, 5*time.Second) {
		if o.GetDuplicate() {
			dups++
			if o.GetStream() == "" {
				t.Errorf("duplicate outcome %s names no stream", o.GetMessageId())
			}
		}
	}
	if dups != all {
		t.Fatalf("%d duplicate outcomes; want %d", dups, all)
	}
}

// The same fact published again under a new message id is recorded as a
// DUPLICATE_FACT rejection, not as a second event; a repeated message id in
// one batch is answered once.
func TestSameFactNewMessageID(t *testing.T) {
	r := newRig(t)
	ref, trainees := programme(t)
	r.publish(t, ref)
	in := r.intake(t)
	if err := in.handle(context.Background(), r.fetch(t, len(ref))); err != nil {
		t.Fatal(err)
	}
	f := trainees[0] // a TraineeRegistered
	again := f
	again.MsgID = f.MsgID + "-resent"
	r.publish(t, []simulate.Fact{f, again})
	if err := in.handle(context.Background(), r.fetch(t, 2)); err != nil {
		t.Fatal(err)
	}
	page, err := r.store.ReadAll(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var registered, rejected int
	for _, rec := range page {
		d, err := codec.Decode(rec)
		if err != nil {
			t.Fatal(err)
		}
		switch p := d.Payload.(type) {
		case *subsidyv1.TraineeRegistered:
			registered++
		case *subsidyv1.FactRejected:
			rejected++
			if p.GetReason() != subsidyv1.ReasonCode_REASON_CODE_DUPLICATE_FACT || p.GetMessageId() != again.MsgID {
				t.Errorf("rejection = %s for %s; want DUPLICATE_FACT for %s", p.GetReason(), p.GetMessageId(), again.MsgID)
			}
		}
	}
	if registered != 1 || rejected != 1 {
		t.Fatalf("%d TraineeRegistered and %d rejections; want 1 and 1", registered, rejected)
	}
}

// Every outcome names the message's own record: the event at the
// outcome's position is the one at its stream and revision, and carries
// the message's id, even where one append holds several facts and the
// decisions derived from them.
func TestOutcomesNameTheirOwnEvent(t *testing.T) {
	r := newRig(t)
	ref, trainees := programme(t)
	again := trainees[0]
	again.MsgID += "-resent" // the same fact again: a rejection
	msgs := append(append(append([]simulate.Fact{}, ref...), trainees...), again)
	r.publish(t, msgs)
	in := r.intake(t)
	if err := in.handle(context.Background(), r.fetch(t, len(msgs))); err != nil {
		t.Fatal(err)
	}
	page, err := r.store.ReadAll(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	at := map[events.Position]events.RecordedEvent{}
	for _, rec := range page {
		at[rec.Position] = rec
	}
	shared := 0 // outcomes whose append held more than their own event
	for _, o := range r.outcomes(t, len(msgs), 5*time.Second) {
		rec, ok := at[events.Position(o.GetPosition())]
		if !ok {
			t.Errorf("outcome of %s names position %d, which holds no event", o.GetMessageId(), o.GetPosition())
			continue
		}
		d, err := codec.Decode(rec)
		if err != nil {
			t.Fatal(err)
		}
		id := d.Env.GetMessageId()
		if rej, ok := d.Payload.(*subsidyv1.FactRejected); ok {
			id = rej.GetMessageId()
		}
		if rec.Stream != o.GetStream() || rec.Revision != o.GetRevision() || id != o.GetMessageId() {
			t.Errorf("outcome of %s names %s@%d at position %d; that position holds %s@%d of message %s",
				o.GetMessageId(), o.GetStream(), o.GetRevision(), o.GetPosition(), rec.Stream, rec.Revision, id)
		}
		if next, ok := at[rec.Position+1]; ok && next.Stream == rec.Stream && next.Revision == rec.Revision+1 {
			shared++
		}
	}
	if shared == 0 {
		t.Error("no outcome's event was followed by another of its append; the test shows nothing")
	}
}

// On a store that appends a batch in one ordered write (bolt), the log
// holds a batch's facts in the order they were decided, even when the
// facts of several trainees interleave, so a restart refolds the state
// the decisions were made on (order-dependent state such as a fund's queue
// of held entitlements included).
func TestLogOrderIsDecisionOrder(t *testing.T) {
	r := newRig(t)
	k, _ := person.NewKeyer([]byte("test key: 32 bytes or more, not a real one"))
	p, err := simulate.New(simulate.Config{Seed: 3, Year: 2025, Trainees: 3, Keyer: k})
	if err != nil {
		t.Fatal(err)
	}
	ref := p.Reference()
	r.publish(t, ref)
	in := r.intake(t)
	if err := in.handle(context.Background(), r.fetch(t, len(ref))); err != nil {
		t.Fatal(err)
	}
	after := head(t, r.store)
	// Three trainees' facts, interleaved one by one (each trainee's in
	// its own order).
	var lanes [][]simulate.Fact
	for i := range 3 {
		fs, _ := p.Trainee(i)
		lanes = append(lanes, fs)
	}
	var mixed []simulate.Fact
	for i := 0; ; i++ {
		n := 0
		for _, l := range lanes {
			if i < len(l) {
				mixed, n = append(mixed, l[i]), n+1
			}
		}
		if n == 0 {
			break
		}
	}
	r.publish(t, mixed)
	if err := in.handle(context.Background(), r.fetch(t, len(mixed))); err != nil {
		t.Fatal(err)
	}
	page, err := r.store.ReadAll(context.Background(), after, 0)
	if err != nil {
		t.Fatal(err)
	}
	var logged []string // accepted facts' message ids, in log order
	for _, rec := range page {
		d, err := codec.Decode(rec)
		if err != nil {
			t.Fatal(err)
		}
		if _, rejected := d.Payload.(*subsidyv1.FactRejected); rejected || d.Env.GetSource() == Source {
			continue
		}
		logged = append(logged, d.Env.GetMessageId())
	}
	var want []string // the same, in publish (decision) order
	pos := map[string]int{}
	for i, id := range logged {
		pos[id] = i
	}
	for _, f := range mixed {
		if _, ok := pos[f.MsgID]; ok {
			want = append(want, f.MsgID)
		}
	}
	if len(logged) < len(mixed)/2 {
		t.Fatalf("only %d of %d facts accepted", len(logged), len(mixed))
	}
	if !slices.Equal(logged, want) {
		t.Errorf("log order of the batch's facts differs from the order they were decided in:\nlog:     %v\ndecided: %v", logged, want)
	}
}

// A message whose record the intake no longer remembers (its recent-ids
// cache is bounded; JetStream's duplicate window is too) is still answered
// with its original outcome when it comes again: the world knows every
// event id it folded. Nothing new is stored.
func TestRedeliveryBeyondRecentCacheStoresNothingNew(t *testing.T) {
	r := newRig(t)
	ref, trainees := programme(t)
	r.publish(t, ref)
	r.publish(t, trainees)
	bad := nats.NewMsg("subsidy.in.enrolment.trainee_registered") // a rejection too
	bad.Data = []byte{0xff, 0xff}
	bad.Header.Set(natsbus.HeaderMsgID, "undecodable-1")
	if _, err := r.js.PublishMsg(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	all := len(ref) + len(trainees) + 1
	msgs := r.fetch(t, all)
	in := New(Config{Store: r.store, Conn: r.nc, Consumer: r.cons, RuleSet: rules.DefaultRuleSet(), RecentIDs: 2, Metrics: NewMetrics(prometheus.NewRegistry())})
	if err := in.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := in.handle(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	h := head(t, r.store)
	if err := in.handle(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	if got := head(t, r.store); got != h {
		t.Fatalf("store head after the messages came again = %d; want %d (nothing new)", got, h)
	}
	dups := 0
	for _, o := range r.outcomes(t, 2*all, 5*time.Second) {
		if o.GetDuplicate() {
			dups++
			if o.GetMessageId() == "undecodable-1" && o.GetReason() != subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE {
				t.Errorf("the repeated undecodable message's outcome says %s", o.GetReason())
			}
		}
	}
	if dups != all {
		t.Fatalf("%d duplicate outcomes; want %d", dups, all)
	}
}

// After a crash (messages delivered, never acknowledged) a restarted intake
// on a consumer it does not share takes them again at once, in stream
// order, instead of after the ack wait: it resets the consumer to its ack
// floor. Every message is recorded once.
func TestRestartAfterCrashResumesAtOnceInOrder(t *testing.T) {
	r := newRig(t)
	ref, trainees := programme(t)
	r.publish(t, ref)
	r.publish(t, trainees)
	all := len(ref) + len(trainees)
	_ = r.fetch(t, all) // the "crashed" run: delivered, never acknowledged
	if info, err := r.cons.Info(context.Background()); err != nil || info.NumAckPending != all {
		t.Fatalf("consumer before the restart: %+v, %v; want %d pending", info, err, all)
	}
	in := New(Config{Store: r.store, Conn: r.nc, Consumer: r.cons, JetStream: r.js, RuleSet: rules.DefaultRuleSet(),
		AckWait: 30 * time.Second, Metrics: NewMetrics(prometheus.NewRegistry())})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	defer func() { cancel(); <-done }()
	published := map[string]int{} // message id -> publishing order (= stream order)
	for i, f := range append(slices.Clone(ref), trainees...) {
		published[f.MsgID] = i
	}
	for _, o := range r.outcomes(t, all, 10*time.Second) { // a third of the ack wait
		if o.GetDuplicate() {
			t.Errorf("outcome of %s is a duplicate", o.GetMessageId())
		}
	}
	// The accepted facts are in the log in stream order (rejections go to
	// their own streams after each batch's decisions).
	page, err := r.store.ReadAll(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var order []int
	for _, rec := range page {
		d, err := codec.Decode(rec)
		if err != nil {
			t.Fatal(err)
		}
		if i, ok := published[d.Env.GetMessageId()]; ok && d.Env.GetSource() != Source {
			order = append(order, i)
		}
	}
	if len(order) == 0 || !slices.IsSorted(order) {
		t.Errorf("accepted facts in the log in publishing order %v; want increasing", order)
	}
}

// Load folds the log with its pages read and decoded ahead on another
// goroutine; it must end where folding one record at a time ends: the same
// world, rejections, recent message ids and position. The history spans
// several of replay's pages.
func TestLoadEqualsFoldingOneAtATime(t *testing.T) {
	r := newRig(t)
	msgs := r.simulated(t, 1100)
	handleAll(t, r.intake(t), msgs)
	if h := head(t, r.store); h <= 2*4096 {
		t.Fatalf("the log has %d events; want more than two of replay's pages", h)
	}
	cfg := Config{Store: r.store, RuleSet: rules.DefaultRuleSet(), RecentIDs: 1 << 20}
	loaded := New(cfg)
	if err := loaded.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	sameState(t, "Load", loaded, foldedOneAtATime(t, cfg))
}

// simulated publishes the facts of n simulated trainees and one
// undecodable message (a rejection), and fetches them all.
func (r *rig) simulated(t *testing.T, n int) []jetstream.Msg {
	t.Helper()
	return r.fetch(t, r.publishSimulated(t, n))
}

// publishSimulated publishes the facts of n simulated trainees and one
// undecodable message (a rejection) and returns how many messages.
func (r *rig) publishSimulated(t *testing.T, n int) int {
	t.Helper()
	return r.publishSimulatedSeed(t, n, 5)
}

// publishSimulatedSeed is publishSimulated with the simulator's seed (a
// second programme in the same store takes another seed).
func (r *rig) publishSimulatedSeed(t *testing.T, n int, seed uint64) int {
	t.Helper()
	k, _ := person.NewKeyer([]byte("test key: 32 bytes or more, not a real one"))
	p, err := simulate.New(simulate.Config{Seed: seed, Year: 2025, Trainees: n, Keyer: k, Officials: true})
	if err != nil {
		t.Fatal(err)
	}
	facts := p.Reference()
	for i := range n {
		fs, _ := p.Trainee(i)
		facts = append(facts, fs...)
	}
	r.publish(t, facts)
	bad := nats.NewMsg("subsidy.in.enrolment.trainee_registered")
	bad.Data = []byte{0xff, 0xff}
	bad.Header.Set(natsbus.HeaderMsgID, "undecodable-1")
	if _, err := r.js.PublishMsg(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	return len(facts) + 1
}

// handleAll has in decide and record msgs, in batches of 500.
func handleAll(t *testing.T, in *Intake, msgs []jetstream.Msg) {
	t.Helper()
	for len(msgs) > 0 {
		n := min(500, len(msgs))
		if err := in.handle(context.Background(), msgs[:n]); err != nil {
			t.Fatal(err)
		}
		msgs = msgs[n:]
	}
}

// foldedOneAtATime returns an intake that folded the whole log one record
// at a time.
func foldedOneAtATime(t *testing.T, cfg Config) *Intake {
	t.Helper()
	one := New(cfg)
	one.reset()
	if err := one.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	return one
}

// sameState checks that got's state (position, world, rejections, recent
// message ids) equals want's; it compacts both worlds first.
func sameState(t *testing.T, what string, got, want *Intake) {
	t.Helper()
	if got.seen != want.seen || got.Position() != want.Position() {
		t.Errorf("%s reached %d (position %d); one at a time %d (%d)", what, got.seen, got.Position(), want.seen, want.Position())
	}
	got.world.Compact()
	want.world.Compact()
	if !reflect.DeepEqual(got.world, want.world) {
		t.Errorf("%s: the world differs from folding one record at a time", what)
	}
	if !reflect.DeepEqual(got.rejected, want.rejected) || len(want.rejected) == 0 {
		t.Errorf("%s: rejections (%d) differ from folding one at a time (%d)", what, len(got.rejected), len(want.rejected))
	}
	if !reflect.DeepEqual(got.recorded, want.recorded) {
		t.Errorf("%s: recent message ids differ from folding one at a time", what)
	}
}

// failingStore fails every read of the log.
type failingStore struct{ events.Store }

func (failingStore) ReadAll(context.Context, events.Position, int) ([]events.RecordedEvent, error) {
	return nil, errors.New("disk on fire")
}

// A read that fails while Load replays ends Load with the error, and does
// not leave its reading goroutine behind.
func TestLoadReportsAReadFailure(t *testing.T) {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "ledger.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	failing := New(Config{Store: failingStore{s}, RuleSet: rules.DefaultRuleSet()})
	err = failing.Load(context.Background())
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Load on a failing store = %v", err)
	}
}

// TestMsgIDReusedForAnotherFact: a Nats-Msg-Id the ledger recorded for one
// fact, reused (after JetStream's duplicate window) for another, does not
// answer the other as a repeat of the first: the other is decided under
// the id with its content's digest appended, and recorded; sent again, it
// is a repeat of itself, and the first sent again a repeat of the first.
func TestMsgIDReusedForAnotherFact(t *testing.T) {
	o := natsbus.DefaultStreamOptions
	o.DuplicateWindow = 100 * time.Millisecond
	r := newRigWith(t, o)
	s := r.store
	ref, trainees := programme(t)
	r.publish(t, ref)
	in := r.intake(t)
	if err := in.handle(context.Background(), r.fetch(t, len(ref))); err != nil {
		t.Fatal(err)
	}
	r.outcomes(t, len(ref), 5*time.Second)
	var regs []simulate.Fact
	for _, f := range trainees {
		if _, ok := f.Msg.(*subsidyv1.TraineeRegistered); ok {
			regs = append(regs, f)
		}
	}
	a, b := regs[0], regs[1]
	b.MsgID = a.MsgID
	send := func(f simulate.Fact) *subsidyv1.IntakeOutcome {
		t.Helper()
		time.Sleep(200 * time.Millisecond) // past JetStream's duplicate window
		r.publish(t, []simulate.Fact{f})
		if err := in.handle(context.Background(), r.fetch(t, 1)); err != nil {
			t.Fatal(err)
		}
		return r.outcomes(t, 1, 5*time.Second)[0]
	}
	first := send(a)
	if !first.GetAccepted() || first.GetDuplicate() || first.GetMessageId() != a.MsgID {
		t.Fatalf("first: %v", first)
	}
	other := send(b)
	if !other.GetAccepted() || other.GetDuplicate() || !strings.HasPrefix(other.GetMessageId(), a.MsgID+"~") || len(other.GetMessageId()) != len(a.MsgID)+17 || other.GetPosition() == first.GetPosition() {
		t.Fatalf("another fact under the first's id: %v; want it accepted as itself under %s~<digest>", other, a.MsgID)
	}
	head, _ := s.Head(context.Background())
	if again := send(b); !again.GetDuplicate() || again.GetPosition() != other.GetPosition() || again.GetMessageId() != other.GetMessageId() {
		t.Errorf("the other fact again: %v; want a repeat of %v", again, other)
	}
	if again := send(a); !again.GetDuplicate() || again.GetPosition() != first.GetPosition() {
		t.Errorf("the first fact again: %v; want a repeat of %v", again, first)
	}
	if h, _ := s.Head(context.Background()); h != head {
		t.Errorf("repeats appended %d events", h-head)
	}
}

// TestRejectionRedeliveredWhileInFlight: a message redelivered while its
// rejection is still being appended (the next batch is decided meanwhile)
// waits for it and is answered as its repeat; the batch does not fail on
// appending the rejection a second time.
func TestRejectionRedeliveredWhileInFlight(t *testing.T) {
	r := newRig(t)
	for i, subj := range []string{"subsidy.in.enrolment.nonsense1", "subsidy.in.enrolment.nonsense2"} {
		m := nats.NewMsg(subj)
		m.Header.Set(natsbus.HeaderMsgID, fmt.Sprintf("bad-%d", i))
		m.Data = []byte("{}")
		if _, err := r.js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	msgs := r.fetch(t, 2)
	in := r.intake(t)
	ctx := context.Background()
	b1 := in.prepare(ctx, msgs[:1])
	in.commit(ctx, b1)                                       // appended, not finished: the next batch is decided meanwhile
	b2 := in.prepare(ctx, []jetstream.Msg{msgs[0], msgs[1]}) // a redelivery of the first, and another
	if err := in.finish(ctx, b1); err != nil {
		t.Fatal(err)
	}
	in.commit(ctx, b2)
	if err := in.finish(ctx, b2); err != nil {
		t.Fatalf("finish(second batch) = %v", err)
	}
	if it := b2.items[0]; it.retry == 0 || it.op != nil {
		t.Errorf("the redelivery was decided again (op %v, retry %v); want it to wait for its rejection", it.op, it.retry)
	}
	if it := b2.items[1]; it.outcome == nil || it.outcome.reason != subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_SUBJECT {
		t.Errorf("the other message: outcome %v", it.outcome)
	}
}
