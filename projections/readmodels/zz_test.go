package readmodels_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/readmodels"
)

func TestZZMem(t *testing.T) {
	s, _ := bolt.Open("/tmp/pb/speed.db", bolt.Options{})
	defer s.Close()
	for i, f := range readmodels.Factories() {
		runtime.GC()
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		p := f()
		t0 := time.Now()
		st, _ := projections.Build(context.Background(), s, []projections.Projection{p}, projections.BuildOptions{})
		d := time.Since(t0)
		runtime.GC()
		runtime.ReadMemStats(&b)
		t.Logf("%d %-10s live %6.1f MB  %v (%d events)", i, p.Name(), float64(b.HeapAlloc-a.HeapAlloc)/1e6, d, st.Events)
		runtime.KeepAlive(p)
	}
}
