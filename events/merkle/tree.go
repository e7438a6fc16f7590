package merkle

import "golang.org/x/mod/sumdb/tlog"

// Tree computes the root of a growing RFC 6962 tree in memory, keeping only
// the roots of its perfect subtrees (at most log₂ n hashes): enough to
// recompute a log's tree from scratch in one pass. Its roots equal
// tlog.TreeHash over the same leaves. The zero Tree is empty.
type Tree struct {
	size  int64
	stack []tlog.Hash // roots of the perfect subtrees, largest first
}

// Append adds a leaf hash.
func (t *Tree) Append(leaf tlog.Hash) {
	h := leaf
	for n := t.size; n&1 == 1; n >>= 1 {
		h = tlog.NodeHash(t.stack[len(t.stack)-1], h)
		t.stack = t.stack[:len(t.stack)-1]
	}
	t.stack = append(t.stack, h)
	t.size++
}

// Size returns the number of leaves.
func (t *Tree) Size() int64 { return t.size }

// Root returns the tree's root hash (RFC 6962 MTH; SHA-256 of nothing for
// the empty tree, as tlog.TreeHash).
func (t *Tree) Root() tlog.Hash {
	if t.size == 0 {
		h, _ := tlog.TreeHash(0, nil)
		return h
	}
	h := t.stack[len(t.stack)-1]
	for i := len(t.stack) - 2; i >= 0; i-- {
		h = tlog.NodeHash(t.stack[i], h)
	}
	return h
}
