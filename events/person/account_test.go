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
		// Other separators, full-width digits, other spaces.
		{"6222.0200.1234.5678", "6222.****.****.5678"},
		{"6222/0200/1234/5678", "6222/****/****/5678"},
		{"卡号６２２２０２００１２３４５６７８", "卡号６２２２************************５６７８"},
		{"６２２２ ０２００ １２３４ ５６７８", "６２２２ ************ ************ ５６７８"},
		{"6222\u00a00200\u00a01234\u00a05678", "6222\u00a0****\u00a0****\u00a05678"},
		{"6222\u30000200\u30001234\u30005678", "6222\u3000****\u3000****\u30005678"},
		{"6222－0200－1234－5678", "6222－****－****－5678"},
		{"Ａ6222020012345678", ""}, // a full-width letter just before: not standing alone
		{"2025.11.27 v1.2.3.4", ""},
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
// and masks only digits (ASCII, or the bytes of a full-width one).
func FuzzAccountNumbers(f *testing.F) {
	for _, s := range []string{"6222020012345678901", "6222 0200 1234 5678 901", "a-1-", "-", "1 1 1 1 1 1 1 1 1 1 1 1", "６２２２０２００１２３４５６７８", "6222\u30000200\u30001234\u30005678", "\xef\xbc", "\xc2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := RedactAccountNumbers([]byte(s))
		if len(out) != len(s) {
			t.Fatalf("length %d -> %d", len(s), len(out))
		}
		for i := 0; i < len(out); {
			c, w := foldAt(s, i)
			for k := i; k < i+w; k++ {
				if out[k] != s[k] && (out[k] != '*' || !digit(c)) {
					t.Fatalf("%q -> %q", s, out)
				}
			}
			i += w
		}
	})
}
