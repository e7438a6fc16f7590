package person

import "testing"

func TestAccountNumbers(t *testing.T) {
	for _, tc := range []struct {
		in, masked string
	}{
		{"6222020012345678901", "6222***********8901"},
		{"paid to 6222 0200 1234 5678 901.", "paid to 6222 **** **** ***8 901."},
		{"6228-0000-0010-0001", "6228-****-****-0001"},
		{"acct 123456789012", "acct 1234****9012"},
		{"acct-6228000000100001", "acct-6228********0001"},
		// Not account numbers: digits inside a token, other groupings,
		// fewer than 12 digits, a UUID.
		{"trainee-account-token-743677439965aae9", ""},
		{"trainee-account-token-0182ce950f5ecca6", ""},
		{"shared-account-token-20251127-1234", ""},
		{"tok123456789012", ""},
		{"12345678901", ""},
		{"bank-7-2 2025-10-16", ""},
		{"e3ab80c9-ea9f-88b2-8ead", ""},
		{"6222  0200 1234 5678", "6222  0200 **** 5678"}, // a double space ends a grouping: 4 digits, then 12
	} {
		got := string(RedactAccountNumbers([]byte(tc.in)))
		want := tc.masked
		if want == "" {
			want = tc.in
		}
		if got != want || ContainsAccountNumber(tc.in) != (got != tc.in) {
			t.Errorf("%q: masked %q (contains %v); want %q", tc.in, got, ContainsAccountNumber(tc.in), want)
		}
	}
}

// FuzzAccountNumbers: the scanner neither panics nor changes the length,
// and masks only digits.
func FuzzAccountNumbers(f *testing.F) {
	for _, s := range []string{"6222020012345678901", "6222 0200 1234 5678 901", "a-1-", "-", "1 1 1 1 1 1 1 1 1 1 1 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := RedactAccountNumbers([]byte(s))
		if len(out) != len(s) {
			t.Fatalf("length %d -> %d", len(s), len(out))
		}
		for i := range out {
			if out[i] != s[i] && (out[i] != '*' || !digit(s[i])) {
				t.Fatalf("%q -> %q", s, out)
			}
		}
	})
}
