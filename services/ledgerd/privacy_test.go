package ledgerd

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqhrss/subsidyledger/services/internal/logbuf"
	"github.com/cqhrss/subsidyledger/services/natsbus"
	"github.com/cqhrss/subsidyledger/services/simulate"
)

// TestNoPlainPersonalData ingests a simulated programme, with each trainee's
// personal data sent to the vault on <prefix>.pii.enrolment, and then scans
// everything the ledger wrote or served — the store file, the vault file,
// JetStream's files (the personal-data stream's included; that the secure
// delete overwrites a message in a block still in use is checked by
// services/personal's TestIntake), the projections' and the intake's
// snapshots, the debug log,
// /metrics, every CSV export, the outbound feed and the outcomes — for any
// trainee's plain ID number, full name or payee account. Only the vault,
// encrypted, keeps them: the lookup and personal-data routes give them back
// to the municipal scope, and an erasure makes them unreadable.
func TestNoPlainPersonalData(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, "")
	cfg.PersonKey = []byte(testPersonSecret) // the publishers' secret: lookups match
	cfg.VaultKey = bytes.Repeat([]byte{0x5a}, 32)
	cfg.IntakeSnapshotEvery = 100 // the intake's snapshots are scanned too
	var logs logbuf.Buffer
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
	var profiles []simulate.Profile
	var pds []simulate.Personal
	for i := range 120 {
		fs, pr := p.Trainee(i)
		pd := p.PersonalData(pr)
		secrets = append(secrets, []byte(pr.IDNumber), []byte(pr.Name))
		if a := pd.Msg.GetPayeeAccount(); a != "" {
			secrets = append(secrets, []byte(a))
		}
		lanes = append(lanes, enc(fs))
		profiles, pds = append(profiles, pr), append(pds, pd)
	}
	nc, err := nats.Connect(in.addr.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := simulate.PublishPersonal(context.Background(), js, natsbus.DefaultSubjects, pds, 4); err != nil {
		t.Fatal(err)
	}
	publish(t, js, lanes[:1])
	publish(t, js, lanes[1:])
	waitDrained(t, js)
	waitFeed(t, js, in.addr.HTTPAddr)
	waitPIIStored(t, js, len(pds))

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
	checkPersonalRoutes(t, in.addr.HTTPAddr, profiles, pds)

	in.stop(t) // flush snapshots and close the files before scanning them
	scan("the ledger's log", logs.Bytes())
	files := 0
	var vaultScanned, piiScanned bool
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			piiScanned = piiScanned || d.Name() == natsbus.PIIStream
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		vaultScanned = vaultScanned || d.Name() == "personal.db"
		scan(path, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 || !vaultScanned || !piiScanned {
		t.Fatalf("scanned only %d files under the data directory (the vault: %v, the personal-data stream: %v)", files, vaultScanned, piiScanned)
	}
	t.Logf("scanned %d files, the log, /metrics, exports and 3 streams for %d ID numbers, names and payee accounts", files, len(secrets))
}

// waitPIIStored waits until ledgerd has taken all n personal-data messages
// off SUBSIDY_PII.
func waitPIIStored(t *testing.T, js jetstream.JetStream, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := js.Stream(context.Background(), natsbus.PIIStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 0 && info.State.LastSeq >= uint64(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still holds %d of %d messages", natsbus.PIIStream, info.State.Msgs, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkPersonalRoutes: the municipal scope (demo mode's) finds trainees by
// ID number and reads their personal data back; an erasure makes it
// unreadable (410) while the trainee's record in the log stays.
func checkPersonalRoutes(t *testing.T, httpAddr string, profiles []simulate.Profile, pds []simulate.Personal) {
	t.Helper()
	call := func(method, path, body string, want int) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+httpAddr+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want || json.Unmarshal(b, &v) != nil {
			t.Fatalf("%s %s = %d %.300s; want %d JSON", method, path, resp.StatusCode, b, want)
		}
		return v
	}
	for i := range 5 {
		pr, pd := profiles[i], pds[i].Msg
		v := call("POST", "/v1/trainees/lookup", `{"id_number": "`+pr.IDNumber+`"}`, http.StatusOK)
		if v["person_key"] != pr.PersonKey {
			t.Errorf("lookup of trainee %d = %v; want person key %s", i, v["person_key"], pr.PersonKey)
		}
		got := call("GET", "/v1/trainees/"+pr.PersonKey+"/personal-data", "", http.StatusOK)
		if got["id_number"] != pr.IDNumber || got["name"] != pr.Name || (pd.GetPayeeAccount() != "" && got["payee_account"] != pd.GetPayeeAccount()) {
			t.Errorf("personal data of trainee %d = %v; want %v", i, got, pd)
		}
	}
	erased := profiles[0]
	call("DELETE", "/v1/trainees/"+erased.PersonKey+"/personal-data", "", http.StatusOK)
	call("GET", "/v1/trainees/"+erased.PersonKey+"/personal-data", "", http.StatusGone)
	call("GET", "/v1/trainees/"+erased.PersonKey, "", http.StatusOK) // the log is untouched
	call("POST", "/v1/trainees/lookup", `{"id_number": "`+erased.IDNumber+`"}`, http.StatusOK)
}
