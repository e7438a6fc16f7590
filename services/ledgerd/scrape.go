package ledgerd

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
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
	var hashes [][sha256.Size]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		raw, err := hex.DecodeString(line)
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("%s line %d: want the SHA-256 of a token, 64 hex characters (printf %%s \"$TOKEN\" | sha256sum)", path, n)
		}
		hashes = append(hashes, [sha256.Size]byte(raw))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(hashes) == 0 {
		return nil, fmt.Errorf("%s names no token: no scrape would be served", path)
	}
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			sum := sha256.Sum256([]byte(tok))
			found := 0
			for i := range hashes { // no early exit: the same time for every token
				found |= subtle.ConstantTimeCompare(sum[:], hashes[i][:])
			}
			if !ok || tok == "" || found == 0 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
				http.Error(w, "metrics: send Authorization: Bearer <scrape token>", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}, nil
}
