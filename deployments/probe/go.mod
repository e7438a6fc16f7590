module github.com/cqhrss/subsidyledger/deployments/probe

go 1.26.7
