package rm

import "github.com/cqhrss/subsidyledger/events"

// hexVal maps a byte to the value of the hex digit it is (either case, as
// encoding/hex accepts), or to 0xff if it is not one.
var hexVal = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := byte('0'); c <= '9'; c++ {
		t[c] = c - '0'
	}
	for c := byte('a'); c <= 'f'; c++ {
		t[c] = c - 'a' + 10
		t[c-'a'+'A'] = c - 'a' + 10
	}
	return t
}()

// decodeHex decodes the 2*len(dst) hex digits of s into dst. It reports
// false if one is not a hex digit.
func decodeHex(dst []byte, s string) bool {
	s = s[:2*len(dst)]
	var bad byte
	for i := range dst {
		hi, lo := hexVal[s[2*i]], hexVal[s[2*i+1]]
		bad |= hi | lo
		dst[i] = hi<<4 | lo
	}
	return bad&0xf0 == 0
}

// KeyOf is ParsePersonKey without allocating (ParsePersonKey copies the
// string to decode it): a rebuild parses millions. Errors: those of
// ParsePersonKey.
func KeyOf(s string) (PersonKey, error) {
	var k PersonKey
	if len(s) == 2*len(k) && decodeHex(k[:], s) {
		return k, nil
	}
	return ParsePersonKey(s)
}

// IDOf is ID without allocating (events.ParseID concatenates the digits to
// decode them). Errors: those of ID.
func IDOf(s string) (events.ID, error) {
	var id events.ID
	if len(s) == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-' &&
		decodeHex(id[0:4], s[0:8]) && decodeHex(id[4:6], s[9:13]) && decodeHex(id[6:8], s[14:18]) &&
		decodeHex(id[8:10], s[19:23]) && decodeHex(id[10:16], s[24:36]) {
		return id, nil
	}
	return ID(s)
}
