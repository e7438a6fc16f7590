package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"go.etcd.io/bbolt"

	"github.com/cqhrss/subsidyledger/events"
)

// DensePositions reports true: positions are 1, 2, 3, ... in commit order,
// without gaps (merkle.DenseLog), so a walk of the log that finds one
// missing has found an event removed.
func (s *Store) DensePositions() bool { return true }

// CheckIndex checks the store's stream index (the streams and index
// buckets) against its log, in one read transaction, for merkle.VerifyLog
// (merkle.IndexChecker). ReadStream, audits and appends trust the index
// without looking at the log: a stale head makes a stream end early and the
// next append land at a revision that breaks its hash chain.
//
// For each stream the streams bucket holds, it calls head with the head
// recorded there (last revision, its position and hash). When head returns
// true (the head is the log's), it checks that the stream's runs cover
// revisions 0 to the head's without gaps and that the first and last
// position of each run hold the stream's events at those revisions. It also
// reports the index bucket's entries for streams that keep no runs there.
// Each mismatch goes to bad: the stream, what the index says and what the
// log says. Reading two events per run, it costs O(streams + runs) reads
// and keeps nothing per stream.
//
// If the log does not end at last (it grew after the walk that computed
// the heads), nothing is checked and checked is false.
//
// Errors: ErrClosed; ErrCorrupt (a damaged page); ctx's error.
func (s *Store) CheckIndex(ctx context.Context, last events.Position,
	head func(stream string, revision uint64, position events.Position, hash events.Hash) bool,
	bad func(stream, index, log string)) (checked bool, err error) {
	err = s.view("check index", "", func(tx *bbolt.Tx) error {
		b := bucketsOf(tx)
		if lastPosition(b.log) != uint64(last) {
			return nil
		}
		checked = true
		x := indexCheck{b: b, log: b.log.Cursor(), bad: bad}
		c := b.streams.Cursor()
		n := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			name := string(k)
			h, inline, ok := parseStream(v)
			if !ok {
				bad(name, fmt.Sprintf("a head of %d bytes that does not decode", len(v)), "(not compared)")
				continue
			}
			if head(name, h.revision, events.Position(h.position), h.hash) {
				x.runs(name, h, inline)
			}
		}
		return x.strays(ctx)
	})
	return checked, err
}

// indexCheck is CheckIndex's state inside its transaction.
type indexCheck struct {
	b buckets
	// log looks events up: one cursor for all, since Bucket.Get
	// allocates one per call.
	log *bbolt.Cursor
	bad func(stream, index, log string)
}

// runs checks the runs of stream, whose head h matches the log: they must
// run from revision 0 to h.revision without gaps, each to positions that
// hold the stream's events at those revisions. It reports the first
// mismatch only: one is enough to distrust the stream's index.
func (x *indexCheck) runs(stream string, h head, inline []byte) {
	next := uint64(0) // the revision the next run must start at
	// check checks one run; false when it reported a mismatch.
	check := func(first uint64, r run) bool {
		// What the index says, formatted only for a mismatch.
		desc := func() string {
			evs := "events"
			if r.count == 1 {
				evs = "event"
			}
			return fmt.Sprintf("a run of %d %s from revision %d at position %d", r.count, evs, first, r.position)
		}
		switch {
		case first != next, r.count == 0:
			x.bad(stream, desc(), fmt.Sprintf("revision %d of the stream comes next", next))
			return false
		case first > h.revision || r.count-1 > h.revision-first:
			x.bad(stream, desc(), fmt.Sprintf("the stream ends at revision %d", h.revision))
			return false
		}
		// The run's first and last events: the walk found each stream's
		// revisions in increasing positions, so those between them, as
		// many as the positions between, are the stream's too.
		for i := uint64(0); ; i = r.count - 1 {
			if !x.holds(r.position, i, stream, first+i) {
				x.bad(stream, desc()+fmt.Sprintf(": revision %d at position %d", first+i, r.position+i), x.what(r.position, i))
				return false
			}
			if i == r.count-1 {
				break
			}
		}
		next = first + r.count
		return true
	}
	if len(inline) > 0 {
		for i := 0; i < len(inline)/runLen; i++ {
			r, _ := parseRun(inline[i*runLen : (i+1)*runLen])
			if !check(next, r) {
				return
			}
		}
	} else {
		prefix := indexKey(nil, stream, 0)
		prefix = prefix[:len(prefix)-8]
		c := x.b.index.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			first, ok := runKey(k, prefix)
			r, _ := parseRun(v) // a run of no events is check's to report
			if !ok || len(v) != runLen {
				x.bad(stream, fmt.Sprintf("an index entry of %d and %d bytes that does not decode", len(k), len(v)), "(not compared)")
				return
			}
			if !check(first, r) {
				return
			}
		}
	}
	if next != h.revision+1 {
		runs := "no runs"
		if next > 0 {
			runs = fmt.Sprintf("runs for revisions 0 to %d only", next-1)
		}
		x.bad(stream, runs, fmt.Sprintf("the stream's head is revision %d", h.revision))
	}
}

// holds reports whether position p+i (p, i as a run has them) holds
// revision rev of stream.
func (x *indexCheck) holds(p, i uint64, stream string, rev uint64) bool {
	v := x.event(p, i)
	if v == nil {
		return false
	}
	r, err := parseRecord(v)
	return err == nil && string(r.stream) == stream && r.revision == rev
}

// event returns the record at position p+i, nil if there is none.
func (x *indexCheck) event(p, i uint64) []byte {
	if p > math.MaxUint64-i {
		return nil
	}
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], p+i)
	if lk, v := x.log.Seek(k[:]); bytes.Equal(lk, k[:]) {
		return v
	}
	return nil
}

// what says what position p+i holds, for a mismatch.
func (x *indexCheck) what(p, i uint64) string {
	v := x.event(p, i)
	switch {
	case p > math.MaxUint64-i:
		return fmt.Sprintf("there is no position %d+%d", p, i)
	case v == nil:
		return fmt.Sprintf("position %d holds no event", p+i)
	}
	r, err := parseRecord(v)
	if err != nil {
		return fmt.Sprintf("the record at position %d does not decode: %v", p+i, err)
	}
	return fmt.Sprintf("position %d holds revision %d of stream %q", p+i, r.revision, r.stream)
}

// strays reports the index bucket's runs of streams that keep none there:
// streams with no head, or with their runs inline. (The runs of the other
// streams were checked with their heads.)
func (x *indexCheck) strays(ctx context.Context) error {
	c := x.b.index.Cursor()
	var prev []byte // the stream of the last entry looked at
	n := 0
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		l, m := binary.Uvarint(k)
		if m <= 0 || l > uint64(len(k)-m) || uint64(len(k)-m)-l != 8 {
			x.bad("", fmt.Sprintf("an index entry whose key (%d bytes) does not decode", len(k)), "(not compared)")
			continue
		}
		stream := k[m : m+int(l)]
		if bytes.Equal(stream, prev) {
			continue
		}
		prev = append(prev[:0], stream...)
		hv := x.b.streams.Get(stream)
		if hv != nil && len(hv) == headLen {
			continue // its runs are here, and were checked
		}
		where := "no head in the streams bucket"
		if hv != nil {
			where = "a head that keeps its runs inline"
		}
		first := binary.BigEndian.Uint64(k[len(k)-8:])
		log := "(not compared)"
		if r, ok := parseRun(v); ok {
			log = x.what(r.position, 0)
		}
		x.bad(string(stream), fmt.Sprintf("runs in the index bucket from revision %d on, for a stream with %s", first, where), log)
	}
	return nil
}
