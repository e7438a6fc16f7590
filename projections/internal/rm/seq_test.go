package rm

import "testing"

func TestSeq(t *testing.T) {
	var s Seq[int]
	const n = 3<<seqBits + 5
	for i := range n {
		if got := s.Append(i * 2); got != int32(i) {
			t.Fatalf("Append #%d returned %d", i, got)
		}
	}
	if s.Len() != n {
		t.Fatalf("Len = %d; want %d", s.Len(), n)
	}
	for i := range int32(n) {
		if v := *s.At(i); v != int(i)*2 {
			t.Fatalf("At(%d) = %d; want %d", i, v, i*2)
		}
	}
	*s.At(7) = -1
	if *s.At(7) != -1 {
		t.Fatal("At does not address the element")
	}
}
