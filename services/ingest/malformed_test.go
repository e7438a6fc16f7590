package ingest

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/facts"
	"github.com/cqhrss/subsidyledger/events/person"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/natsbus"
	"github.com/cqhrss/subsidyledger/services/simulate"
)

// kept is what a rejection keeps of a payload: an oversized one's first
// facts.MaxPayloadSize bytes (the feed republishes it).
func kept(body string) string { return body[:min(len(body), facts.MaxPayloadSize)] }

// plainID is a valid resident ID number; maskedID, how a record may show it.
const plainID, maskedID = "110101199003078515", "1101**********8515"

// Other forms of an ID number that name its holder: written in groups, with
// a wrong check digit, and an old 15-digit one.
const groupedID, mistypedID, oldID = "110101 19900307 8515", "110101199003078514", "110105491231002"

// A full name and a plain bank account number, which no record may hold.
const fullName, plainAccount = "张三丰", "6222020012345678901"

func marshal(t *testing.T, m proto.Message) string {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMalformedInputCatalogue sends one example of every class of malformed
// input through JetStream and the intake, and checks that each lands as a
// recorded rejection with the expected reason code (and its original
// payload), never as an event and never as a crash.
func TestMalformedInputCatalogue(t *testing.T) {
	r := newRig(t)
	ref, _ := programme(t)
	r.publish(t, ref)
	in := r.intake(t)
	if err := in.handle(context.Background(), r.fetch(t, len(ref))); err != nil {
		t.Fatal(err)
	}
	in.cfg.ReferenceWait = 1 // unknown references are rejected at once here
	pk := strings.Repeat("ab", 32)
	json := natsbus.ContentJSON
	cases := []struct {
		name, subject, contentType, body string
		want                             subsidyv1.ReasonCode
	}{
		{"truncated protobuf", "subsidy.in.enrolment.enrolled", "", "\x0a\x05ab", subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE},
		{"wrong type", "subsidy.in.enrolment.enrolled", json, `{"enrolmentId": 7}`, subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE},
		{"unknown field", "subsidy.in.enrolment.enrolled", json, `{"enrolmentId": "e", "idNumber": "x"}`, subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE},
		{"missing field", "subsidy.in.enrolment.enrolled", json, `{"personKey": "` + pk + `"}`, subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION},
		{"negative amount", "subsidy.in.bureau.budget_allocated", json, `{"allocationId":"a","year":2025,"unitCode":"cq-yuzhong","amountFen":"-5"}`, subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION},
		{"overflowing amount", "subsidy.in.bureau.budget_allocated", json, `{"allocationId":"a","year":2025,"unitCode":"cq-yuzhong","amountFen":"9223372036854775808"}`, subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE},
		{"absurd amount", "subsidy.in.enrolment.advance_payment_recorded", json, `{"advanceId":"a","trainingInstitutionId":"T001","personKey":"` + pk + `","qualification":{"occupation":"OCCUPATION_BIG_DATA","level":"LEVEL_JUNIOR"},"amountFen":"900000000000","paidOn":{"year":2025,"month":3,"day":1}}`, subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION},
		{"malformed person key", "subsidy.in.enrolment.trainee_registered", json, `{"personKey":"not-a-key","maskedName":"张*","maskedId":"5001**********123X","unitCode":"cq-yuzhong","education":"EDUCATION_BACHELOR"}`, subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION},
		{"plain ID number", "subsidy.in.enrolment.trainee_registered", json, `{"personKey":"` + pk + `","maskedName":"` + plainID + `","maskedId":"5001**********123X","unitCode":"cq-yuzhong","education":"EDUCATION_BACHELOR"}`, subsidyv1.ReasonCode_REASON_CODE_INVALID_PERSON_ID},
		{"score out of range", "subsidy.in.evaluation.assessment_recorded", json, `{"assessmentId":"x","personKey":"` + pk + `","evaluationInstitutionId":"E001","qualification":{"occupation":"OCCUPATION_BIG_DATA","level":"LEVEL_JUNIOR"},"attempt":1,"theoryScore":101,"practicalScore":70,"assessedOn":{"year":2025,"month":5,"day":5}}`, subsidyv1.ReasonCode_REASON_CODE_SCORE_OUT_OF_RANGE},
		{"date out of range", "subsidy.in.bureau.annual_target_set", json, `{"year":1899,"target":3000}`, subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION},
		{"invalid calendar date", "subsidy.in.enrolment.training_completed", json, `{"enrolmentId":"e","personKey":"` + pk + `","trainingInstitutionId":"T001","qualification":{"occupation":"OCCUPATION_BIG_DATA","level":"LEVEL_JUNIOR"},"completedOn":{"year":2025,"month":2,"day":30}}`, subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION},
		{"unknown reference", "subsidy.in.evaluation.assessment_recorded", json, `{"assessmentId":"x","personKey":"` + pk + `","evaluationInstitutionId":"E001","qualification":{"occupation":"OCCUPATION_BIG_DATA","level":"LEVEL_JUNIOR"},"attempt":1,"theoryScore":70,"practicalScore":70,"assessedOn":{"year":2025,"month":5,"day":5}}`, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_TRAINEE},
		{"oversized message", "subsidy.in.enrolment.enrolled", "", strings.Repeat("\x00", 70<<10), subsidyv1.ReasonCode_REASON_CODE_OVERSIZED},
		{"wrong content type", "subsidy.in.enrolment.enrolled", "text/csv", "a,b", subsidyv1.ReasonCode_REASON_CODE_UNSUPPORTED_CONTENT_TYPE},
		{"unknown subject", "subsidy.in.enrolment.nonsense", json, `{}`, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_SUBJECT},
		{"empty body", "subsidy.in.bureau.annual_target_set", "", "", subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION},
		// Resident ID numbers where no field is checked for them: kept
		// masked in the rejection, never in plain text.
		{"ID number in an unknown field", "subsidy.in.enrolment.enrolled", json, `{"enrolmentId": "e", "idNumber": "` + plainID + `"}`, subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE},
		{"ID number in the subject", "subsidy.in.enrolment." + plainID, json, `{}`, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_SUBJECT},
		{"ID number in a header", "subsidy.in.bureau.annual_target_set", json, `{"year":1899,"target":3000}`, subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION},
		{"ID number as the key", "subsidy.in.bureau.annual_target_set", json, `{"year":2025,"target":3000}`, subsidyv1.ReasonCode_REASON_CODE_INVALID_PERSON_ID},
		// The same in the other forms a person writes: in groups, with a
		// wrong check digit, the old 15 digits.
		{"ID number in groups", "subsidy.in.enrolment.enrolled", json, `{"enrolmentId": "e", "idNumber": "` + groupedID + `"}`, subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE},
		{"mistyped ID number in a header", "subsidy.in.bureau.annual_target_set", json, `{"year":1899,"target":3000}`, subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION},
		{"ID number in groups as the key", "subsidy.in.bureau.annual_target_set", json, `{"year":2025,"target":3001}`, subsidyv1.ReasonCode_REASON_CODE_INVALID_PERSON_ID},
		// A key is an identifier: one that only looks like a mistyped ID
		// number (a region code, a date, a sequence) is no reason to
		// refuse the fact.
		{"ID-shaped key", "subsidy.in.bureau.annual_target_set", json, `{"year":1899,"target":3002}`, subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION},
		// Names and accounts: a name sent unmasked, and personal data sent
		// to an inbound subject instead of subsidy.pii.<source>, in JSON
		// and in protobuf; each kept with them masked (found by review:
		// the log kept the full name and the plain account).
		{"unmasked name", "subsidy.in.enrolment.trainee_registered", json, `{"personKey":"` + pk + `","maskedName":"` + fullName + `","maskedId":"5001**********123X","unitCode":"cq-yuzhong","education":"EDUCATION_BACHELOR"}`, subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION},
		{"unmasked name, escaped", "subsidy.in.enrolment.trainee_registered", json, `{"personKey":"` + pk + `", "masked_name" : "\u5f20\u4e09\u4e30","unitCode":"cq-yuzhong","education":"EDUCATION_BACHELOR"}`, subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION},
		{"unmasked name, protobuf", "subsidy.in.enrolment.trainee_registered", "", marshal(t, &subsidyv1.TraineeRegistered{PersonKey: pk, MaskedName: fullName, UnitCode: "cq-yuzhong", Education: subsidyv1.Education_EDUCATION_BACHELOR}), subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION},
		{"personal data on an inbound subject", "subsidy.in.enrolment.personal_data_submitted", json, `{"idNumber":"` + plainID + `","name":"` + fullName + `","payeeAccount":"` + plainAccount + `"}`, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_SUBJECT},
		{"personal data on an inbound subject, protobuf", "subsidy.in.enrolment.personal_data_submitted", "", marshal(t, &subsidyv1.PersonalDataSubmitted{IdNumber: plainID, Name: fullName, PayeeAccount: plainAccount}), subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_SUBJECT},
		// A subject's tokens are the publisher's: one too long to name a
		// stream was refused by the store and handed back forever (found
		// by review); rejections of an unknown source go to
		// rejection-unknown.
		{"long source token", "subsidy.in." + strings.Repeat("s", 1100) + ".x", json, `{}`, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_SUBJECT},
	}
	// The cases whose kept payload has a name or account masked besides
	// ID numbers (the masked name of "plain ID number" is not masked once
	// the number in it is).
	personal := map[string]bool{"plain ID number": true, "unmasked name": true, "unmasked name, escaped": true, "unmasked name, protobuf": true,
		"personal data on an inbound subject": true, "personal data on an inbound subject, protobuf": true}
	key := func(name string) string {
		switch name {
		case "ID number as the key":
			return plainID
		case "ID number in groups as the key":
			return "k-" + groupedID
		case "ID-shaped key":
			return "500101202506150001"
		}
		return "malformed-" + name
	}
	for i, tc := range cases {
		m := nats.NewMsg(tc.subject)
		m.Data = []byte(tc.body)
		m.Header.Set(natsbus.HeaderMsgID, key(tc.name))
		switch tc.name {
		case "ID number in a header":
			m.Header.Set("X-Trainee", plainID)
		case "mistyped ID number in a header":
			m.Header.Set("X-Trainee", mistypedID)
			m.Header.Set("X-Old-Id", oldID)
		}
		if tc.contentType != "" {
			m.Header.Set(natsbus.HeaderContentType, tc.contentType)
		}
		if _, err := r.js.PublishMsg(context.Background(), m); err != nil {
			t.Fatalf("case %d %s: publish: %v", i, tc.name, err)
		}
	}
	if err := in.handle(context.Background(), r.fetch(t, len(cases))); err != nil {
		t.Fatal(err)
	}
	got := map[string]*subsidyv1.FactRejected{}
	streams := map[string]string{}
	accepted := map[string]bool{}
	page, err := r.store.ReadAll(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range page {
		d, err := codec.Decode(rec)
		if err != nil {
			t.Fatal(err)
		}
		if rj, ok := d.Payload.(*subsidyv1.FactRejected); ok {
			got[rj.GetMessageId()] = rj
			streams[rj.GetMessageId()] = rec.Stream
		} else if strings.HasPrefix(d.Env.GetMessageId(), "malformed-") {
			accepted[d.Env.GetMessageId()] = true
		}
	}
	for _, rec := range page {
		for _, id := range []string{plainID, groupedID, mistypedID, oldID, fullName, plainAccount} {
			if strings.Contains(string(rec.Data)+string(rec.Metadata), id) {
				t.Errorf("event %d (%s) holds the plain ID number, name or account %q", rec.Position, rec.Type, id)
			}
		}
	}
	for _, tc := range cases {
		id := key(tc.name) // as recorded: masked if it holds a valid ID number
		if person.ContainsID(id) {
			id = person.RedactIDString(id)
		}
		rj := got[id]
		switch {
		case accepted[id]:
			t.Errorf("%s: accepted as an event; want rejection %s", tc.name, tc.want)
		case rj == nil:
			t.Errorf("%s: no rejection recorded; want %s", tc.name, tc.want)
		case rj.GetReason() != tc.want:
			t.Errorf("%s: rejected with %s (%s); want %s", tc.name, rj.GetReason(), rj.GetDetail(), tc.want)
		case personal[tc.name] && (len(rj.GetPayload()) != len(tc.body) || !rj.GetPayloadAltered()):
			t.Errorf("%s: kept %q (altered %t); want the message with its personal data masked, as long", tc.name, rj.GetPayload(), rj.GetPayloadAltered())
		case tc.name == "long source token" && streams[id] != "rejection-unknown":
			t.Errorf("%s: recorded in stream %.40q; want rejection-unknown", tc.name, streams[id])
		case !personal[tc.name] && string(rj.GetPayload()) != person.RedactIDString(kept(tc.body)) || rj.GetSubject() != person.RedactIDString(tc.subject):
			t.Errorf("%s: the rejection does not keep the original message (ID numbers masked): %q on %q", tc.name, rj.GetPayload(), rj.GetSubject())
		case tc.name == "oversized message" && !strings.Contains(rj.GetDetail(), "kept: the first 65536 of its 71680 bytes, masked; SHA-256 of the whole, masked: "):
			t.Errorf("%s: detail %q does not say what was kept", tc.name, rj.GetDetail())
		case tc.name == "ID number in a header" && rj.GetHeaders()["X-Trainee"] != maskedID:
			t.Errorf("%s: header kept as %q; want %q", tc.name, rj.GetHeaders()["X-Trainee"], maskedID)
		}
	}
}

// TestPlainAccountNumberRejected: a settlement to a trainee that names the
// account paid by its number is rejected (PLAIN_ACCOUNT_NUMBER), and the
// rejection keeps the message with the number masked: nothing stored holds
// it. The payment system's corrected settlement (a token) is then
// recorded.
func TestPlainAccountNumberRejected(t *testing.T) {
	const plain, masked = "6222020012345678901", "6222***********8901"
	r := newRig(t)
	ref, trainees := programme(t)
	var settle *simulate.Fact
	var before []simulate.Fact
	for i, f := range trainees {
		if m, ok := f.Msg.(*subsidyv1.PaymentSettled); ok && strings.HasPrefix(m.GetPaidToAccount(), "trainee-account-token-") {
			settle, before = &trainees[i], trainees[:i]
			break
		}
	}
	if settle == nil {
		t.Fatal("the programme pays no trainee directly")
	}
	r.publish(t, ref)
	r.publish(t, before)
	in := r.intake(t)
	handleAll(t, in, r.fetch(t, len(ref)+len(before)))
	bad := *settle
	m := proto.Clone(settle.Msg).(*subsidyv1.PaymentSettled)
	m.PaidToAccount = plain
	bad.Msg, bad.MsgID = m, settle.MsgID+"-plain"
	r.publish(t, []simulate.Fact{bad, *settle})
	msgs := r.fetch(t, 2)
	handleAll(t, in, msgs)
	// Redelivered after a restart (recorded, not acknowledged): the same
	// rejection, not a second one under a key derived from the plain
	// number (found by review: the kept payload and the redelivery's
	// differed, and the new key's digest let the number be recovered).
	h := head(t, r.store)
	if err := r.intake(t).handle(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	if got := head(t, r.store); got != h {
		t.Errorf("store head after redelivery = %d; want %d (nothing new)", got, h)
	}

	page, err := r.store.ReadAll(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var rejected *subsidyv1.FactRejected
	accepted := false
	for _, rec := range page {
		if strings.Contains(string(rec.Data)+string(rec.Metadata), plain) {
			t.Errorf("event %d (%s) holds the plain account number", rec.Position, rec.Type)
		}
		d, err := codec.Decode(rec)
		if err != nil {
			t.Fatal(err)
		}
		switch p := d.Payload.(type) {
		case *subsidyv1.FactRejected:
			if p.GetMessageId() == bad.MsgID {
				rejected = p
			}
		case *subsidyv1.PaymentSettled:
			accepted = accepted || p.GetPaidToAccount() == settle.Msg.(*subsidyv1.PaymentSettled).GetPaidToAccount()
		}
	}
	if rejected == nil || rejected.GetReason() != subsidyv1.ReasonCode_REASON_CODE_PLAIN_ACCOUNT_NUMBER {
		t.Fatalf("the settlement with the plain number: %v; want a PLAIN_ACCOUNT_NUMBER rejection", rejected)
	}
	kept := &subsidyv1.PaymentSettled{}
	if err := proto.Unmarshal(rejected.GetPayload(), kept); err != nil || kept.GetPaidToAccount() != masked {
		t.Errorf("the rejection keeps %q (%v); want the message with %q", kept.GetPaidToAccount(), err, masked)
	}
	// The rules made it, but the payload kept is not the one they
	// decided on: a replay must not decide it again.
	if d := rejected.GetDecided(); !rejected.GetPayloadAltered() || d == nil || d.GetFactType() != "subsidy.v1.PaymentSettled" || d.GetSource() != "payment" || d.GetAfterEventId() == "" {
		t.Errorf("the rejection records payload_altered %v, decided %v; want the masking and what the rules decided on", rejected.GetPayloadAltered(), d)
	}
	if !accepted {
		t.Error("the corrected settlement (a token) was not recorded")
	}
}
