package submit

import (
	"context"
	"errors"
	"testing"

	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/natsbus"
)

// TestNotAFact: only catalogue facts, from their own source, with a
// message id, are submitted (the end-to-end path is in services/ledgerd's
// TestMakerChecker, against a real ledger).
func TestNotAFact(t *testing.T) {
	c := New(nil, nil, natsbus.DefaultSubjects, 0)
	ctx := context.Background()
	confirm := &subsidyv1.EntitlementConfirmed{EntitlementId: "e", OfficialId: "o"}
	if _, err := c.Submit(ctx, "bureau", "id-1", confirm); !errors.Is(err, ErrNotFact) {
		t.Errorf("a district fact as from the bureau: %v; want ErrNotFact", err)
	}
	if _, err := c.Submit(ctx, "district", "", confirm); !errors.Is(err, ErrNotFact) {
		t.Errorf("no message id: %v; want ErrNotFact", err)
	}
	if _, err := c.Submit(ctx, "district", "id-1", &subsidyv1.NoticeOpened{}); !errors.Is(err, ErrNotFact) {
		t.Errorf("a derived event: %v; want ErrNotFact", err)
	}
}
