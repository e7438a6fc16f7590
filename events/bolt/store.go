package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/cqhrss/subsidyledger/events"
)

// MaxStreamLen is the longest stream name, in bytes, the store accepts.
const MaxStreamLen = 1024

const (
	formatKey = "format"
	// formatValue marks the files this program writes. Format 2 keeps a
	// short stream's runs in its value (index.go); format 1 kept them all
	// in the index bucket, which format 2 still reads, so a format 1 file
	// is marked 2 when it is first opened for writing (and a program that
	// reads format 1 only then refuses it, rather than misread it).
	formatValue   = "subsidyledger-events/2"
	formatValueV1 = "subsidyledger-events/1"

	defaultLockTimeout = time.Second
	defaultMmapSize    = 1 << 30
)

var (
	bucketMeta    = []byte("meta")
	bucketLog     = []byte("log")
	bucketStreams = []byte("streams")
	bucketIndex   = []byte("index")
	bucketIDs     = []byte("ids")
)

// Options tune Open. The zero value is the production setting.
type Options struct {
	// LockTimeout is how long Open waits for another process holding the
	// data file to let it go before failing with ErrUnavailable. Zero means
	// one second.
	LockTimeout time.Duration

	// InitialMmapSize is the address space, in bytes, mapped for the file
	// at open (not disk space). While the file fits in it, writes never wait
	// for readers to remap. Zero means 1 GiB.
	InitialMmapSize int

	// MaxSize caps the data file, in bytes; an append that would grow the
	// file past it fails with ErrUnavailable, as on a full disk. Zero means
	// no cap.
	MaxSize int

	// ReadOnly opens an existing store for reading only: the file is not
	// written at all (it may be on read-only media, or a copy an auditor
	// must leave as it is), several read-only opens may share it, and none
	// while a writer holds it. Appends fail with ErrUnavailable.
	ReadOnly bool

	// DeferIDLoad puts off loading the IDs of the recent events that are
	// not merged into the ids index yet (up to about a million, read back
	// from the log: 0.3-0.5 s of CPU time) from Open until the first
	// append, or until LoadIDs asks for it. A process that restores other
	// state at its start (ledgerd) gets the CPU for that first; its first
	// append may then wait for the load.
	DeferIDLoad bool
}

// Store is the embedded event store. It is safe for concurrent use.
type Store struct {
	path string
	db   *bbolt.DB

	// mu orders Append's queueing against Close: senders hold it for
	// reading, Close takes it to mark the store closed and close reqs.
	mu         sync.RWMutex
	closed     atomic.Bool
	reqs       chan []*appendReq
	writerDone chan struct{}
	done       chan struct{} // closed once the writer has stopped: ends subscriptions

	head atomic.Uint64 // last committed position

	// Owned by the writer goroutine (and Open before it starts): the IDs
	// of committed events not yet merged into the ids bucket (see ids.go).
	pending    *pendingIDs // nil until loadPending (only the writer uses it)
	pendingErr error       // why the pending IDs could not be loaded: every append fails
	// pendingLoaded is closed once loadPending is done (tests wait on it
	// before they look at pending).
	pendingLoaded chan struct{}
	mergeIDsAt    int
	readOnly      bool // Options.ReadOnly: every append fails
	deferIDs      bool // Options.DeferIDLoad
	idsLoaded     bool // loadPending has run (the writer's)

	sigMu sync.Mutex
	sig   chan struct{} // closed and replaced after every commit

	// Test hooks, set before the first Append.
	hookGroup func(size int)                             // the writer took a group of size appends
	hookPut   func(stream string, revision uint64) error // fails a write after validation
}

var _ events.Store = (*Store)(nil)

// Open opens the store in the data file at path, creating the file if it
// does not exist. Only one Store (in any process) can hold a file at a time.
//
// Errors: ErrInvalidArgument (empty path, missing directory, path is a
// directory); ErrUnavailable (the file is locked by another holder, or
// cannot be opened or written); ErrCorrupt (the file is not an event store or
// its header is damaged, or a page that Open reads is).
func Open(path string, opts Options) (*Store, error) {
	// A damaged page can send bbolt outside the mapped file: with this, the
	// memory fault is a panic (on this goroutine) that openBolt and init
	// recover as ErrCorrupt, rather than a crash with a stack trace.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if path == "" {
		return nil, &events.Error{Code: events.CodeInvalidArgument, Op: "open", Detail: "no data file path given"}
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, &events.Error{Code: events.CodeInvalidArgument, Op: "open",
			Detail: fmt.Sprintf("%s is a directory; give the path of the data file", path)}
	} else if err == nil && fi.Size() > 0 && fi.Size() < 2*int64(os.Getpagesize()) {
		// bbolt says only "file size too small" of these.
		return nil, &events.Error{Code: events.CodeCorrupt, Op: "open",
			Detail: fmt.Sprintf("%s is not an event store data file (%d bytes is too small for one)", path, fi.Size())}
	}
	if dir := filepath.Dir(path); dir != "" {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return nil, &events.Error{Code: events.CodeInvalidArgument, Op: "open",
				Detail: fmt.Sprintf("directory %s does not exist", dir), Err: err}
		}
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = defaultLockTimeout
	}
	if opts.InitialMmapSize <= 0 {
		opts.InitialMmapSize = defaultMmapSize
	}
	if opts.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, &events.Error{Code: events.CodeInvalidArgument, Op: "open",
				Detail: fmt.Sprintf("no event store at %s to open read-only", path), Err: err}
		}
	}
	db, err := openBolt(path, &bbolt.Options{
		Timeout:         opts.LockTimeout,
		ReadOnly:        opts.ReadOnly,
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: opts.InitialMmapSize,
		MaxSize:         opts.MaxSize,
		// NoSync and NoFreelistSync stay false: a commit is durable when
		// Commit returns.
	})
	if err != nil {
		return nil, openError(path, opts, err)
	}
	s := &Store{
		path:       path,
		db:         db,
		reqs:       make(chan []*appendReq, 1024),
		writerDone: make(chan struct{}),
		done:       make(chan struct{}),
		sig:        make(chan struct{}),
		mergeIDsAt: defaultMergeIDsAt,
		readOnly:   opts.ReadOnly,
		deferIDs:   opts.DeferIDLoad,

		pendingLoaded: make(chan struct{}),
	}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	go s.writeLoop()
	return s, nil
}

// openBolt is bbolt.Open, with a panic (or, under debug.SetPanicOnFault, a
// memory fault) on a damaged page it reads as ErrCorrupt. bbolt does not
// close the file it was opening then: the caller gives up on it anyway.
func openBolt(path string, o *bbolt.Options) (db *bbolt.DB, err error) {
	defer func() {
		if p := recover(); p != nil {
			db, err = nil, damaged(path, p)
		}
	}()
	return bbolt.Open(path, 0o600, o)
}

// damaged is the error of a panic bbolt raised reading path while opening
// it: a page whose element offsets or child page ids point outside the
// file, or the memory fault that following them caused.
func damaged(path string, p any) error {
	return &events.Error{Code: events.CodeCorrupt, Op: "open",
		Detail: fmt.Sprintf("%s is damaged: the storage engine failed reading it: %v", path, p)}
}

func openError(path string, opts Options, err error) error {
	if events.CodeOf(err) != "" { // openBolt's
		return err
	}
	e := &events.Error{Code: events.CodeUnavailable, Op: "open", Err: err}
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		e.Detail = fmt.Sprintf("%s is locked by another process or store (gave up after %s); is another ledger running on it?", path, opts.LockTimeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		e.Code = events.CodeCorrupt
		e.Detail = fmt.Sprintf("%s is not an event store data file, or its header is damaged", path)
	case errors.Is(err, fs.ErrPermission) && opts.ReadOnly:
		e.Detail = fmt.Sprintf("no permission to read %s", path)
	case errors.Is(err, fs.ErrPermission):
		e.Detail = fmt.Sprintf("no permission to open %s for writing", path)
	default:
		e.Detail = fmt.Sprintf("cannot open %s", path)
	}
	return e
}

// init creates the buckets of a new file, checks the format of an existing
// one and loads the head. A panic in bbolt (a damaged page; Open makes
// memory faults panics too) is ErrCorrupt.
func (s *Store) init() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = damaged(s.path, p)
		}
	}()
	txn := s.db.Update
	if s.readOnly {
		txn = s.db.View
	}
	err = txn(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil && s.readOnly {
			return &events.Error{Code: events.CodeCorrupt, Op: "open",
				Detail: fmt.Sprintf("%s is not an event store (no %q bucket)", s.path, bucketMeta)}
		}
		if meta == nil {
			if hasAnyBucket(tx) {
				return &events.Error{Code: events.CodeCorrupt, Op: "open",
					Detail: fmt.Sprintf("%s is a bbolt file but not an event store (no %q bucket)", s.path, bucketMeta)}
			}
			for _, name := range [][]byte{bucketMeta, bucketLog, bucketStreams, bucketIndex, bucketIDs} {
				if _, err := tx.CreateBucket(name); err != nil {
					return err
				}
			}
			s.pending = newPendingIDs()
			return tx.Bucket(bucketMeta).Put([]byte(formatKey), []byte(formatValue))
		}
		switch f := meta.Get([]byte(formatKey)); string(f) {
		case formatValue:
		case formatValueV1:
			if !s.readOnly {
				if err := meta.Put([]byte(formatKey), []byte(formatValue)); err != nil {
					return err
				}
			}
		default:
			return &events.Error{Code: events.CodeCorrupt, Op: "open",
				Detail: fmt.Sprintf("%s has store format %q; this program reads %q and %q", s.path, f, formatValue, formatValueV1)}
		}
		for _, name := range [][]byte{bucketLog, bucketStreams, bucketIndex, bucketIDs} {
			if tx.Bucket(name) == nil {
				return &events.Error{Code: events.CodeCorrupt, Op: "open",
					Detail: fmt.Sprintf("%s lacks the %q bucket", s.path, name)}
			}
		}
		s.head.Store(lastPosition(tx.Bucket(bucketLog)))
		// The IDs not yet merged into the ids bucket (up to a million)
		// load on the writer's goroutine before its first append
		// (loadPending): scanning the log's tail for them took most of a
		// second of every start, which reads need not wait for.
		return nil
	})
	var e *events.Error
	if err != nil && !errors.As(err, &e) {
		err = &events.Error{Code: events.CodeUnavailable, Op: "open", Detail: fmt.Sprintf("cannot initialise %s", s.path), Err: err}
	}
	return err
}

func hasAnyBucket(tx *bbolt.Tx) bool {
	k, _ := tx.Cursor().First()
	return k != nil
}

func lastPosition(log *bbolt.Bucket) uint64 {
	k, _ := log.Cursor().Last()
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// Path returns the data file's path.
func (s *Store) Path() string { return s.path }

// Head returns the position of the last committed event.
//
// Errors: ErrClosed.
func (s *Store) Head(ctx context.Context) (events.Position, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if s.closed.Load() {
		return 0, errClosed("head")
	}
	return events.Position(s.head.Load()), nil
}

// Close flushes the queued appends, stops the writer, ends subscriptions
// with ErrClosed and closes the data file. Later calls, Close included, fail
// with ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return errClosed("close")
	}
	s.closed.Store(true)
	close(s.reqs)
	s.mu.Unlock()
	<-s.writerDone
	close(s.done)
	if err := s.db.Close(); err != nil {
		return &events.Error{Code: events.CodeUnavailable, Op: "close", Detail: s.path, Err: err}
	}
	return nil
}

// commitSignal returns the channel the next commit closes. Take it before
// reading, so that a commit after the read cannot go unnoticed.
func (s *Store) commitSignal() <-chan struct{} {
	s.sigMu.Lock()
	defer s.sigMu.Unlock()
	return s.sig
}

func (s *Store) signal() {
	s.sigMu.Lock()
	close(s.sig)
	s.sig = make(chan struct{})
	s.sigMu.Unlock()
}

func errClosed(op string) error {
	return &events.Error{Code: events.CodeClosed, Op: op}
}

func errStream(code events.Code, op, stream, detail string) *events.Error {
	return &events.Error{Code: code, Op: op, Stream: stream, Detail: detail}
}
