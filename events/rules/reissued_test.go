package rules_test

import (
	"testing"

	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// TestReissuedCertificateSecondChance: a certificate issued again for an
// assessment while the first was in force (a corrected one), then the
// first revoked: evidence that comes after decides the corrected one again
// (免申即享), as it would the first (found by review: only the revoked
// first was looked at, and the trainee lost the subsidy); from
// BehaviourDatedHolds on, before which it was not, and a World restored
// from its snapshot knows the corrected certificate too.
func TestReissuedCertificateSecondChance(t *testing.T) {
	for _, c := range []struct {
		behaviour int
		entitled  bool
	}{{rules.BehaviourLateObjection, false}, {rules.BehaviourDatedHolds, true}} {
		rs := rules.DefaultRuleSet()
		rs.Behaviour = c.behaviour
		f := newFx(t, rs)
		k := f.person()
		f.trained(k, "ti-digital", bdJ)
		a := f.assessment(k, bdJ, 1, 80, 80, "2025-06-20")
		f.must(a)
		first := f.certificate(a, "2025-06-30")
		want(t, f.derived(first), "SubsidyDenied:REASON_CODE_NO_ELIGIBILITY_EVIDENCE")
		corrected := f.certificate(a, "2025-07-02")
		corrected.CertificateId = "cert-corrected"
		want(t, f.derived(corrected), "SubsidyDenied:REASON_CODE_NO_ELIGIBILITY_EVIDENCE")
		f.derived(&subsidyv1.CertificateRevoked{CertificateId: first.CertificateId, PersonKey: k, Qualification: bdJ.Proto(), Reason: "更正", RevokedOn: dt("2025-07-03")})
		w, err := restore(rs, snapshotOf(t, f.l.w))
		if err != nil {
			t.Fatal(err)
		}
		evidence := insured(k, "ev-late", "2020-01-01", "2025-08-01")
		for what, d := range map[string]func() []rules.Event{
			"live":     func() []rules.Event { return f.must(evidence).Derived() },
			"restored": func() []rules.Event { dec, _ := w.Decide(f.fact(evidence)); return dec.Derived() },
		} {
			evs := d()
			got := len(evs) > 0 && evs[0].Type() == "subsidy.v1.SubsidyEntitled" && evs[0].Payload.(*subsidyv1.SubsidyEntitled).GetCertificateId() == "cert-corrected"
			if got != c.entitled {
				t.Errorf("behaviour %d, %s: the evidence derived %s; want the corrected certificate entitled: %t", c.behaviour, what, types(evs), c.entitled)
			}
		}
	}
}
