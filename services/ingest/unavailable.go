package ingest

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/cqhrss/subsidyledger/events"
)

// Causes of a store that cannot write, as they appear on /readyz and in the
// label of subsidy_ledger_store_append_failures_total.
const (
	CauseNoSpace    = "no_space"   // ENOSPC, EDQUOT: the disk or quota is full
	CauseReadOnly   = "read_only"  // EROFS: the file system is read-only
	CausePermission = "permission" // EACCES, EPERM: the file may not be written (e.g. immutable)
	CauseIO         = "io"         // EIO: the device failed
	CauseOther      = "other"      // anything else the store calls unavailable
)

var causes = []string{CauseNoSpace, CauseReadOnly, CausePermission, CauseIO, CauseOther}

// StoreUnavailable is the intake's condition while the store cannot write:
// the intake consumes nothing (JetStream keeps the messages, none is
// acknowledged or recorded as rejected) and tests the store with growing
// pauses until it can write again.
type StoreUnavailable struct {
	Cause  string    // one of the Cause constants
	Since  time.Time // the first failure of this outage
	Detail string    // the last failure, without stream names
	Err    error     // the last failure
}

func (e *StoreUnavailable) Error() string {
	return fmt.Sprintf("the event store cannot write (%s) since %s: %s", e.Cause, e.Since.UTC().Format(time.RFC3339), e.Detail)
}

func (e *StoreUnavailable) Unwrap() error { return e.Err }

// Unavailable returns the intake's condition while the store cannot write,
// nil while it can. Safe for concurrent use.
func (in *Intake) Unavailable() *StoreUnavailable { return in.unavail.Load() }

// markUnavailable records that the store failed to write with err.
func (in *Intake) markUnavailable(err error) {
	su := &StoreUnavailable{Cause: causeOf(err), Since: time.Now(), Detail: detailOf(err), Err: err}
	prev := in.unavail.Load()
	if prev != nil {
		su.Since = prev.Since
	}
	in.unavail.Store(su)
	msg := su.Error()
	in.lastErr.Store(&msg)
	in.ready.Store(false)
	in.setHealthy(false)
	in.setWritable(false)
	if prev == nil || prev.Cause != su.Cause {
		in.cfg.Logger.Error("the event store cannot write; the intake stops consuming until it can (JetStream keeps the messages)",
			"cause", su.Cause, "detail", su.Detail)
	}
}

// waitWritable tests the store with growing pauses until it can write
// again (true) or ctx ends (false). A store that cannot be tested without
// appending (not an events.WriteProber) is tried again by the next batch.
func (in *Intake) waitWritable(ctx context.Context) bool {
	delay := in.cfg.ProbeInterval
	for {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
		err := in.probe(ctx)
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			if su := in.unavail.Swap(nil); su != nil {
				in.cfg.Logger.Info("the event store can write again; the intake resumes", "cause", su.Cause,
					"outage", time.Since(su.Since).Round(time.Millisecond))
			}
			in.lastErr.Store(nil)
			in.setWritable(true)
			in.resumed = time.Now()
			return true
		}
		in.markUnavailable(err)
		delay = min(2*delay, in.cfg.ProbeMaxInterval)
	}
}

func (in *Intake) probe(ctx context.Context) error {
	p, ok := in.cfg.Store.(events.WriteProber)
	if !ok {
		return nil
	}
	err := p.ProbeWrite(ctx, in.probeBytes)
	if m := in.cfg.Metrics; m != nil {
		result := "ok"
		if err != nil {
			result = "failed"
		}
		m.Probes.WithLabelValues(result).Inc()
	}
	return err
}

func (in *Intake) setWritable(ok bool) {
	if in.cfg.Metrics == nil {
		return
	}
	if ok {
		in.cfg.Metrics.StoreWritable.Set(1)
	} else {
		in.cfg.Metrics.StoreWritable.Set(0)
	}
}

// causeOf classifies a store failure by the operating system's error it
// carries.
func causeOf(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return CauseNoSpace
	case errors.Is(err, syscall.EROFS):
		return CauseReadOnly
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return CausePermission
	case errors.Is(err, syscall.EIO):
		return CauseIO
	}
	return CauseOther
}

// detailOf describes a store failure without the stream it concerned (a
// trainee's stream is named by the person key).
func detailOf(err error) string {
	var e *events.Error
	if errors.As(err, &e) {
		c := *e
		c.Stream = ""
		return c.Error()
	}
	return err.Error()
}

// batchBytes is about what the batch's appends write: the probe that ends
// an outage writes twice that (64 KiB to 16 MiB), so that the batch fits
// when it is tried again.
func batchBytes(b *batch) int {
	n := 0
	for _, o := range append(append([]*op{}, b.order...), b.rejections...) {
		for _, e := range o.evs {
			n += len(e.Data) + len(e.Metadata) + len(e.Type) + 64
		}
	}
	return min(max(2*n, 64<<10), 16<<20)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
