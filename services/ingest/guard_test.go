package ingest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/merkle"
	"github.com/cqhrss/subsidyledger/events/person"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/simulate"
)

// budgetRace returns a programme's reference facts, with the 2025 budget of
// a unit cut to one subsidy, and the facts of two trainees of that unit who
// both earn a subsidy: whoever is decided second must be held for budget
// (rule 11), a decision that reads the fund's state, not the trainee's own
// stream.
func budgetRace(t *testing.T) (ref, first, second []simulate.Fact) {
	t.Helper()
	k, _ := person.NewKeyer([]byte("test key: 32 bytes or more, not a real one"))
	p, err := simulate.New(simulate.Config{Seed: 3, Year: 2025, Trainees: 4, Keyer: k, Officials: true})
	if err != nil {
		t.Fatal(err)
	}
	const unit = "cq-shapingba" // trainees 1 and 2 of seed 3 are registered there
	var maxFee int64
	for _, f := range p.Reference() {
		if fs, ok := f.Msg.(*subsidyv1.FeeSchedulePublished); ok {
			maxFee = max(maxFee, fs.GetFeeFen())
		}
	}
	for _, f := range p.Reference() {
		if b, ok := f.Msg.(*subsidyv1.BudgetAllocated); ok && b.GetYear() == 2025 && b.GetUnitCode() == unit {
			b = proto.Clone(b).(*subsidyv1.BudgetAllocated)
			b.AmountFen = maxFee // one subsidy fits, two do not
			f.Msg = b
		}
		ref = append(ref, f)
	}
	lane := func(i int) []simulate.Fact {
		fs, _ := p.Trainee(i)
		for _, f := range fs {
			if r, ok := f.Msg.(*subsidyv1.TraineeRegistered); ok && r.GetUnitCode() != unit {
				t.Fatalf("trainee %d is registered in %s; the race needs %s", i, r.GetUnitCode(), unit)
			}
		}
		// Up to the certificate: the entitlement and its budget decision.
		for j, f := range fs {
			if _, ok := f.Msg.(*subsidyv1.CertificateIssued); ok {
				return fs[:j+1]
			}
		}
		t.Fatalf("trainee %d has no certificate", i)
		return nil
	}
	return ref, lane(1), lane(2)
}

// derivedOf reads the store's derived decisions: type and payload by event
// id.
func derivedOf(t *testing.T, s events.Store) map[string][]byte {
	t.Helper()
	page, err := s.ReadAll(context.Background(), events.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, rec := range page {
		d, err := codec.Decode(rec)
		if err != nil {
			t.Fatal(err)
		}
		if _, rej := d.Payload.(*subsidyv1.FactRejected); !rej && d.Env.GetSource() == Source {
			out[rec.ID.String()] = append([]byte(rec.Type+" "), rec.Data...)
		}
	}
	return out
}

func sameDecisions(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for id, x := range a {
		if !bytes.Equal(b[id], x) {
			return false
		}
	}
	return true
}

// Two writers race on one store: writer A decides trainee X's certificate
// while writer B decides and appends trainee Y's, in the same unit, with
// budget for one. Each appends to its own trainee's stream, so the streams'
// expected revisions see no conflict; the guard must: A's batch is refused,
// handed back, and decided again on the state B left, so that the log is
// byte for byte the serial history (Y, then X). Without the guard (the
// control) A's stale decision is appended: both are entitled within a
// budget for one.
func TestGuardRefusesBatchDecidedBeforeAnotherWritersAppend(t *testing.T) {
	ctx := context.Background()
	ref, x, y := budgetRace(t)

	// The serial history: one writer decides the reference, Y, then X.
	serial := func() map[string][]byte {
		r := newRig(t)
		r.publish(t, ref)
		r.publish(t, x)
		r.publish(t, y)
		msgs := r.fetch(t, len(ref)+len(x)+len(y))
		in := r.intake(t)
		for _, part := range [][]int{{0, len(ref)}, {len(ref) + len(x), len(msgs)}, {len(ref), len(ref) + len(x)}} {
			if err := in.handle(ctx, msgs[part[0]:part[1]]); err != nil {
				t.Fatal(err)
			}
		}
		return derivedOf(t, r.store)
	}()

	race := func(guard bool) (map[string][]byte, error) {
		r := newRig(t)
		r.publish(t, ref)
		r.publish(t, x)
		r.publish(t, y)
		msgs := r.fetch(t, len(ref)+len(x)+len(y))
		a, b := r.intake(t), r.intake(t)
		a.guard, b.guard = guard, guard
		if err := a.handle(ctx, msgs[:len(ref)]); err != nil {
			t.Fatal(err)
		}
		bx := a.prepare(ctx, msgs[len(ref):len(ref)+len(x)]) // A decides X ...
		if err := b.handle(ctx, msgs[len(ref)+len(x):]); err != nil {
			t.Fatal(err) // ... while B decides and appends Y
		}
		a.commit(ctx, bx)
		err := a.finish(ctx, bx)
		if errors.Is(err, errConflict) {
			// X's messages were handed back: decide them again.
			if err := a.handle(ctx, r.fetch(t, len(x))); err != nil {
				t.Fatalf("deciding X again after the conflict: %v", err)
			}
		}
		return derivedOf(t, r.store), err
	}

	guarded, err := race(true)
	if !errors.Is(err, errConflict) {
		t.Errorf("guarded writer A's append after B's = %v; want errConflict", err)
	}
	if !sameDecisions(guarded, serial) {
		t.Errorf("guarded race: %d derived decisions, not the serial history's %d byte for byte", len(guarded), len(serial))
	}
	unguarded, err := race(false)
	if err != nil {
		t.Errorf("unguarded writer A's append = %v; want success (the control)", err)
	}
	if sameDecisions(unguarded, serial) {
		t.Error("the control (no guard) also matched the serial history: the race reads no other stream's state, so it proves nothing")
	}
	holds := 0
	for _, b := range serial {
		if bytes.HasPrefix(b, []byte("subsidy.v1.EntitlementHeld ")) {
			holds++
		}
	}
	if holds != 1 {
		t.Errorf("the serial history holds %d entitlements for budget; want 1 (the scenario has budget for one)", holds)
	}
}

// An audit checkpoint, which every ledgerd appends on its own and no
// decision reads, appended while a batch is decided is not another
// writer's append: the batch goes in.
func TestGuardIgnoresAuditCheckpoints(t *testing.T) {
	ctx := context.Background()
	ref, x, _ := budgetRace(t)
	r := newRig(t)
	r.publish(t, ref)
	r.publish(t, x)
	msgs := r.fetch(t, len(ref)+len(x))
	a := r.intake(t)
	a.guard = true
	if err := a.handle(ctx, msgs[:len(ref)]); err != nil {
		t.Fatal(err)
	}
	bx := a.prepare(ctx, msgs[len(ref):])
	cp, err := merkle.CheckpointEvent(&subsidyv1.AuditCheckpoint{TreeSize: 1, SignedNote: "test checkpoint", KeyName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.Append(ctx, merkle.CheckpointStream, events.Any, cp); err != nil {
		t.Fatal(err)
	}
	a.commit(ctx, bx)
	if err := a.finish(ctx, bx); err != nil {
		t.Fatalf("finish after an audit checkpoint was appended = %v; want the batch appended", err)
	}
}
