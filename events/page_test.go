package events

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

// TestPageCopy fills a Page past one arena, checks every copy, then resets
// it and checks that the next fill reuses the memory.
func TestPageCopy(t *testing.T) {
	var p Page
	var want [][]byte
	var got [][]byte
	for i := 0; len(p.chunks) < 3; i++ {
		b := bytes.Repeat([]byte{byte(i)}, 1+i%5000)
		want = append(want, b)
		got = append(got, p.Copy(b))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("copy %d of %d bytes = %d bytes, %x...; want %x...", i, len(want[i]), len(got[i]), got[i][:1], want[i][:1])
		}
		if cap(got[i]) != len(got[i]) {
			t.Fatalf("copy %d has capacity %d beyond its %d bytes: an append would overwrite the next", i, cap(got[i]), len(got[i]))
		}
	}
	if p.Copy(nil) != nil {
		t.Error("Copy(nil) != nil")
	}
	big := make([]byte, pageChunk)
	if c := p.Copy(big); len(c) != len(big) {
		t.Errorf("Copy of %d bytes = %d bytes", len(big), len(c))
	}
	chunks := len(p.chunks)
	p.Events = append(p.Events, RecordedEvent{Stream: "s"})
	p.Reset()
	if len(p.Events) != 0 {
		t.Errorf("after Reset, %d events", len(p.Events))
	}
	for i := range want {
		p.Copy(want[i])
	}
	if len(p.chunks) != chunks {
		t.Errorf("refilled after Reset: %d arenas; want the %d reused", len(p.chunks), chunks)
	}
	if n := testing.AllocsPerRun(10, func() {
		p.Reset()
		for i := range want {
			p.Copy(want[i])
		}
	}); n != 0 {
		t.Errorf("refilling a Page allocates %v times", n)
	}
}

// readAllStore is a Store that is not a PageReader: ReadPage falls back
// to ReadAll.
type readAllStore struct {
	Store
	evs []RecordedEvent
}

func (s readAllStore) ReadAll(_ context.Context, after Position, max int) ([]RecordedEvent, error) {
	var out []RecordedEvent
	for _, e := range s.evs {
		if e.Position > after && len(out) < max {
			out = append(out, e)
		}
	}
	return out, nil
}

func TestReadPageFallsBackToReadAll(t *testing.T) {
	s := readAllStore{}
	for i := range 10 {
		s.evs = append(s.evs, RecordedEvent{Position: Position(i + 1), Stream: fmt.Sprint("s", i)})
	}
	var p Page
	if err := ReadPage(context.Background(), s, 3, 4, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 4 || p.Events[0].Position != 4 || p.Events[3].Position != 7 {
		t.Errorf("ReadPage(after 3, 4) = %v", p.Events)
	}
}
