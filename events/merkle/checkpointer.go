package merkle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// PublishFunc records a signed checkpoint: the ledger appends it to the log
// (CheckpointEvent, stream CheckpointStream) and publishes it on NATS. It
// returns the log position of the appended checkpoint event.
type PublishFunc func(ctx context.Context, cp *subsidyv1.AuditCheckpoint) (events.Position, error)

// CheckpointerConfig configures a Checkpointer.
type CheckpointerConfig struct {
	Sealer *Sealer // required, and running
	Signer *Signer // required
	// Publish records each checkpoint. Required.
	Publish PublishFunc
	// Every is the period of checkpoints (default one minute). A period in
	// which nothing but the last checkpoint was sealed issues none.
	Every time.Duration
	// Now is the clock of issued_at; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Checkpointer issues signed checkpoints of the sealed tree, periodically
// (Run) and on demand (Issue). It is safe for concurrent use.
type Checkpointer struct {
	cfg CheckpointerConfig
	log *slog.Logger

	mu         sync.Mutex // serialises issuing
	latest     *subsidyv1.AuditCheckpoint
	latestPos  events.Position // where latest was appended
	coveredPos events.Position // the last position latest covers
}

// NewCheckpointer returns a Checkpointer.
func NewCheckpointer(cfg CheckpointerConfig) *Checkpointer {
	if cfg.Every <= 0 {
		cfg.Every = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Checkpointer{cfg: cfg, log: l}
}

// Latest returns the last checkpoint issued by this Checkpointer, nil
// before the first.
func (c *Checkpointer) Latest() *subsidyv1.AuditCheckpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latest
}

// Run issues a checkpoint every period until ctx ends (then it returns
// nil). A failed issue is logged and retried at the next tick.
func (c *Checkpointer) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, _, err := c.issue(ctx, false); err != nil && ctx.Err() == nil {
				c.log.Error("issuing a checkpoint", "err", err)
			}
		}
	}
}

// Issue signs the tree as sealed once every event committed so far is
// sealed, publishes the checkpoint and returns it. If nothing but the last
// checkpoint was sealed since it was issued, Issue returns that one instead
// (fresh is then false).
//
// Errors: ctx's error; the sealer's, signer's and PublishFunc's errors.
func (c *Checkpointer) Issue(ctx context.Context) (cp *subsidyv1.AuditCheckpoint, fresh bool, err error) {
	return c.issue(ctx, true)
}

func (c *Checkpointer) issue(ctx context.Context, wait bool) (*subsidyv1.AuditCheckpoint, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if wait {
		head, err := c.cfg.Sealer.store.Head(ctx)
		if err != nil {
			return nil, false, err
		}
		if _, err := c.cfg.Sealer.WaitSealed(ctx, head); err != nil {
			return nil, false, err
		}
	}
	if c.latest == nil {
		if err := c.loadLatest(ctx); err != nil {
			return nil, false, err
		}
	}
	size, last, root := c.cfg.Sealer.Sealed()
	// Nothing new since the latest (or the sealer, restarting, has not
	// caught up with it yet): no new checkpoint.
	if c.latest != nil && (last == c.latestPos || last == c.coveredPos || size <= int64(c.latest.GetTreeSize())) {
		return c.latest, false, nil
	}
	cp, err := c.cfg.Signer.Sign(size, root, c.cfg.Now())
	if err != nil {
		return nil, false, err
	}
	pos, err := c.cfg.Publish(ctx, cp)
	if err != nil {
		return nil, false, err
	}
	c.latest, c.latestPos, c.coveredPos = cp, pos, last
	c.log.Info("checkpoint issued", "size", size, "position", last, "appended_at", pos)
	return cp, true, nil
}

// loadLatest takes the last checkpoint in the log as the latest, so that a
// restart with nothing new sealed issues none.
func (c *Checkpointer) loadLatest(ctx context.Context) error {
	recs, err := c.cfg.Sealer.store.ReadStream(ctx, CheckpointStream, events.Backwards, events.End, 1)
	if err != nil {
		if errors.Is(err, events.ErrStreamNotFound) {
			return nil
		}
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	cp := &subsidyv1.AuditCheckpoint{}
	if err := proto.Unmarshal(recs[0].Data, cp); err != nil {
		return fmt.Errorf("merkle: the last checkpoint in the log (position %d): %w", recs[0].Position, err)
	}
	c.latest, c.latestPos = cp, recs[0].Position
	return nil
}
