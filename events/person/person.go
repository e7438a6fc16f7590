// Package person handles the trainee's resident ID number (GB 11643) so that
// it never needs to be stored: validation and normalisation, the keyed person
// key that events carry instead, and masking for display (DOMAIN.md §3).
//
// The person key is HMAC-SHA256, keyed with a secret from configuration (at
// least 32 bytes), over the bytes of the normalised 18-character ID number
// (ASCII digits, final check character upper-case "X"), written as 64
// lower-case hexadecimal characters. Every publisher that knows ID numbers
// and the ledger's own tools use the same key, so the same person gets the
// same key everywhere; without the key the key space cannot be searched.
package person

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Problem says what is wrong with an ID number.
type Problem string

const (
	ProblemLength     Problem = "length"      // not 18 characters
	ProblemCharacters Problem = "characters"  // not 17 digits and a digit or X
	ProblemRegion     Problem = "region"      // no province-level region code
	ProblemBirthDate  Problem = "birth_date"  // not a calendar date in range
	ProblemCheckDigit Problem = "check_digit" // ISO 7064 MOD 11-2 mismatch
)

// IDError reports an invalid ID number. It never contains the number.
type IDError struct {
	Problem Problem
	Detail  string
}

func (e *IDError) Error() string {
	return "person: invalid ID number: " + string(e.Problem) + ": " + e.Detail
}

// Is makes errors.Is(err, ErrInvalidID) true for every *IDError.
func (e *IDError) Is(target error) bool { return target == ErrInvalidID }

// ErrInvalidID matches every *IDError with errors.Is.
var ErrInvalidID = errors.New("person: invalid ID number")

// ErrShortKey: the HMAC key is shorter than MinKeyLen.
var ErrShortKey = errors.New("person: person-key secret shorter than 32 bytes")

// MinKeyLen is the minimum length of the person-key secret.
const MinKeyLen = 32

// Birth dates outside [MinBirthYear, MaxBirthYear] are rejected as
// implausible. The bounds are fixed (not today's date) so validation is the
// same on every machine and every day.
const (
	MinBirthYear = 1900
	MaxBirthYear = 2099
)

// provinces are the first two digits of valid region codes (GB/T 2260
// province level, including 71 Taiwan, 81 Hong Kong, 82 Macao and 83 for
// residence permits of Taiwan residents).
var provinces = map[string]bool{
	"11": true, "12": true, "13": true, "14": true, "15": true,
	"21": true, "22": true, "23": true,
	"31": true, "32": true, "33": true, "34": true, "35": true, "36": true, "37": true,
	"41": true, "42": true, "43": true, "44": true, "45": true, "46": true,
	"50": true, "51": true, "52": true, "53": true, "54": true,
	"61": true, "62": true, "63": true, "64": true, "65": true,
	"71": true, "81": true, "82": true, "83": true,
}

var weights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

const checkChars = "10X98765432"

// CheckDigit returns the ISO 7064 MOD 11-2 check character of the first 17
// digits of an ID number. first17 must be 17 ASCII digits.
func CheckDigit(first17 string) byte {
	sum := 0
	for i := 0; i < 17; i++ {
		sum += int(first17[i]-'0') * weights[i]
	}
	return checkChars[sum%11]
}

// Normalize validates an ID number and returns its normalised form: leading
// and trailing white space removed, a final lower-case 'x' made 'X'. It checks
// the length (18), the characters, the province code, the birth date
// (a calendar date, year MinBirthYear..MaxBirthYear) and the check digit.
// Errors are *IDError (errors.Is(err, ErrInvalidID)).
func Normalize(id string) (string, error) {
	s := strings.TrimSpace(id)
	if n := utf8.RuneCountInString(s); n != 18 || len(s) != 18 {
		return "", &IDError{ProblemLength, fmt.Sprintf("%d characters, want 18", n)}
	}
	if s[17] == 'x' {
		s = s[:17] + "X"
	}
	for i := 0; i < 17; i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", &IDError{ProblemCharacters, fmt.Sprintf("character %d is not a digit", i+1)}
		}
	}
	if c := s[17]; (c < '0' || c > '9') && c != 'X' {
		return "", &IDError{ProblemCharacters, "character 18 is not a digit or X"}
	}
	if !provinces[s[:2]] {
		return "", &IDError{ProblemRegion, "no such province code"}
	}
	birth, err := time.Parse("20060102", s[6:14])
	if err != nil || birth.Year() < MinBirthYear || birth.Year() > MaxBirthYear {
		return "", &IDError{ProblemBirthDate, "birth date is not a plausible calendar date"}
	}
	if CheckDigit(s[:17]) != s[17] {
		return "", &IDError{ProblemCheckDigit, "check digit does not match"}
	}
	return s, nil
}

// Validate reports why id is not a valid ID number (an *IDError), or nil.
func Validate(id string) error {
	_, err := Normalize(id)
	return err
}

// Valid reports whether id is a valid ID number.
func Valid(id string) bool {
	_, err := Normalize(id)
	return err == nil
}

// Keyer computes person keys. It is safe for concurrent use.
type Keyer struct {
	key []byte
}

// NewKeyer returns a Keyer for the secret, which must be at least MinKeyLen
// bytes (ErrShortKey otherwise). The secret is copied.
func NewKeyer(secret []byte) (*Keyer, error) {
	if len(secret) < MinKeyLen {
		return nil, ErrShortKey
	}
	return &Keyer{key: append([]byte(nil), secret...)}, nil
}

// Key validates and normalises id and returns its person key: 64 lower-case
// hex characters of HMAC-SHA256(secret, normalised id). Errors are those of
// Normalize.
func (k *Keyer) Key(id string) (string, error) {
	s, err := Normalize(id)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil)), nil
}

// Sum returns HMAC-SHA256 of data under a key derived from the secret for
// purpose (never the secret itself), for values a party without the
// secret must not be able to compute — the API's idempotency keys, say.
func (k *Keyer) Sum(purpose string, data []byte) [sha256.Size]byte {
	d := hmac.New(sha256.New, k.key)
	d.Write([]byte("subsidyledger derived key\x00" + purpose))
	m := hmac.New(sha256.New, d.Sum(nil))
	m.Write(data)
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

// KeyLen is the length of a person key.
const KeyLen = 64

// ValidKey reports whether s is well-formed as a person key: exactly 64
// lower-case hexadecimal characters (it cannot tell whether a key was made
// with the right secret).
func ValidKey(s string) bool {
	if len(s) != KeyLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// RedactIDs returns text with every resident ID number in it masked as
// MaskID masks it (the first and last four characters stay), in place: the
// length does not change, so a protobuf message whose string holds one
// stays decodable. It returns text itself when there is none, a copy
// otherwise.
//
// It masks more than ContainsID finds, since masking what is not an ID
// number costs nothing: besides valid numbers (18 characters anywhere in a
// run of digits and X, or written 6+8+4 with a space or hyphen between the
// groups) it masks the same shapes with a wrong check digit (a mistyped
// number still names its holder by region, birth date and sequence) and
// old 15-digit numbers (a run of exactly 15 digits with a province code and
// a birth date), each when its region and birth date are plausible.
func RedactIDs(text []byte) []byte {
	if !findIDs(text, true, nil) {
		return text
	}
	out := append([]byte(nil), text...)
	findIDs(text, true, func(i int) { out[i] = '*' })
	return out
}

// RedactIDString is RedactIDs for a string; it allocates only when it
// masks something (it runs on every inbound message's subject and key).
func RedactIDString(s string) string {
	if !findIDs(s, true, nil) {
		return s
	}
	return string(RedactIDs([]byte(s)))
}

// ContainsID reports whether s contains a valid resident ID number: 18
// characters that pass Valid anywhere in a run of digits and X, or written
// in groups of 6, 8 and 4 with one space or hyphen between them.
func ContainsID(s string) bool { return findIDs(s, false, nil) }

// ContainsLoneID reports whether s holds a valid resident ID number
// standing alone: a run of exactly 18 digits and X (not 18 characters of a
// longer number), or one written in groups of 6, 8 and 4 joined by a space
// or a hyphen, in ASCII or full-width characters. Account numbers and bank
// references are scanned this way: a 19-digit account may hold 18 digits
// that pass the check, but a field holding an ID number by itself names a
// person.
func ContainsLoneID(s string) bool {
	if foldable(s) {
		f, _ := fold(s)
		s = string(f)
	}
	// Runs of digits, each with the X or x that ends it if one does (the
	// check character): an X before the digits, or between them, is a
	// letter of whatever is around them. A group of the written form is a
	// run too.
	type span struct{ from, to int } // to: past the X, if one ends it
	var runs []span
	for i := 0; i < len(s); {
		if !digit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && digit(s[j]) {
			j++
		}
		// 17 digits and an X are a number; after 18 digits an X is not
		// part of it.
		if j-i == 17 && j < len(s) && (s[j] == 'X' || s[j] == 'x') {
			j++
		}
		runs = append(runs, span{i, j})
		i = j
	}
	for k, r := range runs {
		if r.to-r.from == 18 && Valid(s[r.from:r.to]) {
			return true
		}
		if k+2 < len(runs) {
			g1, g2, g3 := r, runs[k+1], runs[k+2]
			// The last group's X is not taken by the run (it takes one
			// after 17 digits only): take it here.
			if g3.to-g3.from == 3 && g3.to < len(s) && (s[g3.to] == 'X' || s[g3.to] == 'x') {
				g3.to++
			}
			if g1.to-g1.from == 6 && g2.to-g2.from == 8 && g3.to-g3.from == 4 && g2.from == g1.to+1 && g3.from == g2.to+1 {
				if sep := s[g1.to]; (sep == ' ' || sep == '-') && s[g2.to] == sep &&
					Valid(s[g1.from:g1.to]+s[g2.from:g2.to]+s[g3.from:g3.to]) {
					return true
				}
			}
		}
	}
	return false
}

// ContainsIDLike reports whether s contains anything RedactIDs masks: a
// valid ID number, or one with a wrong check digit, or an old 15-digit one.
// It suits prose, where a person types numbers; identifiers from other
// systems' numbering need ContainsID (an 18-digit certificate number made
// of a region code, a date and a sequence would look like one here).
func ContainsIDLike(s string) bool { return findIDs(s, true, nil) }

// findIDs is scanIDs over s with full-width digits and X and other spaces
// folded (fold.go): ４４０１０６…Ｘ is an ID number too.
func findIDs[T ~string | ~[]byte](s T, broad bool, mask func(int)) bool {
	if foldable(s) {
		return scanFolded(s, func(f []byte, m func(int)) bool { return scanIDs(f, broad, m) }, mask)
	}
	return scanIDs(s, broad, mask)
}

// idChar reports whether c can be part of an ID number.
func idChar(c byte) bool { return c >= '0' && c <= '9' || c == 'X' || c == 'x' }

// scanIDs finds the ID numbers in s (with broad, also what RedactIDs masks
// beyond them) and calls mask with the index of every character to hide.
// With mask nil it returns at the first. It does not allocate.
func scanIDs[T ~string | ~[]byte](s T, broad bool, mask func(int)) bool {
	found := false
	hit := func(idx ...int) bool {
		found = true
		if mask == nil {
			return true
		}
		for _, i := range idx {
			mask(i)
		}
		return false
	}
	var id [18]byte
	run := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || !idChar(s[i]) {
			// An old 15-digit number is a run of exactly 15: its first
			// four and last three characters stay, the birth date
			// (characters 7 to 12) is masked with the rest.
			if broad && run == 15 && old15(s[i-15:i]) &&
				hit(i-11, i-10, i-9, i-8, i-7, i-6, i-5, i-4) {
				return true
			}
			run = 0
			continue
		}
		run++
		if run >= 18 {
			for j := range id {
				id[j] = s[i-17+j]
			}
			if plausible(&id, broad) &&
				hit(i-13, i-12, i-11, i-10, i-9, i-8, i-7, i-6, i-5, i-4) {
				return true
			}
		}
		// Written 6+8+4: s[i-19:i+1] is "dddddd dddddddd dddd" (or with
		// hyphens), ending here, with no ID character just before or after
		// (not the tail of a longer number).
		if run == 4 && i >= 19 && (i+1 == len(s) || !idChar(s[i+1])) && (i == 19 || !idChar(s[i-20])) {
			sep := s[i-4]
			if (sep == ' ' || sep == '-') && s[i-13] == sep && groupOfID(s[i-12:i-4]) && groupOfID(s[i-19:i-13]) {
				for j := range 6 {
					id[j] = s[i-19+j]
				}
				for j := range 8 {
					id[6+j] = s[i-12+j]
				}
				for j := range 4 {
					id[14+j] = s[i-3+j]
				}
				if plausible(&id, broad) &&
					hit(i-15, i-14, i-12, i-11, i-10, i-9, i-8, i-7, i-6, i-5) {
					return true
				}
			}
		}
	}
	return found
}

// groupOfID reports whether g is all ID characters.
func groupOfID[T ~string | ~[]byte](g T) bool {
	for i := 0; i < len(g); i++ {
		if !idChar(g[i]) {
			return false
		}
	}
	return true
}

// plausible reports whether id is a valid ID number (as Valid), or with
// broad one whose check digit may be wrong.
func plausible(id *[18]byte, broad bool) bool {
	for _, c := range id[:17] {
		if c < '0' || c > '9' {
			return false
		}
	}
	last := id[17]
	if last == 'x' {
		last = 'X'
	}
	if (last < '0' || last > '9') && last != 'X' {
		return false
	}
	if !provinces[string(id[:2])] || !birthDate(num(id[6:10]), num(id[10:12]), num(id[12:14])) {
		return false
	}
	if broad {
		return true
	}
	sum := 0
	for i, c := range id[:17] {
		sum += int(c-'0') * weights[i]
	}
	return checkChars[sum%11] == last
}

// old15 reports whether s (15 characters) is shaped like a first-generation
// ID number: digits, a province code and a birth date 19YYMMDD.
func old15[T ~string | ~[]byte](s T) bool {
	var b [15]byte
	for i := range b {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		b[i] = s[i]
	}
	return provinces[string(b[:2])] && birthDate(1900+num(b[6:8]), num(b[8:10]), num(b[10:12]))
}

// num is the value of the ASCII digits d.
func num(d []byte) int {
	n := 0
	for _, c := range d {
		n = 10*n + int(c-'0')
	}
	return n
}

// birthDate reports whether y-m-d is a calendar date with y in
// [MinBirthYear, MaxBirthYear], as Normalize checks it.
func birthDate(y, m, d int) bool {
	if y < MinBirthYear || y > MaxBirthYear || m < 1 || m > 12 || d < 1 {
		return false
	}
	days := [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m]
	if m == 2 && y%4 == 0 && (y%100 != 0 || y%400 == 0) {
		days = 29
	}
	return d <= days
}

// MaskID masks an ID number for display: the first 4 and last 4 characters
// stay, every other character becomes '*' (5001**********123X). A lower-case
// final x is shown upper-case. Input of 8 characters or fewer is masked
// entirely. MaskID does not validate.
func MaskID(id string) string {
	r := []rune(strings.TrimSpace(id))
	if len(r) > 0 && r[len(r)-1] == 'x' {
		r[len(r)-1] = 'X'
	}
	if len(r) <= 8 {
		return strings.Repeat("*", len(r))
	}
	for i := 4; i < len(r)-4; i++ {
		r[i] = '*'
	}
	return string(r)
}

// MaskName masks a personal name for display, rune by rune: the first
// character stays; a two-character name becomes 张*, a longer one keeps its
// last character too with every middle character masked (张*三, 欧阳娜明 → 欧**明).
// Surrounding white space is dropped; a one-character name becomes "*" and
// an empty name stays empty. Separators in transliterated names (·, space)
// are masked like any other character, so their positions do not leak.
func MaskName(name string) string {
	r := []rune(strings.TrimSpace(name))
	switch len(r) {
	case 0:
		return ""
	case 1:
		return "*"
	case 2:
		return string(r[0]) + "*"
	}
	return string(r[0]) + strings.Repeat("*", len(r)-2) + string(r[len(r)-1])
}
