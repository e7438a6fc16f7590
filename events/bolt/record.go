package bolt

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cqhrss/subsidyledger/events"
)

// A record is one event as stored in the log bucket, keyed by its position
// (8 bytes, big-endian). It starts with a fixed header, so that the writer
// can fill in the revision, time and hash links of a record the caller has
// already encoded, followed by the variable-length fields:
//
//	off  0  format      1 byte (recordFormat)
//	off  1  revision    uint64, big-endian
//	off  9  id          16 bytes
//	off 25  created     int64 Unix nanoseconds, big-endian
//	off 33  prev hash   32 bytes
//	off 65  hash        32 bytes
//	off 97  stream, type, metadata, data: each a uvarint length and the bytes
const (
	recordFormat = 1

	offRevision = 1
	offID       = 9
	offCreated  = 25
	offPrevHash = 33
	offHash     = 65
	headerLen   = 97
)

// encodedLen returns the length of the record of e in stream.
func encodedLen(stream string, e *events.EventData) int {
	return headerLen +
		uvarintLen(len(stream)) + len(stream) +
		uvarintLen(len(e.Type)) + len(e.Type) +
		uvarintLen(len(e.Metadata)) + len(e.Metadata) +
		uvarintLen(len(e.Data)) + len(e.Data)
}

func uvarintLen(n int) int {
	l := 1
	for n >= 0x80 {
		n >>= 7
		l++
	}
	return l
}

// appendRecord appends the record of e in stream to dst with the header's
// revision, created and hash fields zero (see patchRecord). It returns the
// extended buffer and the offsets of the metadata and data in it, so the
// caller can point an EventData at the copies it owns.
func appendRecord(dst []byte, stream string, e *events.EventData) (out []byte, meta, data []byte) {
	start := len(dst)
	dst = append(dst, recordFormat)
	dst = append(dst, make([]byte, headerLen-1)...)
	copy(dst[start+offID:], e.ID[:])
	dst = binary.AppendUvarint(dst, uint64(len(stream)))
	dst = append(dst, stream...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Type)))
	dst = append(dst, e.Type...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Metadata)))
	m := len(dst)
	dst = append(dst, e.Metadata...)
	meta = dst[m:len(dst):len(dst)]
	dst = binary.AppendUvarint(dst, uint64(len(e.Data)))
	d := len(dst)
	dst = append(dst, e.Data...)
	data = dst[d:len(dst):len(dst)]
	return dst, meta, data
}

// patchRecord fills in the fields only the writer knows.
func patchRecord(rec []byte, revision uint64, created int64, prev, hash events.Hash) {
	binary.BigEndian.PutUint64(rec[offRevision:], revision)
	binary.BigEndian.PutUint64(rec[offCreated:], uint64(created))
	copy(rec[offPrevHash:offHash], prev[:])
	copy(rec[offHash:headerLen], hash[:])
}

// rawRecord is a parsed record whose byte fields still point into the value
// it was parsed from (inside a bbolt transaction: valid only until it ends).
type rawRecord struct {
	revision uint64
	id       events.ID
	created  int64
	prevHash events.Hash
	hash     events.Hash
	stream   []byte
	typ      []byte
	metadata []byte
	data     []byte
}

// parseRecord parses v without copying. The error says what is wrong, for
// an ErrCorrupt detail.
func parseRecord(v []byte) (rawRecord, error) {
	var r rawRecord
	if len(v) < headerLen {
		return r, fmt.Errorf("record of %d bytes is shorter than its %d-byte header", len(v), headerLen)
	}
	if v[0] != recordFormat {
		return r, fmt.Errorf("unknown record format %d", v[0])
	}
	r.revision = binary.BigEndian.Uint64(v[offRevision:])
	copy(r.id[:], v[offID:offCreated])
	r.created = int64(binary.BigEndian.Uint64(v[offCreated:]))
	copy(r.prevHash[:], v[offPrevHash:offHash])
	copy(r.hash[:], v[offHash:headerLen])
	rest := v[headerLen:]
	var ok bool
	if r.stream, rest, ok = field(rest); !ok {
		return r, fmt.Errorf("truncated stream name")
	}
	if r.typ, rest, ok = field(rest); !ok {
		return r, fmt.Errorf("truncated event type")
	}
	if r.metadata, rest, ok = field(rest); !ok {
		return r, fmt.Errorf("truncated metadata")
	}
	if r.data, rest, ok = field(rest); !ok {
		return r, fmt.Errorf("truncated data")
	}
	if len(rest) != 0 {
		return r, fmt.Errorf("%d bytes after the data", len(rest))
	}
	if len(r.stream) == 0 || len(r.typ) == 0 {
		return r, fmt.Errorf("empty stream name or event type")
	}
	return r, nil
}

// field splits a uvarint-length-prefixed field off b.
func field(b []byte) (f, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	end := k + int(n)
	return b[k:end:end], b[end:], true
}

// decoder turns raw records into RecordedEvents with copies of their bytes,
// without reflection and with few allocations: metadata and data are copied
// into shared chunks, and repeated stream names and types are shared.
// The events of one read therefore share backing memory.
type decoder struct {
	page       *events.Page // if set, bytes are copied into it
	chunk      []byte
	lastStream string
	types      map[string]string
}

const decodeChunk = 64 << 10

// bytes returns a copy of b (nil when empty) carved from the current chunk.
func (d *decoder) bytes(b []byte) []byte {
	if d.page != nil {
		return d.page.Copy(b)
	}
	if len(b) == 0 {
		return nil
	}
	if cap(d.chunk)-len(d.chunk) < len(b) {
		if len(b) > decodeChunk/4 {
			return append([]byte(nil), b...)
		}
		d.chunk = make([]byte, 0, decodeChunk)
	}
	s := len(d.chunk)
	d.chunk = append(d.chunk, b...)
	return d.chunk[s:len(d.chunk):len(d.chunk)]
}

func (d *decoder) stream(b []byte) string {
	if string(b) != d.lastStream {
		d.lastStream = string(b)
	}
	return d.lastStream
}

func (d *decoder) typ(b []byte) string {
	if t, ok := d.types[string(b)]; ok {
		return t
	}
	t := string(b)
	if d.types == nil {
		d.types = make(map[string]string)
	}
	if len(d.types) < 256 {
		d.types[t] = t
	}
	return t
}

// event returns the RecordedEvent of r at pos, copying everything out of r.
func (d *decoder) event(pos uint64, r *rawRecord) events.RecordedEvent {
	return events.RecordedEvent{
		EventData: events.EventData{
			ID:       r.id,
			Type:     d.typ(r.typ),
			Metadata: d.bytes(r.metadata),
			Data:     d.bytes(r.data),
		},
		Stream:   d.stream(r.stream),
		Revision: r.revision,
		Position: events.Position(pos),
		Created:  time.Unix(0, r.created).UTC(),
		PrevHash: r.prevHash,
		Hash:     r.hash,
	}
}

// decode parses and copies the record v stored at key k of the log bucket.
func (d *decoder) decode(k, v []byte) (events.RecordedEvent, error) {
	if len(k) != 8 {
		return events.RecordedEvent{}, fmt.Errorf("log key of %d bytes", len(k))
	}
	pos := binary.BigEndian.Uint64(k)
	r, err := parseRecord(v)
	if err != nil {
		return events.RecordedEvent{}, fmt.Errorf("record at position %d: %w", pos, err)
	}
	return d.event(pos, &r), nil
}
