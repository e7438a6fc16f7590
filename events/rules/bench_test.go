package rules_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"google.golang.org/protobuf/proto"
)

// BenchmarkDecide measures Decide alone on a World with a history behind it
// (the cost per inbound fact, without the store).
func BenchmarkDecide(b *testing.B) {
	rs := rules.DefaultRuleSet()
	g, _ := history(b, 1, 2000, rs)
	probe := &gen{r: rand.New(rand.NewPCG(2, 2)), f: g.f}
	var fs []rules.Fact
	for i := 0; i < 1000; i++ {
		fs = append(fs, rules.Fact{EventID: events.DeriveID("bench", fmt.Sprint(i)), Payload: probe.next()})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g.f.l.w.Decide(fs[i%len(fs)])
	}
}

// cohort decides the facts of n trainees, each taken through the
// programme the way the soak's simulated trainees are (registration,
// evidence, enrolment, an advance for 40%, completion for 95%, a first
// attempt that passes for 78% and a resit for most others, certificate,
// confirmation, approval, notice, payment; a revocation for one in 50), on
// the fixture with budgets large enough for all of them. It returns the
// ledger, with its log, and the number of rejected facts.
func cohort(tb testing.TB, n int) (*ledger, int) {
	rs := rules.DefaultRuleSet()
	f := newFx(tb, rs)
	for _, u := range []string{"cq-yuzhong", "cq-shapingba", "cq-beibei"} {
		f.must(&subsidyv1.BudgetAllocated{AllocationId: "cohort-" + u, Year: 2025, UnitCode: u, AmountFen: 1_000_000_000_000})
	}
	rejected := 0
	for i := 0; i < n; i++ {
		rejected += cohortTrainee(f, rs, i)
	}
	return f.l, rejected
}

// cohortTrainee decides trainee i's facts and returns how many were
// rejected.
func cohortTrainee(f *fx, rs rules.RuleSet, i int) int {
	r := rand.New(rand.NewPCG(31, uint64(i)+1))
	sum := sha256.Sum256([]byte(fmt.Sprint("trainee", i)))
	pk := hex.EncodeToString(sum[:])
	rejected := 0
	decide := func(m proto.Message) rules.Decision {
		f.n++
		id := fmt.Sprintf("t%d-%d", i, f.n)
		d, rej := f.l.decide(rules.Fact{EventID: events.DeriveID("fact", id), MessageID: id, Payload: m})
		if rej != nil {
			rejected++
		}
		return d
	}
	units := []string{"cq-yuzhong", "cq-shapingba", "cq-beibei"}
	unit := units[r.IntN(len(units))]
	inst := genInsts[r.IntN(len(genInsts))]
	q := []refdata.Qualification{bdJ, bdI, bdS}[r.IntN(3)]
	if inst == "ti-digital" && r.IntN(3) == 0 {
		q = ccJ
	}
	reg := &subsidyv1.TraineeRegistered{PersonKey: pk, UnitCode: unit, Education: subsidyv1.Education_EDUCATION_BACHELOR}
	ev := &subsidyv1.EligibilityEvidenceRecorded{EvidenceId: fmt.Sprintf("ev-31-%d", i), PersonKey: pk, SnapshotAt: tsOf("2025-01-01")}
	if r.IntN(2) == 0 {
		reg.GraduationYear = 2025
		ev.Category, ev.Source, ev.Confirmed, ev.GraduationYear = subsidyv1.EligibilityCategory_ELIGIBILITY_CATEGORY_GRADUATING_STUDENT, "学信网", true, 2025
	} else {
		reg.EnterpriseEmployee = true
		ev.Category, ev.Source, ev.Confirmed = subsidyv1.EligibilityCategory_ELIGIBILITY_CATEGORY_ENTERPRISE_EMPLOYEE, "社保", r.IntN(10) > 0
		ev.InsuredFrom = refdata.D(2020+r.IntN(4), time.March, 1).Proto()
	}
	decide(reg)
	decide(ev)
	enrolled := refdata.D(2025, time.Month(1+r.IntN(6)), 1+r.IntN(28))
	enr := fmt.Sprintf("enr-31-%d", i)
	decide(&subsidyv1.Enrolled{EnrolmentId: enr, PersonKey: pk, TrainingInstitutionId: inst, Qualification: q.Proto(), EnrolledOn: enrolled.Proto(), UnitCode: unit})
	advance := r.IntN(100) < 40
	if advance {
		decide(&subsidyv1.AdvancePaymentRecorded{AdvanceId: fmt.Sprintf("adv-31-%d", i), TrainingInstitutionId: inst, PersonKey: pk,
			Qualification: q.Proto(), AmountFen: 80000, PaidOn: enrolled.AddDays(3).Proto()})
	}
	if r.IntN(100) >= 95 {
		return rejected // dropped out
	}
	completed := enrolled.AddDays(30 + r.IntN(30))
	decide(&subsidyv1.TrainingCompleted{EnrolmentId: enr, PersonKey: pk, TrainingInstitutionId: inst, Qualification: q.Proto(), CompletedOn: completed.Proto()})
	assess := func(attempt uint32, on refdata.Date, pass bool) string {
		theory, practical := int32(60+r.IntN(41)), int32(60+r.IntN(41))
		if !pass {
			theory = int32(20 + r.IntN(40))
		}
		aid := fmt.Sprintf("asm-31-%d-%d", i, attempt)
		decide(&subsidyv1.AssessmentRecorded{AssessmentId: aid, PersonKey: pk, EvaluationInstitutionId: "ev-cqpe", TrainingInstitutionId: inst,
			Qualification: q.Proto(), Attempt: attempt, TheoryScore: theory, PracticalScore: practical, AssessedOn: on.Proto()})
		return aid
	}
	first := completed.AddDays(7 + r.IntN(21))
	var aid string
	var certOn refdata.Date
	if r.IntN(100) < 78 {
		aid, certOn = assess(1, first, true), first.AddDays(7)
	} else {
		assess(1, first, false)
		if r.IntN(100) < 70 {
			if aid = assess(2, first.AddDays(30), r.IntN(100) < 80); true {
				certOn = first.AddDays(37)
			}
		}
	}
	if certOn == 0 {
		return rejected
	}
	cert := fmt.Sprintf("cert-31-%d", i)
	d := decide(&subsidyv1.CertificateIssued{CertificateId: cert, PersonKey: pk, EvaluationInstitutionId: "ev-cqpe", Qualification: q.Proto(), AssessmentId: aid, IssuedOn: certOn.Proto()})
	if len(d.Events) < 2 || d.Events[1].Type() != "subsidy.v1.SubsidyEntitled" {
		return rejected
	}
	ent := rules.EntitlementID(pk, q)
	confirmed := certOn.AddDays(3)
	decide(&subsidyv1.EntitlementConfirmed{EntitlementId: ent, OfficialId: unit + "-official-1", ConfirmedOn: confirmed.Proto()})
	approved := confirmed.AddDays(1)
	decide(&subsidyv1.EntitlementApproved{EntitlementId: ent, OfficialId: unit + "-official-2", ApprovedOn: approved.Proto()})
	_, end := rs.NoticeWindow(approved)
	closed := end.AddDays(1)
	decide(&subsidyv1.NoticeClosed{EntitlementId: ent, ClosedOn: closed.Proto()})
	d = decide(&subsidyv1.PaymentRequested{EntitlementId: ent, OfficialId: unit + "-official-1", RequestedOn: closed.Proto()})
	if len(d.Events) < 2 {
		return rejected
	}
	o := d.Events[1].Payload.(*subsidyv1.PaymentOrdered)
	account := "acct-digital"
	if inst == "ti-cloud" {
		account = "acct-cloud"
	}
	if !advance {
		account = "trainee-account-token-" + pk[:16]
	}
	decide(&subsidyv1.PaymentSettled{PaymentOrderId: o.PaymentOrderId, EntitlementId: ent, AmountFen: o.NetFen,
		PaidToAccount: account, BankReference: fmt.Sprintf("bank-31-%d", i), SettledOn: closed.AddDays(5).Proto()})
	if i%50 == 7 {
		decide(&subsidyv1.CertificateRevoked{CertificateId: cert, PersonKey: pk, Qualification: q.Proto(), Reason: "考试舞弊", RevokedOn: closed.AddDays(25).Proto()})
	}
	return rejected
}

// BenchmarkWorldFold folds the log of a cohort of trainees (see cohort)
// into a fresh World: once with Apply alone, as a restarted ledger does,
// and once deciding every fact before applying its decision, as the
// intake does. It reports the World's heap per trainee and per event (the
// live heap after a collection, payloads decoded afresh from their bytes
// and dropped after the fold, so that the strings the World keeps of them
// count) and the allocations of Apply and of Decide.
//
//	go test -run '^$' -bench WorldFold -benchtime 3x ./rules
func BenchmarkWorldFold(b *testing.B) {
	const trainees = 5000
	l, _ := cohort(b, trainees)
	log := l.log
	facts := 0
	for _, s := range log {
		if !s.ev.Derived {
			facts++
		}
	}
	rs := rules.DefaultRuleSet()
	var worldBytes, applyAllocs, decideAllocs float64
	var ms runtime.MemStats
	b.ResetTimer()
	// decoded returns the log's events with payloads decoded afresh from
	// their bytes, as a store read gives them: what the World keeps of them
	// is counted as its own.
	decoded := func() []rules.Event {
		evs := make([]rules.Event, len(log))
		for i, s := range log {
			m := s.ev.Payload.ProtoReflect().New().Interface()
			if err := proto.Unmarshal(s.data, m); err != nil {
				b.Fatal(err)
			}
			evs[i] = s.ev
			evs[i].Payload = m
		}
		return evs
	}
	for i := 0; i < b.N; i++ {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		heap0 := ms.HeapAlloc
		evs := decoded()
		runtime.ReadMemStats(&ms)
		mallocs0 := ms.Mallocs
		w := rules.NewWorld(rs)
		for j, s := range log {
			if err := w.Apply(s.stream, s.revision, evs[j]); err != nil {
				b.Fatal(err)
			}
		}
		runtime.ReadMemStats(&ms)
		applied := ms.Mallocs - mallocs0
		evs = nil
		runtime.GC()
		runtime.ReadMemStats(&ms)
		worldBytes = float64(ms.HeapAlloc) - float64(heap0)
		runtime.KeepAlive(w)
		w = nil

		evs = decoded()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		mallocs0 = ms.Mallocs
		w = rules.NewWorld(rs)
		for j, s := range log {
			if !s.ev.Derived {
				if _, rej := w.Decide(rules.Fact{EventID: s.ev.ID, Payload: evs[j].Payload}); rej != nil {
					b.Fatalf("a stored fact is rejected on replay: %v", rej)
				}
			}
			if err := w.Apply(s.stream, s.revision, evs[j]); err != nil {
				b.Fatal(err)
			}
		}
		runtime.ReadMemStats(&ms)
		applyAllocs = float64(applied) / float64(len(log))
		decideAllocs = (float64(ms.Mallocs-mallocs0) - float64(applied)) / float64(facts)
		runtime.KeepAlive(w)
		runtime.KeepAlive(evs)
	}
	b.ReportMetric(worldBytes/trainees, "B/trainee")
	b.ReportMetric(worldBytes/float64(len(log)), "B/event")
	b.ReportMetric(applyAllocs, "allocs/apply")
	b.ReportMetric(decideAllocs, "allocs/decide")
	b.ReportMetric(float64(len(log))/trainees, "events/trainee")
}
