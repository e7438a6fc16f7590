package ingest

import "github.com/prometheus/client_golang/prometheus"

// Metrics of the intake. Labels never carry personal data: source and fact
// name the subject's parts, reason is a ReasonCode name.
type Metrics struct {
	Received      *prometheus.CounterVec
	Accepted      *prometheus.CounterVec
	Rejected      *prometheus.CounterVec
	Duplicates    prometheus.Counter
	Rekeyed       prometheus.Counter
	AppendSeconds prometheus.Histogram
	BatchSize     prometheus.Histogram
	Conflicts     prometheus.Counter
	Retried       prometheus.Counter
	Position      prometheus.Gauge
	Healthy       prometheus.Gauge
	// StoreWritable is 0 while the intake has stopped because the store
	// cannot write; AppendFailures counts the appends the store refused
	// for that, by cause (see the Cause constants); Probes counts the
	// tests of whether it can write again, by result (ok, failed).
	StoreWritable  prometheus.Gauge
	AppendFailures *prometheus.CounterVec
	Probes         *prometheus.CounterVec
	// SnapshotPosition is the position of the last snapshot of the
	// intake's state written, SnapshotSeconds how long it took.
	SnapshotPosition prometheus.Gauge
	SnapshotSeconds  prometheus.Gauge
	// PullsLost counts the inbound consumer's pull requests that went
	// unanswered (no message, no heartbeat) and were made again.
	PullsLost prometheus.Counter
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
		Rekeyed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "subsidy_ledger_facts_rekeyed_total", Help: "Inbound messages whose Nats-Msg-Id was recorded for another message (other subject or payload): decided under the id with their content's digest appended.",
		}),
		AppendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "subsidy_ledger_append_duration_seconds", Help: "Time to append one intake batch durably to the store.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14),
		}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "subsidy_ledger_intake_batch_messages", Help: "Inbound messages handled per intake batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
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
		StoreWritable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "subsidy_ledger_store_writable", Help: "0 while the intake has stopped because the event store cannot write (disk full, read-only, I/O errors), else 1.",
		}),
		AppendFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "subsidy_ledger_store_append_failures_total", Help: "Appends the event store could not write, by cause: no_space, read_only, permission, io, other.",
		}, []string{"cause"}),
		Probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "subsidy_ledger_store_write_probes_total", Help: "Tests of whether the event store can write again, while the intake has stopped, by result (ok, failed).",
		}, []string{"result"}),
		SnapshotPosition: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "subsidy_ledger_intake_snapshot_position", Help: "Global log position of the last snapshot of the intake's state (the rules' world) written; a restart folds the events after it.",
		}),
		SnapshotSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "subsidy_ledger_intake_snapshot_write_seconds", Help: "Time the last snapshot of the intake's state took to write (the intake consumes nothing meanwhile).",
		}),
		PullsLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "subsidy_ledger_intake_pulls_lost_total", Help: "Pull requests of the inbound consumer that went unanswered (neither messages nor heartbeats) and were made again.",
		}),
	}
	m.StoreWritable.Set(1)
	for _, c := range causes {
		m.AppendFailures.WithLabelValues(c)
	}
	m.Probes.WithLabelValues("ok")
	m.Probes.WithLabelValues("failed")
	reg.MustRegister(m.PullsLost, m.Rekeyed)
	reg.MustRegister(m.Received, m.Accepted, m.Rejected, m.Duplicates, m.AppendSeconds, m.BatchSize, m.Conflicts, m.Retried, m.Position, m.Healthy,
		m.StoreWritable, m.AppendFailures, m.Probes, m.SnapshotPosition, m.SnapshotSeconds)
	return m
}
