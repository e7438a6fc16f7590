package natsbus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cqhrss/subsidyledger/services/natsbus"
)

// liveUsers are the users of the live-subject tests: two reporting users
// and two sources.
var liveUsers = []natsbus.User{
	{Name: "reporter", Password: "r", Role: natsbus.RoleReporting},
	{Name: "warehouse", Password: "w", Role: natsbus.RoleReporting},
	{Name: "enrolment-svc", Password: "e", Role: "enrolment"},
	{Name: "payment-svc", Password: "p", Role: "payment"},
}

// startWithUsers starts the embedded server with liveUsers (on a random
// port) and its streams as ledgerd makes them.
func startWithUsers(t *testing.T, ctx context.Context) ledgerConn {
	t.Helper()
	o, err := startLedgerServer(t, natsbus.ServerConfig{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Subjects: natsbus.DefaultSubjects, Users: liveUsers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.close)
	if _, err := natsbus.EnsureStreams(ctx, o.js, natsbus.DefaultSubjects, o.streamOptions()); err != nil {
		t.Fatal(err)
	}
	return o
}

// connectAs connects user of liveUsers over TCP with its own inbox prefix.
func connectAs(t *testing.T, o ledgerConn, user string) *nats.Conn {
	t.Helper()
	for _, u := range liveUsers {
		if u.Name == user {
			nc, err := nats.Connect(o.srv.ClientURL(), nats.UserInfo(u.Name, u.Password), nats.CustomInboxPrefix(natsbus.InboxPrefix(u.Name)))
			if err != nil {
				t.Fatalf("%s: %v", user, err)
			}
			t.Cleanup(nc.Close)
			return nc
		}
	}
	t.Fatalf("no user %s", user)
	return nil
}

// publishFeed publishes n feed events as ledgerd does (an atomic batch in
// LEDGER, stored by SUBSIDY_FEED in FEED).
func publishFeed(t *testing.T, ctx context.Context, o ledgerConn, id string, n int) {
	t.Helper()
	var msgs []*nats.Msg
	for i := range n {
		m := nats.NewMsg(natsbus.DefaultSubjects.Feed("trainee", "Enrolled"))
		m.Data = []byte(fmt.Sprint(i))
		m.Header.Set(natsbus.HeaderPosition, fmt.Sprint(i+1))
		msgs = append(msgs, m)
	}
	if _, err := natsbus.PublishAtomic(ctx, o.nc, id, msgs); err != nil {
		t.Fatal(err)
	}
}

func feedMsgs(t *testing.T, ctx context.Context, o ledgerConn) uint64 {
	t.Helper()
	st, err := o.feed.Stream(ctx, natsbus.FeedStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// quiet: nothing arrives on sub within d.
func quiet(t *testing.T, sub *nats.Subscription, d time.Duration, what string) {
	t.Helper()
	if m, err := sub.NextMsg(d); err == nil {
		t.Errorf("%s: a message on %s (%s, headers %v)", what, m.Subject, m.Data, m.Header)
	}
}

// TestReportingUsersHearTheLiveFeed (found by review): with users, a
// reporting user subscribed to subsidy.feed.> receives the events ledgerd
// publishes there, as it receives subsidy.projection.>, and SUBSIDY_FEED
// stores each event once.
func TestReportingUsersHearTheLiveFeed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := startWithUsers(t, ctx)
	subs, changes := map[string]*nats.Subscription{}, map[string]*nats.Subscription{}
	for _, user := range []string{"reporter", "warehouse"} {
		nc := connectAs(t, o, user)
		sub, err := nc.SubscribeSync("subsidy.feed.>")
		if err != nil {
			t.Fatal(err)
		}
		if changes[user], err = nc.SubscribeSync("subsidy.projection.>"); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		subs[user] = sub
	}
	time.Sleep(200 * time.Millisecond) // the imports' interest
	publishFeed(t, ctx, o, "live-1", 3)
	if err := o.nc.Publish("subsidy.projection.trainee.changed", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for user, sub := range subs {
		for i := range 3 {
			m, err := sub.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatalf("%s: live feed event %d: %v", user, i+1, err)
			}
			if m.Subject != "subsidy.feed.trainee.Enrolled" || m.Header.Get(natsbus.HeaderPosition) != fmt.Sprint(i+1) {
				t.Errorf("%s: event %d on %s at position %q", user, i+1, m.Subject, m.Header.Get(natsbus.HeaderPosition))
			}
		}
		quiet(t, sub, 300*time.Millisecond, user+" after the batch")
		if m, err := changes[user].NextMsg(5 * time.Second); err != nil || m.Subject != "subsidy.projection.trainee.changed" {
			t.Errorf("%s: the projections' change: %v", user, err)
		}
	}
	if n := feedMsgs(t, ctx, o); n != 3 {
		t.Errorf("SUBSIDY_FEED holds %d messages; want 3 (each once)", n)
	}
}
