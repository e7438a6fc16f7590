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
