package trainee_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/internal/deepdiff"
	"github.com/cqhrss/subsidyledger/projections/internal/fold"
	"github.com/cqhrss/subsidyledger/projections/trainee"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// TestDenialSupersededBySecondChance: evidence recorded after two
// certificates denied for want of it derives an entitlement for each (the
// rules' second chance). Their denials stay in the trainee's history, each
// naming the entitlement that superseded it, and no longer count among the
// summary's denials; a denial of another certificate still counts. A
// snapshot keeps the marks.
func TestDenialSupersededBySecondChance(t *testing.T) {
	m := trainee.New()
	apply := (&fold.Log{T: t, P: m}).Apply
	k := fmt.Sprintf("%064x", 7)
	bd := refdata.Qualification{Occupation: pb.Occupation_OCCUPATION_BIG_DATA, Level: pb.Level_LEVEL_JUNIOR}
	cc := refdata.Qualification{Occupation: pb.Occupation_OCCUPATION_CLOUD_COMPUTING, Level: pb.Level_LEVEL_JUNIOR}
	apply(&pb.TraineeRegistered{PersonKey: k, UnitCode: "cq-yuzhong", Education: pb.Education_EDUCATION_ASSOCIATE})
	for i, q := range []refdata.Qualification{bd, cc} {
		for n := uint32(1); n <= 2; n++ {
			as := fmt.Sprintf("as-%d-%d", i, n)
			apply(&pb.AssessmentRecorded{AssessmentId: as, PersonKey: k, EvaluationInstitutionId: "ev", Qualification: q.Proto(), Attempt: n,
				TheoryScore: 80, PracticalScore: 80, AssessedOn: fold.Date("2025-06-01")},
				&pb.CertificateIssued{CertificateId: "cert-" + as, PersonKey: k, EvaluationInstitutionId: "ev", Qualification: q.Proto(),
					AssessmentId: as, IssuedOn: fold.Date("2025-06-10")})
		}
	}
	apply(
		&pb.SubsidyDenied{PersonKey: k, Qualification: bd.Proto(), CertificateId: "cert-as-0-1", Reason: pb.ReasonCode_REASON_CODE_NO_ELIGIBILITY_EVIDENCE},
		&pb.SubsidyDenied{PersonKey: k, Qualification: bd.Proto(), CertificateId: "cert-as-0-2", Reason: pb.ReasonCode_REASON_CODE_NOT_FIRST_ATTEMPT},
		&pb.SubsidyDenied{PersonKey: k, Qualification: cc.Proto(), CertificateId: "cert-as-1-1", Reason: pb.ReasonCode_REASON_CODE_NO_ELIGIBILITY_EVIDENCE},
		&pb.EligibilityEvidenceRecorded{EvidenceId: "e1", PersonKey: k, Category: pb.EligibilityCategory_ELIGIBILITY_CATEGORY_ENTERPRISE_EMPLOYEE, Confirmed: true},
		&pb.SubsidyEntitled{EntitlementId: rules.EntitlementID(k, bd), PersonKey: k, Qualification: bd.Proto(), CertificateId: "cert-as-0-1",
			AmountFen: 80000, Year: 2025, UnitCode: "cq-yuzhong", AssessedOn: fold.Date("2025-06-01")},
		&pb.SubsidyEntitled{EntitlementId: rules.EntitlementID(k, cc), PersonKey: k, Qualification: cc.Proto(), CertificateId: "cert-as-1-1",
			AmountFen: 90000, Year: 2025, UnitCode: "cq-yuzhong", AssessedOn: fold.Date("2025-06-01")},
	)
	want := map[string]string{
		"cert-as-0-1": rules.EntitlementID(k, bd),
		"cert-as-0-2": "",
		"cert-as-1-1": rules.EntitlementID(k, cc),
	}
	check := func(what string, m *trainee.Model) {
		t.Helper()
		st, ok := m.Get(k)
		if !ok {
			t.Fatalf("%s: no status for %s", what, k)
		}
		// As the API shows it (JSON).
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		var shown struct {
			Denials []struct {
				CertificateID string `json:"certificate_id"`
				SupersededBy  string `json:"superseded_by"`
			} `json:"denials"`
		}
		if err := json.Unmarshal(b, &shown); err != nil {
			t.Fatal(err)
		}
		if len(shown.Denials) != len(want) {
			t.Fatalf("%s: %d denials; want %d (a superseded denial stays in the history)", what, len(shown.Denials), len(want))
		}
		for _, d := range shown.Denials {
			if d.SupersededBy != want[d.CertificateID] {
				t.Errorf("%s: denial of %s superseded_by %q; want %q", what, d.CertificateID, d.SupersededBy, want[d.CertificateID])
			}
		}
		page, _ := m.Page(0, 10)
		if len(page) != 1 || page[0].Denials != 1 || page[0].Entitlements != 2 {
			t.Errorf("%s: summary %+v; want 1 denial, 2 entitlements", what, page)
		}
	}
	check("live", m)
	restored := roundTrip(t, m)
	check("restored", restored)
}

// TestFlagCleared: a FlagCleared closes the person's flag: the status
// still lists it, cleared, with the clearing's position; the other
// trainee's flag stays open. A snapshot keeps the clearing.
func TestFlagCleared(t *testing.T) {
	h := fold.NewLateCompletion(t)
	m := trainee.New()
	fold.ApplyAll(t, m, h.Events)
	check := func(what string, m *trainee.Model) {
		t.Helper()
		for _, c := range []struct {
			key, flag, status string
			at                uint64
		}{{h.ClearedKey, h.Cleared, "cleared", uint64(h.ClearingAt.Position)}, {h.OpenKey, h.Open, "open", 0}} {
			st, ok := m.Get(c.key)
			if !ok {
				t.Fatalf("%s: no status for %s", what, c.key)
			}
			if len(st.Flags) != 1 || st.Flags[0].FlagID != c.flag || st.Flags[0].Status != c.status || st.Flags[0].ClearedPosition != c.at ||
				st.Flags[0].InstitutionID != "ti-digital" {
				t.Errorf("%s: flags of %s: %+v; want %s %s at %d", what, c.key[56:], st.Flags, c.flag, c.status, c.at)
			}
			// As the API shows it, and as the institution sees it.
			b, err := json.Marshal(st.ForInstitution("ti-digital").Flags)
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf(`"status":%q`, c.status); !strings.Contains(string(b), want) ||
				strings.Contains(string(b), "cleared_position") != (c.at != 0) {
				t.Errorf("%s: flags of %s as JSON: %s; want %s and a cleared_position only when cleared", what, c.key[56:], b, want)
			}
		}
	}
	check("live", m)
	back := roundTrip(t, m)
	if d := deepdiff.Diff(m, back); d != "" {
		t.Errorf("restored differs at %s", d)
	}
	check("restored", back)
}

// TestFlagClearedOfAnUnknownFlag: a FlagCleared about a person not
// registered is ignored, as its ViolationFlagged was; one of a registered
// person's flag that was never raised is a broken log: Apply fails.
func TestFlagClearedOfAnUnknownFlag(t *testing.T) {
	m := trainee.New()
	l := &fold.Log{T: t, P: m}
	k := fmt.Sprintf("%064x", 7)
	fc := &pb.FlagCleared{FlagId: events.DeriveID("flag", "nothing").String(), Reason: pb.ReasonCode_REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION,
		Subject: k, InstitutionId: "ti-a", Detail: "x"}
	l.Apply(fc)
	l.Apply(&pb.TraineeRegistered{PersonKey: k, UnitCode: "cq-yuzhong", Education: pb.Education_EDUCATION_ASSOCIATE})
	if err := m.Apply(&projections.Event{Position: l.Pos + 1, Type: "subsidy.v1.FlagCleared", Payload: fc}); err == nil {
		t.Error("a FlagCleared of an unknown flag of a registered trainee applied")
	}
}

// TestDenialRevised: a denial decided again on a later fact that fails on
// another rule (here: the training's completion comes late, and the person
// has no eligibility evidence) keeps its recorded reason and shows the
// revised one beside it, with its detail and position; evidence then earns
// the entitlement, which supersedes the denial. A snapshot keeps the
// revision.
func TestDenialRevised(t *testing.T) {
	r := fold.NewRules(t)
	q := r.Reference()
	k := fmt.Sprintf("%064x", 7)
	r.Decide(&pb.TraineeRegistered{PersonKey: k, UnitCode: "cq-yuzhong", Education: pb.Education_EDUCATION_ASSOCIATE, EnterpriseEmployee: true})
	r.Decide(&pb.Enrolled{EnrolmentId: "enr-7", PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: q.Proto(), EnrolledOn: fold.Date("2025-03-01")})
	r.Decide(&pb.AssessmentRecorded{AssessmentId: "as-7", PersonKey: k, EvaluationInstitutionId: "ev-cqpe", Qualification: q.Proto(), Attempt: 1,
		TheoryScore: 80, PracticalScore: 80, AssessedOn: fold.Date("2025-06-20")})
	r.Decide(&pb.CertificateIssued{CertificateId: "cert-7", PersonKey: k, EvaluationInstitutionId: "ev-cqpe", Qualification: q.Proto(), AssessmentId: "as-7", IssuedOn: fold.Date("2025-06-30")})
	d := r.Decide(&pb.TrainingCompleted{EnrolmentId: "enr-7", PersonKey: k, TrainingInstitutionId: "ti-digital", Qualification: q.Proto(), CompletedOn: fold.Date("2025-06-15")})
	if len(d) != 2 || d[0].Type() != "subsidy.v1.SubsidyDenialRevised" {
		t.Fatalf("the late completion derived %v; want the denial's revision (and the flag's clearing)", d)
	}
	revisedAt := uint64(len(r.Events) - 1)
	m := trainee.New()
	fold.ApplyAll(t, m, r.Events)
	check := func(what string, m *trainee.Model, superseded bool) {
		t.Helper()
		st, _ := m.Get(k)
		if len(st.Denials) != 1 {
			t.Fatalf("%s: denials %+v; want one", what, st.Denials)
		}
		dn := st.Denials[0]
		if dn.Reason.Code != "REASON_CODE_TRAINING_NOT_COMPLETED" || dn.Revised == nil || dn.Revised.Reason.Code != "REASON_CODE_NO_ELIGIBILITY_EVIDENCE" ||
			dn.Revised.Decision.Position != revisedAt || dn.Revised.Decision.RuleSetVersion != "2026.6" || dn.Revised.Detail == "" || (dn.SupersededBy != "") != superseded {
			t.Errorf("%s: denial %+v (revised %+v); want TRAINING_NOT_COMPLETED revised to NO_ELIGIBILITY_EVIDENCE at %d, superseded %v", what, dn, dn.Revised, revisedAt, superseded)
		}
	}
	check("live", m, false)
	// The institution sees the reasons, and the denial's detail (rule 3:
	// the training), but not the revision's, which is about the person's
	// eligibility evidence (rule 4).
	st, _ := m.Get(k)
	if d := st.ForInstitution("ti-digital").Denials; len(d) != 1 || d[0].Detail != st.Denials[0].Detail || d[0].Revised == nil ||
		d[0].Revised.Reason != st.Denials[0].Revised.Reason || d[0].Revised.Detail == st.Denials[0].Revised.Detail || st.Denials[0].Revised.Detail == "" {
		t.Errorf("ti-digital sees denials %+v", d)
	}
	back := roundTrip(t, m)
	check("restored", back, false)
	n := len(r.Events)
	if d := r.Decide(&pb.EligibilityEvidenceRecorded{EvidenceId: "ev-7", PersonKey: k, Category: pb.EligibilityCategory_ELIGIBILITY_CATEGORY_ENTERPRISE_EMPLOYEE,
		Source: "社保", SnapshotAt: timestamppb.New(time.Date(2025, 7, 5, 0, 0, 0, 0, time.UTC)), Confirmed: true, InsuredFrom: fold.Date("2020-01-01")}); len(d) != 1 {
		t.Fatalf("the evidence derived %v; want the entitlement", d)
	}
	fold.ApplyAll(t, back, r.Events[n:])
	check("entitled", back, true)
}

// roundTrip returns the model a snapshot of m restores.
func roundTrip(t *testing.T, m *trainee.Model) *trainee.Model {
	t.Helper()
	var buf bytes.Buffer
	if err := m.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	back := trainee.New()
	if err := back.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	return back
}
