package scorecard

import (
	"sort"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/projections/internal/rm"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// PassRate is a pass rate with its counts.
type PassRate struct {
	Attempts int64   `json:"attempts"`
	Passes   int64   `json:"passes"`
	Rate     float64 `json:"rate"`
}

func rate(n, p int32) PassRate {
	return PassRate{Attempts: int64(n), Passes: int64(p), Rate: rm.Rate(int64(p), int64(n))}
}

// QualificationRow is an institution's results for one qualification.
type QualificationRow struct {
	Qualification rm.Qualification `json:"qualification"`
	FirstAttempt  PassRate         `json:"first_attempt"`
	AllAttempts   PassRate         `json:"all_attempts"`
	Certificates  int64            `json:"certificates"`
}

// Advances summarises the fees an institution advanced.
type Advances struct {
	Count                int64 `json:"count"`
	Fen                  int64 `json:"fen"`
	OutstandingCount     int64 `json:"outstanding_count"`
	OutstandingFen       int64 `json:"outstanding_fen"`
	ReimbursedCount      int64 `json:"reimbursed_count"`
	ReimbursedFen        int64 `json:"reimbursed_fen"`
	NotReimbursableCount int64 `json:"not_reimbursable_count"`
	NotReimbursableFen   int64 `json:"not_reimbursable_fen"`
}

// Clawbacks summarises receivables raised against the institution.
type Clawbacks struct {
	Count          int64 `json:"count"`
	RaisedFen      int64 `json:"raised_fen"`
	RecoveredFen   int64 `json:"recovered_fen"`
	WrittenOffFen  int64 `json:"written_off_fen"`
	OutstandingFen int64 `json:"outstanding_fen"`
	// On its trainees' direct payments (not owed by the institution).
	TraineeCount int64 `json:"trainee_count"`
	TraineeFen   int64 `json:"trainee_fen"`
}

// Flag is a flag naming the institution. Status is "open", or "cleared"
// once a FlagCleared closed it, at ClearedPosition (GET
// /v1/audit/events/{position} shows why; GET /v1/anomalies?status=cleared
// too).
type Flag struct {
	FlagID          string           `json:"flag_id"`
	Reason          rm.Reason        `json:"reason"`
	Qualification   rm.Qualification `json:"qualification"`
	Detail          string           `json:"detail"`
	Position        uint64           `json:"position"`
	Status          string           `json:"status"`
	ClearedPosition uint64           `json:"cleared_position,omitempty"`
}

// WithoutDetails returns the card with the details of the flags withhold
// names withheld (a district's view of a flag about a trainee of another
// unit: the detail names the person's assessments and enrolments).
func (c Card) WithoutDetails(withhold map[string]bool) Card {
	if len(withhold) == 0 {
		return c
	}
	flags := make([]Flag, len(c.Flags))
	for i, f := range c.Flags {
		if withhold[f.FlagID] {
			f.Detail = ""
		}
		flags[i] = f
	}
	c.Flags = flags
	return c
}

// ForInstitution returns the card as the institution itself may see it:
// a concurrent-enrolment flag's recorded detail names the trainee's other
// institution and its enrolment, which it may not see.
func (c Card) ForInstitution() Card {
	flags := make([]Flag, len(c.Flags))
	for i, f := range c.Flags {
		f.Detail, _ = rm.FlagDetailForInstitution(f.Reason, f.Detail)
		flags[i] = f
	}
	c.Flags = flags
	return c
}

// HoldCount counts the active holds of one reason.
type HoldCount struct {
	Reason rm.Reason `json:"reason"`
	Count  int64     `json:"count"`
}

// Card is the JSON form of one institution (GET /v1/institutions/{id}).
type Card struct {
	InstitutionID   string             `json:"institution_id"`
	Name            string             `json:"name"`
	Kind            string             `json:"kind"`
	UnitCode        string             `json:"unit_code"`
	CurrentUnitCode string             `json:"current_unit_code"`
	UnitName        string             `json:"unit_name"`
	Registered      bool               `json:"registered"`
	Suspended       bool               `json:"suspended"`
	Blacklisted     bool               `json:"blacklisted"`
	Enrolments      int64              `json:"enrolments"`
	Completions     int64              `json:"completions"`
	Certificates    int64              `json:"certificates"`
	FirstAttempt    PassRate           `json:"first_attempt"`
	ByQualification []QualificationRow `json:"by_qualification"`
	Advances        Advances           `json:"advances"`
	Reimbursements  int64              `json:"reimbursements"`
	ReimbursedFen   int64              `json:"reimbursed_fen"`
	OffsetFen       int64              `json:"offset_fen"`
	Clawbacks       Clawbacks          `json:"clawbacks"`
	OpenFlags       int64              `json:"open_flags"` // Flags not cleared
	Flags           []Flag             `json:"flags"`      // open and cleared, in the order raised
	ActiveHolds     int64              `json:"active_holds"`
	Holds           []HoldCount        `json:"holds"`
	Position        events.Position    `json:"position"`
}

// Row is one institution of the list (GET /v1/institutions) and CSV.
type Row struct {
	InstitutionID       string  `json:"institution_id"`
	Name                string  `json:"name"`
	Kind                string  `json:"kind"`
	UnitCode            string  `json:"unit_code"`
	CurrentUnitCode     string  `json:"current_unit_code"`
	Suspended           bool    `json:"suspended"`
	Enrolments          int64   `json:"enrolments"`
	Completions         int64   `json:"completions"`
	Certificates        int64   `json:"certificates"`
	FirstAttempts       int64   `json:"first_attempts"`
	FirstAttemptPasses  int64   `json:"first_attempt_passes"`
	FirstAttemptRate    float64 `json:"first_attempt_pass_rate"`
	AdvancesOutstanding int64   `json:"advances_outstanding_fen"`
	ReimbursedFen       int64   `json:"reimbursed_fen"`
	ClawedBackFen       int64   `json:"clawed_back_fen"`
	ClawbackOutstanding int64   `json:"clawback_outstanding_fen"`
	OpenFlags           int64   `json:"open_flags"`
	ActiveHolds         int64   `json:"active_holds"`
}

func kindName(k uint8) string {
	switch pb.InstitutionKind(k) {
	case pb.InstitutionKind_INSTITUTION_KIND_TRAINING:
		return "training"
	case pb.InstitutionKind_INSTITUTION_KIND_EVALUATION:
		return "evaluation"
	}
	return "unknown"
}

func (m *Model) card(in *inst) Card {
	unit := m.strs.Str(in.unit)
	c := Card{
		InstitutionID: in.id, Name: in.name, Kind: kindName(in.kind), UnitCode: unit, CurrentUnitCode: m.units.Current(unit),
		UnitName: m.units.Name(m.units.Current(unit)), Registered: in.registered, Suspended: in.suspended, Blacklisted: in.blacklisted,
		Enrolments: int64(in.enrolments), Completions: int64(in.completions), Certificates: int64(in.certificates),
		ByQualification: []QualificationRow{}, Flags: []Flag{}, Holds: []HoldCount{}, Position: m.pos,
		Reimbursements: int64(in.reimbursements), ReimbursedFen: in.reimbursedFen, OffsetFen: in.offsetFen,
		Advances: Advances{Count: int64(in.advances), Fen: in.advFen, ReimbursedCount: int64(in.advReimbursed), ReimbursedFen: in.advReimbursedFen,
			NotReimbursableCount: int64(in.advDenied), NotReimbursableFen: in.advDeniedFen},
		Clawbacks: Clawbacks{Count: int64(in.clawbacks), RaisedFen: in.clawedFen, RecoveredFen: in.recoveredFen, WrittenOffFen: in.writtenOffFen,
			TraineeCount: int64(in.traineeClawbacks), TraineeFen: in.traineeClawedFen},
	}
	c.Advances.OutstandingCount = c.Advances.Count - c.Advances.ReimbursedCount - c.Advances.NotReimbursableCount
	c.Advances.OutstandingFen = c.Advances.Fen - c.Advances.ReimbursedFen - c.Advances.NotReimbursableFen
	c.Clawbacks.OutstandingFen = c.Clawbacks.RaisedFen - c.Clawbacks.RecoveredFen - c.Clawbacks.WrittenOffFen
	var fa, fp int32
	for _, q := range refdata.Qualifications() {
		k := rm.Q(int(q.Occupation)*4 + int(q.Level))
		s := in.quals[k]
		fa += s.firstAttempts
		fp += s.firstOK
		if s.attempts == 0 && s.certificates == 0 {
			continue
		}
		c.ByQualification = append(c.ByQualification, QualificationRow{Qualification: k.JSON(), FirstAttempt: rate(s.firstAttempts, s.firstOK),
			AllAttempts: rate(s.attempts, s.passes), Certificates: int64(s.certificates)})
	}
	c.FirstAttempt = rate(fa, fp)
	for _, f := range in.flags {
		v := Flag{FlagID: f.id.String(), Reason: rm.ReasonOf(pb.ReasonCode(f.reason)), Qualification: f.q.JSON(), Detail: f.detail, Position: f.pos,
			Status: "open", ClearedPosition: f.cleared}
		if f.cleared != 0 {
			v.Status = "cleared"
		} else {
			c.OpenFlags++
		}
		c.Flags = append(c.Flags, v)
	}
	for _, r := range rm.SortedKeys(in.holds) {
		c.Holds = append(c.Holds, HoldCount{Reason: rm.ReasonOf(pb.ReasonCode(r)), Count: int64(in.holds[r])})
		c.ActiveHolds += int64(in.holds[r])
	}
	return c
}

// Get returns the card of the institution.
func (m *Model) Get(id string) (Card, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	i, ok := m.instIdx[id]
	if !ok {
		return Card{}, false
	}
	return m.card(&m.insts[i]), true
}

// Filter narrows the list: Unit keeps institutions whose unit (as recorded
// or rolled up) is Unit; Institution keeps one; Kind "training" or
// "evaluation".
type Filter struct {
	Unit        string
	Institution string
	Kind        string
}

// List returns a row per institution, ordered by id.
func (m *Model) List(f Filter) []Row {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []Row{}
	for i := range m.insts {
		in := &m.insts[i]
		unit := m.strs.Str(in.unit)
		cur := m.units.Current(unit)
		if (f.Unit != "" && unit != f.Unit && cur != f.Unit) || (f.Institution != "" && in.id != f.Institution) ||
			(f.Kind != "" && kindName(in.kind) != f.Kind) {
			continue
		}
		c := m.card(in)
		out = append(out, Row{InstitutionID: c.InstitutionID, Name: c.Name, Kind: c.Kind, UnitCode: c.UnitCode, CurrentUnitCode: c.CurrentUnitCode,
			Suspended: c.Suspended, Enrolments: c.Enrolments, Completions: c.Completions, Certificates: c.Certificates,
			FirstAttempts: c.FirstAttempt.Attempts, FirstAttemptPasses: c.FirstAttempt.Passes, FirstAttemptRate: c.FirstAttempt.Rate,
			AdvancesOutstanding: c.Advances.OutstandingFen, ReimbursedFen: c.ReimbursedFen, ClawedBackFen: c.Clawbacks.RaisedFen,
			ClawbackOutstanding: c.Clawbacks.OutstandingFen, OpenFlags: c.OpenFlags, ActiveHolds: c.ActiveHolds})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].InstitutionID < out[j].InstitutionID })
	return out
}

// UnitOf returns the institution's unit as recorded and rolled up to
// today's unit (for scope checks); ok is false for an unknown institution.
func (m *Model) UnitOf(id string) (recorded, current string, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	i, ok := m.instIdx[id]
	if !ok {
		return "", "", false
	}
	u := m.strs.Str(m.insts[i].unit)
	return u, m.units.Current(u), true
}

// Position returns the position of the last event applied.
func (m *Model) Position() events.Position {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.pos
}

// CurrentUnit returns the unit that answers for code today (abolished
// units rolled up into their successors).
func (m *Model) CurrentUnit(code string) string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.units.Current(code)
}
