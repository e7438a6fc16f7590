package merkle

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// relink recomputes every hash link of evs, as a tamperer who knows the
// algorithm would after changing the log.
func relink(evs []events.RecordedEvent) {
	type head struct {
		rev  uint64
		hash events.Hash
	}
	heads := map[string]head{}
	for i := range evs {
		e := &evs[i]
		h, ok := heads[e.Stream]
		e.Revision, e.PrevHash = 0, events.Hash{}
		if ok {
			e.Revision, e.PrevHash = h.rev+1, h.hash
		}
		e.Hash = events.LinkHash(e.PrevHash, e.Stream, e.Revision, e.EventData)
		heads[e.Stream] = head{e.Revision, e.Hash}
	}
}

func TestVerifyLogDetectsTampering(t *testing.T) {
	s := openStore(t)
	fill(t, s, 0, 200)
	orig := readAll(t, s)
	tr := treeOf(orig, 120)
	early := Checkpoint{Origin: "o", Size: 120, Root: tr.Root()}
	tr = treeOf(orig, len(orig))
	full := Checkpoint{Origin: "o", Size: int64(len(orig)), Root: tr.Root()}

	clone := func() []events.RecordedEvent {
		out := make([]events.RecordedEvent, len(orig))
		copy(out, orig)
		for i := range out {
			out[i].Data = append([]byte(nil), out[i].Data...)
		}
		return out
	}
	// lastOfStream returns the index of the last event of a stream.
	lastOfStream := func(evs []events.RecordedEvent, stream string) int {
		for i := len(evs) - 1; i >= 0; i-- {
			if evs[i].Stream == stream {
				return i
			}
		}
		return -1
	}
	for _, tc := range []struct {
		name   string
		tamper func([]events.RecordedEvent) []events.RecordedEvent
		kind   string
		at     events.Position // where the problem must be reported
	}{
		{"untouched", func(e []events.RecordedEvent) []events.RecordedEvent { return e }, "", 0},
		{"byte altered", func(e []events.RecordedEvent) []events.RecordedEvent { e[150].Data[3] ^= 1; return e }, ProblemHashLink, orig[150].Position},
		{"byte altered, links recomputed", func(e []events.RecordedEvent) []events.RecordedEvent {
			e[50].Data[3] ^= 1
			relink(e)
			return e
		}, ProblemMerkleRoot, orig[119].Position},
		{"commit time altered", func(e []events.RecordedEvent) []events.RecordedEvent {
			e[130].Created = e[130].Created.Add(time.Hour)
			return e
		}, ProblemMerkleRoot, orig[199].Position},
		{"event deleted", func(e []events.RecordedEvent) []events.RecordedEvent { return append(e[:60], e[61:]...) }, ProblemHashLink, 0},
		{"last event of a stream deleted", func(e []events.RecordedEvent) []events.RecordedEvent {
			i := lastOfStream(e, "trainee-1")
			return append(e[:i], e[i+1:]...)
		}, ProblemTruncated, orig[199].Position},
		{"event replaced by another, links recomputed", func(e []events.RecordedEvent) []events.RecordedEvent {
			i := lastOfStream(e, "trainee-1")
			e[i].Data = []byte("another payload")
			relink(e)
			return e
		}, ProblemMerkleRoot, orig[199].Position},
		{"reordered across streams", func(e []events.RecordedEvent) []events.RecordedEvent {
			// Swap the contents of two neighbouring events of different
			// streams, keeping positions: every link still holds.
			i := 10
			for e[i].Stream == e[i+1].Stream {
				i++
			}
			e[i], e[i+1] = e[i+1], e[i]
			e[i].Position, e[i+1].Position = e[i+1].Position, e[i].Position
			return e
		}, ProblemMerkleRoot, orig[119].Position},
		{"truncated", func(e []events.RecordedEvent) []events.RecordedEvent { return e[:190] }, ProblemTruncated, orig[189].Position},
		{"truncated below a checkpoint", func(e []events.RecordedEvent) []events.RecordedEvent { return e[:100] }, ProblemTruncated, orig[99].Position},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &sliceStore{evs: tc.tamper(clone())}
			var pages int
			rep, err := VerifyLog(ctxT(t), st, VerifyOptions{Trusted: []Checkpoint{full, early}, Progress: func(VerifyProgress) { pages++ }})
			if err != nil {
				t.Fatal(err)
			}
			// The walk on one goroutine finds the same, and its hash-link
			// checks are those of events.Verify.
			rep1, err := VerifyLog(ctxT(t), st, VerifyOptions{Trusted: []Checkpoint{full, early}, Workers: 1})
			if err != nil || fmt.Sprint(rep1.Problems) != fmt.Sprint(rep.Problems) || rep1.Root != rep.Root {
				t.Errorf("one worker: %v %v; many: %v", err, rep1.Problems, rep.Problems)
			}
			lrep, err := events.Verify(ctxT(t), st, nil)
			if err != nil {
				t.Fatal(err)
			}
			var link *Problem
			for i := range rep.Problems {
				if rep.Problems[i].Kind == ProblemHashLink {
					link = &rep.Problems[i]
				}
			}
			if (lrep.Break == nil) != (link == nil) || (link != nil && (link.Position != lrep.Break.Position || link.Detail != lrep.Break.Reason)) {
				t.Errorf("hash-link problem %v; events.Verify says %v", link, lrep.Break)
			}
			if tc.kind == "" {
				if !rep.OK() || rep.Events != 200 || rep.Root != full.Root || len(rep.Checkpoints) != 2 || !rep.Checkpoints[0].OK || !rep.Checkpoints[1].OK {
					t.Fatalf("untouched log: %+v", rep)
				}
				if rep.Verdict() != VerdictOK || rep.AnchorSize != 200 || rep.AfterAnchor != 0 {
					t.Errorf("untouched log: verdict %s, anchor %d, %d events after; want OK, 200, 0", rep.Verdict(), rep.AnchorSize, rep.AfterAnchor)
				}
				if pages == 0 {
					t.Error("no progress reported")
				}
				return
			}
			if rep.OK() {
				t.Fatalf("VerifyLog found nothing wrong")
			}
			p := rep.Problems[0]
			if p.Kind != tc.kind || (tc.at != 0 && p.Position != tc.at) {
				t.Errorf("first problem %s; want %s at position %d", p.String(), tc.kind, tc.at)
			}
		})
	}
}

func TestCheckpointerAndLogCheckpoints(t *testing.T) {
	s := openStore(t)
	fill(t, s, 0, 50)
	sl := runSealer(t, filepath.Join(t.TempDir(), "tree.db"), s)
	skey, vkey, _ := GenerateKey(nil, "")
	sg, _ := NewSigner(skey)
	v, _ := NewVerifier(vkey)
	publish := func(ctx context.Context, cp *subsidyv1.AuditCheckpoint) (events.Position, error) {
		ev, err := CheckpointEvent(cp)
		if err != nil {
			return 0, err
		}
		r, err := s.Append(ctx, CheckpointStream, events.Any, ev)
		return r.Position, err
	}
	cps := NewCheckpointer(CheckpointerConfig{Sealer: sl, Signer: sg, Publish: publish})
	cp1, fresh, err := cps.Issue(ctxT(t))
	if err != nil || !fresh || cp1.GetTreeSize() != 50 {
		t.Fatalf("Issue = %v, %v, %v; want a fresh checkpoint of size 50", cp1, fresh, err)
	}
	cp, fresh, err := cps.Issue(ctxT(t))
	if err != nil || fresh || cp != cp1 {
		t.Fatalf("Issue with nothing new = %v, %v, %v; want the last one again", cp, fresh, err)
	}
	fill(t, s, 50, 10)
	cp2, fresh, err := cps.Issue(ctxT(t))
	if err != nil || !fresh || cp2.GetTreeSize() != 61 { // 50 + checkpoint + 10
		t.Fatalf("Issue = %v, %v, %v; want a fresh checkpoint of size 61", cp2, fresh, err)
	}
	// A new Checkpointer (a restart) takes the log's last checkpoint.
	if cp, fresh, err := NewCheckpointer(CheckpointerConfig{Sealer: sl, Signer: sg, Publish: publish}).Issue(ctxT(t)); err != nil || fresh || cp.GetTreeSize() != 61 {
		t.Fatalf("Issue after restart = %v, %v, %v; want the log's last checkpoint", cp, fresh, err)
	}

	// Consistency between the two published checkpoints.
	c1, err := v.OpenMessage(cp1)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := v.OpenMessage(cp2)
	p, err := sl.ConsistencyProof(c1.Size, c2.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckConsistency(c1, c2, p); err != nil {
		t.Fatal(err)
	}

	rep, err := VerifyLog(ctxT(t), s, VerifyOptions{Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Checkpoints) != 2 || !rep.Checkpoints[1].OK || rep.Checkpoints[1].Source != "log" {
		t.Fatalf("VerifyLog with the log's checkpoints: %+v", rep)
	}
	if rep.Verdict() != VerdictOK || rep.AnchorSize != 61 || rep.AfterAnchor != 1 {
		t.Errorf("VerifyLog with the log's checkpoints: verdict %s, anchor %d, %d events after; want OK, 61, 1", rep.Verdict(), rep.AnchorSize, rep.AfterAnchor)
	}
	// Without the key the checkpoints prove nothing: no problem, but
	// nothing anchors the walk either.
	rep, _ = VerifyLog(ctxT(t), s, VerifyOptions{})
	if !rep.OK() || rep.Unchecked != 2 || rep.Anchored || rep.Verdict() != VerdictUnanchored {
		t.Errorf("VerifyLog without a key: %+v; want no problem, 2 unchecked, UNANCHORED", rep)
	}

	// A checkpoint signed by another key, and one claiming events after
	// itself, are reported.
	okey, _, _ := GenerateKey(nil, "")
	og, _ := NewSigner(okey)
	forged, _ := og.Sign(5, c1.Root, time.Now())
	if _, err := publish(ctxT(t), forged); err != nil {
		t.Fatal(err)
	}
	_, _, root := sl.Sealed()
	ahead, _ := sg.Sign(1000, root, time.Now())
	if _, err := publish(ctxT(t), ahead); err != nil {
		t.Fatal(err)
	}
	rep, err = VerifyLog(ctxT(t), s, VerifyOptions{Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, p := range rep.Problems {
		kinds = append(kinds, p.Kind)
	}
	if got := strings.Join(kinds, ","); got != "signature,checkpoint-at,truncated" {
		t.Errorf("problems %q; want signature, checkpoint-at, truncated", got)
	}
}

// TestProofsFromAlteredLog: a server that rewrote its log (one payload
// changed, links recomputed) and sealed it again cannot prove inclusion or
// consistency against a checkpoint of the original.
func TestProofsFromAlteredLog(t *testing.T) {
	a := openStore(t)
	fill(t, a, 0, 40)
	sa := runSealer(t, filepath.Join(t.TempDir(), "a.db"), a)
	sealAll(t, sa, a)
	orig, err := sa.TreeHead(0)
	if err != nil {
		t.Fatal(err)
	}

	// The rewritten log: event 20 altered, links recomputed, commit times
	// kept, and more events after it.
	fill(t, a, 40, 10)
	evs := readAll(t, a)
	evs[20].Data = []byte("payload 20 of the test log, altered")
	relink(evs)
	b := &sliceStore{evs: evs}
	sb := runSealer(t, filepath.Join(t.TempDir(), "b.db"), b)
	sealAll(t, sb, b)
	now, _ := sb.TreeHead(0)

	for _, i := range []int{0, 20, 39} {
		p, err := sb.InclusionProof(ctxT(t), events.Position(i+1), 40)
		if err != nil {
			t.Fatal(err)
		}
		// Every audit path passes through the altered subtree or the
		// root, so no leaf proves, not even one before the change.
		if err := CheckInclusion(orig, p); !errors.Is(err, ErrBadProof) {
			t.Errorf("leaf %d of the altered log proved against the original checkpoint: %v", i, err)
		}
	}
	p, err := sb.ConsistencyProof(40, 50)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckConsistency(orig, now, p); !errors.Is(err, ErrBadProof) {
		t.Errorf("consistency of the altered log with the original = %v; want ErrBadProof", err)
	}
}
