package personal_test

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/person"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/natsbus"
	"github.com/cqhrss/subsidyledger/services/personal"
	"github.com/cqhrss/subsidyledger/services/vault"
)

// TestIntake publishes valid and invalid personal data into a real
// JetStream (embedded server, file storage) and checks that the valid data
// reaches the vault, the invalid is recorded as rejections without payload,
// and no plain ID number is left in the stream's files.
// rig is a personal-data intake's surroundings: an embedded NATS server
// with the personal-data stream, a store and a vault, closed when the test
// ends.
type rig struct {
	dir    string
	ctx    context.Context
	subj   natsbus.Subjects
	js     jetstream.JetStream
	cons   jetstream.Consumer
	stream jetstream.Stream
	store  *bolt.Store
	vault  *vault.Vault
	keyer  *person.Keyer
	// Close stops the server and closes the store and the vault (once;
	// the test's end does it too).
	Close func()
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{dir: t.TempDir(), subj: natsbus.DefaultSubjects}
	srv, err := natsbus.StartServer(natsbus.ServerConfig{Addr: "127.0.0.1:-1", DataDir: r.dir, Subjects: r.subj})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.ClientURL(), nats.InProcessServer(srv.InProcess()))
	if err != nil {
		t.Fatal(err)
	}
	r.js, _ = jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	r.ctx = ctx
	if r.cons, err = natsbus.EnsurePIIStream(ctx, r.js, r.subj, natsbus.DefaultStreamOptions); err != nil {
		t.Fatal(err)
	}
	if r.stream, err = r.js.Stream(ctx, natsbus.PIIStream); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	r.Close = func() {
		once.Do(func() {
			nc.Close()
			srv.Shutdown()
			if r.store != nil {
				r.store.Close()
			}
			if r.vault != nil {
				r.vault.Close()
			}
		})
	}
	t.Cleanup(r.Close)
	if r.store, err = bolt.Open(filepath.Join(r.dir, "ledger.db"), bolt.Options{}); err != nil {
		t.Fatal(err)
	}
	if r.vault, err = vault.Open(filepath.Join(r.dir, "personal.db"), make([]byte, vault.KeySize)); err != nil {
		t.Fatal(err)
	}
	r.keyer, _ = person.NewKeyer(bytes.Repeat([]byte("k"), 32))
	return r
}

func TestIntake(t *testing.T) {
	r := newRig(t)
	dir, ctx, subj, js, cons, stream, store, v, keyer := r.dir, r.ctx, r.subj, r.js, r.cons, r.stream, r.store, r.vault, r.keyer

	const goodID, goodID2, badID, lateID = "11010519491231002X", "500103200305120011", "500103200305120012", "500221198503150033"
	pub := func(id string, data []byte, ct string) {
		t.Helper()
		m := nats.NewMsg(subj.PII("enrolment"))
		m.Data = data
		m.Header.Set(natsbus.HeaderMsgID, id)
		if ct != "" {
			m.Header.Set(natsbus.HeaderContentType, ct)
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	pb, _ := proto.Marshal(&subsidyv1.PersonalDataSubmitted{IdNumber: goodID, Name: "张伟三", PayeeAccount: "6217000012345678901"})
	pub("p1", pb, "")
	js1, _ := protojson.Marshal(&subsidyv1.PersonalDataSubmitted{IdNumber: goodID2, Name: "李娜"})
	pub("p2", js1, natsbus.ContentJSON)
	bad, _ := proto.Marshal(&subsidyv1.PersonalDataSubmitted{IdNumber: badID, Name: "王五"})
	pub("p3", bad, "")
	pub("p4", []byte(`{"idNumber": "`+badID+`", "oops"`), natsbus.ContentJSON)

	// A fifth message is published but not consumed: it stays in the
	// stream's block beside the four deleted ones, whose bytes must have
	// been overwritten, not merely marked deleted.
	late, _ := proto.Marshal(&subsidyv1.PersonalDataSubmitted{IdNumber: lateID, Name: "赵六"})
	pub("p5", late, "")

	reg := personal.New(personal.Config{Consumer: cons, Stream: stream, Keyer: keyer, Vault: v, Store: store, Subjects: subj})
	batch, err := cons.Fetch(4)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		reg.Handle(ctx, m)
		n++
	}
	if n != 4 {
		t.Fatalf("fetched %d messages; want 4", n)
	}
	if info, err := stream.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Fatalf("stream after handling 4 of 5: %+v, %v; want 1 message left", info.State, err)
	}
	pk1, _ := keyer.Key(goodID)
	pk2, _ := keyer.Key(goodID2)
	if r, err := v.Get(pk1); err != nil || r.IDNumber != goodID || r.Name != "张伟三" || r.PayeeAccount != "6217000012345678901" {
		t.Errorf("vault.Get(1) = %+v, %v", r, err)
	}
	if r, err := v.Get(pk2); err != nil || r.IDNumber != goodID2 || r.Name != "李娜" {
		t.Errorf("vault.Get(2) = %+v, %v", r, err)
	}
	if st, err := v.Stats(); err != nil || st.Records != 2 {
		t.Errorf("vault.Stats = %+v, %v; want the 2 valid records only", st, err)
	}
	recs, err := store.ReadAll(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]subsidyv1.ReasonCode{"p3": subsidyv1.ReasonCode_REASON_CODE_INVALID_PERSON_ID, "p4": subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE}
	for _, rec := range recs {
		d, err := codec.Decode(rec)
		if err != nil {
			t.Fatal(err)
		}
		rej, ok := d.Payload.(*subsidyv1.FactRejected)
		if !ok || rec.Stream != "rejection-enrolment" {
			t.Errorf("event %s in %s; want FactRejected in rejection-enrolment", rec.Type, rec.Stream)
			continue
		}
		if rej.GetReason() != want[rej.GetMessageId()] || len(rej.GetPayload()) > 0 || len(rej.GetHeaders()) > 0 {
			t.Errorf("rejection of %s = %v, %d payload bytes, headers %v; want %v without payload", rej.GetMessageId(), rej.GetReason(), len(rej.GetPayload()), rej.GetHeaders(), want[rej.GetMessageId()])
		}
		delete(want, rej.GetMessageId())
	}
	if len(want) > 0 {
		t.Errorf("no rejection recorded for %v", want)
	}
	// A stop cutting a message's handling short hands it back with a note,
	// not an error: the fifth, handled as ledgerd stops.
	var logs bytes.Buffer
	stopping := personal.New(personal.Config{Consumer: cons, Stream: stream, Keyer: keyer, Vault: v, Store: store, Subjects: subj,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	last, err := cons.Fetch(1)
	if err != nil {
		t.Fatal(err)
	}
	stopped, stop := context.WithCancel(ctx)
	stop()
	for m := range last.Messages() {
		stopping.Handle(stopped, m)
	}
	if said := logs.String(); strings.Contains(said, "level=ERROR") || !strings.Contains(said, "interrupted by the stop") {
		t.Errorf("handling cut short by the stop logged:\n%s\nwant a note that it will be tried again, no error", said)
	}
	if info, err := stream.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Errorf("stream after a handling cut short: %+v, %v; want the message kept", info.State, err)
	}
	// Nothing plain anywhere: the store, the vault, JetStream's files.
	r.Close()
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, s := range []string{goodID, goodID2, badID, "张伟三", "李娜", "6217000012345678901", goodID[:12]} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %q in plain text", p, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
