package rm

import "iter"

// recBits sets a Chunks chunk's length: 4,096 records (a few hundred KiB for
// the largest record kinds).
const recBits = 12

const recChunk = 1 << recBits

// Chunks is an append-only sequence of records kept in fixed-size chunks.
// A slice of millions of records copies all of them each time append grows
// it (and holds both copies meanwhile); Chunks never moves a record, so
// growing costs one chunk's allocation and a pointer from At stays valid.
// The zero value is empty and ready to use.
type Chunks[T any] struct {
	chunks [][]T
	n      int
}

// Len returns the number of records.
func (c *Chunks[T]) Len() int { return c.n }

// At returns the record at index i (0 ≤ i < Len).
func (c *Chunks[T]) At(i int32) *T { return &c.chunks[i>>recBits][i&(recChunk-1)] }

// Append adds r and returns its index.
func (c *Chunks[T]) Append(r T) int32 {
	if c.n&(recChunk-1) == 0 && c.n>>recBits == len(c.chunks) {
		c.chunks = append(c.chunks, make([]T, recChunk))
	}
	i := c.n
	c.chunks[i>>recBits][i&(recChunk-1)] = r
	c.n++
	return int32(i)
}

// Reset makes the sequence hold n zero records (for a restore).
func (c *Chunks[T]) Reset(n int) {
	c.chunks = make([][]T, 0, (n+recChunk-1)>>recBits)
	for left := n; left > 0; left -= recChunk {
		c.chunks = append(c.chunks, make([]T, recChunk))
	}
	c.n = n
}

// All yields each index and a pointer to its record, in order.
func (c *Chunks[T]) All() iter.Seq2[int32, *T] {
	return func(yield func(int32, *T) bool) {
		for i := range int32(c.n) {
			if !yield(i, c.At(i)) {
				return
			}
		}
	}
}
