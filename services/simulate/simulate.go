// Package simulate generates a realistic, deterministic programme of inbound
// facts — reference data, trainees from registration to payment, and a few
// planted violations — exactly as the internal services would publish them.
// It is used by `ledgerctl simulate`, the integration tests and the
// benchmarks. The same Config always yields the same facts, byte for byte.
package simulate

import (
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events/facts"
	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// Config sizes a simulated programme.
type Config struct {
	// Seed makes the programme deterministic.
	Seed uint64
	// Year is the calendar year the trainees are assessed in (2025–2030).
	Year int32
	// Trainees is the number of trainees.
	Trainees int
	// Keyer computes person keys from the generated ID numbers, as the
	// publishing services do with the configured HMAC key.
	Keyer *person.Keyer
	// Officials adds the district officials' confirmations and approvals,
	// notice closing, payment requests and the payment system's settlements.
	Officials bool
	// TrainingInstitutions and EvaluationInstitutions (defaults 30 and 10).
	TrainingInstitutions, EvaluationInstitutions int
	// RuleSet is used to predict notice windows and ids (default rules).
	RuleSet *rules.RuleSet
	// Violations plants a few violations for supervisors to find. With
	// Officials, every 50th trainee's certificate is revoked after payment
	// (a clawback), and direct payees 20–29 of every hundred are paid into
	// one shared account (flagged once three trainees share it). Always, a
	// certificate spike (rule 16): one evaluation institution, after months
	// of ordinary business, certifies a cohort of extra trainees in one
	// month, enough to pass the rule set's spike threshold well (see
	// Programme.Spike). The cohort comes on top of Trainees: call Trainee
	// for every index below Programme.Trainees. And every 50th trainee's
	// training completion is published after the certificate (dated
	// before the assessment, as ever): its assessments are flagged
	// ASSESSMENT_WITHOUT_COMPLETION and the completion clears the flags
	// (Profile.LateCompletion).
	Violations bool
}

// Fact is one message a service publishes.
type Fact struct {
	Kind facts.Kind
	// MsgID is the publisher's idempotency key (Nats-Msg-Id).
	MsgID string
	Msg   proto.Message
	// Lane groups facts that must be published in order (one trainee's, or
	// the reference data = lane -1).
	Lane int
}

// Subject is the fact's subject under the inbound prefix.
func (f Fact) Subject(inboundPrefix string) string { return f.Kind.Subject(inboundPrefix) }

// Programme is a generated programme.
type Programme struct {
	cfg      Config
	rs       rules.RuleSet
	units    []refdata.Unit
	training []inst
	eval     []inst
	spike    *Spike
}

// Spike is the planted certificate spike: Cohort extra trainees (indices
// Config.Trainees onwards), all trained for Occupation and certified
// by evaluation institution Institution in Month, on top of the Ordinary
// certificates it issues that month. Cohort is chosen so that the month's
// certificates exceed max(CertificateSpikeMinimum, CertificateSpikeFactor ×
// the mean of the CertificateSpikeMonths months before) by a fifth.
type Spike struct {
	Institution string
	Year        int32
	Month       time.Month
	Occupation  subsidyv1.Occupation
	// History is the institution's certificates in the rule set's months
	// before Month, Ordinary those in Month, from the ordinary trainees.
	History, Ordinary int
	Cohort            int
	evalIndex         int
	trainers          []inst // training institutions teaching Occupation
}

type inst struct {
	id, unit, account string
	occupations       []subsidyv1.Occupation
}

// New prepares a programme.
func New(cfg Config) (*Programme, error) {
	if cfg.Keyer == nil {
		return nil, fmt.Errorf("simulate: a person keyer is required")
	}
	if cfg.Year == 0 {
		cfg.Year = 2025
	}
	if cfg.TrainingInstitutions <= 0 {
		cfg.TrainingInstitutions = 30
	}
	if cfg.EvaluationInstitutions <= 0 {
		cfg.EvaluationInstitutions = 10
	}
	p := &Programme{cfg: cfg, rs: rules.DefaultRuleSet()}
	if cfg.RuleSet != nil {
		p.rs = *cfg.RuleSet
	}
	for _, u := range refdata.Seed().Units() {
		if u.InForce(refdata.D(int(cfg.Year), time.June, 1)) {
			p.units = append(p.units, u)
		}
	}
	if len(p.units) == 0 {
		return nil, fmt.Errorf("simulate: no management unit in force in %d", cfg.Year)
	}
	occs := refdata.Occupations()
	r := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	for i := range cfg.TrainingInstitutions {
		in := inst{id: fmt.Sprintf("T%03d", i+1), unit: p.units[r.IntN(len(p.units))].Code, account: fmt.Sprintf("6222%012d", 100000+i)}
		// Each training institution teaches 3 occupations; every occupation
		// is taught by someone.
		for k := range 3 {
			in.occupations = append(in.occupations, occs[(i+k*4)%len(occs)].Code)
		}
		p.training = append(p.training, in)
	}
	for i := range cfg.EvaluationInstitutions {
		in := inst{id: fmt.Sprintf("E%03d", i+1), unit: p.units[r.IntN(len(p.units))].Code, account: fmt.Sprintf("6228%012d", 100000+i)}
		for k := range 4 {
			in.occupations = append(in.occupations, occs[(i+k*3)%len(occs)].Code)
		}
		p.eval = append(p.eval, in)
	}
	if cfg.Violations {
		p.planSpike()
	}
	return p, nil
}

// Trainees is the number of trainees, the certificate spike's cohort
// included: Trainee is defined for every index below it.
func (p *Programme) Trainees() int {
	if p.spike == nil {
		return p.cfg.Trainees
	}
	return p.cfg.Trainees + p.spike.Cohort
}

// Spike returns the planted certificate spike, nil without Violations.
func (p *Programme) Spike() *Spike {
	if p.spike == nil {
		return nil
	}
	s := *p.spike
	return &s
}

// planSpike picks, by seed, the evaluation institution and the month
// (September to November: six months of ordinary certificates lie before
// it) of the certificate spike, counts the certificates its ordinary
// trainees bring it, and sizes the cohort to pass the threshold by a fifth.
func (p *Programme) planSpike() {
	r := rand.New(rand.NewPCG(p.cfg.Seed, 0x5b1ce))
	ei := r.IntN(len(p.eval))
	ev := p.eval[ei]
	sp := &Spike{Institution: ev.id, Year: p.cfg.Year, Month: time.September + time.Month(r.IntN(3)),
		Occupation: ev.occupations[r.IntN(len(ev.occupations))], evalIndex: ei}
	for _, t := range p.training {
		if contains(t.occupations, sp.Occupation) {
			sp.trainers = append(sp.trainers, t)
		}
	}
	if len(sp.trainers) == 0 {
		return // no one trains for it: no spike (not with the defaults)
	}
	profiles := make([]Profile, p.cfg.Trainees)
	for i := range profiles {
		_, profiles[i] = p.Trainee(i)
	}
	months := certificateMonths(profiles)[ev.id]
	m := monthOf(refdata.D(int(sp.Year), sp.Month, 1))
	sp.Ordinary = months[m]
	for k := 1; k <= p.rs.CertificateSpikeMonths; k++ {
		sp.History += months[m-k]
	}
	// The rule flags a month whose count c has c > minimum and
	// c × months > factor × history.
	need := max(p.rs.CertificateSpikeMinimum+1, p.rs.CertificateSpikeFactor*sp.History/p.rs.CertificateSpikeMonths+1)
	sp.Cohort = max(need+need/5-sp.Ordinary, need/5)
	p.spike = sp
}

func date(y int32, m time.Month, d int) *subsidyv1.Date {
	return refdata.D(int(y), m, d).Proto()
}

// fee is the published fee of a qualification at an evaluation institution.
func fee(evalIndex int, lvl subsidyv1.Level) int64 {
	base := map[subsidyv1.Level]int64{subsidyv1.Level_LEVEL_JUNIOR: 45000, subsidyv1.Level_LEVEL_INTERMEDIATE: 65000, subsidyv1.Level_LEVEL_SENIOR: 90000}[lvl]
	return base + int64(evalIndex%4)*2500
}

// Reference returns the reference data facts: institutions and approvals,
// fee schedules, annual targets 2025–2030 and budgets for the year.
func (p *Programme) Reference() []Fact {
	var out []Fact
	add := func(k facts.Kind, id string, m proto.Message) {
		out = append(out, Fact{Kind: k, MsgID: id, Msg: m, Lane: -1})
	}
	kind := func(m proto.Message, source string) facts.Kind {
		for _, k := range facts.ByName(m.ProtoReflect().Descriptor().FullName()) {
			if k.Source == source {
				return k
			}
		}
		panic("simulate: no fact kind for " + string(m.ProtoReflect().Descriptor().FullName()))
	}
	y := p.cfg.Year
	for y2 := int32(2025); y2 <= 2030; y2++ {
		m := &subsidyv1.AnnualTargetSet{Year: y2, Target: 3000}
		add(kind(m, facts.SourceBureau), fmt.Sprintf("target-%d", y2), m)
	}
	for _, group := range []struct {
		list []inst
		kind subsidyv1.InstitutionKind
	}{{p.training, subsidyv1.InstitutionKind_INSTITUTION_KIND_TRAINING}, {p.eval, subsidyv1.InstitutionKind_INSTITUTION_KIND_EVALUATION}} {
		for _, in := range group.list {
			m := &subsidyv1.InstitutionRegistered{InstitutionId: in.id, Name: "机构 " + in.id, Kind: group.kind, UnitCode: in.unit, BasicAccount: in.account}
			add(kind(m, facts.SourceBureau), "inst-"+in.id, m)
			for _, occ := range in.occupations {
				a := &subsidyv1.InstitutionApproved{ApprovalId: fmt.Sprintf("appr-%s-%d", in.id, occ), InstitutionId: in.id, Occupation: occ,
					ValidFrom: date(2025, time.January, 1), ValidTo: date(2030, time.December, 31)}
				add(kind(a, facts.SourceBureau), a.ApprovalId, a)
			}
		}
	}
	for i, in := range p.eval {
		for _, occ := range in.occupations {
			for _, lvl := range []subsidyv1.Level{subsidyv1.Level_LEVEL_JUNIOR, subsidyv1.Level_LEVEL_INTERMEDIATE, subsidyv1.Level_LEVEL_SENIOR} {
				f := &subsidyv1.FeeSchedulePublished{
					FeeScheduleId:           fmt.Sprintf("fee-%s-%d-%d-%d", in.id, occ, lvl, y),
					EvaluationInstitutionId: in.id,
					Qualification:           &subsidyv1.Qualification{Occupation: occ, Level: lvl},
					FeeFen:                  fee(i, lvl),
					EffectiveFrom:           date(y, time.January, 1),
					EffectiveTo:             date(y, time.December, 31),
					SourceDocument:          fmt.Sprintf("%s 收费公示 %d-%02d", in.id, y, i+1),
				}
				add(kind(f, facts.SourceEvaluation), f.FeeScheduleId, f)
			}
		}
	}
	// Budgets: the expected spend of each unit with a wide margin.
	perUnit := int64(p.Trainees())/int64(len(p.units)) + 1
	for _, u := range p.units {
		b := &subsidyv1.BudgetAllocated{AllocationId: fmt.Sprintf("budget-%d-%s", y, u.Code), Year: y, UnitCode: u.Code,
			AmountFen: perUnit*100000*2 + 1_000_000, SourceDocument: fmt.Sprintf("渝人社 %d 预算", y)}
		add(kind(b, facts.SourceBureau), b.AllocationId, b)
	}
	return out
}
