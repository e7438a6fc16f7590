package rules

import (
	"sort"

	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// Effect says what a reason code does when it is given.
type Effect string

const (
	// EffectReject: the inbound fact is refused and recorded as
	// FactRejected; nothing else happens.
	EffectReject Effect = "rejects"
	// EffectDeny: the certificate is accepted, the subsidy denied
	// (SubsidyDenied).
	EffectDeny Effect = "denies"
	// EffectHold: the entitlement is held (EntitlementHeld) until released.
	EffectHold Effect = "holds"
	// EffectFlag: a ViolationFlagged for supervisors; nothing is refused.
	EffectFlag Effect = "flags"
	// EffectClawback: the cause of a ClawbackRaised (and a final hold of an
	// unpaid entitlement).
	EffectClawback Effect = "claws back"
)

// Reason documents one reason code.
type Reason struct {
	Code    subsidyv1.ReasonCode
	Rule    int // DOMAIN.md §4 rule, 0 for intake
	Effects []Effect
	// By names who gives the code: "facts" (facts.Decode/Validate), "rules"
	// (Decide), "ingest" (the intake service), "person" (publishers).
	By      string
	Meaning string
}

var reasons = []Reason{
	{subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE, 0, []Effect{EffectReject}, "facts", "The payload does not decode as the subject's message (malformed protobuf or JSON, unknown fields)."},
	{subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_SUBJECT, 0, []Effect{EffectReject}, "ingest, facts", "The subject names no inbound fact (facts.BySubject), or the message is not a fact."},
	{subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION, 0, []Effect{EffectReject}, "facts", "A field is missing, malformed or out of range (the detail names it): ids, person key, enums, dates, amounts, attempt."},
	{subsidyv1.ReasonCode_REASON_CODE_UNSUPPORTED_CONTENT_TYPE, 0, []Effect{EffectReject}, "facts", "The content type is neither application/protobuf nor application/json."},
	{subsidyv1.ReasonCode_REASON_CODE_OVERSIZED, 0, []Effect{EffectReject}, "facts", "The payload is larger than facts.MaxPayloadSize (64 KiB)."},
	{subsidyv1.ReasonCode_REASON_CODE_INVALID_PERSON_ID, 0, []Effect{EffectReject}, "facts, person", "A resident ID number fails GB 11643 (publishers), or a plain ID number appears in a fact or its Nats-Msg-Id (it must never be stored; the rejection keeps it masked)."},
	{subsidyv1.ReasonCode_REASON_CODE_DUPLICATE_FACT, 0, []Effect{EffectReject}, "rules", "The fact repeats one already recorded (same natural id, same content, or the same event id)."},
	{subsidyv1.ReasonCode_REASON_CODE_DECISION_FAILED, 0, []Effect{EffectReject}, "ingest", "The rules failed on the fact (a defect, not the publisher's fault); the message is kept to be re-sent once fixed."},
	{subsidyv1.ReasonCode_REASON_CODE_CONFLICTING_DUPLICATE, 0, []Effect{EffectReject}, "rules", "The fact reuses the natural id of a recorded fact with different content."},
	{subsidyv1.ReasonCode_REASON_CODE_PLAIN_ACCOUNT_NUMBER, 0, []Effect{EffectReject}, "rules", "A settlement to a trainee names the account paid by its number (12 digits or more standing alone, ASCII or full-width, in one run or in groups of four) instead of a token of it (the rejection keeps it masked); an institution's basic account is named as registered."},

	{subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_TRAINEE, 1, []Effect{EffectReject}, "rules", "The person key has no TraineeRegistered."},
	{subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_INSTITUTION, 1, []Effect{EffectReject}, "rules", "The institution is not registered, or not of the kind the fact needs (training or evaluation)."},
	{subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_QUALIFICATION, 1, []Effect{EffectReject}, "rules", "The fact's (occupation, level) disagrees with the record it refers to (enrolment, assessment, certificate)."},
	{subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_UNIT, 1, []Effect{EffectReject, EffectDeny}, "rules", "The unit code is not in the unit table, or not in force on the fact's date; denies a subsidy whose trainee unit cannot be mapped to a budget unit."},
	{subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_FEE_SCHEDULE, 1, []Effect{EffectReject}, "rules", "An assessment's evaluation institution never published a fee schedule for the qualification."},
	{subsidyv1.ReasonCode_REASON_CODE_INSTITUTION_NOT_APPROVED, 1, []Effect{EffectReject}, "rules", "The institution is not approved for the occupation on the fact's date."},
	{subsidyv1.ReasonCode_REASON_CODE_INSTITUTION_SUSPENDED, 1, []Effect{EffectReject}, "rules", "The institution is suspended or blacklisted: no new enrolments, assessments or certificates, and no payment to it until it is reinstated."},
	{subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_ENROLMENT, 1, []Effect{EffectReject}, "rules", "A completion or advance payment refers to no matching enrolment."},
	{subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_CERTIFICATE, 1, []Effect{EffectReject}, "rules", "A revocation names no recorded certificate of that person and qualification."},
	{subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_ENTITLEMENT, 1, []Effect{EffectReject}, "rules", "An official action or payment result names no entitlement."},
	{subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_PAYMENT_ORDER, 1, []Effect{EffectReject}, "rules", "A payment result names no payment order of that entitlement."},
	{subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_CLAWBACK, 1, []Effect{EffectReject}, "rules", "A repayment or write-off names no clawback."},
	{subsidyv1.ReasonCode_REASON_CODE_ALREADY_EXISTS, 1, []Effect{EffectReject}, "rules", "A second record where one is allowed: a fee schedule with the same start for the same institution and qualification, an advance payment for a qualification that already has one."},
	{subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_OBJECTION, 1, []Effect{EffectReject}, "rules", "An objection resolution names no objection of that entitlement."},
	{subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_HOLD, 1, []Effect{EffectReject}, "rules", "A hold lift names no hold in place on the entitlement."},

	{subsidyv1.ReasonCode_REASON_CODE_NOT_TRAINING_ELIGIBLE, 2, []Effect{EffectReject}, "rules", "Enrolment of a person with neither an associate degree or higher nor enterprise employment."},

	{subsidyv1.ReasonCode_REASON_CODE_ASSESSMENT_BEFORE_ENROLMENT, 3, []Effect{EffectReject}, "rules", "An assessment with no enrolment for the qualification on or before the assessment date."},
	{subsidyv1.ReasonCode_REASON_CODE_TRAINING_NOT_COMPLETED, 3, []Effect{EffectDeny}, "rules", "The certified assessment took place before training was completed (the assessment is flagged ASSESSMENT_WITHOUT_COMPLETION)."},
	{subsidyv1.ReasonCode_REASON_CODE_CERTIFICATE_WITHOUT_PASS, 3, []Effect{EffectReject}, "rules", "A certificate whose assessment is unknown, failed, or of another person, qualification or evaluation institution."},
	{subsidyv1.ReasonCode_REASON_CODE_PAYMENT_NOT_APPROVED, 3, []Effect{EffectReject}, "rules", "A payment request for an entitlement not confirmed and approved."},
	{subsidyv1.ReasonCode_REASON_CODE_ATTEMPT_OUT_OF_ORDER, 3, []Effect{EffectReject}, "rules", "An assessment whose attempt number is not the next for the person and qualification, or dated before the previous attempt."},
	{subsidyv1.ReasonCode_REASON_CODE_SCORE_OUT_OF_RANGE, 3, []Effect{EffectReject}, "facts", "A score outside 0..100."},
	{subsidyv1.ReasonCode_REASON_CODE_DATE_OUT_OF_ORDER, 3, []Effect{EffectReject}, "rules", "A fact dated before the fact it must follow (completion before enrolment, certificate before assessment, approval before confirmation, payment before notice close, a lift before its hold...)."},

	{subsidyv1.ReasonCode_REASON_CODE_NO_ELIGIBILITY_EVIDENCE, 4, []Effect{EffectDeny}, "rules", "No eligibility evidence was recorded for the person."},
	{subsidyv1.ReasonCode_REASON_CODE_NOT_GRADUATING_THIS_YEAR, 4, []Effect{EffectDeny}, "rules", "Graduating-student evidence, but its latest snapshot gives a graduation year other than the assessment year (or the register did not confirm)."},
	{subsidyv1.ReasonCode_REASON_CODE_NOT_INSURED_ON_ASSESSMENT, 4, []Effect{EffectDeny}, "rules", "Enterprise-employee evidence, but its latest snapshot shows no insured employment on the assessment date (or the register did not confirm); an older snapshot showing one does not count."},

	{subsidyv1.ReasonCode_REASON_CODE_NOT_FIRST_ATTEMPT, 5, []Effect{EffectDeny}, "rules", "The certified pass was not the person's first attempt at the qualification (or, under a rule set that allows re-sits, came after its SubsidisedAttempts): certified, not subsidised."},
	{subsidyv1.ReasonCode_REASON_CODE_ALREADY_SUBSIDISED, 6, []Effect{EffectDeny}, "rules", "The person already has an entitlement for the qualification (city-wide); never a second."},
	{subsidyv1.ReasonCode_REASON_CODE_LOWER_AFTER_HIGHER, 7, []Effect{EffectDeny}, "rules", "A higher level of the occupation was already subsidised (RuleSet.LowerAfterHigher)."},
	{subsidyv1.ReasonCode_REASON_CODE_YEARLY_CAP_REACHED, 8, []Effect{EffectDeny}, "rules", "The person already has RuleSet.YearlyCap entitlements in the assessment year."},
	{subsidyv1.ReasonCode_REASON_CODE_NO_FEE_IN_FORCE, 9, []Effect{EffectReject, EffectDeny}, "rules", "No fee schedule of the evaluation institution is in force on the assessment date (rejects the assessment; denies if it happens at certification)."},
	{subsidyv1.ReasonCode_REASON_CODE_PAYEE_ACCOUNT_NOT_REGISTERED, 10, []Effect{EffectReject}, "rules", "A training institution registered without a basic account, which reimbursements must go to."},
	{subsidyv1.ReasonCode_REASON_CODE_BUDGET_EXCEEDED, 11, []Effect{EffectHold}, "rules", "The entitlement would exceed its unit's budget for the year (or earlier ones wait): held until an allocation makes room, released in order."},

	{subsidyv1.ReasonCode_REASON_CODE_CHECKER_IS_MAKER, 12, []Effect{EffectReject}, "rules", "The approving official is the confirming one."},
	{subsidyv1.ReasonCode_REASON_CODE_NOT_CONFIRMED, 12, []Effect{EffectReject}, "rules", "Approval of an entitlement not yet confirmed."},
	{subsidyv1.ReasonCode_REASON_CODE_NOT_APPROVED, 12, []Effect{EffectReject}, "rules", "Closing the notice of an entitlement not approved (no notice open)."},
	{subsidyv1.ReasonCode_REASON_CODE_NOTICE_NOT_ELAPSED, 12, []Effect{EffectReject}, "rules", "Notice closed on or before its last day, or payment requested before the notice was closed."},
	{subsidyv1.ReasonCode_REASON_CODE_OBJECTION_PENDING, 12, []Effect{EffectReject, EffectHold}, "rules", "An objection during the notice holds the entitlement; closing the notice while one is unresolved, or dated before one's resolution (behaviour 4), is rejected."},
	{subsidyv1.ReasonCode_REASON_CODE_ENTITLEMENT_HELD, 12, []Effect{EffectReject}, "rules", "A payment request for an entitlement with a hold in place, or dated before the latest release of one (behaviour 4)."},
	{subsidyv1.ReasonCode_REASON_CODE_WRONG_STATE, 12, []Effect{EffectReject}, "rules", "The action does not fit the state (confirming twice, acting on a cancelled entitlement, an advance after the subsidy was decided, reinstating a blacklisted institution...)."},
	{subsidyv1.ReasonCode_REASON_CODE_SUPERVISOR_HOLD, 12, []Effect{EffectHold}, "rules", "A supervisor's hold (HoldPlaced), lifted by HoldLifted."},
	{subsidyv1.ReasonCode_REASON_CODE_OUTSIDE_NOTICE_WINDOW, 12, []Effect{EffectReject}, "rules", "An objection before the notice opened or after its last day."},
	{subsidyv1.ReasonCode_REASON_CODE_HOLD_NOT_LIFTABLE, 12, []Effect{EffectReject}, "rules", "A hold lift for a budget hold (released by allocations) or a revocation or fraud hold (final)."},

	{subsidyv1.ReasonCode_REASON_CODE_PAYMENT_EXCEEDS_ENTITLEMENT, 13, []Effect{EffectReject}, "rules", "A settlement for more than the order's net amount."},
	{subsidyv1.ReasonCode_REASON_CODE_ALREADY_PAID, 13, []Effect{EffectReject}, "rules", "A payment request for an entitlement already settled; a supervisor hold on a paid one, or (behaviour 3) an objection recorded late after it was paid."},
	{subsidyv1.ReasonCode_REASON_CODE_PAYMENT_IN_FLIGHT, 13, []Effect{EffectReject}, "rules", "A payment request while an order is awaiting its result, or dated before the last order's failure (behaviour 4), or a result for an order that is not the one in flight; a supervisor hold (behaviour 4) or an objection recorded late (behaviour 3) while an order is out."},
	{subsidyv1.ReasonCode_REASON_CODE_SETTLEMENT_MISMATCH, 13, []Effect{EffectReject}, "rules", "A settlement for less than the order's net amount."},
	{subsidyv1.ReasonCode_REASON_CODE_PAYMENT_LATE, 13, []Effect{EffectFlag}, "rules", "A payment settled more than RuleSet.PaymentWorkingDays working days after it was requested: flagged for supervisors, the settlement stands."},

	{subsidyv1.ReasonCode_REASON_CODE_CERTIFICATE_REVOKED, 14, []Effect{EffectClawback, EffectHold}, "rules", "The certificate that earned the entitlement was revoked: a paid one is clawed back, an unpaid one held for good."},
	{subsidyv1.ReasonCode_REASON_CODE_FRAUD_FINDING, 14, []Effect{EffectClawback, EffectHold}, "rules", "A fraud finding: a paid entitlement is clawed back, an unpaid one held for good."},
	{subsidyv1.ReasonCode_REASON_CODE_WRITE_OFF_NEEDS_REASON, 14, []Effect{EffectReject}, "rules", "A write-off request or approval without a reason."},
	{subsidyv1.ReasonCode_REASON_CODE_WRITE_OFF_SAME_OFFICIAL, 14, []Effect{EffectReject}, "rules", "A write-off approved by the official who requested it."},
	{subsidyv1.ReasonCode_REASON_CODE_RECOVERY_EXCEEDS_RECEIVABLE, 14, []Effect{EffectReject}, "rules", "A write-off larger than the outstanding receivable, or a repayment larger than what is outstanding and (from behaviour 5) written off together."},

	{subsidyv1.ReasonCode_REASON_CODE_QUALITY_BELOW_THRESHOLD, 15, []Effect{EffectFlag, EffectHold}, "rules", "The training institution's first-attempt pass rate for the qualification fell below the threshold: flagged, and its new reimbursements for it held for a supervisor (the flag is cleared, by a FlagCleared, once a first attempt brings the rate back; the holds stay until lifted)."},

	{subsidyv1.ReasonCode_REASON_CODE_CERTIFICATE_SPIKE, 16, []Effect{EffectFlag}, "rules", "An evaluation institution issued far more certificates in a month than its history."},
	{subsidyv1.ReasonCode_REASON_CODE_CONCURRENT_ENROLMENT, 16, []Effect{EffectFlag}, "rules", "A person enrolled at a second institution while an enrolment elsewhere is not completed."},
	{subsidyv1.ReasonCode_REASON_CODE_SHARED_PAYEE_ACCOUNT, 16, []Effect{EffectFlag}, "rules", "RuleSet.SharedAccountThreshold trainees were paid directly into one account."},
	{subsidyv1.ReasonCode_REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION, 16, []Effect{EffectFlag}, "rules", "An assessment of a person whose training for the qualification was not completed (cleared by a FlagCleared if a completion dated on or before it is reported later)."},
	{subsidyv1.ReasonCode_REASON_CODE_PAYMENT_ACCOUNT_MISMATCH, 16, []Effect{EffectFlag}, "rules", "A reimbursement settled into an account other than the institution's registered basic account."},
}

var reasonByCode = func() map[subsidyv1.ReasonCode]Reason {
	m := make(map[subsidyv1.ReasonCode]Reason, len(reasons))
	for _, r := range reasons {
		m[r.Code] = r
	}
	return m
}()

// Reasons returns the reason-code catalogue ordered by code.
func Reasons() []Reason {
	out := append([]Reason(nil), reasons...)
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

// RuleOf returns the rule (1-16) a reason code belongs to, 0 for intake
// reasons and unknown codes.
func RuleOf(c subsidyv1.ReasonCode) int { return reasonByCode[c].Rule }
