package ledgerd

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/cqhrss/subsidyledger/services/internal/bearer"
)

// scrapeGuard reads a scrape-tokens file (--metrics-token-file) and returns
// a wrapper that serves a request only with "Authorization: Bearer <token>"
// of a token the file names by its SHA-256 (64 hex characters a line;
// blank lines and lines starting with # are skipped; several lines let a
// token be rotated). Prometheus sends the token from its scrape config's
// authorization.credentials_file.
func scrapeGuard(path string) (func(http.Handler) http.Handler, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var hashes []bearer.Hash
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		h, err := bearer.ParseHash(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %v (printf %%s \"$TOKEN\" | sha256sum)", path, n, err)
		}
		hashes = append(hashes, h)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(hashes) == 0 {
		return nil, fmt.Errorf("%s names no token: no scrape would be served", path)
	}
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tok, ok := bearer.Token(r); !ok || bearer.Find(hashes, tok) < 0 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
				http.Error(w, "metrics: send Authorization: Bearer <scrape token>", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}, nil
}
