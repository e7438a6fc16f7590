package merkle

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
)

// The tests here tamper with bolt store files through bbolt directly, as
// whoever holds the file could; the layout is events/bolt's (doc.go).

// tamperedStore builds a store with build, closes it, applies edit to its
// file in one bbolt transaction and opens it again read-only, as ledgerctl
// verify does.
func tamperedStore(t *testing.T, build func(s *bolt.Store), edit func(tx *bbolt.Tx) error) *bolt.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := bolt.Open(path, bolt.Options{InitialMmapSize: 1 << 24})
	if err != nil {
		t.Fatal(err)
	}
	build(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(edit); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s, err = bolt.Open(path, bolt.Options{ReadOnly: true, InitialMmapSize: 1 << 24})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func posKey(p uint64) []byte { return binary.BigEndian.AppendUint64(nil, p) }

// indexKey is a key of the index bucket: a run of stream from revision.
func indexKey(stream string, revision uint64) []byte {
	k := binary.AppendUvarint(nil, uint64(len(stream)))
	k = append(k, stream...)
	return binary.BigEndian.AppendUint64(k, revision)
}

// editStream rewrites a stream's value in the streams bucket: its head
// (revision, position: uint64 each; hash: 32 bytes), then its inline runs
// (position, count: uint64 each).
func editStream(tx *bbolt.Tx, stream string, edit func(v []byte)) error {
	b := tx.Bucket([]byte("streams"))
	v := append([]byte(nil), b.Get([]byte(stream))...)
	if len(v) < 48 {
		return fmt.Errorf("stream %q has a value of %d bytes", stream, len(v))
	}
	edit(v)
	return b.Put([]byte(stream), v)
}

// verifyStore runs VerifyLog on s with one worker and with several, which
// must agree.
func verifyStore(t *testing.T, s events.Store, opts VerifyOptions) VerifyReport {
	t.Helper()
	rep, err := VerifyLog(ctxT(t), s, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Workers = 1
	rep1, err := VerifyLog(ctxT(t), s, opts)
	if err != nil || fmt.Sprint(rep1.Problems) != fmt.Sprint(rep.Problems) || rep1.Events != rep.Events {
		t.Errorf("one worker: %v %d events %v; many: %d events %v", err, rep1.Events, rep1.Problems, rep.Events, rep.Problems)
	}
	return rep
}

// TestVerifyLogAnchoring: a walk that checked no checkpoint is not OK
// however well the log holds together, since whoever rewrote the file could
// have recomputed every hash; one that did says how much of the log its
// last checkpoint covers.
func TestVerifyLogAnchoring(t *testing.T) {
	skey, vkey, _ := GenerateKey(nil, "")
	sg, _ := NewSigner(skey)
	v, _ := NewVerifier(vkey)
	// build writes 50 events and, with cp, a checkpoint of them to the log.
	build := func(cp bool) func(s *bolt.Store) {
		return func(s *bolt.Store) {
			fill(t, s, 0, 50)
			if !cp {
				return
			}
			tr := treeOf(readAll(t, s), 50)
			m, err := sg.Sign(50, tr.Root(), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			ev, _ := CheckpointEvent(m)
			if _, err := s.Append(ctxT(t), CheckpointStream, events.Any, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	plain := tamperedStore(t, build(false), nil)
	tr := treeOf(readAll(t, plain), 30)
	given := Checkpoint{Origin: "o", Size: 30, Root: tr.Root()}
	h, _ := tlog.TreeHash(0, nil)
	empty := Checkpoint{Origin: "o", Size: 0, Root: h}
	// Whoever deletes the log's checkpoints (the last event here) and
	// their stream's head leaves a log that holds together.
	dropCheckpoints := func(tx *bbolt.Tx) error {
		if err := tx.Bucket([]byte("log")).Delete(posKey(51)); err != nil {
			return err
		}
		return tx.Bucket([]byte("streams")).Delete([]byte(CheckpointStream))
	}
	for _, tc := range []struct {
		name  string
		s     events.Store
		opts  VerifyOptions
		want  string // the verdict
		size  int64  // of the anchor
		after int64  // events after it
	}{
		{"no checkpoint", plain, VerifyOptions{}, VerdictUnanchored, 0, 0},
		{"a given checkpoint", plain, VerifyOptions{Trusted: []Checkpoint{given}}, VerdictOK, 30, 20},
		{"the log's checkpoint without a key", tamperedStore(t, build(true), nil), VerifyOptions{}, VerdictUnanchored, 0, 0},
		{"the log's checkpoint with the key", tamperedStore(t, build(true), nil), VerifyOptions{Verifier: v}, VerdictOK, 50, 1},
		{"the log's checkpoints deleted", tamperedStore(t, build(true), dropCheckpoints), VerifyOptions{Verifier: v}, VerdictUnanchored, 0, 0},
		{"an empty log", tamperedStore(t, func(*bolt.Store) {}, nil), VerifyOptions{}, VerdictOK, 0, 0},
		{"only the empty tree's checkpoint", plain, VerifyOptions{Trusted: []Checkpoint{empty}}, VerdictUnanchored, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := verifyStore(t, tc.s, tc.opts)
			if !rep.OK() {
				t.Fatalf("problems: %v", rep.Problems)
			}
			anchored := tc.want == VerdictOK && rep.Events > 0
			if got := rep.Verdict(); got != tc.want || rep.Anchored != anchored || rep.AnchorSize != tc.size || rep.AfterAnchor != tc.after {
				t.Errorf("verdict %s, anchored %v at size %d with %d events after; want %s, %v, %d, %d",
					got, rep.Anchored, rep.AnchorSize, rep.AfterAnchor, tc.want, anchored, tc.size, tc.after)
			}
			if rep.Anchored && rep.AnchorPosition != events.Position(tc.size) { // dense positions: position = size
				t.Errorf("anchor position %d; want %d", rep.AnchorPosition, tc.size)
			}
		})
	}
}

// indexStore writes a log whose streams keep their runs in every way the
// store keeps them: trainee-0..4 inline (interleaved appends of 1 to 7
// events), "long" in the index bucket (40 appends of one, interleaved with
// "other"), and "tail" at the end of the log, two appends of one.
func indexStore(t *testing.T) func(s *bolt.Store) {
	return func(s *bolt.Store) {
		fill(t, s, 0, 120)
		for i := range 40 {
			for _, stream := range []string{"long", "other"} {
				ev := events.EventData{ID: events.DeriveID("index", stream, fmt.Sprint(i)), Type: "test.Event", Data: []byte(fmt.Sprint(i))}
				if _, err := s.Append(ctxT(t), stream, events.Any, ev); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i := range 2 {
			ev := events.EventData{ID: events.DeriveID("index", "tail", fmt.Sprint(i)), Type: "test.Event", Data: []byte{byte(i)}}
			if _, err := s.Append(ctxT(t), "tail", events.Any, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestVerifyLogChecksStreamIndex: a stream index that disagrees with the
// log (ReadStream, audits and appends trust it) is a problem naming the
// stream, what the index says and what the log says, though every hash link
// holds.
func TestVerifyLogChecksStreamIndex(t *testing.T) {
	// The log's last event is "tail" revision 1 at position 202; "long"
	// has revisions 0 to 39 at positions 121, 123, ..., 199.
	const last = 202
	for _, tc := range []struct {
		name   string
		edit   func(tx *bbolt.Tx) error
		stream string
		wants  []string // in the problem's text
	}{
		{"a head revision lowered (inline runs)", func(tx *bbolt.Tx) error {
			return editStream(tx, "trainee-1", func(v []byte) { binary.BigEndian.PutUint64(v, 9) })
		}, "trainee-1", []string{"index of stream \"trainee-1\": the index says head revision 9 at position 108; the log says head revision 22 at position 108"}},
		{"a head revision lowered (indexed runs)", func(tx *bbolt.Tx) error {
			return editStream(tx, "long", func(v []byte) { binary.BigEndian.PutUint64(v, 9) })
		}, "long", []string{"the index says head revision 9 at position 199; the log says head revision 39 at position 199"}},
		{"a head position moved", func(tx *bbolt.Tx) error {
			return editStream(tx, "long", func(v []byte) { binary.BigEndian.PutUint64(v[8:], 197) })
		}, "long", []string{"the index says head revision 39 at position 197; the log says head revision 39 at position 199"}},
		{"a head hash altered", func(tx *bbolt.Tx) error {
			return editStream(tx, "other", func(v []byte) { v[20] ^= 1 })
		}, "other", []string{"the index says head revision 39 at position 200 with hash", "the log says hash"}},
		{"the log's last event deleted", func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte("log")).Delete(posKey(last))
		}, "tail", []string{"the index says head revision 1 at position 202; the log says head revision 0 at position 201"}},
		{"a stream's head deleted", func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte("streams")).Delete([]byte("trainee-2"))
		}, "trainee-2", []string{"the index says nothing of the stream; the log says head revision"}},
		{"a stream the log lacks", func(tx *bbolt.Tx) error {
			b := tx.Bucket([]byte("streams"))
			return b.Put([]byte("ghost"), append([]byte(nil), b.Get([]byte("tail"))...))
		}, "ghost", []string{"the index says head revision 1 at position 202; the log says the stream has no events"}},
		{"an inline run moved", func(tx *bbolt.Tx) error {
			return editStream(tx, "trainee-0", func(v []byte) { binary.BigEndian.PutUint64(v[48:], binary.BigEndian.Uint64(v[48:])+1) })
		}, "trainee-0", []string{"the index says a run of 1 event from revision 0 at position 2: revision 0 at position 2; the log says position 2 holds revision 0 of stream \"trainee-1\""}},
		{"an indexed run deleted", func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte("index")).Delete(indexKey("long", 5))
		}, "long", []string{"the index says a run of 1 event from revision 6 at position 133; the log says revision 5 of the stream comes next"}},
		{"the last indexed run deleted", func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte("index")).Delete(indexKey("long", 39))
		}, "long", []string{"the index says runs for revisions 0 to 38 only; the log says the stream's head is revision 39"}},
		{"an indexed run's count raised", func(tx *bbolt.Tx) error {
			v := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 121), 2)
			if err := tx.Bucket([]byte("index")).Put(indexKey("long", 0), v); err != nil {
				return err
			}
			return tx.Bucket([]byte("index")).Delete(indexKey("long", 1))
		}, "long", []string{"a run of 2 events from revision 0 at position 121: revision 1 at position 122; the log says position 122 holds revision 0 of stream \"other\""}},
		{"runs of a stream with no head", func(tx *bbolt.Tx) error {
			v := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 202), 1)
			return tx.Bucket([]byte("index")).Put(indexKey("ghost", 0), v)
		}, "ghost", []string{"the index says runs in the index bucket from revision 0 on, for a stream with no head in the streams bucket; the log says position 202 holds revision 1 of stream \"tail\""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tamperedStore(t, indexStore(t), tc.edit)
			// Every hash link holds: only the index shows the change.
			if lrep, err := events.Verify(ctxT(t), s, nil); err != nil || lrep.Break != nil {
				t.Fatalf("events.Verify = %v, %v; want no break", lrep.Break, err)
			}
			rep := verifyStore(t, s, VerifyOptions{})
			if !rep.IndexChecked || rep.Verdict() != VerdictBroken {
				t.Fatalf("index checked %v, verdict %s, problems %v; want a checked index and BROKEN", rep.IndexChecked, rep.Verdict(), rep.Problems)
			}
			var found bool
			for _, p := range rep.Problems {
				if p.Kind != ProblemIndex || p.Stream != tc.stream {
					t.Errorf("problem %s; want only index problems of stream %q", p.String(), tc.stream)
					continue
				}
				found = true
				for _, w := range tc.wants {
					if !strings.Contains(p.String(), w) {
						t.Errorf("problem %s; want it to say %q", p.String(), w)
					}
				}
			}
			if !found {
				t.Errorf("no index problem of stream %q in %v", tc.stream, rep.Problems)
			}
		})
	}
	t.Run("untouched", func(t *testing.T) {
		s := tamperedStore(t, indexStore(t), nil)
		rep := verifyStore(t, s, VerifyOptions{})
		if !rep.OK() || !rep.IndexChecked || rep.Streams != 8 || rep.Events != last {
			t.Errorf("untouched store: %d events, %d streams, index checked %v, problems %v", rep.Events, rep.Streams, rep.IndexChecked, rep.Problems)
		}
	})
	t.Run("many problems", func(t *testing.T) {
		// Every stream's head deleted, and many streams: the report lists
		// maxIndexProblems, the first by position, and counts the rest.
		s := tamperedStore(t, func(s *bolt.Store) {
			for i := range 30 {
				ev := events.EventData{ID: events.DeriveID("many", fmt.Sprint(i)), Type: "test.Event", Data: []byte{byte(i)}}
				if _, err := s.Append(ctxT(t), fmt.Sprint("s-", i), events.NoStream, ev); err != nil {
					t.Fatal(err)
				}
			}
		}, func(tx *bbolt.Tx) error {
			b := tx.Bucket([]byte("streams"))
			var keys [][]byte
			b.ForEach(func(k, _ []byte) error { keys = append(keys, append([]byte(nil), k...)); return nil })
			for _, k := range keys {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		rep := verifyStore(t, s, VerifyOptions{})
		if len(rep.Problems) != maxIndexProblems {
			t.Fatalf("%d problems listed; want %d", len(rep.Problems), maxIndexProblems)
		}
		for i, p := range rep.Problems {
			if p.Kind != ProblemIndex || p.Position != events.Position(i+1) {
				t.Errorf("problem %d: %s; want the index problem of position %d", i, p.String(), i+1)
			}
		}
		if d := rep.Problems[maxIndexProblems-1].Detail; !strings.HasSuffix(d, "(and 10 more index problems not listed)") {
			t.Errorf("the last problem says %q; want it to count the 10 not listed", d)
		}
	})
}

// TestVerifyLogReportsMissingPositions: on a store whose positions have no
// gaps, a position the walk skips is an event removed, reported where it
// was; the last event removed shows in the stream index.
func TestVerifyLogReportsMissingPositions(t *testing.T) {
	deleteAt := func(ps ...uint64) func(tx *bbolt.Tx) error {
		return func(tx *bbolt.Tx) error {
			for _, p := range ps {
				if err := tx.Bucket([]byte("log")).Delete(posKey(p)); err != nil {
					return err
				}
			}
			return nil
		}
	}
	var cp Checkpoint // of the first 40 events of the last store built
	build := func(s *bolt.Store) {
		fill(t, s, 0, 60)
		tr := treeOf(readAll(t, s), 40)
		cp = Checkpoint{Origin: "o", Size: 40, Root: tr.Root()}
	}
	for _, tc := range []struct {
		name string
		edit func(tx *bbolt.Tx) error
		want string // the first problem
	}{
		{"one", deleteAt(25), "missing: position 25 missing (the next event is at position 26)"},
		{"three", deleteAt(25, 26, 27), "missing: positions 25 to 27 missing (the next event is at position 28)"},
		{"the first", deleteAt(1), "missing: position 1 missing (the next event is at position 2)"},
		{"the last, after the last checkpoint", deleteAt(60), "index of stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := verifyStore(t, tamperedStore(t, build, tc.edit), VerifyOptions{Trusted: []Checkpoint{cp}})
			if rep.OK() || !strings.HasPrefix(rep.Problems[0].String(), tc.want) {
				t.Fatalf("problems %v; want the first to start %q", rep.Problems, tc.want)
			}
		})
	}
}

// TestVerifyLogSalvagesUnreadablePage: a record that does not decode fails
// the read of its whole page; the walk reads that page again one event at a
// time, checks the events before the record and reports the record where
// it is.
func TestVerifyLogSalvagesUnreadablePage(t *testing.T) {
	s := tamperedStore(t, func(s *bolt.Store) { fill(t, s, 0, 100) }, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("log")).Put(posKey(30), []byte("ten bytes!")) // shorter than its header
	})
	rep := verifyStore(t, s, VerifyOptions{})
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != ProblemUnreadable || rep.Problems[0].Position != 30 || rep.Events != 29 || rep.Head != 29 {
		t.Fatalf("%d events walked up to position %d, problems %v; want 29 up to 29, and position 30 unreadable", rep.Events, rep.Head, rep.Problems)
	}
	if p := rep.Problems[0].String(); !strings.Contains(p, "unreadable at position 30: the store cannot read the event at this position") ||
		!strings.Contains(p, "record at position 30: record of 10 bytes is shorter than its 97-byte header") {
		t.Errorf("problem %s", p)
	}
}

// pagingStore records the page sizes VerifyLog reads the checkpoints'
// stream in.
type pagingStore struct {
	*bolt.Store
	maxes []int
}

func (s *pagingStore) ReadStream(ctx context.Context, stream string, dir events.Direction, from uint64, max int) ([]events.RecordedEvent, error) {
	if stream == CheckpointStream {
		s.maxes = append(s.maxes, max)
	}
	return s.Store.ReadStream(ctx, stream, dir, from, max)
}

// TestVerifyLogReadsCheckpointsInPages: the log's checkpoints (one a
// minute, for years) are read a page at a time, and the report keeps none
// of their notes.
func TestVerifyLogReadsCheckpointsInPages(t *testing.T) {
	defer func(n int) { checkpointPage = n }(checkpointPage)
	checkpointPage = 2
	skey, vkey, _ := GenerateKey(nil, "")
	sg, _ := NewSigner(skey)
	v, _ := NewVerifier(vkey)
	var first Checkpoint
	s := tamperedStore(t, func(s *bolt.Store) {
		for i := range 5 {
			fill(t, s, 10*i, 10)
			evs := readAll(t, s)
			tr := treeOf(evs, len(evs))
			m, err := sg.Sign(tr.Size(), tr.Root(), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first, _ = v.OpenMessage(m)
			}
			ev, _ := CheckpointEvent(m)
			if _, err := s.Append(ctxT(t), CheckpointStream, events.Any, ev); err != nil {
				t.Fatal(err)
			}
		}
	}, nil)
	if len(first.Note) == 0 {
		t.Fatal("the given checkpoint has no note")
	}
	ps := &pagingStore{Store: s}
	rep, err := VerifyLog(ctxT(t), ps, VerifyOptions{Verifier: v, Trusted: []Checkpoint{first}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict() != VerdictOK || len(rep.Checkpoints) != 6 || rep.AnchorSize != 54 || rep.AfterAnchor != 1 {
		t.Fatalf("verdict %s, %d checkpoints, anchor %d with %d after; want OK, 6, 54, 1", rep.Verdict(), len(rep.Checkpoints), rep.AnchorSize, rep.AfterAnchor)
	}
	if len(ps.maxes) != 3 {
		t.Errorf("the checkpoints' stream read %d times, pages of %v; want 3 pages of 2", len(ps.maxes), ps.maxes)
	}
	for _, m := range ps.maxes {
		if m <= 0 || m > checkpointPage {
			t.Errorf("the checkpoints' stream read in pages of %v; want at most %d at a time", ps.maxes, checkpointPage)
			break
		}
	}
	for _, c := range rep.Checkpoints {
		if !c.OK || c.Checkpoint.Note != nil {
			t.Errorf("checkpoint %s from %s: OK %v, note of %d bytes; want OK and no note", c.Checkpoint, c.Source, c.OK, len(c.Checkpoint.Note))
		}
	}
}
