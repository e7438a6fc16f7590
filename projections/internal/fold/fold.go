// Package fold feeds payloads to a projection as the log would, for the
// read models' tests.
package fold

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/projections"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// Log applies payloads to P at the positions after Pos.
type Log struct {
	T   testing.TB
	P   projections.Projection
	Pos events.Position
	// After, if set, runs after each payload: a model's own check.
	After func() error
}

// Apply applies each payload as an event of its type at the next position;
// an error of Apply or After fails the test.
func (l *Log) Apply(msgs ...proto.Message) {
	l.T.Helper()
	for _, msg := range msgs {
		l.Pos++
		ev := &projections.Event{Position: l.Pos, Type: string(msg.ProtoReflect().Descriptor().FullName()), Payload: msg}
		if err := l.P.Apply(ev); err != nil {
			l.T.Fatalf("Apply(%s) = %v", ev.Type, err)
		}
		if l.After != nil {
			if err := l.After(); err != nil {
				l.T.Fatalf("after %s: %v", ev.Type, err)
			}
		}
	}
}

// Date is the day yyyy-mm-dd; it panics on anything else (a test's
// literal).
func Date(s string) *pb.Date {
	d, err := refdata.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d.Proto()
}
