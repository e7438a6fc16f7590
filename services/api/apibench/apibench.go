// Package apibench measures the read API's query latency under load, for
// the benchmark harness (services/cmd/ledgerbench): the API is served on
// loopback over a projection Set that has caught up, and Debian's wrk
// drives trainee status lookups and the quota dashboard at a fixed rate,
// reporting p50/p90/p99.
//
// wrk has no rate option (that is wrk2); the rate is set by pacing each
// connection with wrk's Lua delay(): connections = rate/100, each waiting
// 10 ms minus the expected service time between requests. The achieved rate
// is reported beside the latencies.
package apibench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/trainee"
	"github.com/cqhrss/subsidyledger/services/api"
)

// Config configures Run.
type Config struct {
	// Projections is a running Set that has caught up; Store its log.
	Projections *projections.Set
	Store       events.Store
	// Rate is the request rate per query (default 5,000/s) and Duration
	// how long each query is driven (default 10 s).
	Rate     int
	Duration time.Duration
	// Year is the dashboard year (default 2026).
	Year int
	// Wrk is the wrk binary (default /usr/bin/wrk).
	Wrk string
	// Keys is how many person keys the trainee query draws from (default
	// 2,000, spread over the register).
	Keys int
}

// Latency is one query's figures.
type Latency struct {
	Query    string
	Requests int64
	// Rate is the achieved rate (requests/s).
	Rate          float64
	P50, P90, P99 time.Duration
	// Errors counts non-2xx responses and socket errors.
	Errors int64
}

// ErrNoWrk reports that wrk is not installed.
var ErrNoWrk = errors.New("apibench: wrk not found (apt-get install wrk)")

// Run serves the API on loopback and drives each query with wrk.
func Run(ctx context.Context, cfg Config) ([]Latency, error) {
	if cfg.Rate <= 0 {
		cfg.Rate = 5000
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Year == 0 {
		cfg.Year = 2026
	}
	if cfg.Wrk == "" {
		cfg.Wrk = "/usr/bin/wrk"
	}
	if cfg.Keys <= 0 {
		cfg.Keys = 2000
	}
	if _, err := os.Stat(cfg.Wrk); err != nil {
		return nil, ErrNoWrk
	}
	run, ok := cfg.Projections.Runner(trainee.Name)
	if !ok {
		return nil, fmt.Errorf("apibench: no trainee projection")
	}
	tm, ok := projections.CurrentOf[*trainee.Model](run)
	if !ok {
		return nil, fmt.Errorf("apibench: trainee projection of another type")
	}
	var keys []string
	n := tm.Count()
	step := max(1, n/cfg.Keys)
	for from := 0; from >= 0 && len(keys) < cfg.Keys; from += step {
		page, _ := tm.Page(from, 1)
		if len(page) == 0 {
			break
		}
		keys = append(keys, page[0].PersonKey)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("apibench: no trainees to look up")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: api.New(api.Config{Projections: cfg.Projections, Store: cfg.Store}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	dir, err := os.MkdirTemp("", "apibench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var out []Latency
	for _, q := range []struct {
		name, script string
	}{
		{"trainee status", traineeScript(keys)},
		{fmt.Sprintf("quota dashboard %d", cfg.Year), fmt.Sprintf("local path = %q\nrequest = function() return wrk.format(\"GET\", path) end\n", fmt.Sprintf("/v1/quota/%d", cfg.Year))},
	} {
		l, err := drive(ctx, cfg, dir, base, q.name, q.script)
		if err != nil {
			return out, err
		}
		out = append(out, l)
	}
	return out, nil
}

func traineeScript(keys []string) string {
	var b strings.Builder
	b.WriteString("local keys = {\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%q,\n", k)
	}
	b.WriteString("}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format(\"GET\", \"/v1/trainees/\" .. keys[(i % #keys) + 1])\nend\n")
	return b.String()
}

// pacing adds wrk's delay() so that conns connections make about rate
// requests per second.
func pacing(script string, conns, rate int) string {
	ms := 1000 * float64(conns) / float64(rate)
	return script + fmt.Sprintf("delay = function() return %d end\n", max(1, int(ms-0.5)))
}

var (
	pctRe  = regexp.MustCompile(`^\s*(50|75|90|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	reqRe  = regexp.MustCompile(`^\s*(\d+) requests in`)
	rateRe = regexp.MustCompile(`^Requests/sec:\s+([0-9.]+)`)
	errRe  = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)|Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func drive(ctx context.Context, cfg Config, dir, base, name, script string) (Latency, error) {
	conns := max(2, cfg.Rate/100)
	path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".lua")
	if err := os.WriteFile(path, []byte(pacing(script, conns, cfg.Rate)), 0o600); err != nil {
		return Latency{}, err
	}
	args := []string{"-t2", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(cfg.Duration.Seconds())) + "s", "--latency", "-s", path, base}
	cmd := exec.CommandContext(ctx, cfg.Wrk, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return Latency{}, fmt.Errorf("apibench: wrk %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return parse(name, stdout.String())
}

func parse(name, out string) (Latency, error) {
	l := Latency{Query: name}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := pctRe.FindStringSubmatch(line); m != nil {
			v, _ := strconv.ParseFloat(m[2], 64)
			unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]
			d := time.Duration(v * float64(unit))
			switch m[1] {
			case "50":
				l.P50 = d
			case "90":
				l.P90 = d
			case "99":
				l.P99 = d
			}
		}
		if m := reqRe.FindStringSubmatch(line); m != nil {
			l.Requests, _ = strconv.ParseInt(m[1], 10, 64)
		}
		if m := rateRe.FindStringSubmatch(line); m != nil {
			l.Rate, _ = strconv.ParseFloat(m[1], 64)
		}
		if m := errRe.FindStringSubmatch(line); m != nil {
			for _, s := range m[1:] {
				n, _ := strconv.ParseInt(s, 10, 64)
				l.Errors += n
			}
		}
	}
	if l.Requests == 0 || l.P99 == 0 {
		return l, fmt.Errorf("apibench: could not read wrk's output:\n%s", out)
	}
	return l, nil
}
