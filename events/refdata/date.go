package refdata

import (
	"fmt"
	"time"

	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// Date is a civil date (China Standard Time, no time of day) encoded as the
// decimal number yyyymmdd, so that dates compare with < and == and read well
// in a debugger. The zero Date is "unset". Build one with D, FromProto or
// ParseDate; arithmetic goes through time.Time at UTC midnight, so it never
// depends on the machine's zone.
type Date int32

// D returns the date y-m-d. It does not check validity; see Valid.
func D(y int, m time.Month, d int) Date { return Date(y*10000 + int(m)*100 + d) }

// Year, Month and Day return the parts of the date.
func (d Date) Year() int         { return int(d) / 10000 }
func (d Date) Month() time.Month { return time.Month(int(d) / 100 % 100) }
func (d Date) Day() int          { return int(d) % 100 }

// IsZero reports whether the date is unset.
func (d Date) IsZero() bool { return d == 0 }

// Valid reports whether d is a real calendar date in years 1..9999
// (proleptic Gregorian, as time.Time). Every fact's dates pass through it,
// so it is arithmetic, not a round trip through formatting.
func (d Date) Valid() bool {
	y, m, day := d.Year(), d.Month(), d.Day()
	if d <= 0 || y < 1 || y > 9999 || m < time.January || m > time.December || day < 1 {
		return false
	}
	return day <= daysIn(y, m)
}

// daysIn returns the number of days of month m of year y.
func daysIn(y int, m time.Month) int {
	switch m {
	case time.February:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

func (d Date) time() time.Time { return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC) }

func fromTime(t time.Time) Date { return D(t.Year(), t.Month(), t.Day()) }

// AddDays returns the date n days after d (before, for negative n).
func (d Date) AddDays(n int) Date { return fromTime(d.time().AddDate(0, 0, n)) }

// Weekday returns the day of the week of d.
func (d Date) Weekday() time.Weekday { return d.time().Weekday() }

// String returns the date as yyyy-mm-dd ("unset" for the zero Date).
func (d Date) String() string {
	if d == 0 {
		return "unset"
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year(), int(d.Month()), d.Day())
}

// Proto returns the date as a subsidy.v1.Date (nil for the zero Date).
func (d Date) Proto() *subsidyv1.Date {
	if d == 0 {
		return nil
	}
	return &subsidyv1.Date{Year: int32(d.Year()), Month: int32(d.Month()), Day: int32(d.Day())}
}

// FromProto converts a subsidy.v1.Date. A nil or all-zero message is the zero
// Date with ok true (unset); a message that is not a valid calendar date
// gives ok false.
func FromProto(p *subsidyv1.Date) (d Date, ok bool) {
	if p == nil || (p.Year == 0 && p.Month == 0 && p.Day == 0) {
		return 0, true
	}
	if p.Year < 1 || p.Year > 9999 || p.Month < 1 || p.Month > 12 || p.Day < 1 || p.Day > 31 {
		return 0, false
	}
	d = D(int(p.Year), time.Month(p.Month), int(p.Day))
	return d, d.Valid()
}

// ParseDate parses yyyy-mm-dd.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, fmt.Errorf("refdata: bad date %q: want yyyy-mm-dd", s)
	}
	return fromTime(t), nil
}
