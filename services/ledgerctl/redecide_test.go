package ledgerctl

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestRedecide runs redecide on the fixture, a log written by the
// benchmark generator (projections/gen), which labels its decisions rule
// set 2025.1 and makes them its own simpler way: deciding its facts again
// under today's rules cannot give what it recorded, and redecide must say
// so (exit 1), fact by fact, and point at the rule set. Its first events
// (units and institutions, which derive nothing) do reproduce: --through
// there is OK (exit 0). The ledger's own logs are checked in ledgerd's
// tests (a simulated year, and a log after 20 SIGKILLs), where every
// decision must reproduce.
func TestRedecide(t *testing.T) {
	store := copyStore(t)

	out, _, err := run(t, "", nil, "redecide", "--store", store)
	if exitCode(err) != 1 || !strings.Contains(out, "verdict:    DIFFERENT: ") || !strings.Contains(out, "rules 2025.1") ||
		!strings.Contains(out, "were compared with that label in place of 2026.6") || !strings.Contains(out, " differs: recorded {") {
		t.Fatalf("redecide on the generated log: exit %d\n%s", exitCode(err), out)
	}

	out, _, err = run(t, "", nil, "redecide", "--store", store, "--json")
	var rep redecideJSON
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil || exitCode(err) != 1 || rep.OK || rep.Mismatches == 0 ||
		rep.Matched+rep.Mismatches != rep.Facts || len(rep.Problems) == 0 || rep.ByVersion["2025.1"] == 0 || rep.RuleSetVersion != "2026.6" {
		t.Fatalf("redecide --json: exit %d, %v\n%s", exitCode(err), jerr, out)
	}

	out, _, err = run(t, "", nil, "redecide", "--store", store, "--through", "20")
	if err != nil || !strings.Contains(out, "up to position 20:") || !strings.Contains(out, "verdict:    OK: every one of the 20 facts") {
		t.Fatalf("redecide --through 20: %v\n%s", err, out)
	}

	if _, _, err := run(t, "", nil, "redecide", "--store", store, "--rule-set", writeFile(t, "rules.json", "{}")); exitCode(err) != 2 {
		t.Errorf("redecide with an invalid rule set file: exit %d; want 2", exitCode(err))
	}
}
