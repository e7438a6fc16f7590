package snap

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestRoundTripAndCorruption(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	w.Magic("m", 3)
	vals := []int64{0, 1, -1, math.MaxInt64, math.MinInt64, 300, -300}
	for _, v := range vals {
		w.Varint(v)
	}
	w.Uvarint(math.MaxUint64)
	w.String("数字技术")
	w.Bytes(bytes.Repeat([]byte{7}, 300000)) // longer than the buffer
	w.Fixed([]byte{1, 2, 3})
	w.Bool(true)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r := NewReader(bytes.NewReader(b.Bytes()))
	r.Magic("m", 3)
	for _, v := range vals {
		if got := r.Varint(); got != v {
			t.Fatalf("Varint = %d; want %d", got, v)
		}
	}
	if r.Uvarint() != math.MaxUint64 || r.String() != "数字技术" || len(r.Bytes()) != 300000 {
		t.Fatal("round trip differs")
	}
	var f [3]byte
	r.Fixed(f[:])
	if f != [3]byte{1, 2, 3} || !r.Bool() || r.Err() != nil {
		t.Fatalf("round trip: %v %v", f, r.Err())
	}
	r.Uvarint()
	if !errors.Is(r.Err(), ErrCorrupt) {
		t.Fatalf("reading past the end: %v; want ErrCorrupt", r.Err())
	}
	for cut := 0; cut < b.Len(); cut += 997 {
		r := NewReader(bytes.NewReader(b.Bytes()[:cut]))
		r.Magic("m", 3)
		for range vals {
			r.Varint()
		}
		r.Uvarint()
		_ = r.String()
		r.Bytes()
		r.Fixed(f[:])
		r.Bool()
		if r.Err() == nil {
			t.Fatalf("a snapshot cut at %d read without error", cut)
		}
	}
	r = NewReader(bytes.NewReader(b.Bytes()))
	r.Magic("other", 3)
	if !errors.Is(r.Err(), ErrCorrupt) {
		t.Fatalf("wrong magic: %v", r.Err())
	}
}

func TestLenIsBoundedByTheBytesLeftOnceTheSizeIsKnown(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	w.Uvarint(3)
	w.Fixed([]byte{1, 2, 3})
	w.Uvarint(1 << 30) // a damaged count
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r := NewReader(bytes.NewReader(b.Bytes()))
	r.SetSize(int64(b.Len()))
	if n := r.Len(1 << 31); n != 3 || r.Err() != nil {
		t.Fatalf("Len = %d, %v; want 3", n, r.Err())
	}
	var f [3]byte
	r.Fixed(f[:])
	if n := r.Len(1 << 31); n != 0 || !errors.Is(r.Err(), ErrCorrupt) {
		t.Fatalf("Len of a count beyond the input = %d, %v; want ErrCorrupt", n, r.Err())
	}
	// Counted in elements of three bytes: 3 of them do not fit the 8 left.
	r = NewReader(bytes.NewReader(b.Bytes()))
	r.SetSize(int64(b.Len()))
	if n := r.LenOf(1<<31, 3); n != 0 || !errors.Is(r.Err(), ErrCorrupt) {
		t.Fatalf("LenOf(3 elements of 3 bytes, 8 bytes left) = %d, %v; want ErrCorrupt", n, r.Err())
	}
	// Without the size, the same count passes the sanity bound alone.
	r = NewReader(bytes.NewReader(b.Bytes()))
	r.Len(1 << 31)
	r.Fixed(f[:])
	if n := r.Len(1 << 31); n != 1<<30 || r.Err() != nil {
		t.Fatalf("Len without a size = %d, %v", n, r.Err())
	}
}

// Once a read has failed (or the caller called Fail), every read returns
// zero values, even with bytes left in the buffer.
func TestNothingIsReadAfterAFailure(t *testing.T) {
	r := NewReader(bytes.NewReader([]byte{5, 6, 7, 8, 9, 10, 11, 12}))
	if v := r.Uvarint(); v != 5 || r.Err() != nil {
		t.Fatalf("Uvarint = %d, %v; want 5", v, r.Err())
	}
	r.Fail("the caller found %d wrong", 5)
	b := []byte{1, 1}
	r.Fixed(b)
	if v, i := r.Uvarint(), r.Int(); v != 0 || i != 0 || b[0] != 1 || b[1] != 1 || !errors.Is(r.Err(), ErrCorrupt) {
		t.Fatalf("after Fail: Uvarint %d, Int %d, Fixed %v, err %v; want zeros, b untouched, ErrCorrupt", v, i, b, r.Err())
	}
	r = NewReader(bytes.NewReader([]byte{0x81})) // a varint cut short
	if v := r.Uvarint(); v != 0 || !errors.Is(r.Err(), ErrCorrupt) {
		t.Fatalf("a cut varint: %d, %v; want 0, ErrCorrupt", v, r.Err())
	}
}

// A read larger than the buffer goes straight into the caller's slice; the
// bytes before and after it, and a cut-short input, read as through the
// buffer.
func TestLargeFixedReads(t *testing.T) {
	big := make([]byte, 3*256<<10+17)
	for i := range big {
		big[i] = byte(i * 7)
	}
	var in bytes.Buffer
	w := NewWriter(&in)
	w.Uvarint(300)
	w.Fixed(big)
	w.Uvarint(5)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for name, read := range map[string]func(*Reader, []byte){"Fixed": (*Reader).Fixed, "Block": (*Reader).Block} {
		r := NewReader(bytes.NewReader(in.Bytes()))
		r.SetSize(int64(in.Len()))
		got := make([]byte, len(big))
		if a := r.Uvarint(); a != 300 {
			t.Fatalf("%s: first = %d", name, a)
		}
		read(r, got)
		if b := r.Uvarint(); b != 5 || r.Err() != nil || !bytes.Equal(got, big) {
			t.Fatalf("%s: after the large read: %d, %v, equal %v; want 5, no error, the bytes written", name, b, r.Err(), bytes.Equal(got, big))
		}
		if n := r.LenOf(1, 1); n != 0 || !errors.Is(r.Err(), ErrCorrupt) {
			t.Fatalf("%s: reading past the end: %d, %v; want ErrCorrupt", name, n, r.Err())
		}
		r = NewReader(bytes.NewReader(in.Bytes()[:in.Len()/2]))
		r.Uvarint()
		read(r, got)
		if !errors.Is(r.Err(), ErrCorrupt) {
			t.Fatalf("%s: a large read cut short: %v; want ErrCorrupt", name, r.Err())
		}
	}
}

// A string longer than the Reader's buffer, and one that starts near the
// buffer's end, read back whole.
func TestStringsAcrossTheBuffer(t *testing.T) {
	long := strings.Repeat("数字技术", 100<<10) // 1.2 MB
	var in bytes.Buffer
	w := NewWriter(&in)
	w.Fixed(make([]byte, 256<<10-3))
	w.String("across")
	w.String(long)
	w.String("")
	w.String("end")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r := NewReader(bytes.NewReader(in.Bytes()))
	r.Fixed(make([]byte, 256<<10-3))
	got := []string{r.String(), r.String(), r.String(), r.String()}
	if err := r.Err(); err != nil || got[0] != "across" || got[1] != long || got[2] != "" || got[3] != "end" {
		t.Fatalf("read %q, %d bytes, %q, %q (%v); want across, %d bytes, empty, end", got[0], len(got[1]), got[2], got[3], err, len(long))
	}
}

// Fixed does not make its argument escape: reading an id into a local
// array allocates nothing, even when the bytes must first be read into
// the buffer. (When it did, every id a snapshot held cost an allocation:
// about a gigabyte of garbage restoring ledgerd's 9.9 M-event benchmark
// store.)
func TestFixedIntoALocalArrayDoesNotAllocate(t *testing.T) {
	var in bytes.Buffer
	w := NewWriter(&in)
	for i := range 1 << 16 {
		w.Fixed([]byte{byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r := NewReader(bytes.NewReader(in.Bytes()))
	var sum int
	allocs := testing.AllocsPerRun(1<<15, func() {
		var id [16]byte
		r.Fixed(id[:])
		sum += int(id[15])
	})
	if err := r.Err(); err != nil || sum != (1<<15+1)*15 {
		t.Fatalf("read %v, sum %d", err, sum)
	}
	if allocs != 0 {
		t.Fatalf("%v allocations per Fixed into a local array; want 0", allocs)
	}
}
