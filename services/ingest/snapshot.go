package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/events/snap"
	"github.com/cqhrss/subsidyledger/projections"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// SnapshotName is the name the intake's snapshot is kept under in its
// projections.Checkpoints. The snapshot holds the position it reflects and
// the id of the event there (checked against the store when it is
// restored), the records of rejected and recent messages, and the rules'
// World (rules.World.Snapshot).
const SnapshotName = "intake"

const snapshotFormat = 1

// state is the intake's state as a projections.Snapshotter.
type state struct {
	in   *Intake
	size int64 // of the snapshot being restored
}

func (s *state) Name() string    { return SnapshotName }
func (s *state) Version() uint32 { return snapshotFormat }

func (s *state) Snapshot(w io.Writer) error {
	in := s.in
	sw := snap.NewWriter(w)
	sw.Magic("ingest.Intake", snapshotFormat)
	sw.Uvarint(uint64(in.seen))
	sw.Fixed(in.seenID[:])
	sw.Varint(in.seenTime.UnixNano())
	sw.Uvarint(uint64(len(in.rejected)))
	for id, r := range in.rejected {
		writeRef(sw, id, r)
	}
	sw.Bool(in.recorded.old != nil)
	for _, gen := range []map[events.ID]ref{in.recorded.old, in.recorded.cur} {
		sw.Uvarint(uint64(len(gen)))
		for id, r := range gen {
			writeRef(sw, id, r)
		}
	}
	in.world.Snapshot(sw)
	sw.Magic("end", snapshotFormat)
	return sw.Flush()
}

func writeRef(sw *snap.Writer, id events.ID, r ref) {
	sw.Fixed(id[:])
	sw.String(r.stream)
	sw.Uvarint(r.revision)
	sw.Uvarint(uint64(r.position))
	sw.Varint(int64(r.reason))
	sw.String(r.detail)
}

// Restore replaces the intake's state with the snapshot's; on an error the
// state is partly replaced (call reset).
func (s *state) Restore(r io.Reader) error {
	in := s.in
	sr := snap.NewReader(r)
	sr.SetSize(s.size)
	sr.Magic("ingest.Intake", snapshotFormat)
	// The event the snapshot reflects: the state reaches it once the
	// World is restored too.
	at := events.Position(sr.Uvarint())
	var atID events.ID
	sr.Fixed(atID[:])
	atTime := time.Unix(0, sr.Varint()).UTC()
	n := sr.Len(1 << 31)
	in.rejected = make(map[events.ID]ref, n)
	for range n {
		id, r := readRef(sr)
		in.rejected[id] = r
	}
	in.recorded = newRecent(in.cfg.RecentIDs)
	hasOld := sr.Bool()
	for i, gen := range []*map[events.ID]ref{&in.recorded.old, &in.recorded.cur} {
		n := sr.Len(1 << 31)
		if i == 0 && !hasOld {
			if n != 0 {
				sr.Fail("%d recent ids in a generation that is not there", n)
			}
			continue
		}
		*gen = make(map[events.ID]ref, n)
		for range n {
			id, r := readRef(sr)
			(*gen)[id] = r
		}
	}
	if err := sr.Err(); err != nil {
		return err
	}
	w, err := rules.RestoreWorld(in.cfg.RuleSet, sr)
	if err != nil {
		return err
	}
	sr.Magic("end", snapshotFormat)
	if err := sr.Err(); err != nil {
		return err
	}
	in.world = w
	in.seen, in.seenID, in.seenTime = at, atID, atTime
	in.point = atID // a snapshot is written with nothing unlogged
	return nil
}

func readRef(sr *snap.Reader) (events.ID, ref) {
	var id events.ID
	sr.Fixed(id[:])
	r := ref{stream: sr.String(), revision: sr.Uvarint(), position: events.Position(sr.Uvarint()),
		reason: subsidyv1.ReasonCode(sr.Int32()), detail: sr.String()}
	return id, r
}

// restore replaces the intake's state with its latest snapshot if there is
// one it can use. It cannot use a snapshot of another format or rule set, a
// damaged one, or one whose event the store does not hold at that position
// (another store, or one restored from an older backup); it logs why and
// leaves the state reset.
func (in *Intake) restore(ctx context.Context) {
	in.reset()
	cps := in.cfg.Snapshots
	if cps == nil {
		return
	}
	log := in.cfg.Logger
	cp, ok, err := cps.Load(SnapshotName)
	switch {
	case err != nil:
		log.Warn("cannot read the intake's snapshot manifest; folding the whole log", "err", err)
		return
	case !ok:
		return
	case cp.Version != snapshotFormat:
		log.Info("the intake's snapshot is of another format; folding the whole log", "format", cp.Version, "want", snapshotFormat)
		return
	}
	t0 := time.Now()
	st := &state{in: in, size: cp.Size}
	// Restore pauses the garbage collector meanwhile: nearly everything
	// it allocates is kept.
	if err := cps.Restore(st, cp); err != nil {
		in.reset()
		if errors.Is(err, rules.ErrSnapshotMismatch) {
			log.Info("the intake's snapshot was taken under another rule set or version; folding the whole log", "err", err)
		} else {
			log.Warn("cannot restore the intake's snapshot; folding the whole log", "err", err)
		}
		return
	}
	if err := in.matchesStore(ctx); err != nil {
		in.reset()
		log.Warn("the intake's snapshot does not match the store; folding the whole log", "err", err)
		return
	}
	in.snapAt, in.sinceSnap = in.seen, 0
	in.advance(in.seen)
	log.Info("intake state restored from its snapshot", "position", in.seen, "bytes", cp.Size,
		"took", time.Since(t0).Round(time.Millisecond))
}

// matchesStore checks that the store holds the event the restored state
// reflects, at its position. A store that cannot be read is tried again
// (every second, until ctx ends) rather than taken for another log: that
// would fold the whole log, a minute for ten million events.
func (in *Intake) matchesStore(ctx context.Context) error {
	if in.seen == events.Start {
		return nil
	}
	for {
		id, err := projections.EventIDAt(ctx, in.cfg.Store, in.seen)
		switch {
		case errors.Is(err, projections.ErrNoEventAt):
			return err
		case err == nil && id != in.seenID:
			return fmt.Errorf("the event at position %d is %s, the snapshot's was %s", in.seen, id, in.seenID)
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
		in.cfg.Logger.Warn("cannot read the store to check the intake's snapshot; trying again", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// snapshotDue reports whether enough events were folded or committed since
// the last snapshot to write another.
func (in *Intake) snapshotDue(atLeast int) bool {
	return in.cfg.Snapshots != nil && in.sinceSnap >= atLeast && in.sinceSnap > 0
}

// saveSnapshot catches up with the log and writes the intake's state as
// its snapshot. Call it only with no batch in flight: the world must hold
// the log up to in.seen and nothing else. A failure is logged, not
// returned: the intake goes on without (the next is due after another
// SnapshotEvery events).
func (in *Intake) saveSnapshot(ctx context.Context, why string) {
	log := in.cfg.Logger
	in.sinceSnap = 0 // whatever happens, the next is due after SnapshotEvery more
	if in.halted {
		log.Warn("intake snapshot not written: the intake stopped on another instance's rule set")
		return
	}
	if err := in.catchUp(ctx); err != nil {
		log.Warn("intake snapshot not written: cannot catch up with the log", "err", err)
		return
	}
	if len(in.mine) > 0 {
		// Appended by this intake and not in the log: cannot happen
		// after a settled batch; never snapshot a world the log lacks.
		log.Warn("intake snapshot not written: events of the intake are missing from the log", "missing", len(in.mine))
		return
	}
	t0 := time.Now()
	in.world.Compact() // sorts what Snapshot writes in order, once
	cp, err := in.cfg.Snapshots.Save(&state{in: in}, in.seen, in.seenTime, in.seenID)
	if err != nil {
		log.Error("intake snapshot not written", "err", err)
		return
	}
	in.snapAt = in.seen
	took := time.Since(t0)
	if m := in.cfg.Metrics; m != nil {
		m.SnapshotPosition.Set(float64(in.seen))
		m.SnapshotSeconds.Set(took.Seconds())
	}
	log.Info("intake state snapshot written", "why", why, "position", in.seen, "bytes", cp.Size, "took", took.Round(time.Millisecond))
}
