package ingest

import "github.com/cqhrss/subsidyledger/events"

// recent remembers where recent messages were recorded, bounded to about n
// entries: two generations, the older dropped when the newer fills up.
type recent struct {
	n        int
	cur, old map[events.ID]ref
}

func newRecent(n int) *recent {
	return &recent{n: max(n/2, 1), cur: make(map[events.ID]ref)}
}

func (r *recent) put(id events.ID, v ref) {
	if len(r.cur) >= r.n {
		r.old, r.cur = r.cur, make(map[events.ID]ref, r.n)
	}
	r.cur[id] = v
}

func (r *recent) get(id events.ID) (ref, bool) {
	if v, ok := r.cur[id]; ok {
		return v, true
	}
	v, ok := r.old[id]
	return v, ok
}
