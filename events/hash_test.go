package events

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"
)

// linkHashReference is LinkHash as documented, written the plain way.
func linkHashReference(prev Hash, stream string, revision uint64, e EventData) Hash {
	h := sha256.New()
	var n [8]byte
	h.Write([]byte(hashDomain))
	h.Write(prev[:])
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte(stream))
	binary.BigEndian.PutUint64(n[:], revision)
	h.Write(n[:])
	h.Write(e.ID[:])
	field([]byte(e.Type))
	field(e.Metadata)
	field(e.Data)
	var out Hash
	h.Sum(out[:0])
	return out
}

// TestLinkHashKnownAnswers pins hash links computed before LinkHash was
// rewritten: stored links live forever, so they must never change.
func TestLinkHashKnownAnswers(t *testing.T) {
	var prev Hash
	for i := range prev {
		prev[i] = byte(i)
	}
	e := EventData{ID: ID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, Type: "subsidy.v1.EntitlementApproved",
		Metadata: []byte(`{"correlation":"4f7c1c9e"}`), Data: []byte("payload")}
	big := e
	big.Data = make([]byte, 3000)
	for i := range big.Data {
		big.Data[i] = byte(i * 7)
	}
	for _, tc := range []struct {
		stream string
		rev    uint64
		e      EventData
		want   string
	}{
		{"trainee-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 7, e, "1ded203710c1d3186b3d51280886fc639dc5f9995a4957c5346306e978958887"},
		{"s", 0, big, "a256dffdd30db1bee638e971a8fad7e7268cb54de10b85d0ce6c91adaeb190d2"},
	} {
		if got := LinkHash(prev, tc.stream, tc.rev, tc.e).String(); got != tc.want {
			t.Errorf("LinkHash(%q, %d, %d bytes of data) = %s; want %s", tc.stream, tc.rev, len(tc.e.Data), got, tc.want)
		}
	}
}

// TestLinkHashMatchesReference compares LinkHash with the plain
// implementation on both sides of its stack buffer's size.
func TestLinkHashMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	bytesOf := func(n int) []byte {
		if n == 0 {
			return nil
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	for i := range 2000 {
		var prev Hash
		copy(prev[:], bytesOf(32))
		var id ID
		copy(id[:], bytesOf(16))
		stream := strings.Repeat("s", 1+r.IntN(200))
		e := EventData{ID: id, Type: strings.Repeat("t", 1+r.IntN(100)), Metadata: bytesOf(r.IntN(300)), Data: bytesOf(r.IntN(1200))}
		rev := r.Uint64()
		if got, want := LinkHash(prev, stream, rev, e), linkHashReference(prev, stream, rev, e); got != want {
			t.Fatalf("case %d (%d-byte stream, %d-byte data): LinkHash = %s; want %s", i, len(stream), len(e.Data), got, want)
		}
	}
}

func TestLinkHashDoesNotAllocate(t *testing.T) {
	e := EventData{Type: "subsidy.v1.EntitlementApproved", Metadata: make([]byte, 60), Data: make([]byte, 200)}
	stream := "trainee-" + strings.Repeat("0", 64)
	if n := testing.AllocsPerRun(100, func() { LinkHash(Hash{}, stream, 3, e) }); n != 0 {
		t.Errorf("LinkHash of a %d-byte event allocates %.0f times", len(e.Data), n)
	}
}

// BenchmarkLinkHash compares LinkHash with the plain implementation on an
// event of ledgerbench's size. cpu-ns/op (the process's CPU time) is the
// figure to compare on a shared machine, where ns/op includes waiting.
func BenchmarkLinkHash(b *testing.B) {
	e := EventData{Type: "subsidy.v1.EntitlementApproved", Metadata: []byte(`{"correlation":"4f7c1c9e","actor":"ledgerbench"}`), Data: make([]byte, 120)}
	stream := "trainee-" + strings.Repeat("0", 64)
	for _, f := range []struct {
		name string
		fn   func(Hash, string, uint64, EventData) Hash
	}{{"LinkHash", LinkHash}, {"reference", linkHashReference}} {
		b.Run(f.name, func(b *testing.B) {
			c0 := cpuTime()
			for b.Loop() {
				f.fn(Hash{}, stream, 3, e)
			}
			b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
