package ledgerd

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqhrss/subsidyledger/services/natsbus"
	"github.com/cqhrss/subsidyledger/services/simulate"
)

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}

// TestNoPlainPersonalData ingests a simulated programme and then scans
// everything the ledger wrote or served — the store file, JetStream's files,
// the projections' snapshots, the debug log, /metrics, every CSV export, the
// outbound feed and the outcomes — for any trainee's plain ID number or full
// name. The simulator knows both; the services publish only person keys and
// masked forms.
func TestNoPlainPersonalData(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, "")
	var logs lockedBuffer
	in := startLogged(t, cfg, &logs)
	k := keyer(t)
	p, err := simulate.New(simulate.Config{Seed: 5, Year: 2025, Trainees: 120, Keyer: k, Officials: true})
	if err != nil {
		t.Fatal(err)
	}
	var secrets [][]byte
	var lanes [][]*nats.Msg
	enc := func(fs []simulate.Fact) []*nats.Msg {
		var out []*nats.Msg
		for _, f := range fs {
			m, err := simulate.Msg("subsidy.in", f, false)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		return out
	}
	lanes = append(lanes, enc(p.Reference()))
	for i := range 120 {
		fs, pr := p.Trainee(i)
		secrets = append(secrets, []byte(pr.IDNumber), []byte(pr.Name))
		lanes = append(lanes, enc(fs))
	}
	nc, err := nats.Connect(in.addr.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	publish(t, js, lanes[:1])
	publish(t, js, lanes[1:])
	waitDrained(t, js)
	waitFeed(t, js, in.addr.HTTPAddr)

	scan := func(where string, b []byte) {
		t.Helper()
		for _, s := range secrets {
			if bytes.Contains(b, s) {
				t.Errorf("%s contains %q in plain text", where, s)
				return
			}
		}
	}
	get := func(path string) []byte {
		resp, err := http.Get("http://" + in.addr.HTTPAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, resp.StatusCode, b)
		}
		return b
	}
	scan("/metrics", get("/metrics"))
	for _, path := range []string{"/v1/trainees?format=csv&limit=1000", "/v1/notice?on=all&format=csv", "/v1/institutions?format=csv",
		"/v1/anomalies?format=csv", "/v1/fund?format=csv", "/v1/quota/2025", "/v1/trainees?limit=1000"} {
		scan("GET "+path, get(path))
	}
	for _, stream := range []string{natsbus.FeedStream, natsbus.OutcomeStream, natsbus.InboundStream} {
		cons, err := js.OrderedConsumer(context.Background(), stream, jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			mb, err := cons.Fetch(2000, jetstream.FetchMaxWait(300*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			got := 0
			for m := range mb.Messages() {
				got++
				scan(stream+" message data", m.Data())
				for k, v := range m.Headers() {
					for _, x := range v {
						scan(stream+" header "+k, []byte(x))
					}
				}
			}
			n += got
			if got == 0 {
				break
			}
		}
		if n == 0 {
			t.Errorf("stream %s had no messages to scan", stream)
		}
	}
	in.stop(t) // flush snapshots and close the files before scanning them
	scan("the ledger's log", logs.Bytes())
	files := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		scan(path, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 {
		t.Fatalf("scanned only %d files under the data directory", files)
	}
	t.Logf("scanned %d files, the log, /metrics, exports and 3 streams for %d ID numbers and names", files, len(secrets)/2)
}
