package trainee

import (
	"sort"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/projections/internal/rm"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// Status is the JSON form of one trainee (GET /v1/trainees/{person_key}).
// Amounts are integer fen.
type Status struct {
	PersonKey          string          `json:"person_key"`
	MaskedName         string          `json:"masked_name"`
	MaskedID           string          `json:"masked_id"`
	Unit               UnitRef         `json:"unit"`
	Education          string          `json:"education"`
	EnterpriseEmployee bool            `json:"enterprise_employee"`
	GraduationYear     int             `json:"graduation_year,omitempty"`
	RegisteredPosition uint64          `json:"registered_position"`
	Evidence           []Evidence      `json:"eligibility_evidence"`
	Enrolments         []Enrolment     `json:"enrolments"`
	Attempts           []Attempt       `json:"attempts"`
	Certificates       []Certificate   `json:"certificates"`
	Advances           []Advance       `json:"advances"`
	Entitlements       []Entitlement   `json:"entitlements"`
	Denials            []Denial        `json:"denials"`
	Flags              []Flag          `json:"flags"`
	Totals             Totals          `json:"totals"`
	Position           events.Position `json:"position"`

	units map[string]bool
	insts map[string]bool
}

// UnitRef names a unit as recorded and the unit that answers for it today.
type UnitRef struct {
	Code        string `json:"code"`
	Name        string `json:"name"`
	CurrentCode string `json:"current_code"`
	CurrentName string `json:"current_name"`
}

// Evidence is a piece of eligibility evidence.
type Evidence struct {
	EvidenceID     string `json:"evidence_id"`
	Category       string `json:"category"`
	Source         string `json:"source"`
	Confirmed      bool   `json:"confirmed"`
	GraduationYear int    `json:"graduation_year,omitempty"`
	InsuredFrom    string `json:"insured_from,omitempty"`
	InsuredTo      string `json:"insured_to,omitempty"`
	Position       uint64 `json:"position"`
}

// Enrolment is an enrolment and its training.
type Enrolment struct {
	EnrolmentID           string           `json:"enrolment_id"`
	TrainingInstitutionID string           `json:"training_institution_id"`
	Qualification         rm.Qualification `json:"qualification"`
	UnitCode              string           `json:"unit_code"`
	EnrolledOn            string           `json:"enrolled_on"`
	CompletedOn           string           `json:"completed_on,omitempty"`
}

// Attempt is one assessment attempt.
type Attempt struct {
	AssessmentID            string           `json:"assessment_id"`
	Qualification           rm.Qualification `json:"qualification"`
	Attempt                 int              `json:"attempt"`
	TheoryScore             int              `json:"theory_score"`
	PracticalScore          int              `json:"practical_score"`
	Passed                  bool             `json:"passed"`
	AssessedOn              string           `json:"assessed_on"`
	EvaluationInstitutionID string           `json:"evaluation_institution_id"`
	TrainingInstitutionID   string           `json:"training_institution_id,omitempty"`
}

// Certificate is a certificate issued (and perhaps revoked).
type Certificate struct {
	CertificateID           string           `json:"certificate_id"`
	Qualification           rm.Qualification `json:"qualification"`
	AssessmentID            string           `json:"assessment_id"`
	EvaluationInstitutionID string           `json:"evaluation_institution_id"`
	IssuedOn                string           `json:"issued_on"`
	RevokedOn               string           `json:"revoked_on,omitempty"`
	RevokeReason            string           `json:"revoke_reason,omitempty"`
}

// Advance is a fee a training institution advanced.
type Advance struct {
	AdvanceID             string           `json:"advance_id"`
	TrainingInstitutionID string           `json:"training_institution_id"`
	Qualification         rm.Qualification `json:"qualification"`
	AmountFen             int64            `json:"amount_fen"`
	PaidOn                string           `json:"paid_on"`
}

// Entitlement is an entitlement with its state and money.
type Entitlement struct {
	EntitlementID           string           `json:"entitlement_id"`
	Qualification           rm.Qualification `json:"qualification"`
	State                   string           `json:"state"`
	AmountFen               int64            `json:"amount_fen"`
	FeeScheduleID           string           `json:"fee_schedule_id"`
	CertificateID           string           `json:"certificate_id"`
	Year                    int              `json:"year"`
	Unit                    UnitRef          `json:"unit"`
	PayeeKind               string           `json:"payee_kind"`
	PayeeInstitutionID      string           `json:"payee_institution_id,omitempty"`
	TrainingInstitutionID   string           `json:"training_institution_id,omitempty"`
	EvaluationInstitutionID string           `json:"evaluation_institution_id"`
	AssessedOn              string           `json:"assessed_on"`
	ConfirmedOn             string           `json:"confirmed_on,omitempty"`
	ConfirmedBy             string           `json:"confirmed_by,omitempty"`
	ApprovedOn              string           `json:"approved_on,omitempty"`
	ApprovedBy              string           `json:"approved_by,omitempty"`
	NoticeStartsOn          string           `json:"notice_starts_on,omitempty"`
	NoticeEndsOn            string           `json:"notice_ends_on,omitempty"`
	NoticeClosedOn          string           `json:"notice_closed_on,omitempty"`
	Objections              int              `json:"objections"`
	ObjectionsUpheld        int              `json:"objections_upheld"`
	Holds                   []Hold           `json:"holds"`
	Payments                []Payment        `json:"payments"`
	PaidFen                 int64            `json:"paid_fen"`
	PaidCashFen             int64            `json:"paid_cash_fen"`
	OffsetFen               int64            `json:"offset_fen"`
	Cancelled               rm.Reason        `json:"cancelled"`
	Clawback                *Clawback        `json:"clawback,omitempty"`
	Decision                Decision         `json:"decision"`
}

// Decision names the rule set and the stored event of an automatic
// decision; GET /v1/audit/events/{position} shows its checks and evidence.
type Decision struct {
	RuleSetVersion string `json:"rule_set_version"`
	Position       uint64 `json:"position"`
}

// Hold is a hold placed on an entitlement (and perhaps released).
type Hold struct {
	HoldID           string    `json:"hold_id"`
	Reason           rm.Reason `json:"reason"`
	Active           bool      `json:"active"`
	PlacedPosition   uint64    `json:"placed_position"`
	ReleasedPosition uint64    `json:"released_position,omitempty"`
	// HeldOn and ReleasedOn are the days the hold took effect and ended,
	// as the ledger decided them from rules behaviour 4 on; empty for
	// holds decided before, and for a release by a budget allocation.
	HeldOn     string `json:"held_on,omitempty"`
	ReleasedOn string `json:"released_on,omitempty"`
}

// Payment is a payment order and its result.
type Payment struct {
	Attempt          int    `json:"attempt"`
	AmountFen        int64  `json:"amount_fen"`
	OffsetFen        int64  `json:"offset_fen"`
	NetFen           int64  `json:"net_fen"`
	Status           string `json:"status"`
	ResultOn         string `json:"result_on,omitempty"`
	PaidToAccount    string `json:"paid_to_account,omitempty"`
	Failure          string `json:"failure,omitempty"`
	OrderedPosition  uint64 `json:"ordered_position"`
	ResultedPosition uint64 `json:"resulted_position,omitempty"`
}

// Clawback is a receivable raised against the payee.
type Clawback struct {
	ClawbackID     string `json:"clawback_id"`
	Cause          string `json:"cause"`
	AmountFen      int64  `json:"amount_fen"`
	RecoveredFen   int64  `json:"recovered_fen"`
	WrittenOffFen  int64  `json:"written_off_fen"`
	OutstandingFen int64  `json:"outstanding_fen"`
	Position       uint64 `json:"position"`
	// RaisedOn is the day the receivable arose, as the ledger decided it
	// from rules behaviour 4 on (empty before).
	RaisedOn string `json:"raised_on,omitempty"`
}

// Denial is a certificate that earned no subsidy, and why. SupersededBy
// names the entitlement the certificate earned after all, when eligibility
// evidence recorded after it decided it again (the rules' second chance);
// such a denial stays in the history but is not counted among the
// trainee's denials.
//
// Revised, when present, is the reason the certificate fails on now: a
// later fact decided it again (the second chance) and it failed on another
// rule than Reason, the one recorded at certification (SubsidyDenialRevised,
// rules 2026.4).
type Denial struct {
	CertificateID string           `json:"certificate_id"`
	Qualification rm.Qualification `json:"qualification"`
	Reason        rm.Reason        `json:"reason"`
	Detail        string           `json:"detail"`
	Decision      Decision         `json:"decision"`
	SupersededBy  string           `json:"superseded_by,omitempty"`
	Revised       *DenialRevision  `json:"revised,omitempty"`
}

// DenialRevision is a denial's last revised reason, with its detail and
// decision.
type DenialRevision struct {
	Reason   rm.Reason `json:"reason"`
	Detail   string    `json:"detail"`
	Decision Decision  `json:"decision"`
}

// Flag is a supervisor flag about this person. Status is "open", or
// "cleared" once a FlagCleared closed it, at ClearedPosition (GET
// /v1/audit/events/{position} shows why); the flag stays in the history.
type Flag struct {
	FlagID          string    `json:"flag_id"`
	Reason          rm.Reason `json:"reason"`
	InstitutionID   string    `json:"institution_id,omitempty"`
	Detail          string    `json:"detail"`
	Position        uint64    `json:"position"`
	Status          string    `json:"status"`
	ClearedPosition uint64    `json:"cleared_position,omitempty"`
}

// Totals sums the person's money.
type Totals struct {
	EntitledFen    int64 `json:"entitled_fen"`
	PaidFen        int64 `json:"paid_fen"`
	ClawedBackFen  int64 `json:"clawed_back_fen"`
	RecoveredFen   int64 `json:"recovered_fen"`
	WrittenOffFen  int64 `json:"written_off_fen"`
	OutstandingFen int64 `json:"outstanding_fen"`
}

// add counts an entitlement's money in the totals.
func (t *Totals) add(e *Entitlement) {
	t.EntitledFen += e.AmountFen
	t.PaidFen += e.PaidFen
	if c := e.Clawback; c != nil {
		t.ClawedBackFen += c.AmountFen
		t.RecoveredFen += c.RecoveredFen
		t.WrittenOffFen += c.WrittenOffFen
		t.OutstandingFen += c.OutstandingFen
	}
}

// InUnit reports whether anything of the person belongs to the unit code
// (as recorded or rolled up to today's unit): registration, enrolments,
// entitlements. The API's district scope uses it.
func (s *Status) InUnit(code string) bool { return s.units[code] }

// WithInstitution reports whether the person has dealt with the
// institution (enrolment, assessment, advance, entitlement). The API's
// institution scope uses it.
func (s *Status) WithInstitution(id string) bool { return s.insts[id] }

func (m *Model) unitRef(id uint32) UnitRef {
	code := m.strs.Str(id)
	cur := m.units.Current(code)
	return UnitRef{Code: code, Name: m.units.Name(code), CurrentCode: cur, CurrentName: m.units.Name(cur)}
}

// Get returns the status of the person key. ok is false for an unknown
// (or malformed) key.
func (m *Model) Get(personKey string) (s Status, ok bool) {
	k, err := rm.ParsePersonKey(personKey)
	if err != nil {
		return s, false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	i, ok := m.idx.Get(k, m.keyAt)
	if !ok {
		return s, false
	}
	return m.status(i), true
}

// EntitlementOwner returns the person key of the trainee whose entitlement
// has the id; ok is false for an unknown or malformed id. The API uses it
// to find an entitlement an official acts on (and to apply the caller's
// scope to it through Get).
func (m *Model) EntitlementOwner(entitlementID string) (personKey string, ok bool) {
	id, err := rm.ID(entitlementID)
	if err != nil {
		return "", false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	i, ok := m.entIdx[id]
	if !ok {
		return "", false
	}
	return m.people.At(m.ents.At(i).person).key.String(), true
}

// ClawbackOwner returns the entitlement a clawback was raised on and the
// person key of its trainee; ok is false for an unknown or malformed id.
func (m *Model) ClawbackOwner(clawbackID string) (entitlementID, personKey string, ok bool) {
	id, err := rm.ID(clawbackID)
	if err != nil {
		return "", "", false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	i, ok := m.clawIdx[id]
	if !ok {
		return "", "", false
	}
	e := m.ents.At(i)
	return e.id.String(), m.people.At(e.person).key.String(), true
}

func (m *Model) certID(idx int32, x uint32) string {
	if idx != 0 {
		return m.arena.Get(m.certs.At(idx - 1).id)
	}
	return m.strs.Str(x)
}

func (m *Model) status(i int32) Status {
	p := m.people.At(i)
	s := Status{
		PersonKey: p.key.String(), MaskedName: m.arena.Get(p.maskedName), MaskedID: m.maskedIDOf(p), Unit: m.unitRef(p.unit),
		Education: pb.Education(p.education).String(), EnterpriseEmployee: p.employee, GraduationYear: int(p.gradYear),
		RegisteredPosition: p.regPos, Position: m.pos,
		Evidence: []Evidence{}, Enrolments: []Enrolment{}, Attempts: []Attempt{}, Certificates: []Certificate{},
		Advances: []Advance{}, Entitlements: []Entitlement{}, Denials: []Denial{}, Flags: []Flag{},
		units: map[string]bool{}, insts: map[string]bool{},
	}
	addUnit := func(u UnitRef) { s.units[u.Code], s.units[u.CurrentCode] = true, true }
	addInst := func(id uint32) {
		if id != 0 {
			s.insts[m.strs.Str(id)] = true
		}
	}
	addUnit(s.Unit)
	walk(&m.evidence, p.evidence, nextEvidence, func(j int32) {
		e := m.evidence.At(j)
		s.Evidence = append(s.Evidence, Evidence{EvidenceID: m.arena.Get(e.id), Category: pb.EligibilityCategory(e.category).String(),
			Source: m.strs.Str(e.source), Confirmed: e.confirmed, GraduationYear: int(e.gradYear),
			InsuredFrom: rm.DateString(e.insuredFrom), InsuredTo: rm.DateString(e.insuredTo), Position: e.pos})
	})
	walk(&m.enrolments, p.enrolments, nextEnrolment, func(j int32) {
		e := m.enrolments.At(j)
		s.Enrolments = append(s.Enrolments, Enrolment{EnrolmentID: m.arena.Get(e.id), TrainingInstitutionID: m.strs.Str(e.inst),
			Qualification: e.q.JSON(), UnitCode: m.strs.Str(e.unit), EnrolledOn: rm.DateString(e.on), CompletedOn: rm.DateString(e.completed)})
		addUnit(m.unitRef(e.unit))
		addInst(e.inst)
	})
	walk(&m.attempts, p.attempts, nextAttempt, func(j int32) {
		a := m.attempts.At(j)
		s.Attempts = append(s.Attempts, Attempt{AssessmentID: m.arena.Get(a.id), Qualification: a.q.JSON(), Attempt: int(a.n),
			TheoryScore: int(a.theory), PracticalScore: int(a.practical), Passed: a.theory >= 60 && a.practical >= 60,
			AssessedOn: rm.DateString(a.on), EvaluationInstitutionID: m.strs.Str(a.eval), TrainingInstitutionID: m.strs.Str(a.train)})
		addInst(a.eval)
		addInst(a.train)
	})
	walk(&m.certs, p.certs, nextCert, func(j int32) {
		c := m.certs.At(j)
		assessment := m.strs.Str(c.assessmentX)
		if c.assessment != 0 {
			assessment = m.arena.Get(m.attempts.At(c.assessment - 1).id)
		}
		s.Certificates = append(s.Certificates, Certificate{CertificateID: m.arena.Get(c.id), Qualification: c.q.JSON(), AssessmentID: assessment,
			EvaluationInstitutionID: m.strs.Str(c.eval), IssuedOn: rm.DateString(c.on), RevokedOn: rm.DateString(c.revoked),
			RevokeReason: m.strs.Str(c.revokeReason)})
	})
	walk(&m.advances, p.advances, nextAdvance, func(j int32) {
		a := m.advances.At(j)
		s.Advances = append(s.Advances, Advance{AdvanceID: m.arena.Get(a.id), TrainingInstitutionID: m.strs.Str(a.inst), Qualification: a.q.JSON(),
			AmountFen: a.fen, PaidOn: rm.DateString(a.on)})
		addInst(a.inst)
	})
	walk(&m.ents, p.ents, nextEnt, func(j int32) {
		e := m.ents.At(j)
		v := m.entitlement(e)
		s.Entitlements = append(s.Entitlements, v)
		addUnit(v.Unit)
		addInst(e.train)
		addInst(e.eval)
		addInst(e.payeeInst)
		s.Totals.add(&v)
	})
	walk(&m.denials, p.denials, nextDenial, func(j int32) {
		d := m.denials.At(j)
		v := Denial{CertificateID: m.certID(d.cert, d.certX), Qualification: d.q.JSON(),
			Reason: rm.ReasonOf(pb.ReasonCode(d.reason)), Detail: m.strs.Str(d.detail),
			Decision: Decision{RuleSetVersion: m.strs.Str(d.ruleSet), Position: d.pos}}
		if d.superseded != 0 {
			v.SupersededBy = m.ents.At(d.superseded - 1).id.String()
		}
		if r, ok := m.revised[j]; ok {
			v.Revised = &DenialRevision{Reason: rm.ReasonOf(pb.ReasonCode(r.reason)), Detail: m.strs.Str(r.detail),
				Decision: Decision{RuleSetVersion: m.strs.Str(r.ruleSet), Position: r.pos}}
		}
		s.Denials = append(s.Denials, v)
	})
	walk(&m.flags, p.flags, nextFlag, func(j int32) {
		f := m.flags.At(j)
		v := Flag{FlagID: f.id.String(), Reason: rm.ReasonOf(pb.ReasonCode(f.reason)), InstitutionID: m.strs.Str(f.inst),
			Detail: m.strs.Str(f.detail), Position: f.pos, Status: "open", ClearedPosition: f.cleared}
		if f.cleared != 0 {
			v.Status = "cleared"
		}
		s.Flags = append(s.Flags, v)
	})
	return s
}

func (m *Model) entitlement(e *ent) Entitlement {
	v := Entitlement{
		EntitlementID: e.id.String(), Qualification: e.q.JSON(), State: m.state(e), AmountFen: e.amount,
		FeeScheduleID: m.strs.Str(e.feeSchedule), CertificateID: m.certID(e.cert, e.certX), Year: int(e.year), Unit: m.unitRef(e.unit),
		PayeeKind: pb.PayeeKind(e.payeeKind).String(), PayeeInstitutionID: m.strs.Str(e.payeeInst),
		TrainingInstitutionID: m.strs.Str(e.train), EvaluationInstitutionID: m.strs.Str(e.eval),
		AssessedOn: rm.DateString(e.assessedOn), ConfirmedOn: rm.DateString(e.confirmedOn), ConfirmedBy: m.strs.Str(e.confirmedBy),
		ApprovedOn: rm.DateString(e.approvedOn), ApprovedBy: m.strs.Str(e.approvedBy), NoticeStartsOn: rm.DateString(e.noticeStart),
		NoticeEndsOn: rm.DateString(e.noticeEnd), NoticeClosedOn: rm.DateString(e.closedOn),
		Objections: int(e.objections), ObjectionsUpheld: int(e.upheld), Holds: []Hold{}, Payments: []Payment{},
		PaidFen: e.paid, PaidCashFen: e.cash, OffsetFen: e.offset, Cancelled: rm.ReasonOf(pb.ReasonCode(e.cancelled)),
		Decision: Decision{RuleSetVersion: m.strs.Str(e.ruleSet), Position: e.pos},
	}
	walk(&m.holds, e.holds, nextHold, func(j int32) {
		h := m.holds.At(j)
		v.Holds = append(v.Holds, Hold{HoldID: m.strs.Str(h.id), Reason: rm.ReasonOf(pb.ReasonCode(h.reason)), Active: h.released == 0,
			PlacedPosition: h.placed, ReleasedPosition: h.released, HeldOn: rm.DateString(h.heldOn), ReleasedOn: rm.DateString(h.releasedOn)})
	})
	walk(&m.orders, e.orders, nextOrder, func(j int32) {
		o := m.orders.At(j)
		st := [...]string{"in_flight", "settled", "failed"}[o.status%3]
		v.Payments = append(v.Payments, Payment{Attempt: int(o.attempt), AmountFen: o.amount, OffsetFen: o.offset, NetFen: o.net,
			Status: st, ResultOn: rm.DateString(o.resultOn), PaidToAccount: m.arena.Get(o.paidTo), Failure: m.strs.Str(o.failure),
			OrderedPosition: o.orderedPos, ResultedPosition: o.resultPos})
	})
	if e.claw != 0 {
		c := m.claws.At(e.claw - 1)
		v.Clawback = &Clawback{ClawbackID: c.id.String(), Cause: pb.ClawbackCause(c.cause).String(), AmountFen: c.amount,
			RecoveredFen: c.recovered, WrittenOffFen: c.writtenOff, OutstandingFen: c.amount - c.recovered - c.writtenOff, Position: c.pos,
			RaisedOn: rm.DateString(c.raisedOn)}
	}
	return v
}

// Summary is one row of a trainee list or CSV export.
type Summary struct {
	PersonKey       string `json:"person_key"`
	MaskedName      string `json:"masked_name"`
	MaskedID        string `json:"masked_id"`
	UnitCode        string `json:"unit_code"`
	CurrentUnitCode string `json:"current_unit_code"`
	Enrolments      int    `json:"enrolments"`
	Completions     int    `json:"completions"`
	Attempts        int    `json:"attempts"`
	Certificates    int    `json:"certificates"`
	Entitlements    int    `json:"entitlements"`
	Denials         int    `json:"denials"` // not counting those superseded by an entitlement
	EntitledFen     int64  `json:"entitled_fen"`
	PaidFen         int64  `json:"paid_fen"`
	ClawedBackFen   int64  `json:"clawed_back_fen"`
	RecoveredFen    int64  `json:"recovered_fen"`
	LatestState     string `json:"latest_state"`
	RegisteredAt    uint64 `json:"registered_position"`
	units, insts    []string
}

// InUnit and WithInstitution are Status's scope checks for a Summary.
func (s *Summary) InUnit(code string) bool {
	for _, u := range s.units {
		if u == code {
			return true
		}
	}
	return false
}

// WithInstitution reports whether the person dealt with the institution.
func (s *Summary) WithInstitution(id string) bool {
	for _, i := range s.insts {
		if i == id {
			return true
		}
	}
	return false
}

func (m *Model) summary(i int32) Summary {
	p := m.people.At(i)
	s := Summary{PersonKey: p.key.String(), MaskedName: m.arena.Get(p.maskedName), MaskedID: m.maskedIDOf(p), UnitCode: m.strs.Str(p.unit),
		RegisteredAt: p.regPos}
	s.CurrentUnitCode = m.units.Current(s.UnitCode)
	s.units = []string{s.UnitCode, s.CurrentUnitCode}
	walk(&m.enrolments, p.enrolments, nextEnrolment, func(j int32) {
		e := m.enrolments.At(j)
		s.Enrolments++
		if e.completed != 0 {
			s.Completions++
		}
		u := m.strs.Str(e.unit)
		s.units = append(s.units, u, m.units.Current(u))
		s.insts = append(s.insts, m.strs.Str(e.inst))
	})
	walk(&m.attempts, p.attempts, nextAttempt, func(j int32) {
		s.Attempts++
		s.insts = append(s.insts, m.strs.Str(m.attempts.At(j).eval), m.strs.Str(m.attempts.At(j).train))
	})
	walk(&m.certs, p.certs, nextCert, func(int32) { s.Certificates++ })
	walk(&m.denials, p.denials, nextDenial, func(j int32) {
		if m.denials.At(j).superseded == 0 { // a superseded denial stands in the history only
			s.Denials++
		}
	})
	walk(&m.advances, p.advances, nextAdvance, func(j int32) { s.insts = append(s.insts, m.strs.Str(m.advances.At(j).inst)) })
	walk(&m.ents, p.ents, nextEnt, func(j int32) {
		e := m.ents.At(j)
		s.Entitlements++
		s.EntitledFen += e.amount
		s.PaidFen += e.paid
		if e.claw != 0 {
			s.ClawedBackFen += m.claws.At(e.claw - 1).amount
			s.RecoveredFen += m.claws.At(e.claw - 1).recovered
		}
		s.LatestState = m.state(e)
		u := m.strs.Str(e.unit)
		s.units = append(s.units, u, m.units.Current(u))
		s.insts = append(s.insts, m.strs.Str(e.train), m.strs.Str(e.eval), m.strs.Str(e.payeeInst))
	})
	return s
}

// Page returns up to n summaries from index from (registration order) and
// the index to continue from (-1 at the end). It holds the read lock only
// for the page, so an export of every trainee never blocks the apply loop
// for long.
func (m *Model) Page(from, n int) ([]Summary, int) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if from < 0 || from >= m.people.Len() {
		return nil, -1
	}
	end := min(m.people.Len(), from+n)
	out := make([]Summary, 0, end-from)
	for i := from; i < end; i++ {
		out = append(out, m.summary(int32(i)))
	}
	if end == m.people.Len() {
		end = -1
	}
	return out, end
}

// FindMasked returns the people whose masked ID (and masked name, if
// given) equal the arguments: the lookup for authorised users who hold a
// masked record. It scans in pages; at most limit results.
func (m *Model) FindMasked(maskedID, maskedName string, limit int) []Summary {
	maskedID, maskedName = normaliseMasked(maskedID), normaliseMasked(maskedName)
	var out []Summary
	const page = 20000
	for from := 0; ; from += page {
		m.mu.RLock()
		end := min(m.people.Len(), from+page)
		for i := from; i < end && len(out) < limit; i++ {
			p := m.people.At(int32(i))
			if m.maskedIs(p, maskedID) && (maskedName == "" || m.arena.Equal(p.maskedName, maskedName)) {
				out = append(out, m.summary(int32(i)))
			}
		}
		n := m.people.Len()
		m.mu.RUnlock()
		if end >= n || len(out) >= limit {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RegisteredAt < out[j].RegisteredAt })
	return out
}

// maskedIs compares a person's masked ID without building the string.
func (m *Model) maskedIs(p *person, id string) bool {
	if p.maskedIDX == 0 && len(id) == 18 && id[4:14] == stars {
		return string(p.maskedID[:4]) == id[:4] && string(p.maskedID[4:]) == id[14:]
	}
	return m.maskedIDOf(p) == id
}

// ForInstitution returns what the institution id may see of the status:
// its own records of the person and none of another institution's (a
// person trained at two is the trainee of both, and neither sees the
// other's enrolments, advances, scores or money): the enrolments and
// advances at it, the attempts it trained for or assessed, the certificates
// it issued or of a qualification it trained, the entitlements it trained,
// assessed or is paid, the denials of those certificates, and the flags
// about it. The eligibility evidence (insurance, graduation) is not an
// institution's business, nor are the person's other entitlements: a
// denial for rules 4 and 6 to 8 shows its reason without its detail.
// Totals are of the entitlements kept.
func (s Status) ForInstitution(id string) Status {
	out := s
	out.Evidence = []Evidence{}
	out.Enrolments, out.Attempts, out.Certificates = []Enrolment{}, []Attempt{}, []Certificate{}
	out.Advances, out.Entitlements, out.Denials, out.Flags = []Advance{}, []Entitlement{}, []Denial{}, []Flag{}
	out.Totals = Totals{}
	trained := map[rm.Qualification]bool{}
	for _, e := range s.Enrolments {
		if e.TrainingInstitutionID == id {
			out.Enrolments = append(out.Enrolments, e)
			trained[e.Qualification] = true
		}
	}
	for _, a := range s.Attempts {
		if a.TrainingInstitutionID == id || a.EvaluationInstitutionID == id {
			out.Attempts = append(out.Attempts, a)
		}
	}
	certs := map[string]bool{}
	for _, c := range s.Certificates {
		if c.EvaluationInstitutionID == id || trained[c.Qualification] {
			out.Certificates = append(out.Certificates, c)
			certs[c.CertificateID] = true
		}
	}
	for _, a := range s.Advances {
		if a.TrainingInstitutionID == id {
			out.Advances = append(out.Advances, a)
		}
	}
	for _, e := range s.Entitlements {
		if e.TrainingInstitutionID == id || e.PayeeInstitutionID == id || e.EvaluationInstitutionID == id {
			out.Entitlements = append(out.Entitlements, e)
			out.Totals.add(&e)
		}
	}
	for _, d := range s.Denials {
		if certs[d.CertificateID] {
			d.Detail = denialDetailForInstitution(d.Reason, d.Detail)
			if r := d.Revised; r != nil {
				rv := *r
				rv.Detail = denialDetailForInstitution(rv.Reason, rv.Detail)
				d.Revised = &rv
			}
			out.Denials = append(out.Denials, d)
		}
	}
	for _, f := range s.Flags {
		if f.InstitutionID == id {
			f.Detail, _ = rm.FlagDetailForInstitution(f.Reason, f.Detail)
			out.Flags = append(out.Flags, f)
		}
	}
	return out
}

// denialDetailForInstitution is what an institution sees of a denial's (or
// its revision's) detail: the reason alone when the detail is about the
// person rather than the training — their eligibility evidence (rule 4:
// insurance, graduation) or their other entitlements (rules 6 to 8) — and
// the detail otherwise.
func denialDetailForInstitution(r rm.Reason, detail string) string {
	switch r.Number / 100 {
	case 4, 6, 7, 8:
		return "(about the person's eligibility or other subsidies: not shown to an institution)"
	}
	return detail
}

// Summary is the status as a row of the trainee list (for a status cut to
// what a scope sees: ForInstitution).
func (s Status) Summary() Summary {
	out := Summary{PersonKey: s.PersonKey, MaskedName: s.MaskedName, MaskedID: s.MaskedID, UnitCode: s.Unit.Code,
		CurrentUnitCode: s.Unit.CurrentCode, RegisteredAt: s.RegisteredPosition,
		Enrolments: len(s.Enrolments), Attempts: len(s.Attempts), Certificates: len(s.Certificates), Entitlements: len(s.Entitlements),
		EntitledFen: s.Totals.EntitledFen, PaidFen: s.Totals.PaidFen, ClawedBackFen: s.Totals.ClawedBackFen, RecoveredFen: s.Totals.RecoveredFen}
	for _, e := range s.Enrolments {
		if e.CompletedOn != "" {
			out.Completions++
		}
	}
	for _, d := range s.Denials {
		if d.SupersededBy == "" {
			out.Denials++
		}
	}
	if n := len(s.Entitlements); n > 0 {
		out.LatestState = s.Entitlements[n-1].State
	}
	for u := range s.units {
		out.units = append(out.units, u)
	}
	for i := range s.insts {
		out.insts = append(out.insts, i)
	}
	return out
}
