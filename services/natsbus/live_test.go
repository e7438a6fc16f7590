package natsbus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqhrss/subsidyledger/services/natsbus"
)

// liveUsers are the users of the live-subject tests: two reporting users
// and two sources.
var liveUsers = []natsbus.User{
	{Name: "reporter", Password: "r", Role: natsbus.RoleReporting},
	{Name: "ware-house_2", Password: "w", Role: natsbus.RoleReporting},
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
	for _, user := range []string{"reporter", "ware-house_2"} {
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

// TestReportingRepliesStayWithTheRequester (found by review): a reporting
// user's pull or reset request for its own consumer, with a live subject
// as its reply subject, delivers nothing to another reporting user
// listening there (JetStream would replay stored events onto the live
// feed, with their real positions).
func TestReportingRepliesStayWithTheRequester(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := startWithUsers(t, ctx)
	publishFeed(t, ctx, o, "stored-1", 3)
	wh := connectAs(t, o, "ware-house_2")
	heard := make(chan *nats.Msg, 64)
	for _, s := range []string{"subsidy.feed.>", "subsidy.projection.>"} {
		if _, err := wh.ChanSubscribe(s, heard); err != nil {
			t.Fatal(err)
		}
	}
	if err := wh.Flush(); err != nil {
		t.Fatal(err)
	}
	rep := connectAs(t, o, "reporter")
	api := natsbus.FeedAPIPrefix + ".CONSUMER."
	for _, r := range []struct{ subject, data, reply string }{
		{api + "MSG.NEXT." + natsbus.FeedStream + ".reporter", `{"batch": 2}`, "subsidy.feed.trainee.Enrolled"},
		{api + "RESET." + natsbus.FeedStream + ".reporter", `{"seq": 1}`, "subsidy.feed.trainee.Enrolled"},
		{api + "MSG.NEXT." + natsbus.FeedStream + ".reporter", `{"batch": 1}`, "subsidy.projection.trainee.x"},
		{api + "INFO." + natsbus.FeedStream + ".reporter", ``, "subsidy.feed.trainee.Info"},
	} {
		if err := rep.PublishRequest(r.subject, r.reply, []byte(r.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := rep.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-heard:
		t.Errorf("warehouse heard %s on %s (position %q), sent as another reporting user's reply", m.Data, m.Subject, m.Header.Get(natsbus.HeaderPosition))
	case <-time.After(2 * time.Second):
	}
	// The reporting user still reads its consumer as before.
	repFeed, _ := jetstream.NewWithAPIPrefix(rep, natsbus.FeedAPIPrefix)
	c, err := repFeed.Consumer(ctx, natsbus.FeedStream, "reporter")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(1, jetstream.FetchMaxWait(5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

// TestSourceRepliesStayWithTheSource (found by review): a source's fact
// or personal data published with another source's outcome subject as its
// reply subject does not put JetStream's acknowledgement on that subject,
// where the other source listens (each source has an account of its own).
func TestSourceRepliesStayWithTheSource(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := startWithUsers(t, ctx)
	pay := connectAs(t, o, "payment-svc")
	heard, err := pay.SubscribeSync("subsidy.outcome.payment.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := pay.Flush(); err != nil {
		t.Fatal(err)
	}
	enrol := connectAs(t, o, "enrolment-svc")
	for _, subject := range []string{"subsidy.in.enrolment.trainee_registered", "subsidy.pii.enrolment"} {
		m := nats.NewMsg(subject)
		m.Reply, m.Data = "subsidy.outcome.payment.payment_settled", []byte("{}")
		if err := enrol.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := enrol.Flush(); err != nil {
		t.Fatal(err)
	}
	quiet(t, heard, 2*time.Second, "the payment service's outcomes")
	st, err := o.js.Stream(ctx, natsbus.InboundStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Fatalf("SUBSIDY_IN: %v, %+v; want the enrolment fact stored", err, info)
	}
	// Its own facts are still acknowledged to it.
	js, _ := jetstream.New(enrol)
	if _, err := js.Publish(ctx, "subsidy.in.enrolment.trainee_registered", []byte("{}")); err != nil {
		t.Fatal(err)
	}
}
