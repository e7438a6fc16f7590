package merkle

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/cqhrss/subsidyledger/events"
)

// InclusionProof proves that a tree of TreeSize leaves holds Leaf at
// LeafIndex (an RFC 6962 audit path). Its JSON form is what the API serves
// and ledgerctl checks: hashes in base64, the leaf's hash link in hex.
type InclusionProof struct {
	TreeSize  int64       `json:"tree_size"`
	LeafIndex int64       `json:"leaf_index"`
	Leaf      Leaf        `json:"leaf"`
	Hashes    []tlog.Hash `json:"hashes"`
}

// ConsistencyProof proves that the tree of NewSize leaves extends the tree
// of OldSize leaves (an RFC 6962 consistency proof).
type ConsistencyProof struct {
	OldSize int64       `json:"old_size"`
	NewSize int64       `json:"new_size"`
	Hashes  []tlog.Hash `json:"hashes"`
}

// CheckInclusion checks that p proves its leaf is in the tree of the
// checkpoint c (whose signature the caller has checked: Verifier.Open).
//
// Errors: ErrBadProof.
func CheckInclusion(c Checkpoint, p *InclusionProof) error {
	if p.TreeSize != c.Size {
		return errorf(CodeBadProof, "check inclusion", "the proof is for a tree of %d events, the checkpoint's has %d", p.TreeSize, c.Size)
	}
	if p.LeafIndex < 0 || p.LeafIndex >= c.Size {
		return errorf(CodeBadProof, "check inclusion", "leaf %d is outside a tree of %d events", p.LeafIndex, c.Size)
	}
	if err := tlog.CheckRecord(tlog.RecordProof(p.Hashes), c.Size, c.Root, p.LeafIndex, p.Leaf.RecordHash()); err != nil {
		return &Error{Code: CodeBadProof, Op: "check inclusion",
			Detail: fmt.Sprintf("the event at position %d (%q revision %d) is not leaf %d of the checkpoint's tree of %d events",
				p.Leaf.Position, p.Leaf.Stream, p.Leaf.Revision, p.LeafIndex, c.Size), Err: err}
	}
	return nil
}

// CheckConsistency checks that p proves the tree of newer extends the tree
// of older (both checkpoints' signatures checked by the caller).
//
// Errors: ErrBadProof.
func CheckConsistency(older, newer Checkpoint, p *ConsistencyProof) error {
	if p.OldSize != older.Size || p.NewSize != newer.Size {
		return errorf(CodeBadProof, "check consistency", "the proof is from size %d to %d, the checkpoints are of sizes %d and %d", p.OldSize, p.NewSize, older.Size, newer.Size)
	}
	if older.Size > newer.Size {
		return errorf(CodeBadProof, "check consistency", "the older checkpoint (size %d) is larger than the newer (size %d)", older.Size, newer.Size)
	}
	if older.Size == newer.Size {
		if older.Root != newer.Root {
			return errorf(CodeBadProof, "check consistency", "two checkpoints of size %d with different roots: the log was rewritten", older.Size)
		}
		return nil
	}
	if older.Size == 0 {
		return nil // the empty tree is a prefix of every tree
	}
	if err := tlog.CheckTree(tlog.TreeProof(p.Hashes), newer.Size, newer.Root, older.Size, older.Root); err != nil {
		return &Error{Code: CodeBadProof, Op: "check consistency",
			Detail: fmt.Sprintf("the tree of %d events does not extend the tree of %d events: the log was rewritten", newer.Size, older.Size), Err: err}
	}
	return nil
}

// view runs f in a read transaction with the sealed size as of it.
func (s *Sealer) view(f func(tx *bbolt.Tx, sealed int64, r *hashReader) error) error {
	if s.closed.Load() {
		return errorf(CodeClosed, "read", "")
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		sealed := int64(u64(tx.Bucket(bucketMeta).Get(keySize)))
		r := newHashReader(tx.Bucket(bucketHashes), tlog.StoredHashCount(sealed))
		r.top = &s.top
		return f(tx, sealed, r)
	})
	var e *Error
	if err != nil && !errors.As(err, &e) {
		if errors.Is(err, bbolt.ErrDatabaseNotOpen) {
			return errorf(CodeClosed, "read", "")
		}
		err = &Error{Code: CodeUnavailable, Op: "read", Detail: s.path, Err: err}
	}
	return err
}

func checkSize(op string, size, sealed int64) error {
	if size < 0 || size > sealed {
		return errorf(CodeInvalidArgument, op, "tree size %d: the sealed tree has %d events", size, sealed)
	}
	return nil
}

// TreeHead returns the root hash of the tree of the first size events;
// size 0 means the whole sealed tree.
//
// Errors: ErrInvalidArgument (size beyond the sealed tree); ErrClosed.
func (s *Sealer) TreeHead(size int64) (Checkpoint, error) {
	var c Checkpoint
	err := s.view(func(_ *bbolt.Tx, sealed int64, r *hashReader) error {
		if size == 0 {
			size = sealed
		}
		if err := checkSize("tree head", size, sealed); err != nil {
			return err
		}
		root, err := tlog.TreeHash(size, r)
		c = Checkpoint{Size: size, Root: root}
		return err
	})
	return c, err
}

// LeafIndex returns the leaf index of the event at pos.
//
// Errors: ErrNotSealed (no event at pos is sealed); ErrClosed.
func (s *Sealer) LeafIndex(pos events.Position) (int64, error) {
	var idx int64
	err := s.view(func(tx *bbolt.Tx, _ int64, _ *hashReader) error {
		var err error
		idx, err = leafIndex(tx, pos)
		return err
	})
	return idx, err
}

func leafIndex(tx *bbolt.Tx, pos events.Position) (int64, error) {
	c := tx.Bucket(bucketRuns).Cursor()
	k, v := c.Seek(put64(nil, uint64(pos)))
	if k == nil || u64(k) != uint64(pos) {
		k, v = c.Prev()
	}
	if k != nil && len(v) == 16 {
		first, index, count := events.Position(u64(k)), int64(u64(v[:8])), int64(u64(v[8:]))
		if pos >= first && int64(pos-first) < count {
			return index + int64(pos-first), nil
		}
	}
	return 0, errorf(CodeNotSealed, "leaf index", "no sealed event at position %d", pos)
}

// InclusionProof proves that the event at pos is in the tree of size
// events (0: the whole sealed tree). The leaf is read from the store and
// checked against the sealed leaf hash.
//
// Errors: ErrNotSealed (no sealed event at pos); ErrInvalidArgument (size
// beyond the sealed tree, or too small to hold the event); ErrTampered
// (the store's event differs from the sealed one); ErrClosed; the store's
// errors.
func (s *Sealer) InclusionProof(ctx context.Context, pos events.Position, size int64) (*InclusionProof, error) {
	p := &InclusionProof{}
	var leaf tlog.Hash
	err := s.view(func(tx *bbolt.Tx, sealed int64, r *hashReader) error {
		if size == 0 {
			size = sealed
		}
		if err := checkSize("inclusion proof", size, sealed); err != nil {
			return err
		}
		idx, err := leafIndex(tx, pos)
		if err != nil {
			return err
		}
		if idx >= size {
			return errorf(CodeInvalidArgument, "inclusion proof", "the event at position %d is leaf %d, not in a tree of %d events", pos, idx, size)
		}
		hs, err := r.ReadHashes([]int64{tlog.StoredHashIndex(0, idx)})
		if err != nil {
			return err
		}
		leaf = hs[0]
		proof, err := tlog.ProveRecord(size, idx, r)
		p.TreeSize, p.LeafIndex, p.Hashes = size, idx, proof
		return err
	})
	if err != nil {
		return nil, err
	}
	recs, err := s.store.ReadAll(ctx, pos-1, 1)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 || recs[0].Position != pos {
		return nil, errorf(CodeTampered, "inclusion proof", "the log has no event at sealed position %d", pos)
	}
	p.Leaf = LeafOf(&recs[0])
	if p.Leaf.RecordHash() != leaf {
		return nil, errorf(CodeTampered, "inclusion proof", "the event at position %d differs from the one sealed there", pos)
	}
	return p, nil
}

// ConsistencyProof proves that the tree of newSize events (0: the whole
// sealed tree) extends the tree of oldSize events.
//
// Errors: ErrInvalidArgument (sizes out of order or beyond the sealed
// tree); ErrClosed.
func (s *Sealer) ConsistencyProof(oldSize, newSize int64) (*ConsistencyProof, error) {
	p := &ConsistencyProof{}
	err := s.view(func(_ *bbolt.Tx, sealed int64, r *hashReader) error {
		if newSize == 0 {
			newSize = sealed
		}
		if err := checkSize("consistency proof", newSize, sealed); err != nil {
			return err
		}
		if oldSize < 0 || oldSize > newSize {
			return errorf(CodeInvalidArgument, "consistency proof", "old size %d is not between 0 and the new size %d", oldSize, newSize)
		}
		p.OldSize, p.NewSize, p.Hashes = oldSize, newSize, []tlog.Hash{}
		if oldSize == 0 || oldSize == newSize {
			return nil
		}
		proof, err := tlog.ProveTree(newSize, oldSize, r)
		p.Hashes = proof
		return err
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}
