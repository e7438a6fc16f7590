package ledgerd

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqhrss/subsidyledger/services/internal/proctest"
)

// crashes is how many times TestCrashRecovery kills ledgerd; `make soak`
// raises it with LEDGER_CRASHES.
func crashes() int {
	if n, err := strconv.Atoi(os.Getenv("LEDGER_CRASHES")); err == nil && n > 0 {
		return n
	}
	return 20
}

// TestCrashRecovery runs ledgerd as a separate process on its embedded NATS
// server and store, kills it with SIGKILL at random moments during a fast
// simulated ingest (20 times; LEDGER_CRASHES for more), and after each
// restart checks that no fact JetStream acknowledged was lost and nothing
// was recorded twice, that the log's hash links verify, and (at the end)
// that every read model equals a rebuild from scratch at the same position.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped with -short")
	}
	dir := t.TempDir()
	natsAddr := proctest.FreeAddr(t)
	led := proctest.Start(t, "--demo", "--data-dir", dir, "--nats-listen", natsAddr, "--ack-wait", "1s",
		"--retry-delay", "50ms", "--reference-wait", "20s", "--log-level", "warn")
	nc, err := nats.Connect("nats://"+natsAddr, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	pub := &publisher{js: js}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ref, lanes := programme(t, 400)
	for _, m := range ref {
		if err := pub.publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	wait := pub.publishLanes(ctx, lanes, 4, 5*time.Millisecond)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range crashes() {
		time.Sleep(time.Duration(100+r.IntN(500)) * time.Millisecond)
		led.Kill()
		led.Restart()
		// What JetStream acknowledged before the kill is recorded by now
		// or will be; nothing is recorded twice (checked at the end, when
		// the store can be opened).
		t.Logf("crash %d: %d facts acknowledged by JetStream so far", i+1, pub.acked.Load())
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, js)
	if !waitFeedCaughtUp(t, led.HTTPAddr, time.Minute) {
		t.Fatal("the feed did not catch up")
	}
	checkReadModelsEqualRebuild(t, led.HTTPAddr)
	led.Stop()
	recs := recordCounts(t, filepath.Join(dir, "ledger.db")) // also verifies the hash links
	missing, dup := pub.lostAndDoubled(recs)
	if missing > 0 || dup > 0 {
		t.Fatalf("%d acknowledged facts: %d never recorded, %d recorded twice", pub.acked.Load(), missing, dup)
	}
	t.Logf("%d crashes; %d acknowledged facts, each recorded once; log verified", crashes(), pub.acked.Load())
}

// checkReadModelsEqualRebuild compares each read model the API serves with
// a fresh build of it from the log up to the same position (as_of).
func checkReadModelsEqualRebuild(t *testing.T, httpAddr string) {
	t.Helper()
	get := func(path string) ([]byte, string) {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, resp.StatusCode, b)
		}
		return b, resp.Header.Get("X-Ledger-Position")
	}
	// Wait until every projection has caught up with the log.
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("projections not ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, path := range []string{"/v1/quota/2025", "/v1/fund", "/v1/anomalies", "/v1/institutions", "/v1/notice?on=all"} {
		live, pos := get(path)
		if pos == "" {
			t.Fatalf("GET %s: no X-Ledger-Position", path)
		}
		sep := "?"
		if bytes.ContainsRune([]byte(path), '?') {
			sep = "&"
		}
		rebuilt, _ := get(path + sep + "as_of=" + pos)
		if !bytes.Equal(live, rebuilt) {
			t.Errorf("GET %s at position %s differs from a rebuild from scratch:\nlive    %.300s\nrebuilt %.300s", path, pos, live, rebuilt)
		}
	}
}
