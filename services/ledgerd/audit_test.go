package ledgerd

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cqhrss/subsidyledger/events/merkle"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// checkAudit asks a running ledgerd for a signed checkpoint and an inclusion
// proof of the event at position, and checks both offline with only the
// verifier key.
func checkAudit(t *testing.T, httpAddr string, position uint64) {
	t.Helper()
	base := "http://" + httpAddr
	var vk struct {
		VerifierKey string `json:"verifier_key"`
	}
	getJSON(t, "GET", base+"/v1/audit/verifier-key", &vk)
	var raw json.RawMessage
	getJSON(t, "POST", base+"/v1/audit/checkpoint", &raw)
	cpMsg := &subsidyv1.AuditCheckpoint{}
	if err := protojson.Unmarshal(raw, cpMsg); err != nil {
		t.Fatal(err)
	}
	v, err := merkle.NewVerifier(vk.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := v.OpenMessage(cpMsg)
	if err != nil {
		t.Fatalf("the checkpoint does not verify with the served key: %v", err)
	}
	var proof merkle.InclusionProof
	getJSON(t, "GET", fmt.Sprintf("%s/v1/audit/proof/inclusion?position=%d&tree_size=%d", base, position, cp.Size), &proof)
	if err := merkle.CheckInclusion(cp, &proof); err != nil {
		t.Fatalf("inclusion proof of position %d: %v", position, err)
	}
	// A tampered proof fails.
	proof.Leaf.Revision++
	if err := merkle.CheckInclusion(cp, &proof); err == nil {
		t.Fatal("a tampered inclusion proof verified")
	}
}

func getJSON(t *testing.T, method, url string, v any) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		req, _ := http.NewRequest(method, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatalf("%s %s: %v", method, url, err)
			}
			return
		}
		if resp.StatusCode != http.StatusNotFound || time.Now().After(deadline) {
			t.Fatalf("%s %s = %d %s", method, url, resp.StatusCode, b)
		}
	}
}
