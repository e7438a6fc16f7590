// Package readmodels lists the ledger's read models, so that a service
// builds its projection Set (and a benchmark its rebuild) from one place.
package readmodels

import (
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/anomaly"
	"github.com/cqhrss/subsidyledger/projections/fund"
	"github.com/cqhrss/subsidyledger/projections/notice"
	"github.com/cqhrss/subsidyledger/projections/quota"
	"github.com/cqhrss/subsidyledger/projections/scorecard"
	"github.com/cqhrss/subsidyledger/projections/trainee"
)

// Factories returns the factories of every read model, in a fixed order:
// trainee, quota, scorecard, fund, notice, anomaly.
func Factories() []projections.Factory {
	return []projections.Factory{trainee.Factory, quota.Factory, scorecard.Factory, fund.Factory, notice.Factory, anomaly.Factory}
}

// Fresh returns a fresh instance of every read model, in Factories order.
func Fresh() []projections.Projection {
	fs := Factories()
	out := make([]projections.Projection, len(fs))
	for i, f := range fs {
		out[i] = f()
	}
	return out
}
