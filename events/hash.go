package events

import (
	"crypto/sha256"
	"encoding/binary"
)

// hashDomain separates this hash from any other use of SHA-256.
const hashDomain = "subsidy-ledger/hash-link/v1\x00"

// LinkHash returns the hash link of an event appended at revision of stream
// after an event whose hash is prev (zero for revision 0):
//
//	SHA-256( domain || prev || len(stream) stream || revision ||
//	         id || len(type) type || len(metadata) metadata || len(data) data )
//
// with lengths and the revision as big-endian uint64. Metadata is the
// encoded envelope and Data the encoded payload, exactly as stored, so any
// backend computes the same link and a retried append yields the same hash.
func LinkHash(prev Hash, stream string, revision uint64, e EventData) Hash {
	h := sha256.New()
	var n [8]byte
	h.Write([]byte(hashDomain))
	h.Write(prev[:])
	writeBytes := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	writeBytes([]byte(stream))
	binary.BigEndian.PutUint64(n[:], revision)
	h.Write(n[:])
	h.Write(e.ID[:])
	writeBytes([]byte(e.Type))
	writeBytes(e.Metadata)
	writeBytes(e.Data)
	var out Hash
	h.Sum(out[:0])
	return out
}
