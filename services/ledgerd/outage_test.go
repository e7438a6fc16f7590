package ledgerd

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqhrss/subsidyledger/services/internal/natstest"
	"github.com/cqhrss/subsidyledger/services/internal/proctest"
	"github.com/cqhrss/subsidyledger/services/natsbus"
)

// TestStoreOutage runs ledgerd as a separate process with its event store on
// a small file system of its own and NATS in a separate nats-server process
// (its storage elsewhere), makes the store unwritable mid-stream, and checks
// that ledgerd stops consuming (nothing acknowledged, nothing recorded as a
// rejection, JetStream keeps the messages), says so on /readyz and in its
// metrics, resumes by itself once the store can write again, and that every
// published fact ends as exactly one event or the one expected rejection in
// a log whose hash links verify.
//
// ledgerd's whole data directory is on that file system. Disk full: a tmpfs
// filled up by a filler file (ENOSPC). Read-only: the
// kernel refuses `mount -o remount,ro` (EBUSY) while ledgerd holds the data
// file open for writing, so the file is made immutable on an ext4 file
// system instead (chattr +i: writes through the open descriptor fail with
// EPERM), which is what a file turned read-only under a running writer
// gives. Both need root to mount; without it the test skips, saying so.
func TestStoreOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("store outage test: skipped with -short")
	}
	t.Run("disk full", func(t *testing.T) {
		mnt := mountTmpfs(t, "32m")
		var filler string
		storeOutage(t, mnt, "no_space",
			func() { filler = fillUp(t, mnt) },
			func() {
				if err := os.Remove(filler); err != nil {
					t.Fatal(err)
				}
			})
	})
	t.Run("read-only file", func(t *testing.T) {
		mnt := mountExt4(t, 32<<20)
		db := filepath.Join(mnt, "ledger.db")
		storeOutage(t, mnt, "permission",
			func() { sh(t, "chattr", "+i", db) },
			func() { sh(t, "chattr", "-i", db) })
	})
}

// storeOutage is TestStoreOutage on one file system: break makes the store
// unwritable, repair makes it writable again; cause is the cause ledgerd
// must report.
func storeOutage(t *testing.T, mnt, cause string, breakIt, repair func()) {
	srv := natstest.Start(t, "127.0.0.1")
	// The whole data directory (store, Merkle sealer, projection
	// snapshots) is on the small file system; NATS stores elsewhere.
	storePath := filepath.Join(mnt, "ledger.db")
	led := proctest.Start(t, "--demo", "--data-dir", mnt, "--nats-url", srv.URL(),
		"--ack-wait", "5s", "--retry-delay", "50ms", "--reference-wait", "4s", "--log-level", "info")
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	var outcomes atomic.Int64
	sub, err := nc.Subscribe("subsidy.outcome.>", func(*nats.Msg) { outcomes.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	lanes, ids, rejected := mixedExpect(t, 150)
	logTail := func() string {
		b, _ := os.ReadFile(led.Log)
		return string(b[max(0, len(b)-4000):])
	}

	// Before: the ledger records the reference data normally.
	publish(t, js, lanes[:1])
	waitDrained(t, js)

	breakIt()
	publish(t, js, lanes[1:101])
	body := waitReadyz(t, led.HTTPAddr, http.StatusServiceUnavailable, 60*time.Second)
	if body == "" {
		t.Fatalf("/readyz still 200 after the store became unwritable; ledgerd's log:\n%s", logTail())
	}
	if want := "cannot write (" + cause + ")"; !strings.Contains(body, want) {
		t.Errorf("/readyz = %q; want it to say %q", body, want)
	}
	t.Logf("/readyz during the outage:\n%s", body)
	if v, _ := metric(t, led.HTTPAddr, "subsidy_ledger_store_writable"); v != 0 {
		t.Errorf("subsidy_ledger_store_writable = %v during the outage; want 0", v)
	}
	if v, _ := metric(t, led.HTTPAddr, `subsidy_ledger_store_append_failures_total{cause="`+cause+`"}`); v == 0 {
		t.Errorf(`subsidy_ledger_store_append_failures_total{cause=%q} = 0; want the failed appends counted`, cause)
	}
	// Stalled: nothing is acknowledged or answered while the store cannot
	// write, and JetStream keeps every message not yet recorded.
	before := consumerInfo(t, js)
	out0 := outcomes.Load()
	time.Sleep(4 * time.Second) // several probes
	after := consumerInfo(t, js)
	if n := outcomes.Load() - out0; n != 0 {
		t.Errorf("%d outcomes published while the store could not write; want none", n)
	}
	if after.AckFloor.Consumer != before.AckFloor.Consumer || after.AckFloor.Stream != before.AckFloor.Stream {
		t.Errorf("the consumer's ack floor moved from %+v to %+v while the store could not write", before.AckFloor, after.AckFloor)
	}
	if kept := after.NumPending + uint64(after.NumAckPending); kept == 0 {
		t.Errorf("JetStream holds no unrecorded message for the ledger during the outage (pending %d, ack pending %d)", after.NumPending, after.NumAckPending)
	} else {
		t.Logf("during the outage JetStream keeps %d messages for the ledger (%d pending, %d awaiting acknowledgement)", kept, after.NumPending, after.NumAckPending)
	}
	if v, _ := metric(t, led.HTTPAddr, `subsidy_ledger_store_write_probes_total{result="failed"}`); v == 0 {
		t.Error("no failed write probe counted during the outage")
	}

	// The store can write again: ledgerd resumes without a restart.
	repair()
	if waitReadyz(t, led.HTTPAddr, http.StatusOK, 60*time.Second) == "" {
		t.Fatalf("/readyz not 200 within 60s of the store becoming writable; ledgerd's log:\n%s", logTail())
	}
	if v, _ := metric(t, led.HTTPAddr, "subsidy_ledger_store_writable"); v != 1 {
		t.Errorf("subsidy_ledger_store_writable = %v after the outage; want 1", v)
	}
	publish(t, js, lanes[101:])
	waitDrained(t, js)
	if !waitFeedCaughtUp(t, led.HTTPAddr, time.Minute) {
		t.Fatalf("the feed did not catch up after the outage; ledgerd's log:\n%s", logTail())
	}
	led.Stop()
	if os.Getenv("LEDGER_TEST_LOG") != "" {
		t.Logf("ledgerd's log:\n%s", logTail())
	}
	// Every message exactly once, the expected ones (and only they)
	// rejected, and the log's hash links intact (records runs Verify).
	checkExactlyOnce(t, storePath, ids, rejected)
}

// waitReadyz polls /readyz until it answers status and returns its body
// ("" if it did not within d).
func waitReadyz(t *testing.T, httpAddr string, status int, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == status {
				return string(b) + " "
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return ""
}

func consumerInfo(t *testing.T, js jetstream.JetStream) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, natsbus.InboundStream, natsbus.LedgerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func sh(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// mountTmpfs mounts a tmpfs of size on a fresh directory, unmounted when the
// test ends, or skips the test, loudly, if it cannot.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("NOT TESTED: cannot mount a tmpfs for the store (%v: %s); this test needs root (CAP_SYS_ADMIN)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { unmount(t, dir) })
	return dir
}

// mountExt4 makes an ext4 file system of size bytes in a file and mounts it
// through a loop device, or skips the test, loudly, if it cannot.
func mountExt4(t *testing.T, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "ext4.img")
	dir := t.TempDir()
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-m", "0", "-F", img).CombinedOutput(); err != nil {
		t.Skipf("NOT TESTED: cannot make an ext4 file system (%v: %s); this test needs mkfs.ext4 (e2fsprogs)", err, strings.TrimSpace(string(out)))
	}
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		t.Skipf("NOT TESTED: cannot mount an ext4 image through a loop device (%v: %s); this test needs root and loop devices", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { unmount(t, dir) })
	return dir
}

// unmount unmounts dir; a lazy unmount if something still holds it.
func unmount(t *testing.T, dir string) {
	if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
		t.Logf("umount %s: %v: %s; unmounting lazily", dir, err, out)
		_ = exec.Command("umount", "-l", dir).Run()
	}
}

// fillUp writes a filler file into dir until the file system is full and
// returns its path.
func fillUp(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, chunk := range []int{1 << 20, 4 << 10} {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("filling %s: %v; want ENOSPC in the end", dir, err)
				}
				break
			}
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("filled %s: %d blocks free", dir, st.Bavail)
	return path
}
