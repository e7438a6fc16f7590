package validate

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

var promql = parser.NewParser(parser.Options{})

// SeriesNames parses a PromQL expression and returns the series names its
// selectors refer to, sorted. A selector without a fixed name (only
// {__name__=~"..."} or only labels) is an error: nothing could check it.
func SeriesNames(expr string) ([]string, error) {
	e, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool)
	var errs []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if name == "" {
			for _, m := range vs.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
		}
		if name == "" {
			errs = append(errs, fmt.Sprintf("selector %s has no metric name", vs))
			return nil
		}
		set[name] = true
		return nil
	})
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

var (
	grafanaDurations = regexp.MustCompile(`\$\{?__(rate_interval|interval|range)\}?`)
	grafanaNumbers   = regexp.MustCompile(`\$\{?__(range_s|range_ms|interval_ms)\}?`)
	grafanaVars      = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*(:[A-Za-z]+)?\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[A-Za-z_][A-Za-z0-9_]*(:[A-Za-z]+)?\]\]`)
	labelValues      = regexp.MustCompile(`^\s*label_values\((.*)\)\s*$`)
	queryResult      = regexp.MustCompile(`^\s*query_result\((.*)\)\s*$`)
)

// GrafanaExpr turns a Grafana Prometheus query into plain PromQL: the global
// variables ($__rate_interval, $__range, ...) become fixed durations and
// numbers, and dashboard variables ($instance, ${instance}, [[instance]])
// become a placeholder value, so that the expression parses. Dashboard
// variables are expected inside label matcher values.
func GrafanaExpr(expr string) string {
	expr = grafanaDurations.ReplaceAllString(expr, "5m")
	expr = grafanaNumbers.ReplaceAllString(expr, "300")
	return grafanaVars.ReplaceAllString(expr, "x")
}

// VariableQueryExpr returns the PromQL inside a Grafana Prometheus variable
// query: label_values(EXPR, label), query_result(EXPR), or "" for
// label_values(label), which names no metric.
func VariableQueryExpr(q string) (string, error) {
	if m := labelValues.FindStringSubmatch(q); m != nil {
		args := m[1]
		i := strings.LastIndex(args, ",")
		if i < 0 {
			return "", nil
		}
		return GrafanaExpr(strings.TrimSpace(args[:i])), nil
	}
	if m := queryResult.FindStringSubmatch(q); m != nil {
		return GrafanaExpr(m[1]), nil
	}
	return "", fmt.Errorf("variable query %q: want label_values(...) or query_result(...)", q)
}
