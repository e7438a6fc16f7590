package apibench_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/readmodels"
	"github.com/cqhrss/subsidyledger/services/api/apibench"
	"github.com/cqhrss/subsidyledger/services/api/apitest"
)

func TestRunShort(t *testing.T) {
	if testing.Short() {
		t.Skip("drives wrk for seconds")
	}
	s, err := bolt.Open(filepath.Join(t.TempDir(), "l.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := apitest.Generate(context.Background(), s, 2000); err != nil {
		t.Fatal(err)
	}
	set, err := projections.NewSet(projections.Config{Store: s}, readmodels.Factories()...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go set.Run(ctx)
	for set.Ready() != nil {
		time.Sleep(5 * time.Millisecond)
	}
	ls, err := apibench.Run(ctx, apibench.Config{Projections: set, Store: s, Rate: 5000, Duration: 2 * time.Second})
	if errors.Is(err, apibench.ErrNoWrk) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		t.Logf("%s: %d requests, %.0f/s, p50 %v p90 %v p99 %v, %d errors", l.Query, l.Requests, l.Rate, l.P50, l.P90, l.P99, l.Errors)
		if l.Requests < 1000 || l.Errors != 0 {
			t.Errorf("%s: %+v", l.Query, l)
		}
	}
}
