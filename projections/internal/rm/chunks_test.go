package rm

import "testing"

func TestChunks(t *testing.T) {
	var c Chunks[int64]
	const n = 3*recChunk + 17
	var kept *int64
	for i := range n {
		if got := c.Append(int64(i) * 3); got != int32(i) {
			t.Fatalf("Append #%d returned index %d", i, got)
		}
		if i == 5 {
			kept = c.At(5)
		}
	}
	if c.Len() != n {
		t.Fatalf("Len = %d; want %d", c.Len(), n)
	}
	if *kept != 15 || kept != c.At(5) {
		t.Error("a pointer from At moved while the sequence grew")
	}
	seen := 0
	for i, p := range c.All() {
		if *p != int64(i)*3 {
			t.Fatalf("record %d = %d; want %d", i, *p, int64(i)*3)
		}
		seen++
	}
	if seen != n {
		t.Errorf("All yielded %d records; want %d", seen, n)
	}
	c.Reset(recChunk + 1)
	if c.Len() != recChunk+1 || *c.At(recChunk) != 0 {
		t.Errorf("after Reset: Len %d, last %d", c.Len(), *c.At(recChunk))
	}
	c.Append(7)
	if *c.At(recChunk + 1) != 7 {
		t.Error("Append after Reset")
	}
	c.Reset(0)
	if c.Len() != 0 || c.Append(1) != 0 {
		t.Error("Reset(0)")
	}
}
