package rules

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"

	"github.com/cqhrss/subsidyledger/events"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// RuleSetStream is the stream of RuleSetAdopted events.
const RuleSetStream = "rule-sets"

// AdoptionFormat is the latest form of the rule set (ReadRuleSet's file
// form) and of its fingerprint in the RuleSetAdopted events this release
// writes and reads (see its format field): 2 is 1 with a behaviour
// (RuleSet.Behaviour) above 1, which a release before it must refuse
// rather than fold as the rule set it decides under at its own, earlier
// behaviour. An adoption at behaviour 1 is written in format 1.
const AdoptionFormat = 2

// Adoption returns the RuleSetAdopted recording that rs decides from here
// on, and its event id, derived from the fingerprint and the stream
// revision it will be appended at (a rule set adopted again after another
// is another event).
func Adoption(rs RuleSet, revision uint64) (events.ID, *subsidyv1.RuleSetAdopted, error) {
	var b bytes.Buffer
	if err := rs.WriteJSON(&b); err != nil {
		return events.ID{}, nil, err
	}
	fp := rs.Fingerprint()
	format := uint32(1)
	if rs.behaviour() > 1 {
		format = AdoptionFormat
	}
	return events.DeriveID("rule-set", fp, strconv.FormatUint(revision, 10)),
		&subsidyv1.RuleSetAdopted{Version: rs.Version, Fingerprint: fp, RuleSetJson: b.String(), Format: format, Behaviour: uint32(rs.behaviour())}, nil
}

// AdoptionIdentity is the RuleSet.Identity of the rule set m records.
func AdoptionIdentity(m *subsidyv1.RuleSetAdopted) string {
	return identity(m.GetFingerprint(), int(m.GetBehaviour()))
}

// identity is a rule set's fingerprint with its behaviour beside it, from
// behaviour 2 on (RuleSet.Identity).
func identity(fingerprint string, behaviour int) string {
	if behaviour <= 1 {
		return fingerprint
	}
	return fingerprint + "+b" + strconv.Itoa(behaviour)
}

// Adopted returns the identity (RuleSet.Identity) of the rule set the last
// RuleSetAdopted folded made the World's, or "" if none was folded (the
// World decides under the rule set it was made with).
func (w *World) Adopted() string { return w.adopted }

// readAdoption reads the rule set m records, checked against its
// fingerprint.
func readAdoption(m *subsidyv1.RuleSetAdopted) (RuleSet, error) {
	// Format 0 (unset) is format 1: the adoptions main wrote before the
	// field was added (2026-11-27) have that form.
	if f := m.GetFormat(); f > AdoptionFormat {
		return RuleSet{}, fmt.Errorf("rules: RuleSetAdopted %s is of format %d; this release reads format %d (a later release wrote it?)", m.GetVersion(), f, AdoptionFormat)
	}
	rs, err := ReadRuleSet(bytes.NewReader([]byte(m.GetRuleSetJson())))
	if err != nil {
		return RuleSet{}, fmt.Errorf("rules: RuleSetAdopted %s: %w", m.GetVersion(), err)
	}
	if fp := rs.Fingerprint(); fp != m.GetFingerprint() || rs.Version != m.GetVersion() {
		return RuleSet{}, fmt.Errorf("rules: RuleSetAdopted %s (fingerprint %.12s…) holds rule set %s (fingerprint %.12s…)", m.GetVersion(), m.GetFingerprint(), rs.Version, fp)
	}
	rs.Holidays = slices.Clone(rs.Holidays)
	rs.WorkingWeekends = slices.Clone(rs.WorkingWeekends)
	// The code's level the adoption recorded: unset is 1, every release
	// before the field (rules 2026.6) existed.
	rs.Behaviour = max(int(m.GetBehaviour()), 1)
	if rs.Behaviour > CurrentBehaviour {
		return RuleSet{}, fmt.Errorf("rules: RuleSetAdopted %s decides at behaviour %d; this release knows %d (a later release wrote it?)", m.GetVersion(), rs.Behaviour, CurrentBehaviour)
	}
	return rs, nil
}

// AdoptedAs returns the fingerprint of the rule set the log first adopted
// under version, and false if it adopted none under it. A rule set whose
// version the log adopted with other parameters must not be adopted: two
// rule sets under one version label would make the decisions' labels
// ambiguous.
func (w *World) AdoptedAs(version string) (fingerprint string, ok bool) {
	fingerprint, ok = w.versions[version]
	return fingerprint, ok
}

// adopt makes the World decide under rs from now on. A smaller pass-rate
// window drops the oldest results of every institution's window (rule 15
// reads the last PassRateWindow first attempts); a larger one fills up as
// first attempts come.
func (w *World) adopt(rs RuleSet) {
	w.rs, w.cal, w.adopted = rs, newCalendar(rs), rs.Identity()
	for _, q := range w.quality {
		q.trim(rs.PassRateWindow)
	}
	if w.versions == nil {
		w.versions = map[string]string{}
	}
	if _, ok := w.versions[rs.Version]; !ok {
		w.versions[rs.Version] = rs.Fingerprint()
	}
}
