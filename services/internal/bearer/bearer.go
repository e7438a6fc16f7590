// Package bearer checks bearer tokens against the SHA-256 hashes that
// configuration files hold in place of the tokens (the API's tokens file,
// ledgerd's scrape tokens), so that a file grants nothing by itself.
package bearer

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
)

// Hash is a token's SHA-256.
type Hash [sha256.Size]byte

// ErrHash reports a stored hash that is not 64 hex characters.
var ErrHash = errors.New("want the SHA-256 of a token, 64 hex characters")

// ParseHash reads a hash as the files hold it: 64 hex characters.
func ParseHash(s string) (Hash, error) {
	var h Hash
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) != len(h) {
		return h, ErrHash
	}
	return Hash(raw), nil
}

// Of returns a token's hash in hex, as the files hold it.
func Of(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Token returns the request's "Authorization: Bearer <token>", false
// without one or with an empty token.
func Token(r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return tok, ok && tok != ""
}

// Find returns the index of the hash of token in hashes, -1 if none
// matches. It compares every hash in constant time, without an early
// exit, so that the time taken says nothing about which or whether one
// matched. With a hash listed twice, the last match wins.
func Find(hashes []Hash, token string) int {
	h := sha256.Sum256([]byte(token))
	found := -1
	for i := range hashes {
		if subtle.ConstantTimeCompare(h[:], hashes[i][:]) == 1 {
			found = i
		}
	}
	return found
}
