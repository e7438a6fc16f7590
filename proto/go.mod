module github.com/cqhrss/subsidyledger/proto

go 1.26.7

require google.golang.org/protobuf v1.36.12

require github.com/planetscale/vtprotobuf v0.6.1-0.20240319094008-0393e58bdf10

tool (
	github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto
	google.golang.org/protobuf/cmd/protoc-gen-go
)
