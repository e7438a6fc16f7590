module github.com/cqhrss/subsidyledger/proto

go 1.26.7

require google.golang.org/protobuf v1.36.12

tool google.golang.org/protobuf/cmd/protoc-gen-go
