package rules_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"google.golang.org/protobuf/proto"
)

// gen makes random histories over a small world, so that ids collide,
// facts repeat and arrive out of order, and many paths are taken.
type gen struct {
	r   *rand.Rand
	f   *fx
	out []rules.Fact
	// storylines: per (person, qualification), the next stage and the day.
	stage map[string]int
	day   map[string]refdata.Date
}

var (
	genQuals  = []refdata.Qualification{bdJ, bdS, ccJ}
	genInsts  = []string{"ti-digital", "ti-cloud"}
	genUnits  = []string{"cq-yuzhong", "cq-beibei", "cq-jiangbei"}
	officials = []string{"o1", "o2", "o3"}
)

func (g *gen) pick(n int) int { return g.r.IntN(n) }

func (g *gen) person() string { return fmt.Sprintf("%064x", 1000+g.pick(8)) }

func (g *gen) qual() refdata.Qualification { return genQuals[g.pick(len(genQuals))] }

func (g *gen) date() *subsidyv1.Date {
	return refdata.D(2025, 1, 1).AddDays(g.pick(560)).Proto()
}

func (g *gen) entitlement() string { return rules.EntitlementID(g.person(), g.qual()) }

// lastOrder finds the newest payment order in the log, if any.
func (g *gen) lastOrder() *subsidyv1.PaymentOrdered {
	for i := len(g.f.l.log) - 1; i >= 0; i-- {
		if o, ok := g.f.l.log[i].ev.Payload.(*subsidyv1.PaymentOrdered); ok && g.pick(3) > 0 {
			return o
		}
	}
	return nil
}

func (g *gen) clawback() string {
	for i := len(g.f.l.log) - 1; i >= 0; i-- {
		if c, ok := g.f.l.log[i].ev.Payload.(*subsidyv1.ClawbackRaised); ok {
			return c.ClawbackId
		}
	}
	return "none"
}

// next returns a random fact: mostly the next step of a storyline (a
// person going through registration, training, assessment, certification,
// confirmation, notice and payment, with perturbations), sometimes noise.
func (g *gen) next() proto.Message {
	if g.pick(10) < 7 {
		return g.story()
	}
	return g.fact()
}

func (g *gen) story() proto.Message {
	if g.stage == nil {
		g.stage, g.day = map[string]int{}, map[string]refdata.Date{}
	}
	p, q := g.person(), g.qual()
	inst := genInsts[int(p[63])%2]
	if q == ccJ {
		inst = "ti-digital" // the only one approved for cloud computing
	}
	key := p + q.String()
	st := g.stage[key]
	g.stage[key] = st + 1
	d := g.day[key]
	if d == 0 {
		d = refdata.D(2025, 1, 1).AddDays(g.pick(300))
	}
	d = d.AddDays(1 + g.pick(6))
	g.day[key] = d
	enr := fmt.Sprintf("enr-%s-%s-%s", p[60:], inst, q)
	asmt := fmt.Sprintf("as-%s-%s-1", p[60:], q)
	e := rules.EntitlementID(p, q)
	switch st {
	case 0:
		return &subsidyv1.TraineeRegistered{PersonKey: p, UnitCode: genUnits[int(p[62])%3], Education: 2, EnterpriseEmployee: true}
	case 1:
		return &subsidyv1.EligibilityEvidenceRecorded{EvidenceId: "ev-" + p[58:], PersonKey: p, Category: 2, Source: "s", SnapshotAt: tsOf("2025-01-01"), Confirmed: g.pick(8) > 0, InsuredFrom: dt("2020-01-01")}
	case 2:
		return &subsidyv1.Enrolled{EnrolmentId: enr, PersonKey: p, TrainingInstitutionId: inst, Qualification: q.Proto(), EnrolledOn: d.Proto()}
	case 3:
		return &subsidyv1.AdvancePaymentRecorded{AdvanceId: "adv-" + p[60:] + q.String(), TrainingInstitutionId: inst, PersonKey: p, Qualification: q.Proto(), AmountFen: 80000, PaidOn: d.Proto()}
	case 4:
		return &subsidyv1.TrainingCompleted{EnrolmentId: enr, PersonKey: p, TrainingInstitutionId: inst, Qualification: q.Proto(), CompletedOn: d.Proto()}
	case 5:
		return &subsidyv1.AssessmentRecorded{AssessmentId: asmt, PersonKey: p, EvaluationInstitutionId: "ev-cqpe", Qualification: q.Proto(), Attempt: 1,
			TheoryScore: int32(57 + g.pick(43)), PracticalScore: int32(59 + g.pick(41)), AssessedOn: d.Proto()}
	case 6:
		return &subsidyv1.CertificateIssued{CertificateId: "cert-" + asmt, PersonKey: p, EvaluationInstitutionId: "ev-cqpe", Qualification: q.Proto(), AssessmentId: asmt, IssuedOn: d.Proto()}
	case 7:
		return &subsidyv1.EntitlementConfirmed{EntitlementId: e, OfficialId: "o1", ConfirmedOn: d.Proto()}
	case 8:
		return &subsidyv1.EntitlementApproved{EntitlementId: e, OfficialId: officials[1+g.pick(2)], ApprovedOn: d.Proto()}
	case 9:
		if g.pick(3) == 0 {
			return &subsidyv1.ObjectionRaised{ObjectionId: "obj-" + p[60:] + q.String(), EntitlementId: e, RaisedOn: d.Proto()}
		}
		return g.story()
	case 10:
		return &subsidyv1.ObjectionResolved{ObjectionId: "obj-" + p[60:] + q.String(), EntitlementId: e, Upheld: g.pick(4) == 0, OfficialId: "o3", ResolvedOn: d.Proto()}
	case 11:
		g.day[key] = d.AddDays(15)
		return &subsidyv1.NoticeClosed{EntitlementId: e, ClosedOn: d.AddDays(15).Proto()}
	case 12, 14:
		return &subsidyv1.PaymentRequested{EntitlementId: e, OfficialId: "o1", RequestedOn: d.Proto()}
	case 13, 15:
		for i := len(g.f.l.log) - 1; i >= 0; i-- {
			if o, ok := g.f.l.log[i].ev.Payload.(*subsidyv1.PaymentOrdered); ok && o.EntitlementId == e {
				if g.pick(4) == 0 {
					return &subsidyv1.PaymentFailed{PaymentOrderId: o.PaymentOrderId, EntitlementId: e, Failure: "x", FailedOn: d.Proto()}
				}
				return &subsidyv1.PaymentSettled{PaymentOrderId: o.PaymentOrderId, EntitlementId: e, AmountFen: o.NetFen,
					PaidToAccount: []string{"acct-digital", "acct-cloud", "tok-shared", "tok-" + p[60:]}[g.pick(4)], SettledOn: d.Proto()}
			}
		}
		return g.fact()
	case 16:
		if g.pick(3) == 0 {
			return &subsidyv1.CertificateRevoked{CertificateId: "cert-" + asmt, PersonKey: p, Qualification: q.Proto(), RevokedOn: d.Proto()}
		}
		return &subsidyv1.FraudFound{FindingId: "fr-" + p[60:] + q.String(), EntitlementId: e, OfficialId: "sup", FoundOn: d.Proto()}
	}
	return g.fact()
}

func (g *gen) fact() proto.Message {
	p, q, inst := g.person(), g.qual(), genInsts[g.pick(2)]
	enr := fmt.Sprintf("enr-%s-%s-%s", p[60:], inst, q)
	asmt := fmt.Sprintf("as-%s-%s-%d", p[60:], q, 1+g.pick(2))
	switch g.pick(24) {
	case 0:
		return &subsidyv1.TraineeRegistered{PersonKey: p, UnitCode: genUnits[g.pick(3)], Education: subsidyv1.Education(1 + g.pick(3)), EnterpriseEmployee: g.pick(2) == 0}
	case 1:
		if g.pick(2) == 0 {
			return &subsidyv1.EligibilityEvidenceRecorded{EvidenceId: fmt.Sprintf("ev-%d", g.pick(20)), PersonKey: p, Category: 1, Source: "s", SnapshotAt: tsOf("2025-01-01"), Confirmed: g.pick(4) > 0, GraduationYear: int32(2025 + g.pick(2))}
		}
		return &subsidyv1.EligibilityEvidenceRecorded{EvidenceId: fmt.Sprintf("ev-%d", g.pick(20)), PersonKey: p, Category: 2, Source: "s", SnapshotAt: tsOf("2025-01-01"), Confirmed: g.pick(4) > 0, InsuredFrom: g.date()}
	case 2, 3:
		return &subsidyv1.Enrolled{EnrolmentId: enr, PersonKey: p, TrainingInstitutionId: inst, Qualification: q.Proto(), EnrolledOn: g.date()}
	case 4, 5:
		return &subsidyv1.TrainingCompleted{EnrolmentId: enr, PersonKey: p, TrainingInstitutionId: inst, Qualification: q.Proto(), CompletedOn: g.date()}
	case 6:
		return &subsidyv1.AdvancePaymentRecorded{AdvanceId: fmt.Sprintf("adv-%d", g.pick(30)), TrainingInstitutionId: inst, PersonKey: p, Qualification: q.Proto(), AmountFen: 80000, PaidOn: g.date()}
	case 7, 8:
		return &subsidyv1.AssessmentRecorded{AssessmentId: asmt, PersonKey: p, EvaluationInstitutionId: "ev-cqpe", TrainingInstitutionId: []string{"", inst}[g.pick(2)],
			Qualification: q.Proto(), Attempt: uint32(1 + g.pick(2)), TheoryScore: int32(50 + g.pick(30)), PracticalScore: int32(55 + g.pick(30)), AssessedOn: g.date()}
	case 9, 10:
		return &subsidyv1.CertificateIssued{CertificateId: fmt.Sprintf("cert-%d", g.pick(40)), PersonKey: p, EvaluationInstitutionId: "ev-cqpe", Qualification: q.Proto(), AssessmentId: asmt, IssuedOn: g.date()}
	case 11:
		return &subsidyv1.CertificateRevoked{CertificateId: fmt.Sprintf("cert-%d", g.pick(40)), PersonKey: p, Qualification: q.Proto(), RevokedOn: g.date()}
	case 12:
		return &subsidyv1.EntitlementConfirmed{EntitlementId: g.entitlement(), OfficialId: officials[g.pick(3)], ConfirmedOn: g.date()}
	case 13:
		return &subsidyv1.EntitlementApproved{EntitlementId: g.entitlement(), OfficialId: officials[g.pick(3)], ApprovedOn: g.date()}
	case 14:
		if g.pick(2) == 0 {
			return &subsidyv1.ObjectionRaised{ObjectionId: fmt.Sprintf("obj-%d", g.pick(10)), EntitlementId: g.entitlement(), RaisedOn: g.date()}
		}
		return &subsidyv1.ObjectionResolved{ObjectionId: fmt.Sprintf("obj-%d", g.pick(10)), EntitlementId: g.entitlement(), Upheld: g.pick(3) == 0, OfficialId: "o", ResolvedOn: g.date()}
	case 15:
		return &subsidyv1.NoticeClosed{EntitlementId: g.entitlement(), ClosedOn: g.date()}
	case 16, 17:
		return &subsidyv1.PaymentRequested{EntitlementId: g.entitlement(), OfficialId: "o1", RequestedOn: g.date()}
	case 18:
		o := g.lastOrder()
		if o == nil {
			return &subsidyv1.PaymentFailed{PaymentOrderId: "none", EntitlementId: g.entitlement(), FailedOn: g.date()}
		}
		amt := o.NetFen
		if g.pick(6) == 0 {
			amt += int64(g.pick(3)) - 1
		}
		if g.pick(3) == 0 {
			return &subsidyv1.PaymentFailed{PaymentOrderId: o.PaymentOrderId, EntitlementId: o.EntitlementId, Failure: "x", FailedOn: g.date()}
		}
		return &subsidyv1.PaymentSettled{PaymentOrderId: o.PaymentOrderId, EntitlementId: o.EntitlementId, AmountFen: max(amt, 0),
			PaidToAccount: []string{"acct-digital", "acct-cloud", "tok-shared", "tok-x"}[g.pick(4)], SettledOn: g.date()}
	case 19:
		return &subsidyv1.FraudFound{FindingId: fmt.Sprintf("fr-%d", g.pick(10)), EntitlementId: g.entitlement(), OfficialId: "sup", FoundOn: g.date()}
	case 20:
		switch g.pick(3) {
		case 0:
			return &subsidyv1.RepaymentReceived{RepaymentId: fmt.Sprintf("rp-%d", g.pick(50)), ClawbackId: g.clawback(), AmountFen: int64(1 + g.pick(90000)), ReceivedOn: g.date()}
		case 1:
			return &subsidyv1.WriteOffRequested{ClawbackId: g.clawback(), AmountFen: int64(1 + g.pick(90000)), Reason: "r", OfficialId: officials[g.pick(3)]}
		default:
			return &subsidyv1.ClawbackWrittenOff{ClawbackId: g.clawback(), AmountFen: int64(1 + g.pick(90000)), Reason: "r", RequestedBy: officials[g.pick(3)], ApprovedBy: officials[g.pick(3)]}
		}
	case 21:
		return &subsidyv1.BudgetAllocated{AllocationId: fmt.Sprintf("al-%d", g.pick(40)), Year: int32(2025 + g.pick(2)), UnitCode: genUnits[g.pick(3)], AmountFen: int64(g.pick(4)) * 80000}
	case 22:
		if g.pick(2) == 0 {
			return &subsidyv1.HoldPlaced{HoldId: fmt.Sprintf("h-%d", g.pick(10)), EntitlementId: g.entitlement(), OfficialId: "sup", PlacedOn: g.date()}
		}
		return &subsidyv1.HoldLifted{LiftId: fmt.Sprintf("l-%d", g.pick(30)), EntitlementId: g.entitlement(),
			HoldId: []string{"quality", "budget", fmt.Sprintf("supervisor/h-%d", g.pick(10)), fmt.Sprintf("objection/obj-%d", g.pick(10))}[g.pick(4)], OfficialId: "sup", LiftedOn: g.date()}
	default:
		if g.pick(4) == 0 {
			return &subsidyv1.InstitutionSuspended{InstitutionId: inst, Reason: "r", OfficialId: "sup", SuspendedOn: g.date()}
		}
		return &subsidyv1.InstitutionReinstated{InstitutionId: inst, OfficialId: "sup", ReinstatedOn: g.date()}
	}
}

// genFx is the fixture of random histories: fx with budgets for more units.
func genFx(t testing.TB, rs rules.RuleSet) *fx {
	f := newFx(t, rs)
	for _, u := range []string{"cq-beibei", "cq-jiangbei", "cq-liangjiang"} {
		f.must(&subsidyv1.BudgetAllocated{AllocationId: "seed-" + u, Year: 2025, UnitCode: u, AmountFen: 400000})
	}
	return f
}

type outcome struct {
	d   rules.Decision
	rej *rules.Rejection
}

// history generates and decides steps random facts on a fresh fixture.
func history(t testing.TB, seed uint64, steps int, rs rules.RuleSet) (*gen, []outcome) {
	g := &gen{r: rand.New(rand.NewPCG(seed, 7)), f: genFx(t, rs)}
	var outs []outcome
	for i := 0; i < steps; i++ {
		m := g.next()
		fact := rules.Fact{EventID: events.DeriveID("fact", fmt.Sprint(seed), fmt.Sprint(i)), MessageID: fmt.Sprint(i), Payload: m}
		// Sometimes redeliver an earlier fact under a new message id.
		if len(g.out) > 0 && g.pick(20) == 0 {
			fact.Payload = g.out[g.pick(len(g.out))].Payload
		}
		g.out = append(g.out, fact)
		d, rej := g.f.l.decide(fact)
		outs = append(outs, outcome{d, rej})
	}
	return g, outs
}

func TestPropertyRandomHistories(t *testing.T) {
	rs := rules.DefaultRuleSet()
	rs.PassRateWindow, rs.SharedAccountThreshold, rs.Version = 3, 2, "prop"
	seeds, steps := 30, 600
	if testing.Short() {
		seeds = 5
	}
	accepted, derived := 0, 0
	kinds := map[string]int{}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		g, outs := history(t, seed, steps, rs)
		log := g.f.l.log
		// Every history: the invariants of the log.
		checkInvariants(t, log)
		checkPaymentsGuarded(t, log)

		// Replaying the same facts under the same rule set reproduces every
		// decision byte for byte.
		again := &gen{f: genFx(t, rs)}
		for i, fact := range g.out {
			d, rej := again.f.l.decide(fact)
			if (rej == nil) != (outs[i].rej == nil) {
				t.Fatalf("seed %d step %d: replay decided %v; first run %v", seed, i, rej, outs[i].rej)
			}
			if rej == nil {
				if err := sameDecision(t, d, outs[i].d); err != nil {
					t.Fatalf("seed %d step %d: replay differs: %v", seed, i, err)
				}
			} else if rej.Reason != outs[i].rej.Reason || rej.Detail != outs[i].rej.Detail {
				t.Fatalf("seed %d step %d: replay rejected %v; first run %v", seed, i, rej, outs[i].rej)
			}
		}

		// A World rebuilt from the stored log by Apply alone decides like
		// the one that made the log.
		rebuilt := replay(t, rs, log)
		probe := &gen{r: rand.New(rand.NewPCG(seed, 99)), f: g.f}
		for i := 0; i < 100; i++ {
			fact := rules.Fact{EventID: events.DeriveID("probe", fmt.Sprint(seed), fmt.Sprint(i)), Payload: probe.next()}
			d1, r1 := g.f.l.w.Decide(fact)
			d2, r2 := rebuilt.Decide(fact)
			if (r1 == nil) != (r2 == nil) || (r1 != nil && *r1 != *r2) {
				t.Fatalf("seed %d probe %d: rebuilt world decided %v; live %v", seed, i, r2, r1)
			}
			if r1 == nil {
				if err := sameDecision(t, d1, d2); err != nil {
					t.Fatalf("seed %d probe %d: rebuilt world differs: %v", seed, i, err)
				}
			}
		}
		for _, o := range outs {
			if o.rej == nil {
				accepted++
				for _, e := range o.d.Derived() {
					derived++
					kinds[string(e.Payload.ProtoReflect().Descriptor().Name())]++
				}
			}
		}
	}
	t.Logf("%d facts accepted, %d derived events: %v", accepted, derived, kinds)
	// The generator must reach deep states, or the properties say little.
	for _, k := range []string{"SubsidyEntitled", "SubsidyDenied", "NoticeOpened", "PaymentOrdered", "EntitlementHeld", "EntitlementReleased", "ClawbackRaised", "ClawbackRecovered", "ViolationFlagged"} {
		if kinds[k] == 0 {
			t.Errorf("random histories never derived a %s", k)
		}
	}
}

// checkPaymentsGuarded: every payment order is for an entitlement
// confirmed, approved by another official, noticed, closed and without
// holds at the time.
func checkPaymentsGuarded(t *testing.T, log []stored) {
	t.Helper()
	type st struct {
		maker, checker string
		closed         bool
		holds          map[string]bool
	}
	ents := map[string]*st{}
	get := func(id string) *st {
		if ents[id] == nil {
			ents[id] = &st{holds: map[string]bool{}}
		}
		return ents[id]
	}
	for _, s := range log {
		switch m := s.ev.Payload.(type) {
		case *subsidyv1.EntitlementConfirmed:
			get(m.EntitlementId).maker = m.OfficialId
		case *subsidyv1.EntitlementApproved:
			e := get(m.EntitlementId)
			if e.maker == "" || e.maker == m.OfficialId {
				t.Errorf("entitlement %s approved by %q, confirmed by %q", m.EntitlementId, m.OfficialId, e.maker)
			}
			e.checker = m.OfficialId
		case *subsidyv1.NoticeClosed:
			get(m.EntitlementId).closed = true
		case *subsidyv1.EntitlementHeld:
			get(m.EntitlementId).holds[m.HoldId] = true
		case *subsidyv1.EntitlementReleased:
			delete(get(m.EntitlementId).holds, m.HoldId)
		case *subsidyv1.PaymentOrdered:
			e := get(m.EntitlementId)
			if e.checker == "" || !e.closed || len(e.holds) > 0 {
				t.Errorf("payment order %s for entitlement %s: approved by %q, notice closed %v, holds %v", m.PaymentOrderId, m.EntitlementId, e.checker, e.closed, e.holds)
			}
		}
	}
}
