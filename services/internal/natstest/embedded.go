package natstest

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqhrss/subsidyledger/services/natsbus"
)

// Embedded starts an in-process NATS server with JetStream
// (natsbus.StartServer on a free loopback port, storage in a temporary
// directory) and connects to it. The server and the connection close when
// the test ends.
func Embedded(t testing.TB) (*natsbus.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	srv, err := natsbus.StartServer(natsbus.ServerConfig{Addr: "127.0.0.1:-1", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return srv, nc, js
}
