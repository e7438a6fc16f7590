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
		{"trainee-account-token-0182ce950f5ecca6", ""},
		{"12345678901", ""},                              // 11 digits: not an account
		{"bank-7-2 2025-10-16", ""},                      // short numbers apart
		{"6222  0200 1234 5678", "6222  0200 **** 5678"}, // a double space ends a run: 4 digits, then 12
		{"e3ab80c9-ea9f-88b2-8ead", ""},                  // a UUID's digits are broken by letters
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
