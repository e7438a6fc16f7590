module github.com/cqhrss/subsidyledger/events

go 1.26.7

require github.com/cqhrss/subsidyledger/proto v0.0.0

require golang.org/x/mod v0.33.0

require (
	go.etcd.io/bbolt v1.5.0
	golang.org/x/sys v0.45.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace github.com/cqhrss/subsidyledger/proto => ../proto
