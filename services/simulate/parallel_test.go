package simulate

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

func TestInParallel(t *testing.T) {
	items := make([]int, 1000)
	for i := range items {
		items[i] = i
	}
	var sum atomic.Int64
	if err := inParallel(context.Background(), items, 8, func(i int) error { sum.Add(int64(i)); return nil }); err != nil {
		t.Fatal(err)
	}
	if got, want := sum.Load(), int64(999*1000/2); got != want {
		t.Errorf("sum of the items done = %d; want %d (each item once)", got, want)
	}

	boom := errors.New("boom")
	var done atomic.Int64
	err := inParallel(context.Background(), items, 4, func(i int) error {
		if i == 10 {
			return boom
		}
		done.Add(1)
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("inParallel with a failing item = %v; want %v", err, boom)
	}
	if done.Load() >= int64(len(items)-1) {
		t.Errorf("%d items done after the failure; want it to stop early", done.Load())
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := inParallel(ctx, items, 2, func(int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("inParallel with a cancelled context = %v; want %v", err, context.Canceled)
	}
}
