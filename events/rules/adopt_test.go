package rules_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/events/snap"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// adopt folds a RuleSetAdopted of rs into the fixture's World as the next
// event of the rule-sets stream.
func (f *fx) adopt(rs rules.RuleSet) error {
	rev, ok := f.l.w.StreamRevision(rules.RuleSetStream)
	next := uint64(0)
	if ok {
		next = rev + 1
	}
	id, m, err := rules.Adoption(rs, next)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.l.w.Apply(rules.RuleSetStream, next, rules.Event{ID: id, Payload: m, Derived: true})
}

// TestRuleSetAdopted: a RuleSetAdopted folded makes the World decide under
// the rule set it records, from then on: the decisions name its version
// and follow its parameters (here a notice of 7 working days instead of
// 5). One whose rule set does not match its fingerprint, or does not read,
// is refused and changes nothing. A snapshot keeps the adoption.
func TestRuleSetAdopted(t *testing.T) {
	f := newFx(t, rules.DefaultRuleSet())
	if f.l.w.Adopted() != "" {
		t.Fatal("a new World says a rule set was adopted")
	}
	e1, _ := f.entitled("ti-digital", bdJ, false, "2025-06-20")
	f.must(&subsidyv1.EntitlementConfirmed{EntitlementId: e1, OfficialId: "maker", ConfirmedOn: dt("2025-06-30")})
	n1 := f.derived(&subsidyv1.EntitlementApproved{EntitlementId: e1, OfficialId: "checker", ApprovedOn: dt("2025-07-01")})[0].Payload.(*subsidyv1.NoticeOpened)

	rs := rules.DefaultRuleSet()
	rs.Version, rs.NoticeWorkingDays = "test.7d", 7
	bad := rs
	bad.Version = "test.forged"
	id, m, err := rules.Adoption(bad, 0)
	if err != nil {
		t.Fatal(err)
	}
	m.RuleSetJson = strings.Replace(m.RuleSetJson, `"notice_working_days": 7`, `"notice_working_days": 9`, 1) // the fingerprint no longer matches
	if err := f.l.w.Apply(rules.RuleSetStream, 0, rules.Event{ID: id, Payload: m, Derived: true}); err == nil || f.l.w.Adopted() != "" {
		t.Fatalf("a forged adoption: Apply = %v, adopted %q", err, f.l.w.Adopted())
	}
	if _, ok := f.l.w.StreamRevision(rules.RuleSetStream); ok {
		t.Fatal("a refused adoption was folded into its stream")
	}

	if err := f.adopt(rs); err != nil {
		t.Fatal(err)
	}
	if f.l.w.Adopted() != rs.Identity() || f.l.w.RuleSet().Version != "test.7d" {
		t.Fatalf("adopted %q, deciding under %s", f.l.w.Adopted(), f.l.w.RuleSet().Version)
	}
	e2, _ := f.entitled("ti-digital", ccJ, false, "2025-06-20")
	f.must(&subsidyv1.EntitlementConfirmed{EntitlementId: e2, OfficialId: "maker", ConfirmedOn: dt("2025-06-30")})
	n2 := f.derived(&subsidyv1.EntitlementApproved{EntitlementId: e2, OfficialId: "checker", ApprovedOn: dt("2025-07-01")})[0].Payload.(*subsidyv1.NoticeOpened)
	if n1.GetWorkingDays() != 5 || n1.GetDecision().GetRuleSetVersion() != "2026.6" || n2.GetWorkingDays() != 7 || n2.GetDecision().GetRuleSetVersion() != "test.7d" ||
		n2.GetEndsOn().GetDay() != 9 {
		t.Errorf("notices before and after the adoption: %v / %v; want 5 working days under 2026.6, then 7 (to 2025-07-09) under test.7d", n1, n2)
	}

	var b bytes.Buffer
	sw := snap.NewWriter(&b)
	f.l.w.Snapshot(sw)
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := rules.RestoreWorld(rules.DefaultRuleSet(), snap.NewReader(bytes.NewReader(b.Bytes()))); err == nil {
		t.Error("a snapshot under the adopted rule set restored under another")
	}
	back, err := rules.RestoreWorld(rs, snap.NewReader(bytes.NewReader(b.Bytes())))
	if err != nil || back.Adopted() != rs.Identity() || back.RuleSet().Version != "test.7d" {
		t.Fatalf("restored: %v, adopted %q", err, back.Adopted())
	}
	if fp, ok := back.AdoptedAs("test.7d"); !ok || fp != rs.Fingerprint() {
		t.Errorf("restored: AdoptedAs(test.7d) = %q, %v", fp, ok)
	}
	if _, ok := back.AdoptedAs("2026.6"); ok {
		t.Error("restored: 2026.6 adopted, though the World was only made with it")
	}
}

// TestAdoptedSmallerPassRateWindow: a rule set adopted with a smaller
// pass-rate window judges rule 15 over the last first attempts of the new
// size at once (found by review: the windows kept their old length).
func TestAdoptedSmallerPassRateWindow(t *testing.T) {
	rs := rules.DefaultRuleSet()
	rs.Version, rs.PassRateWindow = "test.w10", 10
	f := newFx(t, rs)
	for i := range 10 { // T×6 F×4: 6/10, not below 60%
		want(t, f.firstAttempt(i < 6))
	}
	// A trainee whose training institution advanced the fee (so ti-cloud
	// is the payee) passes: T×5 F×4 T, 6/10 still.
	k := f.employee()
	f.trained(k, "ti-cloud", bdJ)
	f.must(&subsidyv1.AdvancePaymentRecorded{AdvanceId: "adv-" + k[56:], TrainingInstitutionId: "ti-cloud", PersonKey: k, Qualification: bdJ.Proto(), AmountFen: 1, PaidOn: dt("2025-04-01")})
	a := f.assessment(k, bdJ, 1, 60, 60, "2025-06-20")
	want(t, f.derived(a))
	small := rs
	small.Version, small.PassRateWindow = "test.w5", 5
	if err := f.adopt(small); err != nil {
		t.Fatal(err)
	}
	// The last five are F F F F T: 1/5, below. The reimbursement decided
	// now is held for review; over the old window of 10 it would not be.
	evs := f.derived(f.certificate(a, "2025-06-30"))
	want(t, evs, entitled, "EntitlementHeld:REASON_CODE_QUALITY_BELOW_THRESHOLD")
}

// TestAdoptionOfALaterFormat: an adoption written in a format this release
// does not know is refused, not read as if it were its own.
func TestAdoptionOfALaterFormat(t *testing.T) {
	f := newFx(t, rules.DefaultRuleSet())
	id, m, err := rules.Adoption(rules.DefaultRuleSet(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.GetFormat() != rules.AdoptionFormat {
		t.Fatalf("format %d", m.GetFormat())
	}
	m.Format = rules.AdoptionFormat + 1
	if err := f.l.w.Apply(rules.RuleSetStream, 0, rules.Event{ID: id, Payload: m, Derived: true}); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("format %d;", rules.AdoptionFormat+1)) {
		t.Errorf("Apply of a format-%d adoption = %v", rules.AdoptionFormat+1, err)
	}
	// Unset is format 1 (adoptions written before the field existed).
	m.Format = 0
	if err := f.l.w.Apply(rules.RuleSetStream, 0, rules.Event{ID: id, Payload: m, Derived: true}); err != nil || f.l.w.Adopted() != rules.DefaultRuleSet().Identity() {
		t.Errorf("Apply of an adoption without a format = %v, adopted %q", err, f.l.w.Adopted())
	}
}

// TestAdoptedLargerPassRateWindow: a quality flag raised over a window of 5
// is neither cleared while a rule set's larger window (10) is not full, nor
// doubled by a second flag (found by review); it is cleared once the full
// window is back at the threshold.
func TestAdoptedLargerPassRateWindow(t *testing.T) {
	rs := rules.DefaultRuleSet()
	rs.Version, rs.PassRateWindow = "test.w5", 5
	f := newFx(t, rs)
	for range 4 {
		want(t, f.firstAttempt(false))
	}
	want(t, f.firstAttempt(false), "ViolationFlagged:REASON_CODE_QUALITY_BELOW_THRESHOLD")
	large := rs
	large.Version, large.PassRateWindow = "test.w10", 10
	if err := f.adopt(large); err != nil {
		t.Fatal(err)
	}
	want(t, f.firstAttempt(false)) // 0/6: not full, nothing cleared, no second flag
	for range 3 {
		want(t, f.firstAttempt(true)) // 3/9: not full
	}
	want(t, f.firstAttempt(true))                                                    // 4/10: full, below
	want(t, f.firstAttempt(true))                                                    // 5/10 (the oldest failure out): below
	want(t, f.firstAttempt(true), "FlagCleared:REASON_CODE_QUALITY_BELOW_THRESHOLD") // 6/10: back at the threshold
}

// TestBehaviourOfAnEarlierRelease: a log whose rule set was adopted by a
// release before rules 2026.6 (RuleSetAdopted without a behaviour: 1)
// replays a re-enrolment's late completion as that release decided it
// (nothing); once the same parameters are adopted at this release's
// behaviour, the same story earns the entitlement and clears the flag. A
// behaviour no release knows yet is refused; the behaviour survives a
// snapshot.
func TestBehaviourOfAnEarlierRelease(t *testing.T) {
	f := newFx(t, rules.DefaultRuleSet())
	story := func() []rules.Event {
		k := f.employee()
		f.must(&subsidyv1.Enrolled{EnrolmentId: "enr-1-" + k[56:], PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-03-01")})
		f.must(&subsidyv1.Enrolled{EnrolmentId: "enr-2-" + k[56:], PersonKey: k, TrainingInstitutionId: "ti-cloud", Qualification: bdJ.Proto(), EnrolledOn: dt("2025-04-01")})
		a := f.assessment(k, bdJ, 1, 80, 80, "2025-06-20")
		f.must(a)
		want(t, f.derived(f.certificate(a, "2025-06-30")), denied+"REASON_CODE_TRAINING_NOT_COMPLETED")
		return f.derived(&subsidyv1.TrainingCompleted{EnrolmentId: "enr-2-" + k[56:], PersonKey: k, TrainingInstitutionId: "ti-cloud", Qualification: bdJ.Proto(), CompletedOn: dt("2025-06-15")})
	}
	older := rules.DefaultRuleSet()
	older.Behaviour = 1
	rev := uint64(0)
	id, m, err := rules.Adoption(older, rev)
	if err != nil {
		t.Fatal(err)
	}
	if m.GetBehaviour() != 1 || m.GetFormat() != 1 {
		t.Fatalf("an adoption of behaviour 1 records behaviour %d, format %d; want 1 and 1", m.GetBehaviour(), m.GetFormat())
	}
	// One at a later behaviour is of format 2, which a release before it
	// refuses (rather than fold it as its own rule set and go on
	// deciding at its own behaviour: found by review).
	if _, m2, _ := rules.Adoption(rules.DefaultRuleSet(), rev); m2.GetFormat() != 2 || m2.GetBehaviour() != rules.CurrentBehaviour {
		t.Fatalf("an adoption at behaviour %d is of format %d", m2.GetBehaviour(), m2.GetFormat())
	}
	m.Behaviour = 0 // as written before the field existed
	if err := f.l.w.Apply(rules.RuleSetStream, rev, rules.Event{ID: id, Payload: m, Derived: true}); err != nil {
		t.Fatal(err)
	}
	if f.l.w.RuleSet().Behaviour != 1 || f.l.w.Adopted() != rules.DefaultRuleSet().Fingerprint() {
		t.Fatalf("after an adoption without behaviour: behaviour %d, adopted %q", f.l.w.RuleSet().Behaviour, f.l.w.Adopted())
	}
	want(t, story())

	// The snapshot keeps what the World decides at.
	back, err := restore(older, snapshotOf(t, f.l.w))
	if err != nil || back.RuleSet().Behaviour != 1 {
		t.Fatalf("restored: %v, behaviour %d", err, back.RuleSet().Behaviour)
	}
	if _, err := restore(rules.DefaultRuleSet(), snapshotOf(t, f.l.w)); err == nil {
		t.Error("a snapshot taken at behaviour 1 restored under behaviour 2")
	}

	later := rules.DefaultRuleSet()
	later.Behaviour = rules.CurrentBehaviour + 1
	lid, m, _ := rules.Adoption(later, rev+1)
	if err := f.l.w.Apply(rules.RuleSetStream, rev+1, rules.Event{ID: lid, Payload: m, Derived: true}); err == nil || !strings.Contains(err.Error(), "behaviour") {
		t.Errorf("an adoption at a behaviour this release does not know: %v", err)
	}

	if err := f.adopt(rules.DefaultRuleSet()); err != nil {
		t.Fatal(err)
	}
	if f.l.w.Adopted() != rules.DefaultRuleSet().Identity() || f.l.w.Adopted() == rules.DefaultRuleSet().Fingerprint() {
		t.Fatalf("adopted %q; want the identity %q", f.l.w.Adopted(), rules.DefaultRuleSet().Identity())
	}
	want(t, story(), entitled, "FlagCleared:REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION")
	checkInvariants(t, f.l.log)
}
