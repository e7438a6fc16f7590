package refdata_test

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events/refdata"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

func TestOccupationsAndLevels(t *testing.T) {
	if n := len(refdata.Occupations()); n != 10 {
		t.Errorf("%d occupations; want 10", n)
	}
	if n := len(refdata.Qualifications()); n != 30 {
		t.Errorf("%d qualifications; want 30", n)
	}
	seen := map[string]bool{}
	for _, o := range refdata.Occupations() {
		if o.NameZH == "" || o.NameEN == "" || seen[o.Slug] {
			t.Errorf("occupation %+v: missing name or repeated slug", o)
		}
		seen[o.Slug] = true
	}
	for v := range subsidyv1.Occupation_name {
		_, ok := refdata.OccupationOf(subsidyv1.Occupation(v))
		if ok != (v != 0) {
			t.Errorf("OccupationOf(%d) = %v", v, ok)
		}
	}
	if (refdata.Qualification{Occupation: subsidyv1.Occupation_OCCUPATION_BIG_DATA}).Valid() {
		t.Errorf("a qualification without level is valid")
	}
	q := refdata.Qualification{Occupation: subsidyv1.Occupation_OCCUPATION_BIG_DATA, Level: subsidyv1.Level_LEVEL_SENIOR}
	if got := q.String(); got != "big-data/senior" {
		t.Errorf("String() = %q", got)
	}
	if l, _ := refdata.LevelOf(subsidyv1.Level_LEVEL_JUNIOR); l.NameZH != "初级" {
		t.Errorf("junior is %q", l.NameZH)
	}
}

// TestDateValidMatchesTime: Valid agrees with time.Time's calendar for
// every month and day number 0..99 of the years around the programme and
// the leap-year edge cases.
func TestDateValidMatchesTime(t *testing.T) {
	years := []int{0, 1, 4, 100, 400, 1600, 1900, 2000, 2100, 9996, 9999, 10000}
	for y := 1990; y <= 2040; y++ {
		years = append(years, y)
	}
	for _, y := range years {
		for m := 0; m < 100; m++ {
			for day := 0; day < 100; day++ {
				d := refdata.Date(y*10000 + m*100 + day)
				tm := time.Date(y, time.Month(m), day, 0, 0, 0, 0, time.UTC)
				want := y >= 1 && y <= 9999 && tm.Year() == y && int(tm.Month()) == m && tm.Day() == day
				if got := d.Valid(); got != want {
					t.Fatalf("%08d: Valid() = %v; want %v", int(d), got, want)
				}
			}
		}
	}
}

func TestDate(t *testing.T) {
	d := refdata.D(2025, time.November, 6)
	if d.String() != "2025-11-06" || d.AddDays(-1).String() != "2025-11-05" || d.AddDays(56).String() != "2026-01-01" {
		t.Errorf("date arithmetic: %s %s %s", d, d.AddDays(-1), d.AddDays(56))
	}
	if d.Weekday() != time.Thursday {
		t.Errorf("2025-11-06 is a %s", d.Weekday())
	}
	for _, bad := range []refdata.Date{refdata.D(2025, 2, 29), refdata.D(2025, 13, 1), refdata.D(2025, 4, 31), 0, -1} {
		if bad.Valid() {
			t.Errorf("%d is valid", bad)
		}
	}
	if !refdata.D(2024, 2, 29).Valid() {
		t.Errorf("2024-02-29 is invalid")
	}
	if got, ok := refdata.FromProto(&subsidyv1.Date{Year: 2025, Month: 2, Day: 29}); ok {
		t.Errorf("FromProto(2025-02-29) = %s, ok", got)
	}
	if got, ok := refdata.FromProto(nil); !ok || got != 0 {
		t.Errorf("FromProto(nil) = %v, %v", got, ok)
	}
	if got, _ := refdata.FromProto(d.Proto()); got != d {
		t.Errorf("round trip: %s", got)
	}
	if p, err := refdata.ParseDate("2025-11-06"); err != nil || p != d {
		t.Errorf("ParseDate = %v, %v", p, err)
	}
}

func TestSeedTable(t *testing.T) {
	inForce := refdata.Seed().InForce(refdata.ReformDate)
	kinds := map[subsidyv1.UnitKind]int{}
	for _, u := range inForce {
		kinds[u.Kind]++
	}
	want := map[subsidyv1.UnitKind]int{
		subsidyv1.UnitKind_UNIT_KIND_DISTRICT:          25,
		subsidyv1.UnitKind_UNIT_KIND_COUNTY:            8,
		subsidyv1.UnitKind_UNIT_KIND_AUTONOMOUS_COUNTY: 4,
		subsidyv1.UnitKind_UNIT_KIND_FUNCTIONAL_ZONE:   2,
	}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("on %s: %d units of kind %s; want %d", refdata.ReformDate, kinds[k], k, n)
		}
	}
	before := refdata.Seed().InForce(refdata.ReformDate.AddDays(-1))
	if len(before) != 24+2+8+4+2 { // 24 districts, 江北 and 渝北, counties, zones
		t.Errorf("on the day before: %d units in force; want 40", len(before))
	}
	if n := len(refdata.Units()); n != 41 {
		t.Errorf("%d rows; want 41", n)
	}
}

func TestUnitAsOfAndRollUp(t *testing.T) {
	tests := []struct {
		code   string
		on     refdata.Date
		asOf   string // "" = error
		rollUp string
	}{
		{"cq-jiangbei", refdata.D(2025, 11, 5), "cq-jiangbei", "cq-jiangbei"},
		{"cq-jiangbei", refdata.D(2025, 11, 6), "", "cq-liangjiang"},
		{"cq-yubei", refdata.D(2026, 1, 1), "", "cq-liangjiang"},
		{"cq-liangjiang", refdata.D(2025, 11, 5), "", ""},
		{"cq-liangjiang", refdata.D(2025, 11, 6), "cq-liangjiang", "cq-liangjiang"},
		{"cq-gaoxin", refdata.D(2025, 1, 1), "cq-gaoxin", "cq-gaoxin"},
		{"cq-yuzhong", refdata.D(2019, 12, 31), "", ""},
		{"cq-nowhere", refdata.D(2025, 1, 1), "", ""},
	}
	for _, tt := range tests {
		u, err := refdata.UnitAsOf(tt.code, tt.on)
		if (err == nil) != (tt.asOf != "") || (err == nil && u.Code != tt.asOf) {
			t.Errorf("UnitAsOf(%s, %s) = %s, %v; want %q", tt.code, tt.on, u.Code, err, tt.asOf)
		}
		r, err := refdata.Seed().RollUp(tt.code, tt.on)
		if (err == nil) != (tt.rollUp != "") || (err == nil && r.Code != tt.rollUp) {
			t.Errorf("RollUp(%s, %s) = %s, %v; want %q", tt.code, tt.on, r.Code, err, tt.rollUp)
		}
	}
	if _, err := refdata.UnitAsOf("cq-nowhere", refdata.ReformDate); !errors.Is(err, refdata.ErrUnknownUnit) {
		t.Errorf("unknown unit: %v", err)
	}
	if _, err := refdata.UnitAsOf("cq-jiangbei", refdata.ReformDate); !errors.Is(err, refdata.ErrNotInForce) {
		t.Errorf("abolished unit: %v", err)
	}
	for _, c := range []string{"cq-jiangbei", "cq-yubei", "cq-liangjiang"} {
		if u, err := refdata.Current(c); err != nil || u.Code != "cq-liangjiang" {
			t.Errorf("Current(%s) = %s, %v", c, u.Code, err)
		}
	}
}

func TestTableWith(t *testing.T) {
	seed := refdata.Seed()
	// A new unit.
	nt, err := seed.With(refdata.Unit{Code: "cq-test", Name: "测试区", Kind: subsidyv1.UnitKind_UNIT_KIND_DISTRICT, ValidFrom: refdata.D(2027, 1, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := seed.Lookup("cq-test"); ok {
		t.Errorf("With changed the original table")
	}
	// Abolish it into 两江新区 by replacing its row.
	nt, err = nt.With(refdata.Unit{Code: "cq-test", Name: "测试区", Kind: subsidyv1.UnitKind_UNIT_KIND_DISTRICT, ValidFrom: refdata.D(2027, 1, 1), ValidTo: refdata.D(2027, 12, 31), Successor: "cq-liangjiang"})
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := nt.Current("cq-test"); u.Code != "cq-liangjiang" {
		t.Errorf("Current = %s", u.Code)
	}
	bad := []refdata.Unit{
		{Code: "cq-x", Name: "", Kind: subsidyv1.UnitKind_UNIT_KIND_DISTRICT, ValidFrom: refdata.D(2027, 1, 1)},
		{Code: "cq-x", Name: "x", Kind: 0, ValidFrom: refdata.D(2027, 1, 1)},
		{Code: "cq-x", Name: "x", Kind: subsidyv1.UnitKind_UNIT_KIND_DISTRICT, ValidFrom: refdata.D(2027, 1, 1), ValidTo: refdata.D(2026, 1, 1)},
		{Code: "cq-x", Name: "x", Kind: subsidyv1.UnitKind_UNIT_KIND_DISTRICT, ValidFrom: refdata.D(2027, 1, 1), ValidTo: refdata.D(2028, 1, 1), Successor: "cq-none"},
		{Code: "cq-x", Name: "x", Kind: subsidyv1.UnitKind_UNIT_KIND_DISTRICT, ValidFrom: refdata.D(2027, 1, 1), ValidTo: refdata.D(2028, 1, 1), Successor: "cq-x"},
		// A second open-ended version of 渝中区 overlapping the first.
		{Code: "cq-yuzhong", Name: "渝中区", Kind: subsidyv1.UnitKind_UNIT_KIND_DISTRICT, ValidFrom: refdata.D(2027, 1, 1)},
	}
	for _, u := range bad {
		if _, err := seed.With(u); !errors.Is(err, refdata.ErrBadUnit) {
			t.Errorf("With(%+v) = %v; want ErrBadUnit", u, err)
		}
	}
	// A cycle: 两江新区 abolished into a unit that rolls up to it.
	cyc, err := seed.With(refdata.Unit{Code: "cq-y", Name: "y", Kind: subsidyv1.UnitKind_UNIT_KIND_DISTRICT, ValidFrom: refdata.D(2027, 1, 1), ValidTo: refdata.D(2027, 6, 1), Successor: "cq-liangjiang"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cyc.With(refdata.Unit{Code: "cq-liangjiang", Name: "两江新区", Kind: subsidyv1.UnitKind_UNIT_KIND_DISTRICT, ValidFrom: refdata.ReformDate, ValidTo: refdata.D(2027, 1, 1), Successor: "cq-y"}); !errors.Is(err, refdata.ErrBadUnit) {
		t.Errorf("successor cycle accepted: %v", err)
	}
}

func TestNewTableRebuildsUnits(t *testing.T) {
	nt, err := refdata.Seed().With(refdata.Unit{Code: "cq-test", Name: "测试区", Kind: subsidyv1.UnitKind_UNIT_KIND_DISTRICT,
		ValidFrom: refdata.D(2027, 1, 1), ValidTo: refdata.D(2027, 12, 31), Successor: "cq-liangjiang"})
	if err != nil {
		t.Fatal(err)
	}
	rows := nt.Units()
	slices.Reverse(rows) // any order
	back, err := refdata.NewTable(rows)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, nt) {
		t.Errorf("NewTable(Units()) differs from the table")
	}
	if _, err := refdata.NewTable(append(rows, rows[0])); !errors.Is(err, refdata.ErrBadUnit) {
		t.Errorf("a repeated row: %v; want ErrBadUnit", err)
	}
	noSuccessor := slices.DeleteFunc(slices.Clone(rows), func(u refdata.Unit) bool { return u.Code == "cq-liangjiang" })
	if _, err := refdata.NewTable(noSuccessor); !errors.Is(err, refdata.ErrBadUnit) {
		t.Errorf("rows naming a successor that is not there: %v; want ErrBadUnit", err)
	}
}
