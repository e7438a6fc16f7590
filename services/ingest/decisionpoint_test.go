package ingest

import (
	"context"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/merkle"
	"github.com/cqhrss/subsidyledger/events/redecide"
	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/simulate"
)

// TestRejectionPointWhileABatchIsInFlight: a batch registers a trainee
// (decided, folded provisionally); before it is appended an audit
// checkpoint lands in the log; the next batch rejects the same trainee's
// registration sent again under another key (a duplicate of the first),
// decided while the first batch is still in flight.
// The rejection was decided on a state that held the registration, so the
// point it records must be the registration, which the log holds after
// the checkpoint, not the checkpoint: decided again there, it is a
// duplicate as recorded. (Recording the last event catch-up met, the
// checkpoint, made the replay decide it on a state without the
// registration: "decided again it is accepted".)
func TestRejectionPointWhileABatchIsInFlight(t *testing.T) {
	for _, checkpoint := range []bool{false, true} {
		ctx := context.Background()
		r := newRig(t)
		ref, trainees := programme(t)
		f := trainees[0] // a TraineeRegistered
		again := f
		again.MsgID = f.MsgID + "-resent"
		r.publish(t, ref)
		r.publish(t, []simulate.Fact{f, again})
		in := r.intake(t)
		if err := in.handle(ctx, r.fetch(t, len(ref))); err != nil {
			t.Fatal(err)
		}
		msgs := r.fetch(t, 2)
		b := in.prepare(ctx, msgs[:1])
		if checkpoint {
			cp, err := merkle.CheckpointEvent(&subsidyv1.AuditCheckpoint{TreeSize: 1, SignedNote: "test checkpoint", KeyName: "test"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.store.Append(ctx, merkle.CheckpointStream, events.Any, cp); err != nil {
				t.Fatal(err)
			}
		}
		// The next batch is decided while the first is in flight, as Run
		// pipelines them: its catch-up meets the checkpoint, not yet the
		// registration.
		b2 := in.prepare(ctx, msgs[1:])
		in.commit(ctx, b)
		if err := in.finish(ctx, b); err != nil {
			t.Fatal(err)
		}
		in.commit(ctx, b2)
		if err := in.finish(ctx, b2); err != nil {
			t.Fatal(err)
		}
		var got []redecide.Mismatch
		sum, err := redecide.Run(ctx, r.store, redecide.Options{RuleSet: rules.DefaultRuleSet(), Report: func(m redecide.Mismatch) { got = append(got, m) }})
		if err != nil {
			t.Fatal(err)
		}
		if !sum.OK() || sum.RejectionsDecided != 1 || sum.RejectionsMatched != 1 {
			t.Errorf("checkpoint %v: redecide %+v, %v; want the one rejection decided again as recorded", checkpoint, sum, got)
		}
	}
}
