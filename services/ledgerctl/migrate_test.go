package ledgerctl

import (
	"strings"
	"testing"

	"github.com/cqhrss/subsidyledger/events/esdb/esdbtest"
)

// TestMigrateToEventStoreDBStandIn copies the fixture store into the
// in-process EventStoreDB STAND-IN (not a real EventStoreDB): every hash
// link must come out identical and both logs verify; running it again
// resumes without copying anything twice.
func TestMigrateToEventStoreDBStandIn(t *testing.T) {
	standIn := esdbtest.NewStandIn()
	if err := standIn.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer standIn.Stop()
	path := copyStore(t)
	out, _, err := run(t, "", nil, "migrate", "--store", path, "--to", standIn.URL(), "--progress", "off")
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	if !strings.Contains(out, "verdict: OK") {
		t.Fatalf("migrate printed %q; want an OK verdict", out)
	}
	n := standIn.Events()
	if n == 0 {
		t.Fatal("nothing was copied")
	}
	out, _, err = run(t, "", nil, "migrate", "--store", path, "--to", standIn.URL(), "--progress", "off")
	if err != nil || !strings.Contains(out, "verdict: OK") || standIn.Events() != n {
		t.Fatalf("second migrate = %v, %q, %d events (was %d); want a no-op", err, out, standIn.Events(), n)
	}
	if _, _, err := run(t, "", nil, "migrate", "--store", path); exitCode(err) != 2 {
		t.Fatalf("migrate without --to = %v; want a usage error", err)
	}
}
