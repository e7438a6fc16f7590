package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cqhrss/subsidyledger/events"
)

// Options tune Open. The zero value is the production setting for a
// database that holds one ledger.
type Options struct {
	// Prefix places the store's streams in the database under this prefix:
	// the contract's stream "trainee-1" is EventStoreDB's stream
	// Prefix+"trainee-1", and ReadAll, Head, Subscribe and the ID index
	// see only streams with the prefix. Several stores (ledgers, test runs)
	// can then share one database. Empty: every stream of the database that
	// is not a system stream ($...) belongs to the store. It must not start
	// with "$".
	Prefix string

	// Since hides the part of $all up to and including this position: the
	// store's log begins after it. Use a position of $all (Start, or a
	// position this backend reported), typically the head of $all when a
	// new Prefix is first used, so that Open, Head and reads need not scan
	// an older, unrelated history. Reopen with the same Since.
	Since events.Position

	// MaxAppendSize is the server's --max-append-size in bytes; an append
	// larger than this (by AppendSize) fails with ErrInvalidArgument
	// before it is sent. Zero means EventStoreDB's default, 1 MiB.
	MaxAppendSize int

	// ResubscribeFor is how long a subscription keeps trying to resubscribe
	// after EventStoreDB dropped it before Next gives up with
	// ErrUnavailable. Zero means one minute.
	ResubscribeFor time.Duration

	// Logger receives the backend's log lines and the client library's,
	// the latter at debug level. Nil discards them.
	Logger *slog.Logger
}

// Store is an events.Store kept in EventStoreDB (or KurrentDB) through
// its gRPC client. It is safe for concurrent use.
type Store struct {
	cfg    esdbclient.Configuration
	addr   string // for messages: the server address, without credentials
	prefix string
	since  events.Position
	opts   Options
	log    *slog.Logger
	idx    *index

	mu     sync.Mutex // guards cur and closed
	cur    *conn
	closed bool

	base   context.Context // ends at Close: every RPC's context derives from it
	cancel context.CancelFunc
	done   chan struct{} // closed at Close
	pumps  sync.WaitGroup
}

var _ events.Store = (*Store)(nil)

// conn is one client of the esdb library. The library gives up after a
// failed discovery (the server unreachable for its ten attempts) and marks
// the client closed for good; calls that raced with that can then stay
// blocked inside it forever. The store therefore runs every library call
// on its own goroutine, waits for it only as long as the caller's context,
// the store and the client live, and replaces a client found dead.
type conn struct {
	c        *esdbclient.Client
	dead     chan struct{}
	deadOnce sync.Once
	inflight atomic.Int64 // library calls running on c
	probing  atomic.Bool
}

var (
	// errStoreClosed and errConnLost are returned by call; callers
	// translate them with the op and stream concerned.
	errStoreClosed = errors.New("store closed")
	errConnLost    = errors.New("the EventStoreDB client gave up reconnecting")
)

// Open connects to EventStoreDB at the connection string url, e.g.
// "esdb://localhost:2113?tls=false" or
// "esdb+discover://admin:changeit@node1:2113?tlsCAFile=ca.crt" (the
// client's connection string syntax), checks the server and builds the ID
// index by reading the store's part of $all (see the package
// documentation).
//
// Errors: ErrInvalidArgument (malformed connection string, Prefix starting
// with "$", a server older than 22.10); ErrUnavailable (the server cannot
// be reached or refused the credentials); ErrCorrupt (an event of the
// store's streams was not written by this backend); ctx's error.
func Open(ctx context.Context, connection string, opts Options) (*Store, error) {
	const op = "open"
	if strings.HasPrefix(opts.Prefix, "$") {
		return nil, &events.Error{Code: events.CodeInvalidArgument, Op: op,
			Detail: fmt.Sprintf("prefix %q starts with $, which EventStoreDB keeps for system streams", opts.Prefix)}
	}
	cfg, err := esdbclient.ParseConnectionString(connection)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the string, credentials included
		}
		return nil, &events.Error{Code: events.CodeInvalidArgument, Op: op,
			Detail: "malformed EventStoreDB connection string (want esdb://host:port?tls=false or the like): " + err.Error()}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxAppendSize <= 0 {
		opts.MaxAppendSize = DefaultMaxAppendSize
	}
	if opts.ResubscribeFor <= 0 {
		opts.ResubscribeFor = time.Minute
	}
	lg := opts.Logger
	cfg.Logger = func(level esdbclient.LogLevel, format string, args ...any) {
		lg.Debug("esdb client: "+fmt.Sprintf(format, args...), "level", level)
	}
	s := &Store{
		cfg:    *cfg,
		addr:   address(cfg),
		prefix: opts.Prefix,
		since:  opts.Since,
		opts:   opts,
		log:    opts.Logger.With("store", "esdb"),
		idx:    newIndex(opts.Since),
		done:   make(chan struct{}),
	}
	s.base, s.cancel = context.WithCancel(context.Background())
	if s.cur, err = s.newConn(); err != nil {
		return nil, &events.Error{Code: events.CodeInvalidArgument, Op: op, Detail: "invalid EventStoreDB configuration", Err: err}
	}
	fail := func(err error) (*Store, error) {
		s.Close()
		return nil, err
	}
	version, err := do(s, ctx, func(c *esdbclient.Client) (*esdbclient.ServerVersion, error) {
		return c.GetServerVersion()
	})
	if err != nil {
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		return fail(&events.Error{Code: events.CodeUnavailable, Op: op,
			Detail: fmt.Sprintf("cannot reach EventStoreDB at %s", s.addr), Err: clientErr(err)})
	}
	// Major 0: the server did not say (an old server or a stand-in).
	if v := version; v.Major != 0 && (v.Major < 22 || v.Major == 22 && v.Minor < 10) {
		return fail(&events.Error{Code: events.CodeInvalidArgument, Op: op,
			Detail: fmt.Sprintf("EventStoreDB %d.%d.%d at %s: this backend needs 22.10 or later, which reports $all positions on stream reads",
				v.Major, v.Minor, v.Patch, s.addr)})
	}
	if err := s.catchUp(ctx, op); err != nil {
		if opts.Since > events.Start && errors.Is(err, events.ErrInvalidArgument) {
			err = &events.Error{Code: events.CodeInvalidArgument, Op: op,
				Detail: fmt.Sprintf("Since %d is not a position of $all at %s (use Start or a position the store reported)", opts.Since, s.addr), Err: err}
		}
		return fail(err)
	}
	return s, nil
}

// address describes where cfg points, without credentials.
func address(cfg *esdbclient.Configuration) string {
	if cfg.Address != "" {
		return cfg.Address
	}
	seeds := make([]string, len(cfg.GossipSeeds))
	for i, e := range cfg.GossipSeeds {
		seeds[i] = e.String()
	}
	return strings.Join(seeds, ",")
}

func (s *Store) newConn() (*conn, error) {
	cfg := s.cfg
	c, err := esdbclient.NewClient(&cfg)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, dead: make(chan struct{})}, nil
}

// do runs fn with the current client on a goroutine of its own and
// returns its result, or ctx's error when ctx ends first, errStoreClosed
// when the store closes first, errConnLost when the client is found dead
// first (fn's goroutine then finishes on its own; its result is dropped).
// fn must give its RPCs a context that ends with ctx and the store (see
// rpcContext), unless they must outlive the call (a subscription).
func do[T any](s *Store, ctx context.Context, fn func(*esdbclient.Client) (T, error)) (T, error) {
	var zero T
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return zero, errStoreClosed
	}
	cn := s.cur
	cn.inflight.Add(1)
	s.mu.Unlock()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer cn.inflight.Add(-1)
		defer func() {
			if p := recover(); p != nil { // the library panics on messages it does not know
				done <- result{err: fmt.Errorf("esdb client panicked: %v", p)}
			}
		}()
		v, err := fn(cn.c)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			s.checkConn(cn, r.err)
		}
		return r.v, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-s.done:
		return zero, errStoreClosed
	case <-cn.dead:
		return zero, errConnLost
	}
}

// rpcContext returns a context for the RPCs of one call: it ends with ctx
// and with the store.
func (s *Store) rpcContext(ctx context.Context) (context.Context, context.CancelFunc) {
	rctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.base, cancel)
	return rctx, func() { stop(); cancel() }
}

// checkConn looks at a failed call's error: a client that says it is
// closed while the store is open has given up for good and is replaced;
// after a connection error a probe finds out whether it has.
func (s *Store) checkConn(cn *conn, err error) {
	var ee *esdbclient.Error
	if !errors.As(err, &ee) {
		return
	}
	switch ee.Code() {
	case esdbclient.ErrorCodeConnectionClosed:
		s.replace(cn)
	case esdbclient.ErrorUnavailable, esdbclient.ErrorCodeUnknown, esdbclient.ErrorCodeDeadlineExceeded, esdbclient.ErrorCodeNotLeader:
		if !cn.probing.CompareAndSwap(false, true) {
			return
		}
		cn.inflight.Add(1)
		go func() {
			defer cn.inflight.Add(-1)
			defer cn.probing.Store(false)
			for range 3 {
				select {
				case <-s.done:
					return
				default:
				}
				_, err := cn.c.GetServerVersion()
				if err == nil {
					return
				}
				if errors.As(err, &ee) && ee.Code() == esdbclient.ErrorCodeConnectionClosed {
					s.replace(cn)
					return
				}
			}
		}()
	}
}

// replace swaps a dead client for a new one. The dead client is not
// closed: calls blocked inside it would panic on its closed channel.
func (s *Store) replace(cn *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.cur != cn {
		return
	}
	cn.deadOnce.Do(func() { close(cn.dead) })
	next, err := s.newConn()
	if err != nil { // cannot happen: the configuration was valid before
		s.log.Error("cannot make a new EventStoreDB client", "err", err)
		return
	}
	s.cur = next
	s.log.Warn("EventStoreDB client gave up reconnecting; starting a new one", "server", s.addr)
}

// fail translates an error of a call into the contract's, naming op and
// stream. ctx's own error is returned as is.
func (s *Store) fail(ctx context.Context, op, stream string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	var e *events.Error
	if errors.As(err, &e) {
		return err
	}
	// A call that fails once Close has begun failed because of it, however
	// the library words it (a cancelled RPC arrives as an esdbclient.Error
	// with code 0 around a gRPC status, not as context.Canceled).
	if errors.Is(err, errStoreClosed) || s.isClosed() {
		return errClosed(op)
	}
	if errors.Is(err, errConnLost) {
		return &events.Error{Code: events.CodeUnavailable, Op: op, Stream: stream,
			Detail: fmt.Sprintf("connection to EventStoreDB at %s lost", s.addr)}
	}
	out := &events.Error{Code: events.CodeUnavailable, Op: op, Stream: stream, Err: clientErr(err)}
	var ee *esdbclient.Error
	if errors.As(err, &ee) {
		switch ee.Code() {
		case esdbclient.ErrorCodeResourceNotFound:
			out.Code, out.Err = events.CodeStreamNotFound, nil
		case esdbclient.ErrorCodeStreamDeleted:
			out.Code = events.CodeCorrupt
			out.Detail = "the stream was deleted in EventStoreDB; the ledger never deletes streams"
		case esdbclient.ErrorCodeConnectionClosed:
			out.Detail = fmt.Sprintf("EventStoreDB at %s unreachable", s.addr)
		case esdbclient.ErrorCodeAccessDenied, esdbclient.ErrorCodeUnauthenticated:
			out.Detail = fmt.Sprintf("EventStoreDB at %s refused the credentials of the connection string", s.addr)
		case esdbclient.ErrorUnavailable, esdbclient.ErrorCodeDeadlineExceeded, esdbclient.ErrorCodeNotLeader, esdbclient.ErrorAborted:
			out.Detail = fmt.Sprintf("EventStoreDB at %s unavailable", s.addr)
		default:
			out.Detail = fmt.Sprintf("EventStoreDB at %s failed the request", s.addr)
			switch status.Code(err) {
			case codes.InvalidArgument, codes.ResourceExhausted:
				out.Code = events.CodeInvalidArgument
				out.Detail = fmt.Sprintf("EventStoreDB at %s refused the request as invalid or too large (for an append: over its --max-append-size?)", s.addr)
			}
		}
	}
	return out
}

// clientErr returns err unless it is nil or the end of a read.
func clientErr(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// isClosed reports whether Close has begun.
func (s *Store) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func errClosed(op string) error {
	return &events.Error{Code: events.CodeClosed, Op: op}
}

// mine reports whether an event of $all belongs to the store and returns
// its stream name in the contract's terms: not a system stream or a
// system event type ($...), and under the store's prefix.
func (s *Store) mine(esdbStream, typ string) (string, bool) {
	if strings.HasPrefix(esdbStream, "$") || strings.HasPrefix(typ, "$") || !strings.HasPrefix(esdbStream, s.prefix) {
		return "", false
	}
	stream := esdbStream[len(s.prefix):]
	return stream, stream != ""
}

// Head returns the position of the store's last event, after bringing the
// ID index up to date with $all.
//
// Errors: ErrClosed; ErrUnavailable.
func (s *Store) Head(ctx context.Context) (events.Position, error) {
	const op = "head"
	if err := ctx.Err(); err != nil {
		return events.Start, err
	}
	if err := s.catchUp(ctx, op); err != nil {
		return events.Start, err
	}
	if p, ok := s.idx.head(); ok {
		return events.Position(p + 1), nil
	}
	return events.Start, nil
}

// Close ends subscriptions (with ErrClosed) and calls in flight (appends
// in flight either complete or fail with ErrClosed; one that fails may
// still have been stored, which a retry with the same IDs tells), then
// closes the client. Later calls, Close included, fail with ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed("close")
	}
	s.closed = true
	cn := s.cur
	s.mu.Unlock()
	close(s.done) // first: a call the cancel ends must see the store closed
	s.cancel()
	s.pumps.Wait()
	// Close the client once no library call runs on it: the cancelled RPCs
	// end at once, but a call blocked in the library's connection queue
	// would panic on a closed client.
	deadline := time.Now().Add(2 * time.Second)
	for cn.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := cn.inflight.Load(); n > 0 {
		s.log.Warn("EventStoreDB client left open: calls still blocked inside it", "calls", n)
		return nil
	}
	cn.c.Close()
	return nil
}
