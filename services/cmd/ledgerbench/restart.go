package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cqhrss/subsidyledger/services/ledgerd"
)

// measureLedgerdRestart measures the whole of a ledgerd restart on the
// generated store: this binary re-executed as ledgerd (--demo, embedded
// NATS) on a data directory holding a copy of the store, from the start of
// the process to /readyz answering 200. The data directory is kept in the
// scratch directory and reused: its first start folds the log, writes the
// snapshots and republishes the log on the feed (minutes for 10 million
// events); every run starts ledgerd once and waits until its followers
// (projections, feed, Merkle sealer) have caught up and it has stopped, so
// that each measured restart finds what a restart in production finds.
func measureLedgerdRestart(ctx context.Context, storePath, dir string, rounds int, logf func(string, ...any)) ([]time.Duration, error) {
	data := filepath.Join(dir, "ledgerd-"+strings.TrimSuffix(filepath.Base(storePath), ".db"))
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(data, "ledger.db")); errors.Is(err, os.ErrNotExist) {
		logf("copying the store into %s (once; later runs reuse it)", data)
		if err := copyFile(storePath, filepath.Join(data, "ledger.db")); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	t0 := time.Now()
	logPath := data + ".log"
	p, err := startLedgerd(data, logPath)
	if err != nil {
		return nil, err
	}
	err = p.waitReady(ctx, 15*time.Minute)
	if err == nil {
		err = ledgerd.WaitCaughtUp(ctx, p.base+"/metrics", 30*time.Minute)
	}
	if serr := p.stop(); err == nil {
		err = serr
	}
	if err != nil {
		return nil, fmt.Errorf("ledgerd's first start: %w", err)
	}
	logf("ledgerd started and caught up with the store in %v; restarting it %d times", time.Since(t0).Round(time.Second), rounds)
	var took []time.Duration
	for range rounds {
		t0 := time.Now()
		p, err := startLedgerd(data, logPath)
		if err != nil {
			return took, err
		}
		err = p.waitReady(ctx, 5*time.Minute)
		d := time.Since(t0)
		if serr := p.stop(); err == nil {
			err = serr
		}
		if err != nil {
			return took, err
		}
		logf("ledgerd restart: /readyz 200 after %v", d.Round(time.Millisecond))
		took = append(took, d)
	}
	return took, nil
}

// ledgerdProc is this binary re-executed as ledgerd (--demo, its embedded
// NATS server and HTTP on free loopback ports), as the soak and the
// restart figures run it: a process of its own, measured alone.
type ledgerdProc struct {
	cmd    *exec.Cmd
	base   string // http://host:port
	nats   string // nats://host:port
	debug  string // http://host:port of Go's profiling endpoints
	log    string
	exited chan struct{}
}

// startLedgerd starts ledgerd on the data directory data, its output in
// logPath, with extra flags.
func startLedgerd(data, logPath string, flags ...string) (*ledgerdProc, error) {
	natsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	debugAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	p := &ledgerdProc{base: "http://" + httpAddr, nats: "nats://" + natsAddr, debug: "http://" + debugAddr, log: logPath, exited: make(chan struct{})}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// Not tied to a context: stop ends it as an operator would.
	p.cmd = exec.Command(exe, append([]string{ledgerdCommand, "--demo", "--data-dir", data, "--nats-listen", natsAddr,
		"--http-listen", httpAddr, "--debug-listen", debugAddr, "--log-level", "warn"}, flags...)...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting ledgerd: %w", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	return p, nil
}

// heap has ledgerd collect garbage (the heap profile's gc=1), keeps the
// heap profile in the file profile, and returns the heap the collection
// found live (go_gc_heap_live_bytes) and each holder's share of it
// (heapShares).
func (p *ledgerdProc) heap(ctx context.Context, profile string) (int64, []float64, error) {
	live, err := p.liveHeap(ctx, profile)
	if err != nil {
		return 0, nil, err
	}
	shares, err := p.heapShares(ctx)
	return live, shares, err
}

func (p *ledgerdProc) liveHeap(ctx context.Context, profile string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.debug+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("ledgerd's heap profile: %s", resp.Status)
	}
	if err := os.WriteFile(profile, body, 0o600); err != nil {
		return 0, err
	}
	_, live, err := scrapeHeap(p.base + "/metrics")
	return live, err
}

// heapHolders are what holds ledgerd's heap, by the package whose code
// allocated it (the first of these on the allocation's stack, from the
// allocation up), in the order reports list them.
var heapHolders = []struct{ name, pkg string }{
	{"rules' world", "subsidyledger/events/rules."},
	{"read models", "subsidyledger/projections"},
	{"intake", "subsidyledger/services/ingest."},
	{"event store", "subsidyledger/events/bolt."},
	{"NATS server", "nats-server/v2/"},
}

// heapShares reads ledgerd's heap profile as text (debug=1: each sampled
// allocation still live at the last collection, with its stack) and
// returns each holder's share of the bytes in use (heapHolders order, then
// the rest).
func (p *ledgerdProc) heapShares(ctx context.Context) ([]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.debug+"/debug/pprof/heap?debug=1", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ledgerd's heap profile: %s", resp.Status)
	}
	return holderShares(resp.Body)
}

// holderShares sums a text heap profile's bytes in use by holder. The text
// gives the sampled figures as they are; each record is scaled as pprof
// scales it (runtime/pprof's scaleHeapSample: an allocation of the
// record's average size is sampled with probability 1-exp(-size/rate)), or
// the small allocations, sampled rarely, would count for almost nothing.
func holderShares(r io.Reader) ([]float64, error) {
	sums := make([]float64, len(heapHolders)+1)
	var total, cur float64
	rate := 512.0 * 1024 // the runtime's default MemProfileRate
	held := -1           // the holder of the record being read; -1: not known yet
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	flush := func() {
		if cur > 0 {
			if held < 0 {
				held = len(heapHolders)
			}
			sums[held] += cur
			total += cur
		}
		cur, held = 0, -1
	}
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			if held < 0 {
				for i, h := range heapHolders {
					if strings.Contains(line, h.pkg) {
						held = i
						break
					}
				}
			}
			continue
		}
		// The header ends with twice the sampling rate (runtime/pprof
		// writes the legacy format's "@ heap/<2*MemProfileRate>").
		if strings.HasPrefix(line, "heap profile:") {
			if _, r, ok := strings.Cut(line, "@ heap/"); ok {
				if n, err := strconv.ParseFloat(strings.TrimSpace(r), 64); err == nil && n > 0 {
					rate = n / 2
				}
			}
			continue
		}
		// A record: "objects: bytes [objects: bytes] @ addresses", in
		// use then allocated.
		if objs, rest, ok := strings.Cut(line, ": "); ok && !strings.Contains(objs, " ") && strings.Contains(rest, " @") {
			flush()
			n, err1 := strconv.ParseFloat(objs, 64)
			b, err2 := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			if err1 == nil && err2 == nil && n > 0 && b > 0 {
				cur = b / (1 - math.Exp(-b/n/rate))
			}
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if total == 0 {
		return nil, errors.New("ledgerd's heap profile holds nothing")
	}
	for i := range sums {
		sums[i] /= total
	}
	return sums, nil
}

// exitedErr describes ledgerd's exit with the end of its log.
func (p *ledgerdProc) exitedErr() error {
	b, _ := os.ReadFile(p.log)
	return fmt.Errorf("ledgerd exited; the end of its log:\n%s", b[max(0, len(b)-4000):])
}

// waitReady polls /readyz every 10 ms until it answers 200.
func (p *ledgerdProc) waitReady(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return p.exitedErr()
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := http.Get(p.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("ledgerd not ready after %v (its log: %s)", within, p.log)
}

// stop stops ledgerd as an operator would (SIGINT) and waits for it.
func (p *ledgerdProc) stop() error {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
		return nil
	case <-time.After(2 * time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("ledgerd did not stop within 2 minutes (its log: %s)", p.log)
	}
}

// copyFile copies src to dst through a temporary file, synced and renamed.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(out, in, make([]byte, 4<<20)); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
