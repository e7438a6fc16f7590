// Package api is the ledger's read API: HTTP JSON (and CSV) under /v1/ for
// every read model, the audit trail of any stream, the OpenAPI document of
// all of it at /v1/openapi.json, and the supervisors' web dashboard at
// /dashboard/ (embedded; no external assets).
//
// Every handler takes the caller's scope from Config.Scope and applies it:
// municipal and auditor scopes see everything; a district sees its unit
// (abolished units roll up into their successor); an institution sees its
// own records. A record outside the scope is "not found" (its existence is
// not disclosed); a query the scope cannot make at all is "forbidden".
//
// Errors reach the caller as {"error": {"code", "message"}} with the HTTP
// status of the one table in errors.go; unknown errors as "internal error".
package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/services/vault"
)

// Config configures the API.
type Config struct {
	// Projections is the running set of read models (readmodels.Factories).
	// Required.
	Projections *projections.Set
	// Store is the event log, for the audit trail. Required.
	Store events.Store
	// Scope takes the caller's scope from a request; nil means
	// HeaderScope(Scope{Role: RoleMunicipal}).
	Scope ScopeFunc
	// Registerer receives the HTTP request metrics; nil registers none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock for "today" (the public notice); nil: time.Now.
	Now func() time.Time
	// Timeout bounds a request (as-of builds above all); zero: 60s.
	Timeout time.Duration
	// ExportTimeout bounds a streamed CSV export (the whole trainee list:
	// about 150 bytes a trainee, so a slow client may need minutes); zero:
	// 30 minutes. An export cut short, by it or by a failure, ends the
	// connection without the response's end, so the client sees an error
	// and never a shorter file that looks complete.
	ExportTimeout time.Duration
	// Actions hands the maker/checker actions' facts to the ledger; nil:
	// the action routes answer 503.
	Actions Submitter
	// ActionWait bounds the wait for the ledger's outcome of an action;
	// zero: DefaultActionWait.
	ActionWait time.Duration
	// Keyer turns ID numbers into person keys (the lookup); Vault holds the
	// personal data. Without both the personal-data routes answer 503
	// personal_data_unavailable.
	Keyer *person.Keyer
	Vault *vault.Vault
}

type server struct {
	cfg     Config
	log     *slog.Logger
	routes  []route
	metrics *prometheus.HistogramVec
	access  *prometheus.CounterVec // personal-data accesses
	docOnce sync.Once
	docJSON []byte

	cacheMu sync.Mutex
	cache   map[string][]byte // encoded answers by model state and query
}

// cacheSize bounds the answer cache; when full it is emptied.
const cacheSize = 256

// cached returns the encoded answer for key, computing and keeping it on a
// miss. Keys name the model instances and their positions, so an answer is
// reused only while the models have not moved.
func (s *server) cached(key string, compute func() (any, error)) ([]byte, error) {
	s.cacheMu.Lock()
	b, ok := s.cache[key]
	s.cacheMu.Unlock()
	if ok {
		return b, nil
	}
	v, err := compute()
	if err != nil {
		return nil, err
	}
	b, err = json.Marshal(v)
	if err != nil {
		return nil, err
	}
	b = append(b, '\n')
	s.cacheMu.Lock()
	if len(s.cache) >= cacheSize {
		clear(s.cache)
	}
	s.cache[key] = b
	s.cacheMu.Unlock()
	return b, nil
}

// Handler is the API's handler (New).
type Handler struct {
	http.Handler
	s *server
}

// New returns the API's handler. It serves /v1/..., /dashboard/ and
// redirects / to /dashboard/.
func New(cfg Config) *Handler {
	if cfg.Scope == nil {
		cfg.Scope = HeaderScope(Scope{Role: RoleMunicipal})
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.ExportTimeout <= 0 {
		cfg.ExportTimeout = 30 * time.Minute
	}
	if cfg.ActionWait <= 0 {
		cfg.ActionWait = DefaultActionWait
	}
	s := &server{cfg: cfg, log: cfg.Logger, cache: map[string][]byte{}}
	if cfg.Registerer != nil {
		s.metrics = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "subsidy_ledger_http_request_duration_seconds",
			Help:    "Duration of API requests, by route pattern, method and status code.",
			Buckets: []float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"route", "method", "code"})
		cfg.Registerer.MustRegister(s.metrics)
	}
	s.access = newAccessMetric(cfg.Registerer)
	s.routes = s.table()
	mux := http.NewServeMux()
	for _, rt := range s.routes {
		mux.Handle(rt.method+" "+rt.pattern, s.wrap(rt))
	}
	s.mountDashboard(mux)
	return &Handler{Handler: mux, s: s}
}

// route is one endpoint: the mux pattern, its documentation and handler.
type route struct {
	method, pattern string
	id              string // operationId
	summary         string
	params          []param
	// response is a value of the JSON response's type (for the schema).
	response any
	// request is a value of the JSON request body's type (nil: none).
	request any
	// action: the route is a maker/checker action (answers 409 and 422
	// with the ledger's reason code, 504 when the ledger is slow).
	action bool
	// gone: the route answers 410 erased for crypto-shredded data.
	gone bool
	// csv: the route also answers ?format=csv (text/csv).
	csv bool
	// asOf: the route takes as_of (a position or an RFC 3339 time).
	asOf bool
	// public: no scope needed (the OpenAPI document).
	public bool
	// status is the success status (200 when zero).
	status int
	handle func(r *http.Request, sc Scope) (result, error)
}

type param struct {
	name, in, desc string
	typ            string // "string", "integer"
	required       bool
	enum           []string
}

// result is a handler's answer: the JSON body and, for CSV, the rows.
type result struct {
	body any
	// raw is the JSON body already encoded (from the cache); body is then
	// ignored.
	raw []byte
	// rows is a slice of structs (flat, or with nested structs flattened
	// into "parent.child" columns) for ?format=csv.
	rows any
	// stream writes CSV rows itself (exports too large to hold), until
	// ctx ends.
	stream func(ctx context.Context, w http.ResponseWriter) error
	// position is the log position the answer reflects.
	position events.Position
	filename string
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(c int) {
	if w.code == 0 {
		w.code = c
	}
	w.ResponseWriter.WriteHeader(c)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the connection's writer (a
// streamed export's write deadline).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		s.serve(sw, r, rt)
		if s.metrics != nil {
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			s.metrics.WithLabelValues(rt.pattern, rt.method, strconv.Itoa(code)).Observe(time.Since(t0).Seconds())
		}
	})
}

func (s *server) serve(w http.ResponseWriter, r *http.Request, rt route) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p) // an export cut short: drop the connection
			}
			// A bug: answer "internal error" rather than dropping the
			// connection, and log it.
			writeError(w, r, s.log, &Error{Code: CodeInternal, Message: "internal error", Err: fmt.Errorf("panic: %v", p)})
		}
	}()
	base := r.Context()
	ctx, cancel := context.WithTimeout(base, s.cfg.Timeout)
	defer cancel()
	r = r.WithContext(ctx)
	var sc Scope
	if !rt.public {
		var err error
		if sc, err = s.cfg.Scope(r); err != nil {
			writeError(w, r, s.log, err)
			return
		}
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && !(format == "csv" && rt.csv) {
		writeError(w, r, s.log, errorf(CodeBadRequest, "format %q: want json%s", format, map[bool]string{true: " or csv"}[rt.csv]))
		return
	}
	bom := false
	if v := r.URL.Query().Get("bom"); v != "" {
		var err error
		if bom, err = strconv.ParseBool(v); err != nil || format != "csv" {
			writeError(w, r, s.log, errorf(CodeBadRequest, "bom %q: true or false, with format=csv", v))
			return
		}
	}
	if !rt.asOf && r.URL.Query().Has("as_of") {
		// Only the routes that document as_of build a model as of a past
		// position: elsewhere (actions, audit, lists) it would be a scope
		// check against the past, or an expensive build nobody asked for.
		writeError(w, r, s.log, errorf(CodeBadRequest, "as_of: %s %s does not take it (see /v1/openapi.json)", rt.method, rt.pattern))
		return
	}
	res, err := rt.handle(r, sc)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if res.position != 0 {
		w.Header().Set("X-Ledger-Position", strconv.FormatUint(uint64(res.position), 10))
	}
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		if res.filename != "" {
			w.Header().Set("Content-Disposition", `attachment; filename="`+res.filename+`"`)
		}
		if bom {
			_, _ = io.WriteString(w, "\ufeff")
		}
		if res.stream != nil {
			ctx, cancel := context.WithTimeout(base, s.cfg.ExportTimeout)
			defer cancel()
			// The context is checked between pages; a client that stops
			// reading blocks a write, which only a write deadline ends
			// (not supported by every writer: a test's recorder).
			deadline, _ := ctx.Deadline()
			_ = http.NewResponseController(w).SetWriteDeadline(deadline)
			if err := res.stream(ctx, w); err != nil {
				s.log.Error("CSV export failed midway; the connection is dropped so that the client does not take the part for the whole", "route", rt.pattern, "err", err)
				panic(http.ErrAbortHandler)
			}
			return
		}
		if err := writeCSV(w, res.rows); err != nil {
			s.log.Error("CSV export failed", "route", rt.pattern, "err", err)
		}
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if rt.status != 0 {
		w.WriteHeader(rt.status)
	}
	if res.raw != nil {
		if _, err := w.Write(res.raw); err != nil {
			s.log.Debug("writing the response failed", "route", rt.pattern, "err", err)
		}
		return
	}
	enc := json.NewEncoder(w)
	if err := enc.Encode(res.body); err != nil {
		s.log.Warn("writing the response failed", "route", rt.pattern, "err", err)
	}
}

// model returns the named read model: the live instance, or one built as
// of the request's as_of parameter (a position or an RFC 3339 time).
func (s *server) model(r *http.Request, name string) (projections.Projection, events.Position, error) {
	run, ok := s.cfg.Projections.Runner(name)
	if !ok {
		return nil, 0, &Error{Code: CodeInternal, Message: "internal error", Err: projections.ErrUnknown}
	}
	v := r.URL.Query().Get("as_of")
	if v == "" {
		return run.Current(), run.Position(), nil
	}
	var at projections.At
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		at.Position = events.Position(n)
	} else if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		at.Time = t
	} else {
		return nil, 0, errorf(CodeBadRequest, "as_of %q: want a log position or an RFC 3339 time", v)
	}
	p, pos, err := run.AsOf(r.Context(), at)
	return p, pos, err
}

// modelOf is model with the concrete type.
func modelOf[T projections.Projection](s *server, r *http.Request, name string) (T, events.Position, error) {
	p, pos, err := s.model(r, name)
	if err != nil {
		var zero T
		return zero, 0, err
	}
	t, ok := p.(T)
	if !ok {
		var zero T
		return zero, 0, errorf(CodeInternal, "internal error")
	}
	return t, pos, nil
}
