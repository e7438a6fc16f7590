// Package anomaly is the anomalies read model: the flags raised for
// supervisors (ViolationFlagged: the quality threshold of rule 15 and the
// anomalies of rule 16) with their evidence — the stored events the
// decision used, the rule-set version and the checks' detail — and the
// state of the institution they name.
//
// A flag stays open until a FlagCleared closes it: the rules (2026.4)
// clear an ASSESSMENT_WITHOUT_COMPLETION flag when the training's
// completion, dated on or before the assessment, is reported after it.
// The flag's ViolationFlagged stays in the log, and the flag stays here,
// cleared, with the clearing's detail and evidence; the list shows the open
// flags unless asked for the cleared ones (Filter.Status). A flag raised
// again (a ViolationFlagged of its id) replaces its record and is open
// again, as the rules' World records it. An institution's suspension is
// shown beside its flags.
package anomaly

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/snap"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/internal/rm"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// Name is the projection's name.
const Name = "anomaly"

const version = 2 // 2: a flag's clearing (FlagCleared)

type flag struct {
	id       events.ID
	reason   int32
	subject  string
	inst     uint32
	q        rm.Q
	detail   string
	evidence []events.ID
	checks   []check
	ruleSet  uint32
	pos      uint64
	created  int64
	stream   string
	cleared  *clearing // nil while open
}

// clearing is the FlagCleared that closed a flag.
type clearing struct {
	pos      uint64
	created  int64
	detail   string
	evidence []events.ID
	ruleSet  uint32
}

type check struct {
	rule   int32
	passed bool
	reason int32
	detail string
}

type instInfo struct {
	name        string
	unit        uint32
	suspended   bool
	blacklisted bool
}

// Model is the anomalies projection.
type Model struct {
	mu      sync.RWMutex
	pos     events.Position
	strs    *rm.Strings
	units   *rm.Units
	flags   []flag
	flagIdx map[events.ID]int32
	insts   map[string]instInfo
}

var _ projections.Projection = (*Model)(nil)

// New returns an empty model.
func New() *Model {
	return &Model{strs: rm.NewStrings(), units: rm.NewUnits(), flagIdx: map[events.ID]int32{}, insts: map[string]instInfo{}}
}

// Factory makes fresh models for a Runner.
func Factory() projections.Projection { return New() }

// Name implements projections.Projection.
func (m *Model) Name() string { return Name }

// Version implements projections.Projection.
func (m *Model) Version() uint32 { return version }

// Types implements projections.Projection.
func (m *Model) Types() []string {
	return []string{"subsidy.v1.UnitDefined", "subsidy.v1.InstitutionRegistered", "subsidy.v1.InstitutionSuspended",
		"subsidy.v1.InstitutionReinstated", "subsidy.v1.ViolationFlagged", "subsidy.v1.FlagCleared"}
}

// Apply implements projections.Projection.
func (m *Model) Apply(ev *projections.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.apply(ev); err != nil {
		return err
	}
	m.pos = ev.Position
	return nil
}

// ApplyBatch implements projections.BatchApplier.
func (m *Model) ApplyBatch(evs []*projections.Event) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return projections.ApplyEach(evs, m.apply, &m.pos)
}

func (m *Model) apply(ev *projections.Event) error {
	switch p := ev.Payload.(type) {
	case *pb.UnitDefined:
		return m.units.Apply(p)
	case *pb.InstitutionRegistered:
		// Kept strings are copies, map keys too (assigning replaces the
		// key): a build's strings point into memory it reuses.
		in := m.insts[p.InstitutionId]
		in.name, in.unit = strings.Clone(p.Name), m.strs.ID(p.UnitCode)
		m.insts[strings.Clone(p.InstitutionId)] = in
	case *pb.InstitutionSuspended:
		in := m.insts[p.InstitutionId]
		in.suspended, in.blacklisted = true, p.Blacklisted
		m.insts[strings.Clone(p.InstitutionId)] = in
	case *pb.InstitutionReinstated:
		in := m.insts[p.InstitutionId]
		in.suspended, in.blacklisted = false, false
		m.insts[strings.Clone(p.InstitutionId)] = in
	case *pb.ViolationFlagged:
		id, err := rm.ID(p.FlagId)
		if err != nil {
			return rm.Err(ev.Type, "flag id: %v", err)
		}
		f := flag{id: id, reason: int32(p.Reason), subject: strings.Clone(p.Subject), inst: m.strs.ID(p.InstitutionId), q: rm.QOf(p.Qualification),
			detail: strings.Clone(p.Detail), ruleSet: m.strs.ID(p.Decision.GetRuleSetVersion()), pos: uint64(ev.Position),
			created: ev.Created.UnixNano(), stream: ev.Stream}
		if f.evidence, err = evidenceOf(p.Decision); err != nil {
			return rm.Err(ev.Type, "%v", err)
		}
		if cs := p.Decision.GetChecks(); len(cs) > 0 {
			f.checks = make([]check, len(cs))
			for i, c := range cs {
				f.checks[i] = check{rule: c.Rule, passed: c.Passed, reason: int32(c.Reason), detail: strings.Clone(c.Detail)}
			}
		}
		if i, ok := m.flagIdx[id]; ok {
			m.flags[i] = f // a flag raised again replaces its record
			return nil
		}
		m.flagIdx[id] = int32(len(m.flags))
		m.flags = append(m.flags, f)
	case *pb.FlagCleared:
		id, err := rm.ID(p.FlagId)
		if err != nil {
			return rm.Err(ev.Type, "flag id: %v", err)
		}
		// Every ViolationFlagged is recorded here, and the rules clear
		// only a flag they recorded: one this model does not know is a
		// broken log, as an unknown entitlement is to the other models.
		i, ok := m.flagIdx[id]
		if !ok {
			return rm.Err(ev.Type, "unknown flag %s", p.FlagId)
		}
		c := &clearing{pos: uint64(ev.Position), created: ev.Created.UnixNano(), detail: strings.Clone(p.Detail),
			ruleSet: m.strs.ID(p.Decision.GetRuleSetVersion())}
		if c.evidence, err = evidenceOf(p.Decision); err != nil {
			return rm.Err(ev.Type, "%v", err)
		}
		m.flags[i].cleared = c // cleared again (the rules never do): the later clearing
	}
	return nil
}

// evidenceOf parses a decision's evidence event ids (nil for none).
func evidenceOf(d *pb.Decision) ([]events.ID, error) {
	ids := d.GetEvidenceEventIds()
	if len(ids) == 0 {
		return nil, nil
	}
	out := make([]events.ID, len(ids))
	for i, e := range ids {
		var err error
		if out[i], err = rm.ID(e); err != nil {
			return nil, fmt.Errorf("evidence event id: %v", err)
		}
	}
	return out, nil
}

// Snapshot implements projections.Projection.
func (m *Model) Snapshot(w io.Writer) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	sw := snap.NewWriter(w)
	sw.Magic(Name, version)
	sw.Uvarint(uint64(m.pos))
	m.strs.Write(sw)
	m.units.Write(sw)
	ids := rm.SortedKeys(m.insts)
	sw.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		in := m.insts[id]
		sw.String(id)
		sw.String(in.name)
		sw.Uvarint(uint64(in.unit))
		sw.Bool(in.suspended)
		sw.Bool(in.blacklisted)
	}
	sw.Uvarint(uint64(len(m.flags)))
	for _, f := range m.flags {
		sw.Fixed(f.id[:])
		sw.Int(int(f.reason))
		sw.String(f.subject)
		sw.Uvarint(uint64(f.inst))
		sw.Uvarint(uint64(f.q))
		sw.String(f.detail)
		sw.Uvarint(uint64(len(f.evidence)))
		for _, e := range f.evidence {
			sw.Fixed(e[:])
		}
		sw.Uvarint(uint64(len(f.checks)))
		for _, c := range f.checks {
			sw.Int(int(c.rule))
			sw.Bool(c.passed)
			sw.Int(int(c.reason))
			sw.String(c.detail)
		}
		sw.Uvarint(uint64(f.ruleSet))
		sw.Uvarint(f.pos)
		sw.Varint(f.created)
		sw.String(f.stream)
		sw.Bool(f.cleared != nil)
		if c := f.cleared; c != nil {
			sw.Uvarint(c.pos)
			sw.Varint(c.created)
			sw.String(c.detail)
			sw.Uvarint(uint64(len(c.evidence)))
			for _, e := range c.evidence {
				sw.Fixed(e[:])
			}
			sw.Uvarint(uint64(c.ruleSet))
		}
	}
	return sw.Flush()
}

// Restore implements projections.Projection.
func (m *Model) Restore(r io.Reader) error {
	sr := snap.NewReader(r)
	sr.Magic(Name, version)
	n := New()
	n.pos = events.Position(sr.Uvarint())
	n.strs.Read(sr)
	n.units.Read(sr)
	for range sr.Len(1 << 24) {
		id := sr.String()
		n.insts[id] = instInfo{name: sr.String(), unit: uint32(sr.Uvarint()), suspended: sr.Bool(), blacklisted: sr.Bool()}
	}
	nf := sr.Len(1 << 28)
	n.flags, n.flagIdx = make([]flag, 0, nf), make(map[events.ID]int32, nf)
	for range nf {
		var f flag
		sr.Fixed(f.id[:])
		f.reason, f.subject, f.inst, f.q, f.detail = int32(sr.Int()), sr.String(), uint32(sr.Uvarint()), rm.Q(sr.Uvarint()), sr.String()
		if ne := sr.Len(1 << 16); ne > 0 {
			f.evidence = make([]events.ID, ne)
			for i := range f.evidence {
				sr.Fixed(f.evidence[i][:])
			}
		}
		if nc := sr.Len(1 << 16); nc > 0 {
			f.checks = make([]check, nc)
			for i := range f.checks {
				f.checks[i] = check{rule: int32(sr.Int()), passed: sr.Bool(), reason: int32(sr.Int()), detail: sr.String()}
			}
		}
		f.ruleSet, f.pos, f.created, f.stream = uint32(sr.Uvarint()), sr.Uvarint(), sr.Varint(), sr.String()
		if sr.Bool() {
			c := &clearing{pos: sr.Uvarint(), created: sr.Varint(), detail: sr.String()}
			if ne := sr.Len(1 << 16); ne > 0 {
				c.evidence = make([]events.ID, ne)
				for i := range c.evidence {
					sr.Fixed(c.evidence[i][:])
				}
			}
			c.ruleSet = uint32(sr.Uvarint())
			f.cleared = c
		}
		if sr.Err() != nil {
			return sr.Err()
		}
		n.flagIdx[f.id] = int32(len(n.flags))
		n.flags = append(n.flags, f)
	}
	if err := sr.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pos, m.strs, m.units, m.flags, m.flagIdx, m.insts = n.pos, n.strs, n.units, n.flags, n.flagIdx, n.insts
	return nil
}

// Check is one check of the flag's decision.
type Check struct {
	Rule   int32     `json:"rule"`
	Passed bool      `json:"passed"`
	Reason rm.Reason `json:"reason"`
	Detail string    `json:"detail"`
}

// Flag is the JSON form of a flag. Status is "open", or "cleared" once a
// FlagCleared closed it: Cleared says how (absent while open).
type Flag struct {
	FlagID string    `json:"flag_id"`
	Reason rm.Reason `json:"reason"`
	Rule   int32     `json:"rule"`
	// Subject is what the flag is about; SubjectKind says whether it is a
	// person key, an institution or something else (an account, a month).
	Subject              string           `json:"subject"`
	SubjectKind          string           `json:"subject_kind"`
	InstitutionID        string           `json:"institution_id,omitempty"`
	InstitutionName      string           `json:"institution_name,omitempty"`
	InstitutionSuspended bool             `json:"institution_suspended"`
	UnitCode             string           `json:"unit_code,omitempty"`
	CurrentUnitCode      string           `json:"current_unit_code,omitempty"`
	Qualification        rm.Qualification `json:"qualification"`
	Detail               string           `json:"detail"`
	Status               string           `json:"status"`
	EvidenceEventIDs     []string         `json:"evidence_event_ids"`
	Checks               []Check          `json:"checks"`
	RuleSetVersion       string           `json:"rule_set_version"`
	Position             uint64           `json:"position"`
	Stream               string           `json:"stream"`
	RecordedAt           time.Time        `json:"recorded_at"`
	Cleared              *Clearing        `json:"cleared,omitempty"`
}

// Statuses of a flag.
const (
	StatusOpen    = "open"
	StatusCleared = "cleared"
	StatusAll     = "all" // Filter.Status only: open and cleared
)

// Clearing is the FlagCleared that closed a flag: why the flag no longer
// holds (Detail), the event's log position and commit time, and its
// decision's evidence (the fact that cleared it first, the flag's event
// among the rest) and rule-set version.
type Clearing struct {
	Position         uint64    `json:"position"`
	RecordedAt       time.Time `json:"recorded_at"`
	Detail           string    `json:"detail"`
	EvidenceEventIDs []string  `json:"evidence_event_ids"`
	RuleSetVersion   string    `json:"rule_set_version"`
}

// ForInstitution returns the flag as the institution it is filed under
// may see it. A concurrent-enrolment flag (rule 16) is filed under the
// institution of the second enrolment, and its detail, checks and
// evidence name the first: another institution's enrolment, which the
// institution may not see. They are replaced by what is its own, and so
// would its clearing's detail and evidence be (no rule clears such a flag).
// A cleared ASSESSMENT_WITHOUT_COMPLETION flag's clearing names the
// institution's own enrolment and the assessment of it, as the flag does:
// it is shown whole.
func (f Flag) ForInstitution() Flag {
	var cut bool
	if f.Detail, cut = rm.FlagDetailForInstitution(f.Reason, f.Detail); cut {
		f.EvidenceEventIDs = []string{}
		f.Checks = []Check{}
		if f.Cleared != nil {
			c := *f.Cleared
			c.Detail, c.EvidenceEventIDs = "", []string{}
			f.Cleared = &c
		}
	}
	return f
}

// WithoutPerson is the flag as a district sees it when it is about a
// trainee outside the district's unit (at an institution of its unit,
// which trains people of other units): the flag, its institution, reason,
// qualification, status and dates, but not who it is about. The subject
// (a person key), its stream, the detail (which names the person's
// assessments and enrolments), the checks and the evidence are withheld,
// and so are the clearing's detail and evidence.
func (f Flag) WithoutPerson() Flag {
	f.Subject, f.Stream, f.Detail = "", "", ""
	f.EvidenceEventIDs, f.Checks = []string{}, []Check{}
	if f.Cleared != nil {
		c := *f.Cleared
		c.Detail, c.EvidenceEventIDs = "", []string{}
		f.Cleared = &c
	}
	return f
}

// ReasonCount counts flags of one reason.
type ReasonCount struct {
	Reason rm.Reason `json:"reason"`
	Count  int64     `json:"count"`
}

// List is the JSON form of the anomalies (GET /v1/anomalies). Open and
// Cleared count the open and the cleared flags that match the filter,
// whichever status it asks for; ByReason and Flags are of the status
// asked.
type List struct {
	Open     int             `json:"open"`
	Cleared  int             `json:"cleared"`
	ByReason []ReasonCount   `json:"by_reason"`
	Flags    []Flag          `json:"flags"`
	Position events.Position `json:"position"`
}

// Filter narrows the list: Unit keeps flags whose institution's unit (as
// recorded or rolled up) is Unit; Institution keeps one institution's;
// Reason one reason code (its name); Status the open flags (StatusOpen,
// or ""), the cleared ones (StatusCleared) or both (StatusAll), none for
// anything else; Limit caps Flags (newest first; zero: 500). Counts cover
// every matching flag.
type Filter struct {
	Unit        string
	Institution string
	Reason      string
	Status      string
	Limit       int
}

// List returns the flags of the status asked (open unless f.Status says
// otherwise), newest first.
func (m *Model) List(f Filter) List {
	if f.Limit <= 0 {
		f.Limit = 500
	}
	if f.Status == "" {
		f.Status = StatusOpen
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := List{Flags: []Flag{}, ByReason: []ReasonCount{}, Position: m.pos}
	counts := map[int32]int64{}
	for i := len(m.flags) - 1; i >= 0; i-- {
		fl := &m.flags[i]
		instID := m.strs.Str(fl.inst)
		in := m.insts[instID]
		unit := m.strs.Str(in.unit)
		cur := m.units.Current(unit)
		if (f.Unit != "" && unit != f.Unit && cur != f.Unit) || (f.Institution != "" && instID != f.Institution) ||
			(f.Reason != "" && pb.ReasonCode(fl.reason).String() != f.Reason) {
			continue
		}
		status := StatusOpen
		if fl.cleared != nil {
			status = StatusCleared
			out.Cleared++
		} else {
			out.Open++
		}
		if f.Status != StatusAll && f.Status != status {
			continue
		}
		counts[fl.reason]++
		if len(out.Flags) >= f.Limit {
			continue
		}
		v := Flag{FlagID: fl.id.String(), Reason: rm.ReasonOf(pb.ReasonCode(fl.reason)), Rule: fl.reason / 100, Subject: fl.subject,
			SubjectKind: "other", InstitutionID: instID, InstitutionName: in.name, InstitutionSuspended: in.suspended,
			UnitCode: unit, CurrentUnitCode: cur, Qualification: fl.q.JSON(), Detail: fl.detail, Status: status,
			EvidenceEventIDs: []string{}, Checks: []Check{}, RuleSetVersion: m.strs.Str(fl.ruleSet), Position: fl.pos,
			Stream: fl.stream, RecordedAt: time.Unix(0, fl.created).UTC()}
		if unit == "" {
			v.CurrentUnitCode = ""
		}
		if _, err := rm.ParsePersonKey(fl.subject); err == nil {
			v.SubjectKind = "person"
		} else if _, ok := m.insts[fl.subject]; ok {
			v.SubjectKind = "institution"
		}
		for _, e := range fl.evidence {
			v.EvidenceEventIDs = append(v.EvidenceEventIDs, e.String())
		}
		for _, c := range fl.checks {
			v.Checks = append(v.Checks, Check{Rule: c.rule, Passed: c.passed, Reason: rm.ReasonOf(pb.ReasonCode(c.reason)), Detail: c.detail})
		}
		if c := fl.cleared; c != nil {
			v.Cleared = &Clearing{Position: c.pos, RecordedAt: time.Unix(0, c.created).UTC(), Detail: c.detail,
				EvidenceEventIDs: make([]string, len(c.evidence)), RuleSetVersion: m.strs.Str(c.ruleSet)}
			for j, e := range c.evidence {
				v.Cleared.EvidenceEventIDs[j] = e.String()
			}
		}
		out.Flags = append(out.Flags, v)
	}
	for _, r := range rm.SortedKeys(counts) {
		out.ByReason = append(out.ByReason, ReasonCount{Reason: rm.ReasonOf(pb.ReasonCode(r)), Count: counts[r]})
	}
	sort.SliceStable(out.ByReason, func(i, j int) bool { return out.ByReason[i].Count > out.ByReason[j].Count })
	return out
}

// Position returns the position of the last event applied.
func (m *Model) Position() events.Position {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.pos
}
