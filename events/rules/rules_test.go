package rules_test

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/events/snap"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func tsOf(s string) *timestamppb.Timestamp {
	d, _ := refdata.ParseDate(s)
	return timestamppb.New(time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC))
}

const (
	entitled = "SubsidyEntitled"
	denied   = "SubsidyDenied:"
)

func TestScoreBoundary(t *testing.T) {
	tests := []struct {
		theory, practical int32
		pass              bool
	}{{59, 60, false}, {60, 59, false}, {60, 60, true}, {100, 100, true}, {0, 100, false}}
	for _, tt := range tests {
		f := newFx(t, rules.DefaultRuleSet())
		k := f.employee()
		f.trained(k, "ti-digital", bdJ)
		a := f.assessment(k, bdJ, 1, tt.theory, tt.practical, "2025-06-20")
		f.must(a)
		c := f.certificate(a, "2025-06-30")
		if !tt.pass {
			f.reject(c, subsidyv1.ReasonCode_REASON_CODE_CERTIFICATE_WITHOUT_PASS)
			continue
		}
		want(t, f.derived(c), entitled)
	}
	f := newFx(t, rules.DefaultRuleSet())
	k := f.employee()
	f.trained(k, "ti-digital", bdJ)
	f.reject(f.assessment(k, bdJ, 1, 101, 60, "2025-06-20"), subsidyv1.ReasonCode_REASON_CODE_SCORE_OUT_OF_RANGE)
	f.reject(f.assessment(k, bdJ, 1, 60, -1, "2025-06-20"), subsidyv1.ReasonCode_REASON_CODE_SCORE_OUT_OF_RANGE)
}

func TestEligibility(t *testing.T) {
	student := func(year int32, confirmed bool) *subsidyv1.EligibilityEvidenceRecorded {
		return &subsidyv1.EligibilityEvidenceRecorded{EvidenceId: "e", Category: subsidyv1.EligibilityCategory_ELIGIBILITY_CATEGORY_GRADUATING_STUDENT,
			Source: "学信网", SnapshotAt: tsOf("2025-01-01"), Confirmed: confirmed, GraduationYear: year}
	}
	insured := func(from, to string) *subsidyv1.EligibilityEvidenceRecorded {
		m := &subsidyv1.EligibilityEvidenceRecorded{EvidenceId: "e", Category: subsidyv1.EligibilityCategory_ELIGIBILITY_CATEGORY_ENTERPRISE_EMPLOYEE,
			Source: "社保", SnapshotAt: tsOf("2025-01-01"), Confirmed: true, InsuredFrom: dt(from)}
		if to != "" {
			m.InsuredTo = dt(to)
		}
		return m
	}
	// at: the same evidence as read from its register at another time.
	at := func(m *subsidyv1.EligibilityEvidenceRecorded, snapshot string) *subsidyv1.EligibilityEvidenceRecorded {
		m.SnapshotAt = tsOf(snapshot)
		return m
	}
	const on = "2025-06-20"
	tests := []struct {
		name     string
		evidence []*subsidyv1.EligibilityEvidenceRecorded
		want     string
	}{
		{"no evidence", nil, denied + "REASON_CODE_NO_ELIGIBILITY_EVIDENCE"},
		{"graduates in the assessment year", []*subsidyv1.EligibilityEvidenceRecorded{student(2025, true)}, entitled},
		{"graduated the year before", []*subsidyv1.EligibilityEvidenceRecorded{student(2024, true)}, denied + "REASON_CODE_NOT_GRADUATING_THIS_YEAR"},
		{"graduates the year after", []*subsidyv1.EligibilityEvidenceRecorded{student(2026, true)}, denied + "REASON_CODE_NOT_GRADUATING_THIS_YEAR"},
		{"register did not confirm", []*subsidyv1.EligibilityEvidenceRecorded{student(2025, false)}, denied + "REASON_CODE_NOT_GRADUATING_THIS_YEAR"},
		{"insured from the assessment day", []*subsidyv1.EligibilityEvidenceRecorded{insured(on, "")}, entitled},
		{"insured from the day after", []*subsidyv1.EligibilityEvidenceRecorded{insured("2025-06-21", "")}, denied + "REASON_CODE_NOT_INSURED_ON_ASSESSMENT"},
		{"insured until the assessment day", []*subsidyv1.EligibilityEvidenceRecorded{insured("2020-01-01", on)}, entitled},
		{"insured until the day before", []*subsidyv1.EligibilityEvidenceRecorded{insured("2020-01-01", "2025-06-19")}, denied + "REASON_CODE_NOT_INSURED_ON_ASSESSMENT"},
		{"one of two grounds suffices", []*subsidyv1.EligibilityEvidenceRecorded{student(2024, true), insured("2020-01-01", "")}, entitled},
		// Of one category the latest snapshot speaks, in whatever order
		// the snapshots were recorded.
		{"a newer snapshot shows the insurance ended", []*subsidyv1.EligibilityEvidenceRecorded{
			at(insured("2020-01-01", ""), "2025-01-01"), at(insured("2020-01-01", "2025-03-31"), "2025-06-25")}, denied + "REASON_CODE_NOT_INSURED_ON_ASSESSMENT"},
		{"the newer snapshot recorded first", []*subsidyv1.EligibilityEvidenceRecorded{
			at(insured("2020-01-01", "2025-03-31"), "2025-06-25"), at(insured("2020-01-01", ""), "2025-01-01")}, denied + "REASON_CODE_NOT_INSURED_ON_ASSESSMENT"},
		{"a newer snapshot shows a new insurance", []*subsidyv1.EligibilityEvidenceRecorded{
			at(insured("2020-01-01", "2025-03-31"), "2025-04-01"), at(insured("2025-05-01", ""), "2025-06-01")}, entitled},
		{"a newer snapshot of the register withdraws the graduation", []*subsidyv1.EligibilityEvidenceRecorded{
			at(student(2025, true), "2025-01-01"), at(student(2025, false), "2025-06-01")}, denied + "REASON_CODE_NOT_GRADUATING_THIS_YEAR"},
		{"the other ground's latest still suffices", []*subsidyv1.EligibilityEvidenceRecorded{
			at(student(2025, true), "2025-01-01"), at(student(2025, false), "2025-06-01"), at(insured("2020-01-01", ""), "2025-02-01")}, entitled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFx(t, rules.DefaultRuleSet())
			k := f.person()
			for i, e := range tt.evidence {
				e.PersonKey = k
				e.EvidenceId = "ev" + string(rune('a'+i))
				f.must(e)
			}
			f.trained(k, "ti-digital", bdJ)
			want(t, f.certify(k, bdJ, on), tt.want)
		})
	}
}

func TestTrainingCompletion(t *testing.T) {
	// The assessment is flagged when training is not completed when it is
	// recorded; the subsidy is decided at certification on the completion
	// date, so a completion reported late but dated on or before the
	// assessment day still counts.
	for _, tt := range []struct {
		completed string
		want      string
	}{
		{"2025-06-20", entitled},
		{"2025-06-21", denied + "REASON_CODE_TRAINING_NOT_COMPLETED"},
	} {
		f := newFx(t, rules.DefaultRuleSet())
		k := f.employee()
		f.must(&subsidyv1.Enrolled{EnrolmentId: "en", PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-06-20")})
		a := f.assessment(k, bdJ, 1, 80, 80, "2025-06-20")
		want(t, f.derived(a), "ViolationFlagged:REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION")
		f.must(&subsidyv1.TrainingCompleted{EnrolmentId: "en", PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: bdJ.Proto(), CompletedOn: dt(tt.completed)})
		want(t, f.derived(f.certificate(a, "2025-06-30")), tt.want)
	}
	// The day of enrolment is the first day an assessment may happen.
	f := newFx(t, rules.DefaultRuleSet())
	k := f.employee()
	f.must(&subsidyv1.Enrolled{EnrolmentId: "en", PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-06-10")})
	f.reject(f.assessment(k, bdJ, 1, 80, 80, "2025-06-09"), subsidyv1.ReasonCode_REASON_CODE_ASSESSMENT_BEFORE_ENROLMENT)
	f.must(&subsidyv1.TrainingCompleted{EnrolmentId: "en", PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: bdJ.Proto(), CompletedOn: dt("2025-06-10")})
	want(t, f.certify(k, bdJ, "2025-06-10"), entitled)
}

func TestFeeInForce(t *testing.T) {
	tests := []struct {
		name  string
		fees  []*subsidyv1.FeeSchedulePublished
		on    string
		want  int64 // 0: assessment rejected
		code  subsidyv1.ReasonCode
		feeID string
	}{
		{"starts on the assessment day", []*subsidyv1.FeeSchedulePublished{{FeeScheduleId: "a", FeeFen: 50000, EffectiveFrom: dt("2025-06-20")}}, "2025-06-20", 50000, 0, "a"},
		{"starts the day after", []*subsidyv1.FeeSchedulePublished{{FeeScheduleId: "a", FeeFen: 50000, EffectiveFrom: dt("2025-06-21")}}, "2025-06-20", 0, subsidyv1.ReasonCode_REASON_CODE_NO_FEE_IN_FORCE, ""},
		{"ends on the assessment day", []*subsidyv1.FeeSchedulePublished{{FeeScheduleId: "a", FeeFen: 50000, EffectiveFrom: dt("2025-01-01"), EffectiveTo: dt("2025-06-20")}}, "2025-06-20", 50000, 0, "a"},
		{"ended the day before", []*subsidyv1.FeeSchedulePublished{{FeeScheduleId: "a", FeeFen: 50000, EffectiveFrom: dt("2025-01-01"), EffectiveTo: dt("2025-06-19")}}, "2025-06-20", 0, subsidyv1.ReasonCode_REASON_CODE_NO_FEE_IN_FORCE, ""},
		{"a newer schedule supersedes", []*subsidyv1.FeeSchedulePublished{
			{FeeScheduleId: "old", FeeFen: 50000, EffectiveFrom: dt("2025-01-01")},
			{FeeScheduleId: "new", FeeFen: 60000, EffectiveFrom: dt("2025-06-20")}}, "2025-06-20", 60000, 0, "new"},
		{"the older one still applies the day before", []*subsidyv1.FeeSchedulePublished{
			{FeeScheduleId: "old", FeeFen: 50000, EffectiveFrom: dt("2025-01-01")},
			{FeeScheduleId: "new", FeeFen: 60000, EffectiveFrom: dt("2025-06-21")}}, "2025-06-20", 50000, 0, "old"},
		{"never published", nil, "2025-06-20", 0, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_FEE_SCHEDULE, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFx(t, rules.DefaultRuleSet())
			for _, fee := range tt.fees {
				fee.EvaluationInstitutionId, fee.Qualification = "ev-cqpe", ccS.Proto()
				f.must(fee)
			}
			k := f.employee()
			f.must(&subsidyv1.InstitutionApproved{ApprovalId: "ap-cc", InstitutionId: "ti-cloud", Occupation: ccS.Occupation, ValidFrom: dt("2025-01-01")})
			f.trained(k, "ti-cloud", ccS)
			a := f.assessment(k, ccS, 1, 80, 80, tt.on)
			if tt.want == 0 {
				f.reject(a, tt.code)
				return
			}
			f.must(a)
			evs := f.derived(f.certificate(a, "2025-06-30"))
			want(t, evs, entitled)
			e := evs[0].Payload.(*subsidyv1.SubsidyEntitled)
			if e.AmountFen != tt.want || e.FeeScheduleId != tt.feeID {
				t.Errorf("entitled %d fen from %s; want %d from %s", e.AmountFen, e.FeeScheduleId, tt.want, tt.feeID)
			}
		})
	}
	f := newFx(t, rules.DefaultRuleSet())
	f.reject(&subsidyv1.FeeSchedulePublished{FeeScheduleId: "again", EvaluationInstitutionId: "ev-cqpe", Qualification: bdJ.Proto(), FeeFen: 1, EffectiveFrom: dt("2025-01-01")},
		subsidyv1.ReasonCode_REASON_CODE_ALREADY_EXISTS)
	f.reject(&subsidyv1.FeeSchedulePublished{FeeScheduleId: "by-trainer", EvaluationInstitutionId: "ti-digital", Qualification: bdJ.Proto(), FeeFen: 1, EffectiveFrom: dt("2025-01-01")},
		subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_INSTITUTION)
}

func TestYearlyCapAndLowerAfterHigher(t *testing.T) {
	tests := []struct {
		name    string
		rs      func(*rules.RuleSet)
		first   refdata.Qualification
		firstOn string
		second  refdata.Qualification
		on      string
		want    string
	}{
		{"cap 1 reached in the same year", nil, bdJ, "2025-06-20", ccJ, "2025-09-20", denied + "REASON_CODE_YEARLY_CAP_REACHED"},
		{"cap 1, next year", nil, bdJ, "2025-06-20", ccJ, "2026-01-05", entitled},
		{"cap 2", func(rs *rules.RuleSet) { rs.YearlyCap = 2 }, bdJ, "2025-06-20", ccJ, "2025-09-20", entitled},
		{"higher after lower", nil, bdJ, "2025-06-20", bdS, "2026-03-02", entitled},
		{"lower after higher", nil, bdS, "2025-06-20", bdI, "2026-03-02", denied + "REASON_CODE_LOWER_AFTER_HIGHER"},
		{"lower after higher, guard off", func(rs *rules.RuleSet) { rs.LowerAfterHigher = false }, bdS, "2025-06-20", bdJ, "2026-03-02", entitled},
		{"lower after higher in the same year: rule 7 names it", nil, bdS, "2025-06-20", bdJ, "2025-09-20", denied + "REASON_CODE_LOWER_AFTER_HIGHER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := rules.DefaultRuleSet()
			if tt.rs != nil {
				tt.rs(&rs)
				rs.Version = "test"
			}
			f := newFx(t, rs)
			f.must(&subsidyv1.BudgetAllocated{AllocationId: "al-2026", Year: 2026, UnitCode: "cq-yuzhong", AmountFen: 10000000})
			k := f.employee()
			f.trained(k, "ti-digital", tt.first)
			want(t, f.certify(k, tt.first, tt.firstOn), entitled)
			f.trained(k, "ti-digital", tt.second)
			want(t, f.certify(k, tt.second, tt.on), tt.want)
		})
	}
}

func TestBudgetBoundary(t *testing.T) {
	for _, tt := range []struct {
		budget int64
		want   []string
	}{
		{80000, []string{entitled}},
		{79999, []string{entitled, "EntitlementHeld:REASON_CODE_BUDGET_EXCEEDED"}},
		{0, []string{entitled, "EntitlementHeld:REASON_CODE_BUDGET_EXCEEDED"}},
	} {
		f := newFx(t, rules.DefaultRuleSet())
		if tt.budget > 0 {
			f.must(&subsidyv1.BudgetAllocated{AllocationId: "al", Year: 2025, UnitCode: "cq-beibei", AmountFen: tt.budget})
		}
		k := f.person(func(m *subsidyv1.TraineeRegistered) { m.UnitCode = "cq-beibei" })
		f.must(&subsidyv1.EligibilityEvidenceRecorded{EvidenceId: "e", PersonKey: k, Category: 2, Source: "社保", SnapshotAt: tsOf("2025-01-01"), Confirmed: true, InsuredFrom: dt("2020-01-01")})
		f.trained(k, "ti-digital", bdJ)
		want(t, f.certify(k, bdJ, "2025-06-20"), tt.want...)
	}

	// Held entitlements keep their order: a later one that would fit waits
	// behind an earlier one that does not; an allocation releases in order
	// and stops at the first that does not fit.
	f := newFx(t, rules.DefaultRuleSet())
	f.must(&subsidyv1.BudgetAllocated{AllocationId: "al", Year: 2025, UnitCode: "cq-beibei", AmountFen: 100000})
	var ids []string
	for _, q := range []refdata.Qualification{bdS, bdJ, ccJ} {
		k := f.person(func(m *subsidyv1.TraineeRegistered) { m.UnitCode = "cq-beibei" })
		f.must(&subsidyv1.EligibilityEvidenceRecorded{EvidenceId: "e" + k[60:], PersonKey: k, Category: 2, Source: "社保", SnapshotAt: tsOf("2025-01-01"), Confirmed: true, InsuredFrom: dt("2020-01-01")})
		f.trained(k, "ti-digital", q)
		ids = append(ids, rules.EntitlementID(k, q))
		if q == bdS {
			want(t, f.certify(k, q, "2025-06-20"), entitled, "EntitlementHeld:REASON_CODE_BUDGET_EXCEEDED") // 1600 > 1000
		} else {
			want(t, f.certify(k, q, "2025-06-20"), entitled, "EntitlementHeld:REASON_CODE_BUDGET_EXCEEDED") // fits, but waits
		}
	}
	// +700: 1600 <= 1700 releases the first; 800 more does not fit.
	evs := f.derived(&subsidyv1.BudgetAllocated{AllocationId: "al2", Year: 2025, UnitCode: "cq-beibei", AmountFen: 70000})
	want(t, evs, "EntitlementReleased:REASON_CODE_BUDGET_EXCEEDED")
	if id := evs[0].Payload.(*subsidyv1.EntitlementReleased).EntitlementId; id != ids[0] {
		t.Errorf("released %s; want the first held, %s", id, ids[0])
	}
	// +1700: both remaining (800 + 900) fit exactly.
	want(t, f.derived(&subsidyv1.BudgetAllocated{AllocationId: "al3", Year: 2025, UnitCode: "cq-beibei", AmountFen: 170000}),
		"EntitlementReleased:REASON_CODE_BUDGET_EXCEEDED", "EntitlementReleased:REASON_CODE_BUDGET_EXCEEDED")
}

func TestNoticeWindow(t *testing.T) {
	rs := rules.DefaultRuleSet()
	tests := []struct {
		approved, start, end string
	}{
		{"2025-06-09", "2025-06-09", "2025-06-13"}, // Monday: Monday to Friday
		{"2025-06-13", "2025-06-13", "2025-06-19"}, // Friday: over the weekend
		{"2025-06-14", "2025-06-16", "2025-06-20"}, // Saturday: starts Monday
		{"2025-04-28", "2025-04-28", "2025-05-07"}, // Labour Day 1-5 May skipped; 27 April was a make-up day
		{"2025-04-27", "2025-04-27", "2025-05-06"}, // a make-up Sunday counts: 27-30 April, then 6 May
		{"2025-09-30", "2025-09-30", "2025-10-13"}, // National Day; Saturday 11 October works
		{"2025-12-29", "2025-12-29", "2026-01-05"}, // New Year 2026: 29-31 Dec, Sunday 4 Jan (make-up), 5 Jan
		{"2026-02-13", "2026-02-13", "2026-02-26"}, // Spring Festival 15-23 Feb; Saturday 14 Feb works
		{"2026-02-23", "2026-02-24", "2026-02-28"}, // the last day off: 24-27 Feb, then Saturday 28 Feb works
		{"2026-04-30", "2026-04-30", "2026-05-09"}, // Labour Day 1-5 May: 30 Apr, 6-8 May, Saturday 9 May
		{"2026-05-06", "2026-05-06", "2026-05-11"}, // Saturday 9 May works
		{"2026-06-18", "2026-06-18", "2026-06-25"}, // Dragon Boat 19-21 Jun
		{"2026-09-18", "2026-09-18", "2026-09-23"}, // Sunday 20 Sep works: 18, 20, 21, 22, 23 Sep
		{"2026-09-30", "2026-09-30", "2026-10-12"}, // National Day 1-7 Oct; Saturday 10 Oct works
		{"2026-12-30", "2026-12-30", "2027-01-05"}, // past CalendarThrough: weekends only
	}
	for _, tt := range tests {
		a, _ := refdata.ParseDate(tt.approved)
		s, e := rs.NoticeWindow(a)
		if s.String() != tt.start || e.String() != tt.end {
			t.Errorf("NoticeWindow(%s) = %s..%s; want %s..%s", tt.approved, s, e, tt.start, tt.end)
		}
	}
	// Approved Friday 25 April: 25, 27 (make-up Sunday), 28, 29, 30 April.
	// Make the last day a holiday and the notice ends on the next working
	// day, after the Labour Day holidays.
	if _, e := rs.NoticeWindow(refdata.D(2025, 4, 25)); e.String() != "2025-04-30" {
		t.Errorf("ends %s; want 2025-04-30", e)
	}
	rs.Holidays = append(rs.Holidays, refdata.D(2025, 4, 30))
	rs.Version = "test"
	if _, e := rs.NoticeWindow(refdata.D(2025, 4, 25)); e.String() != "2025-05-06" {
		t.Errorf("with 30 April a holiday: ends %s; want 2025-05-06", e)
	}
	rs.NoticeWorkingDays = 1
	if s, e := rs.NoticeWindow(refdata.D(2025, 10, 1)); s != e || s.String() != "2025-10-09" {
		t.Errorf("one day from a holiday: %s..%s", s, e)
	}
}

func TestNoticeClose(t *testing.T) {
	f := newFx(t, rules.DefaultRuleSet())
	e, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20")
	f.reject(&subsidyv1.NoticeClosed{EntitlementId: e, ClosedOn: dt("2025-07-08")}, subsidyv1.ReasonCode_REASON_CODE_NOT_APPROVED)
	f.must(&subsidyv1.EntitlementConfirmed{EntitlementId: e, OfficialId: "maker", ConfirmedOn: dt("2025-06-30")})
	// A second maker may not replace the first (who could then approve).
	f.reject(&subsidyv1.EntitlementConfirmed{EntitlementId: e, OfficialId: "checker", ConfirmedOn: dt("2025-06-30")}, subsidyv1.ReasonCode_REASON_CODE_CONFLICTING_DUPLICATE)
	f.reject(&subsidyv1.EntitlementApproved{EntitlementId: e, OfficialId: "maker", ApprovedOn: dt("2025-07-01")}, subsidyv1.ReasonCode_REASON_CODE_CHECKER_IS_MAKER)
	f.reject(&subsidyv1.EntitlementApproved{EntitlementId: e, OfficialId: "checker", ApprovedOn: dt("2025-06-29")}, subsidyv1.ReasonCode_REASON_CODE_DATE_OUT_OF_ORDER)
	evs := f.derived(&subsidyv1.EntitlementApproved{EntitlementId: e, OfficialId: "checker", ApprovedOn: dt("2025-07-01")})
	n := evs[0].Payload.(*subsidyv1.NoticeOpened)
	if got, _ := refdata.FromProto(n.EndsOn); got.String() != "2025-07-07" {
		t.Fatalf("notice ends %s", got)
	}
	f.reject(&subsidyv1.ObjectionRaised{ObjectionId: "early", EntitlementId: e, RaisedOn: dt("2025-06-30")}, subsidyv1.ReasonCode_REASON_CODE_OUTSIDE_NOTICE_WINDOW)
	f.reject(&subsidyv1.NoticeClosed{EntitlementId: e, ClosedOn: dt("2025-07-07")}, subsidyv1.ReasonCode_REASON_CODE_NOTICE_NOT_ELAPSED)
	f.must(&subsidyv1.NoticeClosed{EntitlementId: e, ClosedOn: dt("2025-07-08")})
	f.reject(&subsidyv1.PaymentRequested{EntitlementId: e, OfficialId: "maker", RequestedOn: dt("2025-07-07")}, subsidyv1.ReasonCode_REASON_CODE_DATE_OUT_OF_ORDER)
}

func TestQualityThreshold(t *testing.T) {
	// Window 5, threshold 60%: 3 of 5 is exactly met (not below), 2 of 5
	// is below. The flag is raised when the rate crosses, not again while
	// it stays below; the first attempt that brings it back clears it
	// (rules 2026.4), and it is raised again after the recovery.
	rs := rules.DefaultRuleSet()
	rs.PassRateWindow, rs.Version = 5, "test"
	tests := []struct {
		name    string
		results []bool
		flagAt  []int // indexes of the first attempts that raise a flag
		clearAt []int // and of those that clear it
	}{
		{"exactly met", []bool{true, true, true, false, false}, nil, nil},
		{"one short", []bool{true, true, false, false, false}, []int{4}, nil},
		{"window not full", []bool{false, false, false, false}, nil, nil},
		{"stays below", []bool{false, false, false, false, false, false, false}, []int{4}, nil},
		// FFFFF (flag) TTTT (3/5 at the third T: recovered) FFF (TTFFF: 2/5, flag)
		{"recovers and drops again", []bool{false, false, false, false, false, true, true, true, true, false, false, false}, []int{4, 11}, []int{7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFx(t, rs)
			flagged, cleared := map[int]bool{}, map[int]bool{}
			for _, i := range tt.flagAt {
				flagged[i] = true
			}
			for _, i := range tt.clearAt {
				cleared[i] = true
			}
			var open string
			for i, pass := range tt.results {
				if i == 6 {
					// The open flag survives a snapshot: go on with a
					// restored World.
					var b bytes.Buffer
					sw := snap.NewWriter(&b)
					f.l.w.Snapshot(sw)
					if err := sw.Flush(); err != nil {
						t.Fatal(err)
					}
					w, err := rules.RestoreWorld(rs, snap.NewReader(&b))
					if err != nil {
						t.Fatal(err)
					}
					f.l.w = w
				}
				evs := f.firstAttempt(pass)
				switch {
				case flagged[i]:
					want(t, evs, "ViolationFlagged:REASON_CODE_QUALITY_BELOW_THRESHOLD")
					open = evs[0].Payload.(*subsidyv1.ViolationFlagged).GetFlagId()
				case cleared[i]:
					want(t, evs, "FlagCleared:REASON_CODE_QUALITY_BELOW_THRESHOLD")
					if c := evs[0].Payload.(*subsidyv1.FlagCleared); c.GetFlagId() != open || c.GetInstitutionId() != "ti-cloud" || c.GetQualification().GetOccupation() != bdJ.Occupation {
						t.Errorf("attempt %d cleared %v; want flag %s of ti-cloud", i, c, open)
					}
				default:
					want(t, evs)
				}
			}
		})
	}
	// Second attempts do not count; a direct payment is not held.
	f := newFx(t, rs)
	for i := 0; i < 5; i++ {
		k := f.employee()
		f.trained(k, "ti-cloud", bdJ)
		f.derived(f.assessment(k, bdJ, 1, 10, 10, "2025-06-20"))
	}
	k := f.employee()
	f.trained(k, "ti-cloud", bdJ)
	f.must(f.assessment(k, bdJ, 1, 10, 10, "2025-06-20"))
	want(t, f.derived(f.assessment(k, bdJ, 2, 90, 90, "2025-07-20")))
	want(t, f.derived(f.certificate(f.assessment(k, bdJ, 2, 90, 90, "2025-07-20"), "2025-07-30")), denied+"REASON_CODE_NOT_FIRST_ATTEMPT")
	e, _ := f.entitled("ti-cloud", bdJ, false, "2025-06-20")
	_ = e
}

func TestAnomalies(t *testing.T) {
	t.Run("concurrent enrolment", func(t *testing.T) {
		f := newFx(t, rules.DefaultRuleSet())
		k := f.employee()
		f.must(&subsidyv1.Enrolled{EnrolmentId: "a", PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-03-01")})
		want(t, f.derived(&subsidyv1.Enrolled{EnrolmentId: "b", PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: ccJ.Proto(), EnrolledOn: dt("2025-03-02")}))
		want(t, f.derived(&subsidyv1.Enrolled{EnrolmentId: "c", PersonKey: k, TrainingInstitutionId: "ti-cloud", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-03-03")}),
			"ViolationFlagged:REASON_CODE_CONCURRENT_ENROLMENT")
		k2 := f.employee()
		f.trained(k2, "ti-digital", bdJ) // completed 2025-05-01
		want(t, f.derived(&subsidyv1.Enrolled{EnrolmentId: "d", PersonKey: k2, TrainingInstitutionId: "ti-cloud", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-05-02")}))
	})
	t.Run("certificate spike", func(t *testing.T) {
		rs := rules.DefaultRuleSet()
		rs.CertificateSpikeMinimum, rs.CertificateSpikeFactor, rs.CertificateSpikeMonths, rs.YearlyCap, rs.Version = 2, 2, 1, 5, "test"
		f := newFx(t, rs)
		// May: 1 certificate. June: 2 is the minimum, 3 > 2 and 3 > 2×1.
		cert := func(month string) []rules.Event {
			k := f.employee()
			f.trained(k, "ti-digital", bdJ)
			return f.certify(k, bdJ, "2025-"+month+"-05")
		}
		want(t, cert("05"), entitled)
		want(t, cert("06"), entitled)
		want(t, cert("06"), entitled)
		want(t, cert("06"), entitled, "ViolationFlagged:REASON_CODE_CERTIFICATE_SPIKE")
		want(t, cert("06"), entitled) // once per month
	})
	t.Run("shared payee account", func(t *testing.T) {
		f := newFx(t, rules.DefaultRuleSet())
		for i := 0; i < 3; i++ {
			e, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20")
			f.noticed(e)
			evs := f.paid(e, "tok-shared")
			if i == 2 {
				want(t, evs, "ViolationFlagged:REASON_CODE_SHARED_PAYEE_ACCOUNT")
			} else {
				want(t, evs)
			}
		}
	})
	t.Run("payment account mismatch", func(t *testing.T) {
		f := newFx(t, rules.DefaultRuleSet())
		e, _ := f.entitled("ti-digital", bdJ, true, "2025-06-20")
		f.noticed(e)
		want(t, f.paid(e, "acct-elsewhere"), "ViolationFlagged:REASON_CODE_PAYMENT_ACCOUNT_MISMATCH")
	})
}

// TestRejections covers the reason codes not covered by the scenarios and
// the tables above, one fact each.
func TestRejections(t *testing.T) {
	f := newFx(t, rules.DefaultRuleSet())
	k := f.employee()
	unknown := "0000000000000000000000000000000000000000000000000000000000000fff"
	e, ek := f.entitled("ti-digital", bdJ, false, "2025-06-20")
	f.must(&subsidyv1.Enrolled{EnrolmentId: "open", PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-03-01")})
	tests := []struct {
		name string
		msg  proto.Message
		want subsidyv1.ReasonCode
	}{
		{"not a fact", &subsidyv1.SubsidyEntitled{EntitlementId: "x"}, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_SUBJECT},
		{"missing id", &subsidyv1.Enrolled{PersonKey: k}, subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION},
		{"ID number in free text", &subsidyv1.ObjectionRaised{ObjectionId: "o", EntitlementId: e, Summary: "身份证 11010519491231002X 冒名", RaisedOn: dt("2025-07-01")}, subsidyv1.ReasonCode_REASON_CODE_INVALID_PERSON_ID},
		{"unknown trainee", &subsidyv1.Enrolled{EnrolmentId: "x", PersonKey: unknown, TrainingInstitutionId: "ti-digital", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-03-01")}, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_TRAINEE},
		{"enrol at an evaluation institution", &subsidyv1.Enrolled{EnrolmentId: "x", PersonKey: k, TrainingInstitutionId: "ev-cqpe", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-03-01")}, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_INSTITUTION},
		{"not approved for the occupation", &subsidyv1.Enrolled{EnrolmentId: "x", PersonKey: k, TrainingInstitutionId: "ti-cloud", Qualification: ccJ.Proto(), EnrolledOn: dt("2025-03-01")}, subsidyv1.ReasonCode_REASON_CODE_INSTITUTION_NOT_APPROVED},
		{"before the approval", &subsidyv1.Enrolled{EnrolmentId: "x", PersonKey: k, TrainingInstitutionId: "ti-cloud", Qualification: bdJ.Proto(), EnrolledOn: dt("2024-12-31")}, subsidyv1.ReasonCode_REASON_CODE_INSTITUTION_NOT_APPROVED},
		{"trainee in an unknown unit", &subsidyv1.TraineeRegistered{PersonKey: unknown, UnitCode: "cq-atlantis", Education: 2}, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_UNIT},
		{"completion of another qualification", &subsidyv1.TrainingCompleted{EnrolmentId: "open", PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: ccJ.Proto(), CompletedOn: dt("2025-06-01")}, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_QUALIFICATION},
		{"completion of no enrolment", &subsidyv1.TrainingCompleted{EnrolmentId: "nope", PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: bdJ.Proto(), CompletedOn: dt("2025-06-01")}, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_ENROLMENT},
		{"advance without enrolment", &subsidyv1.AdvancePaymentRecorded{AdvanceId: "x", TrainingInstitutionId: "ti-cloud", PersonKey: k, Qualification: bdJ.Proto(), AmountFen: 1, PaidOn: dt("2025-03-01")}, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_ENROLMENT},
		{"advance after the subsidy was decided", &subsidyv1.AdvancePaymentRecorded{AdvanceId: "x", TrainingInstitutionId: "ti-digital", PersonKey: ek, Qualification: bdJ.Proto(), AmountFen: 1, PaidOn: dt("2025-03-01")}, subsidyv1.ReasonCode_REASON_CODE_WRONG_STATE},
		{"revoke an unknown certificate", &subsidyv1.CertificateRevoked{CertificateId: "nope", PersonKey: k, Qualification: bdJ.Proto(), RevokedOn: dt("2025-08-01")}, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_CERTIFICATE},
		{"revoke with another qualification", &subsidyv1.CertificateRevoked{CertificateId: "cert-as-" + ek[56:] + "-" + bdJ.String() + "-1", PersonKey: ek, Qualification: ccJ.Proto(), RevokedOn: dt("2025-08-01")}, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_QUALIFICATION},
		{"confirm an unknown entitlement", &subsidyv1.EntitlementConfirmed{EntitlementId: "nope", OfficialId: "m", ConfirmedOn: dt("2025-07-01")}, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_ENTITLEMENT},
		{"confirm before the certificate", &subsidyv1.EntitlementConfirmed{EntitlementId: e, OfficialId: "m", ConfirmedOn: dt("2025-06-29")}, subsidyv1.ReasonCode_REASON_CODE_DATE_OUT_OF_ORDER},
		{"settle an unknown order", &subsidyv1.PaymentSettled{PaymentOrderId: "nope", EntitlementId: e, AmountFen: 1, PaidToAccount: "a", SettledOn: dt("2025-07-01")}, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_PAYMENT_ORDER},
		{"repay an unknown clawback", &subsidyv1.RepaymentReceived{RepaymentId: "r", ClawbackId: "nope", AmountFen: 1, ReceivedOn: dt("2025-07-01")}, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_CLAWBACK},
		{"resolve an unknown objection", &subsidyv1.ObjectionResolved{ObjectionId: "nope", EntitlementId: e, OfficialId: "o", ResolvedOn: dt("2025-07-01")}, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_OBJECTION},
		{"lift an unknown hold", &subsidyv1.HoldLifted{LiftId: "l", EntitlementId: e, HoldId: "quality", OfficialId: "s", LiftedOn: dt("2025-07-01")}, subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_HOLD},
		{"training institution without basic account", &subsidyv1.InstitutionRegistered{InstitutionId: "ti-noacct", Name: "x", Kind: subsidyv1.InstitutionKind_INSTITUTION_KIND_TRAINING, UnitCode: "cq-yuzhong"}, subsidyv1.ReasonCode_REASON_CODE_PAYEE_ACCOUNT_NOT_REGISTERED},
		{"reinstate an institution not suspended", &subsidyv1.InstitutionReinstated{InstitutionId: "ti-digital", OfficialId: "s", ReinstatedOn: dt("2025-07-01")}, subsidyv1.ReasonCode_REASON_CODE_WRONG_STATE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.t = t
			f.reject(tt.msg, tt.want)
		})
	}
	f.t = t

	// A fact with fields unknown to the schema.
	m := &subsidyv1.EntitlementConfirmed{EntitlementId: e, OfficialId: "m", ConfirmedOn: dt("2025-07-01")}
	m.ProtoReflect().SetUnknown(protoreflect.RawFields{0xa0, 0x06, 0x01})
	f.reject(m, subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE)

	// The same event id twice is a duplicate, whatever the content.
	fact := f.fact(&subsidyv1.EntitlementConfirmed{EntitlementId: e, OfficialId: "m", ConfirmedOn: dt("2025-07-01")})
	if _, rej := f.l.decide(fact); rej != nil {
		t.Fatal(rej)
	}
	fact.Payload = &subsidyv1.EntitlementConfirmed{EntitlementId: e, OfficialId: "other", ConfirmedOn: dt("2025-07-01")}
	if _, rej := f.l.w.Decide(fact); rej == nil || rej.Reason != subsidyv1.ReasonCode_REASON_CODE_DUPLICATE_FACT {
		t.Errorf("same event id: %v; want DUPLICATE_FACT", rej)
	}
	if s, _, ok := f.l.w.Applied(fact.EventID); !ok || s != rules.TraineeStream(ek) {
		t.Errorf("Applied = %q, %v", s, ok)
	}

	// Training eligibility (rule 2), both sides.
	below := f.person(func(m *subsidyv1.TraineeRegistered) {
		m.Education, m.EnterpriseEmployee = subsidyv1.Education_EDUCATION_BELOW_ASSOCIATE, false
	})
	f.reject(&subsidyv1.Enrolled{EnrolmentId: "b1", PersonKey: below, TrainingInstitutionId: "ti-digital", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-03-01")}, subsidyv1.ReasonCode_REASON_CODE_NOT_TRAINING_ELIGIBLE)
	worker := f.person(func(m *subsidyv1.TraineeRegistered) { m.Education = subsidyv1.Education_EDUCATION_BELOW_ASSOCIATE })
	f.must(&subsidyv1.Enrolled{EnrolmentId: "b2", PersonKey: worker, TrainingInstitutionId: "ti-digital", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-03-01")})

	// Suspension stops new activity; reinstatement resumes it.
	f.must(&subsidyv1.InstitutionSuspended{InstitutionId: "ti-cloud", Reason: "违规", OfficialId: "s", SuspendedOn: dt("2025-04-01")})
	f.reject(&subsidyv1.Enrolled{EnrolmentId: "s1", PersonKey: k, TrainingInstitutionId: "ti-cloud", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-04-02")}, subsidyv1.ReasonCode_REASON_CODE_INSTITUTION_SUSPENDED)
	f.must(&subsidyv1.InstitutionReinstated{InstitutionId: "ti-cloud", OfficialId: "s", ReinstatedOn: dt("2025-05-01")})
	f.must(&subsidyv1.Enrolled{EnrolmentId: "s1", PersonKey: k, TrainingInstitutionId: "ti-cloud", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-05-02")})

	// A second advance for one qualification.
	k3 := f.employee()
	f.trained(k3, "ti-digital", bdJ)
	f.must(&subsidyv1.AdvancePaymentRecorded{AdvanceId: "a1", TrainingInstitutionId: "ti-digital", PersonKey: k3, Qualification: bdJ.Proto(), AmountFen: 1, PaidOn: dt("2025-03-01")})
	f.reject(&subsidyv1.AdvancePaymentRecorded{AdvanceId: "a2", TrainingInstitutionId: "ti-digital", PersonKey: k3, Qualification: bdJ.Proto(), AmountFen: 1, PaidOn: dt("2025-03-01")}, subsidyv1.ReasonCode_REASON_CODE_ALREADY_EXISTS)
}

func TestHoldsAndCancellation(t *testing.T) {
	f := newFx(t, rules.DefaultRuleSet())
	e, k := f.entitled("ti-digital", bdJ, false, "2025-06-20")
	f.noticed(e)
	want(t, f.derived(&subsidyv1.HoldPlaced{HoldId: "h1", EntitlementId: e, OfficialId: "sup", Reason: "核查", PlacedOn: dt("2025-07-08")}),
		"EntitlementHeld:REASON_CODE_SUPERVISOR_HOLD")
	f.reject(&subsidyv1.PaymentRequested{EntitlementId: e, OfficialId: "m", RequestedOn: dt("2025-07-09")}, subsidyv1.ReasonCode_REASON_CODE_ENTITLEMENT_HELD)
	want(t, f.derived(&subsidyv1.HoldLifted{LiftId: "l1", EntitlementId: e, HoldId: rules.SupervisorHold("h1"), OfficialId: "sup", LiftedOn: dt("2025-07-09")}),
		"EntitlementReleased:REASON_CODE_SUPERVISOR_HOLD")

	// Revoked before payment: a final hold, no clawback, budget freed.
	want(t, f.derived(&subsidyv1.CertificateRevoked{CertificateId: "cert-as-" + k[56:] + "-" + bdJ.String() + "-1", PersonKey: k, Qualification: bdJ.Proto(), RevokedOn: dt("2025-07-10")}),
		"EntitlementHeld:REASON_CODE_CERTIFICATE_REVOKED")
	f.reject(&subsidyv1.HoldLifted{LiftId: "l2", EntitlementId: e, HoldId: "revoked/cert-as-" + k[56:] + "-" + bdJ.String() + "-1", OfficialId: "sup", LiftedOn: dt("2025-07-11")}, subsidyv1.ReasonCode_REASON_CODE_HOLD_NOT_LIFTABLE)
	f.reject(&subsidyv1.PaymentRequested{EntitlementId: e, OfficialId: "m", RequestedOn: dt("2025-07-11")}, subsidyv1.ReasonCode_REASON_CODE_ENTITLEMENT_HELD)
	f.reject(&subsidyv1.HoldPlaced{HoldId: "h2", EntitlementId: e, OfficialId: "sup", PlacedOn: dt("2025-07-11")}, subsidyv1.ReasonCode_REASON_CODE_WRONG_STATE)
	want(t, f.derived(&subsidyv1.FraudFound{FindingId: "fr", EntitlementId: e, OfficialId: "sup", FoundOn: dt("2025-07-12")})) // already cancelled

	// Fraud while the payment is in flight: the clawback comes with the
	// settlement.
	e2, _ := f.entitled("ti-digital", bdJ, true, "2025-06-20")
	f.noticed(e2)
	o := f.derived(&subsidyv1.PaymentRequested{EntitlementId: e2, OfficialId: "m", RequestedOn: dt("2025-07-09")})[0].Payload.(*subsidyv1.PaymentOrdered)
	want(t, f.derived(&subsidyv1.FraudFound{FindingId: "fr2", EntitlementId: e2, OfficialId: "sup", FoundOn: dt("2025-07-09")}), "EntitlementHeld:REASON_CODE_FRAUD_FINDING")
	evs := f.derived(&subsidyv1.PaymentSettled{PaymentOrderId: o.PaymentOrderId, EntitlementId: e2, AmountFen: o.NetFen, PaidToAccount: "acct-digital", SettledOn: dt("2025-07-10")})
	want(t, evs, "ClawbackRaised")
	if c := evs[0].Payload.(*subsidyv1.ClawbackRaised); c.AmountFen != 80000 || c.Cause != subsidyv1.ClawbackCause_CLAWBACK_CAUSE_FRAUD {
		t.Errorf("clawback %v", c)
	}
	// Write-off: maker/checker, must match the request, bounded.
	cb := rules.ClawbackID(e2)
	f.reject(&subsidyv1.ClawbackWrittenOff{ClawbackId: cb, AmountFen: 1, Reason: "x", RequestedBy: "a", ApprovedBy: "b"}, subsidyv1.ReasonCode_REASON_CODE_WRONG_STATE)
	f.reject(&subsidyv1.WriteOffRequested{ClawbackId: cb, AmountFen: 80001, Reason: "x", OfficialId: "a"}, subsidyv1.ReasonCode_REASON_CODE_RECOVERY_EXCEEDS_RECEIVABLE)
	f.must(&subsidyv1.WriteOffRequested{ClawbackId: cb, AmountFen: 80000, Reason: "x", OfficialId: "a"})
	f.reject(&subsidyv1.WriteOffRequested{ClawbackId: cb, AmountFen: 80000, Reason: "x", OfficialId: "a"}, subsidyv1.ReasonCode_REASON_CODE_DUPLICATE_FACT)
	f.reject(&subsidyv1.ClawbackWrittenOff{ClawbackId: cb, AmountFen: 70000, Reason: "x", RequestedBy: "a", ApprovedBy: "b"}, subsidyv1.ReasonCode_REASON_CODE_WRONG_STATE)
	f.reject(&subsidyv1.ClawbackWrittenOff{ClawbackId: cb, AmountFen: 80000, Reason: " ", RequestedBy: "a", ApprovedBy: "b"}, subsidyv1.ReasonCode_REASON_CODE_WRITE_OFF_NEEDS_REASON)
	// Nor one of invisible characters only (found by review: a reason of
	// zero-width spaces passed).
	f.reject(&subsidyv1.ClawbackWrittenOff{ClawbackId: cb, AmountFen: 80000, Reason: "\u200b\u2060 ", RequestedBy: "a", ApprovedBy: "b"}, subsidyv1.ReasonCode_REASON_CODE_WRITE_OFF_NEEDS_REASON)
	f.reject(&subsidyv1.WriteOffRequested{ClawbackId: cb, AmountFen: 80000, Reason: "\u200b", OfficialId: "a"}, subsidyv1.ReasonCode_REASON_CODE_WRITE_OFF_NEEDS_REASON)
	// The checker approves the maker's request as asked, reason included,
	// and is not the maker under another case (rules 2026.5).
	f.reject(&subsidyv1.ClawbackWrittenOff{ClawbackId: cb, AmountFen: 80000, Reason: "y", RequestedBy: "a", ApprovedBy: "b"}, subsidyv1.ReasonCode_REASON_CODE_WRONG_STATE)
	f.reject(&subsidyv1.ClawbackWrittenOff{ClawbackId: cb, AmountFen: 80000, Reason: "x", RequestedBy: "a", ApprovedBy: "A"}, subsidyv1.ReasonCode_REASON_CODE_WRITE_OFF_SAME_OFFICIAL)
	f.must(&subsidyv1.ClawbackWrittenOff{ClawbackId: cb, AmountFen: 80000, Reason: "x", RequestedBy: "a", ApprovedBy: "b"})

	// A request awaiting approval when a repayment leaves less outstanding
	// cannot be approved; a new request replaces it, and only the new one
	// can be approved.
	e3, _ := f.entitled("ti-digital", bdJ, true, "2025-06-20")
	f.noticed(e3)
	o3 := f.derived(&subsidyv1.PaymentRequested{EntitlementId: e3, OfficialId: "m", RequestedOn: dt("2025-07-09")})[0].Payload.(*subsidyv1.PaymentOrdered)
	want(t, f.derived(&subsidyv1.FraudFound{FindingId: "fr3", EntitlementId: e3, OfficialId: "sup", FoundOn: dt("2025-07-09")}), "EntitlementHeld:REASON_CODE_FRAUD_FINDING")
	want(t, f.derived(&subsidyv1.PaymentSettled{PaymentOrderId: o3.PaymentOrderId, EntitlementId: e3, AmountFen: o3.NetFen, PaidToAccount: "acct-digital", SettledOn: dt("2025-07-10")}), "ClawbackRaised")
	cb3 := rules.ClawbackID(e3)
	f.must(&subsidyv1.WriteOffRequested{ClawbackId: cb3, AmountFen: 80000, Reason: "untraceable", OfficialId: "a"})
	// A repayment under a payment order's id, which an offset's recovery
	// is derived from, is refused (found by review: the decision failed).
	f.reject(&subsidyv1.RepaymentReceived{RepaymentId: o3.PaymentOrderId, ClawbackId: cb3, AmountFen: 30000, ReceivedOn: dt("2025-08-01")}, subsidyv1.ReasonCode_REASON_CODE_ALREADY_EXISTS)
	want(t, f.derived(&subsidyv1.RepaymentReceived{RepaymentId: "rp3", ClawbackId: cb3, AmountFen: 30000, ReceivedOn: dt("2025-08-01")}), "ClawbackRecovered")
	f.reject(&subsidyv1.ClawbackWrittenOff{ClawbackId: cb3, AmountFen: 80000, Reason: "untraceable", RequestedBy: "a", ApprovedBy: "b"}, subsidyv1.ReasonCode_REASON_CODE_RECOVERY_EXCEEDS_RECEIVABLE)
	f.must(&subsidyv1.WriteOffRequested{ClawbackId: cb3, AmountFen: 50000, Reason: "untraceable after a part repayment", OfficialId: "c"})
	f.reject(&subsidyv1.ClawbackWrittenOff{ClawbackId: cb3, AmountFen: 80000, Reason: "untraceable", RequestedBy: "a", ApprovedBy: "b"}, subsidyv1.ReasonCode_REASON_CODE_WRONG_STATE)
	f.reject(&subsidyv1.ClawbackWrittenOff{ClawbackId: cb3, AmountFen: 50000, Reason: "x", RequestedBy: "c", ApprovedBy: "c"}, subsidyv1.ReasonCode_REASON_CODE_WRITE_OFF_SAME_OFFICIAL)
	f.must(&subsidyv1.ClawbackWrittenOff{ClawbackId: cb3, AmountFen: 50000, Reason: "untraceable after a part repayment", RequestedBy: "c", ApprovedBy: "a"})
	// Money repaid after the write-off recovers what was written off
	// (TestRepaymentAfterWriteOff), never more.
	f.reject(&subsidyv1.RepaymentReceived{RepaymentId: "r", ClawbackId: cb, AmountFen: 80001, ReceivedOn: dt("2025-08-01")}, subsidyv1.ReasonCode_REASON_CODE_RECOVERY_EXCEEDS_RECEIVABLE)
	checkInvariants(t, f.l.log)
}

func TestRuleSet(t *testing.T) {
	rs := rules.DefaultRuleSet()
	if err := rs.Validate(); err != nil {
		t.Fatal(err)
	}
	if rs.Version != "2026.6" || rs.CalendarThrough != 2026 || rs.YearlyCap != 1 || rs.SubsidisedAttempts != 1 || rs.PaymentWorkingDays != 10 || rs.NoticeWorkingDays != 5 || rs.PassRateThresholdBP != 6000 || !rs.LowerAfterHigher || rs.TargetMeasure != rules.MeasureTrained {
		t.Errorf("defaults changed: %+v", rs)
	}
	fp := rs.Fingerprint()
	rs2 := rules.DefaultRuleSet()
	rs2.Holidays = append([]refdata.Date{rs2.Holidays[3]}, rs2.Holidays...) // order and repeats do not matter
	if rs2.Fingerprint() != fp {
		t.Errorf("fingerprint depends on calendar order")
	}
	rs2.YearlyCap = 2
	if rs2.Fingerprint() == fp {
		t.Errorf("fingerprint ignores YearlyCap")
	}
	rs2 = rules.DefaultRuleSet()
	rs2.SubsidisedAttempts = 2
	if rs2.Fingerprint() == fp {
		t.Errorf("fingerprint ignores SubsidisedAttempts")
	}
	rs2 = rules.DefaultRuleSet()
	rs2.PaymentWorkingDays++
	if rs2.Fingerprint() == fp {
		t.Errorf("fingerprint ignores PaymentWorkingDays")
	}
	for _, bad := range []func(*rules.RuleSet){
		func(r *rules.RuleSet) { r.Version = "" },
		func(r *rules.RuleSet) { r.YearlyCap = 0 },
		func(r *rules.RuleSet) { r.SubsidisedAttempts = 0 },
		func(r *rules.RuleSet) { r.SubsidisedAttempts = 101 },
		func(r *rules.RuleSet) { r.PaymentWorkingDays = 0 },
		func(r *rules.RuleSet) { r.NoticeWorkingDays = 0 },
		func(r *rules.RuleSet) { r.PassRateThresholdBP = 10001 },
		func(r *rules.RuleSet) { r.PassRateWindow = 0 },
		func(r *rules.RuleSet) { r.TargetMeasure = "graduated" },
		func(r *rules.RuleSet) { r.SharedAccountThreshold = 1 },
		func(r *rules.RuleSet) { r.WorkingWeekends = []refdata.Date{refdata.D(2025, 6, 9)} }, // a Monday
		func(r *rules.RuleSet) { r.Holidays = []refdata.Date{refdata.D(2025, 2, 30)} },
		func(r *rules.RuleSet) { r.CalendarThrough = 2025 }, // lists 2026 holidays
		func(r *rules.RuleSet) { r.CalendarThrough = 0 },
	} {
		r := rules.DefaultRuleSet()
		bad(&r)
		if r.Validate() == nil {
			t.Errorf("Validate accepted %+v", r)
		}
	}
	if !rs.IsWorkingDay(refdata.D(2025, 9, 28)) || rs.IsWorkingDay(refdata.D(2025, 10, 1)) || rs.IsWorkingDay(refdata.D(2025, 6, 14)) {
		t.Errorf("IsWorkingDay wrong")
	}
	rs2 = rules.DefaultRuleSet()
	rs2.CalendarThrough++
	if rs2.Fingerprint() == fp {
		t.Errorf("fingerprint ignores CalendarThrough")
	}
	if !rs.CalendarCovers(refdata.D(2026, 12, 31)) || rs.CalendarCovers(refdata.D(2027, 1, 1)) {
		t.Errorf("CalendarCovers wrong")
	}
}

// TestCalendar2026 checks the default rule set's 2026 days against the
// State Council's notice of 4 November 2025, day by day: days off
// (weekdays and weekends alike) and weekend working days; every other day
// of 2026 is a working day exactly when it is Monday to Friday.
func TestCalendar2026(t *testing.T) {
	rs := rules.DefaultRuleSet()
	off := map[string]bool{}
	for _, span := range [][2]string{
		{"2026-01-01", "2026-01-03"}, {"2026-02-15", "2026-02-23"}, {"2026-04-04", "2026-04-06"},
		{"2026-05-01", "2026-05-05"}, {"2026-06-19", "2026-06-21"}, {"2026-09-25", "2026-09-27"},
		{"2026-10-01", "2026-10-07"},
	} {
		from, _ := refdata.ParseDate(span[0])
		to, _ := refdata.ParseDate(span[1])
		for d := from; d <= to; d = d.AddDays(1) {
			off[d.String()] = true
		}
	}
	works := map[string]bool{"2026-01-04": true, "2026-02-14": true, "2026-02-28": true, "2026-05-09": true, "2026-09-20": true, "2026-10-10": true}
	days := 0
	for d := refdata.D(2026, 1, 1); d.Year() == 2026; d = d.AddDays(1) {
		wd := d.Weekday()
		want := wd != time.Saturday && wd != time.Sunday
		switch {
		case off[d.String()]:
			want = false
		case works[d.String()]:
			want = true
		}
		if got := rs.IsWorkingDay(d); got != want {
			t.Errorf("IsWorkingDay(%s, a %s) = %v; want %v", d, wd, got, want)
		}
		if want {
			days++
		}
	}
	// 365 days, 104 weekend days, 19 weekdays off (New Year 2, Spring
	// Festival 6, Qingming 1, Labour Day 3, Dragon Boat 1, Mid-Autumn 1,
	// National Day 5), 6 weekend days worked: 248 working days.
	if days != 248 {
		t.Errorf("2026 has %d working days; want 248", days)
	}
}

func TestIDs(t *testing.T) {
	k := "ab" + string(make([]byte, 0))
	e1 := rules.EntitlementID(k, bdJ)
	if e1 != rules.EntitlementID(k, bdJ) || e1 == rules.EntitlementID(k, bdI) || e1 == rules.EntitlementID(k+"c", bdJ) {
		t.Errorf("entitlement ids are not a function of (person, qualification)")
	}
	if want := events.DeriveID("entitlement", k, "OCCUPATION_BIG_DATA", "LEVEL_JUNIOR").String(); e1 != want {
		t.Errorf("EntitlementID = %s; want %s", e1, want)
	}
	if rules.PaymentOrderID(e1, 1) == rules.PaymentOrderID(e1, 2) || rules.PaymentOrderID(e1, 1) != events.DeriveID("payment-order", e1, "1").String() {
		t.Errorf("payment order ids")
	}
	if rules.FundStream(2025, "cq-yuzhong") != "fund-2025-cq-yuzhong" || rules.TraineeStream("ab") != "trainee-ab" {
		t.Errorf("stream names")
	}
}

func TestAccessors(t *testing.T) {
	f := newFx(t, rules.DefaultRuleSet())
	f.must(&subsidyv1.BudgetAllocated{AllocationId: "al", Year: 2025, UnitCode: "cq-beibei", AmountFen: 100000})
	var ids []string
	for i := 0; i < 2; i++ {
		k := f.person(func(m *subsidyv1.TraineeRegistered) { m.UnitCode = "cq-beibei" })
		f.must(&subsidyv1.EligibilityEvidenceRecorded{EvidenceId: "e" + k[60:], PersonKey: k, Category: 2, Source: "社保", SnapshotAt: tsOf("2025-01-01"), Confirmed: true, InsuredFrom: dt("2020-01-01")})
		f.trained(k, "ti-digital", bdJ)
		f.must(&subsidyv1.AdvancePaymentRecorded{AdvanceId: "a" + k[60:], TrainingInstitutionId: "ti-digital", PersonKey: k, Qualification: bdJ.Proto(), AmountFen: 1, PaidOn: dt("2025-04-01")})
		f.certify(k, bdJ, "2025-06-20")
		ids = append(ids, rules.EntitlementID(k, bdJ))
	}
	w := f.l.w
	if fs := w.Fund(2025, "cq-beibei"); fs.Allocated != 100000 || fs.Committed != 80000 || len(fs.Waiting) != 1 || fs.Waiting[0] != ids[1] {
		t.Errorf("Fund = %+v", fs)
	}
	// Paying the first, then the second is released and paid; a fraud on
	// the first raises a clawback against the institution.
	f.noticed(ids[0])
	f.paid(ids[0], "acct-digital")
	want(t, f.derived(&subsidyv1.FraudFound{FindingId: "fr", EntitlementId: ids[0], OfficialId: "s", FoundOn: dt("2025-07-20")}), "EntitlementHeld:REASON_CODE_FRAUD_FINDING", "ClawbackRaised")
	e, ok := w.Entitlement(ids[0])
	if !ok || e.PaidFen != 80000 || e.Cancelled != "fraud/fr" || e.ClawbackID != rules.ClawbackID(ids[0]) || len(e.Holds) != 1 {
		t.Errorf("Entitlement = %+v", e)
	}
	if c, _ := w.Clawback(e.ClawbackID); c.OutstandingFen != 80000 {
		t.Errorf("Clawback = %+v", c)
	}
	if _, ok := w.Entitlement("nope"); ok {
		t.Errorf("unknown entitlement found")
	}
	if u, err := w.Units().RollUp("cq-yubei", refdata.D(2026, 1, 1)); err != nil || u.Code != "cq-liangjiang" {
		t.Errorf("Units().RollUp = %v, %v", u, err)
	}
	if p, n, below := w.PassRate("ti-digital", bdJ); p != 2 || n != 2 || below {
		t.Errorf("PassRate = %d/%d %v", p, n, below)
	}
	if len(w.Flags()) != 0 {
		t.Errorf("Flags = %v", w.Flags())
	}
}

// Applied says where each folded event is (stream and revision), whatever
// streams' events interleave; an unknown id is not applied.
func TestAppliedKnowsStreamAndRevision(t *testing.T) {
	w := rules.NewWorld(rules.DefaultRuleSet())
	type at struct {
		stream string
		rev    uint64
	}
	want := map[events.ID]at{}
	next := map[string]uint64{}
	for i, stream := range []string{"a", "b", "a", "c", "b", "a"} {
		id := events.DeriveID("applied-test", fmt.Sprint(i))
		ev := rules.Event{ID: id, Payload: &subsidyv1.FactRejected{Reason: subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE}}
		if err := w.Apply(stream, next[stream], ev); err != nil {
			t.Fatal(err)
		}
		want[id] = at{stream, next[stream]}
		next[stream]++
	}
	for id, a := range want {
		if s, rev, ok := w.Applied(id); !ok || s != a.stream || rev != a.rev {
			t.Errorf("Applied(%s) = %q, %d, %v; want %q, %d", id, s, rev, ok, a.stream, a.rev)
		}
	}
	if _, _, ok := w.Applied(events.DeriveID("applied-test", "never")); ok {
		t.Error("Applied(an id never folded) = true")
	}
	if rev, ok := w.StreamRevision("a"); !ok || rev != 2 {
		t.Errorf("StreamRevision(a) = %d, %v; want 2, true", rev, ok)
	}
}

// TestNoticePastTheCalendar: a notice that ends in a year the rule set's
// holiday calendar does not list says so in its decision.
func TestNoticePastTheCalendar(t *testing.T) {
	for _, tt := range []struct {
		approved, ends string
		says           bool
	}{
		{"2026-12-21", "2026-12-25", false},
		{"2026-12-30", "2027-01-05", true},
	} {
		f := newFx(t, rules.DefaultRuleSet())
		e, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20")
		f.must(&subsidyv1.EntitlementConfirmed{EntitlementId: e, OfficialId: "maker", ConfirmedOn: dt("2026-12-18")})
		evs := f.derived(&subsidyv1.EntitlementApproved{EntitlementId: e, OfficialId: "checker", ApprovedOn: dt(tt.approved)})
		want(t, evs, "NoticeOpened")
		n := evs[0].Payload.(*subsidyv1.NoticeOpened)
		detail := n.GetDecision().GetChecks()[1].GetDetail()
		if got, _ := refdata.FromProto(n.GetEndsOn()); got.String() != tt.ends {
			t.Errorf("approved %s: ends %s; want %s", tt.approved, got, tt.ends)
		}
		if says := strings.Contains(detail, "lists no holidays after 2026, so 2027 counted weekends only"); says != tt.says {
			t.Errorf("approved %s: %q; want the calendar's end said: %v", tt.approved, detail, tt.says)
		}
	}
}

// TestEvidenceAfterTheCertificate: 免申即享 when the evidence comes late.
// A certificate denied for want of eligibility (rule 4) is decided again
// when evidence is recorded, and the entitlement is derived from the
// evidence; a denial for another reason, a revoked certificate, a
// qualification already subsidised, or evidence that still does not pass
// record nothing.
func TestEvidenceAfterTheCertificate(t *testing.T) {
	f := newFx(t, rules.DefaultRuleSet())
	k := f.person()
	f.trained(k, "ti-digital", bdJ)
	a := f.assessment(k, bdJ, 1, 80, 80, "2025-06-20")
	f.must(a)
	cd := f.must(f.certificate(a, "2025-06-30"))
	want(t, cd.Derived(), denied+"REASON_CODE_NO_ELIGIBILITY_EVIDENCE")
	certID, certEvent := cd.Derived()[0].Payload.(*subsidyv1.SubsidyDenied).GetCertificateId(), cd.Events[0].ID.String()

	// Evidence that does not cover the assessment date: no entitlement,
	// and the denial's reason revised to the rule failing now (rules
	// 2026.4); more such evidence, failing the same way, revises nothing.
	rd := f.must(insured(k, "ev-late-1", "2025-07-01", "2025-07-05"))
	want(t, rd.Derived(), "SubsidyDenialRevised:REASON_CODE_NOT_INSURED_ON_ASSESSMENT")
	if r := rd.Derived()[0].Payload.(*subsidyv1.SubsidyDenialRevised); r.GetCertificateId() != certID || r.GetPersonKey() != k ||
		r.GetPreviousReason() != subsidyv1.ReasonCode_REASON_CODE_NO_ELIGIBILITY_EVIDENCE || r.GetDecision().GetEvidenceEventIds()[0] != rd.Events[0].ID.String() ||
		!slices.Contains(r.GetDecision().GetEvidenceEventIds(), certEvent) {
		t.Errorf("revised %v; want certificate %s, previously NO_ELIGIBILITY_EVIDENCE, the evidence fact first and the certificate in the evidence", r, certID)
	}
	want(t, f.derived(insured(k, "ev-late-1b", "2025-07-02", "2025-07-05")))
	// Evidence that does: the entitlement, from the evidence fact.
	ev := insured(k, "ev-late-2", "2020-01-01", "2025-07-06")
	d := f.must(ev)
	evs := d.Derived()
	want(t, evs, entitled)
	e := evs[0].Payload.(*subsidyv1.SubsidyEntitled)
	if e.GetCertificateId() != certID || e.GetEntitlementId() != rules.EntitlementID(k, bdJ) || e.GetAmountFen() != 80000 {
		t.Errorf("entitled %v", e)
	}
	ids := e.GetDecision().GetEvidenceEventIds()
	if len(ids) < 2 || ids[0] != d.Events[0].ID.String() {
		t.Errorf("decision evidence %v: want the evidence fact first", ids)
	}
	if !slices.Contains(ids, certEvent) {
		t.Errorf("decision evidence %v lacks the certificate's event", ids)
	}
	// Once entitled, more evidence changes nothing.
	want(t, f.derived(insured(k, "ev-late-3", "2019-01-01", "2025-07-07")))
	checkInvariants(t, f.l.log)

	// Denied for another reason first (not the first attempt): nothing.
	k2 := f.person()
	f.trained(k2, "ti-digital", bdJ)
	f.must(f.assessment(k2, bdJ, 1, 50, 50, "2025-06-10"))
	a2 := f.assessment(k2, bdJ, 2, 80, 80, "2025-06-20")
	f.must(a2)
	want(t, f.derived(f.certificate(a2, "2025-06-30")), denied+"REASON_CODE_NO_ELIGIBILITY_EVIDENCE")
	want(t, f.derived(insured(k2, "ev-k2", "2020-01-01", "2025-07-06")), "SubsidyDenialRevised:REASON_CODE_NOT_FIRST_ATTEMPT") // rule 5 fails now

	// A revoked certificate: nothing.
	k3 := f.person()
	f.trained(k3, "ti-digital", bdJ)
	c3 := f.certify(k3, bdJ, "2025-06-20")[0].Payload.(*subsidyv1.SubsidyDenied)
	f.must(&subsidyv1.CertificateRevoked{CertificateId: c3.GetCertificateId(), PersonKey: k3, Qualification: bdJ.Proto(), RevokedOn: dt("2025-07-01")})
	want(t, f.derived(insured(k3, "ev-k3", "2020-01-01", "2025-07-06")))
	checkInvariants(t, f.l.log)
}

// TestCompletionAfterTheCertificate: a certificate decided before its
// training's completion was reported is denied by rule 3; the completion,
// when it comes and is dated on or before the assessment, decides it again
// and derives the entitlement (rules 2026.3), as evidence does for rule 4,
// and clears the assessment's ASSESSMENT_WITHOUT_COMPLETION flag (rules
// 2026.4), whether or not the entitlement follows; one dated after the
// assessment does neither.
func TestCompletionAfterTheCertificate(t *testing.T) {
	f := newFx(t, rules.DefaultRuleSet())
	enrolled := func(k string) (completed func(on string) *subsidyv1.TrainingCompleted) {
		id := "enr-late-" + k[56:]
		f.must(&subsidyv1.Enrolled{EnrolmentId: id, PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-03-01")})
		return func(on string) *subsidyv1.TrainingCompleted {
			return &subsidyv1.TrainingCompleted{EnrolmentId: id, PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: bdJ.Proto(), CompletedOn: dt(on)}
		}
	}
	flagOf := map[string]string{} // person key -> flag id
	certified := func(k string) (certID, certEvent string) {
		a := f.assessment(k, bdJ, 1, 80, 80, "2025-06-20")
		flagged := f.derived(a)
		want(t, flagged, "ViolationFlagged:REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION")
		flagOf[k] = flagged[0].Payload.(*subsidyv1.ViolationFlagged).GetFlagId()
		cd := f.must(f.certificate(a, "2025-06-30"))
		want(t, cd.Derived(), denied+"REASON_CODE_TRAINING_NOT_COMPLETED")
		return cd.Derived()[0].Payload.(*subsidyv1.SubsidyDenied).GetCertificateId(), cd.Events[0].ID.String()
	}

	// Completed before the assessment, reported after the certificate:
	// the entitlement, from the completion fact.
	k := f.employee()
	completed := enrolled(k)
	certID, certEvent := certified(k)
	cleared := "FlagCleared:REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION"
	d := f.must(completed("2025-06-15"))
	evs := d.Derived()
	want(t, evs, entitled, cleared)
	if fc := evs[1].Payload.(*subsidyv1.FlagCleared); fc.GetFlagId() != flagOf[k] || fc.GetSubject() != k || fc.GetInstitutionId() != "ti-digital" ||
		evs[1].ID != events.DeriveID("flag-cleared", flagOf[k]) || !slices.Contains(fc.GetDecision().GetEvidenceEventIds(), flagOf[k]) {
		t.Errorf("cleared %v (event %s); want flag %s of %s at ti-digital, with the flag among the evidence", fc, evs[1].ID, flagOf[k], k)
	}
	e := evs[0].Payload.(*subsidyv1.SubsidyEntitled)
	if e.GetCertificateId() != certID || e.GetEntitlementId() != rules.EntitlementID(k, bdJ) {
		t.Errorf("entitled %v", e)
	}
	if ids := e.GetDecision().GetEvidenceEventIds(); len(ids) < 2 || ids[0] != d.Events[0].ID.String() || !slices.Contains(ids, certEvent) {
		t.Errorf("decision evidence %v: want the completion first, and the certificate", ids)
	}

	// Completed after the assessment: rule 3 still fails, nothing.
	k2 := f.employee()
	completed2 := enrolled(k2)
	certified(k2)
	want(t, f.derived(completed2("2025-06-25")))
	open := map[string]bool{}
	for _, fl := range f.l.w.Flags() {
		open[fl.ID] = !fl.Cleared
	}
	if !open[flagOf[k2]] || open[flagOf[k]] {
		t.Errorf("flags open: %v; want %s (completed after) open, %s cleared", open, flagOf[k2], flagOf[k])
	}

	// Both late: the completion finds rule 4 failing (the denial's reason
	// revised), and the evidence then earns it, though the certificate's
	// denial named rule 3.
	k3 := f.person()
	completed3 := enrolled(k3)
	certified(k3)
	want(t, f.derived(completed3("2025-06-15")), "SubsidyDenialRevised:REASON_CODE_NO_ELIGIBILITY_EVIDENCE", cleared)
	want(t, f.derived(insured(k3, "ev-late-k3", "2020-01-01", "2025-07-06")), entitled)
	checkInvariants(t, f.l.log)
}

// TestCompletionOfAReEnrolment (rules 2026.6): a person enrolled twice for
// a qualification, assessed with neither training completed; the
// assessment names no training institution, so it is the first
// enrolment's. The second's completion, reported after the certificate but
// dated before the assessment, decides the certificate again and clears
// the assessment's flag (naming the flag's institution, the first
// enrolment's), as the first's would; reported before the certificate, it
// decides it. An assessment that named the first's institution is not the
// second's, and a completion dated after the assessment changes nothing.
func TestCompletionOfAReEnrolment(t *testing.T) {
	f := newFx(t, rules.DefaultRuleSet())
	twice := func(k string) (second func(on string) *subsidyv1.TrainingCompleted) {
		f.must(&subsidyv1.Enrolled{EnrolmentId: "enr-1-" + k[56:], PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-03-01")})
		f.must(&subsidyv1.Enrolled{EnrolmentId: "enr-2-" + k[56:], PersonKey: k, TrainingInstitutionId: "ti-cloud", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-04-01")})
		return func(on string) *subsidyv1.TrainingCompleted {
			return &subsidyv1.TrainingCompleted{EnrolmentId: "enr-2-" + k[56:], PersonKey: k, TrainingInstitutionId: "ti-cloud", Qualification: bdJ.Proto(), CompletedOn: dt(on)}
		}
	}
	assessed := func(k, named string) (*subsidyv1.AssessmentRecorded, string) {
		a := f.assessment(k, bdJ, 1, 80, 80, "2025-06-20")
		a.TrainingInstitutionId = named
		evs := f.derived(a)
		want(t, evs, "ViolationFlagged:REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION")
		if fl := evs[0].Payload.(*subsidyv1.ViolationFlagged); fl.GetInstitutionId() != "ti-digital" {
			t.Fatalf("flag %v; want ti-digital's (the first enrolment's)", fl)
		}
		return a, evs[0].Payload.(*subsidyv1.ViolationFlagged).GetFlagId()
	}
	notCompleted := denied + "REASON_CODE_TRAINING_NOT_COMPLETED"
	cleared := "FlagCleared:REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION"

	// Reported after the certificate: the entitlement and the clearing.
	k := f.employee()
	second := twice(k)
	a, flag := assessed(k, "")
	want(t, f.derived(f.certificate(a, "2025-06-30")), notCompleted)
	d := f.must(second("2025-06-15"))
	evs := d.Derived()
	want(t, evs, entitled, cleared)
	if len(evs) != 2 {
		t.FailNow()
	}
	if ids := evs[0].Payload.(*subsidyv1.SubsidyEntitled).GetDecision().GetEvidenceEventIds(); !slices.Contains(ids, d.Events[0].ID.String()) {
		t.Errorf("entitlement's evidence %v: want the second enrolment's completion %s", ids, d.Events[0].ID)
	}
	if fc := evs[1].Payload.(*subsidyv1.FlagCleared); fc.GetFlagId() != flag || fc.GetInstitutionId() != "ti-digital" || !strings.Contains(fc.GetDetail(), "enr-2-") {
		t.Errorf("cleared %v; want flag %s at ti-digital, cleared by enr-2", fc, flag)
	}

	// Reported after the assessment, before the certificate: decided on it.
	k2 := f.employee()
	second2 := twice(k2)
	a2, _ := assessed(k2, "")
	want(t, f.derived(second2("2025-06-10")), cleared)
	want(t, f.derived(f.certificate(a2, "2025-06-30")), entitled)

	// The assessment named the first enrolment's institution: not the
	// second's training.
	k3 := f.employee()
	second3 := twice(k3)
	a3, _ := assessed(k3, "ti-digital")
	want(t, f.derived(f.certificate(a3, "2025-06-30")), notCompleted)
	want(t, f.derived(second3("2025-06-15")))

	// Completed after the assessment: nothing.
	k4 := f.employee()
	second4 := twice(k4)
	a4, flag4 := assessed(k4, "")
	want(t, f.derived(f.certificate(a4, "2025-06-30")), notCompleted)
	want(t, f.derived(second4("2025-06-21")))
	for _, fl := range f.l.w.Flags() {
		if fl.ID == flag4 && fl.Cleared {
			t.Errorf("flag %s cleared by a completion after its assessment", flag4)
		}
	}
	checkInvariants(t, f.l.log)
}

// TestReEnrolmentDecidesOnlyWhatItTrains (found by review): a
// re-enrolment's completion does not decide again a certificate whose own
// training was completed in time (it changes nothing rule 3 reads: the
// yearly cap a revocation freed meanwhile would be read as of an unrelated
// fact), and once rule 3 passed on a re-enrolment, the assessment's own
// enrolment's completion dated after the assessment does not either.
func TestReEnrolmentDecidesOnlyWhatItTrains(t *testing.T) {
	// capFreed fills k's 2025 cap with a bdJ entitlement, has the
	// certificate of aB revised to YEARLY_CAP_REACHED, and revokes the
	// bdJ certificate: the cap is free again.
	capFreed := func(f *fx, k string) {
		f.must(insured(k, "ev-1", "2025-06-01", "2025-06-02"))
		f.trained(k, "ti-digital", bdJ)
		aA := f.assessment(k, bdJ, 1, 80, 80, "2025-06-20")
		f.must(aA)
		cA := f.certificate(aA, "2025-06-30")
		want(t, f.derived(cA), entitled)
		want(t, f.derived(insured(k, "ev-2", "2020-01-01", "2025-07-01")), "SubsidyDenialRevised:REASON_CODE_YEARLY_CAP_REACHED")
		f.must(&subsidyv1.CertificateRevoked{CertificateId: cA.CertificateId, PersonKey: k, Qualification: bdJ.Proto(), RevokedOn: dt("2025-07-05")})
	}
	completed := func(k, enr, on string) *subsidyv1.TrainingCompleted {
		return &subsidyv1.TrainingCompleted{EnrolmentId: enr, PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: ccJ.Proto(), CompletedOn: dt(on)}
	}

	// Its own training completed in time.
	f := newFx(t, rules.DefaultRuleSet())
	k := f.person()
	f.trained(k, "ti-digital", ccJ) // completed 05-01
	aB := f.assessment(k, ccJ, 1, 80, 80, "2025-05-20")
	f.must(aB)
	want(t, f.derived(f.certificate(aB, "2025-05-30")), denied+"REASON_CODE_NO_ELIGIBILITY_EVIDENCE")
	capFreed(f, k)
	f.must(&subsidyv1.Enrolled{EnrolmentId: "enr-again-" + k[56:], PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: ccJ.Proto(), EnrolledOn: dt("2025-04-01")})
	want(t, f.derived(completed(k, "enr-again-"+k[56:], "2025-05-10")))

	// Rule 3 passed on the re-enrolment; the first enrolment completes
	// after the assessment.
	f = newFx(t, rules.DefaultRuleSet())
	k = f.person()
	f.must(&subsidyv1.Enrolled{EnrolmentId: "enr-1-" + k[56:], PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: ccJ.Proto(), EnrolledOn: dt("2025-03-01")})
	f.must(&subsidyv1.Enrolled{EnrolmentId: "enr-2-" + k[56:], PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: ccJ.Proto(), EnrolledOn: dt("2025-04-01")})
	aB = f.assessment(k, ccJ, 1, 80, 80, "2025-05-20")
	f.must(aB)
	f.must(completed(k, "enr-2-"+k[56:], "2025-05-10"))
	want(t, f.derived(f.certificate(aB, "2025-05-30")), denied+"REASON_CODE_NO_ELIGIBILITY_EVIDENCE") // rule 3 passed on enr-2
	capFreed(f, k)
	want(t, f.derived(completed(k, "enr-1-"+k[56:], "2025-07-10")))
	checkInvariants(t, f.l.log)
}

// TestSnapshotOfReEnrolments: a World restored from its snapshot equals
// the one snapshotted for assessments that named a training institution
// or not (World snapshot 12 keeps which).
func TestSnapshotOfReEnrolments(t *testing.T) {
	f := newFx(t, rules.DefaultRuleSet())
	for _, named := range []string{"", "ti-digital", "ti-cloud"} {
		k := f.employee()
		f.must(&subsidyv1.Enrolled{EnrolmentId: "enr-1-" + k[56:], PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-03-01")})
		f.must(&subsidyv1.Enrolled{EnrolmentId: "enr-2-" + k[56:], PersonKey: k, TrainingInstitutionId: "ti-cloud", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-04-01")})
		a := f.assessment(k, bdJ, 1, 80, 80, "2025-06-20")
		a.TrainingInstitutionId = named
		f.must(a)
		f.must(f.certificate(a, "2025-06-30"))
	}
	w := replay(t, rules.DefaultRuleSet(), f.l.log)
	b, err := restore(rules.DefaultRuleSet(), snapshotOf(t, w))
	if err != nil {
		t.Fatal(err)
	}
	w.Compact()
	if !reflect.DeepEqual(w, b) {
		t.Fatal("the World restored from its snapshot differs from the one snapshotted")
	}
}

// TestCompletionDecidesItsOwnCertificatesOnly: a completion decides again
// only the certificates of its enrolment's assessments. Here certificate B
// waited behind the yearly cap, and the cap was freed by A's revocation:
// a completion of an unrelated training used to derive B's entitlement,
// read as of that fact.
func TestCompletionDecidesItsOwnCertificatesOnly(t *testing.T) {
	f := newFx(t, rules.DefaultRuleSet())
	k := f.person()
	f.trained(k, "ti-digital", ccJ)
	aB := f.assessment(k, ccJ, 1, 80, 80, "2025-05-20")
	f.must(aB)
	want(t, f.derived(f.certificate(aB, "2025-05-30")), denied+"REASON_CODE_NO_ELIGIBILITY_EVIDENCE")
	f.must(insured(k, "ev-1", "2025-06-01", "2025-06-02"))
	f.trained(k, "ti-digital", bdJ)
	aA := f.assessment(k, bdJ, 1, 80, 80, "2025-06-20")
	f.must(aA)
	cA := f.certificate(aA, "2025-06-30")
	want(t, f.derived(cA), entitled)
	want(t, f.derived(insured(k, "ev-2", "2020-01-01", "2025-07-01")), "SubsidyDenialRevised:REASON_CODE_YEARLY_CAP_REACHED") // B: the yearly cap
	f.must(&subsidyv1.CertificateRevoked{CertificateId: cA.CertificateId, PersonKey: k, Qualification: bdJ.Proto(), RevokedOn: dt("2025-07-05")})
	f.must(&subsidyv1.Enrolled{EnrolmentId: "e-bdS-" + k[56:], PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: bdS.Proto(), EnrolledOn: dt("2025-07-01")})
	want(t, f.derived(&subsidyv1.TrainingCompleted{EnrolmentId: "e-bdS-" + k[56:], PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: bdS.Proto(), CompletedOn: dt("2025-07-10")}))
	checkInvariants(t, f.l.log)
}

// TestAdvanceAfterTheCertificate: an advance paid after a certificate was
// issued is refused, entitled or denied (a denied one's second chance would
// make the institution its payee); one paid before and reported after
// counts.
func TestAdvanceAfterTheCertificate(t *testing.T) {
	f := newFx(t, rules.DefaultRuleSet())
	advance := func(k, id, paid string) *subsidyv1.AdvancePaymentRecorded {
		return &subsidyv1.AdvancePaymentRecorded{AdvanceId: id, TrainingInstitutionId: "ti-digital", PersonKey: k, Qualification: bdJ.Proto(), AmountFen: 80000, PaidOn: dt(paid)}
	}
	k := f.person()
	f.trained(k, "ti-digital", bdJ)
	want(t, f.certify(k, bdJ, "2025-06-20"), denied+"REASON_CODE_NO_ELIGIBILITY_EVIDENCE") // issued 2025-06-30
	f.reject(advance(k, "adv-late", "2025-07-03"), subsidyv1.ReasonCode_REASON_CODE_WRONG_STATE)
	f.must(advance(k, "adv-early", "2025-06-01"))
	evs := f.derived(insured(k, "ev-adv", "2020-01-01", "2025-07-06"))
	want(t, evs, entitled)
	if p := evs[0].Payload.(*subsidyv1.SubsidyEntitled).GetPayee(); p.GetKind() != subsidyv1.PayeeKind_PAYEE_KIND_INSTITUTION || p.GetInstitutionId() != "ti-digital" {
		t.Errorf("payee %v; want ti-digital, whose advance was paid before the certificate", p)
	}
	checkInvariants(t, f.l.log)
}

// TestSecondChanceOfAReissuedCertificate: a certificate reissued after the
// first was revoked is the one a second chance decides again (it used to
// look at the revoked first one only, so the reissue's denial stood).
func TestSecondChanceOfAReissuedCertificate(t *testing.T) {
	f := newFx(t, rules.DefaultRuleSet())
	k := f.person()
	f.trained(k, "ti-digital", bdJ)
	a := f.assessment(k, bdJ, 1, 80, 80, "2025-06-20")
	f.must(a)
	c1 := f.certificate(a, "2025-06-30")
	want(t, f.derived(c1), denied+"REASON_CODE_NO_ELIGIBILITY_EVIDENCE")
	f.must(&subsidyv1.CertificateRevoked{CertificateId: c1.CertificateId, PersonKey: k, Qualification: bdJ.Proto(), Reason: "证书信息有误", RevokedOn: dt("2025-07-01")})
	c2 := f.certificate(a, "2025-07-02")
	c2.CertificateId += "-reissued"
	want(t, f.derived(c2), denied+"REASON_CODE_NO_ELIGIBILITY_EVIDENCE")
	evs := f.derived(insured(k, "ev-reissue", "2020-01-01", "2025-07-06"))
	want(t, evs, entitled)
	if got := evs[0].Payload.(*subsidyv1.SubsidyEntitled).GetCertificateId(); got != c2.CertificateId {
		t.Errorf("entitled certificate %s; want the reissued %s", got, c2.CertificateId)
	}
	checkInvariants(t, f.l.log)
}

// TestReSits: rule 5 subsidises the first attempt only by default; a rule
// set with SubsidisedAttempts 2 subsidises a pass at the second attempt
// too, and not at the third.
func TestReSits(t *testing.T) {
	pass := func(f *fx, k string, attempt uint32, on string) []rules.Event {
		t.Helper()
		for i := uint32(1); i < attempt; i++ {
			f.must(f.assessment(k, bdJ, i, 10, 10, refdata.D(2025, 6, 1).AddDays(int(i)).String()))
		}
		a := f.assessment(k, bdJ, attempt, 90, 90, on)
		f.must(a)
		return f.derived(f.certificate(a, "2025-07-30"))
	}
	f := newFx(t, rules.DefaultRuleSet())
	k := f.employee()
	f.trained(k, "ti-digital", bdJ)
	evs := pass(f, k, 2, "2025-07-20")
	want(t, evs, denied+"REASON_CODE_NOT_FIRST_ATTEMPT")
	if d := evs[0].Payload.(*subsidyv1.SubsidyDenied).GetDetail(); d != "attempt 2" {
		t.Errorf("detail %q", d)
	}

	rs := rules.DefaultRuleSet()
	rs.Version, rs.SubsidisedAttempts = "test.resit2", 2
	f = newFx(t, rs)
	k = f.employee()
	f.trained(k, "ti-digital", bdJ)
	evs = pass(f, k, 2, "2025-07-20")
	want(t, evs, entitled)
	if v := evs[0].Payload.(*subsidyv1.SubsidyEntitled).GetDecision().GetRuleSetVersion(); v != "test.resit2" {
		t.Errorf("decided under %q", v)
	}
	k = f.employee()
	f.trained(k, "ti-digital", bdJ)
	evs = pass(f, k, 3, "2025-07-20")
	want(t, evs, denied+"REASON_CODE_NOT_FIRST_ATTEMPT")
	if d := evs[0].Payload.(*subsidyv1.SubsidyDenied).GetDetail(); d != "attempt 3 of 2 subsidised" {
		t.Errorf("detail %q", d)
	}
	checkInvariants(t, f.l.log)
}

// TestEvidenceAfterSeveralCertificates: one evidence fact decides every
// certificate denied for want of it, in the order they were issued, each
// seeing the entitlements the fact derived before it: the yearly cap, the
// level order and the budget hold as they would have had the evidence come
// first.
func TestEvidenceAfterSeveralCertificates(t *testing.T) {
	insured := func(k string) *subsidyv1.EligibilityEvidenceRecorded {
		return &subsidyv1.EligibilityEvidenceRecorded{EvidenceId: "ev-" + k[56:], PersonKey: k, Category: subsidyv1.EligibilityCategory_ELIGIBILITY_CATEGORY_ENTERPRISE_EMPLOYEE,
			Source: "社保", SnapshotAt: tsOf("2026-07-01"), Confirmed: true, InsuredFrom: dt("2020-01-01")}
	}
	// certified passes k's first attempt at q (trained at ti-digital),
	// which is denied for want of evidence; it returns the certificate id.
	certified := func(f *fx, k string, q refdata.Qualification, on string) string {
		t.Helper()
		f.trained(k, "ti-digital", q)
		evs := f.certify(k, q, on)
		want(t, evs, denied+"REASON_CODE_NO_ELIGIBILITY_EVIDENCE")
		return evs[0].Payload.(*subsidyv1.SubsidyDenied).GetCertificateId()
	}
	entitlements := func(evs []rules.Event) (certs []string) {
		for _, e := range evs {
			if m, ok := e.Payload.(*subsidyv1.SubsidyEntitled); ok {
				certs = append(certs, m.GetCertificateId())
			}
		}
		return certs
	}

	f := newFx(t, rules.DefaultRuleSet())
	f.must(&subsidyv1.BudgetAllocated{AllocationId: "al-2026", Year: 2026, UnitCode: "cq-yuzhong", AmountFen: 10000000})

	// Two years: both entitled, the earlier certificate first.
	k := f.person()
	c2026 := certified(f, k, ccJ, "2026-03-10")
	c2025 := certified(f, k, bdJ, "2025-06-20")
	evs := f.derived(insured(k))
	want(t, evs, entitled, entitled)
	if got := entitlements(evs); !slices.Equal(got, []string{c2025, c2026}) {
		t.Errorf("entitled certificates %v; want %v, in the order issued", got, []string{c2025, c2026})
	}

	// Of two certificates, the earlier is entitled and the later's denial
	// stands, its reason revised: in one year, by the yearly cap (1);
	// senior (2025) then junior (2026) of one occupation, by the level
	// order.
	for _, tc := range []struct {
		name            string
		earlier, later  refdata.Qualification
		earlyOn, lateOn string
		now             subsidyv1.ReasonCode
	}{
		{"yearly cap", bdJ, ccJ, "2025-06-10", "2025-06-20", subsidyv1.ReasonCode_REASON_CODE_YEARLY_CAP_REACHED},
		{"level order", bdS, bdJ, "2025-06-10", "2026-03-10", subsidyv1.ReasonCode_REASON_CODE_LOWER_AFTER_HIGHER},
	} {
		k := f.person()
		first := certified(f, k, tc.earlier, tc.earlyOn)
		certified(f, k, tc.later, tc.lateOn)
		evs := f.derived(insured(k))
		want(t, evs, entitled, "SubsidyDenialRevised:"+tc.now.String())
		if got := entitlements(evs); !slices.Equal(got, []string{first}) {
			t.Errorf("%s: entitled certificates %v; want %v", tc.name, got, []string{first})
		}
	}
	checkInvariants(t, f.l.log)

	// The budget: with two a year allowed and room for one, the second is
	// held.
	rs := rules.DefaultRuleSet()
	rs.Version, rs.YearlyCap = "test.cap2", 2
	f = newFx(t, rs)
	f.must(&subsidyv1.BudgetAllocated{AllocationId: "al", Year: 2025, UnitCode: "cq-beibei", AmountFen: 100000})
	k = f.person(func(m *subsidyv1.TraineeRegistered) { m.UnitCode = "cq-beibei" })
	certified(f, k, bdJ, "2025-06-10")
	certified(f, k, ccJ, "2025-06-20")
	want(t, f.derived(insured(k)), entitled, entitled, "EntitlementHeld:REASON_CODE_BUDGET_EXCEEDED")
	checkInvariants(t, f.l.log)
}

// TestZeroFeePaidOnce: a fee of 0 fen entitles 0 fen; once its payment
// (of 0) settled, the entitlement is paid and no second payment is ordered.
func TestZeroFeePaidOnce(t *testing.T) {
	f := newFx(t, rules.DefaultRuleSet())
	f.must(&subsidyv1.FeeSchedulePublished{FeeScheduleId: "fee-cc-s", EvaluationInstitutionId: "ev-cqpe", Qualification: ccS.Proto(), FeeFen: 0, EffectiveFrom: dt("2025-01-01")})
	e, _ := f.entitled("ti-digital", ccS, false, "2025-06-20")
	f.noticed(e)
	f.paid(e, "acct-1")
	f.reject(&subsidyv1.PaymentRequested{EntitlementId: e, OfficialId: "maker", RequestedOn: dt("2025-07-11")}, subsidyv1.ReasonCode_REASON_CODE_ALREADY_PAID)
	checkInvariants(t, f.l.log)
}

// TestPaymentLate: a payment that settles after RuleSet.PaymentWorkingDays
// working days of its request stands, and is flagged; one on the last day
// is not. Requested Wednesday 2025-07-09, ten working days end Wednesday
// 2025-07-23.
func TestPaymentLate(t *testing.T) {
	f := newFx(t, rules.DefaultRuleSet())
	for _, tc := range []struct {
		settled string
		want    []string
	}{
		{"2025-07-23", nil},
		{"2025-07-24", []string{"ViolationFlagged:REASON_CODE_PAYMENT_LATE"}},
	} {
		e, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20")
		f.noticed(e)
		o := f.derived(&subsidyv1.PaymentRequested{EntitlementId: e, OfficialId: "maker", RequestedOn: dt("2025-07-09")})[0].Payload.(*subsidyv1.PaymentOrdered)
		evs := f.derived(&subsidyv1.PaymentSettled{PaymentOrderId: o.PaymentOrderId, EntitlementId: e, AmountFen: o.NetFen, PaidToAccount: "acct-" + e[:8], SettledOn: dt(tc.settled)})
		want(t, evs, tc.want...)
		if len(evs) == 1 {
			if d := evs[0].Payload.(*subsidyv1.ViolationFlagged).GetDetail(); !strings.Contains(d, "10 working days allowed, until 2025-07-23") {
				t.Errorf("detail %q", d)
			}
		}
	}
	checkInvariants(t, f.l.log)
}

// TestNoPaymentToASuspendedInstitution: a reimbursement to a suspended or
// blacklisted training institution is refused until it is reinstated; a
// trainee's own subsidy is not.
func TestNoPaymentToASuspendedInstitution(t *testing.T) {
	f := newFx(t, rules.DefaultRuleSet())
	reimbursed, _ := f.entitled("ti-digital", bdJ, true, "2025-06-20")
	f.noticed(reimbursed)
	direct, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20")
	f.noticed(direct)
	f.must(&subsidyv1.InstitutionSuspended{InstitutionId: "ti-digital", Reason: "违规", OfficialId: "s", SuspendedOn: dt("2025-07-08")})
	f.reject(&subsidyv1.PaymentRequested{EntitlementId: reimbursed, OfficialId: "m", RequestedOn: dt("2025-07-09")}, subsidyv1.ReasonCode_REASON_CODE_INSTITUTION_SUSPENDED)
	want(t, f.derived(&subsidyv1.PaymentRequested{EntitlementId: direct, OfficialId: "m", RequestedOn: dt("2025-07-09")}), "PaymentOrdered")
	f.must(&subsidyv1.InstitutionReinstated{InstitutionId: "ti-digital", OfficialId: "s", ReinstatedOn: dt("2025-07-10")})
	want(t, f.derived(&subsidyv1.PaymentRequested{EntitlementId: reimbursed, OfficialId: "m", RequestedOn: dt("2025-07-11")}), "PaymentOrdered")

	// Blacklisted: for good (a blacklisted institution is not reinstated).
	e2, _ := f.entitled("ti-digital", bdJ, true, "2025-06-20")
	f.noticed(e2)
	f.must(&subsidyv1.InstitutionSuspended{InstitutionId: "ti-digital", Reason: "骗补", OfficialId: "s", SuspendedOn: dt("2025-07-12"), Blacklisted: true})
	_, rej := f.decide(&subsidyv1.PaymentRequested{EntitlementId: e2, OfficialId: "m", RequestedOn: dt("2025-07-13")})
	if rej == nil || rej.Reason != subsidyv1.ReasonCode_REASON_CODE_INSTITUTION_SUSPENDED || !strings.Contains(rej.Detail, "blacklisted") {
		t.Errorf("payment to a blacklisted institution: %v", rej)
	}
	checkInvariants(t, f.l.log)
}

// TestSettlementWithAPlainAccountNumber: a settlement to a trainee that
// names the account by its number is refused (the payment system sends a
// token); one that names a token is recorded. An institution's account is
// named as it is registered: a number there is no reason to refuse (it is
// flagged if it is not the registered one).
func TestSettlementWithAPlainAccountNumber(t *testing.T) {
	f := newFx(t, rules.DefaultRuleSet())
	e, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20")
	f.noticed(e)
	o := f.derived(&subsidyv1.PaymentRequested{EntitlementId: e, OfficialId: "maker", RequestedOn: dt("2025-07-09")})[0].Payload.(*subsidyv1.PaymentOrdered)
	settled := func(account string) *subsidyv1.PaymentSettled {
		return &subsidyv1.PaymentSettled{PaymentOrderId: o.PaymentOrderId, EntitlementId: e, AmountFen: o.NetFen, PaidToAccount: account, SettledOn: dt("2025-07-10")}
	}
	for _, acct := range []string{"6222020012345678901", "6222-0200-1234-5678-901", "acct-6228-0000-0010-0001"} {
		f.reject(settled(acct), subsidyv1.ReasonCode_REASON_CODE_PLAIN_ACCOUNT_NUMBER)
	}
	f.must(settled("trainee-account-token-0182ce950f5ecca6"))

	e2, _ := f.entitled("ti-digital", ccJ, true, "2025-06-20")
	f.noticed(e2)
	o2 := f.derived(&subsidyv1.PaymentRequested{EntitlementId: e2, OfficialId: "maker", RequestedOn: dt("2025-07-09")})[0].Payload.(*subsidyv1.PaymentOrdered)
	want(t, f.derived(&subsidyv1.PaymentSettled{PaymentOrderId: o2.PaymentOrderId, EntitlementId: e2, AmountFen: o2.NetFen, PaidToAccount: "6222020012345678901", SettledOn: dt("2025-07-10")}),
		"ViolationFlagged:REASON_CODE_PAYMENT_ACCOUNT_MISMATCH")
}
