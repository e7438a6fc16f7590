// Package proctest runs ledgerd as a separate process for fault tests:
// built once per test binary from this module, started with flags, killed
// with SIGKILL or stopped with SIGTERM, and restarted on the same data.
package proctest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds ledgerd once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "proctest")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "ledgerd")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/cqhrss/subsidyledger/services/cmd/ledgerd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ledgerd: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Ledgerd is a ledgerd process.
type Ledgerd struct {
	t        testing.TB
	Args     []string
	HTTPAddr string
	Log      string // file the process writes its log to
	cmd      *exec.Cmd
	done     chan struct{}
}

// FreeAddr returns host:port of a free TCP port on 127.0.0.1.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Start starts ledgerd with args plus --http-listen on a free port, and waits
// until /readyz answers 200. It is killed when the test ends.
func Start(t testing.TB, args ...string) *Ledgerd {
	t.Helper()
	l := &Ledgerd{t: t, HTTPAddr: FreeAddr(t), Log: filepath.Join(t.TempDir(), "ledgerd.log")}
	l.Args = append(append([]string{}, args...), "--http-listen", l.HTTPAddr)
	l.start()
	t.Cleanup(l.Kill)
	return l
}

func (l *Ledgerd) start() {
	l.t.Helper()
	f, err := os.OpenFile(l.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		l.t.Fatal(err)
	}
	l.cmd = exec.Command(Binary(l.t), l.Args...)
	l.cmd.Stdout, l.cmd.Stderr = f, f
	if err := l.cmd.Start(); err != nil {
		l.t.Fatalf("starting ledgerd: %v", err)
	}
	l.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}, f *os.File) { _ = cmd.Wait(); f.Close(); close(done) }(l.cmd, l.done, f)
	l.WaitReady(60 * time.Second)
}

// WaitReady waits for /readyz to answer 200.
func (l *Ledgerd) WaitReady(d time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(d)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-l.done:
			b, _ := os.ReadFile(l.Log)
			l.t.Fatalf("ledgerd exited before it was ready; its log:\n%s", tail(b, 3000))
		default:
		}
		if resp, err := c.Get("http://" + l.HTTPAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(l.Log)
	l.t.Fatalf("ledgerd not ready after %v; its log:\n%s", d, tail(b, 3000))
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Kill sends SIGKILL and waits for the process to die.
func (l *Ledgerd) Kill() {
	if l.cmd == nil {
		return
	}
	_ = l.cmd.Process.Signal(syscall.SIGKILL)
	<-l.done
	l.cmd = nil
}

// Stop sends SIGTERM and waits for a graceful exit (SIGKILL after 30s); it
// fails the test if ledgerd exits with an error.
func (l *Ledgerd) Stop() {
	l.t.Helper()
	if l.cmd == nil {
		return
	}
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.done:
		if code := l.cmd.ProcessState.ExitCode(); code != 0 {
			b, _ := os.ReadFile(l.Log)
			l.t.Errorf("ledgerd exited with %d; its log:\n%s", code, tail(b, 3000))
		}
	case <-time.After(30 * time.Second):
		_ = l.cmd.Process.Signal(syscall.SIGKILL)
		<-l.done
		l.t.Error("ledgerd did not stop within 30s of SIGTERM")
	}
	l.cmd = nil
}

// Restart starts the process again with the same arguments.
func (l *Ledgerd) Restart() {
	l.t.Helper()
	l.start()
}

// PID is the process id ("" when not running).
func (l *Ledgerd) PID() string {
	if l.cmd == nil {
		return ""
	}
	return strconv.Itoa(l.cmd.Process.Pid)
}
