package ledgerd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/cqhrss/subsidyledger/events/merkle"
	"github.com/cqhrss/subsidyledger/services/api"
	"github.com/cqhrss/subsidyledger/services/internal/natstest"
	"github.com/cqhrss/subsidyledger/services/natsbus"
)

// selfSigned writes a certificate and key for 127.0.0.1 and returns their
// paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ledgerd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestEmbeddedNATSAuthentication: with --nats-users, the embedded server
// refuses unauthenticated clients, lets a service publish only its own
// facts, lets nobody but an operator delete or purge the ledger's streams,
// and (with --nats-tls-cert) speaks TLS to clients. NATS itself refuses.
// The HTTP API (--api-tokens) answers only bearer tokens, in their scope.
func TestEmbeddedNATSAuthentication(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pay-secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := natsbus.UsersFile{Users: []natsbus.User{
		{Name: "enrolment-svc", Password: "enrol-secret", Role: "enrolment"},
		{Name: "payment-svc", Password: string(hash), Role: "payment"},
		{Name: "reporter", Password: "report-secret", Role: natsbus.RoleReporting},
		{Name: "warehouse", Password: "warehouse-secret", Role: natsbus.RoleReporting},
		{Name: "ops", Password: "ops-secret", Role: natsbus.RoleOperator},
	}}
	b, _ := json.Marshal(users)
	usersFile := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(usersFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, pool := selfSigned(t)
	addr := fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t, "127.0.0.1"))
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	tb, _ := json.Marshal(map[string]any{"tokens": []api.Token{
		{SHA256: api.HashToken("auditor-token"), Scope: "auditor"},
		{SHA256: api.HashToken("yuzhong-token"), Scope: "district:cq-yuzhong"},
	}})
	if err := os.WriteFile(tokens, tb, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig([]string{"--data-dir", t.TempDir(), "--nats-listen", addr, "--http-listen", "127.0.0.1:0",
		"--nats-users", usersFile, "--nats-tls-cert", certFile, "--nats-tls-key", keyFile, "--api-tokens", tokens}, func(k string) string {
		switch k {
		case "LEDGER_CHECKPOINT_KEY":
			skey, _, _ := merkle.GenerateKey(rand.Reader, "auth-test")
			return skey
		case "LEDGER_PERSON_KEY":
			return "auth test: person-key secret of 32 bytes or more"
		case "LEDGER_VAULT_KEY":
			return strings.Repeat("5a", 32)
		}
		return ""
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	led := start(t, cfg)
	// The HTTP API: a token is required; a district's token reads its unit only.
	for _, tc := range []struct {
		token, path string
		want        int
	}{
		{"", "/v1/quota/2025", http.StatusUnauthorized},
		{"guessed", "/v1/quota/2025", http.StatusUnauthorized},
		{"auditor-token", "/v1/quota/2025", http.StatusOK},
		{"yuzhong-token", "/v1/quota/2025?unit=cq-wanzhou", http.StatusForbidden},
		{"yuzhong-token", "POST /v1/projections/fund/rebuild", http.StatusForbidden},
		{"", "/healthz", http.StatusOK},
		// The tamper evidence beside the API: the same tokens.
		{"", "/v1/audit/verifier-key", http.StatusUnauthorized},
		{"", "POST /v1/audit/checkpoint", http.StatusUnauthorized},
		{"auditor-token", "/v1/audit/verifier-key", http.StatusOK},
		{"auditor-token", "POST /v1/audit/checkpoint", http.StatusForbidden},
		{"yuzhong-token", "POST /v1/audit/checkpoint", http.StatusForbidden},
		// Actions: the auditor changes nothing.
		{"auditor-token", "POST /v1/entitlements/0badc0de-0000-8000-8000-000000000000/confirm", http.StatusForbidden},
	} {
		method := "GET"
		if p, ok := strings.CutPrefix(tc.path, "POST "); ok {
			method, tc.path = "POST", p
		}
		req, _ := http.NewRequest(method, "http://"+led.addr.HTTPAddr+tc.path, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s with token %q = %d; want %d", method, tc.path, tc.token, resp.StatusCode, tc.want)
		}
	}
	tlsOpt := nats.Secure(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	url := "nats://" + addr

	if nc, err := nats.Connect(url, tlsOpt); err == nil {
		nc.Close()
		t.Fatal("an unauthenticated client connected")
	}
	if nc, err := nats.Connect(url, nats.UserInfo("enrolment-svc", "enrol-secret")); err == nil {
		nc.Close()
		t.Fatal("a client connected without TLS")
	}
	if nc, err := nats.Connect(url, tlsOpt, nats.UserInfo("enrolment-svc", "wrong")); err == nil {
		nc.Close()
		t.Fatal("a client connected with a wrong password")
	}
	connect := func(user, pass string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
		t.Helper()
		opts = append([]nats.Option{tlsOpt, nats.UserInfo(user, pass), nats.CustomInboxPrefix(natsbus.InboxPrefix(user))}, opts...)
		nc, err := nats.Connect(url, opts...)
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		return nc, js
	}
	ctx := context.Background()
	// Snoopers: other users subscribing to the inboxes JetStream delivers
	// ledgerd's facts and personal data to, and the enrolment service's
	// replies. NATS refuses each subscription; nothing arrives.
	var snooped atomic.Int64
	refused := make(chan string, 16)
	for _, u := range []struct{ user, pass string }{{"reporter", "report-secret"}, {"payment-svc", "pay-secret"}} {
		nc, _ := connect(u.user, u.pass, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				refused <- u.user + ": " + err.Error()
			}
		}))
		for _, subject := range []string{"_INBOX.>", natsbus.LedgerInbox + ".>", natsbus.InboxPrefix("enrolment-svc") + ".>", ">"} {
			if _, err := nc.Subscribe(subject, func(*nats.Msg) { snooped.Add(1) }); err != nil {
				t.Fatal(err)
			}
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	_, enrol := connect("enrolment-svc", "enrol-secret")
	pub := func(js jetstream.JetStream, subject string) error {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		m := nats.NewMsg(subject)
		m.Data = []byte("{}")
		m.Header.Set(natsbus.HeaderContentType, natsbus.ContentJSON)
		_, err := js.PublishMsg(c, m)
		return err
	}
	if err := pub(enrol, "subsidy.in.enrolment.trainee_registered"); err != nil {
		t.Fatalf("enrolment publishing its own fact: %v", err)
	}
	if err := pub(enrol, "subsidy.in.payment.payment_settled"); err == nil {
		t.Fatal("the enrolment service published a payment fact")
	}
	// Personal data: only the enrolment system publishes it; ledgerd (its
	// internal user) securely deletes each message once handled (this one
	// is rejected: no ID number). Were ledgerd denied the delete, the
	// message would be handed back and stay.
	if err := pub(enrol, "subsidy.pii.enrolment"); err != nil {
		t.Fatalf("enrolment publishing personal data: %v", err)
	}
	_, ops := connect("ops", "ops-secret")
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := ops.Stream(c, natsbus.PIIStream)
		var info *jetstream.StreamInfo
		if err == nil {
			info, err = st.Info(c)
		}
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 0 && info.State.FirstSeq > 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SUBSIDY_PII still holds %d messages: ledgerd did not delete what it handled", info.State.Msgs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := snooped.Load(); n != 0 {
		t.Errorf("other users read %d messages from inboxes not theirs", n)
	}
	for want := 2 * 4; want > 0; want-- {
		select {
		case <-refused:
		case <-time.After(5 * time.Second):
			t.Fatalf("NATS did not refuse %d of the snoopers' subscriptions", want)
		}
	}
	// A client that does not use its own inbox prefix gets no replies.
	if _, js := connect("payment-svc", "pay-secret", nats.CustomInboxPrefix("_INBOX")); pub(js, "subsidy.in.payment.payment_settled") == nil {
		t.Error("a client with the default inbox prefix got JetStream's acknowledgement")
	}
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := enrol.DeleteStream(c, natsbus.InboundStream); err == nil {
		t.Fatal("the enrolment service deleted the inbound stream")
	}
	_, payJS := connect("payment-svc", "pay-secret") // bcrypt-hashed password
	if err := pub(payJS, "subsidy.in.payment.payment_settled"); err != nil {
		t.Fatalf("payment publishing its own fact: %v", err)
	}
	if err := pub(payJS, "subsidy.pii.payment"); err == nil {
		t.Fatal("the payment service published personal data")
	}
	if err := pub(payJS, "subsidy.pii.enrolment"); err == nil {
		t.Fatal("the payment service published personal data as the enrolment system")
	}
	repNC, rep := connect("reporter", "report-secret")
	if err := pub(rep, "subsidy.in.bureau.budget_allocated"); err == nil {
		t.Fatal("a reporting consumer published a fact")
	}
	ctxFor := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		t.Cleanup(cancel)
		return c
	}
	// The feed's stream lives in an account of its own, read through
	// natsbus.FeedAPIPrefix, each reporting user with the durable
	// consumer ledgerd made for it; ledgerd published the facts' events
	// there.
	repFeed, _ := jetstream.NewWithAPIPrefix(repNC, natsbus.FeedAPIPrefix)
	cons, err := repFeed.Consumer(ctxFor(), natsbus.FeedStream, "reporter")
	if err != nil {
		t.Fatalf("the reporting user's consumer: %v", err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for m := range batch.Messages() {
		md, _ := m.Metadata()
		if m.Headers().Get(natsbus.HeaderPosition) == "" || m.Ack() != nil {
			t.Fatalf("a feed message without its position, or not acknowledged")
		}
		seqs = append(seqs, md.Sequence.Stream)
	}
	if len(seqs) != 2 || seqs[0] != 1 {
		t.Fatalf("the reporting user read stream sequences %v; want 1 and 2", seqs)
	}
	// Read again from any position: reset its consumer to sequence 2.
	if msg, err := repNC.Request(natsbus.FeedAPIPrefix+".CONSUMER.RESET."+natsbus.FeedStream+".reporter", []byte(`{"seq": 2}`), 5*time.Second); err != nil || strings.Contains(string(msg.Data), `"error"`) {
		t.Fatalf("resetting its consumer: %v %s", err, msg.Data)
	}
	if b, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second)); err != nil {
		t.Fatal(err)
	} else {
		for m := range b.Messages() {
			if md, _ := m.Metadata(); md.Sequence.Stream != 2 {
				t.Errorf("after the reset to 2 the consumer delivered sequence %d", md.Sequence.Stream)
			}
			_ = m.Ack()
		}
	}
	if err := repFeed.DeleteStream(ctxFor(), natsbus.FeedStream); err == nil {
		t.Fatal("a reporting consumer deleted the feed")
	}
	// No reporting user makes a consumer (a push consumer's deliver
	// subject could aim the feed at another's pull or reset subject), nor
	// reads, pulls from, resets or deletes another's.
	if _, err := repFeed.CreateOrUpdateConsumer(ctxFor(), natsbus.FeedStream, jetstream.ConsumerConfig{Durable: "reporter-2", AckPolicy: jetstream.AckExplicitPolicy}); err == nil {
		t.Fatal("a reporting user made a consumer")
	}
	if _, err := repFeed.OrderedConsumer(ctxFor(), natsbus.FeedStream, jetstream.OrderedConsumerConfig{}); err == nil {
		t.Fatal("a reporting user made an ordered consumer")
	}
	whNC, _ := connect("warehouse", "warehouse-secret")
	whFeed, _ := jetstream.NewWithAPIPrefix(whNC, natsbus.FeedAPIPrefix)
	if _, err := whFeed.Consumer(ctxFor(), natsbus.FeedStream, "reporter"); err == nil {
		t.Fatal("one reporting user read another's consumer")
	}
	for _, api := range []string{"MSG.NEXT", "RESET"} {
		if _, err := whNC.Request(natsbus.FeedAPIPrefix+".CONSUMER."+api+"."+natsbus.FeedStream+".reporter", []byte(`{"batch":1,"seq":1}`), 2*time.Second); err == nil {
			t.Fatalf("one reporting user used %s on another's consumer", api)
		}
	}
	if _, err := whFeed.Consumer(ctxFor(), natsbus.FeedStream, "warehouse"); err != nil {
		t.Fatalf("the second reporting user's own consumer: %v", err)
	}
	if err := repFeed.DeleteConsumer(ctxFor(), natsbus.FeedStream, "reporter"); err == nil {
		t.Fatal("a reporting user deleted its durable consumer")
	}
	if info, err := cons.Info(ctxFor()); err != nil || info.Delivered.Stream != 2 {
		t.Fatalf("the reporting user's consumer after the others' attempts: %v, delivered %+v; want sequence 2", err, info)
	}
	// Replies and deliveries stay in the requester's account: a service's
	// acknowledgement sent to another's fact or outcome subject, a
	// reporting user's API answer sent to an outcome or feed subject, a
	// push consumer delivering to an outcome subject (while the enrolment
	// service listens there) reach no ledger stream and no service.
	enrolNC, _ := connect("enrolment-svc", "enrol-secret")
	heard := make(chan string, 64)
	if _, err := enrolNC.Subscribe("subsidy.outcome.enrolment.>", func(m *nats.Msg) { heard <- m.Subject }); err != nil {
		t.Fatal(err)
	}
	_ = enrolNC.Flush()
	for _, r := range []struct {
		nc               *nats.Conn
		subject, replyTo string
	}{
		{enrolNC, "subsidy.in.enrolment.trainee_registered", "subsidy.outcome.payment.injected"},
		{enrolNC, "subsidy.in.enrolment.trainee_registered", "subsidy.in.payment.injected"},
		{repNC, natsbus.FeedAPIPrefix + ".STREAM.INFO." + natsbus.FeedStream, "subsidy.outcome.enrolment.injected"},
		{repNC, natsbus.FeedAPIPrefix + ".STREAM.INFO." + natsbus.FeedStream, "subsidy.feed.injected.Injected"},
	} {
		m := nats.NewMsg(r.subject)
		m.Reply, m.Data = r.replyTo, []byte("{}")
		m.Header.Set(natsbus.HeaderContentType, natsbus.ContentJSON)
		if err := r.nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		_ = r.nc.Flush()
	}
	if _, err := repFeed.CreateOrUpdateConsumer(ctxFor(), natsbus.FeedStream, jetstream.ConsumerConfig{Name: "pushy", DeliverSubject: "subsidy.outcome.enrolment.pushed", AckPolicy: jetstream.AckNonePolicy}); err == nil {
		t.Error("a reporting user made a push consumer")
	}
	time.Sleep(2 * time.Second) // the outcomes of the facts above, and anything injected
	_, opsJS := connect("ops", "ops-secret")
	opsNC, _ := connect("ops", "ops-secret")
	opsFeed, _ := jetstream.NewWithAPIPrefix(opsNC, natsbus.FeedAPIPrefix)
	for _, st := range []struct {
		js   jetstream.JetStream
		name string
	}{{opsJS, natsbus.InboundStream}, {opsJS, natsbus.OutcomeStream}, {opsFeed, natsbus.FeedStream}} {
		s, err := st.js.Stream(ctxFor(), st.name)
		if err != nil {
			t.Fatalf("stream %s: %v", st.name, err)
		}
		info, err := s.Info(ctxFor(), jetstream.WithSubjectFilter(">"))
		if err != nil {
			t.Fatal(err)
		}
		for subj := range info.State.Subjects {
			if strings.Contains(subj, "injected") || strings.Contains(subj, "Injected") || strings.Contains(subj, "pushed") {
				t.Errorf("stream %s holds a message on %s: another user made the server publish there", st.name, subj)
			}
		}
		if cfg := s.CachedInfo().Config; !cfg.DenyDelete || !cfg.DenyPurge {
			t.Errorf("stream %s: deny delete %v, deny purge %v; want both", st.name, cfg.DenyDelete, cfg.DenyPurge)
		}
	}
	for len(heard) > 0 {
		if subj := <-heard; strings.Contains(subj, "injected") || strings.Contains(subj, "pushed") {
			t.Errorf("the enrolment service heard %s", subj)
		}
	}
}
