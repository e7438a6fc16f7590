package rm

// seqBits sets the size of a Seq's chunks: 8,192 elements.
const seqBits = 13

// Seq is an append-only sequence of values stored in chunks of fixed size,
// so that growing it never copies what it holds (appending to a slice of
// millions of elements copies them all at each doubling, and leaves the
// old array to the collector). The zero Seq is empty and ready to use. Not
// safe for concurrent writers.
type Seq[T any] struct {
	chunks [][]T
	n      int
}

// Append adds v and returns its index.
func (s *Seq[T]) Append(v T) int32 {
	last := len(s.chunks) - 1
	if last < 0 || len(s.chunks[last]) == cap(s.chunks[last]) {
		s.chunks = append(s.chunks, make([]T, 0, 1<<seqBits))
		last++
	}
	s.chunks[last] = append(s.chunks[last], v)
	s.n++
	return int32(s.n - 1)
}

// At returns the element at index i, which must be below Len.
func (s *Seq[T]) At(i int32) *T {
	return &s.chunks[i>>seqBits][i&(1<<seqBits-1)]
}

// Len returns the number of elements.
func (s *Seq[T]) Len() int { return s.n }
