// Package events is the contract of the ledger's append-only event store.
//
// A Store keeps named streams of events, each event at a 0-based revision in
// its stream, and a global log ($all) in which every event has a Position
// that increases in commit order. The semantics follow EventStoreDB's, so that
// callers work unchanged on the embedded bbolt backend (package bolt) and on
// the EventStoreDB backend:
//
//   - Append takes an ExpectedRevision (Any, NoStream, StreamExists or
//     Exact(n)) and fails with ErrWrongExpectedRevision when the stream is not
//     where the caller expected. The events of one Append are atomic: all are
//     stored, contiguously in the stream, or none is.
//   - Appends are idempotent by event ID, permanently: appending events whose
//     IDs are already stored, with the same bodies, returns the original
//     result and stores nothing; reusing an ID with a different body fails
//     with ErrDuplicateID.
//   - Positions start after Start (0). They are dense on the embedded store
//     and sparse on EventStoreDB (a log position): never assume density.
//   - Subscribe delivers every matching event exactly once, in position
//     order, first the history after a position and then live events.
//
// Every stored event carries a hash link: SHA-256 over the previous event's
// hash in the same stream and the event itself (see LinkHash). The link is
// computed at append time by whoever appends, so it is the same on any
// backend; Verify walks the log and reports the first broken link.
package events
