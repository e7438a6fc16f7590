// Package projections turns the ledger's event log into read models and
// keeps them current.
//
// A Projection folds stored events, in global position order, into a state
// that answers queries (the read models live in the sub-packages trainee,
// quota, scorecard, fund, notice and anomaly). A Runner keeps one projection
// current: it restores the projection's last snapshot, follows the store's
// catch-up subscription from the snapshot's position, applies each event
// once, and periodically writes a new snapshot together with its position
// (see Checkpoints), so that a restart resumes without re-reading the log
// and never applies an event twice or skips one. A Set runs the runners of
// a service.
//
// Rebuild builds a fresh instance from Start in the background while the
// runner keeps serving the old one, then swaps it in once it has caught up.
// AsOf builds a fresh instance up to a past position or commit time. A
// projection that fails on an event stops at that event: the runner keeps
// its position, reports the failure (Status, Ready, metrics, log) and does
// not advance past it.
//
// Dependencies point one way: projections read the store (events.Store) and
// decode stored events; they never import the intake, the rules engine,
// NATS or HTTP.
package projections

import (
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/projections/internal/rm"
)

// Event is a stored event as a projection sees it: the record's place in
// the log and its decoded payload. Projections must treat it as read-only
// (one Event is given to every projection of a build) and must not keep
// the *Event after Apply returns: a build and a runner following the log
// reuse their Events. The Payload message may be kept only without its
// strings, which point into a page of the log that is reused (see Apply).
type Event struct {
	Position events.Position
	Stream   string
	Revision uint64
	ID       events.ID
	// Type is the payload's full protobuf name, e.g. "subsidy.v1.Enrolled".
	Type string
	// Created is when the store committed the event (UTC). AsOf by time
	// compares against it.
	Created time.Time
	// Payload is the decoded payload message, e.g. *subsidyv1.Enrolled.
	Payload proto.Message
	// Hash is the event's hash link.
	Hash events.Hash

	keys parsedKeys
}

// parsedKeys holds the payload's person key and entitlement id, parsed
// once by the decoder for every projection (each would parse them again).
type parsedKeys struct {
	person            rm.PersonKey
	ent               events.ID
	hasPerson, hasEnt bool
}

// parse fills k from the payload's person_key and entitlement_id fields,
// where it has them and they parse.
func (k *parsedKeys) parse(m proto.Message) {
	*k = parsedKeys{}
	if p, ok := m.(interface{ GetPersonKey() string }); ok {
		var err error
		k.person, err = rm.ParsePersonKey(p.GetPersonKey())
		k.hasPerson = err == nil
	}
	if p, ok := m.(interface{ GetEntitlementId() string }); ok {
		var err error
		k.ent, err = rm.ID(p.GetEntitlementId())
		k.hasEnt = err == nil
	}
}

// PersonKeyOf returns the payload's person_key field, s, parsed: as the
// decoder parsed it for every projection, or parsed now (rm.ParsePersonKey) when it
// did not parse, to report why.
func (e *Event) PersonKeyOf(s string) (rm.PersonKey, error) {
	if e.keys.hasPerson {
		return e.keys.person, nil
	}
	return rm.ParsePersonKey(s)
}

// EntitlementIDOf returns the payload's entitlement_id field, s, parsed,
// like PersonKeyOf.
func (e *Event) EntitlementIDOf(s string) (events.ID, error) {
	if e.keys.hasEnt {
		return e.keys.ent, nil
	}
	return rm.ID(s)
}

// EntitlementIn returns the entitlement ev names by id (its payload's
// entitlement_id field, as the decoder parsed it: EntitlementIDOf) in a
// model's map of entitlements. Errors: an id that does not parse, or one
// the map does not hold.
func EntitlementIn[V any](ev *Event, id string, m map[events.ID]V) (events.ID, V, error) {
	eid, err := ev.EntitlementIDOf(id)
	if err != nil {
		var zero V
		return eid, zero, rm.Err(ev.Type, "entitlement id: %v", err)
	}
	v, ok := m[eid]
	if !ok {
		return eid, v, rm.Err(ev.Type, "unknown entitlement %s", id)
	}
	return eid, v, nil
}

// Projection is a read model fed by the event log.
//
// The Runner calls Apply, Snapshot and Restore from one goroutine, never
// concurrently with each other. Queries run concurrently with all three:
// an implementation guards its state with a lock that Apply holds only for
// one event, or publishes immutable copies, so that a query never blocks
// the apply loop for long and never sees half an event.
type Projection interface {
	// Name is a stable lower-case identifier: the metric label, the key of
	// the checkpoint and the name in URLs (e.g. "trainee").
	Name() string

	// Version identifies the meaning of the state and the snapshot format.
	// Bump it whenever Apply's semantics or Snapshot's encoding change: a
	// stored snapshot of another version is discarded and the projection is
	// rebuilt from Start.
	Version() uint32

	// Types lists the event types Apply wants. Other events are not decoded
	// or applied, but the projection's position still moves past them.
	// Nil means every event.
	Types() []string

	// Apply folds one event into the state. Events come once each, in
	// position order. An error means the projection cannot go on (an event
	// it cannot make sense of, e.g. one naming an entitlement it never saw):
	// the Runner stops at the event and reports the error; Apply must then
	// leave the state as it was before the event.
	//
	// The event and its payload are valid only during Apply: in a Build the
	// payload's strings point into a page of the log that is reused once
	// every projection has applied it. A string kept in the state, a map
	// key included (assigning to a map replaces its key), must be a copy
	// (strings.Clone; rm.Strings and rm.Arena copy). TestRebuildEqualsLive
	// scrubs each page after use and would see a string that was kept.
	Apply(ev *Event) error

	// Snapshot writes the whole state to w in a form Restore reads back.
	// It may be slow (it runs while no event is applied) but must not block
	// queries.
	Snapshot(w io.Writer) error

	// Restore replaces the state of a fresh instance with a snapshot written
	// by Snapshot of the same Version. Errors: a snapshot that does not
	// decode (the Runner then rebuilds from Start).
	Restore(r io.Reader) error
}

// BatchApplier is a Projection that can fold a run of events under one
// acquisition of its lock. Build uses it on fresh instances that no query
// sees yet (rebuilds, as-of builds), where a lock per event is pure cost;
// the Runner applies live events one by one. A wrapper that embeds a
// model and overrides Apply must override ApplyBatch too.
type BatchApplier interface {
	Projection
	// ApplyBatch applies evs in order, as Apply would one by one. On an
	// error at evs[i] it returns i: the events before it are applied and
	// the state is as it was before evs[i].
	ApplyBatch(evs []*Event) (int, error)
}

// ApplyEach is ApplyBatch's loop for an implementation whose apply folds
// one event (under the lock the caller holds) and whose position is *pos.
func ApplyEach(evs []*Event, apply func(*Event) error, pos *events.Position) (int, error) {
	for i, ev := range evs {
		if err := apply(ev); err != nil {
			return i, err
		}
		*pos = ev.Position
	}
	return len(evs), nil
}

// Factory returns a fresh, empty instance of a projection. Runners call it
// at start, for rebuilds and for as-of builds.
type Factory func() Projection

// At names a past moment of the log for AsOf: a position, or a commit time
// (the state after every event committed at or before it). Exactly one is
// set.
type At struct {
	Position events.Position
	Time     time.Time
}

// includes reports whether an event at pos committed at created is within
// the moment.
func (a At) includes(pos events.Position, created time.Time) bool {
	if !a.Time.IsZero() {
		return !created.After(a.Time)
	}
	return pos <= a.Position
}

func (a At) String() string {
	if !a.Time.IsZero() {
		return "time " + a.Time.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("position %d", a.Position)
}

// Failure describes the event a projection stopped at.
type Failure struct {
	Position events.Position
	EventID  string
	Type     string
	Err      error
	At       time.Time
}

func (f *Failure) Error() string {
	return fmt.Sprintf("projection stopped at position %d (event %s, %s): %v", f.Position, f.EventID, f.Type, f.Err)
}

func (f *Failure) Unwrap() error { return f.Err }

// Errors of the runner. Compare with errors.Is.
var (
	// ErrNotReady: the projection has not caught up with the log since it
	// started, or has stopped at a failing event.
	ErrNotReady = errors.New("projections: not ready")
	// ErrBusy: a rebuild of the projection is already running.
	ErrBusy = errors.New("projections: a rebuild is already running")
	// ErrStopped: the runner is not running (Run has returned or not begun).
	ErrStopped = errors.New("projections: runner not running")
	// ErrUnknown: no projection of that name.
	ErrUnknown = errors.New("projections: unknown projection")
	// ErrBeyondHead: an as-of position after the log's head.
	ErrBeyondHead = errors.New("projections: position beyond the head of the log")
)
