package feed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/codec"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/internal/logbuf"
	"github.com/cqhrss/subsidyledger/services/internal/natstest"
	"github.com/cqhrss/subsidyledger/services/natsbus"
)

// rig is a bolt store and an embedded NATS server with the ledger's streams.
func rig(t *testing.T) (*bolt.Store, *nats.Conn, jetstream.JetStream) {
	return rigWith(t, natsbus.DefaultStreamOptions)
}

func rigWith(t *testing.T, o natsbus.StreamOptions) (*bolt.Store, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	_, nc, js := natstest.Embedded(t)
	if _, err := natsbus.EnsureStreams(context.Background(), js, natsbus.DefaultSubjects, o); err != nil {
		t.Fatal(err)
	}
	s, err := bolt.Open(filepath.Join(t.TempDir(), "ledger.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, nc, js
}

func appendOne(t *testing.T, s events.Store, i int) {
	t.Helper()
	e := events.EventData{ID: events.DeriveID("feed-test", fmt.Sprint(i)), Type: "subsidy.v1.Test", Data: []byte{byte(i)}}
	if _, err := s.Append(context.Background(), fmt.Sprintf("test-%d", i), events.NoStream, e); err != nil {
		t.Fatal(err)
	}
}

// With a linger, events that commit one after another go out in one
// atomic batch, in order, without gaps; without it, each commit is its own.
func TestLingerGathersABatch(t *testing.T) {
	for _, tc := range []struct {
		linger  time.Duration
		batches float64
	}{{time.Second, 1}, {0, 5}} {
		t.Run(fmt.Sprint(tc.linger), func(t *testing.T) {
			s, nc, js := rig(t)
			m := NewMetrics(prometheus.NewRegistry())
			f := New(Config{Store: s, Conn: nc, JetStream: js, BatchSize: 100, Linger: tc.linger, Metrics: m})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- f.Run(ctx) }()
			defer func() { cancel(); <-done }()
			for i := range 5 {
				appendOne(t, s, i)
				if tc.linger == 0 { // let each go out alone
					waitFor(t, func() bool { return testutil.ToFloat64(m.Published) == float64(i+1) })
				}
			}
			waitFor(t, func() bool { return testutil.ToFloat64(m.Published) == 5 })
			if got := testutil.ToFloat64(m.Batches); got != tc.batches {
				t.Errorf("%v linger: %v atomic batches for 5 events; want %v", tc.linger, got, tc.batches)
			}
			st, _ := js.Stream(context.Background(), natsbus.FeedStream)
			for seq := uint64(1); seq <= 5; seq++ {
				msg, err := st.GetMsg(context.Background(), seq)
				if err != nil {
					t.Fatal(err)
				}
				if got := msg.Header.Get(natsbus.HeaderPosition); got != fmt.Sprint(seq) {
					t.Errorf("feed message %d has position %s; want %d", seq, got, seq)
				}
				id := events.DeriveID("feed-test", fmt.Sprint(seq-1))
				for k, want := range map[string]string{
					natsbus.HeaderMsgID: fmt.Sprintf("pos-%d", seq), natsbus.HeaderStream: fmt.Sprintf("test-%d", seq-1),
					natsbus.HeaderRevision: "0", natsbus.HeaderType: "subsidy.v1.Test", natsbus.HeaderEventID: id.String(),
					natsbus.HeaderContentType: natsbus.ContentProtobuf,
				} {
					if got := msg.Header.Get(k); got != want {
						t.Errorf("feed message %d: header %s = %q; want %q", seq, k, got, want)
					}
				}
				if len(msg.Header.Get("Ledger-Hash")) != 64 || len(msg.Header.Get("Ledger-Prev-Hash")) != 64 {
					t.Errorf("feed message %d: hash headers %q, %q", seq, msg.Header.Get("Ledger-Hash"), msg.Header.Get("Ledger-Prev-Hash"))
				}
			}
		})
	}
}

// With a limit the feed's stream keeps only the newest events, and a
// restarted feed still resumes after the last one it holds: no repeat, no
// gap.
func TestLimitKeepsTheNewestAndResumes(t *testing.T) {
	o := natsbus.DefaultStreamOptions
	o.FeedMaxEvents = 40
	s, nc, js := rigWith(t, o)
	m := NewMetrics(prometheus.NewRegistry())
	run := func(upTo int) {
		t.Helper()
		runTo(t, New(Config{Store: s, Conn: nc, JetStream: js, BatchSize: 25, Metrics: m}), upTo)
	}
	for i := range 100 {
		appendOne(t, s, i)
	}
	run(100)
	for i := 100; i < 130; i++ {
		appendOne(t, s, i)
	}
	run(130) // a second feed: resumes after position 100
	st, err := js.Stream(context.Background(), natsbus.FeedStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.Published); got != 130 {
		t.Errorf("%v events published; want each of the 130 once", got)
	}
	if info.Config.MaxMsgs != 40 || info.Config.MaxBytes != -1 || info.State.Msgs != 40 || info.State.FirstSeq != 91 || info.State.LastSeq != 130 {
		t.Fatalf("feed stream: max %d msgs, %d bytes; holds %d messages, %d..%d; want max 40, unlimited bytes; 40 held, 91..130",
			info.Config.MaxMsgs, info.Config.MaxBytes, info.State.Msgs, info.State.FirstSeq, info.State.LastSeq)
	}
	for seq := uint64(91); seq <= 130; seq++ {
		msg, err := st.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if got := msg.Header.Get(natsbus.HeaderPosition); got != fmt.Sprint(seq) {
			t.Fatalf("feed message %d has position %s; want %d", seq, got, seq)
		}
	}
}

// runTo runs f until it has published up to position upTo, then stops it.
func runTo(t *testing.T, f *Feed, upTo int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	waitFor(t, func() bool { return f.Position() == events.Position(upTo) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A failure that is only the stop's own (the context ended) is not logged
// as a retry and waits for nothing.
func TestWaitAtAStopLogsNothing(t *testing.T) {
	var logs bytes.Buffer
	f := New(Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	var backoff time.Duration
	if !f.wait(context.Background(), &backoff, errors.New("server gone")) || !strings.Contains(logs.String(), "feed: retrying") {
		t.Fatalf("wait while running = false or logged %q; want a retry, logged", logs.String())
	}
	logs.Reset()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if f.wait(ctx, &backoff, context.Canceled) || logs.Len() > 0 {
		t.Errorf("wait at a stop = true or logged %q; want false and nothing logged", logs.String())
	}
}

// TestDivergedStoreStopsTheFeed: a feed whose stream holds events the store
// does not (the store replaced by an older copy, then written on) publishes
// nothing, rather than skipping the store's events up to the stream's last
// position, and says why; once the stream is deleted and created again it
// republishes the store's log from the start.
func TestDivergedStoreStopsTheFeed(t *testing.T) {
	older, nc, js := diverged(t)
	var logs logbuf.Buffer
	f := New(Config{Store: older, Conn: nc, JetStream: js, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	time.Sleep(300 * time.Millisecond)
	cancel()
	<-done
	if p, err := LastPublished(context.Background(), js); err != nil || p != 20 {
		t.Errorf("feed stream's last position %d, %v; want 20 (nothing published from the diverged store)", p, err)
	}
	if !strings.Contains(logs.String(), "the feed stream's last event is not the store's") {
		t.Errorf("the feed did not say why it stopped: %s", logs.String())
	}
	// An operator deletes the stream; ledgerd creates it again at start.
	if err := js.DeleteStream(context.Background(), natsbus.FeedStream); err != nil {
		t.Fatal(err)
	}
	if _, err := natsbus.EnsureStreams(context.Background(), js, natsbus.DefaultSubjects, natsbus.DefaultStreamOptions); err != nil {
		t.Fatal(err)
	}
	runTo(t, New(Config{Store: older, Conn: nc, JetStream: js}), 25)
}

// diverged returns a store whose feed stream (on nc, js) has diverged from
// it: the stream holds positions 1..20 of another store, and this one is an
// older copy of that store (10 of its events) then written on (15 new ones,
// head 25).
func diverged(t *testing.T) (*bolt.Store, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	s, nc, js := rig(t)
	for i := range 20 {
		appendOne(t, s, i)
	}
	runTo(t, New(Config{Store: s, Conn: nc, JetStream: js}), 20)
	older, err := bolt.Open(filepath.Join(t.TempDir(), "older.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { older.Close() })
	for i := range 10 {
		appendOne(t, older, i)
	}
	for i := 100; i < 115; i++ {
		appendOne(t, older, i)
	}
	return older, nc, js
}

// A diverged feed is a problem at once, however long ProblemAfter is: it
// lasts until an operator acts. Once its stream is deleted and created
// again it republishes the store's log and is no longer a problem.
func TestDivergedFeedIsAProblemAtOnce(t *testing.T) {
	older, nc, js := diverged(t)
	f := New(Config{Store: older, Conn: nc, JetStream: js, ProblemAfter: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, func() bool { return f.Problem() != nil })
	err := f.Problem()
	var pe *ProblemError
	if !errors.Is(err, ErrDiverged) || !errors.As(err, &pe) {
		t.Fatalf("Problem() = %v; want a *ProblemError wrapping ErrDiverged", err)
	}
	for _, want := range []string{"stopped since ", "the feed stream's last event is not the store's", "position 20", "delete the stream SUBSIDY_FEED"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Problem() = %q; want it to say %q", err, want)
		}
	}
	if pe.Since.IsZero() || time.Since(pe.Since) > time.Minute {
		t.Errorf("Problem() says the feed failed since %v", pe.Since)
	}
	// An operator deletes the stream, and it is created again.
	if err := js.DeleteStream(context.Background(), natsbus.FeedStream); err != nil {
		t.Fatal(err)
	}
	if _, err := natsbus.EnsureStreams(context.Background(), js, natsbus.DefaultSubjects, natsbus.DefaultStreamOptions); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return f.Position() == 25 && f.Problem() == nil })
}

// A feed that publishes, and then waits caught up with the store, has no
// problem.
func TestHealthyFeedHasNoProblem(t *testing.T) {
	s, nc, js := rig(t)
	f := New(Config{Store: s, Conn: nc, JetStream: js, ProblemAfter: time.Nanosecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for i := range 10 {
		appendOne(t, s, i)
		if err := f.Problem(); err != nil {
			t.Fatalf("Problem() of a healthy feed = %v; want nil", err)
		}
	}
	waitFor(t, func() bool { return f.Position() == 10 })
	time.Sleep(100 * time.Millisecond) // caught up, waiting for a commit
	if err := f.Problem(); err != nil {
		t.Fatalf("Problem() of a healthy, caught-up feed = %v; want nil", err)
	}
}

// A transient failure is a problem only once it has lasted ProblemAfter
// (30s by default); a success ends it.
func TestTransientFailureIsAProblemOnceItLasts(t *testing.T) {
	if got := New(Config{}).cfg.ProblemAfter; got != 30*time.Second {
		t.Errorf("default ProblemAfter %v; want 30s", got)
	}
	f := New(Config{ProblemAfter: time.Minute})
	var backoff time.Duration
	first := errors.New("nats: timeout")
	if !f.wait(context.Background(), &backoff, first) {
		t.Fatal("wait while running = false")
	}
	if err := f.Problem(); err != nil {
		t.Fatalf("Problem() just after a failure = %v; want nil until it has lasted a minute", err)
	}
	// The same run of failures a minute later: it dates from its first.
	p := f.failing.Load()
	if p == nil {
		t.Fatal("wait recorded no failure")
	}
	since := p.since.Add(-time.Minute)
	f.failing.Store(&failure{err: first, since: since})
	latest := errors.New("feed: stream info: nats: no responders available for request")
	f.wait(context.Background(), &backoff, latest)
	err := f.Problem()
	var pe *ProblemError
	if !errors.As(err, &pe) || pe.Err != latest || !pe.Since.Equal(since) || pe.Lasted < time.Minute || errors.Is(err, ErrDiverged) {
		t.Fatalf("Problem() after a minute of failures = %#v; want the latest failure, since the first, not ErrDiverged", err)
	}
	if want := "(1m0s): stream info: nats: no responders"; !strings.Contains(err.Error(), want) {
		t.Errorf("Problem() = %q; want it to say %q", err, want)
	}
	f.recovered()
	if err := f.Problem(); err != nil {
		t.Fatalf("Problem() after a success = %v; want nil", err)
	}
}

// Through Run: a feed whose stream does not exist fails, says so once the
// failure has lasted ProblemAfter, and is no longer a problem once the
// stream exists and it has caught up.
func TestMissingStreamIsAProblemUntilItExists(t *testing.T) {
	_, nc, js := natstest.Embedded(t) // no streams yet
	s, err := bolt.Open(filepath.Join(t.TempDir(), "ledger.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	appendOne(t, s, 1)
	f := New(Config{Store: s, Conn: nc, JetStream: js, ProblemAfter: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, func() bool { return f.Problem() != nil })
	if err := f.Problem(); errors.Is(err, ErrDiverged) || !strings.Contains(err.Error(), "failing since ") {
		t.Errorf("Problem() = %v; want a failure, not ErrDiverged", err)
	}
	if _, err := natsbus.EnsureStreams(context.Background(), js, natsbus.DefaultSubjects, natsbus.DefaultStreamOptions); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return f.Position() == 1 && f.Problem() == nil })
}

// A publish that keeps failing is a problem even though each resync before
// it works: only a publish, or being caught up, ends a run of failures.
// (Here the feed publishes on subjects no stream holds. ProblemAfter is
// longer than the longest pause between retries, 5s, so that a run ended
// at each resync would never last it.)
func TestPublishFailingAfterResyncsIsAProblem(t *testing.T) {
	s, nc, js := rig(t)
	appendOne(t, s, 1)
	f := New(Config{Store: s, Conn: nc, JetStream: js, Subjects: natsbus.Subjects{Prefix: "elsewhere"}, ProblemAfter: 6 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, func() bool { return f.Problem() != nil })
	if err := f.Problem(); errors.Is(err, ErrDiverged) || !strings.Contains(err.Error(), "publish 1..1") {
		t.Errorf("Problem() = %v; want the failed publish", err)
	}
}

// publish reuses its messages and headers from one batch to the next: a
// header of an earlier batch's message (a rule set, the batch's commit)
// must not stay on a later batch's message at the same index.
func TestReusedHeadersCarryNothingOver(t *testing.T) {
	s, nc, js := rig(t)
	m := NewMetrics(prometheus.NewRegistry())
	f := New(Config{Store: s, Conn: nc, JetStream: js, BatchSize: 3, Metrics: m})
	occurred := time.Date(2025, 3, 1, 8, 0, 0, 5, time.UTC)
	for i := range 5 {
		env := &subsidyv1.Envelope{Source: fmt.Sprint("source-", i), OccurredAt: timestamppb.New(occurred)}
		if i < 3 {
			env.RuleSetVersion = fmt.Sprint("rules-", i)
		}
		id := events.DeriveID("feed-test", fmt.Sprint(i))
		e, err := codec.Encode(id, fmt.Sprintf("test-%d", i), env, &subsidyv1.Enrolled{EnrolmentId: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(context.Background(), fmt.Sprintf("test-%d", i), events.NoStream, e); err != nil {
			t.Fatal(err)
		}
	}
	runTo(t, f, 5)
	if got := testutil.ToFloat64(m.Batches); got != 2 {
		t.Fatalf("%v batches; want 2 (3 events, then 2)", got)
	}
	st, _ := js.Stream(context.Background(), natsbus.FeedStream)
	for seq := uint64(1); seq <= 5; seq++ {
		msg, err := st.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		i := seq - 1
		want := map[string]string{
			natsbus.HeaderMsgID: fmt.Sprintf("pos-%d", seq), natsbus.HeaderPosition: fmt.Sprint(seq),
			natsbus.HeaderStream: fmt.Sprintf("test-%d", i), natsbus.HeaderRevision: "0",
			natsbus.HeaderType: "subsidy.v1.Enrolled", natsbus.HeaderEventID: events.DeriveID("feed-test", fmt.Sprint(i)).String(),
			natsbus.HeaderContentType: natsbus.ContentProtobuf,
			"Ledger-Occurred-At":      occurred.Format(time.RFC3339Nano), "Ledger-Source": fmt.Sprint("source-", i),
		}
		if i < 3 {
			want["Ledger-Rule-Set"] = fmt.Sprint("rules-", i)
		}
		got := map[string]string{}
		for k, v := range msg.Header {
			if len(v) != 1 {
				t.Errorf("message %d: header %s has %d values %q", seq, k, len(v), v)
			}
			if k != "Ledger-Hash" && k != "Ledger-Prev-Hash" && !strings.HasPrefix(k, "Nats-Batch-") {
				got[k] = v[0]
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("message %d: headers %v; want %v", seq, got, want)
		}
	}
}
