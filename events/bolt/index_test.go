package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/cqhrss/subsidyledger/events"
)

// runsLayout reports how stream's runs are kept: inline runs in its value,
// and entries in the index bucket.
func runsLayout(t *testing.T, s *Store, stream string) (inline, indexed int) {
	t.Helper()
	if err := s.db.View(func(tx *bbolt.Tx) error {
		b := bucketsOf(tx)
		_, in, ok := parseStream(b.streams.Get([]byte(stream)))
		if !ok {
			return fmt.Errorf("value of %s does not parse", stream)
		}
		inline = len(in) / runLen
		x := newIndexRuns(b, stream)
		for _, _, ok := x.seek(0); ok; _, _, ok = x.next() {
			indexed++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return inline, indexed
}

// checkStream reads stream back from every revision, in both directions,
// whole and by pages of a few events, and compares with want (its events'
// IDs by revision).
func checkStream(t *testing.T, s *Store, stream string, want []events.ID) {
	t.Helper()
	ctx := context.Background()
	last := uint64(len(want) - 1)
	for from := range uint64(len(want)) {
		for _, max := range []int{0, 1, 3} {
			for _, dir := range []events.Direction{events.Forwards, events.Backwards} {
				got, err := s.ReadStream(ctx, stream, dir, from, max)
				if err != nil {
					t.Fatalf("ReadStream(%s, %v, %d, %d) = %v", stream, dir, from, max, err)
				}
				var exp []events.ID
				if dir == events.Forwards {
					exp = slices.Clone(want[from:])
				} else {
					exp = slices.Clone(want[:from+1])
					slices.Reverse(exp)
				}
				if max > 0 && len(exp) > max {
					exp = exp[:max]
				}
				ids := make([]events.ID, len(got))
				for i, e := range got {
					ids[i] = e.ID
					rev := from + uint64(i)
					if dir == events.Backwards {
						rev = from - uint64(i)
					}
					if e.Stream != stream || e.Revision != rev || rev > last {
						t.Fatalf("ReadStream(%s, %v, %d, %d)[%d] is %s revision %d; want revision %d", stream, dir, from, max, i, e.Stream, e.Revision, rev)
					}
				}
				if !slices.Equal(ids, exp) {
					t.Fatalf("ReadStream(%s, %v, %d, %d) = %d events, not the %d appended there", stream, dir, from, max, len(ids), len(exp))
				}
			}
		}
	}
}

// TestInlineRuns appends to a stream past maxInlineRuns, with appends that
// are contiguous in the log (their runs join) and appends that are not,
// and reads it back at every step that changes where its runs are kept.
func TestInlineRuns(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	var want []events.ID
	app := func(stream string, n int, dst *[]events.ID) {
		t.Helper()
		evs := make([]events.EventData, n)
		for i := range evs {
			evs[i] = ev("t.Run", fmt.Sprintf("%s-%d", stream, len(*dst)+i))
		}
		if _, err := s.Append(ctx, stream, events.Any, evs...); err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			*dst = append(*dst, e.ID)
		}
	}
	var other []events.ID
	// Two appends in a row: contiguous in the log, one run.
	app("runs", 2, &want)
	app("runs", 1, &want)
	if in, ix := runsLayout(t, s, "runs"); in != 1 || ix != 0 {
		t.Errorf("after two contiguous appends: %d inline runs, %d indexed; want 1 and 0", in, ix)
	}
	checkStream(t, s, "runs", want)
	// Interleaved with another stream: a run per append.
	for i := 0; len(want) < 200; i++ {
		app("other", 1, &other)
		app("runs", 1+i%3, &want)
		in, ix := runsLayout(t, s, "runs")
		switch runs := i + 2; {
		case runs <= maxInlineRuns && (in != runs || ix != 0):
			t.Fatalf("with %d runs: %d inline, %d indexed; want all inline", runs, in, ix)
		case runs > maxInlineRuns && (in != 0 || ix != runs):
			t.Fatalf("with %d runs: %d inline, %d indexed; want all indexed", runs, in, ix)
		}
		if runs := i + 2; runs == maxInlineRuns || runs == maxInlineRuns+1 || runs == maxInlineRuns+2 {
			checkStream(t, s, "runs", want)
		}
	}
	checkStream(t, s, "runs", want)
	checkStream(t, s, "other", other)
}

// TestFormat1 opens a store laid out as format 1 wrote it (every run in the
// index bucket, format "subsidyledger-events/1"): read-only it stays format
// 1; opened for writing it is marked format 2; both read every stream as
// written, and appends go on, old streams in the index, new ones inline.
func TestFormat1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	written := map[string][]events.ID{}
	app := func(s *Store, stream string, n int) {
		t.Helper()
		evs := make([]events.EventData, n)
		for i := range evs {
			evs[i] = ev("t.V1", fmt.Sprintf("%s-%d", stream, i))
		}
		if _, err := s.Append(ctx, stream, events.Any, evs...); err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			written[stream] = append(written[stream], e.ID)
		}
	}
	for i := range 60 {
		app(s, fmt.Sprintf("v1-%d", i%4), 1+i%2)
	}
	// Lay it out as format 1 did.
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		b := bucketsOf(tx)
		type moved struct {
			name []byte
			head []byte
		}
		var ms []moved
		if err := b.streams.ForEach(func(k, v []byte) error {
			h, inline, ok := parseStream(v)
			if !ok {
				return fmt.Errorf("value of %s does not parse", k)
			}
			if len(inline) == 0 {
				return nil
			}
			w := &writer{b: b}
			rs := &inlineRuns{b: inline}
			for f, r, ok := rs.seek(0); ok; f, r, ok = rs.next() {
				if err := w.putIndexRun(string(k), f, r); err != nil {
					return err
				}
			}
			hv := make([]byte, headLen)
			putHead(hv, h)
			ms = append(ms, moved{slices.Clone(k), hv})
			return nil
		}); err != nil {
			return err
		}
		for _, m := range ms {
			if err := b.streams.Put(m.name, m.head); err != nil {
				return err
			}
		}
		return b.meta.Put([]byte(formatKey), []byte(formatValueV1))
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	format := func(s *Store) string {
		var f string
		s.db.View(func(tx *bbolt.Tx) error { f = string(tx.Bucket(bucketMeta).Get([]byte(formatKey))); return nil })
		return f
	}
	check := func(s *Store, when string) {
		t.Helper()
		for name, ids := range written {
			t.Run(when+"/"+name, func(t *testing.T) { checkStream(t, s, name, ids) })
		}
	}

	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if f := format(ro); f != formatValueV1 {
		t.Errorf("opened read-only: format %q; want %q left alone", f, formatValueV1)
	}
	check(ro, "read-only")
	checkIndexClean(t, ro)
	ro.Close()

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if f := format(s); f != formatValue {
		t.Errorf("opened for writing: format %q; want %q", f, formatValue)
	}
	check(s, "format 2")
	app(s, "v1-0", 2)
	app(s, "new", 1)
	if in, ix := runsLayout(t, s, "v1-0"); in != 0 || ix == 0 {
		t.Errorf("a format 1 stream appended to: %d inline runs, %d indexed; want all indexed", in, ix)
	}
	if in, ix := runsLayout(t, s, "new"); in != 1 || ix != 0 {
		t.Errorf("a new stream: %d inline runs, %d indexed; want 1 inline", in, ix)
	}
	check(s, "appended")
	checkIndexClean(t, s)
}
