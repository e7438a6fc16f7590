package ledgerd

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/services/natsbus"
	"github.com/cqhrss/subsidyledger/services/vault"
)

// Config is ledgerd's configuration. Every flag can also be set by an
// environment variable named LEDGER_ plus the flag name in upper case with
// '-' as '_' (e.g. --nats-url and LEDGER_NATS_URL); a flag wins over the
// environment.
type Config struct {
	DataDir    string
	Store      string
	NATSListen string
	NATSURL    string
	NATSConfig string
	HTTPListen string
	// DebugListen, when set, serves Go's profiling endpoints
	// (net/http/pprof) on a listener of their own.
	DebugListen   string
	SubjectPrefix string
	BatchSize     int
	// MaxPending bounds the inbound messages delivered to the intake and
	// not yet acknowledged (the consumer's MaxAckPending; at least four
	// batches).
	MaxPending int
	AckWait    time.Duration
	FeedBatch  int
	// IntakeSnapshotEvery: the intake snapshots the rules' World after
	// this many events (ingest.Config.SnapshotEvery).
	IntakeSnapshotEvery int
	FeedLinger          time.Duration
	// FeedMaxBytes and FeedMaxEvents bound the outbound feed's stream
	// (natsbus.StreamOptions); 0 keeps every event.
	FeedMaxBytes  int64
	FeedMaxEvents int64
	// FeedAPIPrefix is the JetStream API prefix of the account that holds
	// SUBSIDY_FEED on an external NATS (natsbus.FeedAccount); empty: the
	// account ledgerd connects to. The embedded server with users sets
	// its own (natsbus.FeedAPIPrefix).
	FeedAPIPrefix string
	// FeedConsumers are the reporting users whose durable consumers of
	// SUBSIDY_FEED ledgerd makes on an external NATS
	// (natsbus.StreamOptions.FeedConsumers); the embedded server's are
	// the users file's reporting users.
	FeedConsumers []string
	SealLinger    time.Duration
	LogLevel      string
	Replicas      int
	// Demo allows an embedded NATS server without authentication.
	Demo bool
	// ChangeFeed publishes every projection change on NATS.
	ChangeFeed bool
	// NATSUsers is the users file of the embedded server (natsbus.UsersFile).
	NATSUsers string
	// NATSTLSCert and NATSTLSKey make the embedded server's client
	// connections TLS.
	NATSTLSCert, NATSTLSKey string
	// NATSUser and NATSPassword, or NATSCreds, authenticate ledgerd to an
	// external NATS.
	NATSUser, NATSPassword, NATSCreds string
	// APITokens is the bearer-tokens file of the HTTP API (api.LoadTokens).
	APITokens string
	// MetricsTokens is the scrape-tokens file of /metrics (scrapeGuard);
	// empty: /metrics is served to anyone who reaches the HTTP port.
	MetricsTokens string
	// CheckpointKey is the note signer key of audit checkpoints (the text
	// ledgerctl keygen writes), CheckpointEvery their period.
	CheckpointKey   string
	CheckpointEvery time.Duration
	// PersonKey is the secret of the keyed HMAC that turns ID numbers into
	// person keys (person.NewKeyer): the same secret the publishing
	// services and ledgerctl use. Empty only in demo mode (a throw-away one).
	PersonKey []byte
	// VaultKey is the master key (KEK) of the personal-data vault
	// (DATA-DIR/personal.db), vault.KeySize bytes. Empty only in demo mode.
	VaultKey []byte
	// ReferenceWait and RetryDelay: see ingest.Config.
	ReferenceWait time.Duration
	RetryDelay    time.Duration
	// GoMaxProcs is what Run sets runtime.GOMAXPROCS to; 0 leaves it
	// (see the --gomaxprocs flag).
	GoMaxProcs int
	// MemoryLimit is the Go runtime's soft memory limit Run sets
	// (debug.SetMemoryLimit); 0 leaves the runtime's (see --memory-limit).
	MemoryLimit int64
	// RuleSet is what the intake decides under: rules.DefaultRuleSet(),
	// or the file --rule-set names (rules.ReadRuleSet).
	RuleSet rules.RuleSet
}

// goDefaultProcs is Go's own GOMAXPROCS for this process (the CPUs it may
// use, cgroup limits included), taken before anything changes it.
var goDefaultProcs = runtime.GOMAXPROCS(0)

// ConfigError is a configuration a person must fix.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return "configuration: " + e.Msg }

// ParseConfig reads flags (args without the program name) and environment.
func ParseConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("ledgerd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	str := func(p *string, name, def, usage string) { fs.StringVar(p, name, envOr(getenv, name, def), usage) }
	str(&c.DataDir, "data-dir", "data", "directory for the embedded store and the embedded NATS server's JetStream files")
	str(&c.Store, "store", "", "event store: bolt:PATH for the embedded bbolt store (default DATA-DIR/ledger.db), or an EventStoreDB/KurrentDB connection string esdb://host:2113,...?tls=...")
	str(&c.NATSListen, "nats-listen", "127.0.0.1:4222", "address of the embedded NATS server (ignored with --nats-url)")
	str(&c.NATSURL, "nats-url", "", "URL(s) of an external NATS JetStream server or cluster; when set no embedded server runs")
	str(&c.NATSConfig, "nats-config", "", "nats-server configuration file for the embedded server (accounts, TLS)")
	str(&c.HTTPListen, "http-listen", "127.0.0.1:8080", "address of the HTTP server (health, readiness, metrics, API)")
	str(&c.DebugListen, "debug-listen", "", "address of Go's profiling endpoints (/debug/pprof/), unauthenticated: keep it on loopback; empty: off")
	str(&c.SubjectPrefix, "subject-prefix", "subsidy", "prefix of every NATS subject the ledger uses")
	str(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	str(&c.APITokens, "api-tokens", "", "bearer-tokens file of the HTTP API and dashboard: SHA-256 of each token and its scope (municipal, auditor, district:<unit>, institution:<id>)")
	str(&c.MetricsTokens, "metrics-token-file", "", "file of the SHA-256 of each bearer token that may read /metrics (64 hex characters a line; Prometheus sends the token from authorization.credentials_file); empty: /metrics is open to anyone who reaches --http-listen")
	var keyFile, every string
	str(&keyFile, "checkpoint-key-file", "", "file holding the Ed25519 note signer key of the audit checkpoints (ledgerctl keygen); or the key itself in LEDGER_CHECKPOINT_KEY")
	var personKeyFile, vaultKeyFile string
	str(&personKeyFile, "person-key-file", "", "file holding the secret of the keyed HMAC that turns ID numbers into person keys (at least 32 bytes; the publishing services and ledgerctl use the same); or the secret itself in LEDGER_PERSON_KEY")
	str(&vaultKeyFile, "vault-key-file", "", "file holding the master key of the personal-data vault DATA-DIR/personal.db (32 bytes, hex or base64); or the key itself in LEDGER_VAULT_KEY")
	str(&every, "checkpoint-every", "1m", "how often a signed checkpoint of the log's Merkle tree is issued")
	str(&c.NATSUsers, "nats-users", "", "users file of the embedded NATS server: each internal service's user, password (or bcrypt hash) and role")
	str(&c.NATSTLSCert, "nats-tls-cert", "", "PEM certificate: the embedded NATS server's client connections use TLS")
	str(&c.NATSTLSKey, "nats-tls-key", "", "PEM private key of --nats-tls-cert")
	str(&c.NATSUser, "nats-user", "", "user ledgerd connects to an external NATS with")
	str(&c.NATSPassword, "nats-password", "", "password of --nats-user (prefer LEDGER_NATS_PASSWORD)")
	str(&c.NATSCreds, "nats-creds", "", "NATS credentials file (JWT + nkey) ledgerd connects to an external NATS with")
	cfEnv := envOr(getenv, "changefeed", "true")
	fs.BoolVar(&c.ChangeFeed, "changefeed", cfEnv == "true" || cfEnv == "1", "publish the projections' changes on <prefix>.projection.<name> (one message per event per read model)")
	demoEnv := envOr(getenv, "demo", "")
	fs.BoolVar(&c.Demo, "demo", demoEnv == "true" || demoEnv == "1", "demo mode (make run), never for real data: unauthenticated NATS and HTTP API (municipal scope), and a checkpoint key, person-key secret and vault key made up for the run where none is given")
	var procs string
	str(&procs, "gomaxprocs", "auto", "threads running Go code at once: auto is twice the CPUs the process may use, unless the GOMAXPROCS environment variable is set (then Go's setting stands); or a number from 1 to 1024. More threads than CPUs let the embedded NATS server's goroutines that come back from an fsync run at once instead of queueing behind the ledger's own work")
	var memLimit string
	str(&memLimit, "memory-limit", "auto", "the Go runtime's soft memory limit: as the heap nears it the collector works harder, instead of the process being killed for its memory. auto is 90% of the container's (control group's) memory limit, if it has one and the GOMEMLIMIT environment variable is not set; off leaves it to GOMEMLIMIT (none by default); or a size such as 3GiB")
	var ruleSetFile string
	str(&ruleSetFile, "rule-set", "", "JSON file of the rule set the ledger decides under (version, yearly cap, notice length, holiday calendar, ...): every parameter named, as ledgerctl rules writes it; empty: the built-in rule set ("+rules.DefaultRuleSet().Version+"). Give it a new version whenever a parameter changes, e.g. to add next year's holidays")
	var intakeSnap string
	str(&intakeSnap, "intake-snapshot-every", "10000000", "events after which the intake writes another snapshot of the rules' state (consuming pauses meanwhile: about 20 s for 10 million events, 18-23 s measured on two idle cores, longer on a busy machine); a restart folds only the events after the last, and a stop writes one if 10,000 or more came since")
	var batch, feedBatch, feedLinger, sealLinger, replicas, ackWait, refWait, retryDelay string
	str(&refWait, "reference-wait", "60s", "how long a fact that refers to something not yet recorded waits for it before it is rejected")
	str(&retryDelay, "retry-delay", "250ms", "how often such a waiting fact is decided again")
	var maxPending string
	str(&maxPending, "max-pending", "20000", "inbound messages delivered and not yet acknowledged, at most (at least four batches). Facts waiting for what they refer to count among them: when this many wait, nothing more is delivered, what they wait for included, until --reference-wait rejects them. A backfill that publishes more facts than this before what they refer to needs more, or publishing in the order the README gives (bureau reference data and fee schedules, enrolment, evaluation, district, payment, bureau corrections)")
	str(&batch, "batch-size", "2000", "inbound messages decided and appended per batch (at most; a batch takes what has arrived while the previous one is written)")
	str(&feedBatch, "feed-batch", "500", "events per atomic publish on the outbound feed (at most 1000)")
	str(&feedLinger, "feed-linger", "50ms", "how long a short outbound feed batch waits for more events (each atomic publish costs the NATS server an fsync); 0 publishes at once")
	var feedMaxBytes, feedMaxEvents string
	str(&feedMaxBytes, "feed-max-bytes", "0", "size the outbound feed's stream SUBSIDY_FEED may reach before its oldest events leave it, e.g. 50GiB or 200GB; 0 keeps every event")
	str(&c.FeedAPIPrefix, "feed-js-api-prefix", "", "with --nats-url: the JetStream API prefix under which the outbound feed's stream SUBSIDY_FEED is reached when it lives in an account of its own (the deployments' nats/auth.conf: $JS.FEED.API); empty: ledgerd's own account. The embedded server with --nats-users keeps it in such an account by itself")
	var feedConsumers string
	str(&feedConsumers, "feed-consumers", "", "with --nats-url: the reporting users (comma-separated) whose durable consumers of SUBSIDY_FEED ledgerd makes, each named after its user (the deployments: reporting); reporting users may not make consumers themselves. The embedded server with --nats-users makes one for each reporting user of the file")
	str(&feedMaxEvents, "feed-max-events", "0", "events the outbound feed's stream may hold before its oldest leave it; 0 keeps every event")
	str(&sealLinger, "seal-linger", "200ms", "how long the Merkle sealer lets commits gather before it seals them in one transaction (each costs merkle.db two fdatasyncs); it widens the window between append and seal by as much; 0 seals at once")
	str(&replicas, "replicas", "1", "JetStream stream replicas (3 on a cluster)")
	str(&ackWait, "ack-wait", "30s", "how long an inbound message may stay unacknowledged before redelivery")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, &ConfigError{err.Error()}
	}
	if fs.NArg() > 0 {
		return c, &ConfigError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	var errs []error
	intIn := func(name, v string, lo, hi int) int {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			errs = append(errs, &ConfigError{fmt.Sprintf("--%s %q: want a whole number from %d to %d", name, v, lo, hi)})
		}
		return n
	}
	c.BatchSize = intIn("batch-size", batch, 1, 10000)
	c.MaxPending = intIn("max-pending", maxPending, 1, 1_000_000)
	switch {
	case procs != "auto":
		c.GoMaxProcs = intIn("gomaxprocs", procs, 1, 1024)
	case getenv("GOMAXPROCS") == "":
		c.GoMaxProcs = 2 * goDefaultProcs
	}
	c.FeedBatch = intIn("feed-batch", feedBatch, 1, 1000)
	var err error
	switch memLimit {
	case "auto":
		c.MemoryLimit = autoMemoryLimit(getenv)
	case "off":
	default:
		if c.MemoryLimit, err = parseSize(memLimit); err != nil || c.MemoryLimit < 64<<20 {
			errs = append(errs, &ConfigError{fmt.Sprintf("--memory-limit %q: want auto, off or a size of at least 64MiB, such as 3GiB", memLimit)})
		}
	}
	// At least minFeedBytes: the stream must always hold its last event,
	// whose position is where the feed resumes (a stream that holds none
	// is taken as a feed that published none, and the whole log goes out
	// again).
	if c.FeedMaxBytes, err = parseSize(feedMaxBytes); err != nil || (c.FeedMaxBytes != 0 && c.FeedMaxBytes < minFeedBytes) {
		errs = append(errs, &ConfigError{fmt.Sprintf("--feed-max-bytes %q: want 0 or a size of at least 64MiB, such as 50GiB, 200GB or 67108864", feedMaxBytes)})
	}
	if c.FeedMaxEvents, err = strconv.ParseInt(feedMaxEvents, 10, 64); err != nil || c.FeedMaxEvents < 0 {
		errs = append(errs, &ConfigError{fmt.Sprintf("--feed-max-events %q: want 0 or a whole number of events", feedMaxEvents)})
	}
	c.IntakeSnapshotEvery = intIn("intake-snapshot-every", intakeSnap, 1, 1<<30)
	c.Replicas = intIn("replicas", replicas, 1, 5)
	for _, d := range []struct {
		name, v string
		p       *time.Duration
	}{{"reference-wait", refWait, &c.ReferenceWait}, {"retry-delay", retryDelay, &c.RetryDelay}} {
		v, err := time.ParseDuration(d.v)
		if err != nil || v <= 0 {
			errs = append(errs, &ConfigError{fmt.Sprintf("--%s %q: want a positive duration, e.g. 250ms or 60s", d.name, d.v)})
		}
		*d.p = v
	}
	linger, err := time.ParseDuration(feedLinger)
	if err != nil || linger < 0 || linger > time.Minute {
		errs = append(errs, &ConfigError{fmt.Sprintf("--feed-linger %q: want a duration from 0 to 1m, e.g. 50ms", feedLinger)})
	}
	c.FeedLinger = linger
	if c.SealLinger, err = time.ParseDuration(sealLinger); err != nil || c.SealLinger < 0 || c.SealLinger > 10*time.Second {
		errs = append(errs, &ConfigError{fmt.Sprintf("--seal-linger %q: want a duration from 0 to 10s, e.g. 200ms", sealLinger)})
	}
	d, err := time.ParseDuration(ackWait)
	if err != nil || d < time.Second {
		errs = append(errs, &ConfigError{fmt.Sprintf("--ack-wait %q: want a duration of at least 1s, e.g. 30s", ackWait)})
	}
	c.AckWait = d
	for _, a := range []struct{ name, v string }{{"http-listen", c.HTTPListen}, {"nats-listen", c.NATSListen}, {"debug-listen", c.DebugListen}} {
		if a.v == "" && a.name == "debug-listen" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			errs = append(errs, &ConfigError{fmt.Sprintf("--%s %q: want host:port, e.g. 127.0.0.1:8080", a.name, a.v)})
		}
	}
	if c.NATSURL == "" && c.NATSUsers == "" && !c.Demo {
		errs = append(errs, &ConfigError{"the embedded NATS server needs --nats-users (each internal service's credentials; see \"Who may publish\" in the README), or --demo to run it without authentication"})
	}
	c.RuleSet = rules.DefaultRuleSet()
	if ruleSetFile != "" {
		f, err := os.Open(ruleSetFile)
		if err == nil {
			c.RuleSet, err = rules.ReadRuleSet(f)
			f.Close()
		}
		if err != nil {
			errs = append(errs, &ConfigError{fmt.Sprintf("--rule-set: %v", err)})
		} else if def := rules.DefaultRuleSet(); c.RuleSet.Version == def.Version && c.RuleSet.Fingerprint() != def.Fingerprint() {
			// One version, two sets of parameters: replays could not tell
			// which a decision was made under.
			errs = append(errs, &ConfigError{fmt.Sprintf("--rule-set: the file changes parameters of the built-in rule set %s but keeps its version: give it a version of its own", def.Version)})
		}
	}
	c.CheckpointKey = getenv("LEDGER_CHECKPOINT_KEY")
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			errs = append(errs, &ConfigError{fmt.Sprintf("--checkpoint-key-file: %v", err)})
		} else if len(bytes.TrimSpace(b)) == 0 {
			errs = append(errs, emptyKeyFile("--checkpoint-key-file", keyFile))
		}
		c.CheckpointKey = strings.TrimSpace(string(b))
	}
	if c.CheckpointKey == "" && !c.Demo {
		errs = append(errs, &ConfigError{"audit checkpoints need a signer key: --checkpoint-key-file or LEDGER_CHECKPOINT_KEY (make one with ledgerctl keygen), or --demo for a key made up for this run"})
	}
	secret := getenv("LEDGER_PERSON_KEY")
	if personKeyFile != "" {
		b, err := os.ReadFile(personKeyFile)
		if err != nil {
			errs = append(errs, &ConfigError{fmt.Sprintf("--person-key-file: %v", err)})
		} else if len(bytes.TrimSpace(b)) == 0 {
			errs = append(errs, emptyKeyFile("--person-key-file", personKeyFile))
		}
		secret = strings.TrimRight(string(b), "\r\n") // as ledgerctl reads it
	}
	switch {
	case secret == "" && !c.Demo:
		errs = append(errs, &ConfigError{"person keys need the HMAC secret the publishing services use: --person-key-file or LEDGER_PERSON_KEY (at least 32 bytes, e.g. openssl rand -hex 32), or --demo for a secret made up for this run"})
	case secret != "" && len(secret) < person.MinKeyLen:
		errs = append(errs, &ConfigError{fmt.Sprintf("the person-key secret (--person-key-file or LEDGER_PERSON_KEY) has %d bytes; want at least %d", len(secret), person.MinKeyLen)})
	case secret != "":
		c.PersonKey = []byte(secret)
	}
	vk := getenv("LEDGER_VAULT_KEY")
	if vaultKeyFile != "" {
		b, err := os.ReadFile(vaultKeyFile)
		if err != nil {
			errs = append(errs, &ConfigError{fmt.Sprintf("--vault-key-file: %v", err)})
		} else if len(bytes.TrimSpace(b)) == 0 {
			errs = append(errs, emptyKeyFile("--vault-key-file", vaultKeyFile))
		}
		vk = string(b)
	}
	if vk == "" && !c.Demo {
		errs = append(errs, &ConfigError{"the personal-data vault needs a master key: --vault-key-file or LEDGER_VAULT_KEY (32 bytes, hex or base64, e.g. openssl rand -hex 32), or --demo for a key made up for this run"})
	} else if vk != "" {
		k, err := vault.ParseKey(vk)
		if err != nil {
			errs = append(errs, &ConfigError{"the vault master key (--vault-key-file or LEDGER_VAULT_KEY): want 32 bytes as 64 hex characters or base64"})
		}
		c.VaultKey = k
	}
	if d, err := time.ParseDuration(every); err != nil || d < time.Second {
		errs = append(errs, &ConfigError{fmt.Sprintf("--checkpoint-every %q: want a duration of at least 1s, e.g. 1m", every)})
	} else {
		c.CheckpointEvery = d
	}
	if c.APITokens == "" && !c.Demo {
		errs = append(errs, &ConfigError{"the HTTP API needs --api-tokens (who may read what), or --demo to serve it unauthenticated with the municipal scope"})
	}
	for _, n := range strings.Split(feedConsumers, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		} else if !natsbus.ValidUserName(n) {
			errs = append(errs, &ConfigError{fmt.Sprintf("--feed-consumers: %q is not a NATS user name (letters, digits, '-' and '_')", n)})
		}
		c.FeedConsumers = append(c.FeedConsumers, n)
	}
	if len(c.FeedConsumers) > 0 && c.NATSURL == "" {
		errs = append(errs, &ConfigError{"--feed-consumers goes with --nats-url: the embedded server makes one for each reporting user of --nats-users"})
	}
	if c.FeedAPIPrefix != "" && c.NATSURL == "" {
		errs = append(errs, &ConfigError{"--feed-js-api-prefix goes with --nats-url: the embedded server chooses the feed's account itself"})
	}
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		errs = append(errs, &ConfigError{"--nats-tls-cert and --nats-tls-key go together"})
	}
	if c.Store != "" && !strings.HasPrefix(c.Store, "bolt:") && !strings.HasPrefix(c.Store, "esdb://") &&
		!strings.HasPrefix(c.Store, "esdb+discover://") && !strings.HasPrefix(c.Store, "kurrentdb://") {
		errs = append(errs, &ConfigError{fmt.Sprintf("--store %q: want bolt:PATH or esdb://host:port (EventStoreDB)", c.Store)})
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, &ConfigError{fmt.Sprintf("--log-level %q: want debug, info, warn or error", c.LogLevel)})
	}
	if c.SubjectPrefix == "" || strings.ContainsAny(c.SubjectPrefix, " *>") {
		errs = append(errs, &ConfigError{fmt.Sprintf("--subject-prefix %q: want a NATS subject without wildcards", c.SubjectPrefix)})
	}
	return c, errors.Join(errs...)
}

// parseSize reads a byte count: digits, optionally followed by B, kB, MB,
// GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).
// minFeedBytes is the least --feed-max-bytes: many times the largest event
// (a fact is at most 64 KiB; a rejection keeps at most that of its message).
const minFeedBytes = 64 << 20

func parseSize(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	digits, mult := strings.TrimSpace(v), int64(1)
	for _, u := range units {
		if d, ok := strings.CutSuffix(digits, u.suffix); ok {
			digits, mult = strings.TrimSpace(d), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	switch {
	case err != nil:
		return 0, err
	case n < 0 || n > math.MaxInt64/mult:
		return 0, errors.New("out of range")
	}
	return n * mult, nil
}

func envOr(getenv func(string) string, flagName, def string) string {
	if v := getenv("LEDGER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))); v != "" {
		return v
	}
	return def
}

// emptyKeyFile is the error of a key file named but empty. Even with
// --demo it is refused: the key would be made up for the run, and what was
// kept under it (the vault's personal data) unreadable after it.
func emptyKeyFile(flag, path string) *ConfigError {
	return &ConfigError{fmt.Sprintf("%s %s is empty (a file named must hold the key; without the flag --demo makes one up for the run)", flag, path)}
}
