package gen

import (
	"context"
	"hash/fnv"
	"sync"

	"github.com/cqhrss/subsidyledger/events"
)

// AppendOptions tune Append.
type AppendOptions struct {
	// Parallel is the number of concurrent appenders; zero means 64.
	Parallel int
	// From and To select the batches appended, by index in the history
	// ([From, To); To zero means to the end), so that a test can append a
	// history in parts.
	From, To int
}

// Append generates the history cfg describes into store. Streams are
// appended by parallel workers (so that the store's group commit has
// company), each stream always by the same worker and in order; before a
// barrier batch every earlier batch is committed. It returns the statistics
// of the whole history (Batches counts every batch, appended or not).
func Append(ctx context.Context, store events.Store, cfg Config, opts AppendOptions) (Stats, error) {
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = 64
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var inflight sync.WaitGroup
	queues := make([]chan Batch, parallel)
	var workers sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan Batch, 256)
		workers.Add(1)
		go func() {
			defer workers.Done()
			for b := range queues[i] {
				if ctx.Err() == nil {
					if _, err := store.Append(ctx, b.Stream, events.Any, b.Events...); err != nil {
						cancel(err)
					}
				}
				inflight.Done()
			}
		}()
	}
	n := -1
	stats, err := Generate(cfg, func(b Batch) error {
		n++
		if n < opts.From || (opts.To > 0 && n >= opts.To) {
			return nil
		}
		if b.Barrier || n == opts.From {
			inflight.Wait()
		}
		if err := context.Cause(ctx); err != nil {
			return err
		}
		h := fnv.New32a()
		h.Write([]byte(b.Stream))
		inflight.Add(1)
		queues[int(h.Sum32())%parallel] <- b
		return nil
	})
	for _, q := range queues {
		close(q)
	}
	workers.Wait()
	if err == nil {
		err = context.Cause(ctx)
	}
	return stats, err
}
