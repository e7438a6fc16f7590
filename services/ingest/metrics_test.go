package ingest

import (
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/services/natsbus"
)

// TestMetricsLint lints the intake's metrics, the store outage ones with
// every label value they take.
func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.Received.WithLabelValues("enrolment", "enrolled").Inc()
	m.Accepted.WithLabelValues("enrolment", "enrolled").Inc()
	m.Rejected.WithLabelValues("REASON_CODE_UNKNOWN_TRAINEE").Inc()
	m.AppendSeconds.Observe(0.01)
	m.BatchSize.Observe(10)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	var failures int
	for _, mf := range mfs {
		if mf.GetName() == "subsidy_ledger_store_append_failures_total" {
			failures = len(mf.GetMetric())
		}
	}
	if failures != len(causes) {
		t.Errorf("subsidy_ledger_store_append_failures_total has %d series; want one per cause (%d) from the start", failures, len(causes))
	}
}

// TestCauseOf classifies store failures by the operating system's error.
func TestCauseOf(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&fs.PathError{Op: "write", Path: "/d/ledger.db", Err: syscall.ENOSPC}, CauseNoSpace},
		{fmt.Errorf("append: %w", &events.Error{Code: events.CodeUnavailable, Err: &fs.PathError{Op: "write", Err: syscall.EROFS}}), CauseReadOnly},
		{&fs.PathError{Op: "write", Err: syscall.EPERM}, CausePermission},
		{&fs.PathError{Op: "open", Err: syscall.EACCES}, CausePermission},
		{&fs.PathError{Op: "fdatasync", Err: syscall.EIO}, CauseIO},
		{&events.Error{Code: events.CodeUnavailable, Detail: "connection lost"}, CauseOther},
	} {
		if got := causeOf(c.err); got != c.want {
			t.Errorf("causeOf(%v) = %q; want %q", c.err, got, c.want)
		}
	}
	e := fmt.Errorf("append to %q: %w", "trainee-abc", &events.Error{Code: events.CodeUnavailable, Op: "append", Stream: "trainee-abc", Detail: "commit failed"})
	if d := detailOf(e); strings.Contains(d, "trainee-abc") {
		t.Errorf("detailOf(%v) = %q; want no stream name", e, d)
	}
}

// TestMetricLabelsAreBounded: the received counter's labels are a fact's
// source and token, or "unknown": a publisher's made-up subject token (or
// an ID number in it) never becomes a label value.
func TestMetricLabelsAreBounded(t *testing.T) {
	in := &Intake{cfg: Config{Subjects: natsbus.DefaultSubjects}}
	for _, c := range []struct{ subject, source, fact string }{
		{"subsidy.in.enrolment.enrolled", "enrolment", "enrolled"},
		{"subsidy.in.evaluation.certificate_revoked", "evaluation", "certificate_revoked"},
		{"subsidy.in.enrolment.nonsense-7f3a", "enrolment", "unknown"},
		{"subsidy.in.enrolment.110105194912310021", "enrolment", "unknown"},
		{"subsidy.in.made-up.enrolled", "unknown", "unknown"},
		{"subsidy.in.x", "unknown", "unknown"},
	} {
		it := &item{subject: c.subject}
		rest, _ := strings.CutPrefix(c.subject, "subsidy.in.")
		it.source, it.fact, _ = strings.Cut(rest, ".")
		if s, f := in.labels(it); s != c.source || f != c.fact {
			t.Errorf("labels of %s = %s, %s; want %s, %s", c.subject, s, f, c.source, c.fact)
		}
	}
}
