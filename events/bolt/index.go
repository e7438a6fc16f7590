package bolt

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cqhrss/subsidyledger/events"
)

// The index bucket maps a stream's revisions to log positions. The events
// of one append are contiguous in both, so it holds one entry per append (a
// run) rather than one per event:
//
//	key   uvarint(len(stream)) stream firstRevision(uint64 big-endian)
//	value firstPosition(uint64 big-endian) count(uint64 big-endian)
//
// A stream's runs are contiguous in key order and cover revisions 0..last
// without gaps.

type run struct {
	position uint64 // of the run's first event
	count    uint64
}

const runLen = 16

func putRun(dst []byte, r run) {
	binary.BigEndian.PutUint64(dst, r.position)
	binary.BigEndian.PutUint64(dst[8:], r.count)
}

func parseRun(v []byte) (run, bool) {
	if len(v) != runLen {
		return run{}, false
	}
	r := run{binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])}
	return r, r.count > 0
}

func indexKeyLen(stream string) int { return uvarintLen(len(stream)) + len(stream) + 8 }

// indexKey appends the index key of stream at revision to dst.
func indexKey(dst []byte, stream string, revision uint64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(stream)))
	dst = append(dst, stream...)
	return binary.BigEndian.AppendUint64(dst, revision)
}

// readRuns reads n events of stream from revision from, forwards or
// backwards, using the index runs and a log cursor. The caller has checked
// that the revisions exist.
func readRuns(b buckets, stream string, dir events.Direction, from, n uint64, check func() error) ([]events.RecordedEvent, error) {
	out := make([]events.RecordedEvent, 0, min(n, defaultPage))
	prefix := indexKey(nil, stream, 0)
	prefix = prefix[:len(prefix)-8]
	bad := func(format string, args ...any) error {
		return fmt.Errorf("index of the stream: "+format, args...)
	}
	ic := b.index.Cursor()
	// The run holding from starts at from or is the one before.
	k, v := ic.Seek(indexKey(nil, stream, from))
	if first, ok := runKey(k, prefix); !ok || first != from {
		k, v = ic.Prev()
	}
	lc := b.log.Cursor()
	var d decoder
	var pk [8]byte
	rev := from
	for uint64(len(out)) < n {
		first, ok := runKey(k, prefix)
		if !ok {
			return nil, bad("no run holds revision %d", rev)
		}
		r, ok := parseRun(v)
		if !ok || rev < first || rev-first >= r.count {
			return nil, bad("the run at revision %d does not hold revision %d", first, rev)
		}
		// Walk the run's events from rev, in the log.
		binary.BigEndian.PutUint64(pk[:], r.position+(rev-first))
		lk, lv := lc.Seek(pk[:])
		for {
			if err := check(); err != nil {
				return nil, err
			}
			e, err := d.decode(lk, lv)
			if err != nil {
				return nil, err
			}
			if e.Stream != stream || e.Revision != rev {
				return nil, bad("revision %d points at position %d, which holds another event", rev, e.Position)
			}
			out = append(out, e)
			if uint64(len(out)) == n {
				return out, nil
			}
			if dir == events.Forwards {
				if rev == first+r.count-1 {
					break
				}
				rev++
				lk, lv = lc.Next()
			} else {
				if rev == first {
					break
				}
				rev--
				lk, lv = lc.Prev()
			}
		}
		if dir == events.Forwards {
			rev++
			k, v = ic.Next()
		} else {
			rev--
			k, v = ic.Prev()
		}
	}
	return out, nil
}

// runKey returns the first revision of index key k if k belongs to the
// stream whose keys start with prefix.
func runKey(k, prefix []byte) (uint64, bool) {
	if len(k) != len(prefix)+8 || !bytes.HasPrefix(k, prefix) {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[len(prefix):]), true
}
