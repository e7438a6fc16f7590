package projections

import (
	"context"
	"fmt"
	"math/bits"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/cqhrss/subsidyledger/events"
)

// decoder turns records into Events, caching message types by name and,
// for a build, which projections want each type (a bit per projection).
type decoder struct {
	types map[string]typeInfo
	sets  []typeSet
	// seen caches the latest types by where their bytes are: a store
	// decodes each page's type names into one string per type, so most
	// lookups find the very string they looked up a moment ago and skip
	// hashing it. A hit needs the same bytes at the same address, which
	// is the same name.
	seen [8]seenType
	next int
	// alias: strings of decoded payloads point into the record's bytes
	// (UnmarshalVTUnsafe) instead of copies; see Build.
	alias bool
}

type seenType struct {
	data *byte
	n    int
	ti   typeInfo
}

type typeInfo struct {
	mt   protoreflect.MessageType
	vt   reflect.Type // the Go struct type, when it has generated decoding
	mask uint64
}

func newDecoder(sets ...typeSet) *decoder {
	return &decoder{types: make(map[string]typeInfo), sets: sets}
}

// mask returns the projections (bits) that want records of type t; zero:
// none, skip the record.
func (d *decoder) info(t string) (typeInfo, error) {
	p := unsafe.StringData(t)
	for i := range d.seen {
		if s := &d.seen[i]; s.data == p && s.n == len(t) && p != nil {
			return s.ti, nil
		}
	}
	ti, ok := d.types[t]
	if ok {
		d.seen[d.next] = seenType{p, len(t), ti}
		d.next = (d.next + 1) % len(d.seen)
		return ti, nil
	}
	for i, s := range d.sets {
		if s.wants(t) {
			ti.mask |= 1 << i
		}
	}
	if ti.mask != 0 || len(d.sets) == 0 {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(t))
		if err != nil {
			return ti, fmt.Errorf("unknown event type %q: %w", t, err)
		}
		ti.mt = mt
		if _, ok := mt.Zero().Interface().(vtMessage); ok {
			ti.vt = reflect.TypeOf(mt.Zero().Interface()).Elem()
		}
	}
	d.types[t] = ti
	return ti, nil
}

func (d *decoder) decodeInto(rec *events.RecordedEvent, ev *Event) error {
	ti, err := d.info(rec.Type)
	if err != nil {
		return err
	}
	var m proto.Message
	if ti.vt != nil {
		// A plain allocation: mt.New also initialises the message's
		// reflection state, which the generated decoding does not need.
		m = reflect.New(ti.vt).Interface().(proto.Message)
	} else {
		m = ti.mt.New().Interface()
	}
	if err := unmarshal(rec.Data, m, d.alias); err != nil {
		return fmt.Errorf("payload %s does not decode: %w", rec.Type, err)
	}
	*ev = Event{
		Position: rec.Position,
		Stream:   rec.Stream,
		Revision: rec.Revision,
		ID:       rec.ID,
		Type:     rec.Type,
		Created:  rec.Created,
		Payload:  m,
		Hash:     rec.Hash,
	}
	ev.keys.parse(m)
	return nil
}

// vtMessage is a message with generated decoding (vtprotobuf's
// UnmarshalVT: no reflection, a few times faster than proto.Unmarshal).
type vtMessage interface {
	UnmarshalVT([]byte) error
}

// vtUnsafeMessage is a message with generated decoding whose strings
// point into the bytes decoded.
type vtUnsafeMessage interface {
	UnmarshalVTUnsafe([]byte) error
}

// unmarshal decodes a stored payload. Payloads in the log were decoded and
// checked by the intake (or derived by the ledger) before they were
// appended, and the log is hash-linked, so a build decodes them with the
// generated code, which does not check again that strings are UTF-8 (the
// one difference from proto.Unmarshal; TestUnmarshalMatchesProto compares
// the two over a generated history).
func unmarshal(b []byte, m proto.Message, alias bool) error {
	if alias {
		if vt, ok := m.(vtUnsafeMessage); ok {
			return vt.UnmarshalVTUnsafe(b)
		}
	}
	if vt, ok := m.(vtMessage); ok {
		return vt.UnmarshalVT(b)
	}
	return proto.Unmarshal(b, m)
}

// scrub overwrites the bytes of p's events.
func scrub(p *events.Page) {
	for i := range p.Events {
		for _, b := range [][]byte{p.Events[i].Data, p.Events[i].Metadata} {
			for j := range b {
				b[j] = 0xa5
			}
		}
	}
}

// decoded holds a page's decoded events: the Events (one slot per record,
// left as they were where no projection wants the record) and, for each
// projection, the events it wants.
type decoded struct {
	buf  []Event
	runs [][]*Event // for each projection, the events it wants, in order
	n    int        // events decoded
}

// take readies d for n records and projections.
func (d *decoded) take(n, projections int) {
	if cap(d.buf) < n {
		d.buf = make([]Event, n)
	}
	d.buf, d.n = d.buf[:n], 0
	if len(d.runs) != projections {
		d.runs = make([][]*Event, projections)
	}
	for i := range d.runs {
		d.runs[i] = d.runs[i][:0]
	}
}

// typeSet is a projection's Types as a set; nil wants everything.
type typeSet map[string]bool

func typesOf(p Projection) typeSet {
	ts := p.Types()
	if ts == nil {
		return nil
	}
	s := make(typeSet, len(ts))
	for _, t := range ts {
		s[t] = true
	}
	return s
}

func (s typeSet) wants(t string) bool { return s == nil || s[t] }

// BuildOptions tune Build.
type BuildOptions struct {
	// After is the position to start after (Start for a full build).
	After events.Position
	// Until bounds the build; nil means up to the head of the log as Build
	// starts.
	Until *At
	// Workers decode in parallel; zero means GOMAXPROCS.
	Workers int
	// PageSize is the ReadAll page; zero means 1024. Smaller pages keep
	// what is decoded closer to the appliers in time, and so in the cache:
	// over 10 M events, 1024 took 6% less CPU than 4096 and built 5% faster
	// (1.18-1.22 against 1.12-1.16 M events/s, 4 runs each, alternating);
	// 512 and 2048 were in between, 256 slower than 4096.
	PageSize int
	// Progress, if set, is called after each page with the position reached.
	Progress func(events.Position)
	// ScrubPages overwrites the bytes of each page read once every
	// projection has applied its events: a check, for tests, that no
	// projection keeps a string of a payload past Apply without copying
	// it (a build's decoded strings point into the page).
	ScrubPages bool
}

// BuildStats reports a build.
type BuildStats struct {
	// Events is the number of events read from the log.
	Events uint64
	// Decoded is the number of events decoded (wanted by a projection).
	Decoded uint64
	// Applied is, for each projection of the build (in order), the number
	// of events handed to it.
	Applied []uint64
	// Position is the position of the last event read (the projections'
	// position after the build).
	Position events.Position
	// Created is the commit time of that event.
	Created  time.Time
	Duration time.Duration
}

// BuildError reports the projection and event a build stopped at.
type BuildError struct {
	Projection string
	Failure
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("projection %q: %s", e.Projection, e.Failure.Error())
}

func (e *BuildError) Unwrap() error { return &e.Failure }

// Build applies the log after opts.After, up to opts.Until, to every
// projection of ps in one pass: each page is read once, each wanted event
// decoded once (in parallel), and each projection applies the events in
// order on a goroutine of its own. It is how rebuilds, as-of builds and the
// rebuild benchmark read the log.
//
// The payloads' strings are not copied: they point into the page read
// (UnmarshalVTUnsafe), which goes back to the reader once every projection
// has applied its events; Projection.Apply says what that asks of a
// projection. Allocating and copying every string was a tenth of a
// rebuild's CPU.
//
// Errors: the store's; ctx's; *BuildError when a projection fails on an
// event (every projection then stops; none is usable).
func Build(ctx context.Context, store events.Store, ps []Projection, opts BuildOptions) (BuildStats, error) {
	t0 := time.Now()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var until At
	if opts.Until != nil {
		until = *opts.Until
	} else {
		h, err := store.Head(ctx)
		if err != nil {
			return BuildStats{}, err
		}
		until = At{Position: h}
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	page := opts.PageSize
	if page <= 0 {
		page = 1024
	}
	if len(ps) > 64 {
		return BuildStats{}, fmt.Errorf("projections: a build takes at most 64 projections, not %d", len(ps))
	}
	sets := make([]typeSet, len(ps))
	for i, p := range ps {
		sets[i] = typesOf(p)
	}

	type batch struct {
		page *events.Page
		recs []events.RecordedEvent
		dec  *decoded
		err  error
		done chan struct{}
		left atomic.Int32 // appliers yet to apply the batch
	}
	const depth = 8
	// Pages are recycled: one goes back once every projection has applied
	// its events (their strings point into it). The pool bounds how far
	// the reader runs ahead of the slowest applier; it has room for every
	// page, so giving one back never blocks.
	free := make(chan *events.Page, 2*depth+2)
	for range cap(free) {
		free <- new(events.Page)
	}
	// Decoded events are recycled too, once every applier is done with
	// them: a page's worth is ~700 KiB, and allocating it afresh for every
	// page was a tenth of a rebuild's allocation.
	spare := make(chan *decoded, 2*depth+workers+len(ps))
	work := make(chan *batch, depth)
	ordered := make(chan *batch, depth)
	fan := make([]chan *batch, len(ps))
	for i := range fan {
		fan[i] = make(chan *batch, depth)
	}
	var stats BuildStats
	stats.Position = opts.After
	stats.Applied = make([]uint64, len(ps))
	var wg sync.WaitGroup
	fail := func(err error) { cancel(err) }

	// Reader.
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(work)
		defer close(ordered)
		after := opts.After
		for {
			var p *events.Page
			select {
			case p = <-free:
			case <-ctx.Done():
				return
			}
			if err := events.ReadPage(ctx, store, after, page, p); err != nil {
				fail(err)
				return
			}
			recs := p.Events
			n := len(recs)
			for i := range recs {
				if !until.includes(recs[i].Position, recs[i].Created) {
					n = i
					break
				}
			}
			if n == 0 {
				return
			}
			b := &batch{page: p, recs: recs[:n], done: make(chan struct{})}
			b.left.Store(int32(len(ps)))
			after = recs[n-1].Position
			select {
			case work <- b:
			case <-ctx.Done():
				return
			}
			select {
			case ordered <- b:
			case <-ctx.Done():
				return
			}
			if n < len(recs) || after >= until.Position && until.Time.IsZero() {
				return
			}
		}
	}()
	// Decoders.
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := newDecoder(sets...)
			d.alias = true // the page outlives the appliers' use of it
			for b := range work {
				var dec *decoded
				select {
				case dec = <-spare:
				default:
					dec = new(decoded)
				}
				dec.take(len(b.recs), len(ps))
				b.dec = dec
				buf := dec.buf
				for i := range b.recs {
					r := &b.recs[i]
					ti, err := d.info(r.Type)
					if err == nil && ti.mask == 0 {
						continue
					}
					if err == nil {
						err = d.decodeInto(r, &buf[i])
					}
					if err != nil {
						b.err = &BuildError{Projection: "(decoding)", Failure: Failure{Position: r.Position, EventID: r.ID.String(), Type: r.Type, Err: err, At: time.Now()}}
						break
					}
					dec.n++
					for m := ti.mask; m != 0; m &= m - 1 {
						j := bits.TrailingZeros64(m)
						dec.runs[j] = append(dec.runs[j], &buf[i])
					}
				}
				close(b.done)
			}
		}()
	}
	// Distributor: waits for each batch to be decoded, in order, keeps the
	// statistics and hands the batch to every projection.
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			for _, c := range fan {
				close(c)
			}
		}()
		for b := range ordered {
			select {
			case <-b.done:
			case <-ctx.Done():
				return
			}
			if b.err != nil {
				fail(b.err)
				return
			}
			last := &b.recs[len(b.recs)-1]
			stats.Events += uint64(len(b.recs))
			stats.Decoded += uint64(b.dec.n)
			for j := range ps {
				stats.Applied[j] += uint64(len(b.dec.runs[j]))
			}
			stats.Position, stats.Created = last.Position, last.Created
			b.recs = nil
			if len(ps) == 0 {
				free <- b.page // no applier to give it back
			}
			for _, c := range fan {
				select {
				case c <- b:
				case <-ctx.Done():
					return
				}
			}
			if opts.Progress != nil {
				opts.Progress(last.Position)
			}
		}
	}()
	// Appliers, one per projection.
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ba, batches := p.(BatchApplier)
			for b := range fan[i] {
				run := b.dec.runs[i]
				var err error
				at := 0
				if batches {
					at, err = ba.ApplyBatch(run)
				} else {
					for ; at < len(run); at++ {
						if err = p.Apply(run[at]); err != nil {
							break
						}
					}
				}
				if err != nil {
					ev := run[at]
					fail(&BuildError{Projection: p.Name(), Failure: Failure{Position: ev.Position, EventID: ev.ID.String(), Type: ev.Type, Err: err, At: time.Now()}})
					return
				}
				if b.left.Add(-1) == 0 {
					if opts.ScrubPages {
						scrub(b.page)
					}
					free <- b.page // never blocks: the pool has room for every page
					b.page = nil
					select {
					case spare <- b.dec:
					default:
					}
				}
			}
		}()
	}
	wg.Wait()
	stats.Duration = time.Since(t0)
	if err := context.Cause(ctx); err != nil {
		return stats, err
	}
	return stats, nil
}
