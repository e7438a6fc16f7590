package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events"
)

// An unfiltered subscription's NextPage fills the page when the log holds
// enough (a follower catching up, the Merkle sealer, reads big pages); a
// filtered one looks at no more than subscriptionScan records a read.
func TestNextPageFillsUnfilteredPages(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	const n = 3 * subscriptionScan
	batch := make([]events.EventData, n)
	for i := range batch {
		typ := "test.Even"
		if i%2 == 1 {
			typ = "test.Odd"
		}
		batch[i] = ev(typ, fmt.Sprint(i))
	}
	if _, err := s.Append(ctx, "pages", events.NoStream, batch...); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f         events.Filter
		max, want int
	}{
		{events.Filter{}, 2 * subscriptionScan, 2 * subscriptionScan},
		{events.Filter{}, 0, subscriptionScan},
		{events.Filter{Types: []string{"test.Odd"}}, 2 * subscriptionScan, subscriptionScan / 2},
	} {
		sub, err := s.Subscribe(ctx, events.Start, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		var p events.Page
		if err := events.NextPage(ctx, sub, tc.max, &p); err != nil {
			t.Fatal(err)
		}
		if len(p.Events) != tc.want || p.Events[0].Position != events.Position(1+len(tc.f.Types)) {
			t.Errorf("NextPage(%d) with filter %v = %d events from %d; want %d", tc.max, tc.f.Types, len(p.Events), p.Events[0].Position, tc.want)
		}
		sub.Close()
	}
}

// With DeferIDLoad the writer loads the IDs of recent events only when
// asked (LoadIDs) or at the first append, and an append of an event
// already stored is still recognised.
func TestDeferIDLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	first := ev("test.E", "first")
	if _, err := s.Append(context.Background(), "s", events.NoStream, first, ev("test.E", "second")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, ask := range []bool{true, false} {
		s, err := Open(path, Options{DeferIDLoad: true})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-s.pendingLoaded:
			t.Fatalf("ask %v: the IDs were loaded at Open", ask)
		case <-time.After(50 * time.Millisecond):
		}
		if ask {
			s.LoadIDs()
			select {
			case <-s.pendingLoaded:
			case <-time.After(10 * time.Second):
				t.Fatal("LoadIDs did not load the IDs")
			}
			if s.pending.n != 2 {
				t.Fatalf("%d IDs loaded; want 2", s.pending.n)
			}
		}
		// The first event again, at a stream's revision it is not at:
		// the store knows its ID.
		_, err = s.Append(context.Background(), "other", events.NoStream, first)
		if !errors.Is(err, events.ErrDuplicateID) {
			t.Errorf("ask %v: appending a stored event again elsewhere = %v; want ErrDuplicateID", ask, err)
		}
		s.Close()
	}
}
