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

// DenseLog is implemented by stores whose positions are 1, 2, 3, ... in
// commit order, without gaps (bolt.Store). VerifyLog then reports a
// position the walk skips as missing: an event was removed there.
type DenseLog interface {
	DensePositions() bool
}

// IndexChecker is implemented by stores that keep an index of their
// streams beside the log (bolt.Store), which ReadStream and appends trust
// without looking at the log. After a walk that found no break, VerifyLog
// has the store check its index against the heads the walk computed.
type IndexChecker interface {
	// CheckIndex calls head for each stream the index lists, with the
	// head it records (last revision, its position and hash); when head
	// returns true (the walk agrees) it checks the stream's own entries
	// against the log. It calls bad with each mismatch it finds itself:
	// the stream, what the index says and what the log says. It checks
	// nothing and returns false if the log does not end at last (it grew
	// since the walk). An error means the check itself failed.
	CheckIndex(ctx context.Context, last events.Position,
		head func(stream string, revision uint64, position events.Position, hash events.Hash) bool,
		bad func(stream, index, log string)) (checked bool, err error)
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
	ProblemMissing      = "missing"       // a position of a DenseLog holds no event: an event was removed
	ProblemIndex        = "index"         // the store's stream index disagrees with the log (IndexChecker)
)

// maxIndexProblems bounds the index problems a report lists (the first by
// position); Problem.Detail of the last one counts the others.
const maxIndexProblems = 20

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
	case p.Kind == ProblemIndex:
		return fmt.Sprintf("%s of stream %q: %s", p.Kind, p.Stream, p.Detail)
	case p.Kind == ProblemMissing:
		return fmt.Sprintf("%s: %s", p.Kind, p.Detail)
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
	// Checkpoint is the checkpoint checked, without its Note: a log holds
	// one a minute, and the verdict needs only its size and root.
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
	// Anchored reports whether at least one checkpoint (given, or in the
	// log and checked with the Verifier) of one event or more was checked
	// and matched. Without
	// one, the walk shows only that the log agrees with itself: whoever
	// rewrote the file could have recomputed every hash, removed events
	// from the end or rebuilt the whole log.
	Anchored bool
	// AnchorSize is the size of the largest checkpoint that matched, and
	// AnchorPosition the position of its last event; AfterAnchor counts
	// the events walked after it, which only hash links cover.
	AnchorSize     int64
	AnchorPosition events.Position
	AfterAnchor    int64
	// IndexChecked reports whether the store's stream index was checked
	// against the log (an IndexChecker, walked without a break).
	IndexChecked bool
	// Problems lists every break found, the first (by position) first; the
	// walk stops at the first broken hash link or root.
	Problems []Problem
}

// OK reports whether the walk found no problem at all. It does not say
// that the log was not rewritten: see Anchored and Verdict.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

// Verdicts.
const (
	VerdictOK         = "OK"         // no problem, and anchored (or the log is empty)
	VerdictUnanchored = "UNANCHORED" // no problem, but no checkpoint checked
	VerdictBroken     = "BROKEN"     // problems
)

// Verdict sums the report up: BROKEN with any problem; else UNANCHORED if
// the log has events but no checkpoint was checked; else OK.
func (r *VerifyReport) Verdict() string {
	switch {
	case !r.OK():
		return VerdictBroken
	case r.Events > 0 && !r.Anchored:
		return VerdictUnanchored
	default:
		return VerdictOK
	}
}

// VerifyLog walks the whole global log of s once, checking every hash
// link (the checks of events.Verify, hashed in parallel), recomputing the
// Merkle tree and comparing its root with every trusted checkpoint and
// (with a Verifier) every checkpoint recorded in the log. On a DenseLog it
// also reports missing positions, and on an IndexChecker, after a walk
// without a break, the stream index's disagreements with the log. Problems
// found are in the report, and whether a checkpoint anchored the walk; an
// error means the walk itself failed.
func VerifyLog(ctx context.Context, s events.Store, opts VerifyOptions) (VerifyReport, error) {
	var rep VerifyReport
	head, err := s.Head(ctx)
	if err != nil {
		return rep, err
	}
	targets := make([]CheckpointResult, 0, len(opts.Trusted))
	for _, c := range opts.Trusted {
		c.Note = nil
		targets = append(targets, CheckpointResult{Checkpoint: c, Source: "given"})
	}
	// The log's own checkpoints, read first (their stream is short) so
	// that the walk knows at which sizes to take the root.
	logCps := map[events.Position]int64{} // checkpoint event position -> its tree size
	targets, err = logCheckpoints(ctx, s, opts.Verifier, &rep, targets, logCps)
	if err != nil {
		return rep, err
	}
	sort.SliceStable(targets, func(i, j int) bool { return targets[i].Checkpoint.Size < targets[j].Checkpoint.Size })

	w := &walker{targets: targets, logCps: logCps, heads: map[string]*streamHead{}}
	if d, ok := s.(DenseLog); ok {
		w.dense = d.DensePositions()
	}
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
		// The heads are the whole log's only now.
		if ic, ok := s.(IndexChecker); ok {
			if rep.IndexChecked, err = w.checkIndex(ctx, ic); err != nil {
				return rep, err
			}
			rep.Problems = append(rep.Problems, w.index.problems...)
		}
	}
	for _, t := range targets {
		// A checkpoint of the empty tree covers no event: it anchors
		// nothing.
		if t.OK && t.Checkpoint.Size > 0 && t.Checkpoint.Size >= rep.AnchorSize {
			rep.Anchored, rep.AnchorSize = true, t.Checkpoint.Size
		}
	}
	if rep.Anchored {
		rep.AnchorPosition = w.goodPos
		rep.AfterAnchor = rep.Events - rep.AnchorSize
	}
	sort.SliceStable(rep.Problems, func(i, j int) bool { return rep.Problems[i].Position < rep.Problems[j].Position })
	return rep, nil
}

// checkpointPage is how many checkpoint events VerifyLog reads at a time:
// the ledger records one a minute, half a million a year. (A variable for
// tests.)
var checkpointPage = 1024

// logCheckpoints reads the checkpoints recorded in the log, a page at a
// time, and adds to targets those v opens (and their tree sizes to logCps,
// by position), keeping of each only what the verdict needs (not its
// note). Without v it counts them as unchecked; those that do not open
// are signature problems.
func logCheckpoints(ctx context.Context, s events.Store, v *Verifier, rep *VerifyReport, targets []CheckpointResult, logCps map[events.Position]int64) ([]CheckpointResult, error) {
	for from := uint64(0); ; {
		recs, err := s.ReadStream(ctx, CheckpointStream, events.Forwards, from, checkpointPage)
		if errors.Is(err, events.ErrStreamNotFound) {
			return targets, nil
		}
		if err != nil {
			if events.CodeOf(err) != events.CodeCorrupt {
				return targets, err
			}
			rep.Problems = append(rep.Problems, Problem{Kind: ProblemUnreadable, Stream: CheckpointStream,
				Detail: fmt.Sprintf("the store cannot read the checkpoints' stream (events it indexes are missing or damaged): %v", err)})
			return targets, nil
		}
		for i := range recs {
			rec := &recs[i]
			if v == nil {
				rep.Unchecked++
				continue
			}
			m := &subsidyv1.AuditCheckpoint{}
			var c Checkpoint
			err := proto.Unmarshal(rec.Data, m)
			if err == nil {
				c, err = v.OpenMessage(m)
			}
			if err != nil {
				rep.Problems = append(rep.Problems, Problem{Kind: ProblemSignature, Position: rec.Position, Stream: rec.Stream, Revision: rec.Revision,
					Detail: fmt.Sprintf("checkpoint of size %d: %v", m.GetTreeSize(), err)})
				continue
			}
			c.Origin, c.Note = v.Origin(), nil // one origin string for all
			logCps[rec.Position] = c.Size
			targets = append(targets, CheckpointResult{Checkpoint: c, Source: "log", Position: rec.Position})
		}
		if len(recs) < checkpointPage {
			return targets, nil
		}
		from = recs[len(recs)-1].Revision + 1
	}
}

// walker walks the log once: a reader goroutine reads pages, workers
// compute each event's hash link and leaf hash in parallel, and the walk
// checks them in order: the checks of events.Verify (positions increase,
// revisions run 0, 1, 2, ... per stream, each PrevHash is the stream's
// previous Hash, each Hash is the event's LinkHash; on a dense log, no
// position is skipped), then the tree's root at every checkpoint's size.
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
	dense     bool                      // the store's positions have no gaps (DenseLog)
	index     indexProblems             // checkIndex's
}

type streamHead struct {
	rev  uint64
	pos  events.Position
	hash events.Hash
	seen bool // the store's index lists the stream (checkIndex)
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
				return w.salvage(ctx, s, p.err)
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
				return w.salvage(ctx, s, err)
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

// salvage walks, one event at a time, the page after w.last that the store
// could not read (pageErr, ErrCorrupt), so that the events before the
// record that does not read are checked too, and reports that record as
// unreadable.
func (w *walker) salvage(ctx context.Context, s events.Store, pageErr error) error {
	var p events.Page
	for range walkPage {
		err := events.ReadPage(ctx, s, w.last, 1, &p)
		if err != nil && events.CodeOf(err) != events.CodeCorrupt {
			return err
		}
		if err != nil || len(p.Events) == 0 {
			if err == nil { // it reads one at a time: say what the page said
				err = pageErr
			}
			w.link = w.unreadable(err)
			return nil
		}
		e := &p.Events[0]
		if !w.step(e, events.LinkHash(e.PrevHash, e.Stream, e.Revision, e.EventData) == e.Hash, LeafHash(e)) {
			return nil
		}
	}
	w.link = w.unreadable(pageErr)
	return nil
}

// unreadable is the problem of the record after w.last that the store
// cannot read: on a dense log, at the position after w.last.
func (w *walker) unreadable(err error) *Problem {
	if w.dense {
		return &Problem{Kind: ProblemUnreadable, Position: w.last + 1,
			Detail: fmt.Sprintf("the store cannot read the event at this position: %v", err)}
	}
	return &Problem{Kind: ProblemUnreadable, Position: w.last,
		Detail: fmt.Sprintf("the store cannot read the event after this position: %v", err)}
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
	case w.dense && e.Position != w.last+1:
		w.link = w.missing(e.Position)
		return false
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
	h.rev, h.pos, h.hash = e.Revision, e.Position, e.Hash
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
			if t.Checkpoint.Size == size { // not the empty tree's
				w.goodSize, w.goodPos = size, e.Position
			}
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

// missing is the problem of the positions of a dense log after w.last and
// before next, which hold no event.
func (w *walker) missing(next events.Position) *Problem {
	which := fmt.Sprintf("position %d missing", w.last+1)
	if next-1 > w.last+1 {
		which = fmt.Sprintf("positions %d to %d missing", w.last+1, next-1)
	}
	return &Problem{Kind: ProblemMissing, Position: w.last + 1,
		Detail: fmt.Sprintf("%s (the next event is at position %d): the store numbers its events 1, 2, 3, ... without gaps, so events were removed", which, next)}
}

// indexProblems are the index problems of a walk: the first
// maxIndexProblems by position, and how many others there were.
type indexProblems struct {
	problems []Problem
	more     int
}

func (x *indexProblems) add(p Problem) {
	x.problems = append(x.problems, p)
	if len(x.problems) <= maxIndexProblems {
		return
	}
	// Keep the first by position, whatever order they came in.
	sort.SliceStable(x.problems, func(i, j int) bool { return x.problems[i].Position < x.problems[j].Position })
	x.problems = x.problems[:maxIndexProblems]
	x.more++
}

// checkIndex has the store check its stream index against the heads of
// the walk (which must have gone through the whole log), and reports the
// streams the walk saw that the index does not list. false: the log grew
// since the walk, nothing was checked.
func (w *walker) checkIndex(ctx context.Context, ic IndexChecker) (bool, error) {
	bad := func(stream, index, log string) {
		var pos events.Position
		if h := w.heads[stream]; h != nil {
			pos = h.pos
		}
		w.index.add(Problem{Kind: ProblemIndex, Position: pos, Stream: stream,
			Detail: fmt.Sprintf("the index says %s; the log says %s", index, log)})
	}
	head := func(stream string, rev uint64, pos events.Position, hash events.Hash) bool {
		h := w.heads[stream]
		index := func() string { return fmt.Sprintf("head revision %d at position %d", rev, pos) }
		if h == nil {
			bad(stream, index(), "the stream has no events")
			return false
		}
		h.seen = true
		switch {
		case h.rev != rev || h.pos != pos:
			bad(stream, index(), fmt.Sprintf("head revision %d at position %d", h.rev, h.pos))
		case h.hash != hash:
			bad(stream, fmt.Sprintf("%s with hash %s", index(), hash), fmt.Sprintf("hash %s", h.hash))
		default:
			return true
		}
		return false
	}
	checked, err := ic.CheckIndex(ctx, w.last, head, bad)
	if events.CodeOf(err) == events.CodeCorrupt {
		w.index.add(Problem{Kind: ProblemUnreadable, Position: w.last,
			Detail: fmt.Sprintf("the store cannot read its stream index: %v", err)})
		return false, nil
	}
	if err != nil || !checked {
		return checked, err
	}
	for stream, h := range w.heads {
		if !h.seen {
			bad(stream, "nothing of the stream", fmt.Sprintf("head revision %d at position %d", h.rev, h.pos))
		}
	}
	if x := &w.index; x.more > 0 {
		last := &x.problems[len(x.problems)-1]
		last.Detail += fmt.Sprintf(" (and %d more index problems not listed)", x.more)
	}
	return true, nil
}
