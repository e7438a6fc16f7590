package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cqhrss/subsidyledger/events"
)

// Config configures the runners of a Set (or a single Runner).
type Config struct {
	// Store is the event log. Required.
	Store events.Store
	// Checkpoints persists snapshots; nil keeps no snapshots (every start
	// rebuilds from Start).
	Checkpoints *Checkpoints
	// Metrics, if set, receives the runners' metrics.
	Metrics *Metrics
	Logger  *slog.Logger
	// SnapshotEvery: write a snapshot after this many events applied since
	// the last one. Zero means 250,000.
	SnapshotEvery int
	// SnapshotInterval: write a snapshot when the last is this old and at
	// least SnapshotMinEvents events came since. Zero means one minute.
	SnapshotInterval time.Duration
	// SnapshotMinEvents: the events since the last snapshot that make an
	// interval snapshot worth writing. Zero means 10,000: a snapshot of a
	// large model costs seconds, the replay of fewer events milliseconds.
	SnapshotMinEvents int
	// RetryDelay: wait this long after a store error before subscribing
	// again. Zero means one second.
	RetryDelay time.Duration
	// CatchUpBatch: at start, when the log is at least this many events
	// ahead of the restored position, catch up with a parallel Build before
	// following the subscription. Zero means 50,000.
	CatchUpBatch int
	// Restores bounds the snapshots Set.Run restores at once; zero
	// restores them all at once. Fewer leave more of the CPU to whatever
	// else the process restores meanwhile (ledgerd's intake restores the
	// larger snapshot, and is ready only when both are).
	Restores int
	// AsOfBuilds bounds the as-of builds (Runner.AsOf) running at once
	// across a Set's runners (or a lone runner's); zero means 1. Each is a
	// build from the start of the log, and any caller of a read-model
	// route may ask for one: more at once would take the cores from the
	// intake.
	AsOfBuilds int
	asofSlots  chan struct{} // shared by a Set's runners (NewSet)
	// Observer, if set, is told of every event a live instance applied
	// while following the log (not of catch-up or rebuild builds), on the
	// runner's goroutine, after Apply: it must not block (queue and
	// return). A change feed uses it. The event is valid only during the
	// call, as in Apply: its payload's strings point into a page of the log
	// that is reused; what the observer keeps it must copy (strings.Clone).
	Observer func(p Projection, ev *Event)
	// Swapped, if set, is told when a rebuilt instance replaced the live
	// one (Rebuild, or a failed projection repaired by one), with the
	// position it is live at, on the runner's goroutine: what it took in
	// beyond the old instance's events was never told to the Observer, so
	// a change feed tells its consumers to read the read model again. It
	// must not block.
	Swapped func(p Projection, pos events.Position)
}

func (c Config) withDefaults() Config {
	if c.SnapshotEvery <= 0 {
		c.SnapshotEvery = 250_000
	}
	if c.SnapshotInterval <= 0 {
		c.SnapshotInterval = time.Minute
	}
	if c.SnapshotMinEvents <= 0 {
		c.SnapshotMinEvents = 10_000
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = time.Second
	}
	if c.CatchUpBatch <= 0 {
		c.CatchUpBatch = 50_000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.asofSlots == nil {
		c.asofSlots = make(chan struct{}, max(1, c.AsOfBuilds))
	}
	return c
}

// Runner keeps one projection current. Create it with NewRunner, start it
// with Run; query the live instance through Current.
type Runner struct {
	name    string
	version uint32
	factory Factory
	types   typeSet
	cfg     Config
	log     *slog.Logger

	cur     atomic.Pointer[holder]
	pos     atomic.Uint64
	created atomic.Int64 // unix nanos of the event at pos

	mu         sync.Mutex
	running    bool
	target     events.Position // head at start: caught up once reached
	failure    *Failure
	storeErr   error
	checkpoint *Checkpoint
	sessCancel context.CancelFunc

	caughtUp   atomic.Bool
	rebuilding atomic.Bool
	ctl        chan ctlReq

	asofMu    sync.Mutex
	asofCache []asofEntry

	applied prometheus.Counter
}

type holder struct{ p Projection }

type asofEntry struct {
	at  At
	p   Projection
	pos events.Position
}

type ctlKind int

const (
	ctlSwap ctlKind = iota
	ctlSnapshot
	ctlRetry
)

type ctlReq struct {
	kind    ctlKind
	p       Projection
	pos     events.Position
	created time.Time
	done    chan error
}

// NewRunner returns a runner for the projection f makes.
func NewRunner(f Factory, cfg Config) *Runner {
	cfg = cfg.withDefaults()
	p := f()
	r := &Runner{
		name:    p.Name(),
		version: p.Version(),
		factory: f,
		types:   typesOf(p),
		cfg:     cfg,
		log:     cfg.Logger.With("projection", p.Name()),
		ctl:     make(chan ctlReq, 4),
	}
	r.cur.Store(&holder{p})
	if cfg.Metrics != nil {
		cfg.Metrics.track(r)
		r.applied = cfg.Metrics.applied.WithLabelValues(r.name)
	}
	return r
}

// Name returns the projection's name.
func (r *Runner) Name() string { return r.name }

// Current returns the live instance. Its state moves on as events are
// applied; after a rebuild, Current returns the new instance.
func (r *Runner) Current() Projection { return r.cur.Load().p }

// Position returns the position of the last event the live instance
// reflects.
func (r *Runner) Position() events.Position { return events.Position(r.pos.Load()) }

// CurrentOf returns the live instance of r as a T (the concrete read model).
func CurrentOf[T Projection](r *Runner) (T, bool) {
	t, ok := r.Current().(T)
	return t, ok
}

// Status is a runner's state for health checks and the API.
type Status struct {
	Name     string          `json:"name"`
	Version  uint32          `json:"version"`
	Position events.Position `json:"position"`
	Head     events.Position `json:"head"`
	// LagEvents is Head - Position.
	LagEvents uint64 `json:"lag_events"`
	// LagSeconds is the age of the oldest event not yet applied.
	LagSeconds float64 `json:"lag_seconds"`
	Running    bool    `json:"running"`
	Ready      bool    `json:"ready"`
	Rebuilding bool    `json:"rebuilding"`
	// Failure is the event the projection stopped at, if it did.
	Failure *Failure `json:"-"`
	// Error is Failure's text (or the last store error), for JSON.
	Error      string      `json:"error,omitempty"`
	Checkpoint *Checkpoint `json:"-"`
	// SnapshotPosition is the position of the latest snapshot (0: none).
	SnapshotPosition events.Position `json:"snapshot_position"`
}

// Status reports the runner's position, lag and health. It reads the
// store's head (and, when behind, the oldest unapplied event's commit time).
func (r *Runner) Status(ctx context.Context) Status {
	r.mu.Lock()
	st := Status{
		Name: r.name, Version: r.version, Running: r.running,
		Ready: r.running && r.caughtUp.Load() && r.failure == nil, Rebuilding: r.rebuilding.Load(),
		Failure: r.failure, Checkpoint: r.checkpoint,
	}
	if r.failure != nil {
		st.Error = r.failure.Error()
	} else if r.storeErr != nil {
		st.Error = r.storeErr.Error()
	}
	r.mu.Unlock()
	if st.Checkpoint != nil {
		st.SnapshotPosition = st.Checkpoint.Position
	}
	st.Position = r.Position()
	if h, err := r.cfg.Store.Head(ctx); err == nil {
		st.Head = h
	}
	if st.Head > st.Position {
		st.LagEvents = uint64(st.Head - st.Position)
		if next, err := r.cfg.Store.ReadAll(ctx, st.Position, 1); err == nil && len(next) == 1 {
			st.LagSeconds = max(0, time.Since(next[0].Created).Seconds())
		}
	}
	return st
}

// Ready returns nil once the projection has caught up with the log as it
// was when Run started, and while it is not stopped at a failing event.
// Errors: ErrStopped (not running), ErrNotReady (still catching up), a
// *Failure (stopped at an event; errors.Is(err, ErrNotReady) holds too).
func (r *Runner) Ready() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case !r.running:
		return fmt.Errorf("projection %q: %w", r.name, ErrStopped)
	case r.failure != nil:
		return fmt.Errorf("projection %q: %w: %w", r.name, ErrNotReady, r.failure)
	case !r.caughtUp.Load():
		return fmt.Errorf("projection %q: %w: catching up (position %d of %d)", r.name, ErrNotReady, r.Position(), r.target)
	}
	return nil
}

// Failure returns the event the projection stopped at, or nil.
func (r *Runner) Failure() *Failure {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failure
}

func (r *Runner) setPos(pos events.Position, created time.Time) {
	r.pos.Store(uint64(pos))
	r.created.Store(created.UnixNano())
}

func (r *Runner) createdAt() time.Time {
	n := r.created.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Run restores the projection from its checkpoint (or starts from Start),
// catches up with the log and follows it until ctx ends, writing snapshots
// as configured and a last one on the way out. A failing event stops the
// projection (see Status, Ready) but not Run: Run keeps serving the state
// before the event and waits for Retry or a Rebuild. Store errors are
// retried after Config.RetryDelay. Run returns nil when ctx ends.
//
// Errors: ErrBusy if the runner is already running.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.begin(); err != nil {
		return err
	}
	defer r.end()
	head, ok := r.prepare(ctx)
	if !ok {
		return nil
	}
	var st loopState
	if r.behind(head) {
		st = catchUp(ctx, r.cfg.Store, []*Runner{r}, head)[0]
	}
	return r.loop(ctx, st)
}

// begin marks the runner running; ErrBusy if it already is.
func (r *Runner) begin() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running {
		return fmt.Errorf("projection %q: %w", r.name, ErrBusy)
	}
	r.running = true
	r.caughtUp.Store(false)
	return nil
}

func (r *Runner) end() {
	r.mu.Lock()
	r.running = false
	r.mu.Unlock()
}

// prepare restores the checkpoint and reads the log's head, the position
// to reach before the runner is ready; ok is false if ctx ended first.
func (r *Runner) prepare(ctx context.Context) (head events.Position, ok bool) {
	r.restore(ctx)
	head, err := r.cfg.Store.Head(ctx)
	for err != nil {
		if ctx.Err() != nil {
			return 0, false
		}
		r.noteStoreError(err)
		select {
		case <-ctx.Done():
			return 0, false
		case <-time.After(r.cfg.RetryDelay):
		}
		head, err = r.cfg.Store.Head(ctx)
	}
	if head < r.Position() {
		// The log is shorter than the snapshot: not the log it was taken
		// from. Start again from Start.
		r.log.Error("snapshot is ahead of the log; dropping it and rebuilding from the start", "snapshot_position", r.Position(), "head", head)
		if r.cfg.Checkpoints != nil {
			if err := r.cfg.Checkpoints.Drop(r.name); err != nil {
				r.log.Error("dropping the snapshot failed", "err", err)
			}
		}
		r.cur.Store(&holder{r.factory()})
		r.setPos(events.Start, time.Time{})
	}
	r.mu.Lock()
	r.target = head
	r.mu.Unlock()
	r.markCaughtUp()
	return head, true
}

// behind reports whether the runner is far enough behind head to catch up
// with a build (pages decoded in parallel) rather than event by event.
func (r *Runner) behind(head events.Position) bool {
	return int(head-r.Position()) >= r.cfg.CatchUpBatch
}

// loopState is what the follow loop starts from after a catch-up.
type loopState struct {
	dirty     bool // applied events the checkpoint lacks
	sinceSnap int  // events applied since the checkpoint
}

// catchUp brings rs, all at the same position, up to head with one build:
// one read and decoding of the log for all of them, where each catching
// up alone would read and decode it again. After a failed build each
// starts again from its checkpoint: several then catch up one at a time,
// so that only one that fails itself is left behind; that one's follow
// loop meets the events one by one (stopping exactly before a failing
// one, retrying after a store error), as the build does not say how far
// it got.
func catchUp(ctx context.Context, store events.Store, rs []*Runner, head events.Position) []loopState {
	ps := make([]Projection, len(rs))
	for i, r := range rs {
		ps[i] = r.Current()
	}
	t0 := time.Now()
	stats, err := Build(ctx, store, ps, BuildOptions{After: rs[0].Position(), Until: &At{Position: head}})
	out := make([]loopState, len(rs))
	for i, r := range rs {
		switch {
		case err != nil:
			if ctx.Err() == nil {
				if len(rs) > 1 {
					r.log.Warn("shared catch-up build failed; catching up alone", "err", err)
				} else {
					r.log.Warn("catch-up build failed; replaying from the restored position one event at a time", "err", err)
				}
			}
			r.cur.Store(&holder{r.factory()})
			r.setPos(events.Start, time.Time{})
			r.restore(ctx)
			if len(rs) > 1 && ctx.Err() == nil && r.behind(head) {
				out[i] = catchUp(ctx, store, []*Runner{r}, head)[0]
			}
		case stats.Events > 0:
			r.setPos(stats.Position, stats.Created)
			r.countApplied(stats.Applied[i])
			out[i] = loopState{dirty: true, sinceSnap: int(stats.Events)}
			r.log.Info("caught up", "position", stats.Position, "events", stats.Events, "projections", len(rs),
				"took", time.Since(t0).Round(time.Millisecond))
		}
		r.markCaughtUp()
	}
	return out
}

// loop follows the log from the runner's position until ctx ends (see
// Run).
func (r *Runner) loop(ctx context.Context, st loopState) error {
	dirty, sinceSnap := st.dirty, st.sinceSnap
	lastSnap := time.Now()
	d := newDecoder()
	// Strings of decoded payloads point into the page read (see Apply and
	// Config.Observer), as in a build, so that following the log does not
	// copy every string of every event for each projection.
	d.alias = true
	for ctx.Err() == nil {
		// Control requests first.
	drain:
		for {
			select {
			case req := <-r.ctl:
				r.handle(ctx, req, &dirty, &sinceSnap, &lastSnap)
			default:
				break drain
			}
		}
		if r.Failure() != nil {
			select {
			case <-ctx.Done():
			case req := <-r.ctl:
				r.handle(ctx, req, &dirty, &sinceSnap, &lastSnap)
			}
			continue
		}
		sess, cancel := context.WithCancel(ctx)
		if r.cfg.Checkpoints != nil {
			// A session ends at least every interval, changed or not: a
			// session begun clean may apply events, and only its end can
			// write them to a snapshot.
			var c2 context.CancelFunc
			sess, c2 = context.WithDeadline(sess, lastSnap.Add(r.cfg.SnapshotInterval))
			cancel = chain(cancel, c2)
		}
		r.mu.Lock()
		r.sessCancel = cancel
		r.mu.Unlock()
		if len(r.ctl) > 0 {
			cancel()
		}
		n, err := r.follow(sess, d, &sinceSnap)
		cancel()
		if n > 0 {
			dirty = true
		}
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, errSnapshotDue), errors.Is(err, context.DeadlineExceeded):
			switch {
			case r.cfg.Checkpoints == nil:
			case !dirty || (errors.Is(err, context.DeadlineExceeded) && sinceSnap < r.cfg.SnapshotMinEvents):
				lastSnap = time.Now() // nothing, or too little, to write: the next interval
			case r.saveSnapshot() == nil:
				dirty, sinceSnap, lastSnap = false, 0, time.Now()
			default:
				lastSnap = time.Now() // try again after another interval
			}
		case errors.Is(err, context.Canceled):
			// Interrupted for a control request.
		case isFailure(err):
			r.fail(err)
		case err != nil:
			r.noteStoreError(err)
			select {
			case <-ctx.Done():
			case <-time.After(r.cfg.RetryDelay):
			}
		}
	}
	if dirty && r.cfg.Checkpoints != nil && r.Failure() == nil {
		_ = r.saveSnapshot()
	}
	return nil
}

func chain(a, b context.CancelFunc) context.CancelFunc { return func() { b(); a() } }

var errSnapshotDue = errors.New("snapshot due")

type failureErr struct{ f *Failure }

func (e failureErr) Error() string { return e.f.Error() }

func isFailure(err error) bool {
	var f failureErr
	return errors.As(err, &f)
}

// follow applies events from the subscription until sess ends, a snapshot
// is due or an event fails. It returns the number of events applied.
func (r *Runner) follow(sess context.Context, d *decoder, sinceSnap *int) (int, error) {
	sub, err := r.cfg.Store.Subscribe(sess, r.Position(), events.Filter{})
	if err != nil {
		return 0, err
	}
	defer sub.Close()
	p := r.Current()
	n := 0
	var page events.Page // recycled: an event's bytes live until the next page
	var ev Event         // recycled: valid during Apply and the Observer only
	for {
		if err := events.NextPage(sess, sub, 0, &page); err != nil {
			return n, err
		}
		for i := range page.Events {
			rec := &page.Events[i]
			if rec.Position <= r.Position() {
				// Never apply twice, whatever the subscription does.
				continue
			}
			if r.types.wants(rec.Type) {
				err := d.decodeInto(rec, &ev)
				if err == nil {
					err = p.Apply(&ev)
				}
				if err != nil {
					return n, failureErr{&Failure{Position: rec.Position, EventID: rec.ID.String(), Type: rec.Type, Err: err, At: time.Now()}}
				}
				r.countApplied(1)
				// The position first: what the Observer announces (the
				// change feed) is visible in the API with its position
				// (X-Ledger-Position) by then.
				r.setPos(rec.Position, rec.Created)
				if r.cfg.Observer != nil {
					r.cfg.Observer(p, &ev)
				}
			} else {
				r.setPos(rec.Position, rec.Created)
			}
			r.clearStoreError()
			n++
			*sinceSnap++
			if !r.caughtUp.Load() {
				r.markCaughtUp()
			}
			if r.cfg.Checkpoints != nil && *sinceSnap >= r.cfg.SnapshotEvery {
				// The rest of the page is read again by the next session,
				// from the position reached.
				return n, errSnapshotDue
			}
		}
	}
}

func (r *Runner) countApplied(n uint64) {
	if r.applied != nil && n > 0 {
		r.applied.Add(float64(n))
	}
}

func (r *Runner) markCaughtUp() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.caughtUp.Load() && r.Position() >= r.target {
		r.caughtUp.Store(true)
		r.log.Info("projection ready", "position", r.Position())
	}
}

func (r *Runner) fail(err error) {
	var fe failureErr
	errors.As(err, &fe)
	r.mu.Lock()
	r.failure = fe.f
	r.mu.Unlock()
	if r.cfg.Metrics != nil {
		r.cfg.Metrics.failures.WithLabelValues(r.name).Inc()
	}
	r.log.Error("projection stopped at an event it cannot apply", "position", fe.f.Position, "event_id", fe.f.EventID, "type", fe.f.Type, "err", fe.f.Err)
}

func (r *Runner) noteStoreError(err error) {
	r.mu.Lock()
	first := r.storeErr == nil
	r.storeErr = err
	r.mu.Unlock()
	if first {
		r.log.Warn("event store error; retrying", "err", err)
	}
}

func (r *Runner) clearStoreError() {
	r.mu.Lock()
	r.storeErr = nil
	r.mu.Unlock()
}

// handle runs a control request on the loop's goroutine.
func (r *Runner) handle(ctx context.Context, req ctlReq, dirty *bool, sinceSnap *int, lastSnap *time.Time) {
	var err error
	switch req.kind {
	case ctlSwap:
		err = r.swap(ctx, req.p, req.pos, req.created)
		if err == nil {
			*dirty = true
			if r.cfg.Checkpoints != nil && r.saveSnapshot() == nil {
				*dirty, *sinceSnap, *lastSnap = false, 0, time.Now()
			}
		}
	case ctlSnapshot:
		if r.cfg.Checkpoints != nil {
			err = r.saveSnapshot()
			if err == nil {
				*dirty, *sinceSnap, *lastSnap = false, 0, time.Now()
			}
		}
	case ctlRetry:
		r.mu.Lock()
		r.failure = nil
		r.mu.Unlock()
	}
	req.done <- err
}

// swap brings the candidate up to the live position and makes it live.
func (r *Runner) swap(ctx context.Context, cand Projection, pos events.Position, created time.Time) error {
	live := r.Position()
	if pos < live {
		stats, err := Build(ctx, r.cfg.Store, []Projection{cand}, BuildOptions{After: pos, Until: &At{Position: live}})
		if err != nil {
			return err
		}
		pos, created = stats.Position, stats.Created
	}
	r.cur.Store(&holder{cand})
	r.setPos(pos, created)
	r.mu.Lock()
	r.failure = nil
	r.mu.Unlock()
	r.markCaughtUp()
	if r.cfg.Swapped != nil {
		r.cfg.Swapped(cand, pos)
	}
	return nil
}

func (r *Runner) saveSnapshot() error {
	t0 := time.Now()
	pos := r.Position()
	var id events.ID
	if pos != events.Start {
		// The id of the event at pos, for the manifest: a restore checks
		// that the log holds it there.
		var err error
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		id, err = EventIDAt(ctx, r.cfg.Store, pos)
		cancel()
		if err != nil {
			r.log.Error("writing the snapshot failed", "err", err)
			return err
		}
	}
	cp, err := r.cfg.Checkpoints.Save(r.Current(), pos, r.createdAt(), id)
	if err != nil {
		r.log.Error("writing the snapshot failed", "err", err)
		return err
	}
	r.mu.Lock()
	r.checkpoint = &cp
	r.mu.Unlock()
	if m := r.cfg.Metrics; m != nil {
		m.snapshot.WithLabelValues(r.name).Observe(time.Since(t0).Seconds())
		m.snapBytes.WithLabelValues(r.name).Set(float64(cp.Size))
	}
	r.log.Debug("snapshot written", "position", cp.Position, "bytes", cp.Size, "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

// restore loads the checkpoint, if any and of the current version, into a
// fresh instance and makes it live.
func (r *Runner) restore(ctx context.Context) {
	if r.cfg.Checkpoints == nil {
		return
	}
	cp, ok, err := r.cfg.Checkpoints.Load(r.name)
	switch {
	case err != nil:
		r.log.Warn("checkpoint unreadable; rebuilding from the start", "err", err)
		return
	case !ok:
		r.log.Info("no checkpoint; building from the start")
		return
	case cp.Version != r.version:
		r.log.Info("checkpoint of another version; rebuilding from the start", "checkpoint_version", cp.Version, "version", r.version)
		return
	}
	if err := r.matchesLog(ctx, cp); err != nil {
		if ctx.Err() != nil {
			return
		}
		// Not this log's snapshot (the store was restored from an older
		// backup, or the data directory holds another store's): drop it,
		// so that a crash before the next snapshot cannot restore it.
		r.log.Error("snapshot is not of this log; dropping it and rebuilding from the start", "err", err, "snapshot_position", cp.Position)
		if err := r.cfg.Checkpoints.Drop(r.name); err != nil {
			r.log.Error("dropping the snapshot failed", "err", err)
		}
		return
	}
	t0 := time.Now()
	p := r.factory()
	if err := r.cfg.Checkpoints.Restore(p, cp); err != nil {
		r.log.Warn("snapshot unusable; rebuilding from the start", "err", err)
		return
	}
	r.cur.Store(&holder{p})
	r.setPos(cp.Position, cp.Created)
	r.mu.Lock()
	r.checkpoint = &cp
	r.mu.Unlock()
	r.log.Info("restored from snapshot", "position", cp.Position, "bytes", cp.Size, "took", time.Since(t0).Round(time.Millisecond))
}

// matchesLog checks that the log holds the checkpoint's event at its
// position (any event there, for a manifest written before event ids were
// recorded). It retries while the store fails, until ctx ends.
func (r *Runner) matchesLog(ctx context.Context, cp Checkpoint) error {
	if cp.Position == events.Start {
		return nil
	}
	for {
		id, err := EventIDAt(ctx, r.cfg.Store, cp.Position)
		switch {
		case errors.Is(err, ErrNoEventAt):
			return err
		case err == nil && cp.EventID != (events.ID{}) && id != cp.EventID:
			return fmt.Errorf("the event at position %d is %s, the snapshot's was %s", cp.Position, id, cp.EventID)
		case err == nil:
			return nil
		}
		r.noteStoreError(err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.cfg.RetryDelay):
		}
	}
}

// ErrNoEventAt is EventIDAt's error when the log holds no event at the
// position.
var ErrNoEventAt = errors.New("no event at the position")

// EventIDAt returns the id of the event at pos, what a checkpoint records
// beside its position (Checkpoints.Save), or checks it holds (the intake's
// snapshot too); an error wrapping ErrNoEventAt if the log holds none
// there, the store's own if it cannot be read.
func EventIDAt(ctx context.Context, s events.Store, pos events.Position) (events.ID, error) {
	if pos == events.Start {
		return events.ID{}, nil // before the first event: the zero id
	}
	recs, err := s.ReadAll(ctx, pos-1, 1)
	switch {
	case err != nil:
		return events.ID{}, err
	case len(recs) == 0 || recs[0].Position != pos:
		return events.ID{}, fmt.Errorf("%w %d: the log has no event there", ErrNoEventAt, pos)
	}
	return recs[0].ID, nil
}

// send queues a control request for the loop and waits for its answer.
func (r *Runner) send(ctx context.Context, req ctlReq) error {
	req.done = make(chan error, 1)
	select {
	case r.ctl <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.mu.Lock()
	if r.sessCancel != nil {
		r.sessCancel()
	}
	r.mu.Unlock()
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Runner) isRunning() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}

// Rebuild builds a fresh instance from Start while the live one keeps
// serving, then swaps it in once it has caught up (and writes a snapshot).
// It blocks until the swap.
//
// Errors: ErrBusy (a rebuild is running); ErrStopped (the runner is not
// running); *BuildError (the fresh instance failed on an event; the live
// one stays); the store's; ctx's.
func (r *Runner) Rebuild(ctx context.Context) error {
	if !r.rebuilding.CompareAndSwap(false, true) {
		return fmt.Errorf("projection %q: %w", r.name, ErrBusy)
	}
	defer r.rebuilding.Store(false)
	if !r.isRunning() {
		return fmt.Errorf("projection %q: %w", r.name, ErrStopped)
	}
	t0 := time.Now()
	cand := r.factory()
	stats, err := Build(ctx, r.cfg.Store, []Projection{cand}, BuildOptions{})
	if err != nil {
		r.log.Error("rebuild failed; the live instance stays", "err", err)
		return err
	}
	if err := r.send(ctx, ctlReq{kind: ctlSwap, p: cand, pos: stats.Position, created: stats.Created}); err != nil {
		return err
	}
	took := time.Since(t0)
	if m := r.cfg.Metrics; m != nil {
		m.rebuild.WithLabelValues(r.name).Observe(took.Seconds())
	}
	r.log.Info("rebuilt and swapped in", "position", r.Position(), "events", stats.Events, "took", took.Round(time.Millisecond))
	return nil
}

// Snapshot writes a snapshot and checkpoint now. Errors: ErrStopped; the
// checkpoint's.
func (r *Runner) Snapshot(ctx context.Context) error {
	if !r.isRunning() {
		return fmt.Errorf("projection %q: %w", r.name, ErrStopped)
	}
	return r.send(ctx, ctlReq{kind: ctlSnapshot})
}

// Retry clears a failure so that the runner tries the failing event again
// (after a fix of the store, say). Errors: ErrStopped.
func (r *Runner) Retry(ctx context.Context) error {
	if !r.isRunning() {
		return fmt.Errorf("projection %q: %w", r.name, ErrStopped)
	}
	return r.send(ctx, ctlReq{kind: ctlRetry})
}

// AsOf returns a fresh instance built up to a past moment, and the position
// of the last event it reflects. It is built on demand (the last two are
// kept), on the caller's goroutine; the live instance is not touched. A
// build by time is kept only when it stopped at an event after that time:
// one that reached the head (a time not yet past in the log) would miss
// events committed later but by then.
//
// Errors: ErrBeyondHead (a position after the head); *BuildError; the
// store's; ctx's.
func (r *Runner) AsOf(ctx context.Context, at At) (Projection, events.Position, error) {
	head, err := r.cfg.Store.Head(ctx)
	if err != nil {
		return nil, 0, err
	}
	if at.Time.IsZero() && at.Position > head {
		return nil, 0, fmt.Errorf("%w: %d > %d", ErrBeyondHead, at.Position, head)
	}
	r.asofMu.Lock()
	defer r.asofMu.Unlock()
	for _, e := range r.asofCache {
		if e.at == at {
			return e.p, e.pos, nil
		}
	}
	select { // a slot among the set's as-of builds
	case r.cfg.asofSlots <- struct{}{}:
		defer func() { <-r.cfg.asofSlots }()
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	p := r.factory()
	stats, err := Build(ctx, r.cfg.Store, []Projection{p}, BuildOptions{Until: &at})
	if err != nil {
		return nil, 0, err
	}
	if at.Time.IsZero() || stats.Position < head {
		r.asofCache = append([]asofEntry{{at, p, stats.Position}}, r.asofCache...)
		if len(r.asofCache) > 2 {
			r.asofCache = r.asofCache[:2]
		}
	}
	return p, stats.Position, nil
}
