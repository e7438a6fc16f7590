package natsbus

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cqhrss/subsidyledger/events/person"
)

// ServerConfig configures the embedded NATS server.
type ServerConfig struct {
	// Addr is host:port to listen on for clients, e.g. 127.0.0.1:4222; port 0
	// or -1 picks a free port.
	Addr string
	// DataDir is where JetStream keeps its files (a "nats" folder is made in it).
	DataDir string
	// Logger receives the server's log lines; nil discards them.
	Logger *slog.Logger
	// ConfigFile, if set, is a nats-server configuration file whose settings
	// are loaded first; Addr, DataDir, Users, TLS and the durability
	// settings still apply.
	ConfigFile string
	// Users, if any, are required to authenticate, each with its role's
	// permissions (see Subjects.Permissions). Without users the server
	// accepts anyone: demo mode only.
	Users    []User
	Subjects Subjects
	// TLSCert and TLSKey (PEM files), if set, make client connections TLS.
	TLSCert, TLSKey string
}

// Server is a running embedded NATS server.
type Server struct {
	srv            *server.Server
	user, password string
	tls            bool
	feedAPI        string
	reporters      []string
}

// ReportingUsers are the users of role reporting: StreamOptions.FeedConsumers.
func (s *Server) ReportingUsers() []string { return s.reporters }

// FeedAPIPrefix is the JetStream API prefix under which ledgerd reaches
// SUBSIDY_FEED: FeedAPIPrefix with users (the feed's own account), empty
// otherwise (one account: the default API).
func (s *Server) FeedAPIPrefix() string { return s.feedAPI }

// Credentials are the user and password ledgerd itself connects with (empty
// without authentication).
func (s *Server) Credentials() (user, password string) { return s.user, s.password }

// StartServer starts an embedded NATS server with JetStream on file storage,
// syncing every write before acknowledging a publish (sync_interval: always),
// without taking over the process's signals.
func StartServer(cfg ServerConfig) (*Server, error) {
	host, portText, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("natsbus: listen address %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("natsbus: listen port %q: %w", portText, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{}
	if cfg.ConfigFile != "" {
		if opts, err = server.ProcessConfigFile(cfg.ConfigFile); err != nil {
			return nil, fmt.Errorf("natsbus: nats config %s: %w", cfg.ConfigFile, err)
		}
	}
	opts.ServerName = "ledgerd"
	opts.Host, opts.Port = host, port
	opts.JetStream = true
	opts.StoreDir = filepath.Join(cfg.DataDir, "nats")
	opts.SyncAlways = true
	opts.NoSigs = true
	opts.NoLog = cfg.Logger == nil
	opts.MaxPayload = 8 << 20
	var self Server
	if len(cfg.Users) > 0 {
		subj := cfg.Subjects
		if subj.Prefix == "" {
			subj = DefaultSubjects
		}
		for _, u := range cfg.Users {
			if u.Role == RoleReporting {
				self.reporters = append(self.reporters, u.Name)
			}
		}
		// The accounts (see LedgerAccount), replacing any a --nats-config
		// file defined.
		opts.Accounts = nil
		if err := opts.ProcessConfigString(subj.AccountsConfig(self.reporters)); err != nil {
			return nil, fmt.Errorf("natsbus: accounts: %w", err)
		}
		accounts := map[string]*server.Account{}
		for _, a := range opts.Accounts {
			accounts[a.Name] = a
		}
		opts.Users, self.user, self.password = serverUsers(subj, cfg.Users, accounts)
		self.feedAPI = FeedAPIPrefix
	}
	if err := moveStreams(filepath.Join(opts.StoreDir, "jetstream"), len(cfg.Users) > 0, opts.JetStreamKey != ""); err != nil {
		return nil, err
	}
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey})
		if err != nil {
			return nil, fmt.Errorf("natsbus: TLS certificate %s / key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
		}
		opts.TLSConfig, opts.TLS, self.tls = tc, true, true
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsbus: embedded server: %w", err)
	}
	if cfg.Logger != nil {
		srv.SetLoggerV2(slogAdapter{cfg.Logger}, false, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("natsbus: embedded server on %s not ready after 10s (is the port taken?)", cfg.Addr)
	}
	self.srv = srv
	return &self, nil
}

// InProcess is the server's in-process connection provider, for ledgerd's own
// connection (nats.InProcessServer): no socket, no TLS.
func (s *Server) InProcess() *server.Server { return s.srv }

// TLS reports whether client connections use TLS.
func (s *Server) TLS() bool { return s.tls }

// ClientURL is the URL clients connect to.
func (s *Server) ClientURL() string { return s.srv.ClientURL() }

// Shutdown stops the server and waits for it to finish.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

// slogAdapter writes the embedded server's log into ledgerd's, every line
// with its resident ID numbers masked: the server quotes subjects (a
// refused publish on a subject a publisher put a person in).
type slogAdapter struct{ l *slog.Logger }

func line(format string, v []any) string { return person.RedactIDString(fmt.Sprintf(format, v...)) }

func (a slogAdapter) Noticef(format string, v ...any) { a.l.Info(line(format, v)) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(line(format, v)) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(line(format, v)) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.l.Error(line(format, v)) }
func (a slogAdapter) Debugf(format string, v ...any)  { a.l.Debug(line(format, v)) }
func (a slogAdapter) Tracef(format string, v ...any)  {}
