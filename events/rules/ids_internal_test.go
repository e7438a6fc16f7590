package rules

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
)

// TestWriteID checks that writeID writes what events.ID.String returns.
func TestWriteID(t *testing.T) {
	ids := []events.ID{{}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, events.RandomID()}
	for i := 0; i < 100; i++ {
		ids = append(ids, events.DeriveID("t", fmt.Sprint(i)))
	}
	for _, id := range ids {
		var b strings.Builder
		writeID(&b, id)
		if b.String() != id.String() || b.Len() != idTextLen {
			t.Errorf("writeID(%x) = %q; String() = %q", id[:], b.String(), id.String())
		}
	}
}
