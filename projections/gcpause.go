package projections

import (
	"math"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// The collector is off while snapshots are restored: nearly everything a
// restore allocates is kept, so a collection meanwhile only rescans a heap
// growing to gigabytes (at a start, the intake's and the projections'
// restores run at once, and their collections took a fifth of the CPU
// time before ledgerd was ready). A memory limit holds meanwhile, so that
// a restore that allocates more than expected is still collected: the
// heap in use when the first restore began, plus restoreBudget times the
// size of each snapshot being restored, or the process's own limit
// (GOMEMLIMIT) if that is lower. Once the last restore ends, the
// collector's settings are put back.
const restoreBudget = 3

var gcPause struct {
	sync.Mutex
	restores     int
	limit        int64 // the limit in force meanwhile
	percent      int   // the settings to put back
	processLimit int64
}

// pauseGC turns the collector off for the restore of a snapshot of size
// bytes, and returns the func that ends this restore's pause.
func pauseGC(size int64) (resume func()) {
	p := &gcPause
	p.Lock()
	defer p.Unlock()
	if p.restores == 0 {
		p.processLimit = debug.SetMemoryLimit(-1) // reads it
		p.limit = heapInUse()
		p.percent = debug.SetGCPercent(-1)
	}
	p.restores++
	p.limit = addCapped(p.limit, restoreBudget*max(size, 0)+64<<20)
	debug.SetMemoryLimit(min(p.limit, p.processLimit))
	var once sync.Once
	return func() {
		once.Do(func() {
			p.Lock()
			defer p.Unlock()
			if p.restores--; p.restores == 0 {
				debug.SetGCPercent(p.percent)
				debug.SetMemoryLimit(p.processLimit)
			}
		})
	}
}

func addCapped(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// heapInUse reads the bytes of heap objects, live or not yet swept,
// without stopping the world.
func heapInUse() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(min(s[0].Value.Uint64(), math.MaxInt64))
}
