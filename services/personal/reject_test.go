package personal_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/services/natsbus"
	"github.com/cqhrss/subsidyledger/services/personal"
	"github.com/cqhrss/subsidyledger/services/vault"
)

// TestRejectionsNameNoPerson: a personal-data message on a subject that
// names a person, or with such a Content-Type, is rejected without the ID
// number anywhere: not in the stream the rejection is stored in, nor its
// content type (found by review: both kept it).
func TestRejectionsNameNoPerson(t *testing.T) {
	const id = "50010119900101107X"
	dir := t.TempDir()
	srv, err := natsbus.StartServer(natsbus.ServerConfig{Addr: "127.0.0.1:-1", DataDir: dir, Subjects: natsbus.DefaultSubjects})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL(), nats.InProcessServer(srv.InProcess()))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subj := natsbus.DefaultSubjects
	cons, err := natsbus.EnsurePIIStream(ctx, js, subj, natsbus.DefaultStreamOptions)
	if err != nil {
		t.Fatal(err)
	}
	stream, _ := js.Stream(ctx, natsbus.PIIStream)
	store, err := bolt.Open(filepath.Join(dir, "ledger.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	v, err := vault.Open(filepath.Join(dir, "personal.db"), make([]byte, vault.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	keyer, _ := person.NewKeyer(bytes.Repeat([]byte("k"), 32))

	m1 := nats.NewMsg(subj.Prefix + ".pii." + id) // a subject token naming the person
	m1.Data = []byte("x")
	m1.Header.Set(natsbus.HeaderMsgID, "r1")
	m2 := nats.NewMsg(subj.PII("enrolment"))
	m2.Data = []byte("x")
	m2.Header.Set(natsbus.HeaderMsgID, "r2")
	m2.Header.Set(natsbus.HeaderContentType, "text/plain; person="+id)
	for _, m := range []*nats.Msg{m1, m2} {
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	in := personal.New(personal.Config{Consumer: cons, Stream: stream, Keyer: keyer, Vault: v, Store: store, Subjects: subj})
	batch, err := cons.Fetch(2)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		in.Handle(ctx, m)
	}
	recs, err := store.ReadAll(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records; want 2 rejections", len(recs))
	}
	for _, rec := range recs {
		if strings.Contains(rec.Stream, id) {
			t.Errorf("rejection stored in stream %q: the plain ID number", rec.Stream)
		}
		if bytes.Contains(rec.Data, []byte(id)) || bytes.Contains(rec.Metadata, []byte(id)) {
			t.Errorf("rejection in %s holds the plain ID number: %q", rec.Stream, rec.Data)
		}
	}
}
