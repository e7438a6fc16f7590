package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/facts"
	"github.com/cqhrss/subsidyledger/events/person"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/natsbus"
)

const keptID = "50010119900101107X" // valid, check character X

// TestKeptPayloadMasksEscapedIDNumbers: a JSON payload writing an ID
// number with \u escapes (ASCII or full-width digits, as Python's
// json.dumps does) is kept with the escapes resolved and the number
// masked, broken JSON too; other escapes, and payloads without such a
// number, are kept as they were (found by review: the escaped number was
// kept whole; then, in broken JSON, still).
func TestKeptPayloadMasksEscapedIDNumbers(t *testing.T) {
	var ascii, wide strings.Builder
	for _, c := range keptID {
		fmt.Fprintf(&ascii, `\u%04x`, c)
		fmt.Fprintf(&wide, `\u%04x`, c+0xFEE0)
	}
	for _, esc := range []string{ascii.String(), wide.String(), `5001\u00301199001011\u0030\u0037X`} {
		in := []byte(`{"enrolmentId": "e\"\\\n\u0022\ud83d\ude00", "idNumber": "` + esc + `"}`)
		kept := keptPayload(in)
		var v map[string]string
		if err := json.Unmarshal(kept, &v); err != nil {
			t.Fatalf("kept %s: not JSON: %v", kept, err)
		}
		if person.ContainsIDLike(v["idNumber"]) || person.ContainsIDLike(v["enrolmentId"]) {
			t.Errorf("kept %s: idNumber %q still names the person", kept, v["idNumber"])
		}
		var orig map[string]string
		_ = json.Unmarshal(in, &orig)
		if v["enrolmentId"] != orig["enrolmentId"] {
			t.Errorf("kept %s: enrolmentId %q, want %q (escapes resolved to what they stand for)", kept, v["enrolmentId"], orig["enrolmentId"])
		}
	}
	// Broken JSON too, which is why many payloads are rejected: a
	// trailing comma, a body cut short, a byte-order mark, a bad escape.
	for _, in := range []string{`{"idNumber": "` + ascii.String() + `",}`, `{"idNumber": "` + ascii.String(), "\xef\xbb\xbf{\"idNumber\": \"" + wide.String() + `"}`,
		`{"x": "\uZZ", "idNumber": "` + ascii.String() + `"}`} {
		if kept := keptPayload([]byte(in)); person.ContainsIDLike(string(unescapeJSON(kept))) || person.ContainsIDLike(string(kept)) {
			t.Errorf("kept %q from broken JSON %q: still names the person", kept, in)
		}
	}
	for _, in := range []string{`{"a": "\u0035\u0030 and 5"}`, `{"a": "\u00e9"}`, "\x0a\x05\\u0035\x12"} {
		if got := keptPayload([]byte(in)); !bytes.Equal(got, []byte(in)) {
			t.Errorf("keptPayload(%q) = %q; want it as it was (no ID number in it)", in, got)
		}
	}
}

// TestKeptPayloadMasksBeforeCutting: an ID number across the cut of an
// oversized payload is masked: its first 17 characters give away the 18th
// (found by review).
func TestKeptPayloadMasksBeforeCutting(t *testing.T) {
	for _, before := range []int{10, 14, 17} {
		body := []byte(strings.Repeat(" ", facts.MaxPayloadSize-before) + keptID + strings.Repeat(" ", 100))
		kept := keptPayload(body)
		if len(kept) != facts.MaxPayloadSize {
			t.Fatalf("kept %d bytes, want %d", len(kept), facts.MaxPayloadSize)
		}
		if tail := string(kept[len(kept)-before:]); tail == keptID[:before] {
			t.Errorf("%d characters before the cut: kept %q unmasked", before, tail)
		}
	}
}

// rejectionsOf publishes each body on subject, lets the intake handle
// them and returns the stored rejections by message id.
func rejectionsOf(t *testing.T, subject, contentType string, bodies map[string]string) map[string]*subsidyv1.FactRejected {
	t.Helper()
	r := newRig(t)
	in := r.intake(t)
	for key, body := range bodies {
		m := nats.NewMsg(subject)
		m.Data = []byte(body)
		m.Header.Set(natsbus.HeaderMsgID, key)
		if contentType != "" {
			m.Header.Set(natsbus.HeaderContentType, contentType)
		}
		if _, err := r.js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	if err := in.handle(context.Background(), r.fetch(t, len(bodies))); err != nil {
		t.Fatal(err)
	}
	page, err := r.store.ReadAll(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*subsidyv1.FactRejected{}
	for _, rec := range page {
		d, err := codec.Decode(rec)
		if err != nil {
			t.Fatal(err)
		}
		if rj, ok := d.Payload.(*subsidyv1.FactRejected); ok {
			got[rj.GetMessageId()] = rj
		}
	}
	return got
}

// TestRejectionKeepsNoIDNumber: an oversized message's rejection gives
// the digest of the whole payload masked, not of the plain one (with the
// masked copy and a guessable rest, each region and birth date could be
// tried against it); a Content-Type naming a person is masked as the
// headers are (found by review: both were kept plain).
func TestRejectionKeepsNoIDNumber(t *testing.T) {
	big := `{"enrolmentId": "e", "idNumber": "500101199001011002"}` + strings.Repeat(" ", facts.MaxPayloadSize)
	got := rejectionsOf(t, "subsidy.in.enrolment.enrolled", natsbus.ContentJSON, map[string]string{"big": big})["big"]
	if got == nil {
		t.Fatal("no rejection")
	}
	masked, plain := fmt.Sprintf("%x", sha256.Sum256(maskedPayload([]byte(big)))), fmt.Sprintf("%x", sha256.Sum256([]byte(big)))
	if d := got.GetDetail(); !strings.Contains(d, masked) || strings.Contains(d, plain) {
		t.Errorf("oversized rejection's detail %q: want the masked payload's digest %s, not the plain one's", d, masked)
	}
	ct := rejectionsOf(t, "subsidy.in.bureau.annual_target_set", "text/plain; person="+keptID, map[string]string{"ct": "{}"})["ct"]
	if ct == nil {
		t.Fatal("no rejection")
	}
	if person.ContainsIDLike(ct.GetContentType()) || ct.GetContentType() != ct.GetHeaders()["Content-Type"] {
		t.Errorf("rejection content_type %q (headers: %q): want it masked as the headers are", ct.GetContentType(), ct.GetHeaders()["Content-Type"])
	}
}

// FuzzUnnamed: whatever a rejected payload holds, masking its names and
// accounts neither panics nor changes its length (a protobuf payload stays
// decodable as it was shaped, a JSON one as long), changes nothing but
// bytes it turns into '*', and leaves no name in the fields it masks.
func FuzzUnnamed(f *testing.F) {
	f.Add([]byte(`{"maskedName":"张三丰","unitCode":"cq-yuzhong"}`), true)
	f.Add([]byte(`{"idNumber":"1101**********8515","name":"张三丰","payeeAccount":"6222020012345678901"}`), false)
	f.Add([]byte(`{"name": "\u5f20\u4e09`), false)
	f.Add([]byte(`{"a":{"name":"x\"y"},"name":`), false)
	pii, _ := proto.Marshal(&subsidyv1.PersonalDataSubmitted{IdNumber: "x", Name: "张三丰", PayeeAccount: "6222020012345678901"})
	f.Add(pii, false)
	tr, _ := proto.Marshal(&subsidyv1.TraineeRegistered{PersonKey: "k", MaskedName: "张三丰"})
	f.Add(tr, true)
	kind, ok := facts.BySubject("subsidy.in", "subsidy.in.enrolment.trainee_registered")
	if !ok {
		f.Fatal("no trainee_registered fact")
	}
	f.Fuzz(func(t *testing.T, b []byte, known bool) {
		in := bytes.Clone(b)
		out := unnamed(b, kind, known)
		if !bytes.Equal(b, in) {
			t.Fatalf("unnamed changed its input")
		}
		if len(out) != len(in) {
			t.Fatalf("length %d became %d", len(in), len(out))
		}
		for i := range out {
			if out[i] != in[i] && out[i] != '*' {
				t.Fatalf("byte %d: %q became %q", i, in[i], out[i])
			}
		}
		if !known {
			var m subsidyv1.PersonalDataSubmitted
			if proto.Unmarshal(out, &m) == nil && bytes.Equal(out, in) && m.GetName() != "" && strings.Trim(m.GetName(), "*") != "" && !json.Valid(in) && !bytes.HasPrefix(bytes.TrimSpace(in), []byte("{")) {
				t.Fatalf("a personal-data payload kept its name %q", m.GetName())
			}
		}
	})
}
