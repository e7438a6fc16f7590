package events

import (
	"strings"
	"testing"
)

// TestIDText checks the text form against ParseID both ways and that
// AppendText appends.
func TestIDText(t *testing.T) {
	for _, id := range []ID{{}, DeriveID("kind", "a", "b"), RandomID(), {0xff, 0xfe, 0x01, 0x80, 0x7f, 0x10, 0x8a, 0xbc, 0x9d, 0xef, 0, 1, 2, 3, 4, 0xaa}} {
		s := id.String()
		if len(s) != 36 || s != strings.ToLower(s) || strings.Count(s, "-") != 4 {
			t.Errorf("String() = %q", s)
		}
		back, err := ParseID(s)
		if err != nil || back != id {
			t.Errorf("ParseID(%q) = %v, %v; want %v", s, back, err, id)
		}
		b, err := id.AppendText([]byte("x:"))
		if err != nil || string(b) != "x:"+s {
			t.Errorf("AppendText = %q, %v", b, err)
		}
	}
}
