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

// TestStreamsMoveBetweenAccounts: a data directory written in demo mode
// (one account) keeps its streams, their messages and the intake's
// consumer position when the embedded server starts with users (the
// streams in LEDGER, the feed in FEED), and again when it goes back.
func TestStreamsMoveBetweenAccounts(t *testing.T) {
	dir := t.TempDir()
	subj := natsbus.DefaultSubjects
	users := []natsbus.User{{Name: "enrolment-svc", Password: "x", Role: "enrolment"}}
	type open struct {
		srv      *natsbus.Server
		nc       *nats.Conn
		js, feed jetstream.JetStream
	}
	start := func(withUsers bool) open {
		t.Helper()
		cfg := natsbus.ServerConfig{Addr: "127.0.0.1:0", DataDir: dir, Subjects: subj}
		if withUsers {
			cfg.Users = users
		}
		srv, err := natsbus.StartServer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		opts := []nats.Option{nats.InProcessServer(srv.InProcess()), nats.CustomInboxPrefix(natsbus.LedgerInbox)}
		if u, p := srv.Credentials(); u != "" {
			opts = append(opts, nats.UserInfo(u, p))
		}
		nc, err := nats.Connect(srv.ClientURL(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		js, _ := jetstream.New(nc)
		feed := js
		if p := srv.FeedAPIPrefix(); p != "" {
			feed, _ = jetstream.NewWithAPIPrefix(nc, p)
		}
		if withUsers != (srv.FeedAPIPrefix() == natsbus.FeedAPIPrefix) {
			t.Fatalf("users %v: feed API prefix %q", withUsers, srv.FeedAPIPrefix())
		}
		return open{srv, nc, js, feed}
	}
	stop := func(o open) { o.nc.Close(); o.srv.Shutdown() }
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ensure := func(o open) jetstream.Consumer {
		t.Helper()
		so := natsbus.DefaultStreamOptions
		so.FeedJetStream = o.feed
		cons, err := natsbus.EnsureStreams(ctx, o.js, subj, so)
		if err != nil {
			t.Fatal(err)
		}
		return cons
	}
	counts := func(o open) (in, feed uint64, ackFloor uint64) {
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
	b, err := cons.Fetch(4, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range b.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want := [3]uint64{}
	want[0], want[1], want[2] = counts(o)
	if want != [3]uint64{10, 3, 4} {
		t.Fatalf("demo mode: inbound, feed, ack floor %v; want [10 3 4]", want)
	}
	stop(o)

	for _, withUsers := range []bool{true, false, true} {
		o := start(withUsers)
		ensure(o)
		var got [3]uint64
		got[0], got[1], got[2] = counts(o)
		if got != want {
			t.Errorf("users %v: inbound, feed, ack floor %v; want %v (as before)", withUsers, got, want)
		}
		stop(o)
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
		srv, err := natsbus.StartServer(cfg)
		if err != nil {
			return 0, err
		}
		defer srv.Shutdown()
		opts := []nats.Option{nats.InProcessServer(srv.InProcess()), nats.CustomInboxPrefix(natsbus.LedgerInbox)}
		if u, p := srv.Credentials(); u != "" {
			opts = append(opts, nats.UserInfo(u, p))
		}
		nc, err := nats.Connect(srv.ClientURL(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		so := natsbus.DefaultStreamOptions
		if p := srv.FeedAPIPrefix(); p != "" {
			so.FeedJetStream, _ = jetstream.NewWithAPIPrefix(nc, p)
		}
		if _, err := natsbus.EnsureStreams(ctx, js, natsbus.DefaultSubjects, so); err != nil {
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
