package events

import (
	"crypto/sha256"
	"encoding/binary"
)

// hashDomain separates this hash from any other use of SHA-256.
const hashDomain = "subsidy-ledger/hash-link/v1\x00"

// linkStack is the largest preimage LinkHash lays out on the stack: most
// events' (a few hundred bytes); larger ones are hashed piecewise.
const linkStack = 1024

// LinkHash returns the hash link of an event appended at revision of stream
// after an event whose hash is prev (zero for revision 0):
//
//	SHA-256( domain || prev || len(stream) stream || revision ||
//	         id || len(type) type || len(metadata) metadata || len(data) data )
//
// with lengths and the revision as big-endian uint64. Metadata is the
// encoded envelope and Data the encoded payload, exactly as stored, so any
// backend computes the same link and a retried append yields the same hash.
//
// LinkHash does not allocate: a walk over the whole log (Verify, the
// Merkle verifier and sealer) calls it once per event.
func LinkHash(prev Hash, stream string, revision uint64, e EventData) Hash {
	n := len(hashDomain) + len(prev) + 8 + len(stream) + 8 + len(e.ID) + 8 + len(e.Type) + 8 + len(e.Metadata) + 8 + len(e.Data)
	if n <= linkStack {
		// One contiguous preimage: one call into SHA-256, which hashes
		// whole blocks in place, rather than eleven small writes.
		var buf [linkStack]byte
		b := append(buf[:0], hashDomain...)
		b = append(b, prev[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(len(stream)))
		b = append(b, stream...)
		b = binary.BigEndian.AppendUint64(b, revision)
		b = append(b, e.ID[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(len(e.Type)))
		b = append(b, e.Type...)
		b = binary.BigEndian.AppendUint64(b, uint64(len(e.Metadata)))
		b = append(b, e.Metadata...)
		b = binary.BigEndian.AppendUint64(b, uint64(len(e.Data)))
		b = append(b, e.Data...)
		return sha256.Sum256(b)
	}
	h := sha256.New()
	var buf [64]byte
	b := append(buf[:0], hashDomain...)
	b = append(b, prev[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(stream)))
	h.Write(b)
	writeString(h, &buf, stream)
	b = binary.BigEndian.AppendUint64(buf[:0], revision)
	b = append(b, e.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(e.Type)))
	h.Write(b)
	writeString(h, &buf, e.Type)
	h.Write(binary.BigEndian.AppendUint64(buf[:0], uint64(len(e.Metadata))))
	h.Write(e.Metadata)
	h.Write(binary.BigEndian.AppendUint64(buf[:0], uint64(len(e.Data))))
	h.Write(e.Data)
	var out Hash
	h.Sum(out[:0])
	return out
}

// writeString writes s to w through buf, so that converting a long s to a
// byte slice does not allocate.
func writeString(w interface{ Write([]byte) (int, error) }, buf *[64]byte, s string) {
	for len(s) > 0 {
		k := copy(buf[:], s)
		w.Write(buf[:k])
		s = s[k:]
	}
}
