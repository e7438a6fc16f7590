package redecide_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/redecide"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ledger records facts in a bbolt store the way the intake does: decide on
// the World, append the fact and its derived events (envelopes with source,
// causation and rule-set version), fold them. tamper, if set, may change a
// decision before it is appended: a faulty or altered ledger.
type ledger struct {
	t      *testing.T
	s      *bolt.Store
	w      *rules.World
	n      int
	tamper func(d *rules.Decision)
	last   events.ID // the last event appended: the point a rejection is decided at
}

func newLedger(t *testing.T) *ledger {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "ledger.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &ledger{t: t, s: s, w: rules.NewWorld(rules.DefaultRuleSet())}
}

func (l *ledger) record(m proto.Message) {
	l.t.Helper()
	l.n++
	key := fmt.Sprintf("msg-%d", l.n)
	f := rules.Fact{EventID: events.DeriveID("message", key), MessageID: key, Source: "test", Payload: m}
	d, rej := l.w.Decide(f)
	if rej != nil {
		l.t.Fatalf("%T rejected: %v", m, rej)
	}
	if l.tamper != nil {
		l.tamper(&d)
	}
	at := timestamppb.New(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	var data []events.EventData
	for _, ev := range d.Events {
		env := &subsidyv1.Envelope{Source: "test", MessageId: key, CorrelationId: key, OccurredAt: at, RecordedAt: at}
		if ev.Derived {
			env = &subsidyv1.Envelope{Source: redecide.LedgerSource, CausationId: f.EventID.String(), CorrelationId: key, RuleSetVersion: d.RuleSetVersion, OccurredAt: at, RecordedAt: at}
		}
		e, err := codec.Encode(ev.ID, d.Stream, env, ev.Payload)
		if err != nil {
			l.t.Fatal(err)
		}
		data = append(data, e)
	}
	l.append(d.Stream, data, d.Events)
}

// append appends data to stream and folds evs, its events.
func (l *ledger) append(stream string, data []events.EventData, evs []rules.Event) {
	l.t.Helper()
	rev, exists := l.w.StreamRevision(stream)
	expected, next := events.NoStream, uint64(0)
	if exists {
		expected, next = events.Exact(rev), rev+1
	}
	if _, err := l.s.Append(context.Background(), stream, expected, data...); err != nil {
		l.t.Fatal(err)
	}
	for i, ev := range evs {
		if err := l.w.Apply(stream, next+uint64(i), ev); err != nil {
			l.t.Fatal(err)
		}
		l.last = ev.ID
	}
}

func dt(s string) *subsidyv1.Date {
	d, err := refdata.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d.Proto()
}

var bdJ = refdata.Qualification{Occupation: subsidyv1.Occupation_OCCUPATION_BIG_DATA, Level: subsidyv1.Level_LEVEL_JUNIOR}

// programme records a small programme: reference data, then three
// trainees — one entitled (through an advance: the institution is payee),
// one whose completion comes after the certificate (a second chance and a
// cleared flag), one whose second attempt passes (denied: not the first).
func programme(l *ledger) {
	l.record(&subsidyv1.InstitutionRegistered{InstitutionId: "ti-digital", Name: "重庆数字技能培训学校", Kind: subsidyv1.InstitutionKind_INSTITUTION_KIND_TRAINING, UnitCode: "cq-yuzhong", BasicAccount: "acct-digital"})
	l.record(&subsidyv1.InstitutionApproved{ApprovalId: "ap-1", InstitutionId: "ti-digital", Occupation: bdJ.Occupation, ValidFrom: dt("2025-01-01"), ValidTo: dt("2030-12-31")})
	l.record(&subsidyv1.InstitutionRegistered{InstitutionId: "ev-cqpe", Name: "重庆专业技术评价中心", Kind: subsidyv1.InstitutionKind_INSTITUTION_KIND_EVALUATION, UnitCode: "cq-yuzhong"})
	l.record(&subsidyv1.InstitutionApproved{ApprovalId: "ap-2", InstitutionId: "ev-cqpe", Occupation: bdJ.Occupation, ValidFrom: dt("2025-01-01"), ValidTo: dt("2030-12-31")})
	l.record(&subsidyv1.FeeSchedulePublished{FeeScheduleId: "fee-bd-j", EvaluationInstitutionId: "ev-cqpe", Qualification: bdJ.Proto(), FeeFen: 80000, EffectiveFrom: dt("2025-01-01")})
	l.record(&subsidyv1.BudgetAllocated{AllocationId: "al-yz", Year: 2025, UnitCode: "cq-yuzhong", AmountFen: 10000000})
	for i, tc := range []struct {
		advance, late bool
		attempts      int
	}{{advance: true, attempts: 1}, {late: true, attempts: 1}, {attempts: 2}} {
		k := fmt.Sprintf("%064x", i+1)
		enr := fmt.Sprintf("enr-%d", i+1)
		l.record(&subsidyv1.TraineeRegistered{PersonKey: k, UnitCode: "cq-yuzhong", Education: subsidyv1.Education_EDUCATION_ASSOCIATE, EnterpriseEmployee: true})
		l.record(&subsidyv1.EligibilityEvidenceRecorded{EvidenceId: fmt.Sprintf("ev-%d", i+1), PersonKey: k, Category: subsidyv1.EligibilityCategory_ELIGIBILITY_CATEGORY_ENTERPRISE_EMPLOYEE,
			Source: "社保", SnapshotAt: timestamppb.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)), Confirmed: true, InsuredFrom: dt("2020-01-01")})
		l.record(&subsidyv1.Enrolled{EnrolmentId: enr, PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-03-01")})
		completed := &subsidyv1.TrainingCompleted{EnrolmentId: enr, PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: bdJ.Proto(), CompletedOn: dt("2025-05-01")}
		if !tc.late {
			l.record(completed)
		}
		if tc.advance {
			l.record(&subsidyv1.AdvancePaymentRecorded{AdvanceId: fmt.Sprintf("adv-%d", i+1), TrainingInstitutionId: "ti-digital", PersonKey: k, Qualification: bdJ.Proto(), AmountFen: 80000, PaidOn: dt("2025-04-01")})
		}
		var last *subsidyv1.AssessmentRecorded
		for a := 1; a <= tc.attempts; a++ {
			score := int32(80)
			if a < tc.attempts {
				score = 40
			}
			last = &subsidyv1.AssessmentRecorded{AssessmentId: fmt.Sprintf("as-%d-%d", i+1, a), PersonKey: k, EvaluationInstitutionId: "ev-cqpe",
				Qualification: bdJ.Proto(), Attempt: uint32(a), TheoryScore: score, PracticalScore: score, AssessedOn: dt(fmt.Sprintf("2025-06-%02d", 10+a))}
			l.record(last)
		}
		l.record(&subsidyv1.CertificateIssued{CertificateId: "cert-" + last.AssessmentId, PersonKey: k, EvaluationInstitutionId: "ev-cqpe",
			Qualification: bdJ.Proto(), AssessmentId: last.AssessmentId, IssuedOn: dt("2025-06-30")})
		if tc.late {
			l.record(completed)
		}
	}
}

func run(t *testing.T, l *ledger) (redecide.Summary, []redecide.Mismatch) {
	t.Helper()
	var got []redecide.Mismatch
	sum, err := redecide.Run(context.Background(), l.s, redecide.Options{RuleSet: rules.DefaultRuleSet(), Report: func(m redecide.Mismatch) { got = append(got, m) }})
	if err != nil {
		t.Fatal(err)
	}
	return sum, got
}

// TestRecordedDecisionsReplay: a log the rules wrote replays to the same
// decisions, every one of them.
func TestRecordedDecisionsReplay(t *testing.T) {
	l := newLedger(t)
	programme(l)
	sum, got := run(t, l)
	if !sum.OK() || len(got) != 0 || sum.Facts != int64(l.n) || sum.Matched != sum.Facts {
		t.Fatalf("summary %+v, mismatches %v; want all %d facts matched", sum, got, l.n)
	}
	if sum.Derived < 6 || sum.ByVersion["2026.6"] == 0 {
		t.Errorf("summary %+v: want the entitlements, denial, flags and their clearing counted, under 2026.6", sum)
	}
}

// TestAlteredDecisionsAreFound: decisions that the rules did not make —
// an amount changed, an event left out, one added — are each reported at
// their fact, with what differs, and the rest still match.
func TestAlteredDecisionsAreFound(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(d *rules.Decision)
		want   string
	}{
		{"amount", func(d *rules.Decision) {
			for _, ev := range d.Derived() {
				if e, ok := ev.Payload.(*subsidyv1.SubsidyEntitled); ok && e.GetPayee().GetKind() == subsidyv1.PayeeKind_PAYEE_KIND_TRAINEE {
					e.AmountFen = 90000
				}
			}
		}, "amount_fen:90000"},
		{"left out", func(d *rules.Decision) {
			for i, ev := range d.Events {
				if _, ok := ev.Payload.(*subsidyv1.FlagCleared); ok {
					d.Events = append(d.Events[:i:i], d.Events[i+1:]...)
					return
				}
			}
		}, "derives 1 more event(s) than recorded: subsidy.v1.FlagCleared"},
		{"added", func(d *rules.Decision) {
			if d.Events[0].Payload.(proto.Message).ProtoReflect().Descriptor().Name() == "AdvancePaymentRecorded" {
				d.Events = append(d.Events, rules.Event{ID: events.DeriveID("flag", "invented"), Derived: true,
					Payload: &subsidyv1.ViolationFlagged{FlagId: "invented", Reason: subsidyv1.ReasonCode_REASON_CODE_CONCURRENT_ENROLMENT}})
			}
		}, "recorded subsidy.v1.ViolationFlagged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLedger(t)
			l.tamper = tc.tamper
			programme(l)
			sum, got := run(t, l)
			if sum.OK() || sum.Mismatches != 1 || len(got) != 1 || sum.Matched != sum.Facts-1 {
				t.Fatalf("summary %+v, mismatches %v; want exactly one", sum, got)
			}
			if !strings.Contains(got[0].Problem, tc.want) || got[0].RuleSetVersion != "2026.6" {
				t.Errorf("mismatch %s; want it to say %q", got[0], tc.want)
			}
		})
	}
}

// TestOrphanDerivedEvent: a derived event appended without its fact (in a
// stream of its own) is reported.
func TestOrphanDerivedEvent(t *testing.T) {
	l := newLedger(t)
	programme(l)
	env := &subsidyv1.Envelope{Source: redecide.LedgerSource, CausationId: events.DeriveID("message", "nowhere").String(), RuleSetVersion: "2026.6"}
	e, err := codec.Encode(events.DeriveID("flag", "orphan"), "institution-ti-digital", env, &subsidyv1.ViolationFlagged{FlagId: "orphan"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.s.Append(context.Background(), "orphans", events.NoStream, e); err != nil {
		t.Fatal(err)
	}
	sum, got := run(t, l)
	if sum.OK() || sum.Orphans != 1 || len(got) != 1 || !strings.Contains(got[0].Problem, "does not precede it") {
		t.Fatalf("summary %+v, mismatches %v; want the orphan reported", sum, got)
	}
}

// TestDecisionsOfAnotherVersion: decisions recorded under another rule-set
// label but made the way today's rules make them reproduce (the label is
// set aside), and are counted under their own version.
func TestDecisionsOfAnotherVersion(t *testing.T) {
	l := newLedger(t)
	l.tamper = func(d *rules.Decision) {
		d.RuleSetVersion = "2026.1"
		for _, ev := range d.Derived() {
			m := ev.Payload.ProtoReflect()
			if fd := m.Descriptor().Fields().ByName("decision"); fd != nil && m.Has(fd) {
				m.Get(fd).Message().Interface().(*subsidyv1.Decision).RuleSetVersion = "2026.1"
			}
		}
	}
	programme(l)
	sum, got := run(t, l)
	if !sum.OK() || len(got) != 0 || sum.ByVersion["2026.1"] == 0 || sum.ByVersion["2026.6"] != 0 {
		t.Fatalf("summary %+v, mismatches %v; want every decision reproduced, counted under 2026.1", sum, got)
	}
}

// rejected decides m as the intake would a fact the rules reject, and
// returns the rejection record the intake would keep (not yet appended:
// the intake appends a batch's rejections after its accepted facts).
func (l *ledger) rejected(m proto.Message, source string) *subsidyv1.FactRejected {
	l.t.Helper()
	l.n++
	key := fmt.Sprintf("msg-%d", l.n)
	at := timestamppb.New(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	f := rules.Fact{EventID: events.DeriveID("message", key), MessageID: key, Source: source, OccurredAt: at.AsTime(), Payload: m}
	_, rej := l.w.Decide(f)
	if rej == nil {
		l.t.Fatalf("%T accepted; want it rejected", m)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		l.t.Fatal(err)
	}
	name := string(m.ProtoReflect().Descriptor().FullName())
	after := ""
	if !l.last.IsZero() {
		after = l.last.String()
	}
	return &subsidyv1.FactRejected{Subject: "subsidy.in." + source + "." + key, Payload: b, Reason: rej.Reason, Detail: rej.Detail, MessageId: key,
		ReceivedAt: at, ContentType: "application/protobuf",
		Decided: &subsidyv1.RejectionDecided{AfterEventId: after, FactEventId: f.EventID.String(), Source: source, FactType: name, OccurredAt: at}}
}

// appendRejection appends a rejection record to its source's rejection
// stream.
func (l *ledger) appendRejection(r *subsidyv1.FactRejected) {
	l.t.Helper()
	stream := "rejection-" + r.GetDecided().GetSource()
	env := &subsidyv1.Envelope{Source: redecide.LedgerSource, CorrelationId: r.GetMessageId(), OccurredAt: r.GetReceivedAt(), RecordedAt: r.GetReceivedAt()}
	e, err := codec.Encode(events.DeriveID("rejection", r.GetMessageId()), stream, env, r)
	if err != nil {
		l.t.Fatal(err)
	}
	l.append(stream, []events.EventData{e}, []rules.Event{{ID: e.ID, Payload: r}})
}

// TestRejectionsDecidedAgainAtTheirPoint: an enrolment of a trainee not yet
// registered is rejected; the trainee's registration, accepted in the same
// batch, is appended before the rejection (as the intake appends a batch).
// Decided again where the rules decided it, the enrolment is rejected for
// the same reason (decided at the end of the log it would be accepted). A
// rejection recorded with another reason, or after an event the log does
// not hold before it, is reported; one whose payload was masked, or that
// records no decision, is counted and not decided again.
func TestRejectionsDecidedAgainAtTheirPoint(t *testing.T) {
	k := fmt.Sprintf("%064x", 99)
	enrol := &subsidyv1.Enrolled{EnrolmentId: "enr-99", PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-03-01")}
	for _, tc := range []struct {
		name   string
		alter  func(r *subsidyv1.FactRejected)
		check  func(s redecide.Summary) bool
		report string
	}{
		{"as recorded", nil, func(s redecide.Summary) bool { return s.OK() && s.RejectionsDecided == 1 && s.RejectionsMatched == 1 }, ""},
		{"another reason", func(r *subsidyv1.FactRejected) { r.Reason = subsidyv1.ReasonCode_REASON_CODE_BUDGET_EXCEEDED }, func(s redecide.Summary) bool {
			return !s.OK() && s.Mismatches == 1 && s.RejectionsDecided == 1 && s.RejectionsMatched == 0
		}, "recorded as rejected REASON_CODE_BUDGET_EXCEEDED; decided again it is rejected"},
		{"no such point", func(r *subsidyv1.FactRejected) { r.Decided.AfterEventId = events.DeriveID("x", "nowhere").String() }, func(s redecide.Summary) bool {
			return !s.OK() && s.Mismatches == 1 && s.RejectionsDecided == 0
		}, "which the log does not hold before it"},
		{"a point after it", func(r *subsidyv1.FactRejected) {
			r.Decided.AfterEventId = events.DeriveID("rejection", r.GetMessageId()).String()
		}, func(s redecide.Summary) bool {
			return !s.OK() && s.Mismatches == 1 && s.RejectionsDecided == 0
		}, "which the log holds after the rejection"},
		{"masked", func(r *subsidyv1.FactRejected) { r.PayloadAltered = true }, func(s redecide.Summary) bool {
			return s.OK() && s.RejectionsAltered == 1 && s.RejectionsDecided == 0
		}, ""},
		{"recorded before rejections noted their point", func(r *subsidyv1.FactRejected) { r.Decided = nil }, func(s redecide.Summary) bool {
			return s.OK() && s.RejectionsUndecided == 1 && s.RejectionsDecided == 0
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLedger(t)
			programme(l)
			r := l.rejected(enrol, "enrolment")
			l.record(&subsidyv1.TraineeRegistered{PersonKey: k, UnitCode: "cq-yuzhong", Education: subsidyv1.Education_EDUCATION_ASSOCIATE, EnterpriseEmployee: true})
			if tc.alter != nil {
				tc.alter(r)
			}
			l.appendRejection(r)
			sum, got := run(t, l)
			if !tc.check(sum) || sum.Rejections != 1 || sum.Matched != sum.Facts {
				t.Fatalf("summary %+v, mismatches %v", sum, got)
			}
			if tc.report == "" && len(got) != 0 || tc.report != "" && (len(got) != 1 || !strings.Contains(got[0].Problem, tc.report) || got[0].Type != "subsidy.v1.FactRejected") {
				t.Fatalf("mismatches %v; want %q", got, tc.report)
			}
		})
	}
	// Decided again at the end of the log instead, the enrolment would be
	// accepted: the point matters.
	l := newLedger(t)
	programme(l)
	r := l.rejected(enrol, "enrolment")
	l.record(&subsidyv1.TraineeRegistered{PersonKey: k, UnitCode: "cq-yuzhong", Education: subsidyv1.Education_EDUCATION_ASSOCIATE, EnterpriseEmployee: true})
	if _, rej := l.w.Decide(rules.Fact{EventID: events.DeriveID("message", r.GetMessageId()), MessageID: r.GetMessageId(), Source: "enrolment", Payload: enrol}); rej != nil {
		t.Fatalf("at the end of the log the enrolment is rejected too (%v): the test shows nothing", rej)
	}
}
