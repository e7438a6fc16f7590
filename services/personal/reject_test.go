package personal_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/cqhrss/subsidyledger/services/natsbus"
	"github.com/cqhrss/subsidyledger/services/personal"
)

// TestRejectionsNameNoPerson: a personal-data message on a subject that
// names a person, or with such a Content-Type, is rejected without the ID
// number anywhere: not in the stream the rejection is stored in, nor its
// content type (found by review: both kept it). A subject token too long to
// name a stream is recorded in rejection-unknown (found by review: the
// store refused the stream's name and the message came back forever).
func TestRejectionsNameNoPerson(t *testing.T) {
	const id = "50010119900101107X"
	r := newRig(t)
	m1 := nats.NewMsg(r.subj.Prefix + ".pii." + id) // a subject token naming the person
	m1.Data = []byte("x")
	m1.Header.Set(natsbus.HeaderMsgID, "r1")
	m2 := nats.NewMsg(r.subj.PII("enrolment"))
	m2.Data = []byte("x")
	m2.Header.Set(natsbus.HeaderMsgID, "r2")
	m2.Header.Set(natsbus.HeaderContentType, "text/plain; person="+id)
	m3 := nats.NewMsg(r.subj.Prefix + ".pii." + strings.Repeat("s", 1100))
	m3.Data = []byte("x")
	m3.Header.Set(natsbus.HeaderMsgID, "r3")
	for _, m := range []*nats.Msg{m1, m2, m3} {
		if _, err := r.js.PublishMsg(r.ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	in := personal.New(personal.Config{Consumer: r.cons, Stream: r.stream, Keyer: r.keyer, Vault: r.vault, Store: r.store, Subjects: r.subj})
	batch, err := r.cons.Fetch(3)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		in.Handle(r.ctx, m)
	}
	recs, err := r.store.ReadAll(r.ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records; want 3 rejections", len(recs))
	}
	if recs[2].Stream != "rejection-unknown" {
		t.Errorf("the rejection of a long source token is in %.40q; want rejection-unknown", recs[2].Stream)
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
