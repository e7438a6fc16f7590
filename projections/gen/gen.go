// Package gen generates plausible ledger histories for tests and
// benchmarks: reference data, budgets and targets, and trainees who
// register, enrol, train, sit assessments, get certified and then subsidised
// or denied, with the ledger's derived decisions (entitlements, holds and
// releases, notices, payment orders, clawbacks, recoveries, flags) written
// the way the rules engine writes them: the fact first, then what it caused,
// in one append to the fact's home stream (see package rules).
//
// It is not the rules engine: it makes the decisions a simple, seeded
// simulation dictates, so that read models meet every kind of event in a
// realistic mix and order. The same Config always yields the same history.
package gen

import (
	"container/heap"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/refdata"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// Config sizes a history.
type Config struct {
	Seed int64
	// Trainees is the number of trainees registered over the period.
	Trainees int
	// TrainingInstitutions and EvaluationInstitutions; zero means a number
	// that grows with Trainees.
	TrainingInstitutions   int
	EvaluationInstitutions int
	// FirstYear and LastYear bound the registrations (default 2025-2030).
	FirstYear, LastYear int
	// BudgetFactor scales the yearly budgets against the expected spend
	// (default 0.85: some entitlements wait for a top-up).
	BudgetFactor float64
	// Until, if set, ends the history the day before it, as if it were
	// today: lifecycles are left where they are (notices open, payments in
	// flight).
	Until refdata.Date
}

// Batch is one append: events for one stream. Barrier is set when the
// batch refers to events of other streams that must be committed before
// it (a budget release, a clawback offset); an appender that writes
// streams concurrently must wait for everything before a barrier.
type Batch struct {
	Stream  string
	Events  []events.EventData
	Barrier bool
	// Day is the simulated date of the batch.
	Day refdata.Date
}

// RuleSetVersion is written into every derived decision.
const RuleSetVersion = "2025.1"

type inst struct {
	id      string
	kind    pb.InstitutionKind
	unit    string
	account string
	// passBP is the institution's first-attempt pass rate in basis points.
	passBP    int
	window    map[refdata.Qualification][]bool
	flagged   map[refdata.Qualification]bool
	flagCount map[refdata.Qualification]int
	suspended bool
	// open clawbacks against this institution as payee, oldest first.
	clawbacks []*clawback
	certMonth map[int]int
}

type fundKey struct {
	year int32
	unit string
}

type fund struct {
	allocated, committed int64
	queue                []*trainee
}

type clawback struct {
	id          string
	ent         *trainee
	outstanding int64
	payee       *pb.Payee
}

type trainee struct {
	key, stream string
	unit        string
	employee    bool
	gradYear    int32
	evidence    *pb.EligibilityEvidenceRecorded
	q           refdata.Qualification
	train       *inst
	eval        *inst
	enrolmentID string
	enrolledOn  refdata.Date
	completedOn refdata.Date
	attempts    int
	passedOn    refdata.Date
	passAttempt int
	assessID    string
	certID      string
	certOn      refdata.Date
	advance     bool
	advanceFen  int64

	// entitlement
	entID      string
	amount     int64
	year       int32
	entUnit    string
	payee      *pb.Payee
	holds      map[string]bool
	budgetHeld bool
	cancelled  bool
	noticeEnd  refdata.Date
	closed     bool
	payAttempt uint32
	paid       bool
	inFlight   bool
	cb         *clawback
}

// Gen is a running generation.
type Gen struct {
	cfg         Config
	rnd         *rand.Rand
	emit        func(Batch) error
	err         error
	seq         uint64
	steps       stepHeap
	units       []string
	train       []*inst
	eval        []*inst
	fees        map[string]map[refdata.Qualification]int64 // eval inst -> fee
	feeIDs      map[string]map[refdata.Qualification]string
	funds       map[fundKey]*fund
	n           int // trainees made
	barrierNext bool
	flags       map[string]bool
	accounts    map[string]int
	// Stats counts what was generated.
	Stats Stats
}

// Stats counts a generated history.
type Stats struct {
	Batches, Events int
	Trainees        int
}

type step struct {
	day refdata.Date
	seq uint64
	run func(day refdata.Date)
}

type stepHeap []step

func (h stepHeap) Len() int { return len(h) }
func (h stepHeap) Less(i, j int) bool {
	if h[i].day != h[j].day {
		return h[i].day < h[j].day
	}
	return h[i].seq < h[j].seq
}
func (h stepHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *stepHeap) Push(x any)   { *h = append(*h, x.(step)) }
func (h *stepHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = step{}
	*h = old[:len(old)-1]
	return s
}

// Generate produces the history cfg describes, calling emit for each batch
// in order. It stops at emit's first error and returns it.
func Generate(cfg Config, emit func(Batch) error) (Stats, error) {
	if cfg.FirstYear == 0 {
		cfg.FirstYear = 2025
	}
	if cfg.LastYear == 0 {
		cfg.LastYear = 2030
	}
	if cfg.BudgetFactor == 0 {
		cfg.BudgetFactor = 0.85
	}
	if cfg.TrainingInstitutions == 0 {
		cfg.TrainingInstitutions = min(2000, max(6, cfg.Trainees/500))
	}
	if cfg.EvaluationInstitutions == 0 {
		cfg.EvaluationInstitutions = min(200, max(3, cfg.Trainees/5000))
	}
	g := &Gen{
		cfg:      cfg,
		rnd:      rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed)),
		emit:     emit,
		fees:     map[string]map[refdata.Qualification]int64{},
		feeIDs:   map[string]map[refdata.Qualification]string{},
		funds:    map[fundKey]*fund{},
		flags:    map[string]bool{},
		accounts: map[string]int{},
	}
	for _, u := range refdata.Seed().InForce(refdata.D(cfg.FirstYear, 1, 1)) {
		g.units = append(g.units, u.Code)
	}
	g.reference()
	months := (cfg.LastYear - cfg.FirstYear + 1) * 12
	for m := 0; m < months && g.err == nil; m++ {
		y, mo := cfg.FirstYear+m/12, time.Month(m%12+1)
		first := refdata.D(y, mo, 1)
		if mo == time.January {
			g.at(first, func(d refdata.Date) { g.yearStart(int32(y), d) })
		}
		if mo == time.July {
			g.at(first, func(d refdata.Date) { g.topUp(int32(y), d) })
		}
		if first.Year() == refdata.ReformDate.Year() && first.Month() == refdata.ReformDate.Month() {
			// The new district gets a budget for the rest of its first year.
			g.at(refdata.ReformDate, func(d refdata.Date) {
				g.allocate(int32(d.Year()), "cq-liangjiang", int64(cfg.Trainees)*400+100000, d, "R")
			})
		}
		cohort := cfg.Trainees / months
		if m < cfg.Trainees%months {
			cohort++
		}
		for range cohort {
			day := first.AddDays(g.rnd.IntN(28))
			g.at(day, g.newTrainee)
		}
		next := first.AddDays(32)
		next = refdata.D(next.Year(), next.Month(), 1)
		g.runUntil(next)
	}
	// Let lifecycles finish, up to a year after the period.
	g.runUntil(refdata.D(cfg.LastYear+2, 1, 1))
	return g.Stats, g.err
}

func (g *Gen) at(day refdata.Date, run func(refdata.Date)) {
	g.seq++
	heap.Push(&g.steps, step{day: day, seq: g.seq, run: run})
}

func (g *Gen) runUntil(end refdata.Date) {
	if g.cfg.Until != 0 && end > g.cfg.Until {
		end = g.cfg.Until
	}
	for g.err == nil && g.steps.Len() > 0 && g.steps[0].day < end {
		s := heap.Pop(&g.steps).(step)
		s.run(s.day)
	}
}

func (g *Gen) chance(pct float64) bool { return g.rnd.Float64()*100 < pct }

func (g *Gen) id(kind string, parts ...string) string {
	return events.DeriveID(kind, parts...).String()
}

func ts(d refdata.Date, secs int) *timestamppb.Timestamp {
	t := time.Date(d.Year(), d.Month(), d.Day(), 9, 0, 0, 0, time.FixedZone("CST", 8*3600)).Add(time.Duration(secs) * time.Second)
	return timestamppb.New(t)
}

// append encodes one fact and the derived events after it and emits them
// as one batch. The fact's id is derived from msgID.
func (g *Gen) append(stream string, day refdata.Date, source, msgID string, fact proto.Message, derived ...derivedEv) {
	if g.err != nil {
		return
	}
	factID := events.DeriveID("fact", msgID)
	secs := g.rnd.IntN(8 * 3600)
	env := &pb.Envelope{OccurredAt: ts(day, secs), RecordedAt: ts(day, secs+1), Source: source, CorrelationId: msgID, MessageId: msgID}
	evs := make([]events.EventData, 0, 1+len(derived))
	ed, err := codec.Encode(factID, stream, env, fact)
	if err != nil {
		g.err = err
		return
	}
	evs = append(evs, ed)
	for _, d := range derived {
		denv := &pb.Envelope{OccurredAt: env.OccurredAt, RecordedAt: env.RecordedAt, Source: "ledger",
			CausationId: factID.String(), CorrelationId: msgID, RuleSetVersion: RuleSetVersion}
		ed, err := codec.Encode(d.id, stream, denv, d.msg)
		if err != nil {
			g.err = err
			return
		}
		evs = append(evs, ed)
	}
	b := Batch{Stream: stream, Events: evs, Barrier: g.barrierNext, Day: day}
	g.barrierNext = false
	g.Stats.Batches++
	g.Stats.Events += len(evs)
	g.err = g.emit(b)
}

type derivedEv struct {
	id  events.ID
	msg proto.Message
}

func dv(kind string, parts ...string) func(proto.Message) derivedEv {
	return func(m proto.Message) derivedEv { return derivedEv{events.DeriveID(kind, parts...), m} }
}

func decision(evidence []string, checks ...*pb.Check) *pb.Decision {
	return &pb.Decision{RuleSetVersion: RuleSetVersion, EvidenceEventIds: evidence, Checks: checks}
}

func check(rule int32, passed bool, reason pb.ReasonCode, detail string) *pb.Check {
	return &pb.Check{Rule: rule, Passed: passed, Reason: reason, Detail: detail}
}

func (g *Gen) reference() {
	occs := refdata.Occupations()
	nt, ne := g.cfg.TrainingInstitutions, g.cfg.EvaluationInstitutions
	for i := range nt + ne {
		in := &inst{
			kind:      pb.InstitutionKind_INSTITUTION_KIND_TRAINING,
			unit:      g.units[g.rnd.IntN(len(g.units))],
			window:    map[refdata.Qualification][]bool{},
			flagged:   map[refdata.Qualification]bool{},
			flagCount: map[refdata.Qualification]int{},
			certMonth: map[int]int{},
		}
		if i < nt {
			in.id = fmt.Sprintf("T%04d", i+1)
			in.passBP = 6500 + g.rnd.IntN(2500)
			if i%7 == 3 {
				in.passBP = 3500 + g.rnd.IntN(1500) // a weak school
			}
			g.train = append(g.train, in)
		} else {
			in.kind = pb.InstitutionKind_INSTITUTION_KIND_EVALUATION
			in.id = fmt.Sprintf("E%03d", i-nt+1)
			g.eval = append(g.eval, in)
		}
		in.account = fmt.Sprintf("6222%012d", 100000+i)
		day := refdata.D(g.cfg.FirstYear-1, 12, 1+i%28)
		stream := "institution-" + in.id
		g.append(stream, day, "bureau", "reg-"+in.id, &pb.InstitutionRegistered{
			InstitutionId: in.id, Name: "机构" + in.id, Kind: in.kind, UnitCode: in.unit, BasicAccount: in.account})
		for _, o := range occs {
			g.append(stream, day, "bureau", "appr-"+in.id+"-"+o.Slug, &pb.InstitutionApproved{
				ApprovalId: "A-" + in.id + "-" + o.Slug, InstitutionId: in.id, Occupation: o.Code,
				ValidFrom: refdata.D(g.cfg.FirstYear-1, 1, 1).Proto(), ValidTo: refdata.D(g.cfg.LastYear+2, 12, 31).Proto()})
		}
	}
	for _, e := range g.eval {
		g.fees[e.id] = map[refdata.Qualification]int64{}
		g.feeIDs[e.id] = map[refdata.Qualification]string{}
		for _, q := range refdata.Qualifications() {
			fee := int64(30000+int(q.Level)*25000+int(q.Occupation)*1000) + int64(g.rnd.IntN(10))*1000
			id := "F-" + e.id + "-" + q.String()
			g.fees[e.id][q] = fee
			g.feeIDs[e.id][q] = id
			g.append("fee-"+e.id, refdata.D(g.cfg.FirstYear-1, 12, 15), "evaluation", "fee-"+id, &pb.FeeSchedulePublished{
				FeeScheduleId: id, EvaluationInstitutionId: e.id, Qualification: q.Proto(), FeeFen: fee,
				EffectiveFrom: refdata.D(g.cfg.FirstYear-1, 12, 15).Proto(), SourceDocument: "渝人社评〔" + strconv.Itoa(g.cfg.FirstYear) + "〕" + e.id})
		}
	}
	g.barrierNext = true
}

func (g *Gen) unitOn(code string, d refdata.Date) string {
	u, err := refdata.Seed().RollUp(code, d)
	if err != nil {
		return code
	}
	return u.Code
}

func (g *Gen) yearStart(y int32, d refdata.Date) {
	target := int32(3000)
	if y%2 == 0 {
		target = 3200
	}
	// One year is left at the default: the dashboard falls back to 3,000.
	if y != int32(g.cfg.FirstYear)+1 {
		g.append("target-"+strconv.Itoa(int(y)), d, "bureau", "target-"+strconv.Itoa(int(y)), &pb.AnnualTargetSet{Year: y, Target: target})
	}
	perYear := float64(g.cfg.Trainees) / float64(g.cfg.LastYear-g.cfg.FirstYear+1)
	units := refdata.Seed().InForce(d)
	for _, u := range units {
		amount := int64(perYear/float64(len(units))*0.45*80000*g.cfg.BudgetFactor/2) + 100000
		g.allocate(y, u.Code, amount, d, "Y")
	}
}

func (g *Gen) topUp(y int32, d refdata.Date) {
	for _, u := range refdata.Seed().InForce(d) {
		f := g.funds[fundKey{y, u.Code}]
		if f == nil {
			continue
		}
		amount := f.allocated / 2
		for _, t := range f.queue {
			amount += t.amount
		}
		g.allocate(y, u.Code, amount, d, "H")
	}
}

func (g *Gen) fund(y int32, unit string) *fund {
	k := fundKey{y, unit}
	f := g.funds[k]
	if f == nil {
		f = &fund{}
		g.funds[k] = f
	}
	return f
}

func (g *Gen) allocate(y int32, unit string, amount int64, d refdata.Date, tag string) {
	f := g.fund(y, unit)
	f.allocated += amount
	allocID := fmt.Sprintf("B-%d-%s-%s", y, unit, tag)
	var derived []derivedEv
	room := f.allocated - f.committed
	rest := f.queue[:0:0]
	for _, t := range f.queue {
		if t.amount <= room && !t.cancelled {
			room -= t.amount
			f.committed += t.amount
			t.budgetHeld = false
			delete(t.holds, "budget")
			derived = append(derived, dv("release", t.entID, "budget")(&pb.EntitlementReleased{
				EntitlementId: t.entID, Reason: pb.ReasonCode_REASON_CODE_BUDGET_EXCEEDED, HoldId: "budget",
				Decision: decision([]string{events.DeriveID("fact", "budget-"+allocID).String()}, check(11, true, pb.ReasonCode_REASON_CODE_UNSPECIFIED, "allocation makes room"))}))
		} else if !t.cancelled {
			rest = append(rest, t)
		}
	}
	f.queue = rest
	if len(derived) > 0 {
		g.barrierNext = true
	}
	g.append(fmt.Sprintf("fund-%d-%s", y, unit), d, "bureau", "budget-"+allocID, &pb.BudgetAllocated{
		AllocationId: allocID, Year: y, UnitCode: unit, AmountFen: amount, SourceDocument: "渝财社〔" + strconv.Itoa(int(y)) + "〕" + tag}, derived...)
}

var surnames = []string{"张", "王", "李", "赵", "刘", "陈", "杨", "黄", "周", "吴", "欧阳", "徐", "孙", "马", "朱"}
var givens = []string{"伟", "芳", "娜", "敏", "静", "磊", "强", "洋", "艳", "杰", "涛", "明", "超", "秀英", "建华"}

func (g *Gen) newTrainee(day refdata.Date) {
	g.n++
	g.Stats.Trainees++
	sum := sha256.Sum256([]byte(fmt.Sprintf("person-%d-%d", g.cfg.Seed, g.n)))
	t := &trainee{key: hex.EncodeToString(sum[:]), holds: map[string]bool{}}
	t.stream = "trainee-" + t.key
	// Units before the reform include the two abolished districts.
	units := refdata.Seed().InForce(day)
	t.unit = units[g.rnd.IntN(len(units))].Code
	t.employee = g.chance(55)
	if !t.employee {
		t.gradYear = int32(day.Year())
		if g.chance(20) {
			t.gradYear++
		}
	}
	edu := pb.Education_EDUCATION_BACHELOR
	switch {
	case g.chance(30):
		edu = pb.Education_EDUCATION_ASSOCIATE
	case g.chance(10):
		edu = pb.Education_EDUCATION_MASTER
	}
	name := surnames[g.rnd.IntN(len(surnames))] + givens[g.rnd.IntN(len(givens))]
	if g.chance(60) {
		name += givens[g.rnd.IntN(len(givens))]
	}
	rn := []rune(name)
	masked := string(rn[0]) + "*"
	if len(rn) > 2 {
		masked = string(rn[0])
		for range len(rn) - 2 {
			masked += "*"
		}
		masked += string(rn[len(rn)-1])
	}
	last := fmt.Sprintf("%03d", g.rnd.IntN(1000))
	if g.chance(9) {
		last += "X"
	} else {
		last += strconv.Itoa(g.rnd.IntN(10))
	}
	maskedID := "500" + strconv.Itoa(1+g.rnd.IntN(3)) + "**********" + last
	g.append(t.stream, day, "enrolment", "reg-"+t.key, &pb.TraineeRegistered{
		PersonKey: t.key, MaskedName: masked, MaskedId: maskedID, UnitCode: t.unit, Education: edu,
		EnterpriseEmployee: t.employee, GraduationYear: t.gradYear})
	if !g.chance(6) {
		ev := &pb.EligibilityEvidenceRecorded{EvidenceId: "EV-" + t.key[:16], PersonKey: t.key, SnapshotAt: ts(day, 60), Confirmed: !g.chance(4)}
		if t.employee {
			ev.Category = pb.EligibilityCategory_ELIGIBILITY_CATEGORY_ENTERPRISE_EMPLOYEE
			ev.Source = "social-insurance"
			ev.InsuredFrom = day.AddDays(-400 - g.rnd.IntN(2000)).Proto()
			if g.chance(5) {
				ev.InsuredTo = day.AddDays(30).Proto()
			}
		} else {
			ev.Category = pb.EligibilityCategory_ELIGIBILITY_CATEGORY_GRADUATING_STUDENT
			ev.Source = "education-register"
			ev.GraduationYear = t.gradYear
		}
		t.evidence = ev
		g.append(t.stream, day, "enrolment", "evid-"+t.key, ev)
	}
	g.at(day.AddDays(1+g.rnd.IntN(10)), func(d refdata.Date) { g.enrol(t, d) })
}

func (g *Gen) pickTrain(t *trainee) *inst {
	for range 10 {
		in := g.train[g.rnd.IntN(len(g.train))]
		if in.suspended {
			continue
		}
		if in.unit == t.unit || g.chance(40) {
			return in
		}
	}
	for _, in := range g.train {
		if !in.suspended {
			return in
		}
	}
	return g.train[0]
}

func (g *Gen) enrol(t *trainee, d refdata.Date) {
	occ := refdata.Occupations()[g.rnd.IntN(10)].Code
	lvl := pb.Level_LEVEL_JUNIOR
	switch {
	case g.chance(15):
		lvl = pb.Level_LEVEL_SENIOR
	case g.chance(35):
		lvl = pb.Level_LEVEL_INTERMEDIATE
	}
	t.q = refdata.Qualification{Occupation: occ, Level: lvl}
	t.train = g.pickTrain(t)
	t.enrolmentID = "EN-" + t.key[:20]
	t.enrolledOn = d
	var derived []derivedEv
	g.append(t.stream, d, "enrolment", "enrol-"+t.enrolmentID, &pb.Enrolled{
		EnrolmentId: t.enrolmentID, PersonKey: t.key, TrainingInstitutionId: t.train.id, Qualification: t.q.Proto(),
		EnrolledOn: d.Proto(), UnitCode: g.unitOn(t.unit, d)}, derived...)
	if g.chance(2) {
		// A second, concurrent enrolment elsewhere: flagged.
		other := g.pickTrain(t)
		if other != t.train {
			id2 := "EN2-" + t.key[:20]
			q2 := refdata.Qualification{Occupation: refdata.Occupations()[(int(occ))%10].Code, Level: pb.Level_LEVEL_JUNIOR}
			flagID := g.id("flag", pb.ReasonCode_REASON_CODE_CONCURRENT_ENROLMENT.String(), t.key)
			g.append(t.stream, d.AddDays(3), "enrolment", "enrol-"+id2, &pb.Enrolled{
				EnrolmentId: id2, PersonKey: t.key, TrainingInstitutionId: other.id, Qualification: q2.Proto(),
				EnrolledOn: d.AddDays(3).Proto(), UnitCode: g.unitOn(t.unit, d.AddDays(3))},
				dv("flag", pb.ReasonCode_REASON_CODE_CONCURRENT_ENROLMENT.String(), t.key)(&pb.ViolationFlagged{
					FlagId: flagID, Reason: pb.ReasonCode_REASON_CODE_CONCURRENT_ENROLMENT, Subject: t.key, InstitutionId: other.id,
					Qualification: q2.Proto(), Detail: "enrolled at " + other.id + " while enrolled at " + t.train.id,
					Decision: decision([]string{events.DeriveID("fact", "enrol-"+t.enrolmentID).String(), events.DeriveID("fact", "enrol-"+id2).String()},
						check(16, false, pb.ReasonCode_REASON_CODE_CONCURRENT_ENROLMENT, "two open enrolments"))}))
		}
	}
	if g.chance(30) {
		t.advance = true
		e := g.eval[g.rnd.IntN(len(g.eval))]
		t.eval = e
		t.advanceFen = g.fees[e.id][t.q]
		g.at(d.AddDays(5+g.rnd.IntN(20)), func(d refdata.Date) {
			g.append(t.stream, d, "enrolment", "adv-"+t.key, &pb.AdvancePaymentRecorded{
				AdvanceId: "AD-" + t.key[:16], TrainingInstitutionId: t.train.id, PersonKey: t.key, Qualification: t.q.Proto(),
				AmountFen: t.advanceFen, PaidOn: d.Proto()})
		})
	}
	dur := 30 + g.rnd.IntN(120)
	if g.chance(88) {
		g.at(d.AddDays(dur), func(d refdata.Date) { g.complete(t, d) })
	} else if g.chance(25) {
		// Assessed without completing training.
		g.at(d.AddDays(dur), func(d refdata.Date) { g.assess(t, d) })
	}
}

func (g *Gen) complete(t *trainee, d refdata.Date) {
	t.completedOn = d
	g.append(t.stream, d, "enrolment", "done-"+t.enrolmentID, &pb.TrainingCompleted{
		EnrolmentId: t.enrolmentID, PersonKey: t.key, TrainingInstitutionId: t.train.id, Qualification: t.q.Proto(), CompletedOn: d.Proto()})
	if g.chance(92) {
		g.at(d.AddDays(7+g.rnd.IntN(40)), func(d refdata.Date) { g.assess(t, d) })
	}
}

func (g *Gen) assess(t *trainee, d refdata.Date) {
	if t.eval == nil {
		t.eval = g.eval[g.rnd.IntN(len(g.eval))]
	}
	t.attempts++
	pass := g.rnd.IntN(10000) < t.train.passBP
	if t.attempts > 1 {
		pass = g.chance(65)
	}
	theory, practical := int32(60+g.rnd.IntN(41)), int32(60+g.rnd.IntN(41))
	if !pass {
		if g.chance(50) {
			theory = int32(20 + g.rnd.IntN(40))
		} else {
			practical = int32(20 + g.rnd.IntN(40))
		}
	}
	id := fmt.Sprintf("AS-%s-%d", t.key[:16], t.attempts)
	var derived []derivedEv
	if t.completedOn == 0 {
		flagID := g.id("flag", pb.ReasonCode_REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION.String(), id)
		derived = append(derived, dv("flag", pb.ReasonCode_REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION.String(), id)(&pb.ViolationFlagged{
			FlagId: flagID, Reason: pb.ReasonCode_REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION, Subject: t.key, InstitutionId: t.train.id,
			Qualification: t.q.Proto(), Detail: "assessment " + id + " before training was completed",
			Decision: decision([]string{events.DeriveID("fact", "enrol-"+t.enrolmentID).String()}, check(16, false, pb.ReasonCode_REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION, "no completion"))}))
	}
	if t.attempts == 1 {
		// Quality window of the training institution (rule 15).
		w := append(t.train.window[t.q], pass)
		if len(w) > 20 {
			w = w[1:]
		}
		t.train.window[t.q] = w
		passes := 0
		for _, p := range w {
			if p {
				passes++
			}
		}
		below := len(w) >= 20 && passes*10000 < 6000*len(w)
		if below && !t.train.flagged[t.q] {
			t.train.flagged[t.q] = true
			t.train.flagCount[t.q]++
			key := t.train.id + "/" + t.q.String() + "/" + strconv.Itoa(t.train.flagCount[t.q])
			flagID := g.id("flag", pb.ReasonCode_REASON_CODE_QUALITY_BELOW_THRESHOLD.String(), key)
			derived = append(derived, dv("flag", pb.ReasonCode_REASON_CODE_QUALITY_BELOW_THRESHOLD.String(), key)(&pb.ViolationFlagged{
				FlagId: flagID, Reason: pb.ReasonCode_REASON_CODE_QUALITY_BELOW_THRESHOLD, Subject: t.train.id, InstitutionId: t.train.id,
				Qualification: t.q.Proto(), Detail: fmt.Sprintf("first-attempt pass rate %d/%d below 60%%", passes, len(w)),
				Decision: decision([]string{events.DeriveID("fact", "assess-"+id).String()}, check(15, false, pb.ReasonCode_REASON_CODE_QUALITY_BELOW_THRESHOLD, "window of 20"))}))
		} else if !below && t.train.flagged[t.q] {
			t.train.flagged[t.q] = false
		}
	}
	g.append(t.stream, d, "evaluation", "assess-"+id, &pb.AssessmentRecorded{
		AssessmentId: id, PersonKey: t.key, EvaluationInstitutionId: t.eval.id, TrainingInstitutionId: t.train.id,
		Qualification: t.q.Proto(), Attempt: uint32(t.attempts), TheoryScore: theory, PracticalScore: practical, AssessedOn: d.Proto()}, derived...)
	if pass {
		t.passedOn, t.passAttempt, t.assessID = d, t.attempts, id
		g.at(d.AddDays(10+g.rnd.IntN(20)), func(d refdata.Date) { g.certify(t, d) })
	} else if t.attempts < 3 && g.chance(60) {
		g.at(d.AddDays(30+g.rnd.IntN(60)), func(d refdata.Date) { g.assess(t, d) })
	}
}

func (g *Gen) eligible(t *trainee) (pb.ReasonCode, string) {
	switch {
	case t.completedOn == 0:
		return pb.ReasonCode_REASON_CODE_TRAINING_NOT_COMPLETED, "training not completed before the assessment"
	case t.passAttempt != 1:
		return pb.ReasonCode_REASON_CODE_NOT_FIRST_ATTEMPT, fmt.Sprintf("passed at attempt %d", t.passAttempt)
	case t.evidence == nil:
		return pb.ReasonCode_REASON_CODE_NO_ELIGIBILITY_EVIDENCE, "no eligibility evidence"
	case t.employee && (!t.evidence.Confirmed || (t.evidence.InsuredTo != nil && mustDate(t.evidence.InsuredTo) < t.passedOn)):
		return pb.ReasonCode_REASON_CODE_NOT_INSURED_ON_ASSESSMENT, "no insured employment on the assessment date"
	case !t.employee && (!t.evidence.Confirmed || t.gradYear != int32(t.passedOn.Year())):
		return pb.ReasonCode_REASON_CODE_NOT_GRADUATING_THIS_YEAR, "graduation year is not the assessment year"
	}
	return 0, ""
}

func mustDate(p *pb.Date) refdata.Date {
	d, _ := refdata.FromProto(p)
	return d
}

func (g *Gen) certify(t *trainee, d refdata.Date) {
	t.certID = "C-" + t.key[:20]
	t.certOn = d
	month := d.Year()*12 + int(d.Month())
	t.eval.certMonth[month]++
	factEv := events.DeriveID("fact", "cert-"+t.certID).String()
	evidence := []string{factEv, events.DeriveID("fact", "assess-"+t.assessID).String()}
	var derived []derivedEv
	if t.eval.certMonth[month] == 150 && g.chance(30) {
		key := t.eval.id + "/" + strconv.Itoa(month)
		derived = append(derived, dv("flag", pb.ReasonCode_REASON_CODE_CERTIFICATE_SPIKE.String(), key)(&pb.ViolationFlagged{
			FlagId: g.id("flag", pb.ReasonCode_REASON_CODE_CERTIFICATE_SPIKE.String(), key), Reason: pb.ReasonCode_REASON_CODE_CERTIFICATE_SPIKE,
			Subject: t.eval.id, InstitutionId: t.eval.id, Detail: fmt.Sprintf("150 certificates in %d-%02d", d.Year(), d.Month()),
			Decision: decision([]string{factEv}, check(16, false, pb.ReasonCode_REASON_CODE_CERTIFICATE_SPIKE, "more than 5x the monthly mean"))}))
	}
	if reason, detail := g.eligible(t); reason != 0 {
		derived = append(derived, dv("denial", t.certID)(&pb.SubsidyDenied{
			PersonKey: t.key, Qualification: t.q.Proto(), CertificateId: t.certID, Reason: reason, Detail: detail,
			Decision: decision(evidence, check(int32(reason)/100, false, reason, detail))}))
		g.append(t.stream, d, "evaluation", "cert-"+t.certID, &pb.CertificateIssued{
			CertificateId: t.certID, PersonKey: t.key, EvaluationInstitutionId: t.eval.id, Qualification: t.q.Proto(),
			AssessmentId: t.assessID, IssuedOn: d.Proto()}, derived...)
		g.maybeRevoke(t, d)
		return
	}
	t.entID = events.DeriveID("entitlement", t.key, t.q.Occupation.String(), t.q.Level.String()).String()
	t.amount = g.fees[t.eval.id][t.q]
	t.year = int32(t.passedOn.Year())
	t.entUnit = g.unitOn(t.unit, t.passedOn)
	t.payee = &pb.Payee{Kind: pb.PayeeKind_PAYEE_KIND_TRAINEE, PersonKey: t.key, AccountRef: "tok-" + t.key[:12]}
	if t.advance {
		t.payee = &pb.Payee{Kind: pb.PayeeKind_PAYEE_KIND_INSTITUTION, InstitutionId: t.train.id, AccountRef: t.train.account}
	}
	derived = append(derived, dv("entitlement", t.key, t.q.Occupation.String(), t.q.Level.String())(&pb.SubsidyEntitled{
		EntitlementId: t.entID, PersonKey: t.key, Qualification: t.q.Proto(), CertificateId: t.certID, AssessmentId: t.assessID,
		AmountFen: t.amount, FeeScheduleId: g.feeIDs[t.eval.id][t.q], Payee: t.payee, Year: t.year, UnitCode: t.entUnit,
		EvaluationInstitutionId: t.eval.id, TrainingInstitutionId: t.train.id, AssessedOn: t.passedOn.Proto(),
		Decision: decision(evidence, check(4, true, 0, "eligible"), check(5, true, 0, "first attempt"), check(9, true, 0, "fee in force"))}))
	f := g.fund(t.year, t.entUnit)
	if f.committed+t.amount > f.allocated || len(f.queue) > 0 {
		t.budgetHeld = true
		t.holds["budget"] = true
		f.queue = append(f.queue, t)
		derived = append(derived, g.hold(t, "budget", pb.ReasonCode_REASON_CODE_BUDGET_EXCEEDED, "unit budget for the year exhausted", factEv))
	} else {
		f.committed += t.amount
	}
	if t.advance && t.train.flagged[t.q] {
		t.holds["quality"] = true
		derived = append(derived, g.hold(t, "quality", pb.ReasonCode_REASON_CODE_QUALITY_BELOW_THRESHOLD, "training institution below the pass-rate threshold", factEv))
		g.at(d.AddDays(20+g.rnd.IntN(60)), func(d refdata.Date) { g.lift(t, "quality", d) })
	}
	g.append(t.stream, d, "evaluation", "cert-"+t.certID, &pb.CertificateIssued{
		CertificateId: t.certID, PersonKey: t.key, EvaluationInstitutionId: t.eval.id, Qualification: t.q.Proto(),
		AssessmentId: t.assessID, IssuedOn: d.Proto()}, derived...)
	g.at(d.AddDays(3+g.rnd.IntN(10)), func(d refdata.Date) { g.confirm(t, d) })
	g.maybeRevoke(t, d)
	if g.chance(0.6) {
		g.at(d.AddDays(20+g.rnd.IntN(200)), func(d refdata.Date) { g.fraud(t, d) })
	}
}

func (g *Gen) hold(t *trainee, holdID string, reason pb.ReasonCode, detail, evidence string) derivedEv {
	return dv("hold", t.entID, holdID)(&pb.EntitlementHeld{
		EntitlementId: t.entID, Reason: reason, Detail: detail, HoldId: holdID,
		Decision: decision([]string{evidence}, check(int32(reason)/100, false, reason, detail))})
}

func (g *Gen) lift(t *trainee, holdID string, d refdata.Date) {
	if !t.holds[holdID] || t.cancelled {
		return
	}
	delete(t.holds, holdID)
	liftID := "L-" + t.key[:12] + "-" + strconv.Itoa(int(d)) + "-" + holdID
	g.append(t.stream, d, "bureau", "lift-"+liftID, &pb.HoldLifted{
		LiftId: liftID, EntitlementId: t.entID, HoldId: holdID, OfficialId: "m-sup-1", Note: "reviewed", LiftedOn: d.Proto()},
		dv("release", t.entID, holdID)(&pb.EntitlementReleased{EntitlementId: t.entID, Reason: pb.ReasonCode_REASON_CODE_SUPERVISOR_HOLD,
			OfficialId: "m-sup-1", HoldId: holdID, Decision: decision([]string{events.DeriveID("fact", "lift-"+liftID).String()})}))
}

func (g *Gen) confirm(t *trainee, d refdata.Date) {
	if t.cancelled {
		return
	}
	g.append(t.stream, d, "district", "conf-"+t.entID, &pb.EntitlementConfirmed{EntitlementId: t.entID, OfficialId: "d-" + t.entUnit + "-1", ConfirmedOn: d.Proto()})
	a := d.AddDays(1 + g.rnd.IntN(5))
	g.at(a, func(d refdata.Date) {
		if t.cancelled {
			return
		}
		end := d.AddDays(7)
		t.noticeEnd = end
		g.append(t.stream, d, "district", "appr-"+t.entID, &pb.EntitlementApproved{EntitlementId: t.entID, OfficialId: "d-" + t.entUnit + "-2", ApprovedOn: d.Proto()},
			dv("notice", t.entID)(&pb.NoticeOpened{EntitlementId: t.entID, StartsOn: d.AddDays(1).Proto(), EndsOn: end.Proto(), WorkingDays: 5,
				Decision: decision([]string{events.DeriveID("fact", "appr-"+t.entID).String()}, check(12, true, 0, "five working days"))}))
		if g.chance(3) {
			g.at(d.AddDays(2), func(d refdata.Date) { g.object(t, d) })
		}
		if g.chance(1) {
			g.at(d.AddDays(3), func(d refdata.Date) { g.supervisorHold(t, d) })
		}
		g.at(end.AddDays(1+g.rnd.IntN(3)), func(d refdata.Date) { g.closeNotice(t, d) })
	})
}

func (g *Gen) object(t *trainee, d refdata.Date) {
	if t.cancelled {
		return
	}
	objID := "OB-" + t.key[:12]
	holdID := "objection/" + objID
	t.holds[holdID] = true
	g.append(t.stream, d, "district", "obj-"+objID, &pb.ObjectionRaised{ObjectionId: objID, EntitlementId: t.entID, Summary: "申请人资格存疑", RaisedOn: d.Proto()},
		g.hold(t, holdID, pb.ReasonCode_REASON_CODE_OBJECTION_PENDING, "objection during the notice", events.DeriveID("fact", "obj-"+objID).String()))
	g.at(d.AddDays(3), func(d refdata.Date) {
		upheld := g.chance(30)
		var derived []derivedEv
		if !upheld {
			delete(t.holds, holdID)
			derived = append(derived, dv("release", t.entID, holdID)(&pb.EntitlementReleased{EntitlementId: t.entID, Reason: pb.ReasonCode_REASON_CODE_OBJECTION_PENDING,
				OfficialId: "d-" + t.entUnit + "-3", HoldId: holdID, Decision: decision([]string{events.DeriveID("fact", "objres-"+objID).String()})}))
		}
		g.append(t.stream, d, "district", "objres-"+objID, &pb.ObjectionResolved{ObjectionId: objID, EntitlementId: t.entID, Upheld: upheld,
			OfficialId: "d-" + t.entUnit + "-3", ResolvedOn: d.Proto()}, derived...)
	})
}

func (g *Gen) supervisorHold(t *trainee, d refdata.Date) {
	if t.cancelled {
		return
	}
	hid := "H-" + t.key[:12]
	holdID := "supervisor/" + hid
	t.holds[holdID] = true
	g.append(t.stream, d, "bureau", "hold-"+hid, &pb.HoldPlaced{HoldId: hid, EntitlementId: t.entID, OfficialId: "m-sup-2", Reason: "抽查", PlacedOn: d.Proto()},
		g.hold(t, holdID, pb.ReasonCode_REASON_CODE_SUPERVISOR_HOLD, "supervisor review", events.DeriveID("fact", "hold-"+hid).String()))
	g.at(d.AddDays(10+g.rnd.IntN(30)), func(d refdata.Date) { g.lift(t, holdID, d) })
}

func (g *Gen) closeNotice(t *trainee, d refdata.Date) {
	if t.cancelled || t.closed {
		return
	}
	// Objections are resolved before the notice ends; an upheld one keeps
	// the entitlement held after the close.
	t.closed = true
	g.append(t.stream, d, "district", "close-"+t.entID, &pb.NoticeClosed{EntitlementId: t.entID, ClosedOn: d.Proto()})
	g.at(d.AddDays(1+g.rnd.IntN(10)), func(d refdata.Date) { g.requestPayment(t, d, 0) })
}

func (g *Gen) requestPayment(t *trainee, d refdata.Date, tries int) {
	if t.cancelled || t.paid {
		return
	}
	if len(t.holds) > 0 {
		if tries < 12 {
			g.at(d.AddDays(30), func(d refdata.Date) { g.requestPayment(t, d, tries+1) })
		}
		return
	}
	t.payAttempt++
	orderID := events.DeriveID("payment-order", t.entID, strconv.FormatUint(uint64(t.payAttempt), 10)).String()
	order := &pb.PaymentOrdered{PaymentOrderId: orderID, EntitlementId: t.entID, Attempt: t.payAttempt, AmountFen: t.amount,
		NetFen: t.amount, Payee: t.payee, Decision: decision([]string{events.DeriveID("fact", "payreq-"+orderID).String()}, check(13, true, 0, "payable"))}
	// Offsets against the payee institution's open clawbacks (rule 14).
	type off struct {
		cb  *clawback
		fen int64
	}
	var offs []off
	if t.payee.Kind == pb.PayeeKind_PAYEE_KIND_INSTITUTION {
		left := t.amount
		for _, cb := range t.train.clawbacks {
			if left == 0 {
				break
			}
			if cb.outstanding > 0 {
				f := min(left, cb.outstanding)
				cb.outstanding -= f // reserved until the order settles or fails
				offs = append(offs, off{cb, f})
				order.OffsetClawbackIds = append(order.OffsetClawbackIds, cb.id)
				order.OffsetFen += f
				left -= f
			}
		}
		order.NetFen = t.amount - order.OffsetFen
	}
	g.append(t.stream, d, "district", "payreq-"+orderID, &pb.PaymentRequested{EntitlementId: t.entID, OfficialId: "d-" + t.entUnit + "-4", RequestedOn: d.Proto()},
		derivedEv{events.DeriveID("payment-order", t.entID, strconv.FormatUint(uint64(t.payAttempt), 10)), order})
	t.inFlight = true
	g.at(d.AddDays(1+g.rnd.IntN(5)), func(d refdata.Date) {
		t.inFlight = false
		if g.chance(4) {
			for _, o := range offs {
				o.cb.outstanding += o.fen
			}
			g.append(t.stream, d, "payment", "payfail-"+orderID, &pb.PaymentFailed{PaymentOrderId: orderID, EntitlementId: t.entID, Failure: "账户状态异常", FailedOn: d.Proto()})
			g.at(d.AddDays(7), func(d refdata.Date) { g.requestPayment(t, d, tries+1) })
			return
		}
		account := t.payee.AccountRef
		var derived []derivedEv
		for _, o := range offs {
			derived = append(derived, dv("recovery", o.cb.id, orderID)(&pb.ClawbackRecovered{ClawbackId: o.cb.id, AmountFen: o.fen,
				Method: pb.RecoveryMethod_RECOVERY_METHOD_OFFSET, ReferenceId: orderID}))
		}
		if len(derived) > 0 {
			g.barrierNext = true
		}
		if t.payee.Kind == pb.PayeeKind_PAYEE_KIND_INSTITUTION && g.chance(2) {
			account = "6222999900001111"
			derived = append(derived, dv("flag", pb.ReasonCode_REASON_CODE_PAYMENT_ACCOUNT_MISMATCH.String(), orderID)(&pb.ViolationFlagged{
				FlagId: g.id("flag", pb.ReasonCode_REASON_CODE_PAYMENT_ACCOUNT_MISMATCH.String(), orderID), Reason: pb.ReasonCode_REASON_CODE_PAYMENT_ACCOUNT_MISMATCH,
				Subject: t.train.id, InstitutionId: t.train.id, Qualification: t.q.Proto(), Detail: "settled into an account other than the registered basic account",
				Decision: decision([]string{events.DeriveID("fact", "paid-"+orderID).String()}, check(16, false, pb.ReasonCode_REASON_CODE_PAYMENT_ACCOUNT_MISMATCH, "account differs"))}))
		}
		t.paid = true
		g.append(t.stream, d, "payment", "paid-"+orderID, &pb.PaymentSettled{PaymentOrderId: orderID, EntitlementId: t.entID, AmountFen: order.NetFen,
			PaidToAccount: account, BankReference: "BR" + orderID[:8], SettledOn: d.Proto()}, derived...)
	})
}

func (g *Gen) maybeRevoke(t *trainee, d refdata.Date) {
	if !g.chance(1.2) {
		return
	}
	var revoke func(d refdata.Date)
	revoke = func(d refdata.Date) {
		if t.inFlight {
			g.at(d.AddDays(10), revoke)
			return
		}
		factEv := events.DeriveID("fact", "revoke-"+t.certID).String()
		derived := g.cancel(t, "revoked/"+t.certID, pb.ReasonCode_REASON_CODE_CERTIFICATE_REVOKED, pb.ClawbackCause_CLAWBACK_CAUSE_CERTIFICATE_REVOKED, factEv, d)
		g.append(t.stream, d, "evaluation", "revoke-"+t.certID, &pb.CertificateRevoked{CertificateId: t.certID, PersonKey: t.key,
			Qualification: t.q.Proto(), Reason: "考试舞弊", RevokedOn: d.Proto()}, derived...)
	}
	g.at(d.AddDays(60+g.rnd.IntN(240)), revoke)
}

func (g *Gen) fraud(t *trainee, d refdata.Date) {
	if t.cancelled || t.entID == "" {
		return
	}
	if t.inFlight {
		g.at(d.AddDays(10), func(d refdata.Date) { g.fraud(t, d) })
		return
	}
	fid := "FR-" + t.key[:12]
	factEv := events.DeriveID("fact", "fraud-"+fid).String()
	derived := g.cancel(t, "fraud/"+fid, pb.ReasonCode_REASON_CODE_FRAUD_FINDING, pb.ClawbackCause_CLAWBACK_CAUSE_FRAUD, factEv, d)
	g.append(t.stream, d, "bureau", "fraud-"+fid, &pb.FraudFound{FindingId: fid, EntitlementId: t.entID, OfficialId: "m-sup-3", Summary: "虚假培训记录", FoundOn: d.Proto()}, derived...)
}

// cancel: a paid entitlement is clawed back, an unpaid one held for good.
func (g *Gen) cancel(t *trainee, holdID string, reason pb.ReasonCode, cause pb.ClawbackCause, evidence string, d refdata.Date) []derivedEv {
	if t.entID == "" || t.cancelled {
		return nil
	}
	t.cancelled = true
	var out []derivedEv
	if t.paid {
		cb := &clawback{id: events.DeriveID("clawback", t.entID).String(), ent: t, outstanding: t.amount, payee: t.payee}
		t.cb = cb
		out = append(out, dv("clawback", t.entID)(&pb.ClawbackRaised{ClawbackId: cb.id, EntitlementId: t.entID, Payee: t.payee, AmountFen: t.amount,
			Cause: cause, Decision: decision([]string{evidence}, check(14, false, reason, "recover the payment"))}))
		if t.payee.Kind == pb.PayeeKind_PAYEE_KIND_INSTITUTION {
			t.train.clawbacks = append(t.train.clawbacks, cb)
		}
		g.at(d.AddDays(30+g.rnd.IntN(90)), func(d refdata.Date) { g.settleClawback(cb, d) })
		return out
	}
	if t.budgetHeld {
		// Leaves the budget queue: allocate skips cancelled entries.
		t.budgetHeld = false
	} else {
		g.fund(t.year, t.entUnit).committed -= t.amount
	}
	t.holds[holdID] = true
	out = append(out, g.hold(t, holdID, reason, "cancelled: "+reason.String(), evidence))
	return out
}

func (g *Gen) settleClawback(cb *clawback, d refdata.Date) {
	if cb.outstanding == 0 {
		return
	}
	t := cb.ent
	switch {
	case g.chance(60):
		amt := cb.outstanding
		if g.chance(30) {
			amt = amt / 2
		}
		rid := "RP-" + cb.id[:8] + "-" + strconv.Itoa(int(d))
		cb.outstanding -= amt
		g.append(t.stream, d, "payment", "repay-"+rid, &pb.RepaymentReceived{RepaymentId: rid, ClawbackId: cb.id, AmountFen: amt, ReceivedOn: d.Proto()},
			dv("recovery", cb.id, rid)(&pb.ClawbackRecovered{ClawbackId: cb.id, AmountFen: amt, Method: pb.RecoveryMethod_RECOVERY_METHOD_REPAYMENT, ReferenceId: rid}))
		if cb.outstanding > 0 {
			g.at(d.AddDays(60), func(d refdata.Date) { g.settleClawback(cb, d) })
		}
	case g.chance(30):
		amt := cb.outstanding
		g.append(t.stream, d, "bureau", "wreq-"+cb.id, &pb.WriteOffRequested{ClawbackId: cb.id, AmountFen: amt, Reason: "当事人无力偿还", OfficialId: "m-fin-1"})
		g.at(d.AddDays(5), func(d refdata.Date) {
			if cb.outstanding < amt {
				return
			}
			cb.outstanding -= amt
			g.append(t.stream, d, "bureau", "woff-"+cb.id, &pb.ClawbackWrittenOff{ClawbackId: cb.id, AmountFen: amt, Reason: "当事人无力偿还", RequestedBy: "m-fin-1", ApprovedBy: "m-fin-2"})
		})
	default:
		// Left open (offsets may recover it).
	}
}
