package gen_test

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/projections/gen"
)

func digest(t *testing.T, cfg gen.Config) ([32]byte, map[string]int) {
	t.Helper()
	h := sha256.New()
	types := map[string]int{}
	_, err := gen.Generate(cfg, func(b gen.Batch) error {
		h.Write([]byte(b.Stream))
		for _, e := range b.Events {
			h.Write(e.ID[:])
			h.Write(e.Data)
			h.Write(e.Metadata)
			types[e.Type]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var d [32]byte
	h.Sum(d[:0])
	return d, types
}

func TestGenerateIsDeterministicAndCoversEveryKind(t *testing.T) {
	cfg := gen.Config{Seed: 7, Trainees: 3000}
	a, types := digest(t, cfg)
	b, _ := digest(t, cfg)
	if a != b {
		t.Fatal("Generate(same config) gave two histories")
	}
	for _, typ := range []string{"TraineeRegistered", "Enrolled", "TrainingCompleted", "AssessmentRecorded", "CertificateIssued",
		"SubsidyEntitled", "SubsidyDenied", "EntitlementHeld", "EntitlementReleased", "NoticeOpened", "NoticeClosed",
		"PaymentOrdered", "PaymentSettled", "PaymentFailed", "ClawbackRaised", "ClawbackRecovered", "ViolationFlagged",
		"BudgetAllocated", "AnnualTargetSet", "AdvancePaymentRecorded", "ObjectionRaised", "HoldPlaced", "CertificateRevoked"} {
		if types["subsidy.v1."+typ] == 0 {
			t.Errorf("no %s in the history: %v", typ, types)
		}
	}
	t.Logf("%v", types)
}

func TestAppendIntoBolt(t *testing.T) {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "l.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := gen.Append(context.Background(), s, gen.Config{Seed: 1, Trainees: 1000}, gen.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := s.Head(context.Background())
	if uint64(h) != uint64(st.Events) {
		t.Fatalf("head %d after appending %d events", h, st.Events)
	}
	rep, err := events.Verify(context.Background(), s, nil)
	if err != nil || rep.Break != nil {
		t.Fatalf("Verify = %v, %v", rep.Break, err)
	}
}
