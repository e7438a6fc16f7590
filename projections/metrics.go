package projections

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the runners' Prometheus metrics. Every series has one label,
// projection (the projection's Name); no personal data reaches a label.
//
//	subsidy_ledger_projection_position                  gauge      last applied position
//	subsidy_ledger_projection_lag_events                gauge      head - position
//	subsidy_ledger_projection_lag_seconds               gauge      age of the oldest unapplied event (0 when caught up)
//	subsidy_ledger_projection_stopped                   gauge      1 while stopped at a failing event
//	subsidy_ledger_projection_applied_events_total      counter    events applied by the live instance
//	subsidy_ledger_projection_failures_total            counter    events a projection failed on
//	subsidy_ledger_projection_rebuild_duration_seconds  histogram  rebuilds from Start, to the swap
//	subsidy_ledger_projection_snapshot_duration_seconds histogram  snapshots written
//	subsidy_ledger_projection_snapshot_size_bytes       gauge      size of the latest snapshot
type Metrics struct {
	applied   *prometheus.CounterVec
	failures  *prometheus.CounterVec
	rebuild   *prometheus.HistogramVec
	snapshot  *prometheus.HistogramVec
	snapBytes *prometheus.GaugeVec

	mu      sync.Mutex
	runners []*Runner
}

var (
	descPosition = prometheus.NewDesc("subsidy_ledger_projection_position",
		"Global log position of the last event the projection applied.", []string{"projection"}, nil)
	descLagEvents = prometheus.NewDesc("subsidy_ledger_projection_lag_events",
		"Events committed to the log that the projection has not applied yet.", []string{"projection"}, nil)
	descLagSeconds = prometheus.NewDesc("subsidy_ledger_projection_lag_seconds",
		"Seconds since the oldest event the projection has not applied yet was committed (0 when caught up).", []string{"projection"}, nil)
	descStopped = prometheus.NewDesc("subsidy_ledger_projection_stopped",
		"1 while the projection is stopped at an event it failed to apply, else 0.", []string{"projection"}, nil)
)

// NewMetrics registers the runners' metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "subsidy_ledger_projection_applied_events_total",
			Help: "Events the live instance of the projection applied since the process started.",
		}, []string{"projection"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "subsidy_ledger_projection_failures_total",
			Help: "Times the projection stopped at an event it could not apply.",
		}, []string{"projection"}),
		rebuild: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "subsidy_ledger_projection_rebuild_duration_seconds",
			Help:    "Duration of rebuilds from the start of the log, until the new instance was swapped in.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}, []string{"projection"}),
		snapshot: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "subsidy_ledger_projection_snapshot_duration_seconds",
			Help:    "Duration of writing a snapshot and its checkpoint.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"projection"}),
		snapBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "subsidy_ledger_projection_snapshot_size_bytes",
			Help: "Size of the projection's latest snapshot.",
		}, []string{"projection"}),
	}
	reg.MustRegister(m.applied, m.failures, m.rebuild, m.snapshot, m.snapBytes, (*runnerCollector)(m))
	return m
}

func (m *Metrics) track(r *Runner) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.runners = append(m.runners, r)
	m.mu.Unlock()
	// Make the per-projection series exist from the start.
	m.applied.WithLabelValues(r.name)
	m.failures.WithLabelValues(r.name)
}

// runnerCollector reports the gauges computed at scrape time.
type runnerCollector Metrics

func (c *runnerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPosition
	ch <- descLagEvents
	ch <- descLagSeconds
	ch <- descStopped
}

func (c *runnerCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	rs := append([]*Runner(nil), c.runners...)
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, r := range rs {
		st := r.Status(ctx)
		stopped := 0.0
		if st.Failure != nil {
			stopped = 1
		}
		ch <- prometheus.MustNewConstMetric(descPosition, prometheus.GaugeValue, float64(st.Position), r.name)
		ch <- prometheus.MustNewConstMetric(descLagEvents, prometheus.GaugeValue, float64(st.LagEvents), r.name)
		ch <- prometheus.MustNewConstMetric(descLagSeconds, prometheus.GaugeValue, st.LagSeconds, r.name)
		ch <- prometheus.MustNewConstMetric(descStopped, prometheus.GaugeValue, stopped, r.name)
	}
}
