// Package rules is the programme's rules (DOMAIN.md §2–§4) as pure,
// replayable decisions. It does no I/O and imports no store, NATS or HTTP.
//
// A World is the state folded from the ledger's events. Decide takes one
// inbound fact and returns the Decision to append: the fact's event first,
// then every event the rules derive from it, all in one stream (the fact's
// home stream), or a Rejection with a stable reason code. Decide is a pure
// function of (state, fact, rule set) and does not change the World; the
// caller appends the decision and then folds every stored event back in with
// Apply, in global position order, whichever process wrote it.
//
// # Streams
//
// Each fact has one home stream, so that the invariants of one aggregate are
// guarded by that stream's expected revision:
//
//	reference-units               UnitDefined
//	institution-<institution_id>  InstitutionRegistered, InstitutionApproved,
//	                              InstitutionSuspended, InstitutionReinstated
//	fee-<evaluation_institution>  FeeSchedulePublished
//	target-<year>                 AnnualTargetSet
//	fund-<year>-<unit_code>       BudgetAllocated
//	trainee-<person_key>          trainee lifecycle facts, and every fact
//	                              about an entitlement, its payments and its
//	                              clawback (confirmation, approval, notice,
//	                              objections, holds, payment requests and
//	                              results, fraud, repayments, write-offs):
//	                              they go to the stream of the entitlement's
//	                              person.
//
// Derived events live in the stream of the fact that caused them, even when
// they concern another aggregate (a BudgetAllocated in a fund stream releases
// entitlements of many trainees). Read models group by entitlement id, not by
// stream. Cross-stream decisions (budget, institution quality, offsets of an
// institution's receivables, anomaly counts) assume one decider folds the
// whole log in order: the expected revision of the home stream alone does
// not guard them against a second, concurrent decider. Nor does it keep one
// person's facts in order when two deciders share them. The intake
// (services/ingest) therefore lets one ledger instance decide at a time
// (the inbound consumer is pinned to it) and refuses to append a batch if
// another writer appended after the state it was decided on; the README's
// "Several writers" lists which decisions read which other streams.
//
// # Ids
//
// The fact's event id is given by the caller (deterministic from the
// publisher's message id). Derived event ids are events.DeriveID of their
// natural key, so a retried or raced decision yields the same ids and the
// store dedupes:
//
//	SubsidyEntitled      "entitlement", person_key, occupation, level  (= entitlement_id)
//	SubsidyDenied        "denial", certificate_id
//	SubsidyDenialRevised "denial-revised", certificate_id, the fact's event id
//	NoticeOpened         "notice", entitlement_id
//	EntitlementHeld      "hold", entitlement_id, hold_id
//	EntitlementReleased  "release", entitlement_id, hold_id
//	PaymentOrdered       "payment-order", entitlement_id, attempt       (= payment_order_id)
//	ClawbackRaised       "clawback", entitlement_id                      (= clawback_id)
//	ClawbackRecovered    "recovery", clawback_id, repayment or order id
//	ViolationFlagged     "flag", reason, key                             (= flag_id)
//	FlagCleared          "flag-cleared", flag_id
//
// Occupation and level are written as their enum names
// (OCCUPATION_BIG_DATA, LEVEL_JUNIOR), the attempt in decimal.
//
// # Budget unit
//
// An entitlement is budgeted (rule 11) to the unit of the trainee's
// TraineeRegistered, as in force on the assessment date: a unit abolished by
// then rolls up to its successor (a trainee recorded in 江北区, assessed on
// 2025-11-06, draws on 两江新区's budget; assessed on 2025-11-05, on
// 江北区's); a unit that did not exist yet on that date is used as recorded.
// The year is the calendar year of the assessment.
//
// # Determinism
//
// No decision reads a clock or iterates a map unordered: dates come from the
// facts, money is integer fen, rates are integer basis points. Every derived
// event carries a subsidy.v1.Decision with the rule-set version, the ids of
// the stored events used as evidence and the checks evaluated, so replaying
// one history under one rule set reproduces the decisions byte for byte
// (proto.MarshalOptions{Deterministic: true}).
//
// The reason codes and what each does are listed in REASONS.md, generated
// from Reasons by TestReasonsDoc.
package rules
