package ledgerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqhrss/subsidyledger/services/natsbus"
)

func TestParseConfig(t *testing.T) {
	env := map[string]string{"LEDGER_NATS_URL": "nats://10.0.0.1:4222", "LEDGER_BATCH_SIZE": "200", "LEDGER_API_TOKENS": "tokens.json", "LEDGER_CHECKPOINT_KEY": "PRIVATE+KEY+x+1+AAAA",
		"LEDGER_PERSON_KEY": strings.Repeat("p", 32), "LEDGER_VAULT_KEY": strings.Repeat("ab", 32)}
	c, err := ParseConfig([]string{"--batch-size", "300"}, func(k string) string { return env[k] }, io.Discard)
	if err == nil {
		_, err = ParseConfig(nil, func(string) string { return "" }, io.Discard)
		if !strings.Contains(fmt.Sprint(err), "--nats-users") {
			t.Fatalf("ParseConfig(no users, no demo) = %v; want a ConfigError asking for --nats-users", err)
		}
		err = nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if c.NATSURL != "nats://10.0.0.1:4222" || c.BatchSize != 300 || c.AckWait.String() != "30s" || string(c.PersonKey) != env["LEDGER_PERSON_KEY"] || len(c.VaultKey) != 32 {
		t.Fatalf("ParseConfig = %+v; want the environment's NATS URL, the flag's batch size and defaults", c)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--batch-size", "0"}, "--batch-size"},
		{[]string{"--ack-wait", "soon"}, "--ack-wait"},
		{[]string{"--feed-linger", "-1s"}, "--feed-linger"},
		{[]string{"--http-listen", "8080"}, "host:port"},
		{[]string{"--debug-listen", "6060"}, "--debug-listen"},
		{[]string{"--store", "postgres://x"}, "--store"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--subject-prefix", "a.*"}, "--subject-prefix"},
		{[]string{"--retry-delay", "-1s"}, "--retry-delay"},
		{[]string{"--seal-linger", "1h"}, "--seal-linger"},
		{[]string{"--feed-max-bytes", "lots"}, "--feed-max-bytes"},
		{[]string{"--feed-max-bytes", "-5GB"}, "--feed-max-bytes"},
		{[]string{"--feed-max-bytes", "9000000TiB"}, "--feed-max-bytes"},
		{[]string{"--feed-max-bytes", "512B"}, "at least 64MiB"}, // smaller than the events: the feed would forget where it was
		{[]string{"--feed-max-bytes", "1048576"}, "at least 64MiB"},
		{[]string{"--feed-max-events", "-1"}, "--feed-max-events"},
		{[]string{"--gomaxprocs", "0"}, "--gomaxprocs"},
		{[]string{"--gomaxprocs", "many"}, "--gomaxprocs"},
		{[]string{"stray"}, "unexpected argument"},
		{[]string{"--no-such-flag"}, "not defined"},
	} {
		_, err := ParseConfig(append([]string{"--demo"}, tc.args...), func(string) string { return "" }, io.Discard)
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConfig(%q) = %v; want a ConfigError mentioning %q", tc.args, err, tc.want)
		}
	}
}

// The feed's limits: none by default; sizes in decimal or binary units.
func TestFeedLimits(t *testing.T) {
	for _, tc := range []struct {
		args          []string
		bytes, events int64
	}{
		{nil, 0, 0},
		{[]string{"--feed-max-bytes", "50GiB"}, 50 << 30, 0},
		{[]string{"--feed-max-bytes", "200GB", "--feed-max-events", "1000000"}, 200e9, 1e6},
		{[]string{"--feed-max-bytes", "67108864"}, 64 << 20, 0},
		{[]string{"--feed-max-bytes", "64 MiB"}, 64 << 20, 0},
	} {
		c, err := ParseConfig(append([]string{"--demo"}, tc.args...), func(string) string { return "" }, io.Discard)
		if err != nil || c.FeedMaxBytes != tc.bytes || c.FeedMaxEvents != tc.events {
			t.Errorf("ParseConfig(%q): bytes %d, events %d, %v; want %d, %d", tc.args, c.FeedMaxBytes, c.FeedMaxEvents, err, tc.bytes, tc.events)
		}
	}
}

// TestGoMaxProcs: by default twice Go's own setting, unless GOMAXPROCS
// is set in the environment; a number given wins over both.
func TestGoMaxProcs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
		want int
	}{
		{nil, "", 2 * goDefaultProcs},
		{nil, "3", 0},
		{[]string{"--gomaxprocs", "auto"}, "", 2 * goDefaultProcs},
		{[]string{"--gomaxprocs", "5"}, "3", 5},
		{[]string{"--gomaxprocs", "1"}, "", 1},
	} {
		c, err := ParseConfig(append([]string{"--demo"}, tc.args...), func(k string) string {
			if k == "GOMAXPROCS" {
				return tc.env
			}
			return ""
		}, io.Discard)
		if err != nil || c.GoMaxProcs != tc.want {
			t.Errorf("ParseConfig(%q) with GOMAXPROCS=%q: GoMaxProcs %d, %v; want %d", tc.args, tc.env, c.GoMaxProcs, err, tc.want)
		}
	}
}

// TestPersonalDataKeys: outside --demo ledgerd refuses to start without the
// person-key secret and the vault's master key, or with bad ones, saying
// what to set; key files are read as ledgerctl reads them.
func TestPersonalDataKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := map[string]string{"LEDGER_NATS_URL": "nats://10.0.0.1:4222", "LEDGER_API_TOKENS": "tokens.json", "LEDGER_CHECKPOINT_KEY": "PRIVATE+KEY+x+1+AAAA"}
	secret, kek := strings.Repeat("s", 40), strings.Repeat("0f", 32)
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string // in the ConfigError; "" for none
	}{
		{"no person key", nil, map[string]string{"LEDGER_VAULT_KEY": kek}, "LEDGER_PERSON_KEY"},
		{"no vault key", nil, map[string]string{"LEDGER_PERSON_KEY": secret}, "LEDGER_VAULT_KEY"},
		{"short person key", nil, map[string]string{"LEDGER_PERSON_KEY": "short", "LEDGER_VAULT_KEY": kek}, "at least 32"},
		{"bad vault key", nil, map[string]string{"LEDGER_PERSON_KEY": secret, "LEDGER_VAULT_KEY": "0f0f"}, "32 bytes"},
		{"missing key file", []string{"--person-key-file", filepath.Join(dir, "nope"), "--vault-key-file", write("kek", kek)}, nil, "--person-key-file"},
		{"key files", []string{"--person-key-file", write("pk", secret+"\n"), "--vault-key-file", write("kek2", kek+"\n")}, nil, ""},
		{"env", nil, map[string]string{"LEDGER_PERSON_KEY": secret, "LEDGER_VAULT_KEY": kek}, ""},
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range tc.env {
			env[k] = v
		}
		c, err := ParseConfig(tc.args, func(k string) string { return env[k] }, io.Discard)
		var ce *ConfigError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: ParseConfig = %v; want no error", tc.name, err)
		case tc.want == "" && (string(c.PersonKey) != secret || len(c.VaultKey) != 32):
			t.Errorf("%s: person key %q, vault key %x; want %q and 32 bytes", tc.name, c.PersonKey, c.VaultKey, secret)
		case tc.want != "" && (!errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: ParseConfig = %v; want a ConfigError mentioning %q", tc.name, err, tc.want)
		}
	}
	// --demo needs neither.
	c, err := ParseConfig([]string{"--demo"}, func(string) string { return "" }, io.Discard)
	if err != nil || c.PersonKey != nil || c.VaultKey != nil {
		t.Errorf("ParseConfig(--demo) = %+v, %v; want no keys and no error", c, err)
	}
	// But a key file named and empty is refused, --demo or not: its key
	// would be made up for the run, and the vault unreadable after it.
	for _, flag := range []string{"--vault-key-file", "--person-key-file", "--checkpoint-key-file"} {
		empty := write("empty"+flag, "\n")
		_, err := ParseConfig([]string{"--demo", flag, empty}, func(string) string { return "" }, io.Discard)
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), flag+" "+empty+" is empty") {
			t.Errorf("ParseConfig(--demo %s EMPTY) = %v; want a ConfigError saying it is empty", flag, err)
		}
	}
}

// TestMaxPending: --max-pending is the inbound consumer's MaxAckPending
// (20,000 by default), never under four batches, and a restart with
// another value changes the consumer that exists.
func TestMaxPending(t *testing.T) {
	c, err := ParseConfig([]string{"--demo"}, func(string) string { return "" }, io.Discard)
	if err != nil || c.MaxPending != 20000 {
		t.Fatalf("ParseConfig(--demo): MaxPending %d, %v; want 20000", c.MaxPending, err)
	}
	for _, bad := range []string{"0", "-5", "many", "1000001"} {
		if _, err := ParseConfig([]string{"--demo", "--max-pending", bad}, func(string) string { return "" }, io.Discard); !strings.Contains(fmt.Sprint(err), "--max-pending") {
			t.Errorf("ParseConfig(--max-pending %s) = %v; want a ConfigError naming --max-pending", bad, err)
		}
	}
	dir := t.TempDir()
	for _, tc := range []struct{ maxPending, batch, want int }{{50000, 100, 50000}, {10, 100, 400}} {
		cfg := testConfig(t, dir, "")
		cfg.MaxPending, cfg.BatchSize = tc.maxPending, tc.batch
		in := start(t, cfg)
		nc, err := nats.Connect(in.addr.NATSURL)
		if err != nil {
			t.Fatal(err)
		}
		js, _ := jetstream.New(nc)
		cons, err := js.Consumer(context.Background(), natsbus.InboundStream, natsbus.LedgerConsumer)
		if err != nil {
			t.Fatal(err)
		}
		if got := cons.CachedInfo().Config.MaxAckPending; got != tc.want {
			t.Errorf("--max-pending %d, --batch-size %d: the consumer's MaxAckPending is %d, want %d", tc.maxPending, tc.batch, got, tc.want)
		}
		nc.Close()
		in.stop(t)
	}
}
