package facts_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cqhrss/subsidyledger/events/facts"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var key = strings.Repeat("ab", 32)

func TestCatalogue(t *testing.T) {
	subjects := map[string]bool{}
	for _, k := range facts.All() {
		s := k.Subject("")
		if subjects[s] {
			t.Errorf("subject %s twice", s)
		}
		subjects[s] = true
		got, ok := facts.BySubject("", s)
		if !ok || got.Name != k.Name || got.Source != k.Source {
			t.Errorf("BySubject(%s) = %v, %v", s, got.Name, ok)
		}
		if n := k.New().ProtoReflect().Descriptor().FullName(); n != k.Name {
			t.Errorf("%s: New() is a %s", s, n)
		}
		// Every kind has schema rules: an empty message is a violation,
		// not an unknown fact.
		if r := facts.ReasonOf(facts.Validate(k.New())); r != subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION {
			t.Errorf("Validate(empty %s) = %s; want SCHEMA_VIOLATION", k.Name, r)
		}
	}
	if len(subjects) != 31 {
		t.Errorf("%d fact subjects; want 31", len(subjects))
	}
	for _, s := range []string{"subsidy.in.enrolment.enrolled", "subsidy.in.evaluation.assessment_recorded",
		"subsidy.in.payment.payment_settled", "subsidy.in.bureau.budget_allocated", "subsidy.in.district.entitlement_confirmed"} {
		if !subjects[s] {
			t.Errorf("no subject %s", s)
		}
	}
	if k, ok := facts.BySubject("test.in", "test.in.enrolment.enrolled"); !ok || k.Name != "subsidy.v1.Enrolled" {
		t.Errorf("custom prefix: %v %v", k.Name, ok)
	}
	// The ledger's own decisions are not facts.
	for _, s := range []string{"subsidy.in.bureau.subsidy_entitled", "subsidy.in.district.entitlement_held",
		"subsidy.in.payment.payment_ordered", "subsidy.in.enrolment", "subsidy.in.enrolment.enrolled.x", "other.enrolment.enrolled"} {
		if _, ok := facts.BySubject("", s); ok {
			t.Errorf("BySubject(%s) found a kind", s)
		}
	}
	for _, m := range []proto.Message{&subsidyv1.SubsidyEntitled{}, &subsidyv1.NoticeOpened{}, &subsidyv1.FactRejected{}, &subsidyv1.ViolationFlagged{}} {
		if facts.IsFact(m) {
			t.Errorf("%T is a fact", m)
		}
	}
	if len(facts.ByName("subsidy.v1.CertificateRevoked")) != 2 {
		t.Errorf("CertificateRevoked should arrive from two sources")
	}
}

func enrolledKind(t *testing.T) facts.Kind {
	k, ok := facts.BySubject("", "subsidy.in.enrolment.enrolled")
	if !ok {
		t.Fatal("no kind")
	}
	return k
}

func TestDecode(t *testing.T) {
	k := enrolledKind(t)
	msg := &subsidyv1.Enrolled{EnrolmentId: "e1", PersonKey: key, TrainingInstitutionId: "ti",
		Qualification: &subsidyv1.Qualification{Occupation: 3, Level: 1}, EnrolledOn: &subsidyv1.Date{Year: 2025, Month: 3, Day: 1}}
	bin, _ := proto.Marshal(msg)
	js, _ := protojson.Marshal(msg)
	withUnknown := append(append([]byte(nil), bin...), 0xa0, 0x06, 0x01) // field 100, varint 1
	nested := proto.Clone(msg).(*subsidyv1.Enrolled)
	nested.Qualification.ProtoReflect().SetUnknown(protoreflect.RawFields{0xa0, 0x06, 0x01})
	nestedUnknown, _ := proto.Marshal(nested)
	tests := []struct {
		name, ct string
		payload  []byte
		want     subsidyv1.ReasonCode
	}{
		{"protobuf", "application/protobuf", bin, 0},
		{"default is protobuf", "", bin, 0},
		{"x-protobuf", "application/x-protobuf", bin, 0},
		{"json", "application/json", js, 0},
		{"json with charset", "application/json; charset=utf-8", js, 0},
		{"json field names", "application/json", []byte(`{"enrolment_id":"e1","person_key":"` + key + `"}`), 0},
		{"unsupported", "text/plain", js, subsidyv1.ReasonCode_REASON_CODE_UNSUPPORTED_CONTENT_TYPE},
		{"malformed content type", "application/", js, subsidyv1.ReasonCode_REASON_CODE_UNSUPPORTED_CONTENT_TYPE},
		{"json as protobuf", "", js, subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE},
		{"bad json", "application/json", []byte(`{"enrolmentId":`), subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE},
		{"unknown json field", "application/json", []byte(`{"enrolmentId":"e1","idNumber":"x"}`), subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE},
		{"unknown protobuf field", "", withUnknown, subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE},
		{"unknown protobuf field in the qualification", "", nestedUnknown, subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE},
		{"at the size limit", "application/json", append([]byte(`"`), bytes.Repeat([]byte("a"), facts.MaxPayloadSize-1)...), subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE},
		{"over the size limit", "application/json", bytes.Repeat([]byte(" "), facts.MaxPayloadSize+1), subsidyv1.ReasonCode_REASON_CODE_OVERSIZED},
	}
	for _, tt := range tests {
		m, err := facts.Decode(k, tt.ct, tt.payload)
		if got := facts.ReasonOf(err); got != tt.want {
			t.Errorf("%s: Decode = %v; want %s", tt.name, err, tt.want)
			continue
		}
		if tt.want == 0 && tt.name != "json field names" && !proto.Equal(m, msg) {
			t.Errorf("%s: Decode = %v; want %v", tt.name, m, msg)
		}
	}
	if _, err := facts.Decode(facts.Kind{}, "", bin); facts.ReasonOf(err) != subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_SUBJECT {
		t.Errorf("Decode(zero kind) = %v", err)
	}
}

func date(y, m, d int32) *subsidyv1.Date { return &subsidyv1.Date{Year: y, Month: m, Day: d} }

func assessment() *subsidyv1.AssessmentRecorded {
	return &subsidyv1.AssessmentRecorded{AssessmentId: "a1", PersonKey: key, EvaluationInstitutionId: "ev",
		Qualification: &subsidyv1.Qualification{Occupation: 1, Level: 3}, Attempt: 1, TheoryScore: 60, PracticalScore: 59,
		AssessedOn: date(2025, 6, 30)}
}

func TestValidate(t *testing.T) {
	const (
		ok     = subsidyv1.ReasonCode_REASON_CODE_UNSPECIFIED
		schema = subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION
		score  = subsidyv1.ReasonCode_REASON_CODE_SCORE_OUT_OF_RANGE
		plain  = subsidyv1.ReasonCode_REASON_CODE_INVALID_PERSON_ID
	)
	a := func(f func(*subsidyv1.AssessmentRecorded)) proto.Message {
		m := assessment()
		f(m)
		return m
	}
	tests := []struct {
		name  string
		msg   proto.Message
		want  subsidyv1.ReasonCode
		field string
	}{
		{"valid", assessment(), ok, ""},
		{"score 0 and 100", a(func(m *subsidyv1.AssessmentRecorded) { m.TheoryScore, m.PracticalScore = 0, 100 }), ok, ""},
		{"score 101", a(func(m *subsidyv1.AssessmentRecorded) { m.PracticalScore = 101 }), score, "practical_score"},
		{"score -1", a(func(m *subsidyv1.AssessmentRecorded) { m.TheoryScore = -1 }), score, "theory_score"},
		{"attempt 0", a(func(m *subsidyv1.AssessmentRecorded) { m.Attempt = 0 }), schema, "attempt"},
		{"attempt 99", a(func(m *subsidyv1.AssessmentRecorded) { m.Attempt = 99 }), ok, ""},
		{"attempt 100", a(func(m *subsidyv1.AssessmentRecorded) { m.Attempt = 100 }), schema, "attempt"},
		{"no person key", a(func(m *subsidyv1.AssessmentRecorded) { m.PersonKey = "" }), schema, "person_key"},
		{"upper-case person key", a(func(m *subsidyv1.AssessmentRecorded) { m.PersonKey = strings.ToUpper(key) }), schema, "person_key"},
		{"ID number as person key", a(func(m *subsidyv1.AssessmentRecorded) { m.PersonKey = "11010519491231002X" }), plain, "person_key"},
		{"level unspecified", a(func(m *subsidyv1.AssessmentRecorded) { m.Qualification.Level = 0 }), schema, "qualification.level"},
		{"occupation unknown", a(func(m *subsidyv1.AssessmentRecorded) { m.Qualification.Occupation = 11 }), schema, "qualification.occupation"},
		{"no qualification", a(func(m *subsidyv1.AssessmentRecorded) { m.Qualification = nil }), schema, "qualification"},
		{"30 February", a(func(m *subsidyv1.AssessmentRecorded) { m.AssessedOn = date(2025, 2, 30) }), schema, "assessed_on"},
		{"year 2100", a(func(m *subsidyv1.AssessmentRecorded) { m.AssessedOn = date(2100, 1, 1) }), schema, "assessed_on"},
		{"last day in range", a(func(m *subsidyv1.AssessmentRecorded) { m.AssessedOn = date(2099, 12, 31) }), ok, ""},
		{"id with space", a(func(m *subsidyv1.AssessmentRecorded) { m.AssessmentId = "a 1" }), schema, "assessment_id"},
		{"id too long", a(func(m *subsidyv1.AssessmentRecorded) { m.AssessmentId = strings.Repeat("a", facts.MaxIDLen+1) }), schema, "assessment_id"},
		{"id at the limit", a(func(m *subsidyv1.AssessmentRecorded) { m.AssessmentId = strings.Repeat("a", facts.MaxIDLen) }), ok, ""},
		{"ID number in an id", a(func(m *subsidyv1.AssessmentRecorded) { m.AssessmentId = "A-11010519491231002X" }), plain, "assessment_id"},
		// In prose, an ID number written in groups, mistyped or of the old
		// 15 digits still names a person; in an identifier only a valid one
		// counts (another system's numbering may look like a mistyped one).
		{"ID number in groups in prose", &subsidyv1.PaymentFailed{PaymentOrderId: "po", EntitlementId: "e", Failure: "payee 110105 19491231 002X account closed", FailedOn: date(2025, 8, 1)}, plain, "failure"},
		{"mistyped ID number in prose", &subsidyv1.PaymentFailed{PaymentOrderId: "po", EntitlementId: "e", Failure: "payee 110105194912310021 account closed", FailedOn: date(2025, 8, 1)}, plain, "failure"},
		{"old ID number in prose", &subsidyv1.PaymentFailed{PaymentOrderId: "po", EntitlementId: "e", Failure: "payee 110105491231002 account closed", FailedOn: date(2025, 8, 1)}, plain, "failure"},
		{"ID number in groups in an id", a(func(m *subsidyv1.AssessmentRecorded) { m.AssessmentId = "110105-19491231-002X" }), plain, "assessment_id"},
		{"ID-shaped id with another check digit", a(func(m *subsidyv1.AssessmentRecorded) { m.AssessmentId = "500101202506150001" }), ok, ""},
		{"negative fee", &subsidyv1.FeeSchedulePublished{FeeScheduleId: "f", EvaluationInstitutionId: "ev", Qualification: &subsidyv1.Qualification{Occupation: 1, Level: 1}, FeeFen: -1, EffectiveFrom: date(2025, 1, 1)}, schema, "fee_fen"},
		{"free fee", &subsidyv1.FeeSchedulePublished{FeeScheduleId: "f", EvaluationInstitutionId: "ev", Qualification: &subsidyv1.Qualification{Occupation: 1, Level: 1}, FeeFen: 0, EffectiveFrom: date(2025, 1, 1)}, ok, ""},
		{"fee ends before it starts", &subsidyv1.FeeSchedulePublished{FeeScheduleId: "f", EvaluationInstitutionId: "ev", Qualification: &subsidyv1.Qualification{Occupation: 1, Level: 1}, FeeFen: 1, EffectiveFrom: date(2025, 1, 2), EffectiveTo: date(2025, 1, 1)}, schema, "effective_to"},
		{"absurd fee", &subsidyv1.FeeSchedulePublished{FeeScheduleId: "f", EvaluationInstitutionId: "ev", Qualification: &subsidyv1.Qualification{Occupation: 1, Level: 1}, FeeFen: facts.MaxAmountFen + 1, EffectiveFrom: date(2025, 1, 1)}, schema, "fee_fen"},
		{"budget at the limit", &subsidyv1.BudgetAllocated{AllocationId: "b", Year: 2025, UnitCode: "cq-yuzhong", AmountFen: facts.MaxBudgetFen}, ok, ""},
		{"budget over the limit", &subsidyv1.BudgetAllocated{AllocationId: "b", Year: 2025, UnitCode: "cq-yuzhong", AmountFen: facts.MaxBudgetFen + 1}, schema, "amount_fen"},
		{"budget year 1999", &subsidyv1.BudgetAllocated{AllocationId: "b", Year: 1999, UnitCode: "cq-yuzhong", AmountFen: 1}, schema, "year"},
		{"no budget", &subsidyv1.BudgetAllocated{AllocationId: "b", Year: 2025, UnitCode: "cq-yuzhong"}, schema, "amount_fen"},
		{"unmasked name", &subsidyv1.TraineeRegistered{PersonKey: key, UnitCode: "cq-yuzhong", Education: 2, MaskedName: "张三"}, schema, "masked_name"},
		{"masked", &subsidyv1.TraineeRegistered{PersonKey: key, UnitCode: "cq-yuzhong", Education: 2, MaskedName: "张*", MaskedId: "1101**********002X"}, ok, ""},
		{"plain ID as masked id", &subsidyv1.TraineeRegistered{PersonKey: key, UnitCode: "cq-yuzhong", Education: 2, MaskedId: "11010519491231002X"}, plain, "masked_id"},
		{"name masked but its last character", &subsidyv1.TraineeRegistered{PersonKey: key, UnitCode: "cq-yuzhong", Education: 2, MaskedName: "李娜娜*", MaskedId: ""}, schema, "masked_name"},
		{"name with one of three shown", &subsidyv1.TraineeRegistered{PersonKey: key, UnitCode: "cq-yuzhong", Education: 2, MaskedName: "张*三", MaskedId: ""}, ok, ""},
		{"four-character name", &subsidyv1.TraineeRegistered{PersonKey: key, UnitCode: "cq-yuzhong", Education: 2, MaskedName: "欧**明", MaskedId: ""}, ok, ""},
		{"two characters, the first masked", &subsidyv1.TraineeRegistered{PersonKey: key, UnitCode: "cq-yuzhong", Education: 2, MaskedName: "*三", MaskedId: ""}, ok, ""},
		{"one character masked", &subsidyv1.TraineeRegistered{PersonKey: key, UnitCode: "cq-yuzhong", Education: 2, MaskedName: "*", MaskedId: ""}, ok, ""},
		{"one character shown", &subsidyv1.TraineeRegistered{PersonKey: key, UnitCode: "cq-yuzhong", Education: 2, MaskedName: "张", MaskedId: ""}, schema, "masked_name"},
		{"masked id showing 17 characters", &subsidyv1.TraineeRegistered{PersonKey: key, UnitCode: "cq-yuzhong", Education: 2, MaskedName: "", MaskedId: "11010519491231002*"}, schema, "masked_id"},
		{"masked id 6+8+4", &subsidyv1.TraineeRegistered{PersonKey: key, UnitCode: "cq-yuzhong", Education: 2, MaskedName: "", MaskedId: "110105********002X"}, ok, ""},
		{"masked id showing the birth year", &subsidyv1.TraineeRegistered{PersonKey: key, UnitCode: "cq-yuzhong", Education: 2, MaskedName: "", MaskedId: "1101051949******002X"}, schema, "masked_id"},
		{"masked id of 17", &subsidyv1.TraineeRegistered{PersonKey: key, UnitCode: "cq-yuzhong", Education: 2, MaskedName: "", MaskedId: "1101*********002X"}, schema, "masked_id"},
		{"masked id with a letter", &subsidyv1.TraineeRegistered{PersonKey: key, UnitCode: "cq-yuzhong", Education: 2, MaskedName: "", MaskedId: "1101**********00ZX"}, schema, "masked_id"},
		{"graduation year 1949", &subsidyv1.TraineeRegistered{PersonKey: key, UnitCode: "cq-yuzhong", Education: 2, GraduationYear: 1949}, schema, "graduation_year"},
		{"confirmed student without year", &subsidyv1.EligibilityEvidenceRecorded{EvidenceId: "e", PersonKey: key, Category: 1, Source: "x", SnapshotAt: timestamppb.New(timestamppb.Now().AsTime()), Confirmed: true}, schema, "graduation_year"},
		{"bad timestamp", &subsidyv1.EligibilityEvidenceRecorded{EvidenceId: "e", PersonKey: key, Category: 2, Source: "x", SnapshotAt: &timestamppb.Timestamp{Nanos: -1}}, schema, "snapshot_at"},
		{"write-off without reason passes schema", &subsidyv1.WriteOffRequested{ClawbackId: "c", AmountFen: 1, OfficialId: "o"}, ok, ""},
		{"official id with a zero-width space", &subsidyv1.WriteOffRequested{ClawbackId: "c", AmountFen: 1, OfficialId: "cq-official-1\u200b"}, schema, "official_id"},
		{"official id with a word joiner", &subsidyv1.EntitlementApproved{EntitlementId: "e", OfficialId: "cq-\u2060official-1", ApprovedOn: date(2025, 1, 1)}, schema, "official_id"},
		{"official id with a variation selector", &subsidyv1.EntitlementApproved{EntitlementId: "e", OfficialId: "official-li\ufe0f", ApprovedOn: date(2025, 1, 1)}, schema, "official_id"},
		{"official id with a Hangul filler", &subsidyv1.EntitlementApproved{EntitlementId: "e", OfficialId: "official-li\u3164", ApprovedOn: date(2025, 1, 1)}, schema, "official_id"},
		{"official id with a braille blank", &subsidyv1.EntitlementApproved{EntitlementId: "e", OfficialId: "\u2800official-li", ApprovedOn: date(2025, 1, 1)}, schema, "official_id"},
		{"institution id in Chinese", &subsidyv1.InstitutionSuspended{InstitutionId: "重庆数字学校", Reason: "x", OfficialId: "o", SuspendedOn: date(2025, 1, 1)}, ok, ""},
		{"successor on a unit in force", &subsidyv1.UnitDefined{UnitCode: "cq-x", Name: "x", Kind: 1, ValidFrom: date(2025, 1, 1), SuccessorCode: "cq-y"}, schema, "successor_code"},
		{"not a fact", &subsidyv1.SubsidyEntitled{}, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_SUBJECT, ""},
	}
	for _, tt := range tests {
		err := facts.Validate(tt.msg)
		got := facts.ReasonOf(err)
		if got != tt.want {
			t.Errorf("%s: Validate = %v; want %s", tt.name, err, tt.want)
			continue
		}
		var fe *facts.Error
		if err != nil {
			fe = err.(*facts.Error)
			if fe.Field != tt.field {
				t.Errorf("%s: field %q; want %q", tt.name, fe.Field, tt.field)
			}
			if strings.Contains(err.Error(), "11010519491231002X") {
				t.Errorf("%s: error %q repeats the ID number", tt.name, err)
			}
		}
	}
	// Unknown fields set on a message in code are refused too.
	m := assessment()
	m.ProtoReflect().SetUnknown(protoreflect.RawFields{0xa0, 0x06, 0x01})
	if got := facts.ReasonOf(facts.Validate(m)); got != subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE {
		t.Errorf("unknown fields: %s", got)
	}
	// And inside a message the fact holds.
	m = assessment()
	m.Qualification.ProtoReflect().SetUnknown(protoreflect.RawFields{0xa0, 0x06, 0x01})
	if got := facts.ReasonOf(facts.Validate(m)); got != subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE {
		t.Errorf("unknown fields in the qualification: %s", got)
	}
}

func TestAccountsAreNotScannedForIDs(t *testing.T) {
	// 19 digits whose last 18 form a valid ID number.
	m := &subsidyv1.PaymentSettled{PaymentOrderId: "o", EntitlementId: "e", AmountFen: 1,
		PaidToAccount: "6" + "500103200305120011", SettledOn: date(2025, 1, 1)}
	if err := facts.Validate(m); err != nil {
		t.Errorf("Validate(account that contains ID digits) = %v", err)
	}
}
