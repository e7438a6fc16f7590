package ledgerctl

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/esdb"
)

// cmdMigrate copies an embedded store's whole history into EventStoreDB
// (stream by stream, revision by revision, in global order), then proves
// the copy: every event's hash link in the destination equals the source's,
// events.Verify passes on both, and every read model rebuilt from the
// destination equals the one rebuilt from the source (compareReadModels). It resumes: events already copied (same
// ids, same bodies) are recognised by the destination's idempotent append.
func cmdMigrate(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "migrate", "--store PATH --to esdb://HOST:2113[,...]?tls=... [--prefix P]")
	storeSpec := storeFlag(f)
	to := f.str("to", "", "the EventStoreDB connection string to copy into (required)")
	prefix := f.str("prefix", "", "put the ledger's streams under this prefix in EventStoreDB (as ledgerd's esdb backend must then be told)")
	progress := f.str("progress", "auto", "progress bar on stderr: auto (on a terminal), on or off")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.noArgs(); err != nil {
		return err
	}
	if *to == "" {
		return usageErrorf("migrate: --to is required (an EventStoreDB connection string)")
	}
	src, err := openStore(*storeSpec)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := esdb.Open(ctx, *to, esdb.Options{Prefix: *prefix})
	if err != nil {
		return failf("migrate: %v", err)
	}
	defer dst.Close()
	head, err := src.Head(ctx)
	if err != nil {
		return failf("migrate: %v", err)
	}
	bar, err := newProgress(e.stderr, *progress, "migrate")
	if err != nil {
		return err
	}
	copied, err := migrate(ctx, src, dst, func(p events.Position, n int) { bar.update(uint64(p), uint64(head), int64(n), "events") })
	bar.done()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "copied:  %d events (their hash links are identical in both stores)\n", copied)
	srcRep, err := events.Verify(ctx, src, nil)
	if err != nil {
		return failf("migrate: verifying the source: %v", err)
	}
	dstRep, err := events.Verify(ctx, dst, nil)
	if err != nil {
		return failf("migrate: verifying the destination: %v", err)
	}
	switch {
	case srcRep.Break != nil:
		return failf("migrate: the source log is broken at %s", srcRep.Break)
	case dstRep.Break != nil:
		return failf("migrate: the destination log is broken at %s", dstRep.Break)
	case srcRep.Events != dstRep.Events || srcRep.Streams != dstRep.Streams:
		return failf("migrate: the source has %d events in %d streams, the destination %d in %d", srcRep.Events, srcRep.Streams, dstRep.Events, dstRep.Streams)
	}
	names, err := compareReadModels(ctx, src, dst)
	var mismatch *ReadModelMismatch
	switch {
	case errors.As(err, &mismatch):
		return failf("migrate: %v; the destination does not give the source's read models", mismatch)
	case err != nil:
		return failf("migrate: comparing read models: %v", err)
	}
	fmt.Fprintf(e.stdout, "read models: %s rebuilt from each store, identical\n", strings.Join(names, ", "))
	fmt.Fprintf(e.stdout, "verdict: OK: %d events in %d streams, every hash link holds in both stores, every read model is the same\n", dstRep.Events, dstRep.Streams)
	return nil
}

// migrate appends every event of src to dst in global order, each at its
// revision, and checks that dst computed the same hash link.
func migrate(ctx context.Context, src, dst events.Store, progress func(events.Position, int)) (int, error) {
	n := 0
	for after := events.Start; ; {
		page, err := src.ReadAll(ctx, after, 1000)
		if err != nil {
			return n, failf("migrate: reading the source after %d: %v", after, err)
		}
		if len(page) == 0 {
			return n, nil
		}
		for _, ev := range page {
			expected := events.NoStream
			if ev.Revision > 0 {
				expected = events.Exact(ev.Revision - 1)
			}
			res, err := dst.Append(ctx, ev.Stream, expected, ev.EventData)
			if err != nil {
				return n, failf("migrate: %q revision %d (position %d): %v", ev.Stream, ev.Revision, ev.Position, err)
			}
			if res.NextExpectedRevision != ev.Revision || res.LastHash != ev.Hash {
				return n, failf("migrate: %q revision %d (position %d) landed at revision %d with hash %s; the source has %s",
					ev.Stream, ev.Revision, ev.Position, res.NextExpectedRevision, res.LastHash, ev.Hash)
			}
			n++
			after = ev.Position
		}
		if progress != nil {
			progress(after, n)
		}
	}
}
