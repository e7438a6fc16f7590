package fund

import (
	"sort"

	"github.com/cqhrss/subsidyledger/events"
)

// Balances are a fund's account balances, each on its normal side (a
// credit-normal account shows credits minus debits). Integer fen.
type Balances struct {
	Appropriation      int64 `json:"appropriation"`
	BudgetAvailable    int64 `json:"budget_available"`
	Committed          int64 `json:"committed"`
	Payable            int64 `json:"payable"`
	Paid               int64 `json:"paid"`
	HeldForBudget      int64 `json:"held_for_budget"`
	BudgetShortfall    int64 `json:"budget_shortfall"`
	ClawedBack         int64 `json:"clawed_back"`
	ClawbackReceivable int64 `json:"clawback_receivable"`
	Recovered          int64 `json:"recovered"`
	WrittenOff         int64 `json:"written_off"`
}

func (v vec) balances() Balances {
	return Balances{
		Appropriation: v[Appropriation], BudgetAvailable: -v[BudgetAvailable], Committed: -v[Committed],
		Payable: -v[Payable], Paid: -v[Paid], HeldForBudget: -v[HeldForBudget], BudgetShortfall: v[BudgetShortfall],
		ClawedBack: -v[ClawedBack], ClawbackReceivable: v[ClawbackReceivable], Recovered: v[Recovered], WrittenOff: v[WrittenOff],
	}
}

// Row is one fund (year and unit) of the ledger.
type Row struct {
	Year       int      `json:"year"`
	UnitCode   string   `json:"unit_code"`
	UnitName   string   `json:"unit_name"`
	Balances   Balances `json:"balances"`
	DebitsFen  int64    `json:"debits_fen"`
	CreditsFen int64    `json:"credits_fen"`
}

// TrialBalance totals every posting.
type TrialBalance struct {
	DebitsFen  int64 `json:"debits_fen"`
	CreditsFen int64 `json:"credits_fen"`
	Balanced   bool  `json:"balanced"`
}

// Ledger is the JSON form of the fund ledger (GET /v1/fund).
type Ledger struct {
	// View is "current" (abolished units rolled up into their successors)
	// or "recorded" (units as recorded on the events).
	View         string          `json:"view"`
	Position     events.Position `json:"position"`
	Funds        []Row           `json:"funds"`
	Years        []Row           `json:"years"`
	TrialBalance TrialBalance    `json:"trial_balance"`
	Accounts     []AccountInfo   `json:"accounts"`
}

// Filter narrows a ledger query: Year 0 is every year, Unit "" every unit
// (matched against the unit as shown in the view).
//
// Unit keeps one unit: in the recorded view its own funds and those of the
// units it succeeded, each under the unit recorded; in the current view,
// everything rolled up into it.
type Filter struct {
	View string
	Year int
	Unit string
}

// Ledger returns the balances by fund and by year.
func (m *Model) Ledger(f Filter) Ledger {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if f.View != "recorded" {
		f.View = "current"
	}
	type key struct {
		year int
		unit string
	}
	type acc struct {
		bal             vec
		debits, credits int64
	}
	rows := map[key]*acc{}
	years := map[int]*acc{}
	add := func(a *acc, fs *fundState) {
		for i := range a.bal {
			a.bal[i] += fs.bal[i]
		}
		a.debits += fs.debits
		a.credits += fs.credits
	}
	out := Ledger{View: f.View, Position: m.pos, Funds: []Row{}, Years: []Row{}, Accounts: Chart[:]}
	for i := range m.funds {
		fs := &m.funds[i]
		unit := m.strs.Str(fs.key.unit)
		if f.View == "current" {
			unit = m.units.Current(unit)
		}
		keep := f.Unit == "" || unit == f.Unit || (f.View == "recorded" && m.units.Current(unit) == f.Unit)
		if (f.Year != 0 && int(fs.key.year) != f.Year) || !keep {
			continue
		}
		k := key{int(fs.key.year), unit}
		if rows[k] == nil {
			rows[k] = &acc{}
		}
		add(rows[k], fs)
		if years[k.year] == nil {
			years[k.year] = &acc{}
		}
		add(years[k.year], fs)
		out.TrialBalance.DebitsFen += fs.debits
		out.TrialBalance.CreditsFen += fs.credits
	}
	for k, a := range rows {
		out.Funds = append(out.Funds, Row{Year: k.year, UnitCode: k.unit, UnitName: m.units.Name(k.unit), Balances: a.bal.balances(),
			DebitsFen: a.debits, CreditsFen: a.credits})
	}
	sort.Slice(out.Funds, func(i, j int) bool {
		a, b := out.Funds[i], out.Funds[j]
		if a.Year != b.Year {
			return a.Year < b.Year
		}
		return a.UnitCode < b.UnitCode
	})
	for y, a := range years {
		out.Years = append(out.Years, Row{Year: y, Balances: a.bal.balances(), DebitsFen: a.debits, CreditsFen: a.credits})
	}
	sort.Slice(out.Years, func(i, j int) bool { return out.Years[i].Year < out.Years[j].Year })
	out.TrialBalance.Balanced = out.TrialBalance.DebitsFen == out.TrialBalance.CreditsFen
	return out
}

// Journal returns up to n of the most recent entries, newest first; with
// unit set, only entries of funds whose current unit is unit.
func (m *Model) Journal(n int, unit string) []Entry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []Entry{}
	for s := m.seq; s > 0 && m.seq-s < uint64(len(m.journal)) && len(out) < n; s-- {
		p := &m.journal[(s-1)%JournalSize]
		if unit != "" && m.units.Current(m.strs.Str(m.funds[p.fund].key.unit)) != unit {
			continue
		}
		out = append(out, m.entry(p))
	}
	return out
}

// Position returns the position of the last event applied.
func (m *Model) Position() events.Position {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.pos
}

// Totals returns the debits and credits of every posting so far.
func (m *Model) Totals() (debits, credits int64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.debits, m.credits
}

// PostedAt returns the journal entries the event at pos made, if they are
// the latest (the change feed asks right after the event is applied).
func (m *Model) PostedAt(pos events.Position) []Entry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Entry
	for s := m.seq; s > 0 && m.seq-s < uint64(len(m.journal)); s-- {
		p := &m.journal[(s-1)%JournalSize]
		if p.pos != pos {
			break
		}
		out = append([]Entry{m.entry(p)}, out...)
	}
	return out
}
