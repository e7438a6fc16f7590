package bearer

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	a, err := ParseHash(Of("token-a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseHash(strings.ToUpper(Of("token-b"))) // hex of either case
	if err != nil {
		t.Fatal(err)
	}
	hashes := []Hash{a, b}
	for _, c := range []struct {
		token string
		want  int
	}{{"token-a", 0}, {"token-b", 1}, {"token-c", -1}, {"", -1}, {"token-a ", -1}} {
		if got := Find(hashes, c.token); got != c.want {
			t.Errorf("Find(%q) = %d, want %d", c.token, got, c.want)
		}
	}
	if got := Find(nil, "token-a"); got != -1 {
		t.Errorf("Find over no hashes = %d, want -1", got)
	}
}

func TestParseHashRefusesWhatIsNotASHA256(t *testing.T) {
	for _, s := range []string{"", "abc", Of("x")[:62], Of("x") + "00", strings.Repeat("g", 64), "token"} {
		if _, err := ParseHash(s); err != ErrHash {
			t.Errorf("ParseHash(%q) = %v, want ErrHash", s, err)
		}
	}
}

func TestToken(t *testing.T) {
	for _, c := range []struct {
		header string
		want   string
		ok     bool
	}{{"Bearer abc", "abc", true}, {"", "", false}, {"Bearer ", "", false}, {"bearer abc", "", false}, {"Basic abc", "", false}} {
		r := httptest.NewRequest("GET", "/", nil)
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		got, ok := Token(r)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("Token(%q) = %q, %v; want %q, %v", c.header, got, ok, c.want, c.ok)
		}
	}
}
