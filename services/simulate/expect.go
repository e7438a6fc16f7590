package simulate

import (
	"fmt"
	"sort"
	"strings"

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
	ByOccupation            map[string]Counts
	ByUnit                  map[string]Counts
}

// Expect computes the expectation of a programme's trainees' profiles.
func (p *Programme) Expect(profiles []Profile) Expectation {
	e := Expectation{Year: p.cfg.Year, ByOccupation: map[string]Counts{}, ByUnit: map[string]Counts{}}
	shared := map[string]int{}
	for _, pr := range profiles {
		if pr.Revoked {
			e.Revoked++
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
		if n >= 3 {
			e.SharedAccounts++
		}
	}
	return e
}

// String is the printable expectation (ledgerctl simulate prints it).
func (e Expectation) String() string {
	var b strings.Builder
	line := func(name string, c Counts) {
		fmt.Fprintf(&b, "  %-28s enrolled %6d  trained %6d  certified %6d  subsidised %6d  ¥%12.2f\n",
			name, c.Enrolled, c.Trained, c.Certified, c.Subsidised, float64(c.SubsidisedFen)/100)
	}
	fmt.Fprintf(&b, "expected on the dashboard for %d (and %d revoked certificates with clawbacks, %d shared payee accounts flagged):\n",
		e.Year, e.Revoked, e.SharedAccounts)
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
