package ingest

import "github.com/prometheus/client_golang/prometheus"

// Metrics of the intake. Labels never carry personal data: source and fact
// name the subject's parts, reason is a ReasonCode name.
type Metrics struct {
	Received      *prometheus.CounterVec
	Accepted      *prometheus.CounterVec
	Rejected      *prometheus.CounterVec
	Duplicates    prometheus.Counter
	AppendSeconds prometheus.Histogram
	BatchSize     prometheus.Histogram
	Conflicts     prometheus.Counter
	Retried       prometheus.Counter
	Position      prometheus.Gauge
	Healthy       prometheus.Gauge
}

// NewMetrics registers the intake's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "subsidy_ledger_facts_received_total", Help: "Inbound messages taken from the inbound stream, by source and fact.",
		}, []string{"source", "fact"}),
		Accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "subsidy_ledger_facts_accepted_total", Help: "Inbound facts recorded as events, by source and fact.",
		}, []string{"source", "fact"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "subsidy_ledger_facts_rejected_total", Help: "Inbound messages recorded as rejections, by reason code.",
		}, []string{"reason"}),
		Duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "subsidy_ledger_facts_duplicate_total", Help: "Inbound messages already recorded (redeliveries, repeated message ids); nothing new stored.",
		}),
		AppendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "subsidy_ledger_append_duration_seconds", Help: "Time to append one intake batch durably to the store.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14),
		}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "subsidy_ledger_intake_batch_messages", Help: "Inbound messages handled per intake batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		Conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "subsidy_ledger_append_conflicts_total", Help: "Intake batches not appended or not wholly appended because another writer appended since they were decided (found by the guard or by a wrong expected revision); their facts are decided again.",
		}),
		Retried: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "subsidy_ledger_facts_retried_total", Help: "Facts handed back to wait for what they refer to (not yet recorded) before being decided again.",
		}),
		Position: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "subsidy_ledger_intake_position", Help: "Global log position the intake's state has reached.",
		}),
		Healthy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "subsidy_ledger_intake_up", Help: "1 while the intake is consuming, 0 while it is stopped or failing to write.",
		}),
	}
	reg.MustRegister(m.Received, m.Accepted, m.Rejected, m.Duplicates, m.AppendSeconds, m.BatchSize, m.Conflicts, m.Retried, m.Position, m.Healthy)
	return m
}
