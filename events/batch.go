package events

import (
	"context"
	"sync"
)

// AppendOp is one append of a multi-stream write (see AppendMany). Result
// and Err are set as Append would set them for this append alone.
type AppendOp struct {
	Stream   string
	Expected ExpectedRevision
	Events   []EventData

	Result AppendResult
	Err    error
}

// Batcher is implemented by stores that can make several appends durable
// in one write (the embedded store: one transaction, one sync). Each append
// is still decided on its own, exactly as if Append had been called for it
// in the order given: one failing does not fail the others. Only the cost
// of durability is shared.
type Batcher interface {
	AppendBatch(ctx context.Context, ops []*AppendOp)
}

// AppendMany performs ops and returns when each is durable or has failed:
// in one durable write where s is a Batcher, else concurrently (each op a
// separate Append; a backend such as EventStoreDB appends atomically to
// one stream only, so there is nothing to share).
func AppendMany(ctx context.Context, s Store, ops []*AppendOp) {
	if b, ok := s.(Batcher); ok {
		b.AppendBatch(ctx, ops)
		return
	}
	var wg sync.WaitGroup
	for _, o := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.Result, o.Err = s.Append(ctx, o.Stream, o.Expected, o.Events...)
		}()
	}
	wg.Wait()
}

// Exclusive is implemented by stores that only the process holding them
// can write to (the embedded store keeps an exclusive lock on its file).
// On such a store no other instance of a service can append behind its
// back; what else appends is within the same process and known to it.
type Exclusive interface {
	Exclusive() bool
}

// IsExclusive reports whether s is an Exclusive store that says so.
func IsExclusive(s Store) bool {
	x, ok := s.(Exclusive)
	return ok && x.Exclusive()
}
