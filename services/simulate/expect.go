package simulate

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cqhrss/subsidyledger/events/refdata"
)

// Counts is what the quota dashboard should show for a set of trainees.
type Counts struct {
	Enrolled, Trained, Certified, Subsidised int64
	SubsidisedFen                            int64
	FirstAttempts, FirstAttemptPasses        int64
}

func (c *Counts) add(p Profile) {
	if p.Category == "untrainable" {
		return // the ledger refuses the enrolment (rule 2)
	}
	c.Enrolled++
	if p.CompletedOn != 0 {
		c.Trained++
	}
	if p.FirstAttempt != 0 {
		c.FirstAttempts++
		if p.FirstPass {
			c.FirstAttemptPasses++
		}
	}
	if p.Certified {
		c.Certified++
	}
	if p.Subsidised {
		c.Subsidised++
		c.SubsidisedFen += p.Amount
	}
}

// Expectation is what the simulator expects the ledger's dashboard to show
// after ingesting its trainees: totals, by occupation (slug) and by unit.
type Expectation struct {
	Year   int32
	Totals Counts
	// Revoked certificates (each raises a clawback) and shared accounts
	// (each flagged once three trainees were paid into it).
	Revoked, SharedAccounts int
	// ClearedFlags are the ASSESSMENT_WITHOUT_COMPLETION flags of the
	// assessments of trainees whose completion came late: each is cleared
	// when it comes, so none stays open.
	ClearedFlags int
	// CertificateSpikes are the months in which an evaluation institution's
	// certificates pass rule 16's spike threshold, judged on all of the
	// profiles' certificates: each must be flagged. (A ledger that records
	// a month's certificates before those of the months before it may flag
	// more months than these, but only months with more certificates than
	// the rule set's minimum.)
	CertificateSpikes []SpikeMonth
	ByOccupation      map[string]Counts
	ByUnit            map[string]Counts
}

// SpikeMonth is a month in which an evaluation institution issued more
// certificates than max(minimum, factor × its monthly mean over the months
// before).
type SpikeMonth struct {
	Institution  string
	Year         int
	Month        time.Month
	Certificates int
	// History is the institution's certificates in the HistoryMonths
	// (the rule set's CertificateSpikeMonths) months before.
	History, HistoryMonths int
}

// monthOf numbers the calendar months: January of year 0 is 0.
func monthOf(d refdata.Date) int { return d.Year()*12 + int(d.Month()) - 1 }

// certificateMonths counts the certificates of profiles by evaluation
// institution and month of issue (monthOf).
func certificateMonths(profiles []Profile) map[string]map[int]int {
	out := map[string]map[int]int{}
	for _, pr := range profiles {
		if !pr.Certified {
			continue
		}
		m := out[pr.Evaluation]
		if m == nil {
			m = map[int]int{}
			out[pr.Evaluation] = m
		}
		m[monthOf(pr.CertifiedOn)]++
	}
	return out
}

// Expect computes the expectation of a programme's trainees' profiles.
func (p *Programme) Expect(profiles []Profile) Expectation {
	e := Expectation{Year: p.cfg.Year, ByOccupation: map[string]Counts{}, ByUnit: map[string]Counts{}}
	shared := map[string]int{}
	for _, pr := range profiles {
		if pr.Revoked {
			e.Revoked++
		}
		if pr.LateCompletion {
			e.ClearedFlags += pr.Assessments
		}
		if pr.SharedAccount != "" {
			shared[pr.SharedAccount]++
		}
		e.Totals.add(pr)
		occ, _ := refdata.OccupationOf(pr.Qual.Occupation)
		c := e.ByOccupation[occ.Slug]
		c.add(pr)
		e.ByOccupation[occ.Slug] = c
		u := e.ByUnit[pr.Unit]
		u.add(pr)
		e.ByUnit[pr.Unit] = u
	}
	for _, n := range shared {
		if n >= p.rs.SharedAccountThreshold {
			e.SharedAccounts++
		}
	}
	e.CertificateSpikes = p.spikeMonths(profiles)
	return e
}

// spikeMonths applies rule 16's certificate spike test, as the rule set
// defines it, to the certificates of profiles: a month is a spike when its
// count c > CertificateSpikeMinimum and c × CertificateSpikeMonths >
// CertificateSpikeFactor × the count of the CertificateSpikeMonths months
// before.
func (p *Programme) spikeMonths(profiles []Profile) []SpikeMonth {
	var out []SpikeMonth
	for inst, months := range certificateMonths(profiles) {
		for m, c := range months {
			if c <= p.rs.CertificateSpikeMinimum {
				continue
			}
			history := 0
			for k := 1; k <= p.rs.CertificateSpikeMonths; k++ {
				history += months[m-k]
			}
			if c*p.rs.CertificateSpikeMonths > p.rs.CertificateSpikeFactor*history {
				out = append(out, SpikeMonth{Institution: inst, Year: m / 12, Month: time.Month(m%12 + 1), Certificates: c,
					History: history, HistoryMonths: p.rs.CertificateSpikeMonths})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Institution != b.Institution {
			return a.Institution < b.Institution
		}
		return a.Year*12+int(a.Month) < b.Year*12+int(b.Month)
	})
	return out
}

// String is the printable expectation (ledgerctl simulate prints it).
func (e Expectation) String() string {
	var b strings.Builder
	line := func(name string, c Counts) {
		fmt.Fprintf(&b, "  %-28s enrolled %6d  trained %6d  certified %6d  subsidised %6d  ¥%12.2f\n",
			name, c.Enrolled, c.Trained, c.Certified, c.Subsidised, float64(c.SubsidisedFen)/100)
	}
	fmt.Fprintf(&b, "expected on the dashboard for %d (and %d revoked certificates with clawbacks, %d shared payee accounts flagged, %d certificate spikes flagged, %d flags of late completions cleared):\n",
		e.Year, e.Revoked, e.SharedAccounts, len(e.CertificateSpikes), e.ClearedFlags)
	for _, s := range e.CertificateSpikes {
		fmt.Fprintf(&b, "  certificate spike: %s issued %d certificates in %04d-%02d, %d in the %d months before\n",
			s.Institution, s.Certificates, s.Year, int(s.Month), s.History, s.HistoryMonths)
	}
	line("all", e.Totals)
	keys := make([]string, 0, len(e.ByOccupation))
	for k := range e.ByOccupation {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		line(k, e.ByOccupation[k])
	}
	return b.String()
}
