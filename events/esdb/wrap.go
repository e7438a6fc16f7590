package esdb

import (
	"unicode/utf16"

	"github.com/cqhrss/subsidyledger/events"
)

// An event's hash link travels in the metadata EventStoreDB stores with it
// (its "custom metadata"), in front of the contract's Metadata:
//
//	"slh" 0x01 (4 bytes) || PrevHash (32 bytes) || Hash (32 bytes) || Metadata
//
// EventStoreDB treats the metadata as opaque bytes (the events are written
// with content type application/octet-stream), so the wrapper costs 68
// bytes an event and nothing else. Reads unwrap it: callers see exactly the
// contract's RecordedEvent.
const (
	wrapMagic = "slh\x01"
	wrapLen   = len(wrapMagic) + 2*len(events.Hash{})
)

// wrap returns the EventStoreDB metadata of an event with hash link prev,
// hash and the contract's metadata meta.
func wrap(prev, hash events.Hash, meta []byte) []byte {
	b := make([]byte, 0, wrapLen+len(meta))
	b = append(b, wrapMagic...)
	b = append(b, prev[:]...)
	b = append(b, hash[:]...)
	return append(b, meta...)
}

// unwrap splits EventStoreDB metadata written by wrap. ok is false when b
// does not start with the wrapper: the event was not written by this
// backend.
func unwrap(b []byte) (prev, hash events.Hash, meta []byte, ok bool) {
	if len(b) < wrapLen || string(b[:len(wrapMagic)]) != wrapMagic {
		return prev, hash, nil, false
	}
	b = b[len(wrapMagic):]
	copy(prev[:], b)
	copy(hash[:], b[len(prev):])
	return prev, hash, b[len(prev)+len(hash):], true
}

// DefaultMaxAppendSize is EventStoreDB's default --max-append-size (1 MiB).
const DefaultMaxAppendSize = 1 << 20

// AppendSize is what an event counts towards EventStoreDB's maximum append
// size, as this backend (and the stand-in in package esdbtest) reckons it:
// the data, the metadata as stored (with the hash-link wrapper) and the
// type at two bytes a UTF-16 code unit, which is how EventStoreDB sizes an
// event on disk. The server's own accounting is the judge; the backend uses
// this to refuse an append it knows the server would refuse.
func AppendSize(e events.EventData) int {
	n := 0
	for _, r := range e.Type {
		n += utf16.RuneLen(r)
	}
	return len(e.Data) + wrapLen + len(e.Metadata) + 2*n
}
