package validate

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
)

// MetricName is the form of the names ledgerd gives its metrics.
var MetricName = regexp.MustCompile(`^subsidy_ledger_[a-z_]+$`)

// Kind says which series a metric name stands for.
type Kind int

const (
	// Plain: a counter or gauge, one series name.
	Plain Kind = iota
	// Histogram: NAME_bucket, NAME_sum, NAME_count (and NAME for native histograms).
	Histogram
	// Summary: NAME, NAME_sum, NAME_count.
	Summary
)

// Metrics maps a metric name to its kind.
type Metrics map[string]Kind

// Series reports whether a series name (as a query names it) belongs to one
// of the metrics.
func (m Metrics) Series(name string) bool {
	if _, ok := m[name]; ok {
		return true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suf)
		if !ok {
			continue
		}
		switch m[base] {
		case Histogram:
			return true
		case Summary:
			if suf != "_bucket" {
				return true
			}
		}
	}
	return false
}

// Names returns the metric names, sorted.
func (m Metrics) Names() []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ScanExported reads the non-test Go files under dirs and returns the metric
// names they register: every subsidy_ledger_* string literal that is the
// Name: of a prometheus.*Opts literal or the first argument of NewDesc, and
// the kind the Opts type gives it (a NewDesc metric counts as Plain).
// Comments and other strings do not count, so a name that is only mentioned
// is not taken for an exported one.
func ScanExported(dirs ...string) (Metrics, error) {
	out := make(Metrics)
	fset := token.NewFileSet()
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if n := d.Name(); n == "testdata" || n == "vendor" || strings.HasPrefix(n, ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			scanFile(f, out)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("scanning %s for metric names: %w", dir, err)
		}
	}
	return out, nil
}

func scanFile(f *ast.File, out Metrics) {
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CompositeLit:
			kind := Plain
			switch typeName(n.Type) {
			case "HistogramOpts", "NativeHistogramOpts":
				kind = Histogram
			case "SummaryOpts":
				kind = Summary
			case "CounterOpts", "GaugeOpts", "Opts", "UntypedOpts":
			default:
				return true
			}
			for _, e := range n.Elts {
				kv, ok := e.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Name" {
					if s, ok := stringLit(kv.Value); ok && MetricName.MatchString(s) {
						out[s] = kind
					}
				}
			}
		case *ast.CallExpr:
			if typeName(n.Fun) == "NewDesc" && len(n.Args) > 0 {
				if s, ok := stringLit(n.Args[0]); ok && MetricName.MatchString(s) {
					if _, seen := out[s]; !seen {
						out[s] = Plain
					}
				}
			}
		}
		return true
	})
}

func typeName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return e.Sel.Name
	}
	return ""
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// Standard returns the metrics of the collectors every ledgerd registers
// besides its own: the Go runtime and process collectors, and promhttp's
// handler errors (HandlerOpts.Registry is set). They are gathered from the
// same client_golang version ledgerd uses (TestClientGolangVersion keeps the
// two in step), on this machine (the process collector needs Linux /proc, as
// ledgerd's image has).
func Standard() (Metrics, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mfs, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	out := Metrics{"promhttp_metric_handler_errors_total": Plain}
	for _, mf := range mfs {
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			out[mf.GetName()] = Histogram
		case dto.MetricType_SUMMARY:
			out[mf.GetName()] = Summary
		default:
			out[mf.GetName()] = Plain
		}
	}
	return out, nil
}

// Scrape is what Prometheus itself adds to every target of a scrape job:
// `up` (is ledgerd reachable at all, which no metric of ledgerd's own can
// say) and the scrape_* series.
var Scrape = Metrics{
	"up":                                    Plain,
	"scrape_duration_seconds":               Plain,
	"scrape_samples_scraped":                Plain,
	"scrape_samples_post_metric_relabeling": Plain,
	"scrape_series_added":                   Plain,
}

// Union merges metric sets.
func Union(ms ...Metrics) Metrics {
	out := make(Metrics)
	for _, m := range ms {
		for n, k := range m {
			out[n] = k
		}
	}
	return out
}
