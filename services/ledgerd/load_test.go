package ledgerd

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
)

// ledgerd serves while its intake loads the ledger state, which takes a
// minute or more on a store of millions of events: /healthz answers, the
// read API answers from the projections, /readyz says the intake is
// loading; once the load is done /readyz is ready.
func TestServesWhileTheIntakeLoads(t *testing.T) {
	release := make(chan struct{})
	testHookBeforeLoad = func(ctx context.Context) {
		select {
		case <-release:
		case <-ctx.Done():
		}
	}
	t.Cleanup(func() { testHookBeforeLoad = nil })
	a := start(t, testConfig(t, t.TempDir(), ""))
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + a.addr.HTTPAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while the intake loads = %d; want 200", code)
	}
	body := waitReadyz(t, a.addr.HTTPAddr, http.StatusServiceUnavailable, 10*time.Second)
	if !strings.Contains(body, "intake: loading the ledger state") {
		t.Errorf("/readyz while the intake loads = %q; want it to say the intake is loading", body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get("/v1/quota/2026")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/v1/quota/2026 while the intake loads = %d %s; want 200", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if body := waitReadyz(t, a.addr.HTTPAddr, http.StatusServiceUnavailable, time.Second); !strings.Contains(body, "intake: loading") {
		t.Errorf("/readyz still held = %q; want the intake still loading", body)
	}
	close(release)
	if body := waitReadyz(t, a.addr.HTTPAddr, http.StatusOK, 30*time.Second); body == "" {
		t.Fatal("/readyz not 200 within 30s of the load being released")
	}
	a.stop(t)
}

// A log the intake cannot fold (here a record whose payload does not
// decode) stops ledgerd with an error that says so, as before it served.
func TestStopsWhenTheLedgerStateCannotLoad(t *testing.T) {
	dir := t.TempDir()
	s, err := bolt.Open(filepath.Join(dir, "ledger.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), "trainee-x", events.NoStream,
		events.EventData{ID: events.RandomID(), Type: "subsidy.v1.TraineeRegistered", Data: []byte{0xff, 0xff}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	a := start(t, testConfig(t, dir, ""))
	select {
	case err := <-a.done:
		a.cancel()
		a.cancel = nil // stopped already
		if err == nil || !strings.Contains(err.Error(), "loading the ledger state from the store") {
			t.Fatalf("ledgerd stopped with %v; want it to say the ledger state did not load", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ledgerd still running 30s after starting on a log it cannot fold")
	}
}
