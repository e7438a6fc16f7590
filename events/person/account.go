package person

// A bank account or card number written out: a run of 12 or more digits,
// which may be grouped by single spaces or hyphens (6222 0200 1234 5678 901).
// A trainee's account is personal data: the ledger keeps a token of it,
// never the number (the encrypted personal-data store keeps the number).
const minAccountDigits = 12

// ContainsAccountNumber reports whether s holds a bank account or card
// number written out: 12 digits or more in a run (grouped by single spaces
// or hyphens, or not).
func ContainsAccountNumber(s string) bool { return scanAccounts(s, nil) }

// RedactAccountNumbers masks every account number in text (see
// ContainsAccountNumber) but its first and last four digits, in place: the
// length does not change, so a protobuf message whose string holds one
// stays decodable. It returns text itself when there is none, a copy
// otherwise.
func RedactAccountNumbers(text []byte) []byte {
	if !scanAccounts(text, nil) {
		return text
	}
	out := append([]byte(nil), text...)
	scanAccounts(text, func(i int) { out[i] = '*' })
	return out
}

func digit(c byte) bool { return c >= '0' && c <= '9' }

// scanAccounts finds the account numbers in s; with mask, it calls mask
// with the index of each digit to hide.
func scanAccounts[T ~string | ~[]byte](s T, mask func(int)) bool {
	found := false
	for i := 0; i < len(s); {
		if !digit(s[i]) {
			i++
			continue
		}
		// A run: digits, with single separators between them.
		var digits []int
		j := i
		for j < len(s) {
			if digit(s[j]) {
				digits = append(digits, j)
				j++
				continue
			}
			if (s[j] == ' ' || s[j] == '-') && j+1 < len(s) && digit(s[j+1]) {
				j++
				continue
			}
			break
		}
		if len(digits) >= minAccountDigits {
			found = true
			if mask == nil {
				return true
			}
			for _, k := range digits[4 : len(digits)-4] {
				mask(k)
			}
		}
		i = j
	}
	return found
}
