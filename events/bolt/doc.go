// Package bolt is the embedded event store: an events.Store in one bbolt
// (go.etcd.io/bbolt) data file.
//
// # Layout
//
// The file holds five top-level buckets:
//
//	meta     "format" -> "subsidyledger-events/2" (marks the file as a store;
//	         format 1 files are read, and marked 2 when opened for writing)
//	         "ids-merged-slices" -> per slice of the ID space (64), the
//	         position up to which the ids bucket holds its IDs
//	         "ids-merged" -> the least of those positions
//	log      position (uint64 big-endian, 1, 2, 3, ...) -> record (record.go)
//	streams  stream name -> head: last revision, its position (uint64 each,
//	         big-endian) and its hash (32 bytes); then, while the stream has
//	         at most 16 runs, the runs: firstPosition, count (uint64 each)
//	index    uvarint(len(stream)) stream firstRevision(uint64 big-endian)
//	         -> firstPosition, count (uint64 each): one run per append, for
//	         the streams with more runs
//	ids      event id (16 bytes) -> position (uint64 big-endian)
//
// Positions are dense and start at 1 (0 is events.Start). Since the events
// of one append are contiguous in both the stream and the log, a run (first
// position and count) per append maps a stream's revisions to positions. A
// short stream keeps its runs in its value, so that an append rewrites one
// page of the streams bucket and none of the index; a longer one keeps them
// in the index bucket, where the length prefix keeps every stream's keys
// contiguous whatever bytes stream names hold (index.go).
//
// The ids bucket makes idempotency permanent: a retried append is
// recognised however long after the original, and compared with the stored
// events byte for byte, not by a digest. Event IDs are random, so the IDs of
// recent events are buffered in memory and merged into the bucket in sorted
// batches, one slice of the ID space per commit, so that no commit rewrites
// the whole bucket; the buffer is rebuilt from the log at Open (ids.go).
//
// # Writing: group commit
//
// Append encodes its records on the caller's goroutine and queues them to a
// single writer goroutine. The writer takes whatever appends are queued (up
// to a bound) and applies them, in queue order, in one bbolt read-write
// transaction, which costs one commit (fdatasync) however many appends it
// holds. It then publishes the new head, wakes subscribers and answers each
// caller. Append therefore returns only once its events are durable.
//
// Each append in a group is still atomic on its own. The writer validates an
// append completely (event ids, expected revision) against the transaction's
// state, which includes the appends before it in the group, before it writes
// any of its keys; an append that fails validation writes nothing and the
// others go on. A write that fails after validation (bbolt refuses a key or
// value) would leave that append half written, so the writer rolls the whole
// transaction back and replays the group without that append. If the commit
// itself fails (disk full, I/O error, Options.MaxSize), the writer commits the
// appends of the group one per transaction, so that each gets its own
// verdict. Since positions are assigned only by the writer, and readers see
// only committed transactions, which hold all positions up to the head,
// nothing ever commits "late" behind a position a reader has seen.
//
// # Limits
//
// Stream names are 1 to MaxStreamLen bytes; an encoded event must fit in a
// bbolt value (2 GiB).
//
// Checking: the store offers merkle.VerifyLog what only it can check
// (check.go): DensePositions (a walk that finds a position missing has
// found an event removed) and CheckIndex (every stream's head and runs
// against the log, which reads and appends trust without looking).
package bolt
