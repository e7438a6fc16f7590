package readmodels_test

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/internal/deepdiff"
	"github.com/cqhrss/subsidyledger/projections/internal/fold"
	"github.com/cqhrss/subsidyledger/projections/quota"
	"github.com/cqhrss/subsidyledger/projections/scorecard"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// TestCorrectedCertificateCountsOnce: the rules let an evaluation
// institution issue a corrected certificate on an assessment while the
// first is in force (they deny its subsidy: one certification still). The
// quota dashboard (measure certified) and the institution's scorecard
// count one certification, not two documents (found by review: both
// counted 2); revoking the first while the corrected one stands changes
// no count; revoking the corrected one too ends the certification, and the
// revocation counts in the month the certification was counted (June),
// not in that of the last certificate issued (July). A certificate issued
// after both were revoked certifies again. Models restored from a snapshot
// at each step, then fed the rest, answer as the live ones.
func TestCorrectedCertificateCountsOnce(t *testing.T) {
	r := fold.NewRules(t)
	q := r.Reference()
	d := fold.Date
	k := fmt.Sprintf("%064x", 21)
	r.Assessed(k, q, false)
	issue := func(id, on string) []string {
		return types(r.Decide(&pb.CertificateIssued{CertificateId: id, PersonKey: k, EvaluationInstitutionId: "ev-cqpe", Qualification: q.Proto(), AssessmentId: "as-1", IssuedOn: d(on)}))
	}
	revoke := func(id, on string) {
		r.Decide(&pb.CertificateRevoked{CertificateId: id, PersonKey: k, Qualification: q.Proto(), Reason: "更正", RevokedOn: d(on)})
	}

	// want is what the models show after a step: the certifications and
	// revocations by month (1-12) of 2025.
	type want struct {
		certified, revoked map[int]int64
	}
	qm, sc := quota.New(), scorecard.New()
	type pair struct{ q, sc projections.Projection }
	models := map[string]pair{"live": {qm, sc}}
	applied := 0
	step := func(what string, w want, scCerts int64) {
		t.Helper()
		evs := r.Events[applied:]
		applied = len(r.Events)
		for _, p := range models {
			fold.ApplyAll(t, p.q, evs)
			fold.ApplyAll(t, p.sc, evs)
		}
		var sum, revoked int64
		for _, n := range w.certified {
			sum += n
		}
		for _, n := range w.revoked {
			revoked += n
		}
		for name, p := range models {
			qv, sv := p.q.(*quota.Model), p.sc.(*scorecard.Model)
			db := qv.Dashboard(2025, quota.Filter{Measure: quota.MeasureCertified})
			if db.Progress != sum-revoked || db.Totals.Certified-db.Totals.Revoked != sum-revoked || db.Totals.Certified != sum || db.Totals.Revoked != revoked {
				t.Errorf("%s, %s: quota progress %d, certified %d, revoked %d; want progress %d, certified %d, revoked %d",
					what, name, db.Progress, db.Totals.Certified, db.Totals.Revoked, sum-revoked, sum, revoked)
			}
			// The chart's line ends the year at the progress shown
			// beside it (it ran gross of revocations).
			if dec := db.Months[11]; dec.CumulativeProgress != db.Progress {
				t.Errorf("%s, %s: quota December cumulative progress %d; progress %d", what, name, dec.CumulativeProgress, db.Progress)
			}
			var cum int64
			for _, mo := range db.Months {
				cum += w.certified[mo.Month]
				if mo.Certified != w.certified[mo.Month] || mo.Revoked != w.revoked[mo.Month] || mo.CumulativeCertified != cum {
					t.Errorf("%s, %s: quota month %d: certified %d, revoked %d, cumulative %d; want %d, %d, %d",
						what, name, mo.Month, mo.Certified, mo.Revoked, mo.CumulativeCertified, w.certified[mo.Month], w.revoked[mo.Month], cum)
				}
			}
			for _, u := range db.ByUnit {
				if u.UnitCode == "cq-yuzhong" && (u.Certified != sum || u.Revoked != revoked) {
					t.Errorf("%s, %s: quota unit %s: certified %d, revoked %d; want %d, %d", what, name, u.UnitCode, u.Certified, u.Revoked, sum, revoked)
				}
			}
			for _, l := range db.ByLevel {
				if l.Level == "junior" && l.Certified != sum {
					t.Errorf("%s, %s: quota level %s: certified %d; want %d", what, name, l.Level, l.Certified, sum)
				}
			}
			card, ok := sv.Get("ev-cqpe")
			if !ok || card.Certificates != scCerts {
				t.Errorf("%s, %s: scorecard ev-cqpe certificates %d; want %d", what, name, card.Certificates, scCerts)
			}
			for _, row := range card.ByQualification {
				if row.Certificates != scCerts {
					t.Errorf("%s, %s: scorecard ev-cqpe %v certificates %d; want %d", what, name, row.Qualification, row.Certificates, scCerts)
				}
			}
		}
		// Live and restored agree, in their state and what they answer;
		// a model restored now is fed the rest with the others.
		back := pair{restored(t, qm, quota.New()), restored(t, sc, scorecard.New())}
		if d := deepdiff.Diff(qm, back.q); d != "" {
			t.Errorf("%s: restored quota differs at %s", what, d)
		}
		if d := deepdiff.Diff(sc, back.sc); d != "" {
			t.Errorf("%s: restored scorecard differs at %s", what, d)
		}
		for name, p := range models {
			if a, b := qm.Dashboard(2025, quota.Filter{Measure: quota.MeasureCertified}), p.q.(*quota.Model).Dashboard(2025, quota.Filter{Measure: quota.MeasureCertified}); !reflect.DeepEqual(a, b) {
				t.Errorf("%s: quota %s %+v; live %+v", what, name, b, a)
			}
			a, _ := sc.Get("ev-cqpe")
			if b, _ := p.sc.(*scorecard.Model).Get("ev-cqpe"); !reflect.DeepEqual(a, b) {
				t.Errorf("%s: scorecard %s %+v; live %+v", what, name, b, a)
			}
		}
		models["restored after "+what] = back
	}

	if got := issue("cert-1", "2025-06-10"); !reflect.DeepEqual(got, []string{"subsidy.v1.SubsidyEntitled"}) {
		t.Fatalf("the certificate derived %v; want the entitlement", got)
	}
	step("certified", want{certified: map[int]int64{6: 1}}, 1)
	if got := issue("cert-1-corrected", "2025-07-02"); !reflect.DeepEqual(got, []string{"subsidy.v1.SubsidyDenied"}) {
		t.Fatalf("the corrected certificate derived %v; want a denial", got)
	}
	step("corrected", want{certified: map[int]int64{6: 1}}, 1)
	revoke("cert-1", "2025-07-03")
	step("first revoked", want{certified: map[int]int64{6: 1}}, 1)
	revoke("cert-1-corrected", "2025-08-01")
	step("corrected revoked", want{certified: map[int]int64{6: 1}, revoked: map[int]int64{6: 1}}, 1)
	issue("cert-1-again", "2025-09-05")
	step("certified again", want{certified: map[int]int64{6: 1, 9: 1}, revoked: map[int]int64{6: 1}}, 2)
}

// types returns the types of the events of a decision (the fact's own
// included).
func types[E interface{ Type() string }](evs []E) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type())
	}
	return out
}

// restored returns into, restored from a snapshot of m.
func restored(t *testing.T, m, into projections.Projection) projections.Projection {
	t.Helper()
	var b bytes.Buffer
	if err := m.Snapshot(&b); err != nil {
		t.Fatal(err)
	}
	if err := into.Restore(&b); err != nil {
		t.Fatal(err)
	}
	return into
}
