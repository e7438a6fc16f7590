package ledgerctl

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progressBar draws a one-line progress bar on a terminal, at most every
// 100 ms.
type progressBar struct {
	w       io.Writer
	label   string
	start   time.Time
	last    time.Time
	drawn   bool
	enabled bool
}

// newProgress returns a bar on w: mode "on", "off" or "auto" (on when w is
// a terminal).
func newProgress(w io.Writer, mode, label string) (*progressBar, error) {
	p := &progressBar{w: w, label: label, start: time.Now()}
	switch mode {
	case "on":
		p.enabled = true
	case "off":
	case "auto", "":
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				p.enabled = true
			}
		}
	default:
		return nil, usageErrorf("--progress %q: want auto, on or off", mode)
	}
	return p, nil
}

// update draws done of total (total 0: unknown) with a rate of n items.
func (p *progressBar) update(done, total uint64, n int64, unit string) {
	if !p.enabled {
		return
	}
	now := time.Now()
	if p.drawn && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last, p.drawn = now, true
	const width = 30
	frac := 0.0
	if total > 0 {
		frac = min(1, float64(done)/float64(total))
	}
	fill := int(frac * width)
	rate := float64(n) / max(now.Sub(p.start).Seconds(), 1e-9)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%%  %s %s  %s %s/s ", p.label, strings.Repeat("#", fill), strings.Repeat(".", width-fill),
		frac*100, group(uint64(n)), unit, group(uint64(rate)), unit)
}

// on reports whether the bar draws.
func (p *progressBar) on() bool { return p.enabled }

// done ends the bar's line.
func (p *progressBar) done() {
	if p.enabled && p.drawn {
		fmt.Fprintln(p.w)
	}
}

// group writes n with thousands separators.
func group(n uint64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
