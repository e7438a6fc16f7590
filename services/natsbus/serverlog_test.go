package natsbus

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cqhrss/subsidyledger/services/internal/logbuf"
)

// TestServerLogNamesNoIDNumber: a publisher that sends on a subject naming a
// person where it may not publish: the embedded server's "Publish Violation"
// line reaches ledgerd's log with the number masked (found by review: whole).
func TestServerLogNamesNoIDNumber(t *testing.T) {
	const id = "50010119900101107X"
	var logs logbuf.Buffer
	srv, err := StartServer(ServerConfig{Addr: "127.0.0.1:-1", DataDir: t.TempDir(), Subjects: DefaultSubjects,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Users:  []User{{Name: "enrol", Password: "pw-enrol-0123456789", Role: "enrolment"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("enrol", "pw-enrol-0123456789"), nats.CustomInboxPrefix(InboxPrefix("enrol")))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.Publish("subsidy.pii."+id, []byte("x"))
	_ = nc.Flush()
	time.Sleep(200 * time.Millisecond)
	if s := logs.String(); strings.Contains(s, id) || !strings.Contains(s, "Publish Violation") || !strings.Contains(s, "5001**********107X") {
		t.Errorf("ledgerd's log: want the refused publish with the ID number masked, got:\n%s", s)
	}
}
