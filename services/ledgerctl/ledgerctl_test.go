package ledgerctl

import (
	"strings"
	"testing"
)

func TestHelp(t *testing.T) {
	for name := range commands {
		_, stderr, err := run(t, "", nil, "help", name)
		if err != nil || !strings.Contains(stderr, "usage: ledgerctl "+name) {
			t.Errorf("help %s: %v\n%s", name, err, stderr)
		}
		if _, _, err := run(t, "", nil, name, "-h"); err != nil {
			t.Errorf("%s -h: %v", name, err)
		}
	}
	if _, _, err := run(t, "", nil); exitCode(err) != 2 {
		t.Errorf("no command: %v", err)
	}
	if _, _, err := run(t, "", nil, "frobnicate"); exitCode(err) != 2 {
		t.Errorf("unknown command: %v", err)
	}
}
