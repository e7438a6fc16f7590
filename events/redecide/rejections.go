package redecide

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/facts"
	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// A rejection the rules made records what they decided on
// (FactRejected.decided): the event of the log whose state they decided on
// (the log up to and including it), and the fact as
// they were given it. The intake appends a batch's rejections after its
// accepted facts, so the log holds that event before the rejection, with
// perhaps other accepted facts between them: Run reads the rejections
// first (collectRejections), then, folding the log, decides each again
// just after the event it was decided after, on the World as the rules
// had it, and checks it is rejected for the same reason.

// rejection is a rejection the rules made, waiting for its point in the log.
type rejection struct {
	at     Mismatch // the rejection record: position, id, type, stream
	fact   rules.Fact
	reason subsidyv1.ReasonCode
}

var rejectedType = string((&subsidyv1.FactRejected{}).ProtoReflect().Descriptor().FullName())

// collectRejections reads the log through opt.Through and returns the
// rejections the rules made, by the id of the event each was decided after
// (the zero ID: before any). It counts in sum those it cannot decide again
// and reports, as mismatches, those whose record does not hold together.
func collectRejections(ctx context.Context, s events.Store, opt Options, sum *Summary) (map[events.ID][]rejection, error) {
	out := map[events.ID][]rejection{}
	err := readLog(ctx, s, opt.Through, nil, func(rec events.RecordedEvent) error {
		if rec.Type != rejectedType {
			return nil
		}
		d, err := codec.Decode(rec)
		if err != nil {
			return fmt.Errorf("redecide: event at %d: %w", rec.Position, err)
		}
		m := d.Payload.(*subsidyv1.FactRejected)
		switch r, problem := readRejection(d); {
		case m.GetDecided() == nil:
			sum.RejectionsUndecided++
		case m.GetPayloadAltered():
			sum.RejectionsAltered++
		case problem != "":
			sum.Mismatches++
			if opt.Report != nil {
				r.at.Problem = problem
				opt.Report(r.at)
			}
		default:
			key, _ := events.ParseID(m.GetDecided().GetAfterEventId())
			out[key] = append(out[key], r)
		}
		return nil
	})
	return out, err
}

// readLog calls fn with each record of the log up to through (0: its end),
// in order, a page at a time, and after each page progress (if not nil)
// with the page's last position.
func readLog(ctx context.Context, s events.Store, through events.Position, progress func(events.Position), fn func(events.RecordedEvent) error) error {
	var page events.Page
	for after := events.Start; ; {
		if err := events.ReadPage(ctx, s, after, 4096, &page); err != nil {
			return fmt.Errorf("redecide: reading after %d: %w", after, err)
		}
		if len(page.Events) == 0 {
			return nil
		}
		for _, rec := range page.Events {
			if through != 0 && rec.Position > through {
				return nil
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
		after = page.Events[len(page.Events)-1].Position
		if progress != nil {
			progress(after)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// readRejection reads a FactRejected the rules decided: the rejection to
// decide again, or a problem with the record.
func readRejection(d codec.Decoded) (rejection, string) {
	m := d.Payload.(*subsidyv1.FactRejected)
	r := rejection{at: Mismatch{Position: d.Position, ID: d.ID, Type: strings.Clone(d.Type), Stream: strings.Clone(d.Stream)}, reason: m.GetReason()}
	dc := m.GetDecided()
	if dc == nil || m.GetPayloadAltered() {
		return r, ""
	}
	var kind facts.Kind
	for _, k := range facts.ByName(protoreflect.FullName(dc.GetFactType())) {
		if k.Source == dc.GetSource() {
			kind = k
		}
	}
	if kind.IsZero() {
		return r, fmt.Sprintf("a rejection decided on a %s from %q, which is no fact", dc.GetFactType(), dc.GetSource())
	}
	if a := dc.GetAfterEventId(); a != "" {
		if _, err := events.ParseID(a); err != nil {
			return r, fmt.Sprintf("a rejection decided after event %q: %v", a, err)
		}
	}
	id, err := events.ParseID(dc.GetFactEventId())
	if err != nil {
		return r, fmt.Sprintf("a rejection of fact event %q: %v", dc.GetFactEventId(), err)
	}
	payload, err := facts.Decode(kind, m.GetContentType(), m.GetPayload())
	if err != nil {
		return r, fmt.Sprintf("the payload of a rejection the rules decided does not decode: %v", err)
	}
	r.fact = rules.Fact{EventID: id, MessageID: m.GetMessageId(), Source: dc.GetSource(), OccurredAt: dc.GetOccurredAt().AsTime(), Payload: payload}
	return r, ""
}

// decideRejections decides again the rejections decided after the event
// at position at (the zero ID at Start: before any) on w, and counts and
// reports the outcome.
func decideRejections(w *rules.World, at events.Position, rs []rejection, opt Options, sum *Summary) {
	for _, r := range rs {
		if at >= r.at.Position {
			// The intake appends a rejection after the events it was
			// decided on: this record is not one it wrote.
			sum.Mismatches++
			if opt.Report != nil {
				r.at.Problem = fmt.Sprintf("decided after the event at position %d, which the log holds after the rejection", at)
				opt.Report(r.at)
			}
			continue
		}
		sum.RejectionsDecided++
		_, rej := w.Decide(r.fact)
		var problem string
		switch {
		case rej == nil:
			problem = fmt.Sprintf("recorded as rejected %s; decided again it is accepted", r.reason)
		case rej.Reason != r.reason:
			problem = fmt.Sprintf("recorded as rejected %s; decided again it is rejected %s: %s", r.reason, rej.Reason, rej.Detail)
		}
		if problem == "" {
			sum.RejectionsMatched++
			continue
		}
		sum.Mismatches++
		if opt.Report != nil {
			m := r.at
			m.Problem = problem
			opt.Report(m)
		}
	}
}

// unmet reports the rejections whose event was not met before the end of
// the log: each says it was decided after an event the log does not hold
// before it.
func unmet(left map[events.ID][]rejection, opt Options, sum *Summary) {
	var all []rejection
	for after, rs := range left {
		for _, r := range rs {
			r.at.Problem = fmt.Sprintf("decided after event %s, which the log does not hold before it", after)
			all = append(all, r)
		}
	}
	slices.SortFunc(all, func(a, b rejection) int { return cmp.Compare(a.at.Position, b.at.Position) })
	for _, r := range all {
		sum.Mismatches++
		if opt.Report != nil {
			opt.Report(r.at)
		}
	}
}
