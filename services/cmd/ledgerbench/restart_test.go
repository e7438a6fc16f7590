package main

import (
	"bytes"
	"math"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
)

func TestHolderShares(t *testing.T) {
	// A sampling rate of one byte (the header gives twice the rate): every
	// allocation is in the profile as it is.
	const profile = `heap profile: 3: 400 [4: 450] @ heap/2
1: 100 [1: 100] @ 0x1 0x2 0x3
#	0x1	runtime.mallocgc+0x1	/go/src/runtime/malloc.go:1
#	0x2	github.com/cqhrss/subsidyledger/events/rules.(*World).fold+0x2	/w/events/rules/world.go:2
#	0x3	github.com/cqhrss/subsidyledger/services/ingest.(*Intake).add+0x3	/w/services/ingest/ingest.go:3

1: 200 [1: 200] @ 0x4
#	0x4	github.com/nats-io/nats-server/v2/server.(*stream).storeMsgIdLocked+0x4	/m/stream.go:4

1: 100 [1: 100] @ 0x5 0x6
#	0x5	go.etcd.io/bbolt.(*node).put+0x5	/m/node.go:5
#	0x6	main.main+0x6	/w/main.go:6

0: 0 [1: 50] @ 0x7
#	0x7	github.com/cqhrss/subsidyledger/projections/trainee.(*Model).apply+0x7	/w/trainee.go:7

# runtime.MemStats
# Alloc = 123
`
	got, err := holderShares(strings.NewReader(profile))
	if err != nil {
		t.Fatal(err)
	}
	// rules' world (the first holder on the stack from the allocation
	// up, not the intake that called it), NATS, and the rest; nothing for
	// the read models, whose record holds no bytes any more.
	want := []float64{0.25, 0, 0, 0, 0.5, 0.25}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Fatalf("shares %v, want %v", got, want)
		}
	}
}

// A profile sampled at the default rate (512 KiB) holds about one in
// 8,192 allocations of 64 bytes, and every allocation of 100 MiB: two
// sampled 64-byte objects stand for about 1 MiB.
func TestHolderSharesScalesSamples(t *testing.T) {
	const profile = `heap profile: 3: 104857728 [3: 104857728] @ heap/1048576
2: 128 [2: 128] @ 0x1
#	0x1	github.com/cqhrss/subsidyledger/events/rules.(*World).fold+0x2	/w/events/rules/world.go:2

1: 104857600 [1: 104857600] @ 0x4
#	0x4	github.com/nats-io/nats-server/v2/server.(*stream).storeMsgIdLocked+0x4	/m/stream.go:4
`
	got, err := holderShares(strings.NewReader(profile))
	if err != nil {
		t.Fatal(err)
	}
	if want := 1.0 / 101; math.Abs(got[0]-want) > 1e-4 || math.Abs(got[4]-(1-want)) > 1e-4 {
		t.Fatalf("shares %v, want about %.4f for the rules' world and the rest for NATS", got, want)
	}
}

func TestHolderSharesOfARealProfile(t *testing.T) {
	keep := make([][]byte, 64)
	for i := range keep {
		keep[i] = make([]byte, 1<<20)
	}
	runtime.GC()
	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 1); err != nil {
		t.Fatal(err)
	}
	got, err := holderShares(&buf)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, s := range got {
		sum += s
	}
	if math.Abs(sum-1) > 1e-9 || got[len(got)-1] < 0.5 {
		t.Fatalf("shares %v: want them to sum to 1, most of it the rest (this test's own)", got)
	}
	runtime.KeepAlive(keep)
}
