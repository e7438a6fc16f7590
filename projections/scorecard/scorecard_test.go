package scorecard_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/internal/deepdiff"
	"github.com/cqhrss/subsidyledger/projections/internal/fold"
	"github.com/cqhrss/subsidyledger/projections/internal/rm"
	"github.com/cqhrss/subsidyledger/projections/scorecard"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"google.golang.org/protobuf/proto"
)

// TestAdvanceReopensWhenEntitledAfterADenial: a training institution's
// advance counts as not reimbursable when its trainee's certificate is
// denied, and as outstanding again when the qualification is entitled
// after all (the rules decide a certificate again when eligibility
// evidence comes after it).
func TestAdvanceReopensWhenEntitledAfterADenial(t *testing.T) {
	m := scorecard.New()
	pos := events.Position(0)
	k := fmt.Sprintf("%064x", 7)
	q := refdata.Qualification{Occupation: pb.Occupation_OCCUPATION_BIG_DATA, Level: pb.Level_LEVEL_JUNIOR}
	evs := []*projections.Event{
		{Type: "subsidy.v1.InstitutionRegistered", Payload: &pb.InstitutionRegistered{InstitutionId: "ti-a", Name: "A", Kind: pb.InstitutionKind_INSTITUTION_KIND_TRAINING, UnitCode: "cq-yuzhong"}},
		{Type: "subsidy.v1.AdvancePaymentRecorded", Payload: &pb.AdvancePaymentRecorded{AdvanceId: "adv", TrainingInstitutionId: "ti-a", PersonKey: k, Qualification: q.Proto(), AmountFen: 80000}},
		{Type: "subsidy.v1.SubsidyDenied", Payload: &pb.SubsidyDenied{PersonKey: k, Qualification: q.Proto(), CertificateId: "c", Reason: pb.ReasonCode_REASON_CODE_NO_ELIGIBILITY_EVIDENCE}},
	}
	for _, ev := range evs {
		pos++
		ev.Position = pos
		if err := m.Apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	card := func() scorecard.Advances {
		c, ok := m.Get("ti-a")
		if !ok {
			t.Fatal("no card for ti-a")
		}
		return c.Advances
	}
	if a := card(); a.NotReimbursableCount != 1 || a.NotReimbursableFen != 80000 || a.OutstandingCount != 0 {
		t.Fatalf("after the denial: %+v", a)
	}
	pos++
	if err := m.Apply(&projections.Event{Position: pos, Type: "subsidy.v1.SubsidyEntitled", Payload: &pb.SubsidyEntitled{
		EntitlementId: rules.EntitlementID(k, q), PersonKey: k, Qualification: q.Proto(), CertificateId: "c", AmountFen: 80000,
		Payee: &pb.Payee{Kind: pb.PayeeKind_PAYEE_KIND_INSTITUTION, InstitutionId: "ti-a"}, TrainingInstitutionId: "ti-a", Year: 2025, UnitCode: "cq-yuzhong"}}); err != nil {
		t.Fatal(err)
	}
	if a := card(); a.NotReimbursableCount != 0 || a.NotReimbursableFen != 0 || a.OutstandingCount != 1 || a.OutstandingFen != 80000 {
		t.Fatalf("after the entitlement: %+v", a)
	}
}

// apply feeds payloads to m at the positions after pos, as the log would.
func apply(t *testing.T, m *scorecard.Model, pos *events.Position, msgs ...proto.Message) {
	t.Helper()
	l := &fold.Log{T: t, P: m, Pos: *pos}
	l.Apply(msgs...)
	*pos = l.Pos
}

var date = fold.Date

// TestFirstAttemptsCreditedToTheEnrolment: an assessment that names no
// training institution counts for the institution of the person's
// enrolment, chosen as rule 15 chooses it (rules.World.enrolmentFor): among
// the enrolments for the qualification on or before the assessment date, a
// completed one first, then the earliest; one that names an institution
// counts for its enrolment there.
func TestFirstAttemptsCreditedToTheEnrolment(t *testing.T) {
	q := refdata.Qualification{Occupation: pb.Occupation_OCCUPATION_BIG_DATA, Level: pb.Level_LEVEL_JUNIOR}
	other := refdata.Qualification{Occupation: pb.Occupation_OCCUPATION_CLOUD_COMPUTING, Level: pb.Level_LEVEL_JUNIOR}
	type enrol struct {
		inst     string
		q        refdata.Qualification
		on, done string
	}
	tests := []struct {
		name   string
		enrols []enrol
		named  string // the assessment's training_institution_id
		want   string // the institution credited
	}{
		{"one enrolment, none named", []enrol{{"ti-a", q, "2025-03-01", "2025-05-01"}}, "", "ti-a"},
		{"the earliest when none completed", []enrol{{"ti-a", q, "2025-03-01", ""}, {"ti-b", q, "2025-04-01", ""}}, "", "ti-a"},
		{"a completed one first", []enrol{{"ti-a", q, "2025-03-01", ""}, {"ti-b", q, "2025-04-01", "2025-05-01"}}, "", "ti-b"},
		{"completed after the assessment is not completed", []enrol{{"ti-a", q, "2025-03-01", ""}, {"ti-b", q, "2025-04-01", "2025-07-01"}}, "", "ti-a"},
		{"enrolled after the assessment", []enrol{{"ti-b", q, "2025-07-01", "2025-07-02"}, {"ti-a", q, "2025-03-01", ""}}, "", "ti-a"},
		{"another qualification", []enrol{{"ti-b", other, "2025-01-01", "2025-02-01"}, {"ti-a", q, "2025-03-01", ""}}, "", "ti-a"},
		{"at the institution named", []enrol{{"ti-a", q, "2025-03-01", "2025-05-01"}, {"ti-b", q, "2025-04-01", ""}}, "ti-b", "ti-b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := scorecard.New()
			pos := events.Position(0)
			k := fmt.Sprintf("%064x", 7)
			for i, e := range tt.enrols {
				id := fmt.Sprintf("enr-%d", i)
				apply(t, m, &pos, &pb.Enrolled{EnrolmentId: id, PersonKey: k, TrainingInstitutionId: e.inst, Qualification: e.q.Proto(), EnrolledOn: date(e.on)})
				if e.done != "" {
					apply(t, m, &pos, &pb.TrainingCompleted{EnrolmentId: id, PersonKey: k, TrainingInstitutionId: e.inst, Qualification: e.q.Proto(), CompletedOn: date(e.done)})
				}
			}
			apply(t, m, &pos, &pb.AssessmentRecorded{AssessmentId: "as", PersonKey: k, EvaluationInstitutionId: "ev", TrainingInstitutionId: tt.named,
				Qualification: q.Proto(), Attempt: 1, TheoryScore: 40, PracticalScore: 70, AssessedOn: date("2025-06-01")})
			for _, id := range []string{"ti-a", "ti-b"} {
				c, _ := m.Get(id)
				want := scorecard.PassRate{}
				if id == tt.want {
					want = scorecard.PassRate{Attempts: 1}
				}
				if c.FirstAttempt != want {
					t.Errorf("%s: first attempts = %+v; want %+v", id, c.FirstAttempt, want)
				}
			}
		})
	}
}

// TestAdvanceOfAnEntitledQualification: once its qualification is
// entitled, a training institution's advance is not closed by the denial
// of another certificate of it (a reissued certificate denied
// ALREADY_SUBSIDISED, a re-sit denied NOT_FIRST_ATTEMPT); the settlement
// to the institution reimburses it.
func TestAdvanceOfAnEntitledQualification(t *testing.T) {
	for _, reason := range []pb.ReasonCode{pb.ReasonCode_REASON_CODE_ALREADY_SUBSIDISED, pb.ReasonCode_REASON_CODE_NOT_FIRST_ATTEMPT} {
		t.Run(reason.String(), func(t *testing.T) {
			m := scorecard.New()
			pos := events.Position(0)
			k := fmt.Sprintf("%064x", 7)
			q := refdata.Qualification{Occupation: pb.Occupation_OCCUPATION_BIG_DATA, Level: pb.Level_LEVEL_JUNIOR}
			id := rules.EntitlementID(k, q)
			apply(t, m, &pos,
				&pb.InstitutionRegistered{InstitutionId: "ti-a", Name: "A", Kind: pb.InstitutionKind_INSTITUTION_KIND_TRAINING, UnitCode: "cq-yuzhong"},
				&pb.AdvancePaymentRecorded{AdvanceId: "adv", TrainingInstitutionId: "ti-a", PersonKey: k, Qualification: q.Proto(), AmountFen: 80000},
				&pb.SubsidyEntitled{EntitlementId: id, PersonKey: k, Qualification: q.Proto(), CertificateId: "c", AmountFen: 80000,
					Payee: &pb.Payee{Kind: pb.PayeeKind_PAYEE_KIND_INSTITUTION, InstitutionId: "ti-a"}, TrainingInstitutionId: "ti-a", Year: 2025, UnitCode: "cq-yuzhong"},
				&pb.SubsidyDenied{PersonKey: k, Qualification: q.Proto(), CertificateId: "c2", Reason: reason})
			c, _ := m.Get("ti-a")
			if a := c.Advances; a.OutstandingCount != 1 || a.OutstandingFen != 80000 || a.NotReimbursableCount != 0 {
				t.Fatalf("after the denial: %+v; want it outstanding", a)
			}
			apply(t, m, &pos,
				&pb.PaymentOrdered{PaymentOrderId: "po", EntitlementId: id, Attempt: 1, AmountFen: 80000, NetFen: 80000},
				&pb.PaymentSettled{PaymentOrderId: "po", EntitlementId: id, AmountFen: 80000})
			c, _ = m.Get("ti-a")
			want := scorecard.Advances{Count: 1, Fen: 80000, ReimbursedCount: 1, ReimbursedFen: 80000}
			if c.Advances != want {
				t.Errorf("after the settlement: %+v; want %+v", c.Advances, want)
			}
		})
	}
}

// TestCancelledEntitlementHoldsNotActive: the holds of an entitlement
// cancelled by a revocation or a fraud finding (its own included) are not
// counted among the training institution's active holds; another
// entitlement's hold still is.
func TestCancelledEntitlementHoldsNotActive(t *testing.T) {
	m := scorecard.New()
	pos := events.Position(0)
	q := refdata.Qualification{Occupation: pb.Occupation_OCCUPATION_BIG_DATA, Level: pb.Level_LEVEL_JUNIOR}
	var ids []string
	for i := range 2 {
		k := fmt.Sprintf("%064x", i+1)
		id := rules.EntitlementID(k, q)
		ids = append(ids, id)
		apply(t, m, &pos, &pb.SubsidyEntitled{EntitlementId: id, PersonKey: k, Qualification: q.Proto(), CertificateId: fmt.Sprintf("c%d", i), AmountFen: 80000,
			Payee: &pb.Payee{Kind: pb.PayeeKind_PAYEE_KIND_TRAINEE}, TrainingInstitutionId: "ti-a", Year: 2025, UnitCode: "cq-yuzhong"},
			&pb.EntitlementHeld{EntitlementId: id, HoldId: "budget", Reason: pb.ReasonCode_REASON_CODE_BUDGET_EXCEEDED})
	}
	apply(t, m, &pos, &pb.EntitlementHeld{EntitlementId: ids[0], HoldId: "revoked/c0", Reason: pb.ReasonCode_REASON_CODE_CERTIFICATE_REVOKED})
	want := []scorecard.HoldCount{{Reason: rm.ReasonOf(pb.ReasonCode_REASON_CODE_BUDGET_EXCEEDED), Count: 1}}
	c, _ := m.Get("ti-a")
	if c.ActiveHolds != 1 || !reflect.DeepEqual(c.Holds, want) {
		t.Errorf("after the revocation: active holds %d %+v; want 1 %+v", c.ActiveHolds, c.Holds, want)
	}
	// Releasing a cancelled entitlement's hold changes nothing.
	apply(t, m, &pos, &pb.EntitlementReleased{EntitlementId: ids[0], HoldId: "budget"})
	c, _ = m.Get("ti-a")
	if c.ActiveHolds != 1 || !reflect.DeepEqual(c.Holds, want) {
		t.Errorf("after the release: active holds %d %+v; want 1 %+v", c.ActiveHolds, c.Holds, want)
	}
}

// TestFlagCleared: a FlagCleared closes the institution's flag: the card
// lists it cleared, at the clearing's position, and counts only the other
// among its open flags (the list's row too). A snapshot keeps it.
func TestFlagCleared(t *testing.T) {
	h := fold.NewLateCompletion(t)
	m := scorecard.New()
	fold.ApplyAll(t, m, h.Events[:len(h.Events)-1])
	if c, _ := m.Get("ti-digital"); c.OpenFlags != 2 {
		t.Fatalf("before the clearing: %d open flags; want 2", c.OpenFlags)
	}
	fold.ApplyAll(t, m, h.Events[len(h.Events)-1:])
	check := func(what string, m *scorecard.Model) {
		t.Helper()
		c, ok := m.Get("ti-digital")
		if !ok {
			t.Fatalf("%s: no card for ti-digital", what)
		}
		got := map[string]scorecard.Flag{}
		for _, f := range c.Flags {
			got[f.FlagID] = f
		}
		if c.OpenFlags != 1 || len(c.Flags) != 2 {
			t.Errorf("%s: %d open flags of %+v; want 1 of 2", what, c.OpenFlags, c.Flags)
		}
		if f := got[h.Cleared]; f.Status != "cleared" || f.ClearedPosition != uint64(h.ClearingAt.Position) || f.Position == 0 {
			t.Errorf("%s: cleared flag %+v; want cleared at %d", what, f, h.ClearingAt.Position)
		}
		if f := got[h.Open]; f.Status != "open" || f.ClearedPosition != 0 {
			t.Errorf("%s: open flag %+v", what, f)
		}
		if rows := m.List(scorecard.Filter{Institution: "ti-digital"}); len(rows) != 1 || rows[0].OpenFlags != 1 {
			t.Errorf("%s: rows %+v; want 1 open flag", what, rows)
		}
		b, err := json.Marshal(c.Flags)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(b), `"cleared_position":`); n != 1 || !strings.Contains(string(b), `"status":"cleared"`) {
			t.Errorf("%s: flags as JSON %s: want one status cleared with its cleared_position", what, b)
		}
	}
	check("live", m)
	var buf bytes.Buffer
	if err := m.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	back := scorecard.New()
	if err := back.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if d := deepdiff.Diff(m, back); d != "" {
		t.Errorf("restored differs at %s", d)
	}
	check("restored", back)
	c, _ := m.Get("ti-digital")
	if r, _ := back.Get("ti-digital"); !reflect.DeepEqual(r, c) {
		t.Errorf("restored card %+v; want %+v", r, c)
	}
}

// TestFlagClearedOfAnUnknownFlag: every flag naming an institution is on
// its card, so a FlagCleared naming one the card lacks is a broken log:
// Apply fails, as for an unknown clawback; one naming no institution, like
// its flag, is on no card.
func TestFlagClearedOfAnUnknownFlag(t *testing.T) {
	m := scorecard.New()
	pos := events.Position(0)
	apply(t, m, &pos, &pb.InstitutionRegistered{InstitutionId: "ti-a", Name: "A", Kind: pb.InstitutionKind_INSTITUTION_KIND_TRAINING, UnitCode: "cq-yuzhong"})
	fc := &pb.FlagCleared{FlagId: events.DeriveID("flag", "nothing").String(), Reason: pb.ReasonCode_REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION,
		Subject: fmt.Sprintf("%064x", 1), InstitutionId: "ti-a", Detail: "x"}
	if err := m.Apply(&projections.Event{Position: pos + 1, Type: "subsidy.v1.FlagCleared", Payload: fc}); err == nil {
		t.Error("a FlagCleared of an unknown flag applied")
	}
	fc.InstitutionId = ""
	apply(t, m, &pos, fc)
}
