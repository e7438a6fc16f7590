package merkle

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/cqhrss/subsidyledger/events"
)

// leafDomain separates leaf data from any other use of SHA-256.
const leafDomain = "subsidy-ledger/merkle-leaf/v1\x00"

// Leaf is what the tree commits to for one event (see the package
// documentation for the encoding).
type Leaf struct {
	Position events.Position
	Stream   string
	Revision uint64
	// Committed is when the store committed the event
	// (events.RecordedEvent.Created), to the nanosecond.
	Committed time.Time
	// Hash is the event's hash link.
	Hash events.Hash
}

// LeafOf returns the leaf of a stored event.
func LeafOf(e *events.RecordedEvent) Leaf {
	return Leaf{Position: e.Position, Stream: e.Stream, Revision: e.Revision, Committed: e.Created, Hash: e.Hash}
}

// AppendData appends the leaf's canonical encoding (the leaf data) to dst.
func (l *Leaf) AppendData(dst []byte) []byte {
	dst = append(dst, leafDomain...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(l.Position))
	dst = binary.BigEndian.AppendUint64(dst, uint64(len(l.Stream)))
	dst = append(dst, l.Stream...)
	dst = binary.BigEndian.AppendUint64(dst, l.Revision)
	dst = binary.BigEndian.AppendUint64(dst, uint64(l.Committed.UnixNano()))
	return append(dst, l.Hash[:]...)
}

// RecordHash returns the leaf's RFC 6962 leaf hash, tlog.RecordHash of its
// data.
func (l *Leaf) RecordHash() tlog.Hash {
	var buf [256]byte
	b := append(buf[:0], 0x00) // RFC 6962 leaf prefix, as tlog.RecordHash
	b = l.AppendData(b)
	return sha256.Sum256(b)
}

// LeafHash returns the leaf hash of a stored event.
func LeafHash(e *events.RecordedEvent) tlog.Hash {
	l := LeafOf(e)
	return l.RecordHash()
}

// Matches reports, as an error, how e differs from the leaf, or whether e's
// hash link does not match its own content; nil when e is the event the
// leaf commits to.
func (l *Leaf) Matches(e *events.RecordedEvent) error {
	switch {
	case e.Position != l.Position:
		return errorf(CodeBadProof, "match", "event at position %d, leaf at %d", e.Position, l.Position)
	case e.Stream != l.Stream || e.Revision != l.Revision:
		return errorf(CodeBadProof, "match", "event is %q revision %d, leaf is %q revision %d", e.Stream, e.Revision, l.Stream, l.Revision)
	case !e.Created.Equal(l.Committed) || e.Created.UnixNano() != l.Committed.UnixNano():
		return errorf(CodeBadProof, "match", "event committed %s, leaf says %s", e.Created.Format(time.RFC3339Nano), l.Committed.Format(time.RFC3339Nano))
	case e.Hash != l.Hash:
		return errorf(CodeBadProof, "match", "event hash %s, leaf hash %s", e.Hash, l.Hash)
	case events.LinkHash(e.PrevHash, e.Stream, e.Revision, e.EventData) != e.Hash:
		return errorf(CodeBadProof, "match", "the event's content does not hash to its hash link %s", e.Hash)
	}
	return nil
}

type leafJSON struct {
	Position  events.Position `json:"position"`
	Stream    string          `json:"stream"`
	Revision  uint64          `json:"revision"`
	Committed time.Time       `json:"committed"`
	Hash      string          `json:"hash"`
}

// MarshalJSON writes the hash in hex, as the audit trail shows it.
func (l Leaf) MarshalJSON() ([]byte, error) {
	return json.Marshal(leafJSON{l.Position, l.Stream, l.Revision, l.Committed.UTC(), hex.EncodeToString(l.Hash[:])})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (l *Leaf) UnmarshalJSON(b []byte) error {
	var j leafJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	h, err := hex.DecodeString(j.Hash)
	if err != nil || len(h) != len(l.Hash) {
		return fmt.Errorf("merkle: leaf hash %q: want 64 hex characters", j.Hash)
	}
	*l = Leaf{Position: j.Position, Stream: j.Stream, Revision: j.Revision, Committed: j.Committed.UTC()}
	copy(l.Hash[:], h)
	return nil
}
