package ledgerctl

import (
	"context"
	"fmt"
	"os"

	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
)

// cmdRules prints a rule set in the form ledgerd --rule-set reads, or the
// notice window an approval gets under it.
func cmdRules(_ context.Context, e *env, args []string) error {
	f := newFlags(e, "rules", "[--file FILE] [--notice YYYY-MM-DD]")
	file := f.str("file", "", "a rule set file to read as ledgerd --rule-set reads it (default: the built-in rule set)")
	notice := f.str("notice", "", "print the public-notice window of an entitlement approved on this date instead of the rule set")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.noArgs(); err != nil {
		return err
	}
	rs, err := ruleSet("--file", *file)
	if err != nil {
		return err
	}
	fp := rs.Fingerprint()
	fmt.Fprintf(e.stderr, "rule set %s (fingerprint %s), holidays listed through %d\n", rs.Version, fp[:12], rs.CalendarThrough)
	if *notice == "" {
		return rs.WriteJSON(e.stdout)
	}
	d, err := refdata.ParseDate(*notice)
	if err != nil {
		return usageErrorf("--notice: %v", err)
	}
	start, end := rs.NoticeWindow(d)
	fmt.Fprintf(e.stdout, "approved %s: notice %s..%s (%d working days)\n", d, start, end, rs.NoticeWorkingDays)
	if !rs.CalendarCovers(end) {
		fmt.Fprintf(e.stdout, "warning: the window reaches %d, whose holidays the rule set does not list (weekends only)\n", end.Year())
	}
	return nil
}

// ruleSet reads the rule set file the flag named (as ledgerd --rule-set
// reads it), or returns the built-in one when file is "".
func ruleSet(flag, file string) (rules.RuleSet, error) {
	if file == "" {
		return rules.DefaultRuleSet(), nil
	}
	r, err := os.Open(file)
	if err != nil {
		return rules.RuleSet{}, usageErrorf("%s: %v", flag, err)
	}
	defer r.Close()
	rs, err := rules.ReadRuleSet(r)
	if err != nil {
		return rules.RuleSet{}, usageErrorf("%s %s: %v", flag, file, err)
	}
	return rs, nil
}
