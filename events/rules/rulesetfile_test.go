package rules_test

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
)

func TestRuleSetFileRoundTrip(t *testing.T) {
	rs := rules.DefaultRuleSet()
	var b bytes.Buffer
	if err := rs.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	got, err := rules.ReadRuleSet(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if got.Fingerprint() != rs.Fingerprint() {
		t.Errorf("fingerprint changed by a round trip:\n%s", b.String())
	}
	sorted := func(ds []refdata.Date) []refdata.Date {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return slices.Compact(ds)
	}
	rs.Holidays, rs.WorkingWeekends = sorted(rs.Holidays), sorted(rs.WorkingWeekends)
	if !reflect.DeepEqual(got, rs) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, rs)
	}
	for _, want := range []string{`"version": "2026.6"`, `"calendar_through": 2026`, `"2026-02-15"`, `"2026-10-10"`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("file lacks %s:\n%s", want, b.String())
		}
	}
}

// A changed file is what a deployment runs: here, the calendar extended
// by a year under a new version.
func TestRuleSetFileExtendsTheCalendar(t *testing.T) {
	var b bytes.Buffer
	if err := rules.DefaultRuleSet().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(b.String(), `"version": "2026.6"`, `"version": "2027.test"`, 1)
	s = strings.Replace(s, `"calendar_through": 2026`, `"calendar_through": 2027`, 1)
	s = strings.Replace(s, `"holidays": [`, `"holidays": ["2027-01-01", `, 1)
	rs, err := rules.ReadRuleSet(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	if rs.Version != "2027.test" || !rs.CalendarCovers(refdata.D(2027, 12, 31)) || rs.IsWorkingDay(refdata.D(2027, 1, 1)) {
		t.Errorf("read %+v", rs)
	}
	if s, e := rs.NoticeWindow(refdata.D(2026, 12, 30)); s.String() != "2026-12-30" || e.String() != "2027-01-06" {
		t.Errorf("notice from 30 Dec 2026: %s..%s; want 2026-12-30..2027-01-06", s, e)
	}
}

func TestRuleSetFileRefusals(t *testing.T) {
	var b bytes.Buffer
	if err := rules.DefaultRuleSet().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	good := b.String()
	for _, tt := range []struct {
		name, file, says string
	}{
		{"empty", ``, "EOF"},
		{"not JSON", `version: 1`, "invalid character"},
		{"a field missing", strings.Replace(good, `"yearly_cap": 1,`, ``, 1), "missing [yearly_cap]"},
		{"the calendar missing", `{"version": "x"}`, "holidays"},
		{"an unknown field", strings.Replace(good, `"yearly_cap": 1,`, `"yearly_cap": 1, "yearly_kap": 2,`, 1), "unknown field"},
		{"a wrong type", strings.Replace(good, `"yearly_cap": 1,`, `"yearly_cap": "1",`, 1), "yearly_cap"},
		{"a fraction", strings.Replace(good, `"yearly_cap": 1,`, `"yearly_cap": 1.5,`, 1), "yearly_cap"},
		{"a bad date", strings.Replace(good, `"2026-02-15"`, `"2026-02-30"`, 1), `"2026-02-30" is not a date`},
		{"a date in another form", strings.Replace(good, `"2026-02-15"`, `"15/02/2026"`, 1), `is not a date`},
		{"out of range", strings.Replace(good, `"notice_working_days": 5,`, `"notice_working_days": 0,`, 1), "NoticeWorkingDays"},
		{"a holiday past the calendar", strings.Replace(good, `"calendar_through": 2026,`, `"calendar_through": 2025,`, 1), "after CalendarThrough"},
		{"a working Monday", strings.Replace(good, `"2026-01-04"`, `"2026-01-05"`, 1), "is a Monday"},
		{"two objects", good + good, "more than one JSON object"},
		{"too large", good + strings.Repeat(" ", 1<<20), "larger than"},
	} {
		_, err := rules.ReadRuleSet(strings.NewReader(tt.file))
		if err == nil || !errors.Is(err, rules.ErrRuleSetFile) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: %v; want an ErrRuleSetFile saying %q", tt.name, err, tt.says)
		}
	}
}
