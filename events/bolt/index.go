package bolt

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/cqhrss/subsidyledger/events"
)

// A stream's revisions map to log positions through runs: the events of
// one append are contiguous in both the stream and the log, so one run
// (first position, count) covers them, and a stream's runs, in order,
// cover revisions 0..last without gaps. Where the runs are kept depends on
// how many the stream has:
//
//   - While it has at most maxInlineRuns, they follow the head in the
//     stream's value in the streams bucket (inline), so that an append
//     rewrites one page of the store, not two; two appends whose events
//     are also contiguous in the log share a run.
//   - Past that, they move to the index bucket, one entry per append:
//
//	key   uvarint(len(stream)) stream firstRevision(uint64 big-endian)
//	value firstPosition(uint64 big-endian) count(uint64 big-endian)
//
//     and the stream's value keeps the head alone. Stores of format 1
//     kept every stream's runs there, and still read as such.

// maxInlineRuns is how many runs a stream keeps in its value.
const maxInlineRuns = 16

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

// runs walks a stream's runs: seek finds the run holding a revision, then
// next and prev step through them. Each returns the run's first revision.
type runs interface {
	seek(rev uint64) (first uint64, r run, ok bool)
	next() (first uint64, r run, ok bool)
	prev() (first uint64, r run, ok bool)
}

// inlineRuns are the runs kept in a stream's value.
type inlineRuns struct {
	b     []byte // runLen bytes per run
	i     int
	first uint64 // of run i
}

func (in *inlineRuns) at() (uint64, run, bool) {
	if in.i < 0 || in.i >= len(in.b)/runLen {
		return 0, run{}, false
	}
	r, ok := parseRun(in.b[in.i*runLen : (in.i+1)*runLen])
	return in.first, r, ok
}

func (in *inlineRuns) seek(rev uint64) (uint64, run, bool) {
	in.i, in.first = 0, 0
	for {
		first, r, ok := in.at()
		if !ok || rev-first < r.count {
			return first, r, ok
		}
		in.i, in.first = in.i+1, first+r.count
	}
}

func (in *inlineRuns) next() (uint64, run, bool) {
	_, r, ok := in.at()
	if !ok {
		return 0, run{}, false
	}
	in.i, in.first = in.i+1, in.first+r.count
	return in.at()
}

func (in *inlineRuns) prev() (uint64, run, bool) {
	if in.i <= 0 {
		return 0, run{}, false
	}
	in.i--
	r, ok := parseRun(in.b[in.i*runLen : (in.i+1)*runLen])
	if !ok || r.count > in.first {
		return 0, run{}, false
	}
	in.first -= r.count
	return in.first, r, true
}

// indexRuns are a stream's runs in the index bucket.
type indexRuns struct {
	c      *bbolt.Cursor
	stream string
	prefix []byte
}

func newIndexRuns(b buckets, stream string) *indexRuns {
	prefix := indexKey(nil, stream, 0)
	return &indexRuns{c: b.index.Cursor(), stream: stream, prefix: prefix[:len(prefix)-8]}
}

func (x *indexRuns) parse(k, v []byte) (uint64, run, bool) {
	first, ok := runKey(k, x.prefix)
	if !ok {
		return 0, run{}, false
	}
	r, ok := parseRun(v)
	return first, r, ok
}

func (x *indexRuns) seek(rev uint64) (uint64, run, bool) {
	// The run holding rev starts at rev or is the one before.
	k, v := x.c.Seek(indexKey(nil, x.stream, rev))
	if first, ok := runKey(k, x.prefix); !ok || first != rev {
		k, v = x.c.Prev()
	}
	return x.parse(k, v)
}

func (x *indexRuns) next() (uint64, run, bool) { return x.parse(x.c.Next()) }
func (x *indexRuns) prev() (uint64, run, bool) { return x.parse(x.c.Prev()) }

// runsOf returns the runs of a stream whose value held inline runs (none:
// they are in the index bucket).
func runsOf(b buckets, stream string, inline []byte) runs {
	if len(inline) > 0 {
		return &inlineRuns{b: inline}
	}
	return newIndexRuns(b, stream)
}

// readRuns reads n events of stream from revision from, forwards or
// backwards, using its runs and a log cursor. The caller has checked that
// the revisions exist.
func readRuns(b buckets, rs runs, stream string, dir events.Direction, from, n uint64, check func() error) ([]events.RecordedEvent, error) {
	out := make([]events.RecordedEvent, 0, min(n, defaultPage))
	bad := func(format string, args ...any) error {
		return fmt.Errorf("runs of the stream: "+format, args...)
	}
	first, r, ok := rs.seek(from)
	lc := b.log.Cursor()
	var d decoder
	var pk [8]byte
	rev := from
	for uint64(len(out)) < n {
		if !ok {
			return nil, bad("no run holds revision %d", rev)
		}
		if rev < first || rev-first >= r.count {
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
			first, r, ok = rs.next()
		} else {
			rev--
			first, r, ok = rs.prev()
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
