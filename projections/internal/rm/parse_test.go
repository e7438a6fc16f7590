package rm

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
)

// parseKeyWhole is ParsePersonKey as it was: one conversion of the whole
// string (which allocates). The test holds the parser to its results.
func parseKeyWhole(s string) (PersonKey, error) {
	var k PersonKey
	if len(s) != 64 {
		return k, fmt.Errorf("person key of %d characters, want 64", len(s))
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return k, fmt.Errorf("person key is not hex: %w", err)
	}
	return k, nil
}

// parseIDWhole is events.ParseID as it was: the digits concatenated, then
// decoded at once.
func parseIDWhole(s string) (events.ID, error) {
	var id events.ID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, fmt.Errorf("events: malformed event id %q", s)
	}
	src := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	if _, err := hex.Decode(id[:], []byte(src)); err != nil {
		return events.ID{}, fmt.Errorf("events: malformed event id %q: %w", s, err)
	}
	return id, nil
}

func TestParsePersonKeyAgreesAndDoesNotAllocate(t *testing.T) {
	good := "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef"
	for _, s := range []string{good, good[:63], good + "0", strings.Replace(good, "a", "g", 1),
		strings.Replace(good, "0", " ", 1), "", strings.Repeat("ff", 32), strings.Replace(good, "f", "\xff", 1)} {
		k1, err1 := ParsePersonKey(s)
		k2, err2 := parseKeyWhole(s)
		if (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error() || err1 == nil && k1 != k2 {
			t.Errorf("ParsePersonKey(%q) = %x, %v; as it was: %x, %v", s, k1, err1, k2, err2)
		}
	}
	if n := testing.AllocsPerRun(100, func() { ParsePersonKey(good) }); n != 0 {
		t.Errorf("ParsePersonKey allocates %v times", n)
	}
}

func TestIDAgreesAndDoesNotAllocate(t *testing.T) {
	good := "0123abcd-4567-89ef-ABCD-0123456789ab"
	for _, s := range []string{good, good[:35], good + "0", strings.Replace(good, "-", "0", 1),
		strings.Replace(good, "a", "x", 1), strings.Replace(good, "9", "-", 1), "", "00000000-0000-0000-0000-000000000000"} {
		id1, err1 := ID(s)
		id2, err2 := parseIDWhole(s)
		if (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error() || err1 == nil && id1 != id2 {
			t.Errorf("ID(%q) = %x, %v; as it was: %x, %v", s, id1, err1, id2, err2)
		}
	}
	if n := testing.AllocsPerRun(100, func() { ID(good) }); n != 0 {
		t.Errorf("ID allocates %v times", n)
	}
}
