package esdb

import (
	"context"
	"slices"
	"sync"

	"github.com/cqhrss/subsidyledger/events"
)

// index is the store's own view of which event IDs it holds: every event
// of the store's streams in $all (after Options.Since), by ID, with its raw
// $all position, and the same positions in increasing order. EventStoreDB
// cannot look an event up by ID, so this is what makes idempotency
// permanent and lets an append recognise an ID stored in another stream.
//
// The index is built at Open by reading $all, and brought up to date by
// reading $all again from where it stopped (catchUp) before each append and
// each Head. It lives in memory: about 40 bytes an event.
//
// It also reserves the IDs of the appends in flight in this process, so
// that two appends sharing an ID never run at once here (the second waits
// for the first and then finds its IDs stored).
type index struct {
	mu      sync.Mutex
	at      map[events.ID]uint64 // raw $all position of each event of the store
	sorted  []uint64             // the same positions, increasing
	through uint64               // raw position of the last $all record read
	read    bool                 // through is set (else reads start at the beginning of $all)
	base    uint64               // raw position of Options.Since's record, if based
	based   bool
	busy    map[events.ID]chan struct{}

	// One catch-up at a time. started and finished count catch-ups; a
	// caller that arrives when started == a is served by catch-up a+1 or
	// later, which begins after it arrived.
	sem      chan struct{}
	started  uint64
	finished uint64
}

func newIndex(since events.Position) *index {
	x := &index{
		at:   make(map[events.ID]uint64),
		busy: make(map[events.ID]chan struct{}),
		sem:  make(chan struct{}, 1),
	}
	if since > events.Start {
		x.through, x.read = uint64(since)-1, true
		x.base, x.based = x.through, true
	}
	return x
}

// reserve marks the IDs of evs as in flight in this process, waiting while
// any of them is in flight already. The returned function releases them.
func (x *index) reserve(ctx context.Context, done <-chan struct{}, evs []events.EventData) (func(), error) {
	for {
		x.mu.Lock()
		var wait chan struct{}
		for i := range evs {
			if c, ok := x.busy[evs[i].ID]; ok {
				wait = c
				break
			}
		}
		if wait == nil {
			mine := make(chan struct{})
			for i := range evs {
				x.busy[evs[i].ID] = mine
			}
			x.mu.Unlock()
			return func() {
				x.mu.Lock()
				for i := range evs {
					delete(x.busy, evs[i].ID)
				}
				x.mu.Unlock()
				close(mine)
			}, nil
		}
		x.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-done:
			return nil, errStoreClosed
		}
	}
}

// add records the events of a page of $all read after through; last is
// the raw position of the page's last record, whatever it was.
func (x *index) add(ids []events.ID, positions []uint64, last uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.read && last <= x.through {
		return // a concurrent reader got further (cannot happen: one catch-up at a time)
	}
	for i, id := range ids {
		if _, ok := x.at[id]; !ok {
			x.at[id] = positions[i]
			x.sorted = append(x.sorted, positions[i])
		}
	}
	x.through, x.read = last, true
}

// stored returns the raw positions of the IDs of evs that the index holds
// (0 and false for the others) and how many it holds.
func (x *index) stored(evs []events.EventData) (pos []uint64, n int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	pos = make([]uint64, len(evs))
	for i := range evs {
		if p, ok := x.at[evs[i].ID]; ok {
			pos[i] = p
			n++
		}
	}
	return pos, n
}

// head returns the raw position of the store's last event known.
func (x *index) head() (uint64, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.sorted) == 0 {
		return 0, false
	}
	return x.sorted[len(x.sorted)-1], true
}

// floor returns the greatest raw $all position known to hold a record that
// is at most p, and false if none is known (read from the start of $all).
// EventStoreDB accepts only positions of records: reads and subscriptions
// start at a floor and skip what lies before the caller's position.
func (x *index) floor(p uint64) (uint64, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.read && x.through <= p {
		return x.through, true
	}
	i, found := slices.BinarySearch(x.sorted, p)
	if found {
		return p, true
	}
	if i > 0 {
		return x.sorted[i-1], true
	}
	if x.based && x.base <= p {
		return x.base, true
	}
	return 0, false
}

// from returns where the next catch-up reads from.
func (x *index) from() (uint64, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.through, x.read
}
