package ledgerd

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cqhrss/subsidyledger/services/internal/natstest"
	"github.com/cqhrss/subsidyledger/services/natsbus"
)

// A feed whose stream has diverged from the store (here the stream holds
// position 1,000,000 of another ledger, which this new one does not) makes
// /readyz answer 503 and say so, rather than ready while downstream
// consumers get nothing. Once an operator deletes the stream and restarts
// ledgerd, it is ready again.
func TestReadyzReportsADivergedFeed(t *testing.T) {
	srv, _, js := natstest.Embedded(t)
	ctx := context.Background()
	if _, err := natsbus.EnsureStreams(ctx, js, natsbus.DefaultSubjects, natsbus.DefaultStreamOptions); err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(natsbus.DefaultSubjects.Feed("trainee", "TraineeRegistered"))
	msg.Header.Set(natsbus.HeaderPosition, "1000000")
	msg.Header.Set(natsbus.HeaderEventID, "0190d5a8-0000-7000-8000-000000000001")
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, t.TempDir(), srv.ClientURL())
	a := start(t, cfg)
	const diverged = "the feed stream's last event is not the store's"
	var code int
	var body string
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(body, diverged); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d %q 20s after the start; want it to say the feed has diverged", code, body)
		}
		code, body = readyz(t, a.addr.HTTPAddr)
	}
	if code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d with a diverged feed; want 503", code)
	}
	for _, want := range []string{"\nfeed: stopped since ", "position 1000000", "delete the stream SUBSIDY_FEED"} {
		if !strings.Contains("\n"+body, want) {
			t.Errorf("/readyz = %q; want it to say %q", body, want)
		}
	}
	t.Logf("/readyz with a diverged feed:\n%s", body)

	// The operator deletes the stream and restarts ledgerd.
	if err := js.DeleteStream(ctx, natsbus.FeedStream); err != nil {
		t.Fatal(err)
	}
	a.stop(t)
	b := start(t, cfg)
	if body := waitReadyz(t, b.addr.HTTPAddr, http.StatusOK, 30*time.Second); body == "" {
		_, body := readyz(t, b.addr.HTTPAddr)
		t.Fatalf("/readyz not 200 within 30s of a restart with the feed stream deleted: %q", body)
	}
}

// readyz gets /readyz once.
func readyz(t *testing.T, httpAddr string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
