// Package facts is the catalogue of inbound facts: the messages publishers
// may send to the ledger, the subject each arrives on, how its payload is
// decoded, and the schema-level checks every fact must pass before the rules
// see it.
//
// Subjects are "<prefix>.<source>.<token>" with DefaultPrefix "subsidy.in",
// e.g. subsidy.in.evaluation.assessment_recorded. The sources are the
// services that publish: bureau (municipal bureau), district (district and
// county bureaus, functional zones), enrolment, evaluation and payment. The
// ledger's own derived messages (SubsidyEntitled, NoticeOpened,
// EntitlementHeld, PaymentOrdered, ClawbackRaised, ViolationFlagged, ...) are
// not facts and have no subject.
package facts

import (
	"slices"
	"sort"
	"strings"

	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// DefaultPrefix is the subject prefix of inbound facts.
const DefaultPrefix = "subsidy.in"

// Sources of facts.
const (
	SourceBureau     = "bureau"
	SourceDistrict   = "district"
	SourceEnrolment  = "enrolment"
	SourceEvaluation = "evaluation"
	SourcePayment    = "payment"
)

// Kind is one kind of inbound fact: a message type arriving from a source.
// The same message type may arrive from two sources (CertificateRevoked from
// an evaluation institution or the bureau); those are two Kinds.
type Kind struct {
	// Name is the full protobuf name of the message, e.g.
	// "subsidy.v1.AssessmentRecorded"; it is also the stored event type.
	Name protoreflect.FullName
	// Source is the publishing service, e.g. "evaluation".
	Source string
	// Token is the last subject token, e.g. "assessment_recorded".
	Token string

	newMsg func() proto.Message
}

// New returns a new empty message of the kind.
func (k Kind) New() proto.Message { return k.newMsg() }

// Subject returns the kind's subject under prefix ("" means DefaultPrefix).
func (k Kind) Subject(prefix string) string {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return prefix + "." + k.Source + "." + k.Token
}

// IsZero reports whether k is the zero Kind.
func (k Kind) IsZero() bool { return k.newMsg == nil }

func kind[M proto.Message](source string, newMsg func() M) Kind {
	m := newMsg()
	name := m.ProtoReflect().Descriptor().FullName()
	return Kind{Name: name, Source: source, Token: snake(string(name.Name())), newMsg: func() proto.Message { return newMsg() }}
}

// snake turns a CamelCase message name into snake_case.
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

var all = []Kind{
	// Municipal bureau: reference data, budgets, supervision, write-offs.
	kind(SourceBureau, func() *subsidyv1.UnitDefined { return new(subsidyv1.UnitDefined) }),
	kind(SourceBureau, func() *subsidyv1.InstitutionRegistered { return new(subsidyv1.InstitutionRegistered) }),
	kind(SourceBureau, func() *subsidyv1.InstitutionApproved { return new(subsidyv1.InstitutionApproved) }),
	kind(SourceBureau, func() *subsidyv1.InstitutionSuspended { return new(subsidyv1.InstitutionSuspended) }),
	kind(SourceBureau, func() *subsidyv1.InstitutionReinstated { return new(subsidyv1.InstitutionReinstated) }),
	kind(SourceBureau, func() *subsidyv1.AnnualTargetSet { return new(subsidyv1.AnnualTargetSet) }),
	kind(SourceBureau, func() *subsidyv1.BudgetAllocated { return new(subsidyv1.BudgetAllocated) }),
	kind(SourceBureau, func() *subsidyv1.FraudFound { return new(subsidyv1.FraudFound) }),
	kind(SourceBureau, func() *subsidyv1.CertificateRevoked { return new(subsidyv1.CertificateRevoked) }),
	kind(SourceBureau, func() *subsidyv1.HoldPlaced { return new(subsidyv1.HoldPlaced) }),
	kind(SourceBureau, func() *subsidyv1.HoldLifted { return new(subsidyv1.HoldLifted) }),
	kind(SourceBureau, func() *subsidyv1.WriteOffRequested { return new(subsidyv1.WriteOffRequested) }),
	kind(SourceBureau, func() *subsidyv1.ClawbackWrittenOff { return new(subsidyv1.ClawbackWrittenOff) }),
	// District bureaus: confirmation, notice, payment requests.
	kind(SourceDistrict, func() *subsidyv1.EntitlementConfirmed { return new(subsidyv1.EntitlementConfirmed) }),
	kind(SourceDistrict, func() *subsidyv1.EntitlementApproved { return new(subsidyv1.EntitlementApproved) }),
	kind(SourceDistrict, func() *subsidyv1.ObjectionRaised { return new(subsidyv1.ObjectionRaised) }),
	kind(SourceDistrict, func() *subsidyv1.ObjectionResolved { return new(subsidyv1.ObjectionResolved) }),
	kind(SourceDistrict, func() *subsidyv1.NoticeClosed { return new(subsidyv1.NoticeClosed) }),
	kind(SourceDistrict, func() *subsidyv1.PaymentRequested { return new(subsidyv1.PaymentRequested) }),
	// Enrolment system: trainee lifecycle.
	kind(SourceEnrolment, func() *subsidyv1.TraineeRegistered { return new(subsidyv1.TraineeRegistered) }),
	kind(SourceEnrolment, func() *subsidyv1.EligibilityEvidenceRecorded { return new(subsidyv1.EligibilityEvidenceRecorded) }),
	kind(SourceEnrolment, func() *subsidyv1.Enrolled { return new(subsidyv1.Enrolled) }),
	kind(SourceEnrolment, func() *subsidyv1.TrainingCompleted { return new(subsidyv1.TrainingCompleted) }),
	kind(SourceEnrolment, func() *subsidyv1.AdvancePaymentRecorded { return new(subsidyv1.AdvancePaymentRecorded) }),
	// Evaluation institutions: fees, assessments, certificates.
	kind(SourceEvaluation, func() *subsidyv1.FeeSchedulePublished { return new(subsidyv1.FeeSchedulePublished) }),
	kind(SourceEvaluation, func() *subsidyv1.AssessmentRecorded { return new(subsidyv1.AssessmentRecorded) }),
	kind(SourceEvaluation, func() *subsidyv1.CertificateIssued { return new(subsidyv1.CertificateIssued) }),
	kind(SourceEvaluation, func() *subsidyv1.CertificateRevoked { return new(subsidyv1.CertificateRevoked) }),
	// Payment system: results.
	kind(SourcePayment, func() *subsidyv1.PaymentSettled { return new(subsidyv1.PaymentSettled) }),
	kind(SourcePayment, func() *subsidyv1.PaymentFailed { return new(subsidyv1.PaymentFailed) }),
	kind(SourcePayment, func() *subsidyv1.RepaymentReceived { return new(subsidyv1.RepaymentReceived) }),
}

var bySourceToken = func() map[string]Kind {
	m := make(map[string]Kind, len(all))
	for _, k := range all {
		m[k.Source+"."+k.Token] = k
	}
	return m
}()

// All returns every kind, ordered by source then token.
func All() []Kind {
	out := append([]Kind(nil), all...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Source != out[j].Source {
			return out[i].Source < out[j].Source
		}
		return out[i].Token < out[j].Token
	})
	return out
}

// BySubject returns the kind of subject under prefix ("" means
// DefaultPrefix); false if the subject is not a fact subject.
func BySubject(prefix, subject string) (Kind, bool) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	rest, ok := strings.CutPrefix(subject, prefix+".")
	if !ok {
		return Kind{}, false
	}
	k, ok := bySourceToken[rest]
	return k, ok
}

// ByName returns the kinds whose message is name (one, or two for
// CertificateRevoked), ordered by source.
func ByName(name protoreflect.FullName) []Kind {
	return slices.Clone(byName[name])
}

// byName indexes All by message name, in All's order.
var byName = func() map[protoreflect.FullName][]Kind {
	m := make(map[protoreflect.FullName][]Kind)
	for _, k := range All() {
		m[k.Name] = append(m[k.Name], k)
	}
	return m
}()

// IsFact reports whether m is an inbound fact message (of any source).
func IsFact(m proto.Message) bool {
	return m != nil && len(byName[m.ProtoReflect().Descriptor().FullName()]) > 0
}
