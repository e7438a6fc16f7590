package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/cqhrss/subsidyledger/events"
)

func openTest(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "events.db"), opts)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ev(typ, data string) events.EventData {
	return events.EventData{ID: events.RandomID(), Type: typ, Data: []byte(data)}
}

// groupGate holds the writer on its first group, so that the appends the
// test queues meanwhile form the second group, in queue order.
type groupGate struct {
	mu      sync.Mutex
	sizes   []int
	release chan struct{}
	open    func() // closes release once
}

// gate installs the gate and starts a blocker append for the writer to hold.
// Close g.release to let the writer go; the test's cleanup does it too.
func gate(t *testing.T, s *Store) *groupGate {
	t.Helper()
	g := &groupGate{release: make(chan struct{})}
	var once sync.Once
	g.open = func() { once.Do(func() { close(g.release) }) }
	t.Cleanup(g.open) // before s.Close in cleanup order: cleanups run last-in first-out
	s.hookGroup = func(n int) {
		g.mu.Lock()
		g.sizes = append(g.sizes, n)
		first := len(g.sizes) == 1
		g.mu.Unlock()
		if first {
			<-g.release
		}
	}
	go s.Append(context.Background(), "blocker", events.Any, ev("t.Blocker", "x"))
	for deadline := time.Now().Add(5 * time.Second); len(g.groups()) == 0; time.Sleep(100 * time.Microsecond) {
		if time.Now().After(deadline) {
			t.Fatal("the writer did not take the blocker")
		}
	}
	return g
}

func (g *groupGate) groups() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.sizes...)
}

type call struct {
	name     string
	ctx      context.Context
	stream   string
	expected events.ExpectedRevision
	evs      []events.EventData
	res      events.AppendResult
	err      error
	done     chan struct{}
}

// queue starts Append for c and waits until it is queued behind the ones
// before it.
func queue(t *testing.T, s *Store, c *call) {
	t.Helper()
	before := len(s.reqs)
	c.done = make(chan struct{})
	if c.ctx == nil {
		c.ctx = context.Background()
	}
	go func() {
		defer close(c.done)
		c.res, c.err = s.Append(c.ctx, c.stream, c.expected, c.evs...)
	}()
	for deadline := time.Now().Add(5 * time.Second); len(s.reqs) == before; {
		if time.Now().After(deadline) {
			t.Fatalf("%s was not queued", c.name)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// TestGroupCommitMixed puts valid, conflicting, duplicate, idempotent,
// cancelled and failing appends in one group: each must get the verdict it
// would get alone, in queue order, and a failing one must leave no trace.
func TestGroupCommitMixed(t *testing.T) {
	s := openTest(t, Options{})
	s.hookPut = func(stream string, revision uint64) error {
		if stream == "s4" && revision == 1 {
			return errors.New("injected write failure")
		}
		return nil
	}
	a1, a2 := ev("t.A", "a1"), ev("t.A", "a2")
	c1, c2 := ev("t.C", "c1"), ev("t.C", "c2")
	f1, h1, i1 := ev("t.F", "f1"), ev("t.H", "h1"), ev("t.I", "i1")
	cancelled, cancel := context.WithCancel(context.Background())
	g := gate(t, s)
	calls := []*call{
		{name: "A new stream", stream: "s1", expected: events.NoStream, evs: []events.EventData{a1, a2}},
		{name: "B conflicts with A", stream: "s1", expected: events.NoStream, evs: []events.EventData{ev("t.B", "b1")}},
		{name: "C reuses A's id in another stream", stream: "s2", expected: events.Any, evs: []events.EventData{c1, c2, a1}},
		{name: "D uses C's ids", stream: "s2", expected: events.Any, evs: []events.EventData{c1}},
		{name: "E retries A", stream: "s1", expected: events.Exact(7), evs: []events.EventData{a1, a2}},
		{name: "F follows A", stream: "s1", expected: events.Exact(1), evs: []events.EventData{f1}},
		{name: "G mixes stored and new", stream: "s3", expected: events.Any, evs: []events.EventData{ev("t.G", "g1"), f1}},
		{name: "H fails mid-write", stream: "s4", expected: events.Any, evs: []events.EventData{h1, ev("t.H", "h2"), ev("t.H", "h3")}},
		{name: "I follows F", stream: "s1", expected: events.Exact(2), evs: []events.EventData{i1}},
		{name: "J is cancelled", ctx: cancelled, stream: "s5", expected: events.NoStream, evs: []events.EventData{ev("t.J", "j1")}},
		{name: "K uses H's id", stream: "s4", expected: events.NoStream, evs: []events.EventData{h1}},
	}
	for _, c := range calls {
		queue(t, s, c)
	}
	cancel()
	<-calls[9].done // J has given up before the writer gets to it
	g.open()
	for _, c := range calls {
		<-c.done
	}

	if got := g.groups(); len(got) != 2 || got[1] != len(calls) {
		t.Errorf("groups = %v; want [1 %d]", got, len(calls))
	}
	want := []struct {
		code events.Code
		rev  uint64
	}{
		{"", 1}, {events.CodeWrongExpectedRevision, 0}, {events.CodeDuplicateID, 0}, {"", 0},
		{"", 1}, {"", 2}, {events.CodeDuplicateID, 0}, {events.CodeUnavailable, 0}, {"", 3},
		{"canceled", 0}, {"", 0},
	}
	for i, c := range calls {
		w := want[i]
		switch {
		case w.code == "canceled":
			if !errors.Is(c.err, context.Canceled) {
				t.Errorf("%s: Append = %v; want %v", c.name, c.err, context.Canceled)
			}
		case w.code == "":
			if c.err != nil || c.res.NextExpectedRevision != w.rev {
				t.Errorf("%s: Append = %+v, %v; want revision %d", c.name, c.res, c.err, w.rev)
			}
		default:
			if events.CodeOf(c.err) != w.code {
				t.Errorf("%s: Append = %v; want code %s", c.name, c.err, w.code)
			}
		}
	}
	if calls[4].res != calls[0].res {
		t.Errorf("E (retry of A) = %+v; want A's result %+v", calls[4].res, calls[0].res)
	}
	var e *events.Error
	if errors.As(calls[1].err, &e) && e.Actual != 1 {
		t.Errorf("B's conflict Actual = %d; want 1 (A committed first in the group)", e.Actual)
	}

	ctx := context.Background()
	wantStream := map[string][]events.ID{
		"s1": {a1.ID, a2.ID, f1.ID, i1.ID},
		"s2": {c1.ID},
		"s4": {h1.ID},
	}
	for stream, ids := range wantStream {
		got, err := s.ReadStream(ctx, stream, events.Forwards, 0, 0)
		if err != nil {
			t.Fatalf("ReadStream(%s) = %v", stream, err)
		}
		var gotIDs []events.ID
		for _, e := range got {
			gotIDs = append(gotIDs, e.ID)
		}
		if fmt.Sprint(gotIDs) != fmt.Sprint(ids) {
			t.Errorf("ReadStream(%s) ids = %v; want %v", stream, gotIDs, ids)
		}
	}
	for _, stream := range []string{"s3", "s5"} {
		if _, err := s.ReadStream(ctx, stream, events.Forwards, 0, 0); !errors.Is(err, events.ErrStreamNotFound) {
			t.Errorf("ReadStream(%s) = %v; want %v", stream, err, events.ErrStreamNotFound)
		}
	}
	all, err := s.ReadAll(ctx, events.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range all {
		if e.Position != events.Position(i+1) {
			t.Fatalf("ReadAll[%d] at position %d; want dense positions", i, e.Position)
		}
	}
	if len(all) != 7 { // the blocker and six from the group
		t.Errorf("ReadAll returned %d events; want 7", len(all))
	}
	if h, _ := s.Head(ctx); h != 7 {
		t.Errorf("Head() = %d; want 7", h)
	}
	if rep, err := events.Verify(ctx, s, nil); err != nil || rep.Break != nil {
		t.Errorf("Verify = %+v, %v; want no break", rep, err)
	}
}

// TestGroupCommitShares checks that concurrent callers share commits.
func TestGroupCommitShares(t *testing.T) {
	s := openTest(t, Options{})
	var mu sync.Mutex
	groups := 0
	s.hookGroup = func(int) { mu.Lock(); groups++; mu.Unlock() }
	const callers, per = 16, 30
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range per {
				if _, err := s.Append(context.Background(), fmt.Sprintf("c-%d", c), events.Any, ev("t.Shared", fmt.Sprint(i))); err != nil {
					t.Errorf("Append = %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if groups > callers*per/2 {
		t.Errorf("%d appends from %d callers took %d commits; want them to share commits", callers*per, callers, groups)
	}
	t.Logf("%d appends in %d commits", callers*per, groups)
}

// TestFullDisk fills the store up to Options.MaxSize: the append that does
// not fit fails with ErrUnavailable, the others in its group still commit,
// and the store goes on working.
func TestFullDisk(t *testing.T) {
	s := openTest(t, Options{MaxSize: 4 << 20})
	g := gate(t, s)
	ctx := context.Background()
	huge := ev("t.Huge", strings.Repeat("h", 8<<20))
	calls := []*call{
		{name: "small before", stream: "small", expected: events.NoStream, evs: []events.EventData{ev("t.S", "1")}},
		{name: "huge", stream: "huge", expected: events.NoStream, evs: []events.EventData{huge}},
		{name: "small after", stream: "small", expected: events.Exact(0), evs: []events.EventData{ev("t.S", "2")}},
	}
	for _, c := range calls {
		queue(t, s, c)
	}
	g.open()
	for _, c := range calls {
		<-c.done
	}
	if calls[0].err != nil || calls[2].err != nil {
		t.Errorf("small appends around a huge one = %v, %v; want success", calls[0].err, calls[2].err)
	}
	if !errors.Is(calls[1].err, events.ErrUnavailable) {
		t.Errorf("Append(8 MiB to a store capped at 4 MiB) = %v; want %v", calls[1].err, events.ErrUnavailable)
	}
	if _, err := s.ReadStream(ctx, "huge", events.Forwards, 0, 0); !errors.Is(err, events.ErrStreamNotFound) {
		t.Errorf("ReadStream(huge) = %v; want %v", err, events.ErrStreamNotFound)
	}
	if _, err := s.Append(ctx, "small", events.Exact(1), ev("t.S", "3")); err != nil {
		t.Errorf("Append after a full-disk failure = %v; want success", err)
	}
	// The failed event's ID is free.
	if _, err := s.Append(ctx, "huge", events.NoStream, events.EventData{ID: huge.ID, Type: "t.Huge", Data: []byte("small now")}); err != nil {
		t.Errorf("Append(the failed event's ID) = %v; want success", err)
	}
	if rep, err := events.Verify(ctx, s, nil); err != nil || rep.Break != nil || rep.Events != 5 {
		t.Errorf("Verify = %+v, %v; want 5 events, no break", rep, err)
	}
}

// TestProbeWrite: a probe larger than the space left fails with
// ErrUnavailable and leaves nothing behind; one that fits succeeds; the log
// is untouched either way.
func TestProbeWrite(t *testing.T) {
	s := openTest(t, Options{MaxSize: 4 << 20})
	ctx := context.Background()
	if _, err := s.Append(ctx, "small", events.NoStream, ev("t.S", "1")); err != nil {
		t.Fatal(err)
	}
	if err := s.ProbeWrite(ctx, 8<<20); !errors.Is(err, events.ErrUnavailable) {
		t.Errorf("ProbeWrite(8 MiB) on a store capped at 4 MiB = %v; want %v", err, events.ErrUnavailable)
	}
	if err := s.ProbeWrite(ctx, 64<<10); err != nil {
		t.Errorf("ProbeWrite(64 KiB) = %v; want nil", err)
	}
	if err := s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(probeKey); v != nil {
			t.Errorf("the probe left %d bytes behind", len(v))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "small", events.Exact(0), ev("t.S", "2")); err != nil {
		t.Errorf("Append after probes = %v; want success", err)
	}
	if rep, err := events.Verify(ctx, s, nil); err != nil || rep.Break != nil || rep.Events != 2 {
		t.Errorf("Verify = %+v, %v; want 2 events, no break", rep, err)
	}
	s.Close()
	if err := s.ProbeWrite(ctx, 1); !errors.Is(err, events.ErrClosed) {
		t.Errorf("ProbeWrite after Close = %v; want %v", err, events.ErrClosed)
	}
}

// TestUndecodableRecord stores a record that does not decode: reads fail
// with ErrCorrupt naming its position, and Verify reports a break.
func TestUndecodableRecord(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	if _, err := s.Append(ctx, "good", events.NoStream, ev("t.Good", "g"), ev("t.Good", "h")); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], 3)
		return tx.Bucket(bucketLog).Put(k[:], []byte{recordFormat, 0, 0, 1})
	}); err != nil {
		t.Fatal(err)
	}
	_, err := s.ReadAll(ctx, events.Start, 0)
	if !errors.Is(err, events.ErrCorrupt) || !strings.Contains(err.Error(), "position 3") {
		t.Errorf("ReadAll over a bad record = %v; want %v naming position 3", err, events.ErrCorrupt)
	}
	if got, err := s.ReadAll(ctx, events.Start, 2); err != nil || len(got) != 2 {
		t.Errorf("ReadAll(Start, 2), before the bad record = %d events, %v; want 2, nil", len(got), err)
	}
	sub, err := s.Subscribe(ctx, 2, events.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, err := sub.Next(ctx); !errors.Is(err, events.ErrCorrupt) {
		t.Errorf("Next over a bad record = %v; want %v", err, events.ErrCorrupt)
	}
	rep, err := events.Verify(ctx, s, nil)
	if err != nil || rep.Break == nil || !strings.Contains(rep.Break.Reason, "position 3") {
		t.Errorf("Verify = %+v, %v; want a break naming position 3", rep.Break, err)
	}

	// Reopened, the store still opens and reads up to the bad record (the
	// IDs of recent events load on the writer's goroutine, off Open's
	// path), but appends fail with ErrCorrupt: their IDs cannot be checked.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(s.path, Options{})
	if err != nil {
		t.Fatalf("reopening a store with a bad record in its tail = %v", err)
	}
	defer r.Close()
	if got, err := r.ReadAll(ctx, events.Start, 2); err != nil || len(got) != 2 {
		t.Errorf("ReadAll(Start, 2) after reopening = %d events, %v; want 2, nil", len(got), err)
	}
	if _, err := r.Append(ctx, "other", events.NoStream, ev("t.Good", "i")); !errors.Is(err, events.ErrCorrupt) || !strings.Contains(err.Error(), "IDs of recent events") {
		t.Errorf("Append after reopening = %v; want %v about the IDs of recent events", err, events.ErrCorrupt)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	e := events.EventData{ID: events.RandomID(), Type: "t.Round", Metadata: []byte("meta"), Data: bytes.Repeat([]byte{0, 1, 2}, 100)}
	rec, meta, data := appendRecord(nil, "stream-ü", &e)
	if len(rec) != encodedLen("stream-ü", &e) {
		t.Fatalf("encoded %d bytes; encodedLen says %d", len(rec), encodedLen("stream-ü", &e))
	}
	if !bytes.Equal(meta, e.Metadata) || !bytes.Equal(data, e.Data) {
		t.Fatalf("appendRecord returned metadata %q data %q; want the event's", meta, data)
	}
	prev, hash := events.Hash{1}, events.Hash{2}
	patchRecord(rec, 42, 1_700_000_000_123_456_789, prev, hash)
	var d decoder
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], 9)
	got, err := d.decode(k[:], rec)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != e.ID || !got.SameBody(e) || got.Stream != "stream-ü" || got.Revision != 42 || got.Position != 9 ||
		got.Created.UnixNano() != 1_700_000_000_123_456_789 || got.PrevHash != prev || got.Hash != hash {
		t.Errorf("decode(encode(e)) = %+v; want the event back", got)
	}
	for cut := range len(rec) {
		if _, err := parseRecord(rec[:cut]); err == nil {
			t.Fatalf("parseRecord(first %d of %d bytes) = nil error; want an error", cut, len(rec))
		}
	}
}

// TestIDBuffer merges buffered event IDs into the ids bucket every few
// events and checks that idempotency holds for merged and buffered IDs,
// before and after reopening.
func TestIDBuffer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.mergeIDsAt = 10
	ctx := context.Background()
	type appended struct {
		stream string
		evs    []events.EventData
		res    events.AppendResult
	}
	var log []appended
	for i := range 30 {
		stream := fmt.Sprintf("buf-%d", i%3)
		evs := make([]events.EventData, 1+i%4)
		for j := range evs {
			evs[j] = ev("t.Buf", fmt.Sprintf("%d-%d", i, j))
		}
		res, err := s.Append(ctx, stream, events.Any, evs...)
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, appended{stream, evs, res})
	}
	check := func(s *Store, when string) {
		t.Helper()
		merged, buffered, err := checkIDIndex(s)
		if err != nil {
			t.Errorf("%s: %v", when, err)
		}
		if merged == 0 || buffered == 0 {
			t.Errorf("%s: %d IDs merged, %d buffered; want some of each", when, merged, buffered)
		}
		for _, a := range log {
			res, err := s.Append(ctx, a.stream, events.NoStream, a.evs...)
			if err != nil || res != a.res {
				t.Errorf("%s: retried Append(%s, %d events) = %+v, %v; want %+v", when, a.stream, len(a.evs), res, err, a.res)
			}
			changed := a.evs[0]
			changed.Data = []byte("changed")
			if _, err := s.Append(ctx, a.stream, events.Any, changed); !errors.Is(err, events.ErrDuplicateID) {
				t.Errorf("%s: Append(ID at position %d, changed body) = %v; want %v", when, a.res.Position, err, events.ErrDuplicateID)
			}
		}
	}
	check(s, "before reopen")
	pendingBefore := s.pending.n
	// reopen closes s and opens the file again, as a restart does.
	reopen := func() *Store {
		t.Helper()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		<-r.pendingLoaded // the writer loads them: read them after it
		return r
	}
	s = reopen()
	s.mergeIDsAt = 10
	if s.pending.n != pendingBefore {
		t.Errorf("after reopen %d buffered IDs; want %d as before", s.pending.n, pendingBefore)
	}
	check(s, "after reopen")

	// A store written before the merge was spread over slices has one
	// mark for all IDs: make the bucket hold all IDs but the last append's,
	// as it did, and reopen.
	last := log[len(log)-1]
	mark := uint64(last.res.Position) - uint64(len(last.evs))
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		b := bucketsOf(tx)
		for _, m := range s.pending.slices {
			for id, pos := range m {
				if pos <= mark {
					if err := b.ids.Put(id[:], binary.BigEndian.AppendUint64(nil, pos)); err != nil {
						return err
					}
				}
			}
		}
		var later [][]byte
		if err := b.ids.ForEach(func(k, v []byte) error {
			if binary.BigEndian.Uint64(v) > mark {
				later = append(later, k)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range later {
			if err := b.ids.Delete(k); err != nil {
				return err
			}
		}
		if err := b.meta.Delete(keyIDsMergedSlices); err != nil {
			return err
		}
		return b.meta.Put(keyIDsMerged, binary.BigEndian.AppendUint64(nil, mark))
	}); err != nil {
		t.Fatal(err)
	}
	s = reopen()
	s.mergeIDsAt = 1 << 20
	if s.pending.n != len(last.evs) {
		t.Errorf("reopened with one mark: %d buffered IDs; want the last append's %d", s.pending.n, len(last.evs))
	}
	check(s, "with one mark")
}

// checkIDIndex checks the ID index against the log: the index holds
// exactly the IDs of the events up to their slice's merge mark, at their
// positions, and the buffer exactly those after it. It returns how many
// are in each.
func checkIDIndex(s *Store) (merged, buffered int, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		b := bucketsOf(tx)
		marks, err := readMarks(b.meta)
		if err != nil {
			return err
		}
		c := b.log.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var id events.ID
			copy(id[:], v[offID:offCreated])
			pos := binary.BigEndian.Uint64(k)
			iv := b.ids.Get(id[:])
			q, inP := s.pending.get(id)
			switch mark := marks[idSlice(id)]; {
			case pos <= mark && (len(iv) != 8 || binary.BigEndian.Uint64(iv) != pos || inP):
				return fmt.Errorf("event at %d (slice mark %d): in the index %v, buffered %v; want in the index only, at its position", pos, mark, iv != nil, inP)
			case pos > mark && (iv != nil || !inP || q != pos):
				return fmt.Errorf("event at %d (slice mark %d): in the index %v, buffered %v at %d; want buffered only", pos, mark, iv != nil, inP, q)
			case pos <= mark:
				merged++
			default:
				buffered++
			}
		}
		if n := b.ids.Stats().KeyN; n != merged || s.pending.n != buffered {
			return fmt.Errorf("%d IDs in the index and %d buffered; want %d and %d", n, s.pending.n, merged, buffered)
		}
		return nil
	})
	return merged, buffered, err
}

// TestGroupCommitStress races appends of every kind (new, conflicting,
// retried, duplicate, mixed) from many goroutines, so that groups hold all
// of them at once, and checks that the store holds exactly the events of the
// appends that succeeded, where their results say.
func TestGroupCommitStress(t *testing.T) {
	s := openTest(t, Options{})
	s.mergeIDsAt = 50 // merge the ID buffer now and then, under load
	ctx := context.Background()
	const workers = 8
	rounds := 80
	if testing.Short() {
		rounds = 30
	}
	type done struct {
		stream string
		evs    []events.EventData
		res    events.AppendResult
	}
	results := make([][]done, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var mine []done
			for r := range rounds {
				stream := fmt.Sprintf("stress-%d", (w+r)%5)
				fresh := []events.EventData{ev("t.S", fmt.Sprintf("%d-%d-a", w, r)), ev("t.S", fmt.Sprintf("%d-%d-b", w, r))}[:1+r%2]
				switch kind := r % 5; {
				case kind == 1 && len(mine) > 0: // retry an earlier append
					d := mine[r%len(mine)]
					res, err := s.Append(ctx, d.stream, events.NoStream, d.evs...)
					if err != nil || res != d.res {
						t.Errorf("retry = %+v, %v; want %+v", res, err, d.res)
					}
				case kind == 2 && len(mine) > 0: // reuse a stored ID with another body
					d := mine[r%len(mine)]
					changed := d.evs[0]
					changed.Data = []byte("changed")
					if _, err := s.Append(ctx, d.stream, events.Any, fresh[0], changed); !errors.Is(err, events.ErrDuplicateID) {
						t.Errorf("Append(new, changed stored) = %v; want %v", err, events.ErrDuplicateID)
					}
				default: // a new append, Any or a guessed revision
					exp := events.Any
					if kind == 3 {
						exp = events.Exact(uint64(r % 7))
					}
					res, err := s.Append(ctx, stream, exp, fresh...)
					switch {
					case err == nil:
						mine = append(mine, done{stream, fresh, res})
					case kind != 3 || !errors.Is(err, events.ErrWrongExpectedRevision):
						t.Errorf("Append(%s, %v) = %v", stream, exp, err)
					}
				}
			}
			results[w] = mine
		})
	}
	wg.Wait()

	all, err := s.ReadAll(ctx, events.Start, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[events.ID]events.RecordedEvent{}
	for _, e := range all {
		byID[e.ID] = e
	}
	n := 0
	for _, mine := range results {
		for _, d := range mine {
			for i, e := range d.evs {
				got, ok := byID[e.ID]
				wantRev := d.res.NextExpectedRevision - uint64(len(d.evs)-1-i)
				wantPos := d.res.Position - events.Position(len(d.evs)-1-i)
				if !ok || got.Stream != d.stream || got.Revision != wantRev || got.Position != wantPos || !got.SameBody(e) {
					t.Errorf("event %s of a successful append: got %+v (found %v); want %s@%d at %d", e.ID, got, ok, d.stream, wantRev, wantPos)
				}
				n++
			}
		}
	}
	if n != len(all) {
		t.Errorf("the store holds %d events; the successful appends made %d", len(all), n)
	}
	if rep, err := events.Verify(ctx, s, nil); err != nil || rep.Break != nil {
		t.Errorf("Verify = %+v, %v; want no break", rep, err)
	}
	t.Logf("%d events from %d workers", n, workers)
}

// TestAppendBatchOneCommit checks that AppendBatch makes its appends durable
// in one commit, each still decided on its own.
func TestAppendBatchOneCommit(t *testing.T) {
	s := openTest(t, Options{})
	var mu sync.Mutex
	var sizes []int
	s.hookGroup = func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() }
	var ops []*events.AppendOp
	for i := range 80 {
		ops = append(ops, &events.AppendOp{Stream: fmt.Sprintf("b-%d", i), Expected: events.NoStream, Events: []events.EventData{ev("t.Batch", fmt.Sprint(i))}})
	}
	ops = append(ops, &events.AppendOp{Stream: "b-0", Expected: events.NoStream, Events: []events.EventData{ev("t.Batch", "conflict")}})
	s.AppendBatch(context.Background(), ops)
	for i, o := range ops[:80] {
		if o.Err != nil {
			t.Fatalf("op %d = %v", i, o.Err)
		}
	}
	if !errors.Is(ops[80].Err, events.ErrWrongExpectedRevision) {
		t.Errorf("second NoStream append to b-0 = %v; want ErrWrongExpectedRevision", ops[80].Err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 1 || sizes[0] != 81 {
		t.Errorf("AppendBatch of 81 appends took commits of sizes %v; want one of 81", sizes)
	}
}

// TestAppendBatchFailsWhole: when the transaction of an AppendBatch fails
// as a whole (here: the store is full), every append of the batch fails,
// none is stored alone, and the store goes on working.
func TestAppendBatchFailsWhole(t *testing.T) {
	s := openTest(t, Options{MaxSize: 4 << 20})
	ctx := context.Background()
	ops := []*events.AppendOp{
		{Stream: "small-a", Expected: events.NoStream, Events: []events.EventData{ev("t.S", "a")}},
		{Stream: "huge", Expected: events.NoStream, Events: []events.EventData{ev("t.Huge", strings.Repeat("h", 8<<20))}},
		{Stream: "small-b", Expected: events.NoStream, Events: []events.EventData{ev("t.S", "b")}},
	}
	s.AppendBatch(ctx, ops)
	for i, o := range ops {
		if !errors.Is(o.Err, events.ErrUnavailable) {
			t.Errorf("op %d (%s) = %v; want %v (the batch fails together)", i, o.Stream, o.Err, events.ErrUnavailable)
		}
	}
	if h, err := s.Head(ctx); err != nil || h != events.Start {
		t.Errorf("Head after a failed batch = %d, %v; want an empty log", h, err)
	}
	s.AppendBatch(ctx, []*events.AppendOp{ops[0], ops[2]})
	if ops[0].Err != nil || ops[2].Err != nil {
		t.Errorf("the small appends again, without the huge one = %v, %v; want success", ops[0].Err, ops[2].Err)
	}
}
