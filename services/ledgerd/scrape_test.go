package ledgerd

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cqhrss/subsidyledger/services/api"
)

// TestMetricsNeedAScrapeToken: with --metrics-token-file, /metrics answers
// only a bearer token the file names (either of two, for rotation), and
// the health endpoints stay open.
func TestMetricsNeedAScrapeToken(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "scrape-tokens")
	body := "# Prometheus, rotated 2026-11\n" + api.HashToken("scrape-old") + "\n\n" + api.HashToken("scrape-new") + "\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, filepath.Join(dir, "data"), "")
	cfg.MetricsTokens = file
	led := start(t, cfg)
	base := "http://" + led.addr.HTTPAddr
	get := func(path, auth string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, auth := range []string{"", "Bearer ", "Bearer scrape-older", "Basic c2NyYXBlLW9sZA==", "scrape-old", "Bearer " + api.HashToken("scrape-old")} {
		if code, b := get("/metrics", auth); code != http.StatusUnauthorized || strings.Contains(b, "# TYPE") {
			t.Errorf("/metrics with Authorization %q = %d; want 401 and no metrics", auth, code)
		}
	}
	for _, tok := range []string{"scrape-old", "scrape-new"} {
		if code, b := get("/metrics", "Bearer "+tok); code != http.StatusOK || !strings.Contains(b, "# TYPE subsidy_ledger_") {
			t.Errorf("/metrics with token %s = %d; want 200 and the ledger's metrics", tok, code)
		}
	}
	if code, _ := get("/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz without a token = %d; want 200", code)
	}
}

func TestScrapeTokensFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, body, want string }{
		{"empty", "# nothing yet\n\n", "names no token"},
		{"a plain token", "scrape-old\n", "line 1: want the SHA-256"},
		{"short", "# ok\nabcdef\n", "line 2: want the SHA-256"},
	} {
		file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
		if err := os.WriteFile(file, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := scrapeGuard(file); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error saying %q", tc.name, err, tc.want)
		}
	}
	if _, err := scrapeGuard(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
