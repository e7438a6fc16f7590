package events

import (
	"context"
	"fmt"
)

// Break describes the first broken hash link Verify found.
type Break struct {
	Stream   string
	Revision uint64
	Position Position
	Reason   string
}

func (b *Break) String() string {
	return fmt.Sprintf("stream %q revision %d (position %d): %s", b.Stream, b.Revision, b.Position, b.Reason)
}

// VerifyReport summarises a Verify walk.
type VerifyReport struct {
	Events  uint64
	Streams int
	Head    Position
	// Break is the first broken link, nil when the log verified.
	Break *Break
}

// Verify walks the whole global log of s, recomputing every hash link and
// checking that each stream's revisions run 0, 1, 2, ... with each event's
// PrevHash equal to the previous event's Hash. It stops at the first break
// and reports it (with a nil error); an error means the walk itself failed
// (a decoding failure is reported as a break when the store says
// ErrCorrupt). progress, if not nil, is called after each page read.
func Verify(ctx context.Context, s Store, progress func(Position)) (VerifyReport, error) {
	type head struct {
		rev  uint64
		hash Hash
	}
	heads := make(map[string]head)
	var rep VerifyReport
	after := Start
	var p Page
	for {
		err := ReadPage(ctx, s, after, 4096, &p)
		page := p.Events
		if err != nil {
			if CodeOf(err) == CodeCorrupt {
				rep.Break = &Break{Position: after, Reason: err.Error()}
				return rep, nil
			}
			return rep, err
		}
		if len(page) == 0 {
			break
		}
		for i := range page {
			e := &page[i]
			h, seen := heads[e.Stream]
			var want uint64
			var prev Hash
			if seen {
				want, prev = h.rev+1, h.hash
			}
			switch {
			case e.Position <= after:
				rep.Break = &Break{e.Stream, e.Revision, e.Position, "position does not increase"}
			case e.Revision != want:
				rep.Break = &Break{e.Stream, e.Revision, e.Position, fmt.Sprintf("revision %d where %d was due", e.Revision, want)}
			case e.PrevHash != prev:
				rep.Break = &Break{e.Stream, e.Revision, e.Position, "previous-hash link does not match the stream's previous event"}
			case LinkHash(prev, e.Stream, e.Revision, e.EventData) != e.Hash:
				rep.Break = &Break{e.Stream, e.Revision, e.Position, "hash does not match the event's content"}
			}
			if rep.Break != nil {
				return rep, nil
			}
			heads[e.Stream] = head{e.Revision, e.Hash}
			after = e.Position
			rep.Events++
		}
		if progress != nil {
			progress(after)
		}
	}
	rep.Streams = len(heads)
	rep.Head = after
	return rep, nil
}
