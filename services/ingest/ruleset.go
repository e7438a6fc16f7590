package ingest

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// adopt is adoptRuleSet, and then the intake may decide (adopted); a store
// that cannot write is reported (markUnavailable) and its error returned.
func (in *Intake) adopt(ctx context.Context) error {
	err := in.adoptRuleSet(ctx)
	switch {
	case errors.Is(err, events.ErrUnavailable):
		in.markUnavailable(err)
	case err == nil:
		in.adopted = true
	}
	return err
}

// adoptRuleSet records Config.RuleSet in the log (a RuleSetAdopted in
// stream rules.RuleSetStream) unless it is the rule set the log last
// adopted at this release's decision level (rules.RuleSet.Identity: the
// same parameters are recorded again by a release that decides further),
// and folds it, so that every decision after it is made, and
// replayed by an auditor, under it. Load calls it once the World holds the
// whole log, before anything is decided. An append that another ledger
// instance raced is retried after folding what it appended.
func (in *Intake) adoptRuleSet(ctx context.Context) error {
	rs := in.cfg.RuleSet
	for attempt := 0; ; attempt++ {
		if in.world.Adopted() == rs.Identity() {
			return nil
		}
		if fp, ok := in.world.AdoptedAs(rs.Version); ok && fp != rs.Fingerprint() {
			return &RuleSetConflictError{Version: rs.Version}
		}
		if attempt == 4 {
			return fmt.Errorf("ingest: rule set %s recorded in the log, but the ledger state did not adopt it", rs.Version)
		}
		rev, exists := in.world.StreamRevision(rules.RuleSetStream)
		expected, next := events.NoStream, uint64(0)
		if exists {
			expected, next = events.Exact(rev), rev+1
		}
		now := timestamppb.Now()
		id, m, err := rules.Adoption(rs, next)
		if err != nil {
			return fmt.Errorf("ingest: adopting rule set %s: %w", rs.Version, err)
		}
		env := &subsidyv1.Envelope{Source: Source, RecordedAt: now, OccurredAt: now, RuleSetVersion: rs.Version}
		data, err := codec.Encode(id, rules.RuleSetStream, env, m)
		if err != nil {
			return fmt.Errorf("ingest: adopting rule set %s: %w", rs.Version, err)
		}
		_, err = in.cfg.Store.Append(ctx, rules.RuleSetStream, expected, data)
		if err != nil && !(errors.Is(err, events.ErrWrongExpectedRevision) && attempt < 3) {
			return fmt.Errorf("ingest: recording rule set %s in the log: %w", rs.Version, err)
		}
		// Fold it (or what raced it) as any event of the log.
		if err := in.catchUp(ctx); err != nil {
			return err
		}
		if err == nil {
			in.cfg.Logger.Info("rule set adopted: recorded in the log; decisions from here on are made under it",
				"version", rs.Version, "fingerprint", rs.Fingerprint()[:12], "stream", rules.RuleSetStream)
		}
	}
}

// RuleSetConflictError is Load's refusal of a rule set whose version the
// log adopted before with other parameters: decisions under two rule sets
// would carry one label. Give the changed rule set a version of its own.
type RuleSetConflictError struct{ Version string }

func (e *RuleSetConflictError) Error() string {
	return fmt.Sprintf("ingest: the log adopted rule set %s before with other parameters; give the changed rule set a version of its own", e.Version)
}

// RuleSetChangedError stops a running intake that meets, in the log, a
// RuleSetAdopted of a rule set other than its own: another ledger instance
// sharing the store (EventStoreDB) started with it. Deciding on under it
// would contradict this instance's configuration, and recording its own
// again would make the two take turns; instances sharing a store must run
// one rule set.
type RuleSetChangedError struct {
	Version  string          // the rule set the log adopted
	Position events.Position // where
	Ours     string          // this instance's
}

func (e *RuleSetChangedError) Error() string {
	return fmt.Sprintf("ingest: the log adopted rule set %s at position %d (another ledger instance started with it); this instance runs %s: run every instance sharing the store with the same --rule-set", e.Version, e.Position, e.Ours)
}

// errRuleSetNotRecorded fails a batch begun while the intake's rule set is
// not recorded in the log (a reload could not record it): nothing is
// decided before it is.
var errRuleSetNotRecorded = errors.New("ingest: the rule set is not recorded in the log yet; deciding nothing")
