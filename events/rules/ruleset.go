package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cqhrss/subsidyledger/events/refdata"
)

// Target measures (which count toward the annual target; read models show
// both, the rule set says which one the dashboard compares).
const (
	MeasureTrained   = "trained"   // training completed
	MeasureCertified = "certified" // certificate issued
)

// PassMark is the score a pass needs in both the theory and the practical
// part (DOMAIN.md §2; a fact of the programme, not a parameter).
const PassMark = 60

// RuleSet holds the parameters of the rules that the public sources leave
// open (DOMAIN.md §6). Every derived event records Version; two rule sets
// with one Version must have equal parameters (compare Fingerprint), or
// replays would not reproduce decisions. No field is a float: all decision
// arithmetic is integer.
type RuleSet struct {
	// Version names this parameter set, e.g. "2025.1".
	Version string
	// YearlyCap: at most this many subsidised certificates per person per
	// calendar year of assessment (rule 8).
	YearlyCap int
	// SubsidisedAttempts: a pass earns the subsidy only at an attempt up to
	// this number (rule 5, re-sit eligibility); 1 is the first attempt
	// only, as DOMAIN.md §4 has it.
	SubsidisedAttempts int
	// NoticeWorkingDays: length of the public notice in working days (rule
	// 12).
	NoticeWorkingDays int
	// PaymentWorkingDays: a payment should settle within this many working
	// days of its request (DOMAIN.md §6: how many working days a payment
	// may take); a later settlement is flagged (PAYMENT_LATE, rule 13).
	PaymentWorkingDays int
	// Holidays are weekdays that are not working days (public holidays).
	Holidays []refdata.Date
	// CalendarThrough is the last year whose holidays and make-up working
	// days are listed (the State Council publishes each year's in November
	// or December of the year before). Dates after it count weekends only:
	// a notice window reaching past it may be too short (see
	// CalendarCovers).
	CalendarThrough int
	// WorkingWeekends are Saturdays or Sundays that are working days
	// (调休 make-up days).
	WorkingWeekends []refdata.Date
	// PassRateThresholdBP: an institution is below the quality threshold
	// when its first-attempt pass rate for a qualification, over the last
	// PassRateWindow first attempts, is below this many basis points
	// (6000 = 60%). "Exactly met" is not below (rule 15).
	PassRateThresholdBP int
	// PassRateWindow: the number of most recent first attempts the pass rate
	// is computed over; the rate is judged only once that many exist.
	PassRateWindow int
	// LowerAfterHigher: deny a lower level of an occupation once a higher
	// level of it was subsidised (rule 7).
	LowerAfterHigher bool
	// TargetMeasure: MeasureTrained or MeasureCertified. Not used by any
	// decision; recorded so dashboards and decisions name one rule set.
	TargetMeasure string
	// Certificate spike (rule 16): an evaluation institution is flagged
	// once per calendar month in which it issues more than
	// max(CertificateSpikeMinimum, CertificateSpikeFactor × its mean monthly
	// count over the CertificateSpikeMonths months before).
	CertificateSpikeFactor  int
	CertificateSpikeMonths  int
	CertificateSpikeMinimum int
	// SharedAccountThreshold (rule 16): flag an account once this many
	// distinct trainees were paid into it directly.
	SharedAccountThreshold int
	// Behaviour is the decision code's level, not a parameter: what this
	// release's rules do that an earlier release's did not is done only at
	// the Behaviour of the release that brought it, so that a log replays
	// each decision as the release that made it decided (RuleSetAdopted
	// records it; an adoption without it is Behaviour 1). Rule set files
	// do not name it: a rule set read or built by this release has
	// CurrentBehaviour.
	Behaviour int
}

// Behaviours: BehaviourReEnrolment (2, rules 2026.6) reads a re-enrolment's
// completion for rule 3 (decider.trainingOf); BehaviourLateObjection (3)
// takes an objection raised during the notice that is recorded after its
// close, as long as no money has moved (decider.objectionRaised), and
// takes a write-off reason of invisible characters only for none
// (decider.blank), and refuses a repayment under a payment order's id
// (decider.repaymentReceived); BehaviourDatedHolds (4) dates each hold,
// release and clawback (EntitlementHeld.held_on,
// EntitlementReleased.released_on, ClawbackRaised.raised_on) and refuses
// what the dates contradict: a lift dated before its hold, a supervisor
// hold dated before its certificate or the last payment request, a fraud
// finding before the certificate, a notice close dated while an objection
// was pending, a payment requested on a day a hold held the entitlement
// or its last order was still out, a repayment before its clawback, and
// offsets no clawback raised after the request (dated.go); it refuses a
// supervisor hold while a payment order is out (PAYMENT_IN_FLIGHT) or
// once one settled (ALREADY_PAID), and decides a corrected certificate
// again on late evidence once the one it corrected is revoked
// (decider.secondChance); BehaviourRecoveredWriteOff (5) takes a
// repayment of money written off, beyond what is outstanding, up to what
// was written off: the write-off is reversed by that much
// (ClawbackRecovered.written_off_fen; decider.repaymentReceived); 1 is
// every release before.
const (
	BehaviourReEnrolment       = 2
	BehaviourLateObjection     = 3
	BehaviourDatedHolds        = 4
	BehaviourRecoveredWriteOff = 5
	CurrentBehaviour           = BehaviourRecoveredWriteOff
)

// Identity is Fingerprint with the Behaviour beside it (from Behaviour 2
// on): the rule set a RuleSetAdopted records and a World decides under.
// Two rule sets of one Version must have one Fingerprint; a release that
// decides further records the same parameters again at its Behaviour.
func (rs RuleSet) Identity() string { return identity(rs.Fingerprint(), rs.Behaviour) }

// behaviour is the level of rs, 1 unless set.
func (rs RuleSet) behaviour() int { return max(rs.Behaviour, 1) }

// DefaultRuleSet returns the documented defaults, version "2026.6":
//
//	YearlyCap               1
//	SubsidisedAttempts      1 (the first attempt only)
//	NoticeWorkingDays       5
//	PaymentWorkingDays      10 (no public source: a placeholder to set)
//	Holidays                the State Council holiday calendars of 2025 and 2026
//	WorkingWeekends         their make-up working days
//	CalendarThrough         2026
//	PassRateThresholdBP     6000 (60%)
//	PassRateWindow          20 first attempts
//	LowerAfterHigher        true
//	TargetMeasure           "trained"
//	CertificateSpikeFactor  5, over CertificateSpikeMonths 6, minimum 200
//	SharedAccountThreshold  3 trainees
//
// The holiday calendar must be extended every year from the State Council's
// notice (a new Version each time; ledgerd --rule-set takes a file, so a
// deployment need not wait for a release); dates after CalendarThrough
// count weekends only. Version "2025.1" had the 2025 calendar alone, so
// its notice windows counted the 2026 holidays as working days; what was
// decided under it stays as recorded. Four decisions changed with
// "2026.1" as well: rule 4 reads the latest snapshot of each kind of
// evidence (see eligibility), evidence recorded after a certificate denied
// for want of it decides that certificate again (secondChance), a
// write-off request replaces one awaiting approval, and no payment goes to
// a suspended or blacklisted institution. "2026.2" adds the parameters
// SubsidisedAttempts (1: what "2026.1" did) and PaymentWorkingDays (new:
// a late settlement is flagged), and under it one evidence fact decides
// every certificate denied for want of evidence, not the earliest alone.
// Under "2026.3" a training completion reported after a certificate that
// rule 3 denied for want of it (dated on or before the assessment) decides
// that certificate again, as late evidence does (secondChance), and an
// advance paid after a certificate of its qualification is refused.
// "2026.4" closes what such a completion shows unfounded: the
// ASSESSMENT_WITHOUT_COMPLETION flag of each assessment it precedes
// (FlagCleared), clears a QUALITY_BELOW_THRESHOLD flag once the pass rate
// is back at the threshold, and records a second chance that fails on another rule
// than the denial gave (SubsidyDenialRevised); decisions are otherwise
// those of "2026.3". Under "2026.5" maker and checker are one official when
// their ids differ only in case, a write-off is approved only with the
// request's reason (before, the checker could record another), and a
// trainee's account written in full-width digits or grouped by dots or
// slashes is a plain account number (PLAIN_ACCOUNT_NUMBER; identifiers
// also refuse invisible characters); decisions are otherwise those of
// "2026.4". Under "2026.6" rule 3 reads the completion of another
// enrolment of the person for the qualification (a re-enrolment) that
// could have been the assessment's training, when the assessment's own
// was not completed by then (decider.trainingOf): its completion reported
// late decides the certificate again and clears the assessment's flag, as
// the assessment's own would; decisions are otherwise those of "2026.5".
func DefaultRuleSet() RuleSet {
	return RuleSet{
		Version:                 "2026.6",
		Behaviour:               CurrentBehaviour,
		YearlyCap:               1,
		SubsidisedAttempts:      1,
		NoticeWorkingDays:       5,
		PaymentWorkingDays:      10,
		Holidays:                append(holidays2025(), holidays2026()...),
		WorkingWeekends:         append(makeUpDays2025(), makeUpDays2026()...),
		CalendarThrough:         2026,
		PassRateThresholdBP:     6000,
		PassRateWindow:          20,
		LowerAfterHigher:        true,
		TargetMeasure:           MeasureTrained,
		CertificateSpikeFactor:  5,
		CertificateSpikeMonths:  6,
		CertificateSpikeMinimum: 200,
		SharedAccountThreshold:  3,
	}
}

func span(from refdata.Date, days int) []refdata.Date {
	out := make([]refdata.Date, days)
	for i := range out {
		out[i] = from.AddDays(i)
	}
	return out
}

// holidays2025: 国办发明电〔2024〕12号 (New Year 1 Jan; Spring Festival
// 28 Jan-4 Feb; Qingming 4-6 Apr; Labour Day 1-5 May; Dragon Boat 31 May-2
// Jun; National Day and Mid-Autumn 1-8 Oct). Weekend days inside the spans
// are listed too; they are not working days either way.
func holidays2025() []refdata.Date {
	var out []refdata.Date
	out = append(out, refdata.D(2025, time.January, 1))
	out = append(out, span(refdata.D(2025, time.January, 28), 8)...)
	out = append(out, span(refdata.D(2025, time.April, 4), 3)...)
	out = append(out, span(refdata.D(2025, time.May, 1), 5)...)
	out = append(out, span(refdata.D(2025, time.May, 31), 3)...)
	out = append(out, span(refdata.D(2025, time.October, 1), 8)...)
	return out
}

func makeUpDays2025() []refdata.Date {
	return []refdata.Date{
		refdata.D(2025, time.January, 26), refdata.D(2025, time.February, 8),
		refdata.D(2025, time.April, 27), refdata.D(2025, time.September, 28),
		refdata.D(2025, time.October, 11),
	}
}

// holidays2026: 国务院办公厅关于2026年部分节假日安排的通知 of 4 November
// 2025 (New Year 1-3 Jan; Spring Festival 15-23 Feb; Qingming 4-6 Apr;
// Labour Day 1-5 May; Dragon Boat 19-21 Jun; Mid-Autumn 25-27 Sep; National
// Day 1-7 Oct). Weekend days inside the spans are listed too.
func holidays2026() []refdata.Date {
	var out []refdata.Date
	out = append(out, span(refdata.D(2026, time.January, 1), 3)...)
	out = append(out, span(refdata.D(2026, time.February, 15), 9)...)
	out = append(out, span(refdata.D(2026, time.April, 4), 3)...)
	out = append(out, span(refdata.D(2026, time.May, 1), 5)...)
	out = append(out, span(refdata.D(2026, time.June, 19), 3)...)
	out = append(out, span(refdata.D(2026, time.September, 25), 3)...)
	out = append(out, span(refdata.D(2026, time.October, 1), 7)...)
	return out
}

// makeUpDays2026: the same notice's weekend working days.
func makeUpDays2026() []refdata.Date {
	return []refdata.Date{
		refdata.D(2026, time.January, 4), refdata.D(2026, time.February, 14),
		refdata.D(2026, time.February, 28), refdata.D(2026, time.May, 9),
		refdata.D(2026, time.September, 20), refdata.D(2026, time.October, 10),
	}
}

// CalendarCovers reports whether the holiday calendar lists d's year
// (d.Year() <= CalendarThrough).
func (rs RuleSet) CalendarCovers(d refdata.Date) bool { return d.Year() <= rs.CalendarThrough }

// Validate reports the first parameter out of range.
func (rs RuleSet) Validate() error {
	bad := func(f string, v any) error {
		return fmt.Errorf("rules: rule set %q: %s = %v out of range", rs.Version, f, v)
	}
	switch {
	case rs.Version == "" || strings.ContainsAny(rs.Version, " \t\n"):
		return fmt.Errorf("rules: rule set needs a Version without white space")
	case rs.YearlyCap < 1:
		return bad("YearlyCap", rs.YearlyCap)
	case rs.SubsidisedAttempts < 1 || rs.SubsidisedAttempts > 100:
		return bad("SubsidisedAttempts", rs.SubsidisedAttempts)
	case rs.NoticeWorkingDays < 1 || rs.NoticeWorkingDays > 60:
		return bad("NoticeWorkingDays", rs.NoticeWorkingDays)
	case rs.PaymentWorkingDays < 1 || rs.PaymentWorkingDays > 250:
		return bad("PaymentWorkingDays", rs.PaymentWorkingDays)
	case rs.PassRateThresholdBP < 0 || rs.PassRateThresholdBP > 10000:
		return bad("PassRateThresholdBP", rs.PassRateThresholdBP)
	case rs.PassRateWindow < 1 || rs.PassRateWindow > 100000:
		return bad("PassRateWindow", rs.PassRateWindow)
	case rs.TargetMeasure != MeasureTrained && rs.TargetMeasure != MeasureCertified:
		return bad("TargetMeasure", rs.TargetMeasure)
	case rs.CertificateSpikeFactor < 1:
		return bad("CertificateSpikeFactor", rs.CertificateSpikeFactor)
	case rs.CertificateSpikeMonths < 1 || rs.CertificateSpikeMonths > 120:
		return bad("CertificateSpikeMonths", rs.CertificateSpikeMonths)
	case rs.CertificateSpikeMinimum < 0:
		return bad("CertificateSpikeMinimum", rs.CertificateSpikeMinimum)
	case rs.SharedAccountThreshold < 2:
		return bad("SharedAccountThreshold", rs.SharedAccountThreshold)
	case rs.CalendarThrough < 2000 || rs.CalendarThrough > 2100:
		return bad("CalendarThrough", rs.CalendarThrough)
	}
	for _, d := range append(slices.Clone(rs.Holidays), rs.WorkingWeekends...) {
		if !d.Valid() {
			return bad("calendar date", d)
		}
		if !rs.CalendarCovers(d) {
			return fmt.Errorf("rules: rule set %q: calendar date %s is after CalendarThrough %d", rs.Version, d, rs.CalendarThrough)
		}
	}
	for _, d := range rs.WorkingWeekends {
		if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
			return fmt.Errorf("rules: rule set %q: working weekend %s is a %s", rs.Version, d, wd)
		}
	}
	return nil
}

// Fingerprint is a digest of every parameter (sorted calendars), so that a
// process can refuse to decide under a Version whose parameters differ from
// the ones recorded earlier.
func (rs RuleSet) Fingerprint() string {
	h := sha256.New()
	line := func(k string, v any) { fmt.Fprintf(h, "%s=%v\n", k, v) }
	line("version", rs.Version)
	line("yearly_cap", rs.YearlyCap)
	line("subsidised_attempts", rs.SubsidisedAttempts)
	line("notice_working_days", rs.NoticeWorkingDays)
	line("payment_working_days", rs.PaymentWorkingDays)
	line("calendar_through", rs.CalendarThrough)
	for _, l := range []struct {
		k  string
		ds []refdata.Date
	}{{"holiday", rs.Holidays}, {"working_weekend", rs.WorkingWeekends}} {
		ds := slices.Clone(l.ds)
		slices.Sort(ds)
		ds = slices.Compact(ds)
		for _, d := range ds {
			line(l.k, d)
		}
	}
	line("pass_rate_threshold_bp", rs.PassRateThresholdBP)
	line("pass_rate_window", rs.PassRateWindow)
	line("lower_after_higher", strconv.FormatBool(rs.LowerAfterHigher))
	line("target_measure", rs.TargetMeasure)
	line("certificate_spike_factor", rs.CertificateSpikeFactor)
	line("certificate_spike_months", rs.CertificateSpikeMonths)
	line("certificate_spike_minimum", rs.CertificateSpikeMinimum)
	line("shared_account_threshold", rs.SharedAccountThreshold)
	return hex.EncodeToString(h.Sum(nil))
}

// calendar answers working-day questions for a rule set.
type calendar struct {
	holidays, working map[refdata.Date]bool
}

func newCalendar(rs RuleSet) calendar {
	c := calendar{holidays: map[refdata.Date]bool{}, working: map[refdata.Date]bool{}}
	for _, d := range rs.Holidays {
		c.holidays[d] = true
	}
	for _, d := range rs.WorkingWeekends {
		c.working[d] = true
	}
	return c
}

// IsWorkingDay reports whether d is a working day under the rule set: a
// Monday to Friday that is not a holiday, or a listed working weekend day.
func (rs RuleSet) IsWorkingDay(d refdata.Date) bool { return newCalendar(rs).isWorking(d) }

func (c calendar) isWorking(d refdata.Date) bool {
	if c.working[d] {
		return true
	}
	if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	return !c.holidays[d]
}

// NoticeWindow returns the public-notice window of an entitlement approved on
// approved: it starts on the first working day on or after the approval and
// ends on the NoticeWorkingDays-th working day counting the start as day 1
// (inclusive). With 5 days, an approval on a Monday without holidays gives
// Monday to Friday.
func (rs RuleSet) NoticeWindow(approved refdata.Date) (start, end refdata.Date) {
	return newCalendar(rs).window(approved, rs.NoticeWorkingDays)
}

func (c calendar) window(from refdata.Date, n int) (start, end refdata.Date) {
	d := from
	for !c.isWorking(d) {
		d = d.AddDays(1)
	}
	start = d
	for counted := 1; counted < n; {
		d = d.AddDays(1)
		if c.isWorking(d) {
			counted++
		}
	}
	return start, d
}
