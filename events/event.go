package events

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// ID identifies an event. It has the layout of a UUID so that it maps to
// EventStoreDB's event ids unchanged.
type ID [16]byte

// DeriveID returns the deterministic ID for a name made of parts, so that a
// retried or raced decision yields the same ID and the store dedupes it. The
// kind separates name spaces (e.g. "entitlement", "fact").
func DeriveID(kind string, parts ...string) ID {
	h := sha256.New()
	h.Write([]byte(kind))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	var id ID
	copy(id[:], h.Sum(nil))
	id[6] = id[6]&0x0f | 0x80 // UUID version 8: custom, name-based
	id[8] = id[8]&0x3f | 0x80 // RFC 9562 variant
	return id
}

// RandomID returns a random (version 4) ID, for events that need no dedupe.
func RandomID() ID {
	var id ID
	if _, err := rand.Read(id[:]); err != nil {
		panic("events: crypto/rand failed: " + err.Error())
	}
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// String returns the canonical UUID text form.
func (id ID) String() string {
	var b [36]byte
	t, _ := id.AppendText(b[:0])
	return string(t)
}

// AppendText appends the canonical UUID text form (36 characters, lower
// case) to b (encoding.TextAppender; it never fails).
func (id ID) AppendText(b []byte) ([]byte, error) {
	n := len(b)
	b = append(b, make([]byte, 36)...)
	t := b[n:]
	hex.Encode(t[0:8], id[0:4])
	t[8] = '-'
	hex.Encode(t[9:13], id[4:6])
	t[13] = '-'
	hex.Encode(t[14:18], id[6:8])
	t[18] = '-'
	hex.Encode(t[19:23], id[8:10])
	t[23] = '-'
	hex.Encode(t[24:], id[10:])
	return b, nil
}

// IsZero reports whether the ID is unset.
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses the canonical UUID text form.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, fmt.Errorf("events: malformed event id %q", s)
	}
	// Group by group: each short conversion to []byte stays on the stack,
	// so a rebuild parsing millions of ids allocates nothing.
	for _, g := range [...]struct{ from, to, at int }{{0, 8, 0}, {9, 13, 4}, {14, 18, 6}, {19, 23, 8}, {24, 36, 10}} {
		if _, err := hex.Decode(id[g.at:], []byte(s[g.from:g.to])); err != nil {
			return ID{}, fmt.Errorf("events: malformed event id %q: %w", s, err)
		}
	}
	return id, nil
}

// Hash is a SHA-256 digest in a hash link.
type Hash [32]byte

// String returns the hash in lower-case hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Position is an event's place in the global log. Start (0) is before the
// first event. Positions increase in commit order but need not be dense.
type Position uint64

// Start is the position before the first event of the global log.
const Start Position = 0

// EventData is an event to append.
type EventData struct {
	// ID must be set; derive it (DeriveID) wherever a retry must dedupe.
	ID ID
	// Type names the payload, e.g. "subsidy.v1.Enrolled". Required.
	Type string
	// Metadata is the encoded envelope (subsidy.v1.Envelope); opaque here.
	Metadata []byte
	// Data is the encoded payload; opaque here.
	Data []byte
}

// SameBody reports whether two events carry the same type, metadata and data.
func (e EventData) SameBody(o EventData) bool {
	return e.Type == o.Type && bytes.Equal(e.Metadata, o.Metadata) && bytes.Equal(e.Data, o.Data)
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	EventData
	// Stream is the stream the event belongs to.
	Stream string
	// Revision is the event's 0-based place in its stream.
	Revision uint64
	// Position is the event's place in the global log.
	Position Position
	// Created is when the store committed the event (UTC).
	Created time.Time
	// PrevHash is the Hash of the previous event in the stream (zero for the
	// first) and Hash is LinkHash over it and this event.
	PrevHash Hash
	Hash     Hash
}

// AppendResult describes a successful append.
type AppendResult struct {
	// NextExpectedRevision is the revision of the last event of the append,
	// the revision to expect on the next append to the stream.
	NextExpectedRevision uint64
	// Position is the global position of the last event of the append.
	Position Position
	// FirstPosition is the global position of the first event of the
	// append, or zero when the store cannot tell without reading the
	// events back (EventStoreDB reports only the last). When
	// Position-FirstPosition is one less than the number of events, the
	// events lie at consecutive positions (the embedded store's always do).
	FirstPosition Position
	// LastHash is the hash link of the last event of the append.
	LastHash Hash
}

// Direction is the direction of a stream read.
type Direction int

const (
	// Forwards reads from lower to higher revisions.
	Forwards Direction = iota
	// Backwards reads from higher to lower revisions.
	Backwards
)

// End, as the starting revision of a backwards read, means the stream's last
// event.
const End = ^uint64(0)

// Filter selects the events a subscription delivers. An empty filter
// matches every event; with both lists set, an event must match both.
type Filter struct {
	// StreamPrefixes matches events whose stream starts with any prefix.
	StreamPrefixes []string
	// Types matches events whose Type is any of these.
	Types []string
}

// Match reports whether the filter selects an event of this stream and type.
func (f Filter) Match(stream, typ string) bool {
	if len(f.StreamPrefixes) > 0 {
		ok := false
		for _, p := range f.StreamPrefixes {
			if len(stream) >= len(p) && stream[:len(p)] == p {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(f.Types) > 0 {
		for _, t := range f.Types {
			if t == typ {
				return true
			}
		}
		return false
	}
	return true
}
