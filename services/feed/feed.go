// Package feed republishes every committed ledger event to NATS, in global
// position order, for downstream reporting consumers: one message per event
// on subject <prefix>.feed.<stream category>.<Type>, payload the event's
// protobuf bytes, metadata in headers (Ledger-Position, Ledger-Stream,
// Ledger-Revision, Ledger-Type, Ledger-Event-Id, Ledger-Hash, ...). Events are
// published in atomic batches into the SUBSIDY_FEED stream, so the feed never
// has a gap; after a restart it resumes after the last position the stream
// holds, so it never repeats one. A short batch lingers (Config.Linger) so
// that a trickle of commits does not become a trickle of fsyncs.
package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/codec"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/natsbus"
)

// Config configures a Feed.
type Config struct {
	Store     events.Store
	Conn      *nats.Conn
	JetStream jetstream.JetStream
	Subjects  natsbus.Subjects
	// BatchSize is the number of events per atomic publish (≤ 1000).
	BatchSize int
	// Linger: a batch short of BatchSize waits until its first event was
	// committed this long ago, so that more join it. Each atomic publish
	// costs the NATS server a staging store and an fsync, on the disk the
	// inbound stream and the ledger sync on too. Zero publishes at once.
	Linger time.Duration
	// ProblemAfter is how long the feed must have failed without a break
	// before Problem reports it: 30s when zero or less. A failure shorter
	// than that (a NATS node restarting, a leader election, a reply lost
	// and given up on after 15s) is retried and not reported, so that
	// readiness does not flap; a diverged stream (ErrDiverged) is reported
	// at once, since it lasts until an operator acts.
	ProblemAfter time.Duration
	Logger       *slog.Logger
	Metrics      *Metrics
}

// DefaultProblemAfter is Config.ProblemAfter's default.
const DefaultProblemAfter = 30 * time.Second

// Metrics of the feed.
type Metrics struct {
	Position  prometheus.Gauge
	Published prometheus.Counter
	Batches   prometheus.Counter
	Failures  prometheus.Counter
}

// NewMetrics registers the feed's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Position: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "subsidy_ledger_feed_position", Help: "Global position of the last event published on the outbound feed.",
		}),
		Published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "subsidy_ledger_feed_published_total", Help: "Events published on the outbound feed.",
		}),
		Batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "subsidy_ledger_feed_batches_total", Help: "Atomic batches published on the outbound feed.",
		}),
		Failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "subsidy_ledger_feed_publish_failures_total", Help: "Atomic feed batches that failed and were retried.",
		}),
	}
	reg.MustRegister(m.Position, m.Published, m.Batches, m.Failures)
	return m
}

// Feed is the outbound republisher.
type Feed struct {
	cfg       Config
	pos       events.Position // Run's
	published atomic.Uint64   // pos, for Position (other goroutines)
	page      events.Page
	// Reused by each publish (NATS has copied a message's subject,
	// headers and data into its buffer when the publish call returns):
	// the messages, their headers, the headers' values, and the decoded
	// envelope.
	msgs []*nats.Msg
	hdrs []nats.Header
	vals []string
	env  subsidyv1.Envelope
	// failing is the failure the feed is retrying, nil while it publishes
	// or is caught up. Run stores it; Problem loads it.
	failing atomic.Pointer[failure]
}

// feedHeaders is the most headers publish sets on a message.
const feedHeaders = 12

// failure is the latest error of a run of failures, and when the run began.
type failure struct {
	err   error
	since time.Time
}

// ProblemError is what Problem reports: the feed has published nothing
// since Since, for Lasted, and Err is its latest failure.
type ProblemError struct {
	Err    error
	Since  time.Time
	Lasted time.Duration
}

// Error says since when the feed fails and why; for a diverged stream,
// also what an operator does about it.
func (e *ProblemError) Error() string {
	msg := strings.TrimPrefix(e.Err.Error(), "feed: ")
	if errors.Is(e.Err, ErrDiverged) {
		return fmt.Sprintf("stopped since %s: %s (delete the stream %s and restart ledgerd, or restore the store it was publishing)",
			e.Since.UTC().Format(time.RFC3339), msg, natsbus.FeedStream)
	}
	return fmt.Sprintf("failing since %s (%s): %s", e.Since.UTC().Format(time.RFC3339), e.Lasted.Round(time.Second), msg)
}

func (e *ProblemError) Unwrap() error { return e.Err }

// New returns a Feed.
func New(cfg Config) *Feed {
	if cfg.BatchSize <= 0 || cfg.BatchSize > natsbus.MaxAtomicBatch {
		cfg.BatchSize = 500
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Subjects.Prefix == "" {
		cfg.Subjects = natsbus.DefaultSubjects
	}
	if cfg.ProblemAfter <= 0 {
		cfg.ProblemAfter = DefaultProblemAfter
	}
	return &Feed{cfg: cfg}
}

// Position is the last position published (safe while Run runs).
func (f *Feed) Position() events.Position { return events.Position(f.published.Load()) }

// Problem reports why the feed publishes nothing, as a *ProblemError: at
// once when its stream has diverged from the store (errors.Is ErrDiverged),
// otherwise once it has failed for Config.ProblemAfter without a break.
// It is nil while the feed publishes or is caught up with the store, and
// while it has not yet failed for that long. Safe while Run runs.
func (f *Feed) Problem() error {
	p := f.failing.Load()
	if p == nil {
		return nil
	}
	lasted := time.Since(p.since)
	if lasted < f.cfg.ProblemAfter && !errors.Is(p.err, ErrDiverged) {
		return nil
	}
	return &ProblemError{Err: p.err, Since: p.since, Lasted: lasted}
}

// fail records err as the feed's latest failure; a run of failures keeps
// the time of its first. Only Run's goroutine calls it.
func (f *Feed) fail(err error) {
	since := time.Now()
	if p := f.failing.Load(); p != nil {
		since = p.since
	}
	f.failing.Store(&failure{err: err, since: since})
}

// recovered ends a run of failures: the feed published, or has nothing to.
func (f *Feed) recovered() {
	if f.failing.Load() != nil {
		f.failing.Store(nil)
	}
}

// LastPublished reads the position of the last event the feed stream holds
// (events.Start when it holds none).
func LastPublished(ctx context.Context, js jetstream.JetStream) (events.Position, error) {
	p, _, err := lastPublished(ctx, js)
	return p, err
}

// ErrDiverged: the feed stream's last event is not the store's event at
// its position (the store was replaced by another, or by an older copy).
// The feed publishes nothing until it is put right: an operator deletes
// the stream SUBSIDY_FEED (its messages may not be purged) and restarts
// ledgerd, which creates it again and republishes the store's log, or
// restores the store the feed was publishing.
var ErrDiverged = errors.New("feed: the feed stream's last event is not the store's")

// check returns ErrDiverged unless the store holds the event id at p.
func (f *Feed) check(ctx context.Context, p events.Position, id string) error {
	if p == events.Start {
		return nil
	}
	var pg events.Page
	if err := events.ReadPage(ctx, f.cfg.Store, p-1, 1, &pg); err != nil {
		return err
	}
	if len(pg.Events) == 0 || pg.Events[0].Position != p {
		return fmt.Errorf("%w: it published up to position %d, which the store does not hold", ErrDiverged, p)
	}
	if got := pg.Events[0].ID.String(); got != id {
		return fmt.Errorf("%w: at position %d it published event %s, the store holds %s", ErrDiverged, p, id, got)
	}
	return nil
}

func lastPublished(ctx context.Context, js jetstream.JetStream) (events.Position, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, natsbus.FeedStream)
	if err != nil {
		return 0, "", fmt.Errorf("feed: stream: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("feed: stream info: %w", err)
	}
	if info.State.LastSeq == 0 || info.State.Msgs == 0 {
		return events.Start, "", nil
	}
	msg, err := st.GetMsg(ctx, info.State.LastSeq)
	if err != nil {
		return 0, "", fmt.Errorf("feed: last message: %w", err)
	}
	p, err := strconv.ParseUint(msg.Header.Get(natsbus.HeaderPosition), 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("feed: last message has no %s header: %w", natsbus.HeaderPosition, err)
	}
	return events.Position(p), msg.Header.Get(natsbus.HeaderEventID), nil
}

// Run publishes until ctx ends. Failures are retried from the last position
// the feed stream holds; Problem reports them once they last.
func (f *Feed) Run(ctx context.Context) error {
	resync := true
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		if resync {
			p, id, err := lastPublished(ctx, f.cfg.JetStream)
			if err == nil {
				err = f.check(ctx, p, id)
			}
			if err != nil {
				if !f.wait(ctx, &backoff, err) {
					return nil
				}
				continue
			}
			f.pos, resync = p, false
			f.setPos()
		}
		page, err := f.next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !f.wait(ctx, &backoff, err) {
				return nil
			}
			continue
		}
		if err := f.publish(ctx, page); err != nil {
			if ctx.Err() != nil {
				return nil // stopping: the next Run resumes after what the stream holds
			}
			if f.cfg.Metrics != nil {
				f.cfg.Metrics.Failures.Inc()
			}
			resync = true
			if !f.wait(ctx, &backoff, err) {
				return nil
			}
			continue
		}
		backoff = 0
	}
	return nil
}

// wait logs and records err (see Problem) and pauses before a retry,
// longer each time; false when ctx ends (a stop: nothing to log or record,
// the failure is the stop's own).
func (f *Feed) wait(ctx context.Context, backoff *time.Duration, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	f.fail(err)
	*backoff = min(max(2**backoff, 50*time.Millisecond), 5*time.Second)
	f.cfg.Logger.Warn("feed: retrying", "err", err, "after", *backoff)
	select {
	case <-ctx.Done():
		return false
	case <-time.After(*backoff):
		return true
	}
}

// next returns the next events after f.pos, waiting for a commit if there
// are none.
// The events live in f.page's recycled memory until the next call.
func (f *Feed) next(ctx context.Context) ([]events.RecordedEvent, error) {
	for {
		err := events.ReadPage(ctx, f.cfg.Store, f.pos, f.cfg.BatchSize, &f.page)
		if err != nil {
			return nil, err
		}
		if n := len(f.page.Events); n > 0 {
			if n < f.cfg.BatchSize && f.cfg.Linger > 0 {
				if wait := time.Until(f.page.Events[0].Created.Add(f.cfg.Linger)); wait > 0 {
					select {
					case <-time.After(wait):
					case <-ctx.Done():
						return nil, ctx.Err()
					}
					continue // read again, with what committed meanwhile
				}
			}
			return f.page.Events, nil
		}
		f.recovered() // caught up: nothing failed is waiting to go out
		sub, err := f.cfg.Store.Subscribe(ctx, f.pos, events.Filter{})
		if err != nil {
			return nil, err
		}
		_, err = sub.Next(ctx) // a commit: read the page again
		sub.Close()
		if err != nil {
			return nil, err
		}
	}
}

func (f *Feed) publish(ctx context.Context, page []events.RecordedEvent) error {
	for len(f.msgs) < len(page) {
		f.msgs = append(f.msgs, &nats.Msg{})
		f.hdrs = append(f.hdrs, make(nats.Header, feedHeaders+3)) // and natsbus.PublishAtomic's
	}
	msgs := f.msgs[:len(page)]
	if cap(f.vals) < feedHeaders*len(page) {
		f.vals = make([]string, feedHeaders*len(page))
	}
	vals := f.vals[:0]
	for i, e := range page {
		h := f.hdrs[i]
		clear(h)
		// Keys in canonical form, set directly (Header.Set canonicalises
		// and allocates per call: a dozen headers an event); each value a
		// slice of vals, capped so that an Add does not write into the
		// next.
		set := func(k, v string) {
			vals = append(vals, v)
			h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
		pos := strconv.FormatUint(uint64(e.Position), 10)
		set(natsbus.HeaderMsgID, "pos-"+pos)
		set(natsbus.HeaderPosition, pos)
		set(natsbus.HeaderStream, e.Stream)
		set(natsbus.HeaderRevision, strconv.FormatUint(e.Revision, 10))
		set(natsbus.HeaderType, e.Type)
		set(natsbus.HeaderEventID, e.ID.String())
		set(natsbus.HeaderContentType, natsbus.ContentProtobuf)
		set("Ledger-Hash", e.Hash.String())
		set("Ledger-Prev-Hash", e.PrevHash.String())
		if err := proto.Unmarshal(e.Metadata, &f.env); err == nil {
			if f.env.GetOccurredAt() != nil {
				set("Ledger-Occurred-At", f.env.GetOccurredAt().AsTime().Format(time.RFC3339Nano))
			}
			set("Ledger-Source", f.env.GetSource())
			if f.env.GetRuleSetVersion() != "" {
				set("Ledger-Rule-Set", f.env.GetRuleSetVersion())
			}
		}
		*msgs[i] = nats.Msg{Subject: f.cfg.Subjects.Feed(codec.Category(e.Stream), e.Type), Data: e.Data, Header: h}
	}
	first, last := page[0].Position, page[len(page)-1].Position
	// A reply lost with a NATS node must not block the feed: give up and
	// resynchronise from what the stream holds.
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ack, err := natsbus.PublishAtomic(pctx, f.cfg.Conn, fmt.Sprintf("feed-%d-%d-%d", first, last, time.Now().UnixNano()), msgs)
	if err != nil {
		return fmt.Errorf("feed: publish %d..%d: %w", first, last, err)
	}
	if ack.Count != len(msgs) {
		return errors.New("feed: batch acknowledged with a different count")
	}
	f.pos = last
	f.setPos()
	f.recovered()
	if f.cfg.Metrics != nil {
		f.cfg.Metrics.Published.Add(float64(len(msgs)))
		f.cfg.Metrics.Batches.Inc()
	}
	return nil
}

func (f *Feed) setPos() {
	f.published.Store(uint64(f.pos))
	if f.cfg.Metrics != nil {
		f.cfg.Metrics.Position.Set(float64(f.pos))
	}
}
