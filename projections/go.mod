module github.com/cqhrss/subsidyledger/projections

go 1.26.7
