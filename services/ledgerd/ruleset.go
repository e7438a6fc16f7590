package ledgerd

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
)

// calendarLead: ledgerd warns when the rule set's holiday calendar does
// not reach the year of the day this far ahead. A five-working-day notice
// approved in late December ends in January, and the State Council
// publishes the next year's calendar in November or December.
const calendarLead = 45 * 24 * time.Hour

// calendarWarning says what is wrong with rs's holiday calendar as of now,
// or returns "".
func calendarWarning(rs rules.RuleSet, now time.Time) string {
	ahead := now.Add(calendarLead).In(shanghai)
	if rs.CalendarCovers(refdata.D(ahead.Year(), 1, 1)) {
		return ""
	}
	return fmt.Sprintf("the rule set's holiday calendar ends with %d: notice windows in %d count weekends only, so they end too early across a public holiday; add the State Council's %d calendar to a rule set file under a new version (ledgerctl rules > rules.json, edit, ledgerd --rule-set rules.json)",
		rs.CalendarThrough, rs.CalendarThrough+1, rs.CalendarThrough+1)
}

// shanghai is the programme's time zone (China Standard Time, UTC+8, no
// daylight saving), fixed so that no time zone database is needed.
var shanghai = time.FixedZone("CST", 8*3600)

// logRuleSet reports the rule set the intake decides under, and warns
// about its calendar when due.
func logRuleSet(log *slog.Logger, rs rules.RuleSet, now time.Time) {
	fp := rs.Fingerprint()
	log.Info("rule set", "version", rs.Version, "fingerprint", fp[:12], "calendar_through", rs.CalendarThrough)
	if w := calendarWarning(rs, now); w != "" {
		log.Warn(w)
	}
}

// ruleSetCollectors: the rule set's version (an info metric) and the last
// year of its holiday calendar, for an alert such as
// subsidy_ledger_rule_set_calendar_through_year < year(vector(time() + 45*86400)).
func ruleSetCollectors(rs rules.RuleSet) []prometheus.Collector {
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "subsidy_ledger_rule_set_info",
		Help:        "The rule set the intake decides under: 1, labelled with its version.",
		ConstLabels: prometheus.Labels{"version": rs.Version},
	})
	info.Set(1)
	through := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "subsidy_ledger_rule_set_calendar_through_year",
		Help: "The last year whose public holidays the rule set lists; notice windows after it count weekends only.",
	})
	through.Set(float64(rs.CalendarThrough))
	return []prometheus.Collector{info, through}
}
