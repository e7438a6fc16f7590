package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/cqhrss/subsidyledger/services/internal/bearer"
)

// Token is one API credential of the tokens file (ledgerd --api-tokens):
//
//	{"tokens": [
//	  {"sha256": "<hex SHA-256 of the bearer token>", "scope": "district:cq-yuzhong", "name": "渝中区 supervisor", "official": "cq-yuzhong-official-1"},
//	  ...]}
//
// A token belongs to one person when it may act: Official is the official
// id that the maker/checker actions record (confirm, approve, write off).
// It defaults to Name when Name is a valid official id (ValidOfficial: no
// white space); a token without an official id may read but not act.
//
// Bearer tokens rather than signed JWTs: the file is the whole truth (a
// token is revoked by deleting its line and reloading), no signing key has
// to be guarded or rotated, and only hashes are stored, so the file itself
// grants nothing. Tokens are compared in constant time.
type Token struct {
	SHA256 string `json:"sha256"`
	Scope  string `json:"scope"`
	Name   string `json:"name,omitempty"`
	// Official is the acting official's id (default: Name, if valid).
	Official string `json:"official,omitempty"`
}

// HashToken returns the hex SHA-256 of a bearer token, as the tokens file
// stores it.
func HashToken(token string) string { return bearer.Of(token) }

// LoadTokens reads a tokens file and returns the ScopeFunc that
// authenticates requests by "Authorization: Bearer <token>".
func LoadTokens(path string) (ScopeFunc, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("api: tokens file: %w", err)
	}
	var f struct {
		Tokens []Token `json:"tokens"`
	}
	// Strict: a misspelt field would otherwise leave every token out and
	// every request refused, with ledgerd ready and nothing logged.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("api: tokens file %s: %w", path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("api: tokens file %s: more after its JSON object", path)
	}
	if len(f.Tokens) == 0 {
		return nil, fmt.Errorf(`api: tokens file %s names no token: every request would be refused (want {"tokens": [{"sha256": ..., "scope": ...}, ...]})`, path)
	}
	return TokenScope(f.Tokens)
}

// TokenScope authenticates requests by bearer token against tokens.
func TokenScope(tokens []Token) (ScopeFunc, error) {
	hashes := make([]bearer.Hash, 0, len(tokens))
	scopes := make([]Scope, 0, len(tokens))
	for i, t := range tokens {
		h, err := bearer.ParseHash(t.SHA256)
		if err != nil {
			return nil, fmt.Errorf("api: token %d: sha256 must be 64 hex characters", i+1)
		}
		sc, err := ParseScope(t.Scope)
		if err != nil {
			return nil, fmt.Errorf("api: token %d: %v", i+1, err)
		}
		switch {
		case t.Official != "":
			if !ValidOfficial(t.Official) {
				return nil, fmt.Errorf("api: token %d: official %q: want 1 to %d characters without white space", i+1, t.Official, maxOfficialLen)
			}
			sc.Official = t.Official
		case ValidOfficial(t.Name):
			sc.Official = t.Name
		}
		hashes = append(hashes, h)
		scopes = append(scopes, sc)
	}
	return func(r *http.Request) (Scope, error) {
		tok, ok := bearer.Token(r)
		if !ok {
			return Scope{}, errorf(CodeUnauthenticated, "send Authorization: Bearer <token>")
		}
		found := bearer.Find(hashes, tok)
		if found < 0 {
			return Scope{}, errorf(CodeUnauthenticated, "unknown token")
		}
		return scopes[found], nil
	}, nil
}
