package rules

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/facts"
	"github.com/cqhrss/subsidyledger/events/refdata"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"google.golang.org/protobuf/proto"
)

// Decide decides one inbound fact against the state: the Decision to append
// (the fact's event, then every derived event, all in one stream), or a
// Rejection with its reason code. It does not change w; the caller appends
// the decision and then Applies the stored events. The result is a pure
// function of (state, fact, rule set): deciding the same fact again on the
// same state gives the same events, byte for byte.
//
// Decide runs facts.Validate first. A fact whose event id was already
// applied is rejected with DUPLICATE_FACT; callers that redeliver should
// check Applied first and treat the fact as already recorded.
func (w *World) Decide(f Fact) (Decision, *Rejection) {
	if f.Payload == nil {
		return Decision{}, reject(subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION, "no payload")
	}
	if err := facts.Validate(f.Payload); err != nil {
		var fe *facts.Error
		if errors.As(err, &fe) {
			detail := fe.Detail
			if fe.Field != "" {
				detail = fe.Field + ": " + detail
			}
			return Decision{}, reject(fe.Reason, "%s", detail)
		}
		return Decision{}, reject(subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION, "%v", err)
	}
	if f.EventID.IsZero() {
		return Decision{}, reject(subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION, "fact has no event id")
	}
	if at, ok := w.applied.get(f.EventID); ok {
		return Decision{}, reject(subsidyv1.ReasonCode_REASON_CODE_DUPLICATE_FACT, "event %s already recorded in %s", f.EventID, w.streamList[at.stream].name)
	}
	if h, updatable, ok := naturalHashOf(f.Payload); ok {
		if rec, ok := w.natural.get(h); ok {
			key, _ := naturalKey(f.Payload)
			if rec.digest == digest(f.Payload) {
				return Decision{}, reject(subsidyv1.ReasonCode_REASON_CODE_DUPLICATE_FACT, "%s already recorded as event %s", key, rec.eventID)
			}
			if !updatable {
				return Decision{}, reject(subsidyv1.ReasonCode_REASON_CODE_CONFLICTING_DUPLICATE, "%s already recorded as event %s with other content", key, rec.eventID)
			}
		}
	}
	d := &decider{w: w, f: f, factID: f.EventID.String()}
	if rej := d.decide(); rej != nil {
		return Decision{}, rej
	}
	out := Decision{Stream: d.stream, RuleSetVersion: w.rs.Version}
	out.Events = append(out.Events, Event{ID: f.EventID, Payload: f.Payload})
	out.Events = append(out.Events, d.derived...)
	return out, nil
}

// decider holds one decision in progress. It reads the World and never
// writes it; what the decision has done so far (e.g. budget spent by an
// earlier release in the same decision) is tracked here.
type decider struct {
	w       *World
	f       Fact
	factID  string
	stream  string
	derived []Event
	// decided: the entitlements derived so far by this fact, which the
	// World does not hold until the fact is applied. A fact that decides
	// several certificates (secondChance) reads them beside the World's.
	decided []decided
	// completion: a training completion being decided, which the World
	// does not hold yet; rule 3 reads it in place of the enrolment's
	// (secondChance on a TrainingCompleted).
	completion *completion
}

// completion is an enrolment's completion date and the event recording it.
type completion struct {
	enrolment string
	on        refdata.Date
	eventID   events.ID
}

// decided is an entitlement derived by the fact being decided.
type decided struct {
	id      string
	eventID events.ID
	q       refdata.Qualification
	year    int32
	fund    fundKey
	fen     int64
	held    bool // for budget: it waits in the fund's queue
}

func (d *decider) emit(id events.ID, m proto.Message) {
	d.derived = append(d.derived, Event{ID: id, Payload: m, Derived: true, CausationID: d.factID})
}

// decision builds the Decision record of a derived event: evidence (the
// fact first, then the given event ids, empty and repeated ids dropped) and
// checks.
func (d *decider) decision(evidence []events.ID, checks ...*subsidyv1.Check) *subsidyv1.Decision {
	ids := make([]events.ID, 1, len(evidence)+1)
	ids[0] = d.f.EventID
	var seen map[events.ID]bool // for long lists only
	if len(evidence) > 16 {
		seen = map[events.ID]bool{d.f.EventID: true}
	}
	for _, e := range evidence {
		switch {
		case e.IsZero():
		case seen != nil:
			if !seen[e] {
				seen[e] = true
				ids = append(ids, e)
			}
		case !slices.Contains(ids, e):
			ids = append(ids, e)
		}
	}
	// The texts share one buffer: one allocation for the whole list.
	var b strings.Builder
	b.Grow(len(ids) * idTextLen)
	for _, id := range ids[1:] {
		writeID(&b, id)
	}
	all := b.String()
	ev := make([]string, len(ids))
	ev[0] = d.factID
	for i := 1; i < len(ids); i++ {
		ev[i] = all[(i-1)*idTextLen : i*idTextLen]
	}
	return &subsidyv1.Decision{RuleSetVersion: d.w.rs.Version, EvidenceEventIds: ev, Checks: checks}
}

func check(code subsidyv1.ReasonCode, passed bool, format string, args ...any) *subsidyv1.Check {
	return &subsidyv1.Check{Rule: int32(RuleOf(code)), Passed: passed, Reason: code, Detail: fmt.Sprintf(format, args...)}
}

func (d *decider) decide() *Rejection {
	switch m := d.f.Payload.(type) {
	case *subsidyv1.UnitDefined:
		return d.unitDefined(m)
	case *subsidyv1.InstitutionRegistered:
		return d.institutionRegistered(m)
	case *subsidyv1.InstitutionApproved:
		return d.institutionApproved(m)
	case *subsidyv1.InstitutionSuspended:
		return d.institutionSuspended(m)
	case *subsidyv1.InstitutionReinstated:
		return d.institutionReinstated(m)
	case *subsidyv1.FeeSchedulePublished:
		return d.feeSchedulePublished(m)
	case *subsidyv1.AnnualTargetSet:
		d.stream = TargetStream(m.GetYear())
		return nil
	case *subsidyv1.BudgetAllocated:
		return d.budgetAllocated(m)
	case *subsidyv1.TraineeRegistered:
		return d.traineeRegistered(m)
	case *subsidyv1.EligibilityEvidenceRecorded:
		return d.eligibilityEvidence(m)
	case *subsidyv1.Enrolled:
		return d.enrolled(m)
	case *subsidyv1.TrainingCompleted:
		return d.trainingCompleted(m)
	case *subsidyv1.AdvancePaymentRecorded:
		return d.advancePayment(m)
	case *subsidyv1.AssessmentRecorded:
		return d.assessmentRecorded(m)
	case *subsidyv1.CertificateIssued:
		return d.certificateIssued(m)
	case *subsidyv1.CertificateRevoked:
		return d.certificateRevoked(m)
	case *subsidyv1.EntitlementConfirmed:
		return d.entitlementConfirmed(m)
	case *subsidyv1.EntitlementApproved:
		return d.entitlementApproved(m)
	case *subsidyv1.ObjectionRaised:
		return d.objectionRaised(m)
	case *subsidyv1.ObjectionResolved:
		return d.objectionResolved(m)
	case *subsidyv1.NoticeClosed:
		return d.noticeClosed(m)
	case *subsidyv1.HoldPlaced:
		return d.holdPlaced(m)
	case *subsidyv1.HoldLifted:
		return d.holdLifted(m)
	case *subsidyv1.PaymentRequested:
		return d.paymentRequested(m)
	case *subsidyv1.PaymentSettled:
		return d.paymentSettled(m)
	case *subsidyv1.PaymentFailed:
		return d.paymentFailed(m)
	case *subsidyv1.FraudFound:
		return d.fraudFound(m)
	case *subsidyv1.RepaymentReceived:
		return d.repaymentReceived(m)
	case *subsidyv1.WriteOffRequested:
		return d.writeOffRequested(m)
	case *subsidyv1.ClawbackWrittenOff:
		return d.clawbackWrittenOff(m)
	}
	return reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_SUBJECT, "%s is not an inbound fact", d.f.Payload.ProtoReflect().Descriptor().FullName())
}

// Shared lookups that reject.

func (d *decider) traineeOf(key string) (*trainee, *Rejection) {
	t := d.w.trainees[key]
	if t == nil || t.eventID.IsZero() {
		return nil, reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_TRAINEE, "person key %.8s… is not registered", key)
	}
	return t, nil
}

func (d *decider) institutionOf(id string, kind subsidyv1.InstitutionKind) (*institution, *Rejection) {
	in := d.w.institutions[id]
	if in == nil {
		return nil, reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_INSTITUTION, "institution %q is not registered", id)
	}
	if in.kind != kind {
		return nil, reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_INSTITUTION, "institution %q is a %s institution, not %s", id, in.kind, kind)
	}
	return in, nil
}

// activeFor checks that an institution may act for occupation o on day on.
func (d *decider) activeFor(in *institution, o subsidyv1.Occupation, on refdata.Date) (approval, *Rejection) {
	if in.suspended {
		return approval{}, reject(subsidyv1.ReasonCode_REASON_CODE_INSTITUTION_SUSPENDED, "institution %q is suspended", in.id)
	}
	a, ok := in.approvedFor(o, on)
	if !ok {
		return approval{}, reject(subsidyv1.ReasonCode_REASON_CODE_INSTITUTION_NOT_APPROVED, "institution %q is not approved for %s on %s", in.id, o, on)
	}
	return a, nil
}

func (d *decider) entitlementOf(id string) (*entitlement, *Rejection) {
	e := d.w.entitlements[id]
	if e == nil {
		return nil, reject(subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_ENTITLEMENT, "entitlement %q is unknown", id)
	}
	return e, nil
}

func after(code subsidyv1.ReasonCode, what string, d refdata.Date, before string, b refdata.Date) *Rejection {
	if d < b {
		return reject(code, "%s %s is before %s %s", what, d, before, b)
	}
	return nil
}

func dateOrder(what string, d refdata.Date, before string, b refdata.Date) *Rejection {
	return after(subsidyv1.ReasonCode_REASON_CODE_DATE_OUT_OF_ORDER, what, d, before, b)
}
