// Package redecide decides every fact of a log again, as an auditor
// replaying the ledger would, and compares each decision with the one
// recorded: the events the fact derived (entitlements, denials, holds,
// payment orders, clawbacks, flags), their ids, streams and payloads, field
// by field. DOMAIN.md promises that every automatic decision can be
// replayed to the same answer; this is the check.
//
// The log is read in position order and folded into a rules.World from
// the start, stored events and all, as the intake folds it: each fact is
// decided on the World as it stood just before the fact, exactly what the
// intake decided it on, because the embedded store keeps a batch's
// decisions in the order they were made. (EventStoreDB appends a batch's
// events stream by stream, so a decision that reads another stream, such
// as a unit's budget, may be replayed on a World that saw a later fact
// first.)
//
// The log records the rule set that decides from each point on
// (rules.RuleSetAdopted, appended by the intake before it decides under a
// rule set the log did not last adopt); folding one makes the World
// decide under it, so each fact is decided again under the rule set that
// decided it. Options.RuleSet decides the facts before the first one
// (logs written before the ledger recorded its rule sets).
//
// A decision is checked under the rule set given. One recorded under
// another version is compared with its own version's label (nothing in the
// rules branches on the label), so what is reported is what the rules
// decide differently; decisions of another version may differ by design
// where the rules changed (rules.DefaultRuleSet lists the changes).
// Summary.ByVersion says under which versions the log's decisions were
// made, and each Mismatch names the version its decision recorded.
//
// Rejections the rules made are decided again too, each at the point in the
// log where the rules decided it (rejections.go), and must be rejected for
// the same reason. Rejections of messages that named no fact or did not
// decode, those whose kept payload was masked or cut, and those recorded
// before the ledger noted that point are counted, not decided again.
package redecide

import (
	"context"
	"fmt"
	"strings"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// LedgerSource is the envelope source of the ledger's own events (derived
// decisions, rejections, checkpoints); every other source is a fact's.
const LedgerSource = "ledger"

// Options configure Run.
type Options struct {
	// RuleSet is the rule set to decide under (rules.DefaultRuleSet, or
	// the file the ledger ran with) until the log's first RuleSetAdopted,
	// at behaviour 1: every release that wrote a log without adopting its
	// rule set first came before rules.BehaviourReEnrolment.
	RuleSet rules.RuleSet
	// Through stops after this position (0: the end of the log).
	Through events.Position
	// Report, if set, receives each mismatch as it is found.
	Report func(Mismatch)
	// Progress, if set, is called after each page with the last position
	// read.
	Progress func(events.Position)
}

// Mismatch is a recorded decision that deciding its fact again did not
// reproduce.
type Mismatch struct {
	// Position, ID, Type and Stream are the fact's.
	Position events.Position
	ID       events.ID
	Type     string
	Stream   string
	// RuleSetVersion is the version the recorded decision names ("" when
	// the fact derived nothing).
	RuleSetVersion string
	// Problem says what differs.
	Problem string
}

func (m Mismatch) String() string {
	v := m.RuleSetVersion
	if v == "" {
		v = "-"
	}
	return fmt.Sprintf("position %d: %s %s in %s (rules %s): %s", m.Position, m.Type, m.ID, m.Stream, v, m.Problem)
}

// Summary counts what Run read and checked.
type Summary struct {
	// Through is the last position read.
	Through events.Position
	// Events read; Facts decided again; Derived events recorded by them;
	// Rejections read, and Other ledger events (checkpoints) counted only.
	Events, Facts, Derived, Rejections, Other int64
	// RejectionsDecided were decided again; RejectionsMatched of them
	// were rejected for the reason recorded (the others are Mismatches). RejectionsUndecided
	// record no decision of the rules (the message named no fact or did
	// not decode, or the rejection was recorded before rejections noted
	// their point in the log); RejectionsAltered kept a payload other than
	// the one received (an ID or account number masked, or cut at the size
	// limit). Neither can be decided again.
	RejectionsDecided, RejectionsMatched, RejectionsUndecided, RejectionsAltered int64
	// Matched facts reproduced their recorded decision; Mismatches did
	// not (each reported); Orphans are derived events found where no fact
	// of theirs precedes them.
	Matched, Mismatches, Orphans int64
	// ByVersion counts the facts whose recorded decisions name each
	// rule-set version ("" for facts that derived nothing).
	ByVersion map[string]int64
	// Adopted lists the rule sets the log adopted (RuleSetAdopted), in
	// order: the facts after each are decided again under it.
	Adopted []Adoption
}

// Adoption is a RuleSetAdopted read from the log.
type Adoption struct {
	Position    events.Position
	Version     string
	Fingerprint string
	// Behaviour is the decision code's level it decides at
	// (rules.RuleSet.Behaviour; 1 when the adoption names none).
	Behaviour int
}

// OK reports whether every fact read reproduced its decision and no
// derived event was found without its fact.
func (s Summary) OK() bool { return s.Mismatches == 0 && s.Orphans == 0 }

// pending is the fact whose derived events are being compared.
type pending struct {
	fact     Mismatch      // where the fact is (its strings copied: a page's memory is reused)
	want     []rules.Event // derived events of the decision made again
	got      int           // derived events of it met in the log so far
	version  string        // the rule set its recorded decision names
	problems []string
	rejected *rules.Rejection
}

// Run reads the store's log from the start and decides each fact again.
// It returns an error only if the log cannot be read, decoded or folded;
// differences are counted in the Summary and given to Options.Report.
func Run(ctx context.Context, s events.Store, opt Options) (Summary, error) {
	if err := opt.RuleSet.Validate(); err != nil {
		return Summary{}, err
	}
	pre := opt.RuleSet
	pre.Behaviour = 1
	w := rules.NewWorld(pre)
	sum := Summary{ByVersion: map[string]int64{}}
	rejections, err := collectRejections(ctx, s, opt, &sum)
	if err != nil {
		return sum, err
	}
	decideRejections(w, events.Start, rejections[events.ID{}], opt, &sum)
	delete(rejections, events.ID{})
	var cur *pending
	finish := func() {
		if cur == nil {
			return
		}
		if cur.rejected != nil {
			cur.problems = append(cur.problems, fmt.Sprintf("recorded as accepted; decided again it is rejected %s: %s", cur.rejected.Reason, cur.rejected.Detail))
		} else if cur.got < len(cur.want) {
			var missing []string
			for _, e := range cur.want[cur.got:] {
				missing = append(missing, codec.TypeName(e.Payload))
			}
			cur.problems = append(cur.problems, fmt.Sprintf("deciding again derives %d more event(s) than recorded: %s", len(missing), strings.Join(missing, ", ")))
		}
		sum.ByVersion[cur.version]++
		if len(cur.problems) == 0 {
			sum.Matched++
		} else {
			sum.Mismatches++
			if opt.Report != nil {
				m := cur.fact
				m.RuleSetVersion, m.Problem = cur.version, strings.Join(cur.problems, "; ")
				opt.Report(m)
			}
		}
		cur = nil
	}
	err = readLog(ctx, s, opt.Through, opt.Progress, func(rec events.RecordedEvent) error {
		d, err := codec.Decode(rec)
		if err != nil {
			return fmt.Errorf("redecide: event at %d: %w", rec.Position, err)
		}
		sum.Events++
		sum.Through = rec.Position
		ev := rules.Event{ID: d.ID, Payload: d.Payload}
		switch _, rejection := d.Payload.(*subsidyv1.FactRejected); {
		case rejection:
			finish()
			sum.Rejections++
		case d.Env.GetSource() == LedgerSource && d.Env.GetCausationId() != "":
			ev.Derived, ev.CausationID = true, d.Env.GetCausationId()
			sum.Derived++
			if cur == nil || ev.CausationID != cur.fact.ID.String() {
				finish()
				sum.Orphans++
				if opt.Report != nil {
					opt.Report(Mismatch{Position: d.Position, ID: d.ID, Type: d.Type, Stream: d.Stream, RuleSetVersion: d.Env.GetRuleSetVersion(),
						Problem: fmt.Sprintf("a derived event whose fact %s does not precede it", ev.CausationID)})
				}
				break
			}
			cur.compare(d, opt.RuleSet.Version)
		case d.Env.GetSource() == LedgerSource:
			finish()
			sum.Other++
			if m, ok := d.Payload.(*subsidyv1.RuleSetAdopted); ok {
				sum.Adopted = append(sum.Adopted, Adoption{Position: d.Position, Version: m.GetVersion(), Fingerprint: m.GetFingerprint(), Behaviour: max(int(m.GetBehaviour()), 1)})
			}
		default:
			finish()
			sum.Facts++
			cur = &pending{fact: Mismatch{Position: d.Position, ID: d.ID, Type: strings.Clone(d.Type), Stream: strings.Clone(d.Stream)}}
			dec, rej := w.Decide(rules.Fact{EventID: d.ID, MessageID: d.Env.GetMessageId(), Source: d.Env.GetSource(), Payload: d.Payload})
			switch {
			case rej != nil:
				cur.rejected = rej
			case dec.Stream != d.Stream:
				cur.problems = append(cur.problems, fmt.Sprintf("decided again it goes to stream %s", dec.Stream))
				fallthrough
			default:
				cur.want = dec.Derived()
			}
		}
		// The stored event, not the one decided again, is folded: the
		// World goes on as the ledger's did, whatever differed.
		if err := w.Apply(d.Stream, d.Revision, ev); err != nil {
			return fmt.Errorf("redecide: folding %s at %d: %w", d.Type, d.Position, err)
		}
		if rs, ok := rejections[d.ID]; ok {
			decideRejections(w, d.Position, rs, opt, &sum)
			delete(rejections, d.ID)
		}
		return nil
	})
	if err != nil {
		return sum, err
	}
	finish()
	unmet(rejections, opt, &sum)
	return sum, nil
}

// compare checks the recorded derived event d against the next one the
// decision made again derives under rule set version. A decision recorded
// under another version is compared with that version's label in place
// of version: nothing in the rules branches on the label, and the fields
// that differ are then the decisions' own.
func (p *pending) compare(d codec.Decoded, version string) {
	i := p.got
	p.got++
	if p.version == "" {
		p.version = d.Env.GetRuleSetVersion()
	}
	if p.rejected != nil {
		return
	}
	if i >= len(p.want) {
		p.problems = append(p.problems, fmt.Sprintf("recorded %s %s, which deciding again does not derive", d.Type, d.ID))
		return
	}
	want := p.want[i]
	if v := d.Env.GetRuleSetVersion(); v != version {
		want.Payload = relabel(want.Payload, v)
	}
	switch {
	case codec.TypeName(want.Payload) != d.Type:
		p.problems = append(p.problems, fmt.Sprintf("derived event %d: recorded %s, decided again %s", i+1, d.Type, codec.TypeName(want.Payload)))
	case want.ID != d.ID:
		p.problems = append(p.problems, fmt.Sprintf("derived %s: recorded id %s, decided again %s", d.Type, d.ID, want.ID))
	case !proto.Equal(want.Payload, d.Payload):
		p.problems = append(p.problems, fmt.Sprintf("derived %s %s differs: %s", d.Type, d.ID, diff(d.Payload, want.Payload)))
	}
}

// relabel returns a copy of m whose Decision names rule set version v.
func relabel(m proto.Message, v string) proto.Message {
	fd := m.ProtoReflect().Descriptor().Fields().ByName("decision")
	if fd == nil || fd.Message() == nil || fd.Message().FullName() != "subsidy.v1.Decision" || !m.ProtoReflect().Has(fd) {
		return m
	}
	c := proto.Clone(m)
	c.ProtoReflect().Get(fd).Message().Interface().(*subsidyv1.Decision).RuleSetVersion = v
	return c
}

// diff names the fields of two messages of one type that differ, each with
// both values on one line (long ones cut).
func diff(recorded, again proto.Message) string {
	r, a := recorded.ProtoReflect(), again.ProtoReflect()
	var parts []string
	fields := r.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if r.Has(fd) == a.Has(fd) && r.Get(fd).Equal(a.Get(fd)) {
			continue
		}
		parts = append(parts, fmt.Sprintf("recorded {%s}, decided again {%s}", field(r, fd), field(a, fd)))
	}
	return strings.Join(parts, "; ")
}

// field is one field of m in text form ("amount_fen:80000"), empty when
// unset, cut after 300 bytes.
func field(m protoreflect.Message, fd protoreflect.FieldDescriptor) string {
	if !m.Has(fd) {
		return ""
	}
	one := m.New()
	one.Set(fd, m.Get(fd))
	s := strings.TrimSpace(prototext.MarshalOptions{}.Format(one.Interface()))
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "..."
	}
	return s
}
