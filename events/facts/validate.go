package facts

import (
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/events/refdata"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Schema limits Validate enforces.
const (
	// MaxIDLen is the longest identifier (ids, codes, accounts), in bytes.
	MaxIDLen = 128
	// MaxTextLen is the longest free-text field, in bytes.
	MaxTextLen = 2000
	// MaxAmountFen bounds per-person amounts (fees, advances, payments,
	// repayments, write-offs): 1,000,000 CNY.
	MaxAmountFen = 100_000_000
	// MaxBudgetFen bounds a budget allocation: 10,000,000,000 CNY.
	MaxBudgetFen = 1_000_000_000_000
	// MaxAttempt bounds an assessment attempt number.
	MaxAttempt = 99
	// MaxTarget bounds an annual target.
	MaxTarget = 10_000_000
)

// Dates in facts must lie in [MinDate, MaxDate]; years in [MinYear, MaxYear].
var (
	MinDate = refdata.D(1950, 1, 1)
	MaxDate = refdata.D(2099, 12, 31)
)

const (
	MinYear = 2000
	MaxYear = 2099
)

// freeText are the fields that hold prose rather than identifiers.
var freeText = map[protoreflect.Name]bool{
	"name": true, "reason": true, "summary": true, "note": true, "failure": true,
	"source_document": true, "masked_name": true, "masked_id": true, "source": true,
}

// required lists, per message, the fields that must be set (non-empty
// string, non-zero number or enum, present message).
var required = map[protoreflect.FullName][]protoreflect.Name{
	"subsidy.v1.UnitDefined":                 {"unit_code", "name", "kind", "valid_from"},
	"subsidy.v1.InstitutionRegistered":       {"institution_id", "name", "kind", "unit_code"},
	"subsidy.v1.InstitutionApproved":         {"approval_id", "institution_id", "occupation", "valid_from"},
	"subsidy.v1.InstitutionSuspended":        {"institution_id", "reason", "official_id", "suspended_on"},
	"subsidy.v1.InstitutionReinstated":       {"institution_id", "official_id", "reinstated_on"},
	"subsidy.v1.AnnualTargetSet":             {"year"},
	"subsidy.v1.BudgetAllocated":             {"allocation_id", "year", "unit_code", "amount_fen"},
	"subsidy.v1.FraudFound":                  {"finding_id", "entitlement_id", "official_id", "found_on"},
	"subsidy.v1.CertificateRevoked":          {"certificate_id", "person_key", "qualification", "revoked_on"},
	"subsidy.v1.HoldPlaced":                  {"hold_id", "entitlement_id", "official_id", "placed_on"},
	"subsidy.v1.HoldLifted":                  {"lift_id", "entitlement_id", "hold_id", "official_id", "lifted_on"},
	"subsidy.v1.WriteOffRequested":           {"clawback_id", "amount_fen", "official_id"},
	"subsidy.v1.ClawbackWrittenOff":          {"clawback_id", "amount_fen", "requested_by", "approved_by"},
	"subsidy.v1.EntitlementConfirmed":        {"entitlement_id", "official_id", "confirmed_on"},
	"subsidy.v1.EntitlementApproved":         {"entitlement_id", "official_id", "approved_on"},
	"subsidy.v1.ObjectionRaised":             {"objection_id", "entitlement_id", "raised_on"},
	"subsidy.v1.ObjectionResolved":           {"objection_id", "entitlement_id", "official_id", "resolved_on"},
	"subsidy.v1.NoticeClosed":                {"entitlement_id", "closed_on"},
	"subsidy.v1.PaymentRequested":            {"entitlement_id", "official_id", "requested_on"},
	"subsidy.v1.TraineeRegistered":           {"person_key", "unit_code", "education"},
	"subsidy.v1.EligibilityEvidenceRecorded": {"evidence_id", "person_key", "category", "source", "snapshot_at"},
	"subsidy.v1.Enrolled":                    {"enrolment_id", "person_key", "training_institution_id", "qualification", "enrolled_on"},
	"subsidy.v1.TrainingCompleted":           {"enrolment_id", "person_key", "training_institution_id", "qualification", "completed_on"},
	"subsidy.v1.AdvancePaymentRecorded":      {"advance_id", "training_institution_id", "person_key", "qualification", "amount_fen", "paid_on"},
	"subsidy.v1.FeeSchedulePublished":        {"fee_schedule_id", "evaluation_institution_id", "qualification", "effective_from"},
	"subsidy.v1.AssessmentRecorded":          {"assessment_id", "person_key", "evaluation_institution_id", "qualification", "attempt", "assessed_on"},
	"subsidy.v1.CertificateIssued":           {"certificate_id", "person_key", "evaluation_institution_id", "qualification", "assessment_id", "issued_on"},
	"subsidy.v1.PaymentSettled":              {"payment_order_id", "entitlement_id", "paid_to_account", "settled_on"},
	"subsidy.v1.PaymentFailed":               {"payment_order_id", "entitlement_id", "failed_on"},
	"subsidy.v1.RepaymentReceived":           {"repayment_id", "clawback_id", "amount_fen", "received_on"},
}

func violation(field, format string, args ...any) *Error {
	return &Error{Reason: subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION, Field: field, Detail: fmt.Sprintf(format, args...)}
}

// Validate checks a fact against the schema rules that need no history:
// required fields present; identifiers non-empty, at most MaxIDLen bytes, no
// white space or control characters; person keys well-formed
// (person.ValidKey); enums set and known; Date fields real calendar dates in
// [MinDate, MaxDate] with a range's end not before its start; years in
// [MinYear, MaxYear]; scores 0..100 (SCORE_OUT_OF_RANGE); attempt
// 1..MaxAttempt; amounts >= 0 and at most MaxAmountFen (MaxBudgetFen for a
// budget); free text at most MaxTextLen bytes; masked display fields really
// masked; and no resident ID number in any field other than bank accounts
// and references (§3).
//
// Errors are *Error with REASON_CODE_SCHEMA_VIOLATION (SCORE_OUT_OF_RANGE for
// scores, INVALID_PERSON_ID for a plain ID number) and Field naming the field.
func Validate(msg proto.Message) error {
	if msg == nil {
		return violation("", "no message")
	}
	m := msg.ProtoReflect()
	name := m.Descriptor().FullName()
	req, ok := required[name]
	if !ok {
		return &Error{Reason: subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_SUBJECT, Detail: string(name) + " is not an inbound fact"}
	}
	if hasUnknown(msg) {
		return &Error{Reason: subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE, Detail: "fields unknown to " + string(name)}
	}
	fields := m.Descriptor().Fields()
	for _, r := range req {
		fd := fields.ByName(r)
		if fd == nil {
			panic("facts: required field " + string(r) + " not in " + string(name))
		}
		if !m.Has(fd) {
			return violation(string(r), "required")
		}
	}
	if err := walk(m, ""); err != nil {
		return err
	}
	return crossField(msg)
}

func walk(m protoreflect.Message, prefix string) error {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		path := prefix + string(fd.Name())
		v := m.Get(fd)
		switch fd.Kind() {
		case protoreflect.StringKind:
			if err := checkString(fd.Name(), path, v.String()); err != nil {
				return err
			}
		case protoreflect.EnumKind:
			n := v.Enum()
			if fd.Enum().Values().ByNumber(n) == nil {
				return violation(path, "unknown value %d", n)
			}
			if n == 0 {
				return violation(path, "unspecified")
			}
		case protoreflect.Int32Kind, protoreflect.Uint32Kind, protoreflect.Int64Kind:
			if err := checkNumber(m.Descriptor().FullName(), fd.Name(), path, v); err != nil {
				return err
			}
		case protoreflect.MessageKind:
			if !m.Has(fd) {
				continue
			}
			switch sub := v.Message().Interface().(type) {
			case *subsidyv1.Date:
				d, ok := refdata.FromProto(sub)
				if !ok || d.IsZero() {
					return violation(path, "not a calendar date")
				}
				if d < MinDate || d > MaxDate {
					return violation(path, "%s outside %s..%s", d, MinDate, MaxDate)
				}
			case *timestamppb.Timestamp:
				if err := sub.CheckValid(); err != nil {
					return violation(path, "invalid timestamp")
				}
				t := sub.AsTime()
				if t.Year() < MinDate.Year() || t.Year() > MaxDate.Year() {
					return violation(path, "outside %d..%d", MinDate.Year(), MaxDate.Year())
				}
			default:
				if err := walk(v.Message(), path+"."); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func checkString(name protoreflect.Name, path, s string) error {
	if !utf8.ValidString(s) {
		return violation(path, "not UTF-8")
	}
	if accountField(name) && person.ContainsLoneID(s) || !accountField(name) && containsIDNumber(name, s) {
		return &Error{Reason: subsidyv1.ReasonCode_REASON_CODE_INVALID_PERSON_ID, Field: path, Detail: "contains a resident ID number (or what looks like one); send the person key"}
	}
	switch {
	case name == "person_key":
		if s != "" && !person.ValidKey(s) {
			return violation(path, "not a person key (64 lower-case hex characters)")
		}
	case name == "masked_name":
		if len(s) > MaxTextLen {
			return violation(path, "longer than %d bytes", MaxTextLen)
		}
		if !maskedName(s) {
			return violation(path, "not masked: every character but the first and the last is '*' (张*三, 欧**明), and of two characters one (张*)")
		}
	case name == "masked_id":
		if !maskedID(s) {
			return violation(path, "not masked: 18 characters whose birth date (characters 7 to 14) is '*' and the rest digits or X (5001**********123X, 500103********0011), or empty")
		}
	case freeText[name]:
		if len(s) > MaxTextLen {
			return violation(path, "longer than %d bytes", MaxTextLen)
		}
	default:
		if len(s) > MaxIDLen {
			return violation(path, "longer than %d bytes", MaxIDLen)
		}
		for _, r := range s {
			if unicode.IsSpace(r) || unicode.IsControl(r) || Invisible(r) {
				return violation(path, "white space, control or invisible character in an identifier")
			}
		}
	}
	return nil
}

// IsMaskedName reports whether s is a name masked as DOMAIN.md §3 shows
// (see masked_name's check): a rejection keeps a name only if it is.
func IsMaskedName(s string) bool { return maskedName(s) }

// maskedName reports whether s is a name masked as DOMAIN.md §3 shows
// (person.MaskName): at most its first and last characters shown, and of a
// two-character name at most one; empty is allowed (no name given).
// Checking for one '*' anywhere let 李娜娜* through: the whole name.
func maskedName(s string) bool {
	first, fn := utf8.DecodeRuneInString(s)
	last, ln := utf8.DecodeLastRuneInString(s)
	switch n := utf8.RuneCountInString(s); {
	case n == 0:
		return true
	case n == 1:
		return first == '*'
	case n == 2:
		return first == '*' || last == '*'
	default:
		return strings.Trim(s[fn:len(s)-ln], "*") == ""
	}
}

// maskedID reports whether s is an ID number masked so that the birth
// date (characters 7 to 14) is hidden, as person.MaskID does and the
// common 6+8+4 display does, every other character a digit, X or '*';
// empty is allowed. Checking for one '*' anywhere let 11010519491231002*
// through: 17 of 18 characters, the 18th being their check digit.
func maskedID(s string) bool {
	if s == "" {
		return true
	}
	if len(s) != 18 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case i >= 6 && i < 14:
			if c != '*' {
				return false
			}
		case c != '*' && (c < '0' || c > '9') && c != 'X' && c != 'x':
			return false
		}
	}
	return true
}

// accountField reports whether a field holds a bank account or bank
// reference: there only an ID number standing alone is one
// (person.ContainsLoneID), since a 19-digit account may contain 18 digits
// that pass the check.
func accountField(name protoreflect.Name) bool {
	return strings.HasSuffix(string(name), "account") || name == "bank_reference"
}

// containsIDNumber reports whether s, the value of field name, holds a
// resident ID number: a valid one anywhere (person.ContainsID), and in
// prose also one with a wrong check digit or an old 15-digit one
// (person.ContainsIDLike), which still name a person. Identifiers get the
// strict test: another system's 18-digit number made of a region code, a
// date and a sequence is not personal data.
func containsIDNumber(name protoreflect.Name, s string) bool {
	if freeText[name] {
		return person.ContainsIDLike(s)
	}
	return person.ContainsID(s)
}

func checkNumber(msg protoreflect.FullName, name protoreflect.Name, path string, v protoreflect.Value) error {
	var n int64
	switch x := v.Interface().(type) {
	case int32:
		n = int64(x)
	case uint32:
		n = int64(x)
	case int64:
		n = x
	}
	bad := func(lo, hi int64) error {
		if n < lo || n > hi {
			return violation(path, "%d outside %d..%d", n, lo, hi)
		}
		return nil
	}
	switch {
	case name == "theory_score" || name == "practical_score":
		if n < 0 || n > 100 {
			return &Error{Reason: subsidyv1.ReasonCode_REASON_CODE_SCORE_OUT_OF_RANGE, Field: path, Detail: fmt.Sprintf("%d outside 0..100", n)}
		}
	case name == "attempt":
		return bad(1, MaxAttempt)
	case name == "year":
		return bad(MinYear, MaxYear)
	case name == "graduation_year":
		if n != 0 {
			return bad(1950, MaxYear)
		}
	case name == "target":
		return bad(0, MaxTarget)
	case msg == "subsidy.v1.BudgetAllocated" && name == "amount_fen":
		return bad(0, MaxBudgetFen)
	case strings.HasSuffix(string(name), "_fen"):
		return bad(0, MaxAmountFen)
	}
	return nil
}

// crossField checks relations between fields of one message.
func crossField(msg proto.Message) error {
	rangeCheck := func(field string, from, to *subsidyv1.Date) error {
		f, _ := refdata.FromProto(from)
		t, _ := refdata.FromProto(to)
		if !t.IsZero() && t < f {
			return violation(field, "%s before start %s", t, f)
		}
		return nil
	}
	switch m := msg.(type) {
	case *subsidyv1.UnitDefined:
		if m.GetValidTo() == nil && m.GetSuccessorCode() != "" {
			return violation("successor_code", "set on a unit still in force")
		}
		return rangeCheck("valid_to", m.GetValidFrom(), m.GetValidTo())
	case *subsidyv1.InstitutionApproved:
		return rangeCheck("valid_to", m.GetValidFrom(), m.GetValidTo())
	case *subsidyv1.FeeSchedulePublished:
		return rangeCheck("effective_to", m.GetEffectiveFrom(), m.GetEffectiveTo())
	case *subsidyv1.EligibilityEvidenceRecorded:
		switch m.GetCategory() {
		case subsidyv1.EligibilityCategory_ELIGIBILITY_CATEGORY_GRADUATING_STUDENT:
			if m.GetConfirmed() && m.GetGraduationYear() == 0 {
				return violation("graduation_year", "required for a confirmed graduating student")
			}
		case subsidyv1.EligibilityCategory_ELIGIBILITY_CATEGORY_ENTERPRISE_EMPLOYEE:
			if m.GetConfirmed() && m.GetInsuredFrom() == nil {
				return violation("insured_from", "required for a confirmed enterprise employee")
			}
		}
		return rangeCheck("insured_to", m.GetInsuredFrom(), m.GetInsuredTo())
	}
	return nil
}

// hasUnknown reports whether m or any singular message inside it carries
// fields unknown to the schema. It visits only the message-typed fields
// (listed once per message type), not every field.
func hasUnknown(msg proto.Message) bool {
	var rec func(m protoreflect.Message) bool
	rec = func(m protoreflect.Message) bool {
		if len(m.GetUnknown()) > 0 {
			return true
		}
		for _, fd := range messageFields(m.Descriptor()) {
			if m.Has(fd) && rec(m.Get(fd).Message()) {
				return true
			}
		}
		return false
	}
	return rec(msg.ProtoReflect())
}

// msgFields caches, per message type, its singular message-typed fields.
var msgFields sync.Map // protoreflect.FullName → []protoreflect.FieldDescriptor

func messageFields(md protoreflect.MessageDescriptor) []protoreflect.FieldDescriptor {
	if v, ok := msgFields.Load(md.FullName()); ok {
		return v.([]protoreflect.FieldDescriptor)
	}
	var out []protoreflect.FieldDescriptor
	fields := md.Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() {
			out = append(out, fd)
		}
	}
	msgFields.Store(md.FullName(), out)
	return out
}

// Invisible reports whether r shows nothing, or nothing of its own, where
// an identifier is read: format characters (Cf: U+200B, U+2060, U+FEFF),
// combining and enclosing marks (Mn, Me: variation selectors, U+034F),
// and the blank letters and symbols (the Hangul fillers, the braille
// blank). Two ids differing by one read the same (an official approving
// what "they" confirmed), so identifiers refuse them.
func Invisible(r rune) bool {
	switch r {
	case '\u115f', '\u1160', '\u3164', '\uffa0', '\u2800':
		return true
	}
	return unicode.In(r, unicode.Cf, unicode.Mn, unicode.Me)
}
