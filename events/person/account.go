package person

// A bank account or card number written out: 12 digits or more standing
// alone (no letter or digit just before or after them), either in one run
// or in groups of four joined by single spaces, hyphens, dots or slashes,
// the last group of one to four (6222 0200 1234 5678 901), in ASCII or
// full-width digits, grouped by any of the spaces fold.go folds. A trainee's account is personal
// data: the ledger keeps a token of it, never the number (the encrypted
// personal-data store keeps the number). Digits inside a token
// (trainee-account-token-743677439965aae9) or in other groupings
// (20251127-1234) are not an account number.
const minAccountDigits = 12

// ContainsAccountNumber reports whether s holds a bank account or card
// number written out (see minAccountDigits).
func ContainsAccountNumber(s string) bool { return findAccounts(s, nil) }

// RedactAccountNumbers masks every account number in text (see
// ContainsAccountNumber) but its first and last four digits, in place: the
// length does not change, so a protobuf message whose string holds one
// stays decodable. It returns text itself when there is none, a copy
// otherwise.
func RedactAccountNumbers(text []byte) []byte {
	if !findAccounts(text, nil) {
		return text
	}
	out := append([]byte(nil), text...)
	findAccounts(text, func(i int) { out[i] = '*' })
	return out
}

// findAccounts is scanAccounts over s with full-width digits and other
// spaces folded (fold.go).
func findAccounts[T ~string | ~[]byte](s T, mask func(int)) bool {
	if foldable(s) {
		return scanFolded(s, func(f []byte, m func(int)) bool { return scanAccounts(f, m) }, mask)
	}
	return scanAccounts(s, mask)
}

func digit(c byte) bool { return c >= '0' && c <= '9' }

// accountSeparator reports whether c may join the groups of four of an
// account number.
func accountSeparator(c byte) bool { return c == ' ' || c == '-' || c == '.' || c == '/' }

// alnum reports whether c is an ASCII letter or digit: what may not touch
// an account number.
func alnum(c byte) bool { return digit(c) || c|0x20 >= 'a' && c|0x20 <= 'z' }

// scanAccounts finds the account numbers in s; with mask, it calls mask
// with the index of each digit to hide.
func scanAccounts[T ~string | ~[]byte](s T, mask func(int)) bool {
	found := false
	for i := 0; i < len(s); {
		if !digit(s[i]) {
			i++
			continue
		}
		// A run of digits, then groups after single separators.
		j := i
		for j < len(s) && digit(s[j]) {
			j++
		}
		first := j - i
		var digits []int
		for k := i; k < j; k++ {
			digits = append(digits, k)
		}
		grouped := first == 4
		for grouped && j+1 < len(s) && accountSeparator(s[j]) && digit(s[j+1]) {
			k := j + 1
			for k < len(s) && digit(s[k]) {
				k++
			}
			n := k - (j + 1)
			if n > 4 {
				break
			}
			for d := j + 1; d < k; d++ {
				digits = append(digits, d)
			}
			j = k
			if n < 4 {
				break // the last group
			}
		}
		standsAlone := (i == 0 || !alnum(s[i-1])) && (j == len(s) || !alnum(s[j]))
		if len(digits) >= minAccountDigits && standsAlone {
			found = true
			if mask == nil {
				return true
			}
			for _, k := range digits[4 : len(digits)-4] {
				mask(k)
			}
		}
		if j == i {
			j++
		}
		i = j
	}
	return found
}
