// Package natstest runs NATS for tests: an embedded server (Embedded), or a
// separate nats-server process for integration tests,
// built from the pinned github.com/nats-io/nats-server/v2 module (make test
// builds it into bin/ and passes it in LEDGER_NATS_SERVER_BIN).
package natstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// Binary returns the path of a nats-server binary: LEDGER_NATS_SERVER_BIN if
// set, else one built once per test process with `go build`.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("LEDGER_NATS_SERVER_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("LEDGER_NATS_SERVER_BIN=%s: %v", p, err)
		}
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "natstest")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "nats-server")
		cmd := exec.Command("go", "build", "-o", builtBin, "github.com/nats-io/nats-server/v2")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build nats-server: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// Process is a nats-server process with JetStream.
type Process struct {
	t     testing.TB
	bin   string
	Host  string
	Port  int
	Dir   string
	Name  string
	Extra []string
	// ExtraConf is appended to the generated configuration file.
	ExtraConf string
	cmd       *exec.Cmd
	done      chan struct{}
}

// FreePort returns a free TCP port on host.
func FreePort(t testing.TB, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start starts nats-server with JetStream on host (a free port) storing in a
// temp dir, syncing always; extra arguments are appended. It is killed when
// the test ends.
func Start(t testing.TB, host string, extra ...string) *Process {
	t.Helper()
	p := &Process{t: t, bin: Binary(t), Host: host, Port: FreePort(t, host), Dir: t.TempDir(), Name: "n-" + host, Extra: extra}
	p.start()
	t.Cleanup(func() { p.Stop() })
	return p
}

// StartWithConf is Start with conf appended to the server's
// configuration (e.g. an include of the deployments' accounts).
func StartWithConf(t testing.TB, host, conf string) *Process {
	t.Helper()
	p := &Process{t: t, bin: Binary(t), Host: host, Port: FreePort(t, host), Dir: t.TempDir(), Name: "n-" + host, ExtraConf: conf}
	p.start()
	t.Cleanup(func() { p.Stop() })
	return p
}

// StartCluster starts a JetStream cluster of one nats-server process per
// host (e.g. 127.0.0.1, 127.0.0.2, 127.0.0.3 — all loopback), each syncing
// always, and returns them once every one accepts clients.
func StartCluster(t testing.TB, hosts ...string) []*Process {
	t.Helper()
	ps := make([]*Process, len(hosts))
	cports := make([]int, len(hosts))
	for i, h := range hosts {
		ps[i] = &Process{t: t, bin: Binary(t), Host: h, Port: FreePort(t, h), Dir: t.TempDir(), Name: fmt.Sprintf("n%d", i+1)}
		cports[i] = FreePort(t, h)
	}
	for i, p := range ps {
		var routes []string
		for j, h := range hosts {
			if j != i {
				routes = append(routes, fmt.Sprintf("%q", "nats://"+net.JoinHostPort(h, strconv.Itoa(cports[j]))))
			}
		}
		p.ExtraConf = fmt.Sprintf("cluster {\n  name: ledger\n  listen: %q\n  routes: [%s]\n}\n",
			net.JoinHostPort(p.Host, strconv.Itoa(cports[i])), strings.Join(routes, ", "))
	}
	for _, p := range ps {
		p.start()
		t.Cleanup(p.Stop)
	}
	return ps
}

// URLs joins the client URLs of processes for a NATS connection.
func URLs(ps []*Process) string {
	var u []string
	for _, p := range ps {
		u = append(u, p.URL())
	}
	return strings.Join(u, ",")
}

// URL is the client URL.
func (p *Process) URL() string { return "nats://" + net.JoinHostPort(p.Host, strconv.Itoa(p.Port)) }

func (p *Process) start() {
	p.t.Helper()
	// JetStream syncs every write before acknowledging it, as in production.
	conf := filepath.Join(p.Dir, "nats.conf")
	text := fmt.Sprintf("server_name: %q\nlisten: %q\njetstream {\n  store_dir: %q\n  sync_interval: always\n}\n%s",
		p.Name, net.JoinHostPort(p.Host, strconv.Itoa(p.Port)), filepath.Join(p.Dir, "js"), p.ExtraConf)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		p.t.Fatal(err)
	}
	args := append([]string{"-c", conf}, p.Extra...)
	p.cmd = exec.Command(p.bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = os.Stderr, os.Stderr
	if os.Getenv("NATSTEST_VERBOSE") == "" {
		p.cmd.Stdout, p.cmd.Stderr = nil, nil
	}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("starting nats-server: %v", err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(p.cmd, p.done)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(p.Host, strconv.Itoa(p.Port)), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-p.done:
			p.t.Fatalf("nats-server exited at start (args %v)", args)
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.t.Fatalf("nats-server on %s:%d not accepting after 15s", p.Host, p.Port)
}

// Kill sends SIGKILL and waits for the process to end.
func (p *Process) Kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// Stop sends SIGTERM and waits (SIGKILL after 10s).
func (p *Process) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
	p.cmd = nil
}

// Restart starts the process again on the same port and data directory.
func (p *Process) Restart() {
	p.t.Helper()
	p.start()
}
