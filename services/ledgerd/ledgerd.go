// Package ledgerd wires the subsidy ledger service: the event store, NATS
// (embedded or external), the intake, the outbound feed and the HTTP server.
// The command in cmd/ledgerd only calls Run.
package ledgerd

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/esdb"
	"github.com/cqhrss/subsidyledger/events/merkle"
	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/readmodels"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/api"
	"github.com/cqhrss/subsidyledger/services/api/changefeed"
	"github.com/cqhrss/subsidyledger/services/auditapi"
	"github.com/cqhrss/subsidyledger/services/feed"
	"github.com/cqhrss/subsidyledger/services/ingest"
	"github.com/cqhrss/subsidyledger/services/natsbus"
	"github.com/cqhrss/subsidyledger/services/personal"
	"github.com/cqhrss/subsidyledger/services/submit"
	"github.com/cqhrss/subsidyledger/services/vault"
)

var _ api.Submitter = (*submit.NATS)(nil)

// Run starts ledgerd and blocks until ctx ends (SIGINT/SIGTERM in main), then
// shuts down in order: stop intake (finishing the batch in hand), stop the
// feed, stop HTTP, close NATS, close the store, stop the embedded server.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := ParseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if cfg.GoMaxProcs > 0 {
		runtime.GOMAXPROCS(cfg.GoMaxProcs)
	}
	if cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
	memLimit := "none"
	if l := debug.SetMemoryLimit(-1); l < math.MaxInt64 {
		memLimit = strconv.FormatInt(l>>20, 10) + "MiB"
	}
	log.Info("starting", "gomaxprocs", runtime.GOMAXPROCS(0), "cpus", runtime.NumCPU(), "memory_limit", memLimit)
	logRuleSet(log, cfg.RuleSet, time.Now())
	return run(ctx, cfg, log, nil)
}

// Started is told the addresses once the service is up (for tests and make run).
type Started struct {
	HTTPAddr string
	NATSURL  string
}

func run(ctx context.Context, cfg Config, log *slog.Logger, started func(Started)) (err error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return &ConfigError{fmt.Sprintf("--data-dir %q: %v", cfg.DataDir, err)}
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := store.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the event store: %w", cerr)
		}
		log.Info("event store closed")
	}()

	url := cfg.NATSURL
	feedAPI, feedConsumers := cfg.FeedAPIPrefix, cfg.FeedConsumers
	// Replies and pull deliveries come under ledgerd's own inbox prefix,
	// which no other user may subscribe to (natsbus.LedgerInbox).
	opts := []nats.Option{nats.Name("ledgerd"), nats.CustomInboxPrefix(natsbus.LedgerInbox), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err == nil { // closed by ledgerd itself, as it stops
				log.Info("NATS connection closed")
				return
			}
			log.Warn("NATS disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted()) })}
	if url == "" {
		var users []natsbus.User
		if cfg.NATSUsers != "" {
			if users, err = natsbus.LoadUsers(cfg.NATSUsers); err != nil {
				return &ConfigError{err.Error()}
			}
		} else {
			log.Warn("demo mode: the embedded NATS server accepts unauthenticated clients")
		}
		srv, err := natsbus.StartServer(natsbus.ServerConfig{Addr: cfg.NATSListen, DataDir: cfg.DataDir, ConfigFile: cfg.NATSConfig,
			Logger: log.With("component", "nats"), Users: users, Subjects: natsbus.Subjects{Prefix: cfg.SubjectPrefix},
			TLSCert: cfg.NATSTLSCert, TLSKey: cfg.NATSTLSKey})
		if err != nil {
			return fmt.Errorf("starting the embedded NATS server on %s (is another ledgerd or nats-server running? use --nats-listen or --nats-url): %w", cfg.NATSListen, err)
		}
		defer func() { srv.Shutdown(); log.Info("embedded NATS server stopped") }()
		url = srv.ClientURL()
		feedAPI, feedConsumers = srv.FeedAPIPrefix(), srv.ReportingUsers()
		log.Info("embedded NATS server up", "url", url, "store_dir", filepath.Join(cfg.DataDir, "nats"), "authentication", len(users) > 0, "tls", srv.TLS())
		opts = append(opts, nats.InProcessServer(srv.InProcess()))
		if srv.TLS() {
			// The in-process connection does the TLS handshake too: trust
			// the server's own certificate.
			pem, err := os.ReadFile(cfg.NATSTLSCert)
			if err != nil {
				return &ConfigError{fmt.Sprintf("--nats-tls-cert: %v", err)}
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			opts = append(opts, nats.Secure(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
		}
		if u, p := srv.Credentials(); u != "" {
			opts = append(opts, nats.UserInfo(u, p))
		}
	} else {
		if cfg.NATSUser != "" {
			opts = append(opts, nats.UserInfo(cfg.NATSUser, cfg.NATSPassword))
		}
		if cfg.NATSCreds != "" {
			opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
		}
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("connecting to NATS at %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("JetStream: %w", err)
	}
	// The outbound feed's stream, in an account of its own when there are
	// accounts (natsbus.FeedAccount).
	feedJS := js
	if feedAPI != "" {
		if feedJS, err = jetstream.NewWithAPIPrefix(nc, feedAPI); err != nil {
			return fmt.Errorf("JetStream of the feed's account (%s): %w", feedAPI, err)
		}
	}
	subj := natsbus.Subjects{Prefix: cfg.SubjectPrefix}
	so := natsbus.DefaultStreamOptions
	so.Replicas, so.AckWait = cfg.Replicas, cfg.AckWait
	so.FeedMaxBytes, so.FeedMaxEvents = cfg.FeedMaxBytes, cfg.FeedMaxEvents
	so.FeedJetStream, so.FeedConsumers = feedJS, feedConsumers
	// With the feed in an account of its own, only ledgerd makes its
	// consumers: none may deliver there (natsbus.StreamOptions).
	so.FeedConsumersOnly = feedAPI != ""
	if cfg.MaxPending > 0 {
		so.MaxAckPending = cfg.MaxPending
	}
	so.MaxAckPending = max(so.MaxAckPending, 4*cfg.BatchSize)
	if sharedStore(cfg) {
		// Several instances may share this store and the inbound
		// consumer: one decides at a time (see natsbus.LedgerPriorityGroup).
		so.PinnedTTL = cfg.AckWait + 5*time.Second
		if cfg.ReferenceWait <= so.PinnedTTL {
			log.Warn("--reference-wait is not longer than a takeover (--ack-wait + 5s): facts waiting for what they refer to may be rejected when an instance dies",
				"reference_wait", cfg.ReferenceWait, "takeover", so.PinnedTTL)
		}
	}
	// A cluster that has just started may still be electing its JetStream
	// leaders: keep trying for a while.
	setupCtx, cancelSetup := context.WithTimeout(ctx, 60*time.Second)
	var cons jetstream.Consumer
	var telling error // the last error that says more than a timeout
	for {
		c, cancel := context.WithTimeout(setupCtx, 10*time.Second)
		cons, err = natsbus.EnsureStreams(c, js, subj, so)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			telling = err
		}
		if err == nil || setupCtx.Err() != nil {
			break
		}
		log.Warn("JetStream streams not ready yet; retrying", "err", err)
		select {
		case <-setupCtx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	cancelSetup()
	if err != nil {
		if telling != nil && telling != err {
			err = fmt.Errorf("%w (before that: %v)", err, telling)
		}
		return fmt.Errorf("setting up JetStream streams failed for a minute (JetStream not enabled, no leader elected, or a stream's or consumer's state damaged: the NATS server's log says which): %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(goCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(ruleSetCollectors(cfg.RuleSet)...)
	// The intake's snapshots (the rules' World) beside the store, kept like
	// the projections' but in a directory of their own.
	intakeSnaps, err := projections.OpenCheckpoints(filepath.Join(cfg.DataDir, "intake"))
	if err != nil {
		return fmt.Errorf("opening the intake's snapshots: %w", err)
	}
	defer intakeSnaps.Close()
	if d := intakeSnaps.Damaged(); d != "" {
		log.Warn("the intake's checkpoints.db was damaged: moved aside, the intake folds the log from the start", "moved_to", d)
	}
	intake := ingest.New(ingest.Config{
		Store: store, Conn: nc, JetStream: js, Consumer: cons, Subjects: subj, RuleSet: cfg.RuleSet,
		BatchSize: cfg.BatchSize, Logger: log.With("component", "intake"), Metrics: ingest.NewMetrics(reg),
		AckWait: cfg.AckWait, ReferenceWait: cfg.ReferenceWait, RetryDelay: cfg.RetryDelay,
		Snapshots: intakeSnaps, SnapshotEvery: cfg.IntakeSnapshotEvery,
	})
	out := feed.New(feed.Config{Store: store, Conn: nc, JetStream: feedJS, Subjects: subj, BatchSize: cfg.FeedBatch, Linger: cfg.FeedLinger,
		Logger: log.With("component", "feed"), Metrics: feed.NewMetrics(reg)})

	// Read side: projections with snapshots beside the store, their change
	// feed on NATS, and the API and dashboard over them.
	cps, err := projections.OpenCheckpoints(filepath.Join(cfg.DataDir, "projections"))
	if err != nil {
		return fmt.Errorf("opening the projections' checkpoints: %w", err)
	}
	defer cps.Close()
	if d := cps.Damaged(); d != "" {
		log.Warn("the projections' checkpoints.db was damaged: moved aside, the projections rebuild from the start", "moved_to", d)
	}
	changes := changefeed.New(changefeed.Config{Conn: nc, Prefix: cfg.SubjectPrefix, Registerer: reg, Logger: log.With("component", "changefeed")})
	// One projection's snapshot restored at a time: the intake restores
	// its own (the larger) meanwhile, and ledgerd is ready when both are;
	// on two cores this was 0.15 s sooner than all six at once.
	pcfg := projections.Config{Store: store, Checkpoints: cps, Metrics: projections.NewMetrics(reg), Logger: log.With("component", "projections"),
		Restores: 1}
	if cfg.ChangeFeed {
		pcfg.Observer, pcfg.Swapped = changes.Observer, changes.Swapped
		log.Info("change feed publishing", "instance", changes.Instance())
	}
	set, err := projections.NewSet(pcfg, readmodels.Factories()...)
	if err != nil {
		return fmt.Errorf("projections: %w", err)
	}
	scope := api.HeaderScope(api.Scope{Role: api.RoleMunicipal}) // --demo only
	if cfg.APITokens != "" {
		if scope, err = api.LoadTokens(cfg.APITokens); err != nil {
			return &ConfigError{fmt.Sprintf("--api-tokens: %v", err)}
		}
	} else {
		log.Warn("demo mode: the HTTP API is served without authentication, with the municipal scope; actions record the official named by X-Ledger-Official")
	}
	scrapeOnly := func(h http.Handler) http.Handler { return h }
	if cfg.MetricsTokens != "" {
		if scrapeOnly, err = scrapeGuard(cfg.MetricsTokens); err != nil {
			return &ConfigError{fmt.Sprintf("--metrics-token-file: %v", err)}
		}
	} else if !cfg.Demo {
		log.Warn("/metrics is open to anyone who reaches the HTTP port: give --metrics-token-file to require a scrape token")
	}
	// Maker/checker actions publish their facts on the inbound subjects,
	// as the district and bureau services would, and wait for the
	// intake's outcome.
	actions := submit.New(nc, js, subj, so.DuplicateWindow)
	// Personal data: the HMAC key of person keys, the encrypted vault, and
	// the intake of SUBSIDY_PII into it.
	keyer, err := personKeyer(cfg, log)
	if err != nil {
		return err
	}
	vlt, err := openVault(cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := vlt.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the personal-data vault: %w", cerr)
		}
	}()
	piiCons, err := js.Consumer(ctx, natsbus.PIIStream, natsbus.PIIConsumer)
	if err != nil {
		return fmt.Errorf("the personal-data consumer: %w", err)
	}
	piiStream, err := js.Stream(ctx, natsbus.PIIStream)
	if err != nil {
		return fmt.Errorf("the personal-data stream: %w", err)
	}
	pii := personal.New(personal.Config{Consumer: piiCons, Stream: piiStream, Keyer: keyer, Vault: vlt, Store: store,
		Subjects: subj, Logger: log.With("component", "personal"), Metrics: personal.NewMetrics(reg), RetryDelay: cfg.RetryDelay})

	apiHandler := api.New(api.Config{Projections: set, Store: store, Scope: scope, Registerer: reg, Logger: log.With("component", "api"),
		Actions: actions, Keyer: keyer, Vault: vlt})

	// Tamper evidence: the sealer keeps the Merkle tree of the log beside
	// the store; the checkpointer signs its root periodically and appends
	// each checkpoint to the log (so the feed publishes it on NATS).
	signer, err := checkpointSigner(cfg, log)
	if err != nil {
		return err
	}
	sealer, err := merkle.OpenSealer(filepath.Join(cfg.DataDir, "merkle.db"), store, merkle.SealerOptions{Logger: log.With("component", "sealer"), Linger: cfg.SealLinger})
	if err != nil {
		return fmt.Errorf("opening the Merkle sealer: %w", err)
	}
	defer sealer.Close()
	checkpoints := merkle.NewCheckpointer(merkle.CheckpointerConfig{Sealer: sealer, Signer: signer, Every: cfg.CheckpointEvery,
		Logger: log.With("component", "checkpoints"),
		Publish: func(ctx context.Context, cp *subsidyv1.AuditCheckpoint) (events.Position, error) {
			ev, err := merkle.CheckpointEvent(cp)
			if err != nil {
				return 0, err
			}
			r, err := store.Append(ctx, merkle.CheckpointStream, events.Any, ev)
			return r.Position, err
		}})
	registerSealerMetrics(reg, sealer)

	ln, err := net.Listen("tcp", cfg.HTTPListen)
	if err != nil {
		return &ConfigError{fmt.Sprintf("--http-listen %q: %v", cfg.HTTPListen, err)}
	}
	h := &health{store: store, nc: nc, intake: intake, projections: set, feed: out}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.Handle("GET /readyz", h)
	mux.Handle("GET /metrics", scrapeOnly(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	// The tamper evidence is served beside the API, behind its
	// authentication: reads for every scope, issuing a checkpoint for
	// the municipal scope.
	audit := apiHandler.Audit(auditapi.Handler(sealer, checkpoints, signer.VerifierKey()))
	mux.Handle("/v1/audit/checkpoint", audit)
	mux.Handle("/v1/audit/proof/", audit)
	mux.Handle("/v1/audit/verifier-key", audit)
	mux.Handle("/", apiHandler) // /v1/... and /dashboard/
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if cfg.DebugListen != "" {
		ds, err := serveDebug(cfg.DebugListen)
		if err != nil {
			return err
		}
		defer ds.Close()
		log.Warn("profiling endpoints served without authentication", "addr", cfg.DebugListen, "path", "/debug/pprof/")
	}

	// Components start and stop as pairs: the intake and feed run until
	// runCtx ends; HTTP until it is shut down after them.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	wg.Add(8)
	go func() { defer wg.Done(); errc <- pii.Run(runCtx) }()
	go func() { defer wg.Done(); errc <- runSealer(runCtx, sealer, log.With("component", "sealer")) }()
	go func() { defer wg.Done(); errc <- checkpoints.Run(runCtx) }()
	go func() { defer wg.Done(); errc <- hs.Serve(ln) }()
	go func() {
		// The intake restores the rules' World from its snapshot and folds
		// the events after it (the whole log if it has none: a minute or
		// more for millions of events) before it decides anything. The
		// rest serves meanwhile (the projections restart from their
		// snapshots); /readyz says the intake is loading.
		defer wg.Done()
		t0 := time.Now()
		if testHookBeforeLoad != nil {
			testHookBeforeLoad(runCtx)
		}
		if err := intake.Load(runCtx); err != nil {
			if runCtx.Err() == nil {
				errc <- fmt.Errorf("loading the ledger state from the store: %w", err)
			}
			return
		}
		h.intakeLoaded.Store(true)
		if l, ok := store.(idsLoader); ok {
			l.LoadIDs()
		}
		log.Info("ledger state loaded", "position", intake.Position(), "took", time.Since(t0).Round(time.Millisecond))
		errc <- intake.Run(runCtx)
	}()
	go func() { defer wg.Done(); h.feedUp.Store(true); errc <- out.Run(runCtx) }()
	go func() { defer wg.Done(); errc <- set.Run(runCtx) }()
	go func() { defer wg.Done(); errc <- changes.Run(runCtx) }()
	log.Info("ledgerd serving; the intake starts once it has loaded the ledger state", "http", ln.Addr().String(), "dashboard", "http://"+ln.Addr().String()+"/dashboard/", "nats", url, "inbound", subj.InboundPrefix()+".>")
	if started != nil {
		started(Started{HTTPAddr: ln.Addr().String(), NATSURL: url})
	}
	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-errc:
		if errors.Is(runErr, http.ErrServerClosed) {
			runErr = nil
		}
		log.Error("a component stopped", "err", runErr)
	}
	stop()
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(shutCtx)
	wg.Wait()
	_ = nc.Drain()
	return runErr
}

// serveDebug serves net/http/pprof's endpoints on addr until closed.
func serveDebug(addr string) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &ConfigError{fmt.Sprintf("--debug-listen %q: %v", addr, err)}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.Serve(ln) }()
	return s, nil
}

// runSealer runs the sealer, and runs it again while its file cannot be
// written (disk full, read-only): a failed seal changes nothing, so it goes
// on from what it has sealed once it can write.
func runSealer(ctx context.Context, s *merkle.Sealer, log *slog.Logger) error {
	delay := time.Second
	for {
		t0 := time.Now()
		err := s.Run(ctx)
		if err == nil || ctx.Err() != nil || !errors.Is(err, merkle.ErrUnavailable) {
			return err
		}
		if time.Since(t0) > time.Minute {
			delay = time.Second
		}
		log.Error("the Merkle sealer cannot write; trying again", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// health answers /readyz: ready only when the store, NATS, the intake and the
// feed are up, and the feed is not failing (feed.Feed.Problem).
type health struct {
	store        events.Store
	nc           *nats.Conn
	intake       *ingest.Intake
	projections  *projections.Set
	feed         *feed.Feed
	feedUp       atomic.Bool
	intakeLoaded atomic.Bool // the intake has folded the log (ingest.Intake.Load)
}

// testHookBeforeLoad, if set, runs before the intake loads the ledger
// state (a test holds the load to see ledgerd serve meanwhile); it must
// return when ctx ends.
var testHookBeforeLoad func(ctx context.Context)

func (h *health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var problems []string
	if _, err := h.store.Head(r.Context()); err != nil {
		problems = append(problems, "store: "+err.Error())
	}
	if !h.nc.IsConnected() {
		problems = append(problems, "nats: not connected")
	}
	if !h.intakeLoaded.Load() {
		problems = append(problems, "intake: loading the ledger state (its snapshot, then the events after it)")
	} else if su := h.intake.Unavailable(); su != nil {
		// Disk full, read-only, I/O errors: the intake waits for the store.
		problems = append(problems, "store: "+su.Error(), "intake: stopped until the store can write; JetStream keeps the messages")
	} else if !h.intake.Ready() {
		msg := "intake: not consuming"
		if e := h.intake.LastError(); e != "" {
			msg = "intake: " + e
		}
		problems = append(problems, msg)
	}
	if !h.feedUp.Load() {
		problems = append(problems, "feed: not running")
	} else if err := h.feed.Problem(); err != nil {
		// Diverged from the store (at once), or failing for a while:
		// downstream consumers get nothing meanwhile.
		problems = append(problems, "feed: "+err.Error())
	}
	if err := h.projections.Ready(); err != nil {
		problems = append(problems, "projections: "+err.Error())
	}
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, p := range problems {
			_, _ = fmt.Fprintln(w, p)
		}
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

// idsLoader is a store that can be told to load the IDs of recent events
// it put off loading (bolt.Options.DeferIDLoad).
type idsLoader interface{ LoadIDs() }

// sharedStore reports whether --store names a store several ledgerd
// instances can share (EventStoreDB); the embedded bbolt file can be opened
// by one process only.
func sharedStore(cfg Config) bool {
	return cfg.Store != "" && !strings.HasPrefix(cfg.Store, "bolt:")
}

// openStore opens the event store --store names: the embedded bbolt store
// (default) or EventStoreDB.
func openStore(ctx context.Context, cfg Config) (events.Store, error) {
	if sharedStore(cfg) {
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s, err := esdb.Open(c, cfg.Store, esdb.Options{})
		if err != nil {
			return nil, fmt.Errorf("opening the EventStoreDB store (is it reachable, and the connection string right?): %w", err)
		}
		return s, nil
	}
	path := strings.TrimPrefix(cfg.Store, "bolt:")
	if path == "" {
		path = filepath.Join(cfg.DataDir, "ledger.db")
	}
	// The IDs of recent events (for idempotent appends) are loaded once
	// the intake has its state (idsLoader), not while it restores it: on
	// two cores that made a restart 0.25 s shorter.
	s, err := bolt.Open(path, bolt.Options{DeferIDLoad: true})
	if err != nil {
		return nil, fmt.Errorf("opening the event store %s: %w", path, err)
	}
	return s, nil
}

// checkpointSigner returns the configured checkpoint signer, or in demo mode
// one with a key made up for this run.
func checkpointSigner(cfg Config, log *slog.Logger) (*merkle.Signer, error) {
	key := cfg.CheckpointKey
	if key == "" {
		skey, vkey, err := merkle.GenerateKey(rand.Reader, "ledgerd-demo")
		if err != nil {
			return nil, err
		}
		key = skey
		log.Warn("demo mode: audit checkpoints are signed with a key made up for this run", "verifier_key", vkey)
	}
	s, err := merkle.NewSigner(key)
	if err != nil {
		return nil, &ConfigError{fmt.Sprintf("checkpoint signer key: %v", err)}
	}
	return s, nil
}

// personKeyer returns the keyer of person keys: the configured secret, or
// in demo mode one made up for this run.
func personKeyer(cfg Config, log *slog.Logger) (*person.Keyer, error) {
	secret := cfg.PersonKey
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
		log.Warn("demo mode: person keys are computed with an HMAC secret made up for this run: ID-number lookups will not match facts keyed with another secret (make run shares one in data/demo-person.key)")
	}
	k, err := person.NewKeyer(secret)
	if err != nil {
		return nil, &ConfigError{fmt.Sprintf("the person-key secret: %v", err)}
	}
	return k, nil
}

// openVault opens DATA-DIR/personal.db with the configured master key, or,
// in demo mode without one, a fresh DATA-DIR/personal-demo.db with a key
// made up for this run (the last run's demo vault, unreadable without its
// key, is removed; personal.db is never touched then).
func openVault(cfg Config, log *slog.Logger) (*vault.Vault, error) {
	path := filepath.Join(cfg.DataDir, "personal.db")
	key := cfg.VaultKey
	if len(key) == 0 {
		path = filepath.Join(cfg.DataDir, "personal-demo.db")
		key = make([]byte, vault.KeySize)
		_, _ = rand.Read(key)
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("removing the last run's demo vault: %w", err)
		}
		log.Warn("demo mode: personal data is kept in a vault encrypted with a master key made up for this run, unreadable after it (make run keeps one in data/demo-vault.key)", "path", path)
	}
	v, err := vault.Open(path, key)
	if errors.Is(err, vault.ErrWrongKey) {
		return nil, &ConfigError{fmt.Sprintf("the vault master key (--vault-key-file or LEDGER_VAULT_KEY) is not the one %s was made with", path)}
	}
	if err != nil {
		return nil, fmt.Errorf("opening the personal-data vault: %w", err)
	}
	return v, nil
}

// registerSealerMetrics exports how far the Merkle tree is behind the log.
func registerSealerMetrics(reg prometheus.Registerer, s *merkle.Sealer) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "subsidy_ledger_merkle_tree_size",
			Help: "Events sealed into the log's Merkle tree."}, func() float64 { return float64(s.Stats().Size) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "subsidy_ledger_merkle_sealed_position",
			Help: "Global log position of the last sealed event."}, func() float64 { return float64(s.Stats().Position) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "subsidy_ledger_merkle_seal_delay_seconds",
			Help: "Time from commit to seal of the last sealed batch."}, func() float64 { return s.Stats().LastDelay.Seconds() }),
	)
}

// goCollector is the Go runtime's usual metrics plus the heap the last
// collection found live (go_gc_heap_live_bytes): what the state holds, where
// go_memstats_heap_inuse_bytes also counts the garbage of the cycle.
func goCollector() prometheus.Collector {
	return collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)}))
}
