package ledgerctl

import (
	"strings"
	"testing"

	"github.com/cqhrss/subsidyledger/events/rules"
)

func TestRules(t *testing.T) {
	out, errOut, err := run(t, "", nil, "rules")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rules.ReadRuleSet(strings.NewReader(out))
	if err != nil {
		t.Fatalf("ledgerd cannot read what rules printed: %v\n%s", err, out)
	}
	if rs.Fingerprint() != rules.DefaultRuleSet().Fingerprint() {
		t.Errorf("printed another rule set:\n%s", out)
	}
	if !strings.Contains(errOut, "rule set 2026.6") || !strings.Contains(errOut, "through 2026") {
		t.Errorf("stderr %q", errOut)
	}

	// An edited file: a seven-day notice under a new version.
	file := writeFile(t, "rules.json", strings.NewReplacer(`"version": "2026.6"`, `"version": "2026.7d"`,
		`"notice_working_days": 5`, `"notice_working_days": 7`).Replace(out))
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"rules", "--notice", "2026-09-30"}, nil, "approved 2026-09-30: notice 2026-09-30..2026-10-12 (5 working days)\n"},
		{[]string{"rules", "--notice", "2026-02-13"}, nil, "approved 2026-02-13: notice 2026-02-13..2026-02-26 (5 working days)\n"},
		{[]string{"rules", "--file", file, "--notice", "2026-09-30"}, nil, "approved 2026-09-30: notice 2026-09-30..2026-10-14 (7 working days)\n"},
		{[]string{"rules", "--notice", "2026-09-30"}, []string{"LEDGER_FILE=" + file}, "notice 2026-09-30..2026-10-14"},
		{[]string{"rules", "--notice", "2026-12-30"}, nil, "warning: the window reaches 2027, whose holidays the rule set does not list"},
	} {
		out, _, err := run(t, "", tc.env, tc.args...)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Errorf("%v: %q, %v; want %q", tc.args, out, err, tc.want)
		}
	}
	if out, _, _ := run(t, "", nil, "rules", "--notice", "2026-09-30"); strings.Contains(out, "warning") {
		t.Errorf("a window inside the calendar warned: %q", out)
	}

	bad := writeFile(t, "bad.json", `{"version": "x"}`)
	for _, args := range [][]string{
		{"rules", "--file", bad},
		{"rules", "--file", bad + ".none"},
		{"rules", "--notice", "30/09/2026"},
		{"rules", "stray"},
	} {
		if _, _, err := run(t, "", nil, args...); exitCode(err) != 2 {
			t.Errorf("%v: %v; want a usage error (exit 2)", args, err)
		}
	}
}
