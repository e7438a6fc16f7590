package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"
	"time"
)

// A suite measures one area and returns its rows. Add a suite to suites
// (suites.go) to add rows to the table.
type suite struct {
	name string
	run  func(ctx context.Context, cfg *config) ([]row, error)
}

// A row is one figure beside the baseline it is judged against.
type row struct {
	name     string
	figure   float64
	unit     string
	baseline string // what the baseline is; "" for none
	base     float64
	goal     goal
}

// A goal is what the issue asks of a figure.
type goal struct {
	text string
	met  func(row) bool // nil: no goal
}

// atLeast is a goal on the figure itself.
func atLeast(min float64, unit string) goal {
	return goal{
		text: "≥ " + group(min) + " " + unit,
		met:  func(r row) bool { return r.figure >= min },
	}
}

// timesBaseline is a goal on the ratio to the baseline.
func timesBaseline(k float64) goal {
	return goal{
		text: "≥ " + strconv.FormatFloat(k, 'f', -1, 64) + "× baseline",
		met:  func(r row) bool { return r.base > 0 && r.figure >= k*r.base },
	}
}

func (r row) ratio() string {
	if r.base == 0 || r.baseline == "" {
		return "—"
	}
	return strconv.FormatFloat(r.figure/r.base, 'f', 2, 64) + "×"
}

func (r row) metText() string {
	switch {
	case r.goal.met == nil:
		return "—"
	case r.goal.met(r):
		return "yes"
	default:
		return "NO"
	}
}

func printTable(w io.Writer, rows []row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tfigure\tunit\tbaseline\tbaseline figure\tratio\tgoal\tmet?")
	for _, r := range rows {
		base, baseFig, goalText := r.baseline, group(r.base), r.goal.text
		if base == "" {
			base, baseFig = "—", "—"
		}
		if goalText == "" {
			goalText = "—"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.name, group(r.figure), r.unit, base, baseFig, r.ratio(), goalText, r.metText())
	}
	return tw.Flush()
}

// group formats a rate with thousands separators, rounded to an integer.
func group(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Sprint(f)
	}
	s := strconv.FormatInt(int64(math.Round(f)), 10)
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// rate returns n per second over d.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return math.Inf(1)
	}
	return float64(n) / d.Seconds()
}

// best runs measure rounds times and returns its best (highest) rate.
func best(ctx context.Context, rounds int, measure func() (float64, error)) (float64, error) {
	var top float64
	for range rounds {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		r, err := measure()
		if err != nil {
			return 0, err
		}
		top = max(top, r)
	}
	return top, nil
}
