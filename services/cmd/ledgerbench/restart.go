package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	p := &ledgerdProc{base: "http://" + httpAddr, nats: "nats://" + natsAddr, log: logPath, exited: make(chan struct{})}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// Not tied to a context: stop ends it as an operator would.
	p.cmd = exec.Command(exe, append([]string{ledgerdCommand, "--demo", "--data-dir", data, "--nats-listen", natsAddr,
		"--http-listen", httpAddr, "--log-level", "warn"}, flags...)...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting ledgerd: %w", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	return p, nil
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
