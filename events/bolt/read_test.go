package bolt

import (
	"context"
	"fmt"
	"testing"

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
