package natsbus_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqhrss/subsidyledger/services/natsbus"
)

// ledgerConn is an embedded server started as ledgerd starts it (with
// users: the accounts) and ledgerd's own connection to it: js for the
// ledger's streams, feed for SUBSIDY_FEED.
type ledgerConn struct {
	srv      *natsbus.Server
	nc       *nats.Conn
	js, feed jetstream.JetStream
}

func startLedgerServer(t *testing.T, cfg natsbus.ServerConfig) (ledgerConn, error) {
	t.Helper()
	srv, err := natsbus.StartServer(cfg)
	if err != nil {
		return ledgerConn{}, err
	}
	opts := []nats.Option{nats.InProcessServer(srv.InProcess()), nats.CustomInboxPrefix(natsbus.LedgerInbox)}
	if u, p := srv.Credentials(); u != "" {
		opts = append(opts, nats.UserInfo(u, p))
	}
	nc, err := nats.Connect(srv.ClientURL(), opts...)
	if err != nil {
		srv.Shutdown()
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	feed := js
	if p := srv.FeedAPIPrefix(); p != "" {
		feed, _ = jetstream.NewWithAPIPrefix(nc, p)
	}
	return ledgerConn{srv, nc, js, feed}, nil
}

func (c ledgerConn) close() { c.nc.Close(); c.srv.Shutdown() }

// streamOptions are the default stream options as ledgerd sets them for
// this server.
func (c ledgerConn) streamOptions() natsbus.StreamOptions {
	so := natsbus.DefaultStreamOptions
	so.FeedJetStream = c.feed
	if c.srv.FeedAPIPrefix() != "" {
		so.FeedConsumers, so.FeedConsumersOnly = c.srv.ReportingUsers(), true
	}
	return so
}

// fetchAcked fetches n messages from c and acknowledges each (waiting for
// the server's confirmation).
func fetchAcked(t *testing.T, ctx context.Context, c jetstream.Consumer, n int) {
	t.Helper()
	b, err := c.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range b.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStreamsMoveBetweenAccounts: a data directory written in demo mode
// (one account) keeps its streams, their messages and the intake's
// consumer position when the embedded server starts with users (the
// streams in LEDGER, the feed in FEED), and again when it goes back.
func TestStreamsMoveBetweenAccounts(t *testing.T) {
	dir := t.TempDir()
	subj := natsbus.DefaultSubjects
	users := []natsbus.User{{Name: "enrolment-svc", Password: "x", Role: "enrolment"}}
	start := func(withUsers bool) ledgerConn {
		t.Helper()
		cfg := natsbus.ServerConfig{Addr: "127.0.0.1:0", DataDir: dir, Subjects: subj}
		if withUsers {
			cfg.Users = users
		}
		o, err := startLedgerServer(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if withUsers != (o.srv.FeedAPIPrefix() == natsbus.FeedAPIPrefix) {
			t.Fatalf("users %v: feed API prefix %q", withUsers, o.srv.FeedAPIPrefix())
		}
		return o
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ensure := func(o ledgerConn) jetstream.Consumer {
		t.Helper()
		cons, err := natsbus.EnsureStreams(ctx, o.js, subj, o.streamOptions())
		if err != nil {
			t.Fatal(err)
		}
		return cons
	}
	counts := func(o ledgerConn) (in, feed uint64, ackFloor uint64) {
		t.Helper()
		for _, s := range []struct {
			js   jetstream.JetStream
			name string
			n    *uint64
		}{{o.js, natsbus.InboundStream, &in}, {o.feed, natsbus.FeedStream, &feed}} {
			st, err := s.js.Stream(ctx, s.name)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			info, err := st.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			*s.n = info.State.Msgs
		}
		c, err := o.js.Consumer(ctx, natsbus.InboundStream, natsbus.LedgerConsumer)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return in, feed, info.AckFloor.Stream
	}

	o := start(false)
	cons := ensure(o)
	for i := range 10 {
		if _, err := o.js.Publish(ctx, subj.Inbound("enrolment", "enrolled"), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	var feed []*nats.Msg
	for i := range 3 {
		feed = append(feed, &nats.Msg{Subject: subj.Feed("trainee", "Enrolled"), Data: []byte(fmt.Sprint(i))})
	}
	if _, err := natsbus.PublishAtomic(ctx, o.nc, "feed-1", feed); err != nil {
		t.Fatal(err)
	}
	fetchAcked(t, ctx, cons, 4)
	want := [3]uint64{}
	want[0], want[1], want[2] = counts(o)
	if want != [3]uint64{10, 3, 4} {
		t.Fatalf("demo mode: inbound, feed, ack floor %v; want [10 3 4]", want)
	}
	o.close()

	for _, withUsers := range []bool{true, false, true} {
		o := start(withUsers)
		ensure(o)
		var got [3]uint64
		got[0], got[1], got[2] = counts(o)
		if got != want {
			t.Errorf("users %v: inbound, feed, ack floor %v; want %v (as before)", withUsers, got, want)
		}
		o.close()
	}
}

// TestEncryptedStreamsStayPut: streams encrypted with a JetStream key (a
// --nats-config file) are not moved between accounts, whose names their
// keys derive from: the server refuses to start, and the streams are
// intact when it starts as before.
func TestEncryptedStreamsStayPut(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(conf, []byte(`jetstream { key: "an encryption key for ledger tests" }`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := func(withUsers bool, publish int) (uint64, error) {
		cfg := natsbus.ServerConfig{Addr: "127.0.0.1:0", DataDir: dir, ConfigFile: conf}
		if withUsers {
			cfg.Users = []natsbus.User{{Name: "enrolment-svc", Password: "x", Role: "enrolment"}}
		}
		o, err := startLedgerServer(t, cfg)
		if err != nil {
			return 0, err
		}
		defer o.close()
		js := o.js
		if _, err := natsbus.EnsureStreams(ctx, js, natsbus.DefaultSubjects, o.streamOptions()); err != nil {
			t.Fatal(err)
		}
		for i := range publish {
			if _, err := js.Publish(ctx, natsbus.DefaultSubjects.Inbound("enrolment", "enrolled"), []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		st, err := js.Stream(ctx, natsbus.InboundStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs, nil
	}
	if n, err := run(false, 5); err != nil || n != 5 {
		t.Fatalf("demo mode, encrypted: %d messages, %v", n, err)
	}
	if _, err := run(true, 0); !errors.Is(err, natsbus.ErrEncryptedStreams) {
		t.Fatalf("with users, the encrypted streams of demo mode: %v; want ErrEncryptedStreams", err)
	}
	if n, err := run(false, 0); err != nil || n != 5 {
		t.Fatalf("demo mode again: %d messages, %v; want the 5 kept", n, err)
	}
}

// TestFeedKeepsOnlyTheReportingUsersConsumers (found by review): the feed's
// stream moves into its account with the consumers anyone could make
// before there were accounts. A push consumer delivering to another
// user's pull subject (it took warehouse's messages) and a push consumer
// under a reporting user's name (ledgerd failed to start) are deleted; a
// reporting user's consumer of another shape is made anew where it had
// read to; any other pull consumer stays.
func TestFeedKeepsOnlyTheReportingUsersConsumers(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	users := []natsbus.User{{Name: "reporter", Password: "r", Role: natsbus.RoleReporting}, {Name: "warehouse", Password: "w", Role: natsbus.RoleReporting}}
	start := func(withUsers bool) (*natsbus.Server, *nats.Conn, jetstream.JetStream) {
		t.Helper()
		cfg := natsbus.ServerConfig{Addr: "127.0.0.1:0", DataDir: dir, Subjects: natsbus.DefaultSubjects}
		if withUsers {
			cfg.Users = users
		}
		o, err := startLedgerServer(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := natsbus.EnsureStreams(ctx, o.js, natsbus.DefaultSubjects, o.streamOptions()); err != nil {
			t.Fatalf("users %v: %v", withUsers, err)
		}
		return o.srv, o.nc, o.feed
	}
	publish := func(nc *nats.Conn, id string, n int) {
		t.Helper()
		var msgs []*nats.Msg
		for range n {
			msgs = append(msgs, &nats.Msg{Subject: natsbus.DefaultSubjects.Feed("trainee", "Enrolled"), Data: []byte("x")})
		}
		if _, err := natsbus.PublishAtomic(ctx, nc, id, msgs); err != nil {
			t.Fatal(err)
		}
	}

	// One account: anyone made these.
	srv, nc, feed := start(false)
	publish(nc, "f1", 3)
	// reporter's push consumer delivers to "somewhere"; it acknowledges the
	// first event.
	pushed, err := nc.SubscribeSync("somewhere")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []jetstream.ConsumerConfig{
		{Durable: "reporter", DeliverSubject: "somewhere", AckPolicy: jetstream.AckExplicitPolicy},
		{Durable: "warehouse", FilterSubject: "subsidy.feed.trainee.>", AckPolicy: jetstream.AckExplicitPolicy},
		{Durable: "ops-check", AckPolicy: jetstream.AckExplicitPolicy},
	} {
		if _, err := feed.CreateOrUpdateConsumer(ctx, natsbus.FeedStream, c); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := pushed.NextMsg(5 * time.Second); err != nil {
		t.Fatal(err)
	} else if _, err := nc.Request(m.Reply, []byte("+ACK"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	_ = pushed.Unsubscribe()
	wh, _ := feed.Consumer(ctx, natsbus.FeedStream, "warehouse")
	fetchAcked(t, ctx, wh, 2)
	if _, err := feed.CreateOrUpdateConsumer(ctx, natsbus.FeedStream, jetstream.ConsumerConfig{
		Durable: "sneaky", DeliverSubject: "$JS.API.CONSUMER.MSG.NEXT." + natsbus.FeedStream + ".warehouse", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	srv.Shutdown()

	srv, nc, feed = start(true)
	defer srv.Shutdown()
	defer nc.Close()
	publish(nc, "f2", 5)
	time.Sleep(time.Second) // anything left to deliver would have
	for _, name := range []string{"sneaky"} {
		if _, err := feed.Consumer(ctx, natsbus.FeedStream, name); err == nil {
			t.Errorf("push consumer %s kept", name)
		}
	}
	// The operators' pull consumer stays, and they (in LEDGER) acknowledge
	// what it delivers.
	if oc, err := feed.Consumer(ctx, natsbus.FeedStream, "ops-check"); err != nil {
		t.Errorf("the pull consumer ops-check: %v", err)
	} else if mb, err := oc.Fetch(1, jetstream.FetchMaxWait(5*time.Second)); err != nil {
		t.Fatal(err)
	} else {
		for m := range mb.Messages() {
			if err := m.DoubleAck(ctx); err != nil {
				t.Errorf("an operator acknowledging a feed message: %v", err)
			}
		}
	}
	// reporter's push consumer had acknowledged 1: made anew from 2;
	// warehouse's (filtered) is changed in place where it had read to
	// (acknowledged 2; sequence 3 went to sneaky's pull request and comes
	// again after the ack wait).
	check := func(when string) {
		t.Helper()
		for name, floor := range map[string]uint64{"reporter": 1, "warehouse": 2} {
			c, err := feed.Consumer(ctx, natsbus.FeedStream, name)
			if err != nil {
				t.Fatalf("%s: %s: %v", when, name, err)
			}
			info := c.CachedInfo()
			if cfg := info.Config; cfg.DeliverSubject != "" || cfg.FilterSubject != "" {
				t.Errorf("%s: %s's consumer: deliver subject %q, filter %q; want a pull consumer of everything", when, name, cfg.DeliverSubject, cfg.FilterSubject)
			}
			if info.AckFloor.Stream != floor {
				t.Errorf("%s: %s's consumer acknowledged up to %d; want %d (where it had read to)", when, name, info.AckFloor.Stream, floor)
			}
		}
	}
	check("after the move")
	// A second start (or one retried after a lost reply) changes nothing.
	nc.Close()
	srv.Shutdown()
	srv, nc, feed = start(true)
	defer srv.Shutdown()
	defer nc.Close()
	check("after another start")
	c, err := feed.Consumer(ctx, natsbus.FeedStream, "reporter")
	if err != nil {
		t.Fatal(err)
	}
	mb, err := c.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range mb.Messages() {
		if md, _ := m.Metadata(); md.Sequence.Stream != 2 {
			t.Errorf("reporter's consumer delivered sequence %d first; want 2", md.Sequence.Stream)
		}
	}
}
