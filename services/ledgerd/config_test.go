package ledgerd

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	env := map[string]string{"LEDGER_NATS_URL": "nats://10.0.0.1:4222", "LEDGER_BATCH_SIZE": "200", "LEDGER_API_TOKENS": "tokens.json", "LEDGER_CHECKPOINT_KEY": "PRIVATE+KEY+x+1+AAAA"}
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
	if c.NATSURL != "nats://10.0.0.1:4222" || c.BatchSize != 300 || c.AckWait.String() != "30s" {
		t.Fatalf("ParseConfig = %+v; want the environment's NATS URL, the flag's batch size and defaults", c)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--batch-size", "0"}, "--batch-size"},
		{[]string{"--ack-wait", "soon"}, "--ack-wait"},
		{[]string{"--http-listen", "8080"}, "host:port"},
		{[]string{"--store", "postgres://x"}, "--store"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--subject-prefix", "a.*"}, "--subject-prefix"},
		{[]string{"--retry-delay", "-1s"}, "--retry-delay"},
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
