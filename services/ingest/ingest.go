// Package ingest is the ledger's intake: it consumes inbound facts from the
// JetStream stream SUBSIDY_IN in batches, decodes and validates them, lets the rules
// decide, appends the fact and its derived decisions to the event store, and
// acknowledges each message only after its record is durable. Every message
// ends as exactly one accepted event or one recorded rejection (stream
// "rejection-<source>", natsbus.RejectionStream), and its outcome is published for the publisher.
package ingest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/facts"
	"github.com/cqhrss/subsidyledger/events/merkle"
	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/projections"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/natsbus"
)

// Source is the envelope source of the ledger's own decisions.
const Source = "ledger"

// Config configures an Intake.
type Config struct {
	Store    events.Store
	Conn     *nats.Conn
	Consumer jetstream.Consumer
	// JetStream, if set, lets a pinned intake give up its pin when it
	// stops, so that a standby instance takes over at once instead of
	// after the consumer's PinnedTTL (see natsbus.LedgerPriorityGroup).
	JetStream jetstream.JetStream
	Subjects  natsbus.Subjects
	RuleSet   rules.RuleSet
	// ReadOnly: Load folds the log but records nothing in it (no
	// RuleSetAdopted), for measuring or inspecting a store opened
	// read-only; Run refuses to decide.
	ReadOnly bool
	// BatchSize bounds the messages decided and appended together.
	BatchSize int
	// RecentIDs bounds how many recent messages' records are kept in
	// memory to answer redeliveries without reading the store (default
	// 100,000). An older message that comes again is answered from the
	// store: the world knows every accepted fact's event id, the intake
	// every rejection.
	RecentIDs int
	// AckWait is the consumer's ack wait: after a crash the intake waits
	// this long so that redeliveries come first.
	AckWait time.Duration
	// ReferenceWait: a fact rejected because something it refers to is not
	// recorded yet (an unknown trainee, enrolment, entitlement, ...) is
	// handed back and decided again every RetryDelay until it has been in
	// the inbound stream this long (default 60s, RetryDelay 250ms); only
	// then is the rejection recorded. Publishers are separate services and
	// their facts may arrive out of order. While a person's fact waits, the
	// person's later facts wait behind it, so their order is kept.
	ReferenceWait time.Duration
	RetryDelay    time.Duration
	// ProbeInterval is how long the intake waits, once the store cannot
	// write (disk full, read-only, I/O errors), before it tests whether the
	// store can write again; the wait doubles up to ProbeMaxInterval
	// (defaults 500ms and 10s). Meanwhile it consumes nothing: JetStream
	// keeps the messages.
	ProbeInterval    time.Duration
	ProbeMaxInterval time.Duration
	// Snapshots, if set, keeps the intake's state: the rules' World, the
	// records of rejected and recent messages, and the position they
	// reflect. Load restores the latest and folds only the events after
	// it, instead of the whole log (minutes for millions of events). A
	// snapshot of another format or rule set, a damaged one, or one whose
	// event the store does not hold is not used: Load folds the whole log.
	Snapshots *projections.Checkpoints
	// SnapshotEvery: once this many events have been folded or committed
	// since the last snapshot (default 10,000,000), the intake writes
	// another between batches while it runs (and at the end of Load after
	// a million). Consuming pauses meanwhile: 10-25 s for 10 million
	// events (1 million trainees) on two cores. A crash costs folding at
	// most about this many events at the next start (about a minute for
	// 10 million).
	SnapshotEvery int
	// SnapshotAtStop: Run writes a snapshot when it stops if at least this
	// many events came since the last (default 10,000 or SnapshotEvery,
	// whichever is less: folding fewer at the next start is quicker than
	// writing a large World).
	SnapshotAtStop int
	Logger         *slog.Logger
	Metrics        *Metrics
}

// Intake consumes, decides and records inbound facts. Its state (the rules'
// world) is folded from the store; it is not safe for concurrent use except
// for Ready and Position.
type Intake struct {
	cfg   Config
	world *rules.World
	// adopted: Load has recorded (or found) Config.RuleSet in the log; a
	// RuleSetAdopted of another rule set folded after that is another
	// instance's, and stops this one (RuleSetChangedError): halted then,
	// for good (no snapshot, no reload records its own again).
	adopted  bool
	halted   bool
	seen     events.Position        // last log position folded into world
	mine     map[events.ID]struct{} // appended by us, not yet met by catch-up
	parked   map[string]parking     // lane -> its waiting facts
	sealed   map[events.ID]struct{} // ids of the last sealed batch
	recorded *recent
	// rejected holds the record of every rejected message: the world
	// knows accepted facts' ids, not rejections' (they are few).
	rejected map[events.ID]ref
	// rejecting: the ids of the rejections in the batch being appended.
	rejecting map[events.ID]struct{}
	// unlogged are the events the world holds that catch-up has not met
	// in the log yet (decisions applied provisionally, then appended);
	// point is the event of the log the world's state is that of: the
	// last one catch-up met when nothing is unlogged, else the last event
	// applied (the unlogged ones land after whatever catch-up meets
	// meanwhile, such as an audit checkpoint). A rule rejection records it
	// (FactRejected.decided), where a replay decides it again.
	unlogged map[events.ID]struct{}
	point    events.ID
	// recs is decide's scratch: a decision's records until they join
	// their op (copied there).
	recs    []events.EventData
	ready   atomic.Bool
	pos     atomic.Uint64
	lastErr atomic.Pointer[string]
	// answers, while Run runs, takes the acknowledgements and outcomes of
	// committed batches off the path of the next commit.
	answers chan []func()
	// outboxes hold answer's reusable memory (*outbox); answers may run
	// on two goroutines at once (see finish).
	outboxes sync.Pool
	unavail  atomic.Pointer[StoreUnavailable]
	// resumed is when the intake last started or resumed consuming: a
	// fact's wait for what it refers to (ReferenceWait) counts from then at
	// the earliest, so an outage does not use it up.
	resumed time.Time
	// probeBytes is what the store must be able to write before the
	// intake resumes: about the size of the batch that failed.
	probeBytes int
	pin        atomic.Pointer[string] // the consumer's pin id on the last message delivered to us
	// seenID and seenTime are the id and commit time of the event at
	// seen; snapAt is the position of the last snapshot, sinceSnap the
	// events folded or committed since.
	seenID    events.ID
	seenTime  time.Time
	snapAt    events.Position
	sinceSnap int
	// guard: check before every append that no other writer appended
	// since the batch's state (set when the consumer is shared by pinning).
	guard bool
	// page is catchUp's, reused: catch-up reads back every event the
	// intake appended (to skip it), a few hundred per batch.
	page events.Page
}

// New returns an Intake; call Load before Run.
func New(cfg Config) *Intake {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.RecentIDs <= 0 {
		cfg.RecentIDs = 100_000
	}
	if cfg.ReferenceWait <= 0 {
		cfg.ReferenceWait = time.Minute
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 250 * time.Millisecond
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = 500 * time.Millisecond
	}
	if cfg.ProbeMaxInterval < cfg.ProbeInterval {
		cfg.ProbeMaxInterval = max(10*time.Second, cfg.ProbeInterval)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Subjects.Prefix == "" {
		cfg.Subjects = natsbus.DefaultSubjects
	}
	if cfg.SnapshotEvery <= 0 {
		cfg.SnapshotEvery = 10_000_000
	}
	if cfg.SnapshotAtStop <= 0 {
		cfg.SnapshotAtStop = min(10_000, cfg.SnapshotEvery)
	}
	return &Intake{cfg: cfg, parked: make(map[string]parking)}
}

// Ready reports whether the intake is consuming and its last write worked.
func (in *Intake) Ready() bool { return in.ready.Load() }

// Position is the global position the intake's state has reached.
func (in *Intake) Position() events.Position { return events.Position(in.pos.Load()) }

// LastError is the last write failure, "" when the last write worked.
func (in *Intake) LastError() string {
	if p := in.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

// ref is where a message's record (fact event or rejection) lives.
type ref struct {
	stream   string
	revision uint64
	position events.Position
	reason   subsidyv1.ReasonCode // unspecified for an accepted fact
	detail   string
}

// Load restores the intake's state from its snapshot (Config.Snapshots),
// or starts from a fresh world, and folds the log after it; it then
// records Config.RuleSet in the log unless the log last adopted it
// (rules.RuleSetAdopted). It writes a
// snapshot if it folded a million events or more (or SnapshotEvery, if
// less): folding them again after a crash would cost more than writing.
func (in *Intake) Load(ctx context.Context) error {
	if in.halted {
		return &RuleSetChangedError{Version: "of another instance", Ours: in.cfg.RuleSet.Version}
	}
	had := in.adopted
	in.adopted = false
	in.restore(ctx)
	if err := in.replay(ctx); err != nil {
		return err
	}
	if err := in.catchUp(ctx); err != nil {
		return err
	}
	if id := in.world.Adopted(); had && id != "" && id != in.cfg.RuleSet.Identity() {
		// A reload (after a failed batch) found another instance's rule
		// set adopted since this one recorded its own: stop, rather than
		// record it again and take turns.
		in.halted = true
		return &RuleSetChangedError{Version: in.world.RuleSet().Version, Position: in.seen, Ours: in.cfg.RuleSet.Version}
	}
	if !in.cfg.ReadOnly {
		// A store that cannot write (disk full, read-only) is no reason to
		// stop: ledgerd serves meanwhile, and Run records the rule set
		// once it can, before it decides anything.
		if err := in.adopt(ctx); err != nil && !errors.Is(err, events.ErrUnavailable) {
			return err
		}
	}
	if in.snapshotDue(min(in.cfg.SnapshotEvery, 1_000_000)) {
		in.saveSnapshot(ctx, "loaded")
	}
	return nil
}

// reset empties the intake's state: a fresh world at the start of the log.
func (in *Intake) reset() {
	in.world = rules.NewWorld(in.cfg.RuleSet)
	in.seen, in.seenID, in.seenTime = events.Start, events.ID{}, time.Time{}
	in.snapAt, in.sinceSnap = events.Start, 0
	in.pos.Store(0)
	in.mine = make(map[events.ID]struct{})
	in.recorded = newRecent(in.cfg.RecentIDs)
	in.rejected = make(map[events.ID]ref)
	in.rejecting = make(map[events.ID]struct{})
	in.unlogged, in.point = make(map[events.ID]struct{}), events.ID{}
}

// replay folds the log from in.seen to its end as Load found it, while
// another goroutine reads and decodes the pages ahead and works out what
// the world needs of each payload alone (rules.Prepare): the world can only
// be folded in order, on one goroutine, and that was as much work again.
func (in *Intake) replay(ctx context.Context) error {
	type page struct {
		evs  []codec.Decoded
		prep []rules.Prepared
		err  error // after evs
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan page, 4)
	from := in.seen
	go func() {
		defer close(pages)
		send := func(p page) bool {
			select {
			case pages <- p:
				return true
			case <-rctx.Done():
				return false
			}
		}
		for after := from; ; {
			recs, err := in.cfg.Store.ReadAll(rctx, after, 4096)
			if err != nil {
				send(page{err: fmt.Errorf("ingest: catch up after %d: %w", after, err)})
				return
			}
			if len(recs) == 0 {
				return
			}
			evs := make([]codec.Decoded, 0, len(recs))
			prep := make([]rules.Prepared, 0, len(recs))
			for _, rec := range recs {
				d, err := codec.Decode(rec)
				if err != nil {
					send(page{evs: evs, prep: prep, err: fmt.Errorf("ingest: event at %d: %w", rec.Position, err)})
					return
				}
				evs = append(evs, d)
				prep = append(prep, rules.Prepare(d.Payload))
			}
			if !send(page{evs: evs, prep: prep}) {
				return
			}
			after = recs[len(recs)-1].Position
		}
	}()
	for p := range pages {
		for i, d := range p.evs {
			in.passed(&d.RecordedEvent)
			if err := in.foldDecoded(d, p.prep[i]); err != nil {
				return err
			}
		}
		if p.err != nil {
			return p.err
		}
	}
	return ctx.Err()
}

// catchUp folds every event after in.seen that this intake did not append
// itself (another ledger instance's, or all of them after Load).
func (in *Intake) catchUp(ctx context.Context) error {
	for {
		// The events' bytes are valid until the next read: fold decodes
		// them into messages of their own.
		if err := events.ReadPage(ctx, in.cfg.Store, in.seen, 4096, &in.page); err != nil {
			return fmt.Errorf("ingest: catch up after %d: %w", in.seen, err)
		}
		page := in.page.Events
		if len(page) == 0 {
			in.advance(in.seen)
			return nil
		}
		for _, rec := range page {
			if _, ok := in.mine[rec.ID]; ok {
				delete(in.mine, rec.ID)
				in.passed(&rec)
				continue
			}
			// Passed only once folded: an event that fails to fold (another
			// instance's rule set) is not behind the state a snapshot
			// would record.
			if err := in.fold(rec); err != nil {
				return err
			}
			in.passed(&rec)
		}
	}
}

// passed records that the intake's state has reached rec.
func (in *Intake) passed(rec *events.RecordedEvent) {
	in.seen, in.seenID, in.seenTime = rec.Position, rec.ID, rec.Created
	delete(in.unlogged, rec.ID)
	if len(in.unlogged) == 0 {
		in.point = rec.ID
	}
}

// fold applies one stored event to the world and remembers message records.
func (in *Intake) fold(rec events.RecordedEvent) error {
	d, err := codec.Decode(rec)
	if err != nil {
		return fmt.Errorf("ingest: event at %d: %w", rec.Position, err)
	}
	return in.foldDecoded(d, rules.Prepare(d.Payload))
}

// foldDecoded is fold after decoding, with what rules.Prepare worked out
// of the payload.
func (in *Intake) foldDecoded(d codec.Decoded, prep rules.Prepared) error {
	rec := &d.RecordedEvent
	in.sinceSnap++
	if rej, ok := d.Payload.(*subsidyv1.FactRejected); ok {
		in.rejected[rec.ID] = ref{rec.Stream, rec.Revision, rec.Position, rej.GetReason(), rej.GetDetail()}
		return nil
	}
	if d.Env.GetSource() != Source && d.Env.GetMessageId() != "" {
		in.recorded.put(rec.ID, ref{stream: rec.Stream, revision: rec.Revision, position: rec.Position})
	}
	if a, ok := d.Payload.(*subsidyv1.RuleSetAdopted); ok && in.adopted && rules.AdoptionIdentity(a) != in.cfg.RuleSet.Identity() {
		in.halted = true
		return &RuleSetChangedError{Version: a.GetVersion(), Position: rec.Position, Ours: in.cfg.RuleSet.Version}
	}
	ev := rules.Event{ID: rec.ID, Payload: d.Payload, Derived: d.Env.GetSource() == Source, CausationID: d.Env.GetCausationId()}
	if err := in.world.ApplyPrepared(rec.Stream, rec.Revision, ev, prep); err != nil {
		return fmt.Errorf("ingest: fold %s at %d: %w", rec.Type, rec.Position, err)
	}
	return nil
}

// idString is id's text form, "" for the zero ID.
func idString(id events.ID) string {
	if id.IsZero() {
		return ""
	}
	return id.String()
}

// MessageID is the event id of the record of an inbound message: derived from
// the publisher's Nats-Msg-Id, or, without one, from the message's sequence in
// the inbound stream (stable across redeliveries).
func MessageID(key string) events.ID { return events.DeriveID("message", key) }

// Run consumes until ctx ends, then finishes the batch in hand, returns the
// rest to the queue and returns nil. It returns an error only if the
// consumer cannot be read at start.
//
// Order: facts are decided in the order JetStream delivers them. The intake
// keeps at most two batches of messages delivered ahead, hands back (in
// order) everything delivered but not yet decided when it stops, and after a
// crash (messages left unacknowledged) resets an unshared consumer to its
// ack floor (resetToAckFloor), or on a shared one waits one ack-wait before
// consuming, so that the redeliveries come before newer messages. Facts that
// refer to something not yet recorded are retried (see
// Config.ReferenceWait) before they are rejected.
//
// Store outages: when an append fails with events.ErrUnavailable (disk
// full, read-only, I/O errors), the intake hands every message it holds back
// to JetStream, stops consuming, reports the condition (Unavailable,
// LastError, the metrics), tests the store (see Config.ProbeInterval) and
// consumes again once the store can write.
func (in *Intake) Run(ctx context.Context) error {
	if in.cfg.ReadOnly {
		return errors.New("ingest: a read-only intake (Config.ReadOnly) decides nothing")
	}
	if in.world == nil {
		if err := in.Load(ctx); err != nil {
			return err
		}
	}
	info, err := in.cfg.Consumer.Info(ctx)
	if err != nil {
		return fmt.Errorf("ingest: consumer info: %w", err)
	}
	if info.NumAckPending > 0 && in.cfg.AckWait > 0 && !in.resetToAckFloor(ctx, info) {
		in.cfg.Logger.Info("messages of a previous run are unacknowledged; waiting for their redelivery so that order is kept",
			"pending", info.NumAckPending, "wait", in.cfg.AckWait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(in.cfg.AckWait):
		}
	}
	in.resumed = time.Now()
	in.setWritable(true)
	defer func() {
		in.ready.Store(false)
		in.setHealthy(false)
	}()
	defer func() {
		if in.snapshotDue(in.cfg.SnapshotAtStop) {
			in.saveSnapshot(context.WithoutCancel(ctx), "stopping")
		}
	}()
	for {
		if !in.adopted {
			// The rule set is recorded before anything is decided.
			if err := in.adopt(ctx); errors.Is(err, events.ErrUnavailable) {
				if !in.waitWritable(ctx) {
					return nil
				}
				continue
			} else if err != nil {
				return err
			}
		}
		stalled, err := in.consume(ctx, info.Config)
		if err != nil || !stalled {
			return err
		}
		if !in.waitWritable(ctx) {
			return nil
		}
	}
}

// resetToAckFloor, for a consumer this intake does not share (no priority
// group), asks JetStream to deliver again from the consumer's ack floor:
// the messages a previous run held unacknowledged (it crashed, or handed
// them back to wait) come at once and in stream order, instead of after
// AckWait. Messages above the floor that were acknowledged come again too;
// they are answered as recorded. A shared consumer is left alone: another
// instance may be deciding (see takeOver).
func (in *Intake) resetToAckFloor(ctx context.Context, info *jetstream.ConsumerInfo) bool {
	js := in.cfg.JetStream
	if js == nil || pinnedGroup(info.Config) != "" {
		return false
	}
	if _, err := js.ResetConsumer(ctx, info.Stream, info.Name); err != nil {
		in.cfg.Logger.Warn("cannot reset the consumer to its ack floor; waiting for redelivery instead", "err", err)
		return false
	}
	in.cfg.Logger.Info("messages of a previous run are unacknowledged; delivering again from the ack floor, in order",
		"pending", info.NumAckPending, "ack_floor", info.AckFloor.Stream)
	return true
}

// consume consumes until ctx ends (stalled false) or the store cannot write
// (stalled true). Either way it first hands back to JetStream every message
// it holds but has not recorded. It returns an error only if the consumer
// cannot be read.
func (in *Intake) consume(ctx context.Context, ccfg jetstream.ConsumerConfig) (stalled bool, err error) {
	in.ready.Store(true)
	in.setHealthy(true)
	var (
		inflight *batch // appending while the next batch is decided
		backoff  time.Duration
		restart  bool   // another writer got there first: hand back and pull again
		pinned   string // the pin id this intake decides under
		fatal    error  // stop deciding (RuleSetChangedError)
	)
	// settle finishes the batch in flight; false when it failed (the world
	// was reloaded, so a batch decided meanwhile is void).
	settle := func() bool {
		if inflight == nil {
			return true
		}
		b := inflight
		err := in.finish(context.WithoutCancel(ctx), b)
		inflight = nil
		var changed *RuleSetChangedError
		if errors.As(err, &changed) {
			fatal = err
			return false
		}
		if errors.Is(err, events.ErrUnavailable) {
			// The store cannot write: stop consuming until it can.
			in.probeBytes = batchBytes(b)
			in.markUnavailable(err)
			stalled = true
			return false
		}
		if errors.Is(err, errConflict) {
			// Not a failure: the batch's messages are handed back and
			// decided again on the state the other writer left.
			in.cfg.Logger.Info("another writer appended since the batch was decided; deciding it again")
			restart = true
			return false
		}
		if err != nil {
			in.cfg.Logger.Error("intake batch failed; messages returned to the queue", "err", err)
			msg := err.Error()
			in.lastErr.Store(&msg)
			in.ready.Store(false)
			in.setHealthy(false)
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			return false
		}
		if backoff > 0 {
			in.cfg.Logger.Info("intake writing again")
		}
		backoff = 0
		in.lastErr.Store(nil)
		in.setWritable(true)
		in.ready.Store(true)
		in.setHealthy(true)
		return true
	}
	answered := make(chan struct{})
	in.answers = make(chan []func(), 4)
	go func() {
		defer close(answered)
		for fs := range in.answers {
			for _, f := range fs {
				f()
			}
		}
	}()
	defer func() {
		close(in.answers)
		<-answered
		in.answers = nil
	}()
	defer settle()
	wctx := context.WithoutCancel(ctx) // a batch in hand is finished
	inbox := make(chan jetstream.Msg, 2*in.cfg.BatchSize)
	opts := []jetstream.PullConsumeOpt{jetstream.PullMaxMessages(2 * in.cfg.BatchSize)}
	// A pull request lives pullExpiry; the server sends a heartbeat every
	// pullHeartbeat while one waits. When the client counts on a request
	// the server no longer holds, nothing arrives, and only the missing
	// heartbeats (two) make the client pull again: with nats.go's defaults
	// (30 s, 15 s) a burst of atomic batches stalled the intake for 30 s
	// now and then, with messages pending and no request at the server.
	expiry := pullExpiry
	group := pinnedGroup(ccfg)
	if group != "" {
		// Several instances share the consumer; JetStream delivers to the
		// pinned one only, for as long as it keeps pulling within
		// PinnedTTL: pull often enough to keep the pin while deciding.
		expiry = max(time.Second, min(expiry, ccfg.PinnedTTL/3))
		opts = append(opts, jetstream.PullPriorityGroup(group))
		defer in.release(context.WithoutCancel(ctx), group)
		in.guard = true
	}
	opts = append(opts, jetstream.PullExpiry(expiry), jetstream.PullHeartbeat(min(pullHeartbeat, expiry/2)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				if in.cfg.Metrics != nil {
					in.cfg.Metrics.PullsLost.Inc()
				}
				in.cfg.Logger.Warn("the inbound consumer's pull request went unanswered; pulling again", "err", err)
				return
			}
			in.cfg.Logger.Debug("inbound consumer", "err", err)
		}))
	handler := func(m jetstream.Msg) {
		if id := m.Headers().Get(headerPinID); id != "" {
			if p := in.pin.Load(); p == nil || *p != id {
				in.pin.Store(&id)
			}
		}
		inbox <- m
	}
	cc, err := in.cfg.Consumer.Consume(handler, opts...)
	if err != nil {
		return false, fmt.Errorf("ingest: consume: %w", err)
	}
	// stopConsuming hands back, in order, everything delivered but not
	// decided, so that JetStream redelivers it before newer messages.
	stopConsuming := func() {
		cc.Drain()
		for {
			select {
			case m := <-inbox:
				_ = m.Nak()
			case <-cc.Closed():
				for {
					select {
					case m := <-inbox:
						_ = m.Nak()
					default:
						return
					}
				}
			}
		}
	}
	// Group commit: while one batch is appended, the next grows, each
	// message decided as it arrives; it is appended as soon as the store is
	// free, or waits there once it is full.
	var cur *batch
	for {
		if cur != nil && inflight == nil {
			in.seal(cur)
			inflight, cur = cur, nil
			go in.commit(wctx, inflight)
		}
		// A snapshot is due: take no more messages until the batches in
		// hand are appended, then write it (the world then holds the log
		// and nothing provisional). Deliveries wait meanwhile.
		snapshot := in.snapshotDue(in.cfg.SnapshotEvery)
		if snapshot && cur == nil && inflight == nil {
			in.saveSnapshot(wctx, "periodic")
			continue
		}
		var doneC <-chan struct{}
		if inflight != nil {
			doneC = inflight.done
		}
		var recv <-chan jetstream.Msg
		if (cur == nil || len(cur.msgs) < in.cfg.BatchSize) && !snapshot {
			recv = inbox
		}
		select {
		case <-ctx.Done():
			ok := settle()
			if cur != nil {
				if ok {
					in.seal(cur)
					inflight = cur
					in.commit(wctx, cur)
					settle()
				} else {
					nakAll(cur.msgs)
				}
			}
			stopConsuming()
			return false, nil
		case <-doneC:
			if !settle() && cur != nil {
				nakAll(cur.msgs) // decided on a world that was reloaded
				cur = nil
			}
			if fatal != nil {
				stopConsuming()
				msg := fatal.Error()
				in.lastErr.Store(&msg)
				in.ready.Store(false)
				in.setHealthy(false)
				return false, fatal
			}
			if stalled {
				stopConsuming()
				in.ready.Store(false)
				in.setHealthy(false)
				return true, nil
			}
			if restart {
				// Hand back everything delivered but not decided, after
				// the batch just handed back, so that JetStream
				// redelivers them in the inbound stream's order; then
				// pull again.
				restart = false
				stopConsuming()
				if in.cfg.Metrics != nil {
					in.cfg.Metrics.Conflicts.Inc()
				}
				if cc, err = in.cfg.Consumer.Consume(handler, opts...); err != nil {
					in.cfg.Logger.Error("intake cannot consume again after a conflict", "err", err)
					return false, fmt.Errorf("ingest: consume: %w", err)
				}
			}
		case m := <-recv:
			if id := m.Headers().Get(headerPinID); in.guard && id != "" && id != pinned {
				// Taking over: see takeOver. The batch begins (catches
				// up with the log) after the gathering.
				pinned = id
				room := in.cfg.BatchSize
				if cur != nil {
					room -= len(cur.msgs)
				}
				msgs := in.takeOver(ctx, inbox, m, room)
				if cur == nil {
					cur = in.begin(wctx)
				}
				for _, m := range msgs {
					in.add(wctx, cur, m)
				}
				continue
			}
			if cur == nil {
				cur = in.begin(wctx)
			}
			in.add(wctx, cur, m)
		drain: // what has arrived already joins this batch
			for len(cur.msgs) < in.cfg.BatchSize {
				select {
				case m := <-inbox:
					in.add(wctx, cur, m)
				default:
					break drain
				}
			}
		}
	}
}

// pullExpiry and pullHeartbeat are the intake's pull requests' life and
// idle heartbeat (see consume).
const (
	pullExpiry    = 5 * time.Second
	pullHeartbeat = time.Second
)

// takeOver gathers what JetStream delivers to an intake that has just been
// pinned (up to max messages, until nothing more arrives for a moment) and
// returns it in the inbound stream's order. Those are mostly redeliveries of
// what the previous instance held: unacknowledged when it died, or handed
// back to wait for something not yet recorded. JetStream redelivers them
// when each falls due, not in stream order, and the previous instance's
// knowledge of which person's facts wait behind which went with it; decided
// in stream order, a person's facts keep their order (a notice's closing
// before the payment request that needs it) and the waiting is set up
// again.
func (in *Intake) takeOver(ctx context.Context, inbox <-chan jetstream.Msg, first jetstream.Msg, max int) []jetstream.Msg {
	const quiet = 100 * time.Millisecond
	msgs := []jetstream.Msg{first}
	t := time.NewTimer(quiet)
	defer t.Stop()
gather:
	for len(msgs) < max {
		select {
		case m := <-inbox:
			msgs = append(msgs, m)
			t.Reset(quiet)
		case <-t.C:
			break gather
		case <-ctx.Done():
			break gather
		}
	}
	seq := func(m jetstream.Msg) uint64 {
		if md, err := m.Metadata(); err == nil {
			return md.Sequence.Stream
		}
		return 0
	}
	slices.SortStableFunc(msgs, func(a, b jetstream.Msg) int { return cmp.Compare(seq(a), seq(b)) })
	in.cfg.Logger.Info("pinned: deciding from here", "delivered", len(msgs))
	return msgs
}

// headerPinID carries the consumer's pin id on messages JetStream delivers
// to the pinned client of a priority group.
const headerPinID = "Nats-Pin-Id"

// pinnedGroup returns the consumer's priority group when it uses the
// pinned-client policy, else "".
func pinnedGroup(c jetstream.ConsumerConfig) string {
	if c.PriorityPolicy != jetstream.PriorityPolicyPinned || len(c.PriorityGroups) == 0 {
		return ""
	}
	return c.PriorityGroups[0]
}

// release gives up the pin after a graceful stop, if this intake still holds
// it, so that a standby instance takes over without waiting for PinnedTTL.
// Everything delivered to this intake has been acknowledged or handed back
// by then.
func (in *Intake) release(ctx context.Context, group string) {
	p := in.pin.Load()
	if p == nil || in.cfg.JetStream == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := in.cfg.Consumer.Info(ctx)
	if err != nil {
		return
	}
	for _, g := range info.PriorityGroups {
		if g.Group != group || g.PinnedClientID != *p {
			continue
		}
		st, err := in.cfg.JetStream.Stream(ctx, info.Stream)
		if err == nil {
			err = st.UnpinConsumer(ctx, info.Name, group)
		}
		if err != nil {
			in.cfg.Logger.Warn("could not give up the consumer's pin; a standby instance takes over after the pinned TTL", "err", err)
			return
		}
		in.cfg.Logger.Info("gave up the consumer's pin")
	}
}

func (in *Intake) setHealthy(ok bool) {
	if in.cfg.Metrics == nil {
		return
	}
	if ok {
		in.cfg.Metrics.Healthy.Set(1)
	} else {
		in.cfg.Metrics.Healthy.Set(0)
	}
}

// item is one inbound message on its way through a batch.
type item struct {
	msg      jetstream.Msg
	key      string
	seq      uint64    // sequence in the inbound stream
	received time.Time // when JetStream stored it (receivedAt)
	id       events.ID
	subject  string
	source   string
	fact     string
	keyHasID bool  // the publisher's key held a resident ID number (masked in key)
	rekeyed  bool  // its key was recorded for another message: key has its digest appended (rekey)
	fatal    error // folding its decision failed: the batch fails (add)
	dupOf    *item // same message key earlier in this batch
	known    *ref  // already recorded before this batch
	rej      *subsidyv1.FactRejected
	op       *op
	retry    time.Duration // > 0: hand back, decide again after this delay
	rev      uint64        // revision of the message's record in op.stream
	outcome  *ref
}

// op is one append: every record a batch adds to one stream.
type op struct {
	stream   string
	expected events.ExpectedRevision
	evs      []events.EventData
	items    []*item
	res      events.AppendResult
	err      error
}

// batch is one intake batch on its way: decided (prepare), appended
// (commit), then acknowledged (finish).
type batch struct {
	msgs  []jetstream.Msg
	items []*item
	byKey map[string]*item
	ops   map[string]*op // by stream; only when the store is not ordered
	order []*op
	// rejections are appended after order, and only if no other writer
	// appended anything since the batch was decided (see commit).
	rejections []*op
	// ordered: the store appends a batch's ops in one write, in order
	// (events.Batcher), so ops follow the decisions' order and the log
	// refolds into the state the decisions were made on. Otherwise (ops
	// appended concurrently) there is one op per stream.
	ordered bool
	// seenAt is the log position the batch was decided at; own holds the
	// ids this intake appended (or is appending) after it.
	seenAt events.Position
	// checked: the log is known to hold no other writer's events up to
	// here (foreignSince).
	checked events.Position
	own     map[events.ID]struct{}
	err     error // a failure while preparing: nothing was appended
	done    chan struct{}
}

// handle decides, records and acknowledges one batch. An error means
// nothing of the batch may be assumed recorded beyond what was
// acknowledged; the world was reloaded.
func (in *Intake) handle(ctx context.Context, msgs []jetstream.Msg) error {
	b := in.prepare(ctx, msgs)
	in.commit(ctx, b)
	return in.finish(ctx, b)
}

// prepare decides a whole batch (see begin, add and seal).
func (in *Intake) prepare(ctx context.Context, msgs []jetstream.Msg) *batch {
	b := in.begin(ctx)
	for _, msg := range msgs {
		in.add(ctx, b, msg)
	}
	in.seal(b)
	return b
}

// begin starts a batch: it folds what other writers appended meanwhile.
func (in *Intake) begin(ctx context.Context) *batch {
	_, ordered := in.cfg.Store.(events.Batcher)
	b := &batch{done: make(chan struct{}), byKey: make(map[string]*item), own: make(map[events.ID]struct{}), ordered: ordered}
	if !ordered {
		b.ops = make(map[string]*op) // one op per stream (opFor)
	}
	switch {
	case !in.adopted && !in.cfg.ReadOnly:
		// The rule set is not recorded (a reload failed): decide nothing;
		// the batch is handed back and the next reload tries again.
		b.err = errRuleSetNotRecorded
	default:
		if err := in.catchUp(ctx); err != nil {
			b.err = err
		}
	}
	b.seenAt = in.seen
	// The batch in flight (if any) may commit after seenAt.
	for id := range in.sealed {
		b.own[id] = struct{}{}
	}
	return b
}

// add decides one message into the batch, folding its decision into the
// world provisionally so that later messages (and the next batch, while
// this one is appended) are decided on it.
func (in *Intake) add(ctx context.Context, b *batch, msg jetstream.Msg) {
	b.msgs = append(b.msgs, msg)
	it := in.newItem(msg)
	b.items = append(b.items, it)
	if m := in.cfg.Metrics; m != nil {
		m.Received.WithLabelValues(in.labels(it)).Inc()
	}
	if b.err != nil {
		return
	}
	if in.answered(ctx, b, it) {
		return
	}
	if it.rekeyed && in.answered(ctx, b, it) { // the new key's own repeat
		return
	}
	in.decide(it, b.opFor)
	if it.fatal != nil {
		b.err = it.fatal
	}
}

// answered answers an item whose key was recorded before (or is earlier in the
// batch) with the first message's outcome: true when it is answered (or
// waits, or the batch failed). A message under a key the first message
// was recorded under, but with other content (a subject or payload of
// another fact), is not a repeat: its key gets the content's digest
// appended (rekey) and answered returns false, so that it is decided as the
// fact it is.
func (in *Intake) answered(ctx context.Context, b *batch, it *item) bool {
	if first := b.byKey[it.key]; first != nil {
		if !it.rekeyed && (first.subject != it.subject || !bytes.Equal(first.msg.Data(), it.msg.Data())) {
			in.rekey(it)
			return false
		}
		it.dupOf = first
		return true
	}
	b.byKey[it.key] = it
	known := func(r ref) bool {
		if !it.rekeyed {
			same, err := in.sameMessage(ctx, it, r)
			if err != nil {
				b.err = err
				return true
			}
			if !same {
				delete(b.byKey, it.key)
				in.rekey(it)
				return false
			}
		}
		it.known = &r
		return true
	}
	if r, ok := in.recorded.get(it.id); ok {
		return known(r)
	}
	if r, ok := in.rejected[it.id]; ok {
		return known(r)
	}
	if _, ok := in.rejecting[it.id]; ok {
		// Its rejection is in the batch still being appended (a
		// redelivery, e.g. after a pause longer than the ack wait):
		// answer it once that batch is done, as an accepted fact's.
		it.retry = in.cfg.RetryDelay
		return true
	}
	if stream, rev, ok := in.world.Applied(it.id); ok {
		// Recorded before the recent-ids cache remembers (or a publisher
		// sent it again after JetStream's duplicate window): where it is
		// stored answers it.
		r, found, err := in.locate(ctx, stream, rev, it.id)
		switch {
		case err != nil:
			b.err = err
		case found:
			return known(r)
		default:
			// Decided in the batch still being appended: answer it once
			// that batch is done.
			it.retry = in.cfg.RetryDelay
		}
		return true
	}
	return false
}

// rekey gives an item whose key was recorded for another message a key of
// its own: the publisher's, "~" and the first 16 hex digits of the SHA-256
// of its subject and payload (the same for every repeat of it), the
// payload as a rejection keeps it: a digest of the plain one would let
// whoever reads the key try the ID or account numbers masked in the kept
// payload until it matched. (Two messages under one key that differ only
// in digits so masked get one key.)
func (in *Intake) rekey(it *item) {
	h := sha256.New()
	h.Write([]byte(it.subject))
	h.Write([]byte{0})
	h.Write(person.RedactAccountNumbers(keptPayload(it.msg.Data())))
	it.key = fmt.Sprintf("%s~%x", it.key, h.Sum(nil)[:8])
	it.id = MessageID(it.key)
	it.rekeyed = true
	if m := in.cfg.Metrics; m != nil {
		m.Rekeyed.Inc()
	}
}

// sameMessage reports whether the message recorded at r (an accepted fact
// or a rejection) is it's: the same subject and payload (decoded, for a
// fact, so that JSON spelt differently is the same fact). A record it
// cannot read back as one or the other counts as the same.
func (in *Intake) sameMessage(ctx context.Context, it *item, r ref) (bool, error) {
	recs, err := in.cfg.Store.ReadStream(ctx, r.stream, events.Forwards, r.revision, 1)
	if errors.Is(err, events.ErrStreamNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if len(recs) == 0 || recs[0].ID != it.id {
		return true, nil
	}
	d, err := codec.Decode(recs[0])
	if err != nil {
		return true, nil
	}
	if rj, ok := d.Payload.(*subsidyv1.FactRejected); ok {
		return rj.GetSubject() == it.subject && bytes.Equal(rj.GetPayload(), keptFor(it.msg.Data(), rj.GetReason())), nil
	}
	kind, ok := factKind(in.cfg.Subjects, it.subject)
	if !ok {
		return false, nil
	}
	payload, code, _ := decodeFact(kind, it.msg.Headers().Get(natsbus.HeaderContentType), it.msg.Data())
	return code == subsidyv1.ReasonCode_REASON_CODE_UNSPECIFIED && proto.Equal(payload, d.Payload), nil
}

// locate reads where the event id is stored, at revision rev of stream
// (as the world folded it); found is false if it is not stored yet.
func (in *Intake) locate(ctx context.Context, stream string, rev uint64, id events.ID) (r ref, found bool, err error) {
	recs, err := in.cfg.Store.ReadStream(ctx, stream, events.Forwards, rev, 1)
	switch {
	case errors.Is(err, events.ErrStreamNotFound):
		return ref{}, false, nil
	case err != nil:
		return ref{}, false, fmt.Errorf("ingest: locate %s: %w", id, err)
	case len(recs) == 0 || recs[0].ID != id:
		return ref{}, false, nil
	}
	return ref{stream: stream, revision: rev, position: recs[0].Position}, true, nil
}

func (b *batch) opFor(stream string, expected events.ExpectedRevision) *op {
	if b.ordered {
		// A new op whenever the stream changes, so the log holds the
		// batch's events in the order they were decided (a stream's later
		// op expects the revision its earlier op leaves).
		if n := len(b.order); n > 0 && b.order[n-1].stream == stream {
			return b.order[n-1]
		}
		o := &op{stream: stream, expected: expected}
		b.order = append(b.order, o)
		return o
	}
	o := b.ops[stream]
	if o == nil {
		o = &op{stream: stream, expected: expected}
		b.ops[stream] = o
		b.order = append(b.order, o)
	}
	return o
}

// seal adds the batch's rejections and makes it ready to commit.
func (in *Intake) seal(b *batch) {
	if m := in.cfg.Metrics; m != nil {
		m.BatchSize.Observe(float64(len(b.msgs)))
	}
	if b.err != nil {
		return
	}
	// Rejections go to their own streams, in the same batch of appends.
	for _, it := range b.items {
		if it.rej == nil || it.dupOf != nil || it.known != nil {
			continue
		}
		stream := natsbus.RejectionStream(it.source)
		data, err := codec.Encode(it.id, stream, in.envelope(it, Source, events.ID{}), it.rej)
		if err != nil {
			b.err = err
			return
		}
		var o *op
		for _, r := range b.rejections {
			if r.stream == stream {
				o = r
			}
		}
		if o == nil {
			o = &op{stream: stream, expected: events.Any}
			b.rejections = append(b.rejections, o)
		}
		it.op, it.rev = o, uint64(len(o.evs))
		o.evs = append(o.evs, data)
		o.items = append(o.items, it)
		in.rejecting[it.id] = struct{}{}
	}
	// Catch-up must not fold these events a second time.
	in.sealed = make(map[events.ID]struct{})
	for _, o := range append(append([]*op{}, b.order...), b.rejections...) {
		for _, e := range o.evs {
			in.mine[e.ID] = struct{}{}
			in.sealed[e.ID] = struct{}{}
			b.own[e.ID] = struct{}{}
		}
	}
}

// commit appends a prepared batch: one append per stream, all in one
// durable write where the store can (events.AppendMany).
func (in *Intake) commit(ctx context.Context, b *batch) {
	defer close(b.done)
	if b.err != nil {
		return
	}
	start := time.Now()
	defer func() {
		if in.cfg.Metrics != nil {
			in.cfg.Metrics.AppendSeconds.Observe(time.Since(start).Seconds())
		}
	}()
	// The guard: a decision may read any stream's state (a unit's budget,
	// an institution's pass-rate window, a payee's receivables), but the
	// store checks only the expected revision of the stream it appends to.
	// So the batch is appended only if no other writer appended anything
	// since the state it was decided on; else it is decided again. With
	// the pinned consumer this happens only when two instances overlap (a
	// handover, a paused instance waking up). What it cannot see is an
	// append that lands between this read and the batch's own appends. A
	// consumer that is not shared (one instance) needs no guard.
	if in.guard {
		foreign, err := in.foreignSince(ctx, b)
		if err == nil && foreign {
			err = errConflict
		}
		if err != nil {
			for _, o := range append(append([]*op{}, b.order...), b.rejections...) {
				o.err = err
			}
			return
		}
	}
	if events.IsExclusive(in.cfg.Store) {
		// No other process can write, so the rejections need no guard
		// against another writer and share the batch's one durable write,
		// which stores all of it or, when it fails as a whole (disk full,
		// read-only, I/O), nothing.
		in.appendOps(ctx, append(append([]*op{}, b.order...), b.rejections...))
		return
	}
	in.appendOps(ctx, b.order)
	if len(b.rejections) == 0 {
		return
	}
	failed := false
	for _, o := range b.order {
		failed = failed || o.err != nil
	}
	// A rejection is not guarded by an expected revision. Record it only
	// if every append of its batch worked (it may have been decided on one
	// of them) and no other writer appended since the batch was decided;
	// else decide those messages again.
	foreign, err := in.foreignSince(ctx, b)
	var record []*op
	for _, o := range b.rejections {
		switch {
		case failed:
			o.err = errSkipped
		case err != nil:
			o.err = err
		case foreign:
			o.err = errStale
		default:
			record = append(record, o)
		}
	}
	in.appendOps(ctx, record)
}

// appendOps appends ops in one durable write where the store can
// (events.AppendMany) and sets each op's res and err.
func (in *Intake) appendOps(ctx context.Context, ops []*op) {
	if len(ops) == 0 {
		return
	}
	aops := make([]*events.AppendOp, len(ops))
	for i, o := range ops {
		aops[i] = &events.AppendOp{Stream: o.stream, Expected: o.expected, Events: o.evs}
	}
	events.AppendMany(ctx, in.cfg.Store, aops)
	for i, o := range ops {
		o.res, o.err = aops[i].Result, aops[i].Err
	}
}

// errStale marks rejections decided on a state another writer has since
// changed, after the batch's decisions were appended; their messages are
// decided again.
var errStale = errors.New("ingest: another writer appended meanwhile")

// errSkipped marks rejections not appended because another append of their
// batch failed; their messages are handed back.
var errSkipped = errors.New("ingest: not appended: another append of the batch failed")

// errConflict means another writer appended after the state a batch was
// decided on (found by the guard before appending, or by a stream's
// expected revision): the batch's messages that were not recorded are
// handed back in order and decided again on a reloaded state.
var errConflict = errors.New("ingest: another writer appended since the batch was decided")

// foreignSince reports whether the log has events after b.seenAt that this
// intake did not append, other than audit checkpoints (which every ledgerd
// appends on its own and no decision reads).
func (in *Intake) foreignSince(ctx context.Context, b *batch) (bool, error) {
	// A second check of the same batch (the guard, then its rejections)
	// reads on from where the first found only this intake's events.
	after := max(b.seenAt, b.checked)
	defer func() { b.checked = max(b.checked, after) }()
	for {
		page, err := in.cfg.Store.ReadAll(ctx, after, 4096)
		if err != nil {
			return false, err
		}
		if len(page) == 0 {
			return false, nil
		}
		for _, rec := range page {
			if _, ok := b.own[rec.ID]; !ok && rec.Stream != merkle.CheckpointStream {
				return true, nil
			}
			after = rec.Position
		}
	}
}

// finish acknowledges what a committed batch made durable and hands back
// the rest. An error means the world was reloaded from the store.
func (in *Intake) finish(ctx context.Context, b *batch) error {
	<-b.done
	for _, o := range b.rejections { // recorded below, or handed back
		for _, it := range o.items {
			delete(in.rejecting, it.id)
		}
	}
	if b.err != nil {
		nakAll(b.msgs)
		var changed *RuleSetChangedError
		if errors.As(b.err, &changed) {
			return b.err // reloading would record this instance's rule set again
		}
		return in.reloadAfter(ctx, b.err)
	}
	m := in.cfg.Metrics
	var failed error
	conflict := false
	for _, o := range append(append([]*op{}, b.order...), b.rejections...) {
		if errors.Is(o.err, errStale) {
			for _, it := range o.items {
				it.retry = in.cfg.RetryDelay
			}
			continue
		}
		if errors.Is(o.err, errSkipped) {
			continue // handed back below
		}
		if errors.Is(o.err, errConflict) || errors.Is(o.err, events.ErrWrongExpectedRevision) {
			conflict = true // its items are handed back at once, in order
			continue
		}
		if o.err != nil {
			if errors.Is(o.err, events.ErrUnavailable) {
				if m != nil {
					m.AppendFailures.WithLabelValues(causeOf(o.err)).Inc()
				}
				if !errors.Is(failed, events.ErrUnavailable) {
					failed = nil // the store's condition matters most
				}
			}
			if failed == nil {
				failed = fmt.Errorf("append to %q: %w", o.stream, o.err)
			}
			continue
		}
		in.advance(o.res.Position)
		in.sinceSnap += len(o.evs)
		first := o.res.NextExpectedRevision + 1 - uint64(len(o.evs))
		for _, it := range o.items {
			r := ref{stream: o.stream, revision: first + it.rev, position: positionOf(o.res, len(o.evs), it.rev)}
			it.outcome = &r
			if it.rej != nil {
				r.reason, r.detail = it.rej.GetReason(), it.rej.GetDetail()
				in.rejected[it.id] = r
				continue
			}
			in.recorded.put(it.id, r)
		}
	}
	// Acknowledge what is durable, return the rest: off the commit path
	// while Run runs and the batch went through, else here and now.
	answers := make([]func(), 0, len(b.items))
	for _, it := range b.items {
		src := it
		if it.dupOf != nil {
			src = it.dupOf
		}
		switch {
		case src.known != nil:
			answers = append(answers, func() { in.answer(it, *src.known, true) })
		case src.outcome != nil:
			answers = append(answers, func() { in.answer(it, *src.outcome, it.dupOf != nil) })
		case src.retry > 0:
			if m != nil {
				m.Retried.Inc()
			}
			answers = append(answers, func() { _ = it.msg.NakWithDelay(src.retry) })
		default:
			answers = append(answers, func() { _ = it.msg.Nak() })
		}
	}
	if failed == nil && !conflict && in.answers != nil {
		in.answers <- answers
		return nil
	}
	for _, f := range answers {
		f()
	}
	if failed != nil {
		return in.reloadAfter(ctx, failed)
	}
	if conflict {
		// The batch's provisional decisions are void: fold the store
		// afresh (what the other writer appended included).
		return in.reloadAfter(ctx, errConflict)
	}
	return nil
}

// positionOf is the position of event i of an append of n events: exact
// where the store reports consecutive positions (the embedded store), else
// the append's last, the earliest position at which a reader of the log
// is sure to have seen the event (EventStoreDB reports no other).
func positionOf(res events.AppendResult, n int, i uint64) events.Position {
	if res.FirstPosition != 0 && res.Position-res.FirstPosition == events.Position(n-1) {
		return res.FirstPosition + events.Position(i)
	}
	return res.Position
}

// advance records that the log is known up to p.
func (in *Intake) advance(p events.Position) {
	if uint64(p) <= in.pos.Load() {
		return
	}
	in.pos.Store(uint64(p))
	if in.cfg.Metrics != nil {
		in.cfg.Metrics.Position.Set(float64(p))
	}
}

// reloadAfter rebuilds the world from the store after a failed batch (its
// provisional decisions are void) and returns cause.
func (in *Intake) reloadAfter(ctx context.Context, cause error) error {
	if err := in.Load(ctx); err != nil {
		var changed *RuleSetChangedError
		if errors.As(err, &changed) {
			return err
		}
		return fmt.Errorf("%w; reloading state: %v", cause, err)
	}
	return cause
}

func nakAll(msgs []jetstream.Msg) {
	for _, m := range msgs {
		_ = m.Nak()
	}
}

func (in *Intake) newItem(msg jetstream.Msg) *item {
	// Resident ID numbers in the subject or the key are masked at once:
	// both are recorded and published (a key holding one is rejected, see
	// decide).
	it := &item{msg: msg, subject: person.RedactIDString(msg.Subject())}
	if md, err := msg.Metadata(); err == nil {
		it.seq, it.received = md.Sequence.Stream, md.Timestamp
	}
	// A key is an identifier a publisher chose: only a valid ID number in
	// it rejects the message (a key built from a region code, a date and a
	// sequence can look like a mistyped one), as in identifier fields.
	raw := msg.Headers().Get(natsbus.HeaderMsgID)
	it.key, it.keyHasID = raw, person.ContainsID(raw)
	if it.keyHasID {
		it.key = person.RedactIDString(raw)
	}
	if it.key == "" {
		it.key = "seq-" + strconv.FormatUint(it.seq, 10)
	}
	it.id = MessageID(it.key)
	rest, ok := strings.CutPrefix(it.subject, in.cfg.Subjects.InboundPrefix()+".")
	it.source, it.fact = "unknown", "unknown"
	if ok {
		if src, fact, ok := strings.Cut(rest, "."); ok && src != "" && !strings.Contains(fact, ".") && fact != "" {
			it.source, it.fact = src, fact
		}
	}
	return it
}

// labels are the metric labels of it's source and fact: the subject's
// tokens when they name a fact, else "unknown" (a publisher choosing
// subject tokens must not make the metric's series unbounded).
func (in *Intake) labels(it *item) (string, string) {
	if k, ok := factKind(in.cfg.Subjects, it.subject); ok {
		return k.Source, k.Token
	}
	if slices.Contains(natsbus.Sources, it.source) {
		return it.source, "unknown"
	}
	return "unknown", "unknown"
}

// receivedAt is when JetStream stored the item's message: stable across
// redeliveries, so the records written for it are byte-identical.
func receivedAt(it *item) time.Time { return it.received }

func (in *Intake) envelope(it *item, source string, causation events.ID) *subsidyv1.Envelope {
	rec := timestamppb.New(receivedAt(it).UTC())
	env := &subsidyv1.Envelope{
		RecordedAt:    rec,
		OccurredAt:    rec,
		Source:        source,
		CorrelationId: it.key,
		MessageId:     it.key,
	}
	if v := it.msg.Headers().Get(natsbus.HeaderOccurredAt); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			env.OccurredAt = timestamppb.New(t.UTC())
		}
	}
	if !causation.IsZero() {
		env.CausationId = causation.String()
	}
	return env
}

// decide turns an item into either a rejection or an append of its fact and
// derived events (applied to the world provisionally).
func (in *Intake) decide(it *item, opFor func(string, events.ExpectedRevision) *op) {
	reject := func(code subsidyv1.ReasonCode, detail string) {
		it.rej = in.rejection(it, code, detail)
		if in.cfg.Metrics != nil {
			in.cfg.Metrics.Rejected.WithLabelValues(code.String()).Inc()
		}
	}
	if it.keyHasID {
		reject(subsidyv1.ReasonCode_REASON_CODE_INVALID_PERSON_ID, natsbus.HeaderMsgID+" contains a resident ID number; use a key that names no person")
		return
	}
	kind, ok := factKind(in.cfg.Subjects, it.subject)
	if !ok {
		reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_SUBJECT, fmt.Sprintf("no fact is published on %q", it.subject))
		return
	}
	if v := it.msg.Headers().Get(natsbus.HeaderOccurredAt); v != "" {
		if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
			reject(subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION, fmt.Sprintf("header %s: %v", natsbus.HeaderOccurredAt, err))
			return
		}
	}
	payload, code, detail := decodeFact(kind, it.msg.Headers().Get(natsbus.HeaderContentType), it.msg.Data())
	if code != subsidyv1.ReasonCode_REASON_CODE_UNSPECIFIED {
		reject(code, detail)
		return
	}
	lane := laneOf(payload)
	if p, ok := in.parked[lane]; ok && lane != "" {
		switch {
		case time.Now().After(p.until):
			delete(in.parked, lane) // the waiting fact went elsewhere
		case p.holds(payload, it.seq):
			it.retry = in.cfg.RetryDelay // keep this person's facts in order
			return
		}
	}
	env := in.envelope(it, it.source, events.ID{})
	fact := rules.Fact{EventID: it.id, MessageID: it.key, Source: it.source, OccurredAt: env.OccurredAt.AsTime(), Payload: payload}
	dec, rej, err := safeDecide(in.world, fact)
	if err != nil {
		reject(subsidyv1.ReasonCode_REASON_CODE_DECISION_FAILED, err.Error())
		return
	}
	if rej != nil {
		if awaitable[rej.Reason] && time.Since(later(receivedAt(it), in.resumed)) < in.cfg.ReferenceWait {
			in.park(it, lane, payload, rej.Reason)
			return
		}
		in.unpark(it, lane, payload)
		reject(rej.Reason, rej.Detail)
		// What the rules decided on, for a replay (events/redecide).
		it.rej.Decided = &subsidyv1.RejectionDecided{
			AfterEventId: idString(in.point),
			FactEventId:  it.id.String(),
			Source:       kind.Source,
			FactType:     string(kind.Name),
			OccurredAt:   env.OccurredAt,
		}
		return
	}
	in.unpark(it, lane, payload)
	if len(dec.Events) == 0 || dec.Events[0].ID != it.id {
		reject(subsidyv1.ReasonCode_REASON_CODE_DECISION_FAILED, "the rules returned no fact event")
		return
	}
	rev, exists := in.world.StreamRevision(dec.Stream)
	expected := events.NoStream
	if exists {
		expected = events.Exact(rev)
	}
	recs := in.recs[:0]
	var derived *subsidyv1.Envelope
	for _, ev := range dec.Events {
		e := env
		if ev.Derived {
			if derived == nil {
				// in.envelope(it, Source, it.id) with the rule set and
				// the fact's occurrence; the timestamps are shared (they
				// are only marshalled).
				derived = &subsidyv1.Envelope{
					RecordedAt:     env.RecordedAt,
					OccurredAt:     env.OccurredAt,
					Source:         Source,
					CorrelationId:  it.key,
					MessageId:      it.key,
					RuleSetVersion: dec.RuleSetVersion,
				}
				if !it.id.IsZero() {
					derived.CausationId = it.id.String()
				}
			}
			e = derived
		}
		data, err := codec.Encode(ev.ID, dec.Stream, e, ev.Payload)
		if err != nil {
			reject(subsidyv1.ReasonCode_REASON_CODE_DECISION_FAILED, err.Error())
			return
		}
		recs = append(recs, data)
	}
	o := opFor(dec.Stream, expected)
	base := uint64(len(o.evs))
	// Fold the decision now, so later facts of the batch see it.
	next := uint64(0)
	if exists {
		next = rev + 1
	}
	for i, ev := range dec.Events {
		if err := safeApply(in.world, dec.Stream, next+uint64(i), ev); err != nil {
			// The world may be half-updated: the batch fails (add), its
			// messages are handed back and the state is reloaded.
			it.fatal = fmt.Errorf("ingest: folding the decision on message %s: %w", it.key, err)
			return
		}
		in.unlogged[ev.ID] = struct{}{}
		in.point = ev.ID
	}
	it.op, it.rev = o, base
	o.evs = append(o.evs, recs...)
	clear(recs) // the scratch keeps no record's bytes alive
	in.recs = recs[:0]
	o.items = append(o.items, it)
	if in.cfg.Metrics != nil {
		in.cfg.Metrics.Accepted.WithLabelValues(it.source, it.fact).Inc()
	}
}

// park hands an item back to wait for what it refers to (reason), and
// makes the lane's later facts of its kind (m's type) wait behind it.
func (in *Intake) park(it *item, lane string, m proto.Message, reason subsidyv1.ReasonCode) {
	it.retry = in.cfg.RetryDelay
	if lane == "" {
		return
	}
	p := in.parked[lane]
	name := m.ProtoReflect().Descriptor().Name()
	i := slices.IndexFunc(p.waits, func(w kindWait) bool { return w.kind == name })
	if i < 0 {
		i = len(p.waits)
		p.waits = append(p.waits, kindWait{kind: name, seq: it.seq})
	}
	w := &p.waits[i]
	w.seq = min(w.seq, it.seq)
	if !slices.Contains(w.reasons, reason) {
		w.reasons = append(w.reasons, reason)
	}
	p.until = time.Now().Add(4*in.cfg.RetryDelay + time.Second)
	in.parked[lane] = p
}

// unpark ends the wait of the lane's facts of its kind when it is their
// first waiting fact and is decided.
func (in *Intake) unpark(it *item, lane string, m proto.Message) {
	p, ok := in.parked[lane]
	if !ok {
		return
	}
	name := m.ProtoReflect().Descriptor().Name()
	p.waits = slices.DeleteFunc(p.waits, func(w kindWait) bool { return w.kind == name && w.seq == it.seq })
	if len(p.waits) == 0 {
		delete(in.parked, lane)
		return
	}
	in.parked[lane] = p
}

// parking is a lane's waiting facts, by kind.
type parking struct {
	waits []kindWait
	until time.Time // give up waiting behind them after this
}

// kindWait is the lane's waiting facts of one kind: the first's inbound
// stream sequence, and what they wait for.
type kindWait struct {
	kind    protoreflect.Name
	seq     uint64
	reasons []subsidyv1.ReasonCode
}

// holds reports whether fact m of the lane, at inbound sequence seq, waits
// behind the lane's waiting facts: when it came after the first waiting
// fact of its kind (a second certificate, attempt or payment result, whose
// decision may depend on the first's: a yearly cap, attempt numbers),
// unless it can end their wait (endsWait: the earlier attempt a later one
// waits for). Facts of other kinds are decided as they come, and each
// waiting fact once what it waits for is recorded, after whatever came
// meanwhile (the enrolment and its training's completion, which an early
// assessment waits for and reads). Holding every later fact of the lane
// made the fact a waiting fact refers to wait behind it until the wait ran
// out.
func (p parking) holds(m proto.Message, seq uint64) bool {
	name := m.ProtoReflect().Descriptor().Name()
	for _, w := range p.waits {
		if w.kind != name || seq <= w.seq {
			continue
		}
		// Only a wait of its own kind lets it pass: a waiting revocation
		// (which a certificate ends) must not let a later certificate past
		// a waiting one.
		for _, r := range w.reasons {
			if slices.Contains(endsWait[r], name) {
				return false
			}
		}
		return true
	}
	return false
}

// laneOf is the ordering key of a fact: its person key, or else its
// entitlement id, if it has one.
func laneOf(m proto.Message) string {
	r := m.ProtoReflect()
	for _, name := range []protoreflect.Name{"person_key", "entitlement_id"} {
		if fd := r.Descriptor().Fields().ByName(name); fd != nil {
			return string(name) + ":" + r.Get(fd).String()
		}
	}
	return ""
}

// awaitable are the rejections that a fact arriving before what it refers
// to would get: such facts are retried before they are rejected.
var awaitable = map[subsidyv1.ReasonCode]bool{
	subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_TRAINEE:             true,
	subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_INSTITUTION:         true,
	subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_FEE_SCHEDULE:        true,
	subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_ENROLMENT:           true,
	subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_CERTIFICATE:         true,
	subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_ENTITLEMENT:         true,
	subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_PAYMENT_ORDER:       true,
	subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_CLAWBACK:            true,
	subsidyv1.ReasonCode_REASON_CODE_ASSESSMENT_BEFORE_ENROLMENT: true,
	subsidyv1.ReasonCode_REASON_CODE_CERTIFICATE_WITHOUT_PASS:    true,
	subsidyv1.ReasonCode_REASON_CODE_NOT_CONFIRMED:               true,
	subsidyv1.ReasonCode_REASON_CODE_NOT_APPROVED:                true,
	subsidyv1.ReasonCode_REASON_CODE_PAYMENT_NOT_APPROVED:        true,
	subsidyv1.ReasonCode_REASON_CODE_ATTEMPT_OUT_OF_ORDER:        true,
}

// endsWait lists, for each awaitable reason, the facts of the same lane
// (person key, or entitlement id) that can end the wait: what creates the
// missing enrolment, assessment, confirmation or order. Facts of another
// kind than the waiting one are not held at all (parking.holds), so what
// this changes is a later fact of the waiting one's own kind that ends its
// wait (the earlier attempt a later attempt waits for): it passes. A
// reason whose missing thing comes from another lane (an institution, a
// fee schedule, the entitlement a certificate earns) has none.
var endsWait = map[subsidyv1.ReasonCode][]protoreflect.Name{
	subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_TRAINEE:             {"TraineeRegistered"},
	subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_INSTITUTION:         nil,
	subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_FEE_SCHEDULE:        nil,
	subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_ENROLMENT:           {"Enrolled"},
	subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_CERTIFICATE:         {"CertificateIssued"},
	subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_ENTITLEMENT:         nil,
	subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_PAYMENT_ORDER:       {"PaymentRequested"},
	subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_CLAWBACK:            nil, // clawback facts have no lane
	subsidyv1.ReasonCode_REASON_CODE_ASSESSMENT_BEFORE_ENROLMENT: {"Enrolled"},
	subsidyv1.ReasonCode_REASON_CODE_CERTIFICATE_WITHOUT_PASS:    {"AssessmentRecorded"},
	subsidyv1.ReasonCode_REASON_CODE_NOT_CONFIRMED:               {"EntitlementConfirmed"},
	subsidyv1.ReasonCode_REASON_CODE_NOT_APPROVED:                {"EntitlementApproved"},
	subsidyv1.ReasonCode_REASON_CODE_PAYMENT_NOT_APPROVED:        {"EntitlementConfirmed", "EntitlementApproved"},
	subsidyv1.ReasonCode_REASON_CODE_ATTEMPT_OUT_OF_ORDER:        {"AssessmentRecorded"},
}

// safeApply folds a decided event into the world, a panic as an error.
func safeApply(w *rules.World, stream string, rev uint64, ev rules.Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the rules failed folding %T: %v", ev.Payload, r)
		}
	}()
	return w.Apply(stream, rev, ev)
}

// safeDecide runs the rules, turning a panic into an error so that a poison
// message is recorded as a rejection instead of stopping the intake.
func safeDecide(w *rules.World, f rules.Fact) (dec rules.Decision, rej *rules.Rejection, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the rules failed on this fact: %v", r)
		}
	}()
	dec, rej = w.Decide(f)
	return dec, rej, nil
}

func (in *Intake) rejection(it *item, code subsidyv1.ReasonCode, detail string) *subsidyv1.FactRejected {
	h := map[string]string{}
	for k, v := range it.msg.Headers() {
		if k == headerPinID {
			continue // JetStream's delivery detail, not the publisher's
		}
		h[person.RedactIDString(k)] = person.RedactIDString(strings.Join(v, ","))
	}
	// The original message is kept, but never a resident ID number in it
	// (DOMAIN.md §3): each is masked in place (person.RedactIDs keeps the
	// length, so a protobuf payload stays decodable). Of an oversized one,
	// the first facts.MaxPayloadSize bytes and the whole one's digest: the
	// rejection is republished on the feed, and a message near the inbound
	// stream's 1 MiB would not fit a NATS server's default limit with it.
	// The digest is of the whole masked as it is kept: one of the plain
	// payload would let the masked characters be found by trying each
	// region and birth date against it.
	masked := maskedPayload(it.msg.Data())
	kind, known := factKind(in.cfg.Subjects, it.subject)
	masked = unnamed(masked, kind, known)
	if n := len(it.msg.Data()); n > facts.MaxPayloadSize {
		detail += fmt.Sprintf(" (kept: the first %d of its %d bytes, masked; SHA-256 of the whole, masked: %x)", facts.MaxPayloadSize, n, sha256.Sum256(masked))
	}
	kept := keptOfMasked(masked, code)
	return &subsidyv1.FactRejected{
		Subject:        it.subject,
		Headers:        h,
		Payload:        kept,
		PayloadAltered: !bytes.Equal(kept, it.msg.Data()),
		Reason:         code,
		Detail:         person.RedactIDString(detail),
		MessageId:      it.key,
		ReceivedAt:     timestamppb.New(receivedAt(it).UTC()),
		ContentType:    person.RedactIDString(it.msg.Headers().Get(natsbus.HeaderContentType)),
	}
}

// outbox is what answer publishes an outcome with, reused: NATS has
// copied the message into its buffer when PublishMsg returns.
type outbox struct {
	out subsidyv1.IntakeOutcome
	buf []byte
	msg nats.Msg
	hdr nats.Header
}

// answer publishes the outcome of a recorded message and acknowledges it.
func (in *Intake) answer(it *item, r ref, duplicate bool) {
	if duplicate && in.cfg.Metrics != nil {
		in.cfg.Metrics.Duplicates.Inc()
	}
	ob, _ := in.outboxes.Get().(*outbox)
	if ob == nil {
		ob = &outbox{hdr: nats.Header{}}
		ob.hdr.Set(natsbus.HeaderContentType, natsbus.ContentProtobuf)
	}
	defer in.outboxes.Put(ob)
	out := &ob.out
	*out = subsidyv1.IntakeOutcome{
		MessageId: it.key,
		Subject:   it.subject,
		Accepted:  r.reason == subsidyv1.ReasonCode_REASON_CODE_UNSPECIFIED,
		Position:  uint64(r.position),
		Stream:    r.stream,
		Revision:  r.revision,
		Reason:    r.reason,
		Detail:    r.detail,
		Duplicate: duplicate,
	}
	if b, err := (proto.MarshalOptions{}).MarshalAppend(ob.buf[:0], out); err == nil && in.cfg.Conn != nil {
		ob.buf = b
		ob.msg = nats.Msg{Subject: in.cfg.Subjects.Outcome(it.subject), Data: b, Header: ob.hdr}
		_ = in.cfg.Conn.PublishMsg(&ob.msg)
	}
	_ = it.msg.Ack()
}
