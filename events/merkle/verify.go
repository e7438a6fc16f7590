package merkle

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// VerifyOptions configure VerifyLog.
type VerifyOptions struct {
	// Trusted are checkpoints the caller holds and trusts (their signatures
	// already checked with Verifier.Open): the log must have at least as
	// many events, and its tree at each one's size must have its root.
	Trusted []Checkpoint
	// Verifier, if set, also checks every checkpoint recorded in the log
	// (stream CheckpointStream): its signature, and its root against the
	// tree recomputed from the log. Without it they are not checked (a
	// tamperer could have forged them along with the log).
	Verifier *Verifier
	// Progress, if set, is called after each page of the walk.
	Progress func(VerifyProgress)
	// Workers hash events in parallel; zero means GOMAXPROCS.
	Workers int
}

// VerifyProgress is how far a walk has got.
type VerifyProgress struct {
	Events   int64
	Position events.Position
	// Head is the log's last position when the walk started.
	Head events.Position
}

// Problem kinds.
const (
	ProblemHashLink     = "hash-link"     // an event does not match its hash link or stream
	ProblemMerkleRoot   = "merkle-root"   // the recomputed tree differs from a checkpoint's
	ProblemTruncated    = "truncated"     // the log has fewer events than a checkpoint
	ProblemSignature    = "signature"     // a checkpoint in the log is not validly signed
	ProblemCheckpointAt = "checkpoint-at" // a checkpoint in the log claims events after itself
	ProblemUnreadable   = "unreadable"    // the store cannot read part of the log it claims to hold
)

// Problem is a break VerifyLog found, and where.
type Problem struct {
	Kind string
	// Position is where the problem shows: the event whose link broke, the
	// last event of the checkpoint's tree whose root differs, the log's
	// last event when it is truncated, or the bad checkpoint event.
	Position events.Position
	// After, for a root mismatch, is the last position known good: the
	// change lies after it and at or before Position.
	After    events.Position
	Stream   string
	Revision uint64
	Detail   string
}

func (p *Problem) String() string {
	where := fmt.Sprintf("position %d", p.Position)
	switch {
	case p.Position == 0 && p.Stream != "":
		return fmt.Sprintf("%s in stream %q: %s", p.Kind, p.Stream, p.Detail)
	case p.Kind == ProblemMerkleRoot:
		where = fmt.Sprintf("positions %d to %d", p.After+1, p.Position)
	}
	if p.Stream != "" {
		where += fmt.Sprintf(" (%q revision %d)", p.Stream, p.Revision)
	}
	return fmt.Sprintf("%s at %s: %s", p.Kind, where, p.Detail)
}

// CheckpointResult is the verdict on one checkpoint.
type CheckpointResult struct {
	Checkpoint Checkpoint
	// Source is "given" for a trusted checkpoint, "log" for one recorded
	// in the log (at Position).
	Source   string
	Position events.Position
	OK       bool
	Detail   string
}

// VerifyReport is the outcome of VerifyLog.
type VerifyReport struct {
	// Events, Streams and Head describe the part of the log walked (all of
	// it when there is no hash-link break).
	Events  int64
	Streams int
	Head    events.Position
	// Root is the root of the tree of the Events walked.
	Root tlog.Hash
	// Checkpoints lists each checkpoint checked, in tree size order.
	Checkpoints []CheckpointResult
	// Unchecked counts checkpoints in the log left unchecked (no
	// Verifier).
	Unchecked int
	// Problems lists every break found, the first (by position) first; the
	// walk stops at the first broken hash link or root.
	Problems []Problem
}

// OK reports whether the log verified: no problem at all.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

// VerifyLog walks the whole global log of s once, checking every hash
// link (the checks of events.Verify, hashed in parallel), recomputing the Merkle tree and comparing its root
// with every trusted checkpoint and (with a Verifier) every checkpoint
// recorded in the log. Problems found are in the report; an error means the
// walk itself failed.
func VerifyLog(ctx context.Context, s events.Store, opts VerifyOptions) (VerifyReport, error) {
	var rep VerifyReport
	head, err := s.Head(ctx)
	if err != nil {
		return rep, err
	}
	targets := make([]CheckpointResult, 0, len(opts.Trusted))
	for _, c := range opts.Trusted {
		targets = append(targets, CheckpointResult{Checkpoint: c, Source: "given"})
	}
	// The log's own checkpoints, read first (their stream is short) so
	// that the walk knows at which sizes to take the root.
	logCps := map[events.Position]int64{} // checkpoint event position -> its tree size
	if recs, err := s.ReadStream(ctx, CheckpointStream, events.Forwards, 0, 0); err == nil {
		for _, rec := range recs {
			if opts.Verifier == nil {
				rep.Unchecked++
				continue
			}
			m := &subsidyv1.AuditCheckpoint{}
			var c Checkpoint
			err := proto.Unmarshal(rec.Data, m)
			if err == nil {
				c, err = opts.Verifier.OpenMessage(m)
			}
			if err != nil {
				rep.Problems = append(rep.Problems, Problem{Kind: ProblemSignature, Position: rec.Position, Stream: rec.Stream, Revision: rec.Revision,
					Detail: fmt.Sprintf("checkpoint of size %d: %v", m.GetTreeSize(), err)})
				continue
			}
			logCps[rec.Position] = c.Size
			targets = append(targets, CheckpointResult{Checkpoint: c, Source: "log", Position: rec.Position})
		}
	} else if !errors.Is(err, events.ErrStreamNotFound) {
		if events.CodeOf(err) != events.CodeCorrupt {
			return rep, err
		}
		rep.Problems = append(rep.Problems, Problem{Kind: ProblemUnreadable, Stream: CheckpointStream,
			Detail: fmt.Sprintf("the store cannot read the checkpoints' stream (events it indexes are missing or damaged): %v", err)})
	}
	sort.SliceStable(targets, func(i, j int) bool { return targets[i].Checkpoint.Size < targets[j].Checkpoint.Size })

	w := &walker{targets: targets, logCps: logCps, heads: map[string]*streamHead{}}
	err = w.walk(ctx, s, opts.Workers, func(p events.Position) {
		if opts.Progress != nil {
			opts.Progress(VerifyProgress{Events: w.tree.Size(), Position: p, Head: head})
		}
	})
	if err != nil {
		return rep, err
	}
	rep.Checkpoints = targets
	rep.Streams = len(w.heads)
	rep.Events, rep.Head, rep.Root = w.tree.Size(), w.last, w.tree.Root()
	if w.link != nil {
		rep.Problems = append(rep.Problems, *w.link)
	}
	if w.problem != nil {
		rep.Problems = append(rep.Problems, *w.problem)
	}
	rep.Problems = append(rep.Problems, w.late...)
	if w.link == nil && w.problem == nil {
		for i := w.next; i < len(targets); i++ {
			t := &targets[i]
			if t.Checkpoint.Size == w.tree.Size() { // only the empty tree gets here
				t.OK = t.Checkpoint.Root == w.tree.Root()
				if !t.OK {
					rep.Problems = append(rep.Problems, Problem{Kind: ProblemMerkleRoot, Detail: "the empty log does not have the checkpoint's root"})
				}
				continue
			}
			if t.Checkpoint.Size > w.tree.Size() {
				t.Detail = fmt.Sprintf("the log has %d events, the checkpoint %d", w.tree.Size(), t.Checkpoint.Size)
				rep.Problems = append(rep.Problems, Problem{Kind: ProblemTruncated, Position: w.last,
					Detail: fmt.Sprintf("the log ends with %d events at position %d, but a checkpoint (%s, %s) covers %d: events were removed or the log truncated",
						w.tree.Size(), w.last, t.Source, t.Checkpoint, t.Checkpoint.Size)})
				break
			}
		}
	}
	sort.SliceStable(rep.Problems, func(i, j int) bool { return rep.Problems[i].Position < rep.Problems[j].Position })
	return rep, nil
}

// walker walks the log once: a reader goroutine reads pages, workers
// compute each event's hash link and leaf hash in parallel, and the walk
// checks them in order: the checks of events.Verify (positions increase,
// revisions run 0, 1, 2, ... per stream, each PrevHash is the stream's
// previous Hash, each Hash is the event's LinkHash), then the tree's root at
// every checkpoint's size.
type walker struct {
	tree  Tree
	last  events.Position
	heads map[string]*streamHead
	// cur is the head of the stream of the last event (curStream): a
	// stream's events mostly come in runs (an append's), so most steps
	// find their stream here rather than in heads.
	cur       *streamHead
	curStream string
	targets   []CheckpointResult // by size
	next      int                // the first target not yet reached
	goodSize  int64
	goodPos   events.Position
	link      *Problem                  // the first broken hash link
	problem   *Problem                  // the first root mismatch
	logCps    map[events.Position]int64 // checkpoint events in the log: their tree sizes
	late      []Problem                 // checkpoints claiming events after themselves
}

type streamHead struct {
	rev  uint64
	hash events.Hash
}

// page is a page of the log on its way through the workers. Pages are
// recycled: the walk allocates a few and reads into them again and again.
type page struct {
	p      events.Page
	evs    []events.RecordedEvent // p.Events
	err    error
	linkOK []bool
	leaves []tlog.Hash
	done   chan struct{}
}

const walkPage = 4096

func (w *walker) walk(ctx context.Context, s events.Store, workers int, progress func(events.Position)) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if workers == 1 {
		return w.walkInline(ctx, s, progress)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan *page, 2*workers)
	ordered := make(chan *page, 2*workers)
	// Enough pages for every one the channels and goroutines can hold, so
	// that the reader waits for a free page only when the walk is behind.
	pages := 4*workers + 2
	free := make(chan *page, pages)
	for range pages {
		free <- &page{}
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				p.linkOK = slices.Grow(p.linkOK[:0], len(p.evs))[:len(p.evs)]
				p.leaves = slices.Grow(p.leaves[:0], len(p.evs))[:len(p.evs)]
				for i := range p.evs {
					e := &p.evs[i]
					p.linkOK[i] = events.LinkHash(e.PrevHash, e.Stream, e.Revision, e.EventData) == e.Hash
					p.leaves[i] = LeafHash(e)
				}
				close(p.done)
			}
		}()
	}
	go func() {
		defer close(work)
		defer close(ordered)
		after := events.Start
		for {
			var p *page
			select {
			case p = <-free:
			case <-ctx.Done():
				return
			}
			p.err = events.ReadPage(ctx, s, after, walkPage, &p.p)
			p.evs, p.done = p.p.Events, make(chan struct{})
			err, evs := p.err, p.evs
			if err != nil || len(evs) == 0 {
				close(p.done)
			}
			select {
			case ordered <- p:
			case <-ctx.Done():
				return
			}
			if err != nil || len(evs) == 0 {
				return
			}
			select {
			case work <- p:
			case <-ctx.Done():
				return
			}
			after = evs[len(evs)-1].Position
		}
	}()
	defer wg.Wait()
	defer cancel()
	for p := range ordered {
		select {
		case <-p.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if p.err != nil {
			if events.CodeOf(p.err) == events.CodeCorrupt {
				w.link = &Problem{Kind: ProblemHashLink, Position: w.last, Detail: p.err.Error()}
				return nil
			}
			return p.err
		}
		if len(p.evs) == 0 {
			return nil
		}
		for i := range p.evs {
			if !w.step(&p.evs[i], p.linkOK[i], p.leaves[i]) {
				return nil
			}
		}
		progress(w.last)
		free <- p // never blocks: free holds every page
	}
	return ctx.Err()
}

// walkInline is walk on the calling goroutine alone.
func (w *walker) walkInline(ctx context.Context, s events.Store, progress func(events.Position)) error {
	after := events.Start
	var p events.Page
	for {
		err := events.ReadPage(ctx, s, after, walkPage, &p)
		evs := p.Events
		if err != nil {
			if events.CodeOf(err) == events.CodeCorrupt {
				w.link = &Problem{Kind: ProblemHashLink, Position: w.last, Detail: err.Error()}
				return nil
			}
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		for i := range evs {
			e := &evs[i]
			ok := events.LinkHash(e.PrevHash, e.Stream, e.Revision, e.EventData) == e.Hash
			if !w.step(e, ok, LeafHash(e)) {
				return nil
			}
		}
		after = evs[len(evs)-1].Position
		progress(after)
	}
}

// step checks one event; false stops the walk.
func (w *walker) step(e *events.RecordedEvent, linkOK bool, leaf tlog.Hash) bool {
	h := w.cur
	if h == nil || e.Stream != w.curStream {
		h = w.heads[e.Stream]
	}
	var want uint64
	var prev events.Hash
	if h != nil {
		want, prev = h.rev+1, h.hash
	}
	reason := ""
	switch {
	case e.Position <= w.last:
		reason = "position does not increase"
	case e.Revision != want:
		reason = fmt.Sprintf("revision %d where %d was due", e.Revision, want)
	case e.PrevHash != prev:
		reason = "previous-hash link does not match the stream's previous event"
	case !linkOK:
		reason = "hash does not match the event's content"
	}
	if reason != "" {
		w.link = &Problem{Kind: ProblemHashLink, Position: e.Position, Stream: e.Stream, Revision: e.Revision, Detail: reason}
		return false
	}
	if h == nil {
		h = &streamHead{}
		w.heads[e.Stream] = h
	}
	h.rev, h.hash = e.Revision, e.Hash
	w.cur, w.curStream = h, e.Stream
	if size, ok := w.logCps[e.Position]; ok && size > w.tree.Size() {
		w.late = append(w.late, Problem{Kind: ProblemCheckpointAt, Position: e.Position, Stream: e.Stream, Revision: e.Revision,
			Detail: fmt.Sprintf("the checkpoint claims %d events but only %d precede it", size, w.tree.Size())})
	}
	w.tree.Append(leaf)
	w.last = e.Position
	if w.next < len(w.targets) && w.targets[w.next].Checkpoint.Size <= w.tree.Size() {
		return w.check(e)
	}
	return true
}

// check compares the root with the targets of the tree's size; false on a
// mismatch.
func (w *walker) check(e *events.RecordedEvent) bool {
	size := w.tree.Size()
	var root tlog.Hash
	for _, t := range w.targets[w.next:] {
		if t.Checkpoint.Size == size {
			root = w.tree.Root()
			break
		}
	}
	for ; w.next < len(w.targets) && w.targets[w.next].Checkpoint.Size <= size; w.next++ {
		t := &w.targets[w.next]
		if t.Checkpoint.Size == 0 {
			h, _ := tlog.TreeHash(0, nil)
			t.OK = t.Checkpoint.Root == h
		} else {
			t.OK = t.Checkpoint.Root == root
		}
		if t.OK {
			w.goodSize, w.goodPos = size, e.Position
			continue
		}
		t.Detail = "the log's tree at this size has another root"
		which := "given"
		if t.Source == "log" {
			which = fmt.Sprintf("recorded at position %d", t.Position)
		}
		since := ""
		if w.goodSize > 0 {
			since = fmt.Sprintf("; the first %d events, up to position %d, match an earlier checkpoint", w.goodSize, w.goodPos)
		}
		w.problem = &Problem{Kind: ProblemMerkleRoot, Position: e.Position, After: w.goodPos,
			Detail: fmt.Sprintf("the tree of the first %d events does not have the root of the checkpoint (%s) of that size: an event between positions %d and %d was altered, removed, inserted or reordered (its content, commit time or place in the log)%s",
				size, which, w.goodPos+1, e.Position, since)}
		w.next = len(w.targets)
		return false
	}
	return true
}
