package ledgerctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// client talks to a running ledgerd's HTTP API.
type client struct {
	base  string
	scope string
	token string // LEDGER_API_TOKEN, sent as Authorization: Bearer
	http  *http.Client
}

// serverFlags adds --server and --scope.
type serverFlags struct {
	server, scope *string
	getenv        func(string) string
}

func addServerFlags(f *flags) serverFlags {
	return serverFlags{
		server: f.str("server", "", "a running ledgerd's HTTP address, e.g. http://127.0.0.1:8080"),
		scope:  f.str("scope", "", "the scope sent as X-Ledger-Scope (municipal, auditor, district:UNIT, institution:ID) where a gateway does not set it"),
		getenv: f.e.getenv,
	}
}

func (s serverFlags) client() (*client, error) {
	if *s.server == "" {
		return nil, nil
	}
	u, err := url.Parse(*s.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErrorf("--server %q: want http://HOST:PORT", *s.server)
	}
	return &client{base: strings.TrimRight(*s.server, "/"), scope: *s.scope, token: s.getenv("LEDGER_API_TOKEN"),
		http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// apiError is the API's error body.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// do sends a request and decodes a JSON answer into out.
func (c *client) do(ctx context.Context, method, path string, q url.Values, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if c.scope != "" {
		req.Header.Set("X-Ledger-Scope", c.scope)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return failf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return failf("%s %s: %v", method, u, err)
	}
	if resp.StatusCode/100 != 2 {
		var ae apiError
		if json.Unmarshal(body, &ae) == nil && ae.Error.Code != "" {
			return failf("%s %s: %s: %s", method, u, ae.Error.Code, ae.Error.Message)
		}
		return failf("%s %s: %s", method, u, resp.Status)
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = body
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return failf("%s %s: the answer is not what ledgerctl expects: %v", method, u, err)
	}
	return nil
}

// The audit endpoints ledgerd serves (see the merkle package for the
// bodies).
const (
	pathCheckpoint  = "/v1/audit/checkpoint"        // GET latest, POST issue now: subsidy.v1.AuditCheckpoint (protojson)
	pathInclusion   = "/v1/audit/proof/inclusion"   // ?position=P&tree_size=N: merkle.InclusionProof
	pathConsistency = "/v1/audit/proof/consistency" // ?old_size=M&new_size=N: merkle.ConsistencyProof
)

func itoa[T ~int64 | ~uint64](n T) string { return fmt.Sprint(n) }
