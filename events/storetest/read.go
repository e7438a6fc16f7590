package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
)

func testReadStream(t *testing.T, s *suite) {
	st := s.store(t)
	const n = 10
	mustAppend(t, st, "other", events.NoStream, ev("storetest.Other", "o"))
	want := evs(n, "storetest.Read", "r")
	// In appends of 4, 1, 1 and 4 events, with another stream's between.
	mustAppend(t, st, "read", events.NoStream, want[:4]...)
	mustAppend(t, st, "other", events.Any, ev("storetest.Other", "o2"))
	mustAppend(t, st, "read", events.Exact(3), want[4])
	mustAppend(t, st, "read", events.Exact(4), want[5])
	mustAppend(t, st, "other", events.Any, ev("storetest.Other", "o3"))
	mustAppend(t, st, "read", events.Exact(5), want[6:]...)
	// A stream whose name extends another's must not leak into it.
	mustAppend(t, st, "read-more", events.NoStream, ev("storetest.Other", "o3"))

	span := func(from, to int) []uint64 { // revisions from..to inclusive, either way
		var out []uint64
		for i := from; ; {
			out = append(out, uint64(i))
			if i == to {
				return out
			}
			if from < to {
				i++
			} else {
				i--
			}
		}
	}
	for _, c := range []struct {
		dir  events.Direction
		from uint64
		max  int
		want []uint64
	}{
		{events.Forwards, 0, 0, span(0, 9)},
		{events.Forwards, 0, -1, span(0, 9)},
		{events.Forwards, 3, 4, span(3, 6)},
		{events.Forwards, 8, 5, span(8, 9)},
		{events.Forwards, 9, 1, span(9, 9)},
		{events.Forwards, 10, 0, nil},
		{events.Forwards, 1000, 5, nil},
		{events.Forwards, events.End, 0, nil},
		{events.Backwards, events.End, 0, span(9, 0)},
		{events.Backwards, events.End, 3, span(9, 7)},
		{events.Backwards, 4, 2, span(4, 3)},
		{events.Backwards, 4, 0, span(4, 0)},
		{events.Backwards, 0, 0, span(0, 0)},
		{events.Backwards, 9, 100, span(9, 0)},
		{events.Forwards, 2, 6, span(2, 7)},
		{events.Forwards, 5, 2, span(5, 6)},
		{events.Backwards, 7, 5, span(7, 3)},
		{events.Backwards, 5, 1, span(5, 5)},
	} {
		call := fmt.Sprintf("ReadStream(read, %v, %d, %d)", dirName(c.dir), int64(c.from), c.max)
		got, err := st.ReadStream(context.Background(), "read", c.dir, c.from, c.max)
		if err != nil {
			t.Errorf("%s = %v; want success", call, err)
			continue
		}
		if !slices.Equal(revisions(got), c.want) {
			t.Errorf("%s revisions = %v; want %v", call, revisions(got), c.want)
			continue
		}
		for i, e := range got {
			checkData(t, fmt.Sprintf("%s[%d]", call, i), e, "read", want[e.Revision])
		}
	}
	for _, dir := range []events.Direction{events.Forwards, events.Backwards} {
		_, err := st.ReadStream(context.Background(), "no-such-stream", dir, 0, 0)
		wantErr(t, fmt.Sprintf("ReadStream(no-such-stream, %v)", dirName(dir)), err, events.ErrStreamNotFound)
	}
	// What ReadStream returns agrees with ReadAll.
	var fromAll []events.RecordedEvent
	for _, e := range readAll(t, st, 0) {
		if e.Stream == "read" {
			fromAll = append(fromAll, e)
		}
	}
	for i, e := range readStream(t, st, "read") {
		if !sameEvent(e, fromAll[i]) {
			t.Errorf("ReadStream(read)[%d] = %s; ReadAll has %s", i, describe(e), describe(fromAll[i]))
		}
	}
}

func dirName(d events.Direction) string {
	if d == events.Backwards {
		return "Backwards"
	}
	return "Forwards"
}

func testReadAll(t *testing.T, s *suite) {
	st := s.store(t)
	if got, err := st.ReadAll(context.Background(), events.Start, 0); err != nil || len(got) != 0 {
		t.Fatalf("ReadAll(Start) of an empty store = %d events, %v; want none, nil", len(got), err)
	}
	for i := range 25 {
		mustAppend(t, st, fmt.Sprintf("page-%d", i%3), events.Any, ev("storetest.Page", fmt.Sprint(i)))
	}
	full := readAll(t, st, 1000)
	if len(full) != 25 {
		t.Fatalf("ReadAll returned %d events; want 25", len(full))
	}
	s.checkLog(t, full)
	for i, e := range full {
		if string(e.Data) != fmt.Sprint(i) {
			t.Errorf("ReadAll[%d] = %s; want data %q", i, describe(e), fmt.Sprint(i))
		}
	}
	for _, page := range []int{1, 2, 7, 24, 25, 26, 0, -1} {
		got := readAll(t, st, page)
		if len(got) != len(full) {
			t.Errorf("ReadAll in pages of %d returned %d events; want %d", page, len(got), len(full))
			continue
		}
		for i := range got {
			if !sameEvent(got[i], full[i]) {
				t.Errorf("ReadAll in pages of %d [%d] = %s; want %s", page, i, describe(got[i]), describe(full[i]))
				break
			}
		}
	}
	mid := full[9].Position
	got, err := st.ReadAll(context.Background(), mid, 0)
	if err != nil || len(got) != 15 || got[0].Position != full[10].Position {
		t.Errorf("ReadAll(after %d) = %d events from %v, %v; want 15 from %d", mid, len(got), positions(got), err, full[10].Position)
	}
	got, err = st.ReadAll(context.Background(), mid, 3)
	if err != nil || !slices.Equal(positions(got), positions(full[10:13])) {
		t.Errorf("ReadAll(after %d, 3) = %v, %v; want %v", mid, positions(got), err, positions(full[10:13]))
	}
	last := full[len(full)-1].Position
	for _, after := range []events.Position{last, last + 1, last + 1000, ^events.Position(0)} {
		if got, err := st.ReadAll(context.Background(), after, 0); err != nil || len(got) != 0 {
			t.Errorf("ReadAll(after %d, the end) = %d events, %v; want none, nil", after, len(got), err)
		}
	}
}

// testReadPage reads the log with events.ReadPage, reusing one Page, as a
// walk over the whole log does: through the store's ReadAllInto when it is
// an events.PageReader, else through ReadAll. Each page must equal ReadAll's
// page, bytes included, although the Page's memory is reused.
func testReadPage(t *testing.T, s *suite) {
	st := s.store(t)
	var p events.Page
	if err := events.ReadPage(context.Background(), st, events.Start, 0, &p); err != nil || len(p.Events) != 0 {
		t.Fatalf("ReadPage(Start) of an empty store = %d events, %v; want none, nil", len(p.Events), err)
	}
	for i := range 40 {
		data := strings.Repeat(fmt.Sprint(i), 1+i*97%400) // of differing sizes
		mustAppend(t, st, fmt.Sprintf("page-%d", i%3), events.Any, ev("storetest.Page", data))
	}
	full := readAll(t, st, 1000)
	for _, size := range []int{1, 3, 7, 40, 0} {
		after, n := events.Start, 0
		for {
			if err := events.ReadPage(context.Background(), st, after, size, &p); err != nil {
				t.Fatalf("ReadPage(after %d, %d): %v", after, size, err)
			}
			if len(p.Events) == 0 {
				break
			}
			if size > 0 && len(p.Events) > size {
				t.Fatalf("ReadPage(after %d, %d) = %d events", after, size, len(p.Events))
			}
			for _, e := range p.Events {
				if n >= len(full) || !sameEvent(e, full[n]) {
					t.Fatalf("ReadPage in pages of %d, event %d = %s; want %s", size, n, describe(e), describe(full[min(n, len(full)-1)]))
				}
				n++
			}
			after = p.Events[len(p.Events)-1].Position
		}
		if n != len(full) {
			t.Errorf("ReadPage in pages of %d read %d events; want %d", size, n, len(full))
		}
	}
	if _, ok := st.(events.PageReader); ok {
		// Reading into p again reuses its memory: what ReadAll returned
		// earlier is not touched.
		before := full[0]
		data := slices.Clone(before.Data)
		if err := events.ReadPage(context.Background(), st, full[10].Position, 0, &p); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(before.Data, data) {
			t.Errorf("ReadPage changed an event ReadAll had returned")
		}
	}
}

func testHashLinks(t *testing.T, s *suite) {
	st := s.store(t)
	results := map[string]events.AppendResult{}
	for i := range 30 {
		stream := fmt.Sprintf("chain-%d", i%4)
		results[stream] = mustAppend(t, st, stream, events.Any, evs(1+i%3, "storetest.Linked", fmt.Sprint(i))...)
	}
	all := readAll(t, st, 0)
	last := map[string]events.RecordedEvent{}
	for _, e := range all {
		prev, seen := last[e.Stream]
		var wantPrev events.Hash
		if seen {
			wantPrev = prev.Hash
		}
		if e.PrevHash != wantPrev {
			t.Errorf("%s PrevHash = %s; want the previous event's hash %s", describe(e), e.PrevHash, wantPrev)
		}
		if want := events.LinkHash(wantPrev, e.Stream, e.Revision, e.EventData); e.Hash != want {
			t.Errorf("%s Hash = %s; want LinkHash = %s", describe(e), e.Hash, want)
		}
		last[e.Stream] = e
	}
	for stream, res := range results {
		if res.LastHash != last[stream].Hash {
			t.Errorf("last Append(%q) LastHash = %s; want the last event's hash %s", stream, res.LastHash, last[stream].Hash)
		}
		back, err := st.ReadStream(context.Background(), stream, events.Backwards, events.End, 1)
		if err != nil || len(back) != 1 || !sameEvent(back[0], last[stream]) {
			t.Errorf("ReadStream(%q, Backwards, End, 1) = %d events, %v; want %s", stream, len(back), err, describe(last[stream]))
		}
	}
	rep, err := events.Verify(context.Background(), st, nil)
	if err != nil {
		t.Fatalf("Verify = %v; want success", err)
	}
	if rep.Break != nil {
		t.Fatalf("Verify found a break: %v", rep.Break)
	}
	if rep.Events != uint64(len(all)) || rep.Streams != 4 || rep.Head != all[len(all)-1].Position {
		t.Errorf("Verify = %+v; want %d events, 4 streams, head %d", rep, len(all), all[len(all)-1].Position)
	}
}
