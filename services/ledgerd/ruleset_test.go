package ledgerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/services/internal/natstest"
)

// writeRuleSet writes the default rule set under another version, with
// edit applied to its file text, and returns the file's path.
func writeRuleSet(t *testing.T, version string, edit func(string) string) string {
	t.Helper()
	var b bytes.Buffer
	if err := rules.DefaultRuleSet().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(b.String(), `"version": "`+rules.DefaultRuleSet().Version+`"`, `"version": "`+version+`"`, 1)
	if edit != nil {
		s = edit(s)
	}
	path := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRuleSetFlag(t *testing.T) {
	parse := func(args []string, env map[string]string) (Config, error) {
		return ParseConfig(append([]string{"--demo"}, args...), func(k string) string { return env[k] }, io.Discard)
	}
	c, err := parse(nil, nil)
	if err != nil || c.RuleSet.Fingerprint() != rules.DefaultRuleSet().Fingerprint() {
		t.Fatalf("no --rule-set: %v, %q; want the built-in rule set", err, c.RuleSet.Version)
	}
	path := writeRuleSet(t, "2026.bureau", func(s string) string {
		return strings.Replace(s, `"notice_working_days": 5`, `"notice_working_days": 7`, 1)
	})
	for _, tc := range []struct {
		args []string
		env  map[string]string
	}{{[]string{"--rule-set", path}, nil}, {nil, map[string]string{"LEDGER_RULE_SET": path}}} {
		c, err := parse(tc.args, tc.env)
		if err != nil || c.RuleSet.Version != "2026.bureau" || c.RuleSet.NoticeWorkingDays != 7 {
			t.Errorf("%v %v: %v, %+v; want the file's rule set", tc.args, tc.env, err, c.RuleSet)
		}
	}
	bad := writeRuleSet(t, "2026.bad", func(s string) string { return strings.Replace(s, `"yearly_cap": 1,`, ``, 1) })
	builtin := rules.DefaultRuleSet().Version
	sameVersion := writeRuleSet(t, builtin, func(s string) string {
		return strings.Replace(s, `"notice_working_days": 5`, `"notice_working_days": 7`, 1)
	})
	if c, err := parse([]string{"--rule-set", writeRuleSet(t, builtin, nil)}, nil); err != nil || c.RuleSet.Version != builtin {
		t.Errorf("the built-in rule set as a file: %v", err)
	}
	for _, tc := range []struct{ path, says string }{
		{bad, "missing [yearly_cap]"},
		{sameVersion, "keeps its version"},
		{filepath.Join(t.TempDir(), "none.json"), "no such file"},
	} {
		_, err := parse([]string{"--rule-set", tc.path}, nil)
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "--rule-set") || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("--rule-set %s: %v; want a ConfigError saying %q", tc.path, err, tc.says)
		}
	}
}

func TestCalendarWarning(t *testing.T) {
	rs := rules.DefaultRuleSet() // calendar through 2026
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		now  string
		warn bool
	}{
		{"2026-06-01T00:00:00Z", false},
		// 45 days before midnight of 1 January 2027 in Chongqing (UTC+8).
		{"2026-11-16T15:59:59Z", false},
		{"2026-11-16T16:00:00Z", true},
		{"2026-11-27T09:00:00Z", true},
		{"2027-03-01T00:00:00Z", true},
	} {
		w := calendarWarning(rs, at(tc.now))
		if (w != "") != tc.warn {
			t.Errorf("at %s: %q; want a warning: %v", tc.now, w, tc.warn)
		}
		if w != "" && (!strings.Contains(w, "ends with 2026") || !strings.Contains(w, "2027 calendar") || !strings.Contains(w, "--rule-set")) {
			t.Errorf("at %s: %q names neither the year nor the remedy", tc.now, w)
		}
	}
	rs.CalendarThrough = 2027
	if w := calendarWarning(rs, at("2026-11-27T09:00:00Z")); w != "" {
		t.Errorf("a calendar through 2027 on 2026-11-27: %q", w)
	}
}

// TestRuleSetFileDecides runs ledgerd under a rule set file: its metrics
// name the file's version and calendar, and every decision it derives
// records the file's version.
func TestRuleSetFileDecides(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, "")
	cfg.NATSListen = fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t, "127.0.0.1"))
	f, err := os.Open(writeRuleSet(t, "2026.file", func(s string) string {
		return strings.Replace(s, `"calendar_through": 2026`, `"calendar_through": 2030`, 1)
	}))
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuleSet, err = rules.ReadRuleSet(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	lanes, _, _ := mixedExpect(t, 20)
	led := start(t, cfg)
	for name, want := range map[string]float64{
		`subsidy_ledger_rule_set_info{version="2026.file"}`: 1,
		"subsidy_ledger_rule_set_calendar_through_year":     2030,
	} {
		if v, ok := metric(t, led.addr.HTTPAddr, name); !ok || v != want {
			t.Errorf("%s = %v (found: %v); want %v", name, v, ok, want)
		}
	}
	nc, err := nats.Connect(led.addr.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	publish(t, js, lanes)
	waitDrained(t, js)
	led.stop(t)

	s, err := bolt.Open(filepath.Join(dir, "ledger.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs, err := s.ReadAll(context.Background(), events.Start, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	derived := 0
	for _, r := range recs {
		env, err := codec.Envelope(r.EventData)
		if err != nil {
			t.Fatal(err)
		}
		if v := env.GetRuleSetVersion(); v != "" {
			derived++
			if v != "2026.file" {
				t.Fatalf("%s at %d decided under %q; want 2026.file", r.Type, r.Position, v)
			}
		}
	}
	if derived == 0 {
		t.Fatalf("no derived decision among %d events", len(recs))
	}
	t.Logf("%d of %d events derived, each under 2026.file", derived, len(recs))
}
