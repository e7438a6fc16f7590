package anomaly_test

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/anomaly"
	"github.com/cqhrss/subsidyledger/projections/internal/deepdiff"
	"github.com/cqhrss/subsidyledger/projections/internal/fold"
	"github.com/cqhrss/subsidyledger/projections/internal/rm"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// flagIDs returns the listed flags as "id status".
func flagIDs(l anomaly.List) []string {
	var ids []string
	for _, f := range l.Flags {
		ids = append(ids, f.FlagID+" "+f.Status)
	}
	return ids
}

// TestFlagCleared: a FlagCleared closes its flag: the list (open by
// default) no longer shows it, status=cleared shows it with the
// clearing's position, time, detail, evidence and rule-set version,
// status=all shows both, and the counts cover both whatever is asked. A
// snapshot keeps the clearing; an institution sees the clearing whole.
func TestFlagCleared(t *testing.T) {
	h := fold.NewLateCompletion(t)
	m := anomaly.New()
	fold.ApplyAll(t, m, h.Events[:len(h.Events)-1])
	if l := m.List(anomaly.Filter{}); l.Open != 2 || l.Cleared != 0 || len(l.Flags) != 2 {
		t.Fatalf("before the clearing: open %d, cleared %d, flags %v; want both open", l.Open, l.Cleared, flagIDs(l))
	}
	fold.ApplyAll(t, m, h.Events[len(h.Events)-1:])

	aw := rm.ReasonOf(pb.ReasonCode_REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION)
	check := func(what string, m *anomaly.Model) {
		t.Helper()
		for _, c := range []struct {
			status string
			want   []string
		}{
			{"", []string{h.Open + " open"}},
			{anomaly.StatusOpen, []string{h.Open + " open"}},
			{anomaly.StatusCleared, []string{h.Cleared + " cleared"}},
			{anomaly.StatusAll, []string{h.Open + " open", h.Cleared + " cleared"}}, // newest first
		} {
			l := m.List(anomaly.Filter{Status: c.status})
			if l.Open != 1 || l.Cleared != 1 || !slices.Equal(flagIDs(l), c.want) {
				t.Errorf("%s: status %q: open %d, cleared %d, flags %v; want 1, 1, %v", what, c.status, l.Open, l.Cleared, flagIDs(l), c.want)
			}
			if want := []anomaly.ReasonCount{{Reason: aw, Count: int64(len(c.want))}}; !reflect.DeepEqual(l.ByReason, want) {
				t.Errorf("%s: status %q: by reason %+v; want %+v", what, c.status, l.ByReason, want)
			}
			for _, f := range l.Flags {
				if (f.Status == anomaly.StatusOpen) != (f.Cleared == nil) {
					t.Errorf("%s: flag %s %s with clearing %+v", what, f.FlagID, f.Status, f.Cleared)
				}
			}
		}
		l := m.List(anomaly.Filter{Status: anomaly.StatusCleared, Institution: "ti-digital"})
		if len(l.Flags) != 1 {
			t.Fatalf("%s: the institution's cleared flags: %v", what, flagIDs(l))
		}
		f := l.Flags[0]
		want := &anomaly.Clearing{Position: uint64(h.ClearingAt.Position), RecordedAt: h.ClearingAt.Created, Detail: h.Clearing.Detail,
			EvidenceEventIDs: h.Clearing.Decision.EvidenceEventIds, RuleSetVersion: "2026.6"}
		if !reflect.DeepEqual(f.Cleared, want) {
			t.Errorf("%s: clearing %+v; want %+v", what, f.Cleared, want)
		}
		if !slices.Contains(f.Cleared.EvidenceEventIDs, h.Cleared) || f.Subject != h.ClearedKey || f.Detail != h.FlaggedFirst.Detail {
			t.Errorf("%s: cleared flag %+v: want the flag's own record, its id among the clearing's evidence", what, f)
		}
		if g := f.ForInstitution(); !reflect.DeepEqual(g, f) {
			t.Errorf("%s: as the institution sees it: %+v; want it whole %+v", what, g.Cleared, f.Cleared)
		}
		if l := m.List(anomaly.Filter{Status: "closed"}); len(l.Flags) != 0 || l.Open != 1 || l.Cleared != 1 {
			t.Errorf("%s: status closed lists %v", what, flagIDs(l))
		}
	}
	check("live", m)

	var buf bytes.Buffer
	if err := m.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	back := anomaly.New()
	if err := back.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if d := deepdiff.Diff(m, back); d != "" {
		t.Errorf("restored differs at %s", d)
	}
	check("restored", back)
	var again bytes.Buffer
	if err := back.Snapshot(&again); err != nil || !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Errorf("the restored model's snapshot differs (%v)", err)
	}

	// The same flag raised again is open again, as the rules' World has it.
	pos := h.Events[len(h.Events)-1].Position
	if err := m.Apply(&projections.Event{Position: pos + 1, Type: "subsidy.v1.ViolationFlagged", Created: h.ClearingAt.Created, Payload: h.FlaggedFirst}); err != nil {
		t.Fatal(err)
	}
	if l := m.List(anomaly.Filter{}); l.Open != 2 || l.Cleared != 0 {
		t.Errorf("raised again: open %d, cleared %d; want 2, 0", l.Open, l.Cleared)
	}
}

// TestFlagClearedOfAnUnknownFlag: every ViolationFlagged is recorded here,
// so a FlagCleared of a flag never raised is a broken log: Apply fails (the
// projection stops there), as for an unknown entitlement elsewhere.
func TestFlagClearedOfAnUnknownFlag(t *testing.T) {
	m := anomaly.New()
	fc := &pb.FlagCleared{FlagId: events.DeriveID("flag", "nothing").String(), Reason: pb.ReasonCode_REASON_CODE_ASSESSMENT_WITHOUT_COMPLETION,
		Subject: fmt.Sprintf("%064x", 1), InstitutionId: "ti-digital", Detail: "x"}
	if err := m.Apply(&projections.Event{Position: 1, Type: "subsidy.v1.FlagCleared", Payload: fc}); err == nil {
		t.Error("a FlagCleared of an unknown flag applied")
	}
}
