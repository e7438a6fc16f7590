// Package esdb is the EventStoreDB backend: an events.Store kept in
// EventStoreDB (or KurrentDB, 22.10 or later) through its Go gRPC client,
// github.com/EventStore/EventStore-Client-Go/v4.
//
//	st, err := esdb.Open(ctx, "esdb://localhost:2113?tls=false", esdb.Options{})
//
// It passes the same conformance suite (package storetest) as the embedded
// store (package bolt). Where EventStoreDB's guarantees fall short of the
// contract, the backend compensates as described below; README.md in this
// directory says the same for operators.
//
// # Streams, events and hash links
//
// A contract stream is an EventStoreDB stream of the same name, behind
// Options.Prefix if one is set. An event keeps its ID (always set from the
// contract's: the client would otherwise invent a random one, which would
// defeat idempotency), its type and its data; it is written with content
// type application/octet-stream. EventStoreDB has no room for anything
// else, so the hash link travels in the event's EventStoreDB metadata,
// which is a small wrapper around the contract's metadata:
//
//	"slh" 0x01 || PrevHash (32 bytes) || Hash (32 bytes) || Metadata
//
// Reads unwrap it: callers see exactly the contract's RecordedEvent. An
// event of the store's streams without the wrapper was not written by this
// backend and reads as ErrCorrupt.
//
// # Appends: exact revisions, so links never fork
//
// Append reads the stream's last event (its revision and hash), checks the
// caller's expected revision against it itself, computes LinkHash for each
// new event from that head, and appends with EventStoreDB's expected
// revision set to exactly that head (or "no stream"), whatever the caller
// asked for. If another append got there first, EventStoreDB answers
// wrong-expected-version (the client's *esdb.Error, matched with errors.As
// on its code, never on FromError's inverted ok flag); the backend then
// reads the head again and retries, up to 32 times with a short random
// pause, while the caller's expectation still holds: a caller who said
// Exact(n) gets ErrWrongExpectedRevision with the stream's actual
// revision, one who said Any or StreamExists gets its events appended
// after the new head. Two appends can therefore never both link to the
// same predecessor.
//
// # Idempotency: an ID index of the store's own
//
// The contract makes appends idempotent by event ID forever, and an ID
// stored in another stream or with another body an error. EventStoreDB
// dedupes by ID only when an append names the expected revision the
// events were first written after (and, best-effort, from a recent-ID
// cache with "any"), never across streams, and compares IDs but not
// bodies. It cannot look an event up by ID. So the backend keeps an index
// of its own: the ID and $all position of every event of its streams,
// built at Open by reading $all (from Options.Since) and brought up to date
// by reading $all again from where it stopped before each append. An
// append whose IDs the index holds is answered from the stored events: the
// original result if all of them are there, in order, as one run in the
// same stream with the same bodies; ErrDuplicateID otherwise. Appends in
// flight in one process that share an ID run one after the other.
//
// When EventStoreDB itself dedupes an append (another process stored the
// same IDs after the head this one read), it reports success with the old
// revision and no position; the backend treats that like a lost race and
// answers from the stored events, comparing bodies, which EventStoreDB
// does not. The one case left uncovered is two processes appending the
// same new ID at the same moment, each before the other's append is in
// $all: within one stream the exact-revision rule still stores only one of
// them, but in two different streams both are stored. The index costs
// memory (about 40 bytes an event) and Open's time to read $all.
//
// # Positions
//
// An event's Position is its $all commit position plus one, so that
// events.Start (0) stays before everything even when EventStoreDB puts an
// event at position 0. Positions are byte offsets in EventStoreDB's log:
// sparse, increasing, never dense. EventStoreDB refuses to read from a
// position inside a record, so reads and subscriptions start at the
// greatest position known (from the index) to hold a record at or before
// the caller's, and skip what lies before the caller's position.
//
// ReadAll reads $all forwards and skips system events (streams or types
// starting with "$") and streams outside the prefix. Head is the position
// of the index's last event after bringing the index up to date.
//
// # Subscriptions
//
// Subscribe is a catch-up subscription to $all with a server-side filter:
// by stream prefix when the filter has prefixes (its types are then
// checked here), else by event type (by prefix server-side, exactly
// here), else by the store's prefix, else excluding system events. When
// EventStoreDB drops the subscription (connection lost, server restarted,
// subscriber too slow) it is resumed after the last event seen, with
// growing pauses, for Options.ResubscribeFor; events are delivered exactly
// once and in position order throughout. Close, of the subscription or
// the store, ends a blocked Next with ErrClosed.
//
// # Connections and errors
//
// Every method returns an *events.Error: ErrStreamNotFound for reads of a
// missing stream, ErrUnavailable when EventStoreDB cannot be reached (or
// refuses the credentials, or an append lost its race too often),
// ErrInvalidArgument for what the server will never accept, ErrCorrupt for
// what this backend did not write, ErrClosed after Close; the context's own
// error when the context ends first.
//
// The client gives up after a failed discovery (the server unreachable for
// all its attempts) and closes itself for good, and calls that raced with
// that can stay blocked inside it. The backend therefore runs each client
// call on its own goroutine, waits no longer than the context, the store
// and the client live, and replaces a client that has given up with a new
// one, so a store outlives outages.
package esdb
