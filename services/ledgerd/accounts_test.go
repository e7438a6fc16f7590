package ledgerd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqhrss/subsidyledger/services/internal/natstest"
	"github.com/cqhrss/subsidyledger/services/natsbus"
)

// TestDeploymentAccounts runs ledgerd against a separate nats-server
// process configured with the deployments' accounts and users
// (deployments/nats/auth.conf), as compose and Kubernetes run it: ledgerd
// as user ledgerd with --feed-js-api-prefix. The simulated facts are
// published by the operator, one more by the enrolment service through its
// account's import (it hears its outcome); every fact is answered, the
// feed's stream (in the account FEED) holds every event of the store, and
// the reporting user reads it from the start through $JS.FEED.API.
func TestDeploymentAccounts(t *testing.T) {
	for _, v := range []string{"LEDGERD", "OPERATOR", "BUREAU", "DISTRICT", "ENROLMENT", "EVALUATION", "PAYMENT", "REPORTING"} {
		t.Setenv(v+"_NATS_PASSWORD", "pw-"+strings.ToLower(v))
	}
	// nats-server includes a file relative to the including one: the
	// text itself here.
	auth, err := os.ReadFile(filepath.Join("..", "..", "deployments", "nats", "auth.conf"))
	if err != nil {
		t.Fatal(err)
	}
	srv := natstest.StartWithConf(t, "127.0.0.1", string(auth))
	dir := t.TempDir()
	cfg := testConfig(t, dir, srv.URL())
	cfg.NATSUser, cfg.NATSPassword, cfg.FeedAPIPrefix = "ledgerd", "pw-ledgerd", natsbus.FeedAPIPrefix
	cfg.FeedConsumers = []string{"reporting"}
	lanes, ids, _ := mixedExpect(t, 40)
	led := start(t, cfg)

	connect := func(user string) (*nats.Conn, jetstream.JetStream, jetstream.JetStream) {
		t.Helper()
		nc, err := nats.Connect(srv.URL(), nats.UserInfo(user, "pw-"+strings.TrimSuffix(strings.TrimSuffix(user, "-svc"), "-app")), nats.CustomInboxPrefix(natsbus.InboxPrefix(user)))
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		feed, _ := jetstream.NewWithAPIPrefix(nc, natsbus.FeedAPIPrefix)
		return nc, js, feed
	}
	_, ops, opsFeed := connect("operator")
	// The projections' changes reach the reporting account live.
	repNC, _, repFeed := connect("reporting")
	changes, err := repNC.SubscribeSync("subsidy.projection.>")
	if err != nil {
		t.Fatal(err)
	}
	_ = repNC.Flush()
	publish(t, ops, lanes)
	enrolNC, enrol, _ := connect("enrolment-svc")
	heard := make(chan *nats.Msg, 8)
	if _, err := enrolNC.ChanSubscribe("subsidy.outcome.enrolment.>", heard); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("subsidy.in.enrolment.trainee_registered")
	m.Data = []byte("{}")
	m.Header.Set(natsbus.HeaderContentType, natsbus.ContentJSON)
	m.Header.Set(natsbus.HeaderMsgID, "accounts-test-1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := enrol.PublishMsg(ctx, m); err != nil {
		t.Fatalf("the enrolment service publishing through its account: %v", err)
	}
	select {
	case o := <-heard:
		if o.Subject != "subsidy.outcome.enrolment.trainee_registered" {
			t.Errorf("outcome on %s", o.Subject)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the enrolment service heard no outcome")
	}
	waitDrained(t, ops)
	checkOutcomes(t, ops, append(ids, "accounts-test-1"))
	head := waitFeed(t, opsFeed, led.addr.HTTPAddr)
	led.stop(t)
	if h := storeHead(t, filepath.Join(dir, "ledger.db")); h != head {
		t.Fatalf("the feed's last position %d; the store's head %d", head, h)
	}
	// The reporting user reads the whole feed with the consumer ledgerd
	// made for it.
	cons, err := repFeed.Consumer(context.Background(), natsbus.FeedStream, "reporting")
	if err != nil {
		t.Fatalf("the reporting user's consumer: %v", err)
	}
	var read uint64
	for read < uint64(head) {
		b, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range b.Messages() {
			if p := m.Headers().Get(natsbus.HeaderPosition); p != fmt.Sprint(read+1) {
				t.Fatalf("message %d of the feed has position %s", read+1, p)
			}
			_ = m.Ack()
			read++
			n++
		}
		if n == 0 {
			t.Fatalf("the reporting user read %d of the feed's %d events", read, head)
		}
	}
	if n, _, _ := changes.Pending(); n == 0 {
		t.Error("the reporting user heard no change on subsidy.projection.>")
	}
}
