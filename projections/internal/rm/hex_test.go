package rm

import (
	"strings"
	"testing"
)

func TestKeyOfAgreesWithParsePersonKey(t *testing.T) {
	good := "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef"
	for _, s := range []string{good, good[:63], good + "0", strings.Replace(good, "a", "g", 1),
		strings.Replace(good, "0", " ", 1), "", strings.Repeat("ff", 32), strings.Replace(good, "f", "\xff", 1)} {
		k1, err1 := KeyOf(s)
		k2, err2 := ParsePersonKey(s)
		if (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error() || err1 == nil && k1 != k2 {
			t.Errorf("KeyOf(%q) = %x, %v; ParsePersonKey: %x, %v", s, k1, err1, k2, err2)
		}
	}
	if n := testing.AllocsPerRun(100, func() { KeyOf(good) }); n != 0 {
		t.Errorf("KeyOf allocates %v times", n)
	}
}

func TestIDOfAgreesWithID(t *testing.T) {
	good := "0123abcd-4567-89ef-ABCD-0123456789ab"
	for _, s := range []string{good, good[:35], good + "0", strings.Replace(good, "-", "0", 1),
		strings.Replace(good, "a", "x", 1), strings.Replace(good, "9", "-", 1), "", "00000000-0000-0000-0000-000000000000"} {
		id1, err1 := IDOf(s)
		id2, err2 := ID(s)
		if (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error() || err1 == nil && id1 != id2 {
			t.Errorf("IDOf(%q) = %x, %v; ID: %x, %v", s, id1, err1, id2, err2)
		}
	}
	if n := testing.AllocsPerRun(100, func() { IDOf(good) }); n != 0 {
		t.Errorf("IDOf allocates %v times", n)
	}
}
