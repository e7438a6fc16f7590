package ledgerd

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cqhrss/subsidyledger/events/merkle"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/api"
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
	// The API's OpenAPI document describes these routes, and each is
	// answered here (by auditapi, JSON; not the mux's 404); as_of is the
	// read models' and refused (400).
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	getJSON(t, "GET", base+"/v1/openapi.json", &doc)
	for _, op := range api.AuditOperations() {
		method, path, _ := strings.Cut(op, " ")
		if doc.Paths[path][strings.ToLower(method)] == nil {
			t.Errorf("%s is not in /v1/openapi.json", op)
		}
		for _, q := range []string{"", "?as_of=1"} {
			req, _ := http.NewRequest(method, base+path+q, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch ct := resp.Header.Get("Content-Type"); {
			case !strings.HasPrefix(ct, "application/json"):
				t.Errorf("%s%s = %d %q %.100s; want auditapi's JSON", op, q, resp.StatusCode, ct, b)
			case q != "" && resp.StatusCode != http.StatusBadRequest:
				t.Errorf("%s%s = %d %.100s; want 400", op, q, resp.StatusCode, b)
			}
		}
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
