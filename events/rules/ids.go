package rules

import (
	"strconv"
	"strings"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// Stream names (see the package documentation).
const (
	UnitsStream = "reference-units"
)

// TraineeStream returns the stream of a person's facts and entitlements.
func TraineeStream(personKey string) string { return "trainee-" + personKey }

// InstitutionStream returns the stream of an institution's reference facts.
func InstitutionStream(id string) string { return "institution-" + id }

// FeeStream returns the stream of an evaluation institution's fee schedules.
func FeeStream(evaluationInstitutionID string) string { return "fee-" + evaluationInstitutionID }

// TargetStream returns the stream of a year's target.
func TargetStream(year int32) string { return "target-" + strconv.Itoa(int(year)) }

// FundStream returns the stream of a unit's budget for a year.
func FundStream(year int32, unit string) string {
	return "fund-" + strconv.Itoa(int(year)) + "-" + unit
}

// EntitlementEventID is the id of the SubsidyEntitled event for (person,
// qualification); its text form is the entitlement id. At most one exists.
func EntitlementEventID(personKey string, q refdata.Qualification) events.ID {
	return events.DeriveID("entitlement", personKey, q.Occupation.String(), q.Level.String())
}

// EntitlementID returns the entitlement id for (person, qualification).
func EntitlementID(personKey string, q refdata.Qualification) string {
	return EntitlementEventID(personKey, q).String()
}

// PaymentOrderID returns the payment order id of an entitlement's attempt
// (1-based); it is also the PaymentOrdered event's id.
func PaymentOrderID(entitlementID string, attempt uint32) string {
	return events.DeriveID("payment-order", entitlementID, strconv.FormatUint(uint64(attempt), 10)).String()
}

// ClawbackID returns the id of the (only) clawback of an entitlement; it is
// also the ClawbackRaised event's id.
func ClawbackID(entitlementID string) string {
	return events.DeriveID("clawback", entitlementID).String()
}

// FlagID returns the flag id of a ViolationFlagged with reason and key.
func FlagID(reason subsidyv1.ReasonCode, key string) string {
	return events.DeriveID("flag", reason.String(), key).String()
}

// Hold ids (EntitlementHeld.hold_id).
const (
	HoldBudget  = "budget"
	HoldQuality = "quality"
)

// ObjectionHold, SupervisorHold, RevokedHold and FraudHold name the other
// holds.
func ObjectionHold(objectionID string) string { return "objection/" + objectionID }
func SupervisorHold(holdID string) string     { return "supervisor/" + holdID }
func RevokedHold(certificateID string) string { return "revoked/" + certificateID }
func FraudHold(findingID string) string       { return "fraud/" + findingID }

func denialID(certificateID string) events.ID { return events.DeriveID("denial", certificateID) }

// denialRevisedID is the id of the SubsidyDenialRevised of a certificate
// decided again on the fact factID.
func denialRevisedID(certificateID, factID string) events.ID {
	return events.DeriveID("denial-revised", certificateID, factID)
}
func noticeID(entitlementID string) events.ID { return events.DeriveID("notice", entitlementID) }
func holdEventID(entitlementID, holdID string) events.ID {
	return events.DeriveID("hold", entitlementID, holdID)
}
func releaseEventID(entitlementID, holdID string) events.ID {
	return events.DeriveID("release", entitlementID, holdID)
}
func recoveryID(clawbackID, referenceID string) events.ID {
	return events.DeriveID("recovery", clawbackID, referenceID)
}

func mustParse(s string) events.ID {
	id, err := events.ParseID(s)
	if err != nil {
		panic(err)
	}
	return id
}

// idTextLen is the length of an event id's text (events.ID.String).
const idTextLen = 36

// writeID writes id's text as events.ID.String does.
func writeID(b *strings.Builder, id events.ID) {
	var t [idTextLen]byte
	text, _ := id.AppendText(t[:0])
	b.Write(text)
}
