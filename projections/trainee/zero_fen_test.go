package trainee_test

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
	"github.com/cqhrss/subsidyledger/projections/internal/fold"
	"github.com/cqhrss/subsidyledger/projections/trainee"
	pb "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// TestZeroFenSettledIsPaid: a fee of 0 is valid (fund: TestZeroFenSettlement):
// the 0-fen order settles and the entitlement is paid, as the status says,
// not "payable", which invites another payment request (found by review).
func TestZeroFenSettledIsPaid(t *testing.T) {
	m, apply, k, id := entitled(t, 0)
	apply(
		&pb.NoticeOpened{EntitlementId: id, StartsOn: fold.Date("2025-07-01"), EndsOn: fold.Date("2025-07-07"), WorkingDays: 5},
		&pb.NoticeClosed{EntitlementId: id, ClosedOn: fold.Date("2025-07-08")},
		&pb.PaymentOrdered{PaymentOrderId: "po-1", EntitlementId: id, Attempt: 1, AmountFen: 0, NetFen: 0},
		&pb.PaymentSettled{PaymentOrderId: "po-1", EntitlementId: id, AmountFen: 0, SettledOn: fold.Date("2025-07-10")},
	)
	st, ok := m.Get(k)
	if !ok || len(st.Entitlements) != 1 {
		t.Fatalf("status: %v %+v", ok, st)
	}
	if s := st.Entitlements[0].State; s != trainee.StatePaid {
		t.Errorf("0-fen entitlement settled: state %q; want %q", s, trainee.StatePaid)
	}
}

// entitled returns a trainee model, its apply, and a trainee k of 渝中区
// entitled to fen for big data junior (entitlement id), paid to the trainee.
func entitled(t *testing.T, fen int64) (m *trainee.Model, apply func(...proto.Message), k, id string) {
	m = trainee.New()
	apply = (&fold.Log{T: t, P: m}).Apply
	k = fmt.Sprintf("%064x", 7)
	q := refdata.Qualification{Occupation: pb.Occupation_OCCUPATION_BIG_DATA, Level: pb.Level_LEVEL_JUNIOR}
	id = rules.EntitlementID(k, q)
	apply(
		&pb.TraineeRegistered{PersonKey: k, UnitCode: "cq-yuzhong", Education: pb.Education_EDUCATION_ASSOCIATE},
		&pb.SubsidyEntitled{EntitlementId: id, PersonKey: k, Qualification: q.Proto(), CertificateId: "c", AmountFen: fen,
			Payee: &pb.Payee{Kind: pb.PayeeKind_PAYEE_KIND_TRAINEE, PersonKey: k}, Year: 2025, UnitCode: "cq-yuzhong", AssessedOn: fold.Date("2025-06-01")},
	)
	return m, apply, k, id
}
