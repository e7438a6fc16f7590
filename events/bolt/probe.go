package bolt

import (
	"context"

	"go.etcd.io/bbolt"

	"github.com/cqhrss/subsidyledger/events"
)

var _ events.WriteProber = (*Store)(nil)

// probeKey is the meta key ProbeWrite writes and deletes.
var probeKey = []byte("write-probe")

// ProbeWrite commits a value of n bytes (at least one page) under a meta key
// and then deletes it in a second commit, each synced like an append. If it
// succeeds, an append of about n bytes would have found the space: either
// the file grew or it had free pages, which the probe hands back. The log is
// not touched.
//
// Errors: ErrUnavailable (a commit failed); ErrClosed.
func (s *Store) ProbeWrite(ctx context.Context, n int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return errClosed("probe")
	}
	n = max(n, 4096)
	for _, fn := range []func(*bbolt.Bucket) error{
		func(b *bbolt.Bucket) error { return b.Put(probeKey, make([]byte, n)) },
		func(b *bbolt.Bucket) error { return b.Delete(probeKey) },
	} {
		if err := s.db.Update(func(tx *bbolt.Tx) error { return fn(tx.Bucket(bucketMeta)) }); err != nil {
			return &events.Error{Code: events.CodeUnavailable, Op: "probe", Detail: "write probe failed", Err: s.diagnose(err)}
		}
	}
	return nil
}
