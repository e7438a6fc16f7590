package rules

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

func (d *decider) traineeRegistered(m *subsidyv1.TraineeRegistered) *Rejection {
	d.stream = TraineeStream(m.GetPersonKey())
	return d.unitKnown(m.GetUnitCode())
}

func (d *decider) eligibilityEvidence(m *subsidyv1.EligibilityEvidenceRecorded) *Rejection {
	d.stream = TraineeStream(m.GetPersonKey())
	t, r := d.traineeOf(m.GetPersonKey())
	if r != nil {
		return r
	}
	with := *t
	with.evidence = append(slices.Clone(t.evidence), evidenceOf(d.w, m, d.f.EventID))
	d.secondChance(t, &with, nil)
	return nil
}

// lateDenials are the reasons a later fact can overturn: rule 4's, when
// evidence comes after the certificate, and rule 3's, when the training's
// completion (dated on or before the assessment) is reported after it. A
// certificate records the first rule it failed, so both are decided again
// on either: one whose completion came late may lack evidence too.
var lateDenials = map[subsidyv1.ReasonCode]bool{
	subsidyv1.ReasonCode_REASON_CODE_NO_ELIGIBILITY_EVIDENCE:   true,
	subsidyv1.ReasonCode_REASON_CODE_NOT_GRADUATING_THIS_YEAR:  true,
	subsidyv1.ReasonCode_REASON_CODE_NOT_INSURED_ON_ASSESSMENT: true,
	subsidyv1.ReasonCode_REASON_CODE_TRAINING_NOT_COMPLETED:    true,
}

// secondChance is 免申即享 when what a certificate lacked comes after it:
// evidence (rule 4) or the training's completion (rule 3). Each
// certificate whose subsidy was denied for one of lateDenials and that
// earned no entitlement since is decided again, every rule as at its
// certification but with the trainee as with says (this evidence among
// its own) and the completion being decided (decider.completion), and the
// entitlement is derived from this fact if every rule now passes. If not,
// nothing is recorded for it (its first denial stands). The certificates
// are decided in the order they were issued, each on the World and the
// entitlements this fact derived before it (decider.decided), so that the
// yearly cap, the level order and the budget see the earlier ones, as they
// would have had the fact come first.
func (d *decider) secondChance(t, with *trainee, only func(*assessment) bool) {
	type candidate struct {
		c *certificate
		a *assessment
	}
	var cands []candidate
	for _, qa := range t.attempts {
		if t.entitlements.get(qa.q) != "" {
			continue
		}
		for _, a := range qa.v {
			if only != nil && !only(a) {
				continue
			}
			c := d.w.certificates[a.cert]
			if c != nil && c.revoked && d.datedHolds() {
				// A certificate issued again while it was in force (a
				// corrected one) is the assessment's now (before
				// BehaviourDatedHolds it was never decided again).
				if r := d.w.certificates[d.w.reissued[a.id]]; r != nil {
					c = r
				}
			}
			if c == nil || c.revoked || c.entitlement != "" || !lateDenials[c.denied] {
				continue
			}
			cands = append(cands, candidate{c, a})
		}
	}
	if len(cands) == 0 {
		return
	}
	slices.SortFunc(cands, func(x, y candidate) int {
		if x.c.issuedOn != y.c.issuedOn {
			return cmp.Compare(x.c.issuedOn, y.c.issuedOn)
		}
		return strings.Compare(x.c.id, y.c.id)
	})
	for _, x := range cands {
		d.subsidy(with, x.a, x.c.id, x.c.eventID, x.c.issuedOn)
	}
}

// trainingEligible is rule 2: an associate degree or higher, or enterprise
// employment.
func trainingEligible(t *trainee) bool {
	return t.education >= subsidyv1.Education_EDUCATION_ASSOCIATE || t.employee
}

func (d *decider) enrolled(m *subsidyv1.Enrolled) *Rejection {
	d.stream = TraineeStream(m.GetPersonKey())
	t, r := d.traineeOf(m.GetPersonKey())
	if r != nil {
		return r
	}
	on := date(m.GetEnrolledOn())
	in, r := d.institutionOf(m.GetTrainingInstitutionId(), subsidyv1.InstitutionKind_INSTITUTION_KIND_TRAINING)
	if r != nil {
		return r
	}
	appr, r := d.activeFor(in, m.GetQualification().GetOccupation(), on)
	if r != nil {
		return r
	}
	if m.GetUnitCode() != "" {
		if r := d.unitOn(m.GetUnitCode(), on); r != nil {
			return r
		}
	}
	if !trainingEligible(t) {
		return reject(subsidyv1.ReasonCode_REASON_CODE_NOT_TRAINING_ELIGIBLE, "education %s and not an enterprise employee", t.education)
	}
	// Rule 16: enrolled at another institution while an enrolment there is
	// not completed.
	for _, e := range t.enrolments {
		if e.inst != in.id && (e.completedOn.IsZero() || e.completedOn >= on) && e.enrolledOn <= on {
			key := m.GetEnrolmentId()
			d.emit(mustParse(FlagID(subsidyv1.ReasonCode_REASON_CODE_CONCURRENT_ENROLMENT, key)), &subsidyv1.ViolationFlagged{
				FlagId:        FlagID(subsidyv1.ReasonCode_REASON_CODE_CONCURRENT_ENROLMENT, key),
				Reason:        subsidyv1.ReasonCode_REASON_CODE_CONCURRENT_ENROLMENT,
				Subject:       m.GetPersonKey(),
				InstitutionId: in.id,
				Qualification: m.GetQualification(),
				Detail:        fmt.Sprintf("enrolment %s at %s on %s while enrolment %s at %s (since %s) is not completed", key, in.id, on, e.id, e.inst, e.enrolledOn),
				Decision: d.decision([]events.ID{t.eventID, e.eventID, appr.eventID},
					check(subsidyv1.ReasonCode_REASON_CODE_CONCURRENT_ENROLMENT, false, "open enrolment %s at %s", e.id, e.inst)),
			})
			break
		}
	}
	return nil
}

func (d *decider) trainingCompleted(m *subsidyv1.TrainingCompleted) *Rejection {
	d.stream = TraineeStream(m.GetPersonKey())
	if _, r := d.traineeOf(m.GetPersonKey()); r != nil {
		return r
	}
	e := d.w.enrolments[m.GetEnrolmentId()]
	if e == nil || e.person != m.GetPersonKey() || e.inst != m.GetTrainingInstitutionId() {
		return reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_ENROLMENT, "no enrolment %q of this person at %q", m.GetEnrolmentId(), m.GetTrainingInstitutionId())
	}
	if e.q != refdata.QualificationOf(m.GetQualification()) {
		return reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_QUALIFICATION, "enrolment %q is for %s, not %s", e.id, e.q, refdata.QualificationOf(m.GetQualification()))
	}
	if r := dateOrder("completion", date(m.GetCompletedOn()), "enrolment", e.enrolledOn); r != nil {
		return r
	}
	// A certificate decided before this completion was reported was denied
	// by rule 3 if the completion was dated on or before its assessment:
	// decide it again with this completion (rules 2026.3). Only the
	// certificates of assessments whose training rule 3 reads is this one
	// now (trainingOf, with this completion): this enrolment's, unless
	// another enrolment was the training by then, and since rules 2026.6
	// those of another enrolment of the person for the qualification (a
	// re-enrolment) whose own training was not completed by then. A
	// completion of another training is no reason to decide them again
	// (their cap, level order and budget would be read as of an unrelated
	// fact).
	d.completion = &completion{enrolment: e.id, on: date(m.GetCompletedOn()), eventID: d.f.EventID}
	t := d.w.trainees[m.GetPersonKey()]
	d.secondChance(t, t, func(a *assessment) bool {
		enr, _, _ := d.trainingOf(t, a)
		return enr == e
	})
	d.clearWithoutCompletion(t, e)
	return nil
}

// couldBeTrainingOf: enrolment e could have been assessment a's training
// had its completion been known when a was recorded (World.enrolmentFor
// takes a completed enrolment first): the person's, for a's
// qualification, enrolled by the assessment date, and at the institution
// a named if it named one.
func couldBeTrainingOf(e *enrolment, a *assessment) bool {
	return e.person == a.person && e.q == a.q && e.enrolledOn <= a.assessedOn && (!a.named || e.inst == a.trainInst)
}

// trainingOf is the training rule 3 reads for assessment a, with its
// completion date and event: a's enrolment, unless that was not completed
// by the assessment date while another enrolment that could have been a's
// training was: a re-enrolment whose completion was reported after the
// assessment (rules 2026.6; before, such a certificate stayed denied). The
// assessment stays credited to its enrolment's institution (the read
// models, rule 15). The completion being decided (decider.completion)
// counts as recorded.
func (d *decider) trainingOf(t *trainee, a *assessment) (*enrolment, refdata.Date, events.ID) {
	done := func(e *enrolment) (refdata.Date, events.ID) {
		if c := d.completion; c != nil && c.enrolment == e.id {
			return c.on, c.eventID
		}
		return e.completedOn, e.completionEventID
	}
	enr := d.w.enrolments[a.enrolment]
	if enr == nil {
		return nil, refdata.Date(0), events.ID{}
	}
	on, ev := done(enr)
	if !on.IsZero() && on <= a.assessedOn || d.w.rs.behaviour() < BehaviourReEnrolment {
		return enr, on, ev
	}
	for _, e := range t.enrolments {
		if e == enr || !couldBeTrainingOf(e, a) {
			continue
		}
		if eon, eev := done(e); !eon.IsZero() && eon <= a.assessedOn {
			return e, eon, eev
		}
	}
	return enr, on, ev
}

// clearWithoutCompletion closes the ASSESSMENT_WITHOUT_COMPLETION flag of
// each assessment that the completion being decided (decider.completion)
// precedes, of enrolment e or (rules 2026.6) that e could have been the
// training of (a re-enrolment): the training was completed by then, only
// reported after (rules 2026.4). A completion dated after an assessment
// leaves its flag open. The clearing names the flag's institution (that of
// the assessment's enrolment).
func (d *decider) clearWithoutCompletion(t *trainee, e *enrolment) {
	c := d.completion
	for _, a := range t.attempts.get(e.q) {
		if a.completed || c.on > a.assessedOn || (a.enrolment != e.id && (!couldBeTrainingOf(e, a) || d.w.rs.behaviour() < BehaviourReEnrolment)) {
			continue
		}
		id := FlagID(subsidyv1.ReasonCode_REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION, a.id)
		f, ok := d.w.flags[id]
		if !ok || f.Cleared {
			continue
		}
		d.emit(events.DeriveID("flag-cleared", id), &subsidyv1.FlagCleared{
			FlagId:        id,
			Reason:        f.Reason,
			Subject:       f.Subject,
			InstitutionId: a.trainInst,
			Qualification: a.q.Proto(),
			Detail:        fmt.Sprintf("training of enrolment %s completed on %s, on or before assessment %s on %s; reported after it", e.id, c.on, a.id, a.assessedOn),
			Decision: d.decision([]events.ID{e.eventID, a.eventID, mustParse(id)},
				check(subsidyv1.ReasonCode_REASON_CODE_TRAINING_NOT_COMPLETED, true, "enrolment %s completed on %s", e.id, c.on)),
		})
	}
}

func (d *decider) advancePayment(m *subsidyv1.AdvancePaymentRecorded) *Rejection {
	d.stream = TraineeStream(m.GetPersonKey())
	t, r := d.traineeOf(m.GetPersonKey())
	if r != nil {
		return r
	}
	if _, r := d.institutionOf(m.GetTrainingInstitutionId(), subsidyv1.InstitutionKind_INSTITUTION_KIND_TRAINING); r != nil {
		return r
	}
	q := refdata.QualificationOf(m.GetQualification())
	enrolled := false
	for _, e := range t.enrolments {
		enrolled = enrolled || (e.q == q && e.inst == m.GetTrainingInstitutionId())
	}
	if !enrolled {
		return reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_ENROLMENT, "no enrolment of this person at %q for %s", m.GetTrainingInstitutionId(), q)
	}
	if a := t.advances.get(q); a != nil {
		return reject(subsidyv1.ReasonCode_REASON_CODE_ALREADY_EXISTS, "advance %q by %q already recorded for %s", a.id, a.inst, q)
	}
	if id := t.entitlements.get(q); id != "" {
		return reject(subsidyv1.ReasonCode_REASON_CODE_WRONG_STATE, "subsidy for %s already decided (entitlement %s): an advance must precede certification", q, id)
	}
	// Nor after a certificate that was denied (rules 2026.3): a second
	// chance would make the institution the payee of an entitlement it
	// advanced nothing toward by the certification. An advance paid before
	// and reported after counts.
	paid := date(m.GetPaidOn())
	for _, a := range t.attempts.get(q) {
		if c := d.w.certificates[a.cert]; c != nil && !c.revoked && paid > c.issuedOn {
			return reject(subsidyv1.ReasonCode_REASON_CODE_WRONG_STATE, "advance paid %s after certificate %s of %s was issued %s: an advance must precede certification", paid, c.id, q, c.issuedOn)
		}
	}
	return nil
}

func (d *decider) assessmentRecorded(m *subsidyv1.AssessmentRecorded) *Rejection {
	d.stream = TraineeStream(m.GetPersonKey())
	t, r := d.traineeOf(m.GetPersonKey())
	if r != nil {
		return r
	}
	q := refdata.QualificationOf(m.GetQualification())
	on := date(m.GetAssessedOn())
	ev, r := d.institutionOf(m.GetEvaluationInstitutionId(), subsidyv1.InstitutionKind_INSTITUTION_KIND_EVALUATION)
	if r != nil {
		return r
	}
	if _, r := d.activeFor(ev, q.Occupation, on); r != nil {
		return r
	}
	if ti := m.GetTrainingInstitutionId(); ti != "" {
		if _, r := d.institutionOf(ti, subsidyv1.InstitutionKind_INSTITUTION_KIND_TRAINING); r != nil {
			return r
		}
	}
	if _, code := d.w.feeInForce(ev.id, q, on); code != subsidyv1.ReasonCode_REASON_CODE_UNSPECIFIED {
		return reject(code, "evaluation institution %q has no fee for %s in force on %s", ev.id, q, on)
	}
	a := d.w.assessmentFrom(m)
	if a.enrolment == "" {
		return reject(subsidyv1.ReasonCode_REASON_CODE_ASSESSMENT_BEFORE_ENROLMENT, "no enrolment for %s on or before %s", q, on)
	}
	prev := t.attempts.get(q)
	if want := uint32(len(prev)) + 1; a.attempt != want {
		return reject(subsidyv1.ReasonCode_REASON_CODE_ATTEMPT_OUT_OF_ORDER, "attempt %d where %d is next for %s", a.attempt, want, q)
	}
	if n := len(prev); n > 0 && on < prev[n-1].assessedOn {
		return reject(subsidyv1.ReasonCode_REASON_CODE_ATTEMPT_OUT_OF_ORDER, "attempt %d on %s is before attempt %d on %s", a.attempt, on, n, prev[n-1].assessedOn)
	}
	enr := d.w.enrolments[a.enrolment]
	if !a.completed {
		key := a.id
		d.emit(mustParse(FlagID(subsidyv1.ReasonCode_REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION, key)), &subsidyv1.ViolationFlagged{
			FlagId:        FlagID(subsidyv1.ReasonCode_REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION, key),
			Reason:        subsidyv1.ReasonCode_REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION,
			Subject:       m.GetPersonKey(),
			InstitutionId: enr.inst,
			Qualification: q.Proto(),
			Detail:        fmt.Sprintf("assessment %s on %s: training of enrolment %s not completed by then", a.id, on, enr.id),
			Decision: d.decision([]events.ID{enr.eventID, enr.completionEventID},
				check(subsidyv1.ReasonCode_REASON_CODE_TRAINING_NOT_COMPLETED, false, "enrolment %s completed on %s", enr.id, enr.completedOn)),
		})
	}
	// Rule 15: a first attempt moves the training institution's window.
	if a.attempt == 1 {
		d.qualityAfter(a)
	}
	return nil
}

// qualityAfter flags the training institution when this first attempt takes
// its pass rate for the qualification from not-below to below the threshold,
// and clears the open flag when it brings the rate back over a full window
// (rules 2026.4; a window a rule set made larger is judged once full, and
// no second flag is raised while one is open).
func (d *decider) qualityAfter(a *assessment) {
	rs := d.w.rs
	k := qualityKey{a.trainInst, a.q}
	n, passes := 0, 0
	var results []bool
	var ids []events.ID
	open := ""
	if qw := d.w.quality[k]; qw != nil {
		n, passes, results, ids, open = len(qw.results), qw.passes, qw.results, qw.ids, qw.flag
	}
	wasBelow := below(n, passes, rs.PassRateWindow, rs.PassRateThresholdBP)
	// The window after this result.
	n2, p2 := n+1, passes
	if a.passed {
		p2++
	}
	if n2 > rs.PassRateWindow {
		n2--
		if results[0] {
			p2--
		}
		ids = ids[1:]
	}
	nowBelow := below(n2, p2, rs.PassRateWindow, rs.PassRateThresholdBP)
	if open != "" && n2 >= rs.PassRateWindow && !nowBelow {
		// Back at the threshold: the flag no longer holds (rules 2026.4).
		detail := fmt.Sprintf("first-attempt pass rate %d/%d back at or above %d bp over the last %d", p2, n2, rs.PassRateThresholdBP, rs.PassRateWindow)
		d.emit(events.DeriveID("flag-cleared", open), &subsidyv1.FlagCleared{
			FlagId:        open,
			Reason:        subsidyv1.ReasonCode_REASON_CODE_QUALITY_BELOW_THRESHOLD,
			Subject:       a.trainInst,
			InstitutionId: a.trainInst,
			Qualification: a.q.Proto(),
			Detail:        detail,
			Decision: d.decision(append(slices.Clone(ids), mustParse(open)), check(subsidyv1.ReasonCode_REASON_CODE_QUALITY_BELOW_THRESHOLD, true,
				"%d passes of %d first attempts >= %d bp", p2, n2, rs.PassRateThresholdBP)),
		})
		return
	}
	if open != "" || wasBelow || !nowBelow {
		return // flagged already (a window a rule set made larger is not full yet), or not crossing
	}
	key := a.trainInst + "/" + a.q.String() + "/" + d.factID
	id := FlagID(subsidyv1.ReasonCode_REASON_CODE_QUALITY_BELOW_THRESHOLD, key)
	d.emit(mustParse(id), &subsidyv1.ViolationFlagged{
		FlagId:        id,
		Reason:        subsidyv1.ReasonCode_REASON_CODE_QUALITY_BELOW_THRESHOLD,
		Subject:       a.trainInst,
		InstitutionId: a.trainInst,
		Qualification: a.q.Proto(),
		Detail:        fmt.Sprintf("first-attempt pass rate %d/%d below %d bp over the last %d", p2, n2, rs.PassRateThresholdBP, rs.PassRateWindow),
		Decision: d.decision(ids, check(subsidyv1.ReasonCode_REASON_CODE_QUALITY_BELOW_THRESHOLD, false,
			"%d passes of %d first attempts < %d bp", p2, n2, rs.PassRateThresholdBP)),
	})
}

// qualityBelow reports whether an institution is below the threshold for q
// now.
func (w *World) qualityBelow(inst string, q refdata.Qualification) (bool, int, int) {
	qw := w.quality[qualityKey{inst, q}]
	if qw == nil {
		return false, 0, 0
	}
	return below(len(qw.results), qw.passes, w.rs.PassRateWindow, w.rs.PassRateThresholdBP), qw.passes, len(qw.results)
}
