module github.com/cqhrss/subsidyledger/services

go 1.26.7
