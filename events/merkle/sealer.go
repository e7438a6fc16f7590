package merkle

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
)

const (
	sealerFormat    = "subsidyledger-merkle/1"
	defaultMaxBatch = 8192
)

var (
	bucketMeta   = []byte("meta")
	bucketHashes = []byte("hashes")
	bucketRuns   = []byte("runs")

	keyFormat   = []byte("format")
	keySize     = []byte("size")
	keyPosition = []byte("position")
)

// SealerOptions tune OpenSealer. The zero value is the production setting.
type SealerOptions struct {
	// MaxBatch caps the events sealed in one transaction (default 8192).
	MaxBatch int
	// LockTimeout is how long OpenSealer waits for another holder of the
	// file (default one second).
	LockTimeout time.Duration
	// Logger receives start-up and error lines; nil discards them.
	Logger *slog.Logger
	// Now is the clock for Stats' delays; nil means time.Now.
	Now func() time.Time
	// Linger: once the sealer has caught up (a read found fewer than
	// MaxBatch events, the last committed less than Linger ago), it reads
	// again only Linger after that commit: what commits meanwhile is sealed
	// in one transaction, so that under load the sealer costs the disk a
	// few fdatasyncs a second instead of one per store commit. It widens
	// the window between append and seal by up to Linger. A sealer behind
	// the log (its events committed longer ago) never waits. Zero (the
	// default) reads again at once.
	Linger time.Duration
}

// Stats describes the sealed tree and how far behind the log it runs.
type Stats struct {
	// Size is the number of sealed events (the tree size) and Position the
	// position of the last of them.
	Size     int64
	Position events.Position
	Root     tlog.Hash
	// Batches counts the sealer's commits since it was opened.
	Batches uint64
	// LastDelay is, for the last commit, the time from the store's commit
	// of its oldest event to the sealer's commit: the window between append
	// and seal. MaxDelay is the largest since the sealer was opened, not
	// counting the catch-up at start.
	LastDelay, MaxDelay time.Duration
}

// A run maps a stretch of consecutive positions to consecutive leaf
// indexes: key first position, value first index and count (uint64s,
// big-endian). On a store with dense positions the whole log is one run.
type run struct {
	pos   events.Position
	index int64
	count int64
}

// Sealer maintains the log's Merkle tree in a bbolt file of its own,
// following the store's global log. It is safe for concurrent use: proofs
// and roots are served while Run seals.
type Sealer struct {
	path  string
	db    *bbolt.DB
	store events.Store
	opts  SealerOptions
	log   *slog.Logger

	running atomic.Bool
	closed  atomic.Bool

	mu      sync.Mutex
	size    int64
	last    events.Position
	root    tlog.Hash
	lastRun run
	sig     chan struct{} // closed and replaced after every commit
	top     topHashes     // the upper levels of the tree, in memory
	batches uint64
	delay   time.Duration
	maxDel  time.Duration
}

// OpenSealer opens (or creates) the sealer's file at path for the log of
// store. Only one Sealer can hold a file at a time. It does not read the
// store: Run checks that the store still holds what was sealed.
//
// Errors: ErrInvalidArgument (no path or store); ErrUnavailable (the file
// cannot be opened, or is locked); ErrCorrupt (not a sealer file, or
// damaged).
func OpenSealer(path string, store events.Store, opts SealerOptions) (*Sealer, error) {
	if path == "" || store == nil {
		return nil, errorf(CodeInvalidArgument, "open sealer", "a file path and a store are required")
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = defaultMaxBatch
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	db, err := bolt.OpenDB(path, &bbolt.Options{Timeout: opts.LockTimeout, FreelistType: bbolt.FreelistMapType})
	if errors.Is(err, bolt.ErrDamaged) {
		return nil, &Error{Code: CodeUnavailable, Op: "open sealer", Detail: fmt.Sprintf("%s is damaged; move it aside and the sealer seals the log again from the start, checking it against the checkpoints on the way (see ledgerctl verify)", path), Err: err}
	}
	if err != nil {
		return nil, &Error{Code: CodeUnavailable, Op: "open sealer", Detail: fmt.Sprintf("cannot open %s (is another ledger sealing into it?)", path), Err: err}
	}
	s := &Sealer{path: path, db: db, store: store, opts: opts, log: logger, sig: make(chan struct{})}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Sealer) init() error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			if k, _ := tx.Cursor().First(); k != nil {
				return errorf(CodeCorrupt, "open sealer", "%s is a bbolt file but not a sealer's", s.path)
			}
			for _, b := range [][]byte{bucketMeta, bucketHashes, bucketRuns} {
				if _, err := tx.CreateBucket(b); err != nil {
					return err
				}
			}
			return tx.Bucket(bucketMeta).Put(keyFormat, []byte(sealerFormat))
		}
		if f := meta.Get(keyFormat); string(f) != sealerFormat {
			return errorf(CodeCorrupt, "open sealer", "%s has format %q; this program reads %q", s.path, f, sealerFormat)
		}
		if tx.Bucket(bucketHashes) == nil || tx.Bucket(bucketRuns) == nil {
			return errorf(CodeCorrupt, "open sealer", "%s lacks a bucket", s.path)
		}
		s.size = int64(u64(meta.Get(keySize)))
		s.last = events.Position(u64(meta.Get(keyPosition)))
		if k, v := tx.Bucket(bucketRuns).Cursor().Last(); k != nil {
			if len(k) != 8 || len(v) != 16 {
				return errorf(CodeCorrupt, "open sealer", "%s: malformed position run", s.path)
			}
			s.lastRun = run{events.Position(u64(k)), int64(u64(v[:8])), int64(u64(v[8:]))}
		}
		if s.lastRun.index+s.lastRun.count != s.size {
			return errorf(CodeCorrupt, "open sealer", "%s: position runs end at leaf %d, tree size is %d", s.path, s.lastRun.index+s.lastRun.count, s.size)
		}
		r := newHashReader(tx.Bucket(bucketHashes), tlog.StoredHashCount(s.size))
		root, err := tlog.TreeHash(s.size, r)
		s.root = root
		if err != nil {
			return err
		}
		return s.top.load(r, s.size)
	})
	var e *Error
	if err != nil && !errors.As(err, &e) {
		err = &Error{Code: CodeUnavailable, Op: "open sealer", Detail: s.path, Err: err}
	}
	return err
}

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func put64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// Path returns the sealer's file path.
func (s *Sealer) Path() string { return s.path }

// Stats returns the sealed tree's size, position and root, and the delays.
func (s *Sealer) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Size: s.size, Position: s.last, Root: s.root, Batches: s.batches, LastDelay: s.delay, MaxDelay: s.maxDel}
}

// Sealed returns the sealed tree: its size, the position of its last event
// and its root hash.
func (s *Sealer) Sealed() (size int64, last events.Position, root tlog.Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size, s.last, s.root
}

// WaitSealed blocks until every event up to pos is sealed and returns the
// tree size then. It waits for Run; with no Run it returns only when ctx
// ends.
//
// Errors: ctx's error; ErrClosed.
func (s *Sealer) WaitSealed(ctx context.Context, pos events.Position) (int64, error) {
	for {
		s.mu.Lock()
		size, last, sig := s.size, s.last, s.sig
		s.mu.Unlock()
		if last >= pos {
			return size, nil
		}
		if s.closed.Load() {
			return 0, errorf(CodeClosed, "wait sealed", "")
		}
		select {
		case <-sig:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// Run seals the log: it checks that the store still holds the last sealed
// event as sealed, then follows the global log from there, sealing events
// as they commit, until ctx ends (then it returns nil). Only one Run may be
// active.
//
// Errors: ErrTampered (the store no longer holds what was sealed: truncated,
// replaced or altered — stop and investigate; deleting the sealer's file
// re-seals the log as it now is — or an event to seal does not match its
// own hash link); ErrUnavailable (the sealer's file cannot
// be written); the store's errors (ErrClosed, ErrCorrupt, ...).
func (s *Sealer) Run(ctx context.Context) error {
	if s.closed.Load() {
		return errorf(CodeClosed, "run", "")
	}
	if !s.running.CompareAndSwap(false, true) {
		return errorf(CodeInvalidArgument, "run", "the sealer is already running")
	}
	defer s.running.Store(false)
	if err := s.checkStore(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	size, last, _ := s.Sealed()
	s.log.Info("sealer following the log", "size", size, "position", last, "file", s.path)

	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub, err := s.store.Subscribe(subCtx, last, events.Filter{})
	if err != nil {
		return fmt.Errorf("merkle: subscribing to the log after position %d: %w", last, err)
	}
	defer sub.Close()
	// Two pages take turns: one is read while the other is sealed.
	ch, free := make(chan *events.Page, 2), make(chan *events.Page, 2)
	free <- new(events.Page)
	free <- new(events.Page)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var due time.Time // the next read waits until then
		for {
			var p *events.Page
			select {
			case p = <-free:
			case <-subCtx.Done():
				return
			}
			// At most Linger: the store's clock (EventStoreDB's) may run
			// ahead of this one.
			if d := min(s.opts.Linger, due.Sub(s.opts.Now())); d > 0 {
				select {
				case <-time.After(d):
				case <-subCtx.Done():
					return
				}
			}
			if err := events.NextPage(subCtx, sub, s.opts.MaxBatch, p); err != nil {
				errc <- err
				return
			}
			due = time.Time{}
			if n := len(p.Events); n < s.opts.MaxBatch {
				// Caught up, unless the page's events are older than
				// Linger (a subscription may hand over less than
				// MaxBatch while far behind): let the next commits gather.
				due = p.Events[n-1].Created.Add(s.opts.Linger)
			}
			ch <- p // room for both pages
		}
	}()
	defer wg.Wait()
	defer cancel()

	// Delays count only once the catch-up is over.
	head, err := s.store.Head(ctx)
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("merkle: following the log: %w", err)
		case p := <-ch:
			if err := s.seal(p.Events, p.Events[0].Position > head); err != nil {
				return err
			}
			free <- p
		}
	}
}

// checkStore checks that the store still holds the last sealed event, as
// sealed.
func (s *Sealer) checkStore(ctx context.Context) error {
	size, last, _ := s.Sealed()
	if size == 0 {
		return nil
	}
	head, err := s.store.Head(ctx)
	if err != nil {
		return err
	}
	if head < last {
		return errorf(CodeTampered, "check store", "the log ends at position %d, but %d events up to position %d were sealed: it was truncated or replaced", head, size, last)
	}
	recs, err := s.store.ReadAll(ctx, last-1, 1)
	if err != nil {
		return err
	}
	if len(recs) == 0 || recs[0].Position != last {
		return errorf(CodeTampered, "check store", "the log has no event at position %d, the last sealed one", last)
	}
	var want tlog.Hash
	err = s.db.View(func(tx *bbolt.Tx) error {
		hs, err := newHashReader(tx.Bucket(bucketHashes), tlog.StoredHashCount(size)).ReadHashes([]int64{tlog.StoredHashIndex(0, size-1)})
		if err == nil {
			want = hs[0]
		}
		return err
	})
	if err != nil {
		return err
	}
	if LeafHash(&recs[0]) != want {
		return errorf(CodeTampered, "check store", "the event at position %d (%q revision %d) differs from the one sealed there", last, recs[0].Stream, recs[0].Revision)
	}
	return nil
}

// seal appends batch to the tree in one transaction.
func (s *Sealer) seal(batch []events.RecordedEvent, live bool) error {
	s.mu.Lock()
	size, last, lr := s.size, s.last, s.lastRun
	s.mu.Unlock()
	var root tlog.Hash
	var added [][]tlog.Hash // stored hashes per leaf, for the in-memory top levels
	runs := make([]run, 0, 1)
	err := s.db.Update(func(tx *bbolt.Tx) error {
		hb := tx.Bucket(bucketHashes)
		hb.FillPercent = 1 // append-only keys
		r := newHashReader(hb, tlog.StoredHashCount(size))
		r.pending = make([]tlog.Hash, 0, tlog.StoredHashCount(size+int64(len(batch)))-r.start)
		n := size
		for i := range batch {
			e := &batch[i]
			if e.Position <= last {
				return errorf(CodeTampered, "seal", "the log delivered position %d after %d", e.Position, last)
			}
			if events.LinkHash(e.PrevHash, e.Stream, e.Revision, e.EventData) != e.Hash {
				return errorf(CodeTampered, "seal", "the event at position %d (%q revision %d) does not match its own hash link: it is not sealed", e.Position, e.Stream, e.Revision)
			}
			hs, err := tlog.StoredHashesForRecordHash(n, LeafHash(e), r)
			if err != nil {
				return err
			}
			r.pending = append(r.pending, hs...)
			if len(hs) > topLevel {
				added = append(added, hs)
			}
			if lr.count > 0 && e.Position == lr.pos+events.Position(lr.count) {
				lr.count++
			} else {
				if lr.count > 0 {
					runs = append(runs, lr)
				}
				lr = run{e.Position, n, 1}
			}
			n++
			last = e.Position
		}
		runs = append(runs, lr)
		var err error
		if root, err = tlog.TreeHash(n, r); err != nil {
			return err
		}
		if err := writeHashes(hb, r.start, r.pending); err != nil {
			return err
		}
		rb := tx.Bucket(bucketRuns)
		for _, x := range runs {
			if err := rb.Put(put64(nil, uint64(x.pos)), put64(put64(nil, uint64(x.index)), uint64(x.count))); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keySize, put64(nil, uint64(n))); err != nil {
			return err
		}
		size = n
		return meta.Put(keyPosition, put64(nil, uint64(last)))
	})
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			err = &Error{Code: CodeUnavailable, Op: "seal", Detail: fmt.Sprintf("cannot write %s", s.path), Err: err}
		}
		return err
	}
	for _, hs := range added {
		s.top.add(hs)
	}
	delay := s.opts.Now().Sub(batch[0].Created)
	s.mu.Lock()
	s.size, s.last, s.root, s.lastRun = size, last, root, lr
	s.batches++
	if live {
		s.delay = delay
		s.maxDel = max(s.maxDel, delay)
	}
	close(s.sig)
	s.sig = make(chan struct{})
	s.mu.Unlock()
	return nil
}

// Close closes the sealer's file. Stop Run (end its context and wait for
// it) first. Later calls fail with ErrClosed.
func (s *Sealer) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return errorf(CodeClosed, "close", "")
	}
	s.mu.Lock()
	close(s.sig)
	s.sig = make(chan struct{})
	s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return &Error{Code: CodeUnavailable, Op: "close", Detail: s.path, Err: err}
	}
	return nil
}
