package simulate

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

func testKeyer(t *testing.T) *person.Keyer {
	t.Helper()
	k, err := person.NewKeyer([]byte("simulate test key, not a real one, 32+ bytes"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func profilesOf(p *Programme) []Profile {
	out := make([]Profile, p.Trainees())
	for i := range out {
		_, out[i] = p.Trainee(i)
	}
	return out
}

// TestCertificateSpikePlanted checks the planted spike under the default
// rule set: ordinary business first, then one month in which one
// evaluation institution certifies a cohort of extra trainees, well above
// rule 16's threshold, and no spike without the cohort.
func TestCertificateSpikePlanted(t *testing.T) {
	rs := rules.DefaultRuleSet()
	for _, tc := range []struct {
		seed     uint64
		trainees int
	}{{9, 400}, {1, 100}, {3, 3500}, {5, 0}} {
		t.Run(fmt.Sprintf("seed %d, %d trainees", tc.seed, tc.trainees), func(t *testing.T) {
			p, err := New(Config{Seed: tc.seed, Year: 2025, Trainees: tc.trainees, Keyer: testKeyer(t), Officials: true, Violations: true})
			if err != nil {
				t.Fatal(err)
			}
			sp := p.Spike()
			if sp == nil {
				t.Fatal("Spike() = nil with Violations")
			}
			t.Logf("planted: %s, %d-%02d, %d certificates before in the rule set's window, %d ordinary that month, cohort %d", sp.Institution, sp.Year, int(sp.Month), sp.History, sp.Ordinary, sp.Cohort)
			if p.Trainees() != tc.trainees+sp.Cohort {
				t.Errorf("Trainees() = %d; want %d + cohort %d", p.Trainees(), tc.trainees, sp.Cohort)
			}
			profiles := profilesOf(p)
			ordinary := 0
			first := refdata.D(2025, sp.Month, 1)
			for _, pr := range profiles[:tc.trainees] {
				if pr.Cohort {
					t.Fatalf("ordinary trainee %d is marked as the cohort's", pr.Index)
				}
				if pr.Certified && pr.Evaluation == sp.Institution && pr.CertifiedOn < first {
					ordinary++
				}
			}
			if tc.trainees >= 400 && ordinary == 0 {
				t.Errorf("%s certified no ordinary trainee before %s: the spike has no history", sp.Institution, first)
			}
			for _, pr := range profiles[tc.trainees:] {
				switch {
				case !pr.Cohort:
					t.Fatalf("cohort trainee %d is not marked as such", pr.Index)
				case !pr.Certified || pr.Evaluation != sp.Institution || pr.CertifiedOn.Year() != 2025 || pr.CertifiedOn.Month() != sp.Month:
					t.Fatalf("cohort trainee %d: certified %t by %s on %s; want by %s in %d-%02d", pr.Index, pr.Certified, pr.Evaluation, pr.CertifiedOn, sp.Institution, 2025, sp.Month)
				case pr.Qual.Occupation != sp.Occupation || !pr.FirstPass || pr.CompletedOn == 0 || !(pr.CompletedOn < pr.FirstAttempt && pr.FirstAttempt < pr.CertifiedOn):
					t.Fatalf("cohort trainee %d: %+v", pr.Index, pr)
				}
			}
			e := p.Expect(profiles)
			if len(e.CertificateSpikes) != 1 {
				t.Fatalf("Expect().CertificateSpikes = %+v; want the planted one", e.CertificateSpikes)
			}
			got := e.CertificateSpikes[0]
			if got.Institution != sp.Institution || got.Year != 2025 || got.Month != sp.Month || got.Certificates != sp.Ordinary+sp.Cohort || got.History != sp.History {
				t.Errorf("Expect() spike = %+v; planted %+v", got, *sp)
			}
			// Well above the threshold, not just past it.
			threshold := max(rs.CertificateSpikeMinimum, rs.CertificateSpikeFactor*got.History/rs.CertificateSpikeMonths)
			if got.Certificates < threshold+threshold/10 {
				t.Errorf("spike of %d certificates; the threshold is %d", got.Certificates, threshold)
			}
			if e.Totals.Certified < int64(sp.Cohort) || e.Totals.Enrolled != countEnrolled(profiles) {
				t.Errorf("Expect().Totals = %+v: the cohort is not counted", e.Totals)
			}
			if s := e.String(); !strings.Contains(s, fmt.Sprintf("certificate spike: %s issued %d certificates in 2025-%02d", sp.Institution, got.Certificates, int(sp.Month))) {
				t.Errorf("Expectation.String() does not name the spike:\n%s", s)
			}
			if spikes := p.Expect(profiles[:tc.trainees]).CertificateSpikes; len(spikes) != 0 {
				t.Errorf("without the cohort, Expect().CertificateSpikes = %+v; want none", spikes)
			}
		})
	}
}

func countEnrolled(profiles []Profile) int64 {
	var n int64
	for _, pr := range profiles {
		if pr.Category != "untrainable" {
			n++
		}
	}
	return n
}

// TestCertificateSpikeDeterministic: the same seed plants the same spike,
// fact for fact; without Violations there is none.
func TestCertificateSpikeDeterministic(t *testing.T) {
	k := testKeyer(t)
	facts := func(cfg Config) [][]byte {
		p, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		for i := range p.Trainees() {
			fs, _ := p.Trainee(i)
			for _, f := range fs {
				b, err := proto.MarshalOptions{Deterministic: true}.Marshal(f.Msg)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, append([]byte(f.MsgID+" "), b...))
			}
		}
		return out
	}
	cfg := Config{Seed: 12, Year: 2026, Trainees: 300, Keyer: k, Officials: true, Violations: true}
	a, b := facts(cfg), facts(cfg)
	if len(a) != len(b) {
		t.Fatalf("%d facts, then %d", len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("fact %d differs between two runs of one seed", i)
		}
	}
	this, _ := New(cfg)
	plain, _ := New(Config{Seed: 12, Year: 2026, Trainees: 300, Keyer: k, Officials: true})
	if plain.Spike() != nil || plain.Trainees() != 300 {
		t.Errorf("without Violations: Spike() = %+v, Trainees() = %d", plain.Spike(), plain.Trainees())
	}
	// The ordinary trainees are the same with or without the violations
	// (but for a revoked certificate, a shared account or a late
	// completion).
	for i := range 300 {
		_, a := plain.Trainee(i)
		_, b := this.Trainee(i)
		b.Revoked, b.SharedAccount, b.LateCompletion = false, "", false
		if a != b {
			t.Fatalf("trainee %d with Violations: %+v; without: %+v", i, b, a)
		}
	}
}

// TestSpikeMonths checks the expectation's certificate spike test against
// rule 16's definition (count > minimum and count > factor × the mean of
// the months before), at its edges, under the default rule set.
func TestSpikeMonths(t *testing.T) {
	p, err := New(Config{Seed: 1, Trainees: 1, Keyer: testKeyer(t)})
	if err != nil {
		t.Fatal(err)
	}
	cert := func(inst string, m time.Month, n int) []Profile {
		out := make([]Profile, n)
		for i := range out {
			out[i] = Profile{Certified: true, Evaluation: inst, CertifiedOn: refdata.D(2025, m, 1+i%28)}
		}
		return out
	}
	history := func(inst string, perMonth int) []Profile {
		var out []Profile
		for m := time.March; m <= time.August; m++ {
			out = append(out, cert(inst, m, perMonth)...)
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		profiles []Profile
		want     []SpikeMonth
	}{
		{"minimum, no history", cert("E1", time.September, 200), nil},
		{"minimum + 1, no history", cert("E1", time.September, 201),
			[]SpikeMonth{{"E1", 2025, time.September, 201, 0, 6}}},
		{"factor × mean is 300", append(history("E1", 60), cert("E1", time.September, 300)...), nil},
		{"factor × mean is 300, 301", append(history("E1", 60), cert("E1", time.September, 301)...),
			[]SpikeMonth{{"E1", 2025, time.September, 301, 360, 6}}},
		{"history beyond six months does not count", append(cert("E1", time.February, 500), cert("E1", time.September, 201)...),
			[]SpikeMonth{{"E1", 2025, time.February, 500, 0, 6}, {"E1", 2025, time.September, 201, 0, 6}}},
		{"across the year end", append(cert("E1", time.December, 30), Profile{Certified: true, Evaluation: "E1", CertifiedOn: refdata.D(2026, time.January, 5)}),
			nil},
		{"another institution's history does not count", append(history("E2", 60), cert("E1", time.September, 250)...),
			[]SpikeMonth{{"E1", 2025, time.September, 250, 0, 6}}},
		{"uncertified profiles do not count", append(cert("E1", time.September, 201), Profile{Evaluation: "E1", CertifiedOn: refdata.D(2025, time.August, 1)}),
			[]SpikeMonth{{"E1", 2025, time.September, 201, 0, 6}}},
	} {
		got := p.spikeMonths(tc.profiles)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: spikeMonths = %+v; want %+v", tc.name, got, tc.want)
		}
	}
}

// TestCohortFacts checks the cohort trainee's facts as published: the
// certificate names the spike's institution and month.
func TestCohortFacts(t *testing.T) {
	p, err := New(Config{Seed: 2, Year: 2025, Trainees: 50, Keyer: testKeyer(t), Officials: true, Violations: true})
	if err != nil {
		t.Fatal(err)
	}
	sp := p.Spike()
	fs, pr := p.Trainee(50)
	var cert *subsidyv1.CertificateIssued
	for _, f := range fs {
		if c, ok := f.Msg.(*subsidyv1.CertificateIssued); ok {
			cert = c
		}
	}
	if cert == nil {
		t.Fatalf("cohort trainee 50 (%+v) has no certificate", pr)
	}
	if cert.GetEvaluationInstitutionId() != sp.Institution || time.Month(cert.GetIssuedOn().GetMonth()) != sp.Month {
		t.Errorf("cohort certificate %v; want %s in %s", cert, sp.Institution, sp.Month)
	}
}
