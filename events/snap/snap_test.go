package snap

import (
	"bytes"
	"errors"
	"math"
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
	r := NewReader(bytes.NewReader(in.Bytes()))
	r.SetSize(int64(in.Len()))
	got := make([]byte, len(big))
	if a := r.Uvarint(); a != 300 {
		t.Fatalf("first = %d", a)
	}
	r.Fixed(got)
	if b := r.Uvarint(); b != 5 || r.Err() != nil || !bytes.Equal(got, big) {
		t.Fatalf("after the large read: %d, %v, equal %v; want 5, no error, the bytes written", b, r.Err(), bytes.Equal(got, big))
	}
	if n := r.LenOf(1, 1); n != 0 || !errors.Is(r.Err(), ErrCorrupt) {
		t.Fatalf("reading past the end: %d, %v; want ErrCorrupt", n, r.Err())
	}
	r = NewReader(bytes.NewReader(in.Bytes()[:in.Len()/2]))
	r.Uvarint()
	r.Fixed(got)
	if !errors.Is(r.Err(), ErrCorrupt) {
		t.Fatalf("a large read cut short: %v; want ErrCorrupt", r.Err())
	}
}
