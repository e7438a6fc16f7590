package ingest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/simulate"
)

// TestOutOfOrderFacts publishes one trainee's facts in orders other than
// the one they happened in, as services publishing independently deliver
// them: a fact that arrives before what it refers to waits for it, the
// fact it waits for passes it even when it comes later in the same lane
// (it used to be held behind it until the wait ran out and the early fact
// was rejected), and the lane's facts of other kinds are decided as they
// come (TestLaneHolds: later facts of the waiting one's kind wait behind
// it). Every fact ends accepted, long before ReferenceWait.

func TestOutOfOrderFacts(t *testing.T) {
	// The trainee's facts, in the order they happened: 1 registered,
	// 2 eligibility evidence, 3 enrolled, 4 training completed,
	// 5 assessment, 6 certificate, then the entitlement's 7 confirmation,
	// 8 approval, 9 notice closed, 10 payment request, 11 settlement.
	for _, tc := range []struct {
		name  string
		order []int
		// before: pairs (a, b) whose events must be in the log in this
		// order, a before b.
		before [][2]int
	}{
		{"registration after the evidence", []int{2, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11}, [][2]int{{1, 2}}},
		// The assessment waits for the enrolment, and is decided after
		// the training's completion that came meanwhile (held behind it,
		// the enrolment waited until the assessment was rejected).
		{"enrolment after the assessment", []int{1, 2, 5, 3, 4, 6, 7, 8, 9, 10, 11}, [][2]int{{3, 5}, {4, 5}}},
		{"registration last", []int{3, 2, 1, 4, 5, 6, 7, 8, 9, 10, 11}, [][2]int{{1, 3}, {1, 2}, {3, 4}}},
		{"the certificate before all it refers to", []int{6, 1, 5, 3, 2, 4, 7, 8, 9, 10, 11}, [][2]int{{1, 3}, {3, 5}, {4, 5}, {5, 6}, {2, 6}}},
		// The assessment is decided before the training's completion
		// (flagged); the certificate waits for the assessment and so
		// sees the completion.
		{"the trainee's facts in reverse", []int{6, 5, 4, 3, 2, 1, 7, 8, 9, 10, 11}, [][2]int{{1, 3}, {3, 5}, {5, 6}}},
		// The certificate is decided before the completion arrives
		// (denied by rule 3) and decided again when it does (rules
		// 2026.3): the entitlement's facts then find their entitlement.
		{"the completion after the certificate", []int{1, 2, 3, 5, 6, 4, 7, 8, 9, 10, 11}, [][2]int{{6, 4}, {4, 7}}},
		{"the entitlement's facts in reverse", []int{1, 2, 3, 4, 5, 6, 8, 7, 9, 10, 11}, [][2]int{{7, 8}}},
		{"the entitlement's facts before the certificate", []int{1, 2, 3, 4, 5, 7, 8, 6, 9, 10, 11}, [][2]int{{6, 7}, {7, 8}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			ref, trainees := programme(t)
			var mine []simulate.Fact
			for _, f := range trainees {
				if f.Lane == trainees[0].Lane {
					mine = append(mine, f)
				}
			}
			if len(mine) != 11 {
				t.Fatalf("trainee 0 has %d facts; the test expects the 11 listed", len(mine))
			}
			facts := slices.Clone(ref)
			for _, i := range tc.order {
				facts = append(facts, mine[i-1])
			}
			r.publish(t, facts)
			in := New(Config{Store: r.store, Conn: r.nc, Consumer: r.cons, JetStream: r.js, RuleSet: rules.DefaultRuleSet(),
				RetryDelay: 20 * time.Millisecond, ReferenceWait: 30 * time.Second, Metrics: NewMetrics(prometheus.NewRegistry())})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- in.Run(ctx) }()
			defer func() { cancel(); <-done }()
			for _, o := range r.outcomes(t, len(facts), 15*time.Second) {
				if !o.GetAccepted() {
					t.Errorf("%s rejected: %s %s", o.GetMessageId(), o.GetReason(), o.GetDetail())
				}
			}
			page, err := r.store.ReadAll(context.Background(), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			at := map[string]int{} // message id -> position of its fact
			for _, rec := range page {
				d, err := codec.Decode(rec)
				if err != nil {
					t.Fatal(err)
				}
				if d.Env.GetSource() != Source {
					at[d.Env.GetMessageId()] = int(rec.Position)
				}
			}
			for _, b := range tc.before {
				x, y := mine[b[0]-1].MsgID, mine[b[1]-1].MsgID
				if at[x] == 0 || at[y] == 0 || at[x] > at[y] {
					t.Errorf("fact %d (%s) at position %d, fact %d (%s) at %d; want %d first", b[0], x, at[x], b[1], y, at[y], b[0])
				}
			}
			if t.Failed() {
				var got []string
				for i, f := range mine {
					got = append(got, fmt.Sprintf("%d@%d", i+1, at[f.MsgID]))
				}
				t.Logf("positions: %v", got)
			}
		})
	}
}

// TestLaneHolds: a later fact waits behind the lane's waiting facts only
// if it is of the kind of one of them and cannot end a wait of the lane.
func TestLaneHolds(t *testing.T) {
	p := parking{waits: []kindWait{
		{"CertificateIssued", 10, []subsidyv1.ReasonCode{subsidyv1.ReasonCode_REASON_CODE_CERTIFICATE_WITHOUT_PASS}},
		{"AssessmentRecorded", 10, []subsidyv1.ReasonCode{subsidyv1.ReasonCode_REASON_CODE_ATTEMPT_OUT_OF_ORDER}},
		// A revocation waits for its certificate: that lets no later
		// certificate past the waiting one.
		{"CertificateRevoked", 10, []subsidyv1.ReasonCode{subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_CERTIFICATE}},
	}}
	for _, tc := range []struct {
		m    proto.Message
		want bool
	}{
		{&subsidyv1.CertificateIssued{}, true},            // a second certificate: after the first
		{&subsidyv1.AssessmentRecorded{}, false},          // the earlier attempt the later one waits for
		{&subsidyv1.CertificateRevoked{}, true},           // a second revocation: after the first
		{&subsidyv1.TrainingCompleted{}, false},           // another kind: decided as it comes
		{&subsidyv1.EligibilityEvidenceRecorded{}, false}, // likewise
	} {
		if got := p.holds(tc.m, 11); got != tc.want {
			t.Errorf("holds(%T) = %v; want %v", tc.m, got, tc.want)
		}
		// The first waiting fact of a kind, and any before it, are not
		// held by their own wait.
		if p.holds(tc.m, 10) || p.holds(tc.m, 9) {
			t.Errorf("holds(%T) of the first waiting fact of its kind", tc.m)
		}
	}
}

// TestEveryAwaitableReasonSaysWhatEndsIt keeps endsWait beside awaitable.
func TestEveryAwaitableReasonSaysWhatEndsIt(t *testing.T) {
	for r := range awaitable {
		if _, ok := endsWait[r]; !ok {
			t.Errorf("%s is awaitable but endsWait does not say what ends the wait (nil if nothing in the lane can)", r)
		}
	}
	for r, names := range endsWait {
		if !awaitable[r] {
			t.Errorf("endsWait lists %s, which is not awaitable", r)
		}
		for _, n := range names {
			if _, err := protoregistry.GlobalFiles.FindDescriptorByName("subsidy.v1." + protoreflect.FullName(n)); err != nil {
				t.Errorf("endsWait[%s] names %s, no message of the schema", r, n)
			}
		}
	}
}
