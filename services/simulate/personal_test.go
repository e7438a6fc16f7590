package simulate_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events/person"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/natsbus"
	"github.com/cqhrss/subsidyledger/services/simulate"
)

func TestPersonalData(t *testing.T) {
	k, _ := person.NewKeyer([]byte("simulate test: a secret of 32 bytes or more"))
	p, err := simulate.New(simulate.Config{Seed: 3, Year: 2026, Trainees: 50, Keyer: k})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for i := range 50 {
		_, pr := p.Trainee(i)
		pd := p.PersonalData(pr)
		if pk, err := k.Key(pd.Msg.GetIdNumber()); err != nil || pk != pr.PersonKey || pd.Msg.GetName() != pr.Name {
			t.Fatalf("PersonalData(%d) = %v (key %s, %v); want the profile's ID number, name and person key %s", i, pd.Msg, pk, err, pr.PersonKey)
		}
		if pr.Advance != (pd.Msg.GetPayeeAccount() == "") || (pd.Msg.GetPayeeAccount() != "" && len(pd.Msg.GetPayeeAccount()) != 19) {
			t.Errorf("PersonalData(%d): payee account %q with advance %v; want a 19-digit account for direct payees only", i, pd.Msg.GetPayeeAccount(), pr.Advance)
		}
		if ids[pd.MsgID] {
			t.Errorf("PersonalData(%d): message id %s repeats", i, pd.MsgID)
		}
		ids[pd.MsgID] = true
		if again := p.PersonalData(pr); !proto.Equal(again.Msg, pd.Msg) {
			t.Errorf("PersonalData(%d) is not deterministic", i)
		}
		m, err := simulate.PersonalMsg(natsbus.DefaultSubjects, pd)
		var back subsidyv1.PersonalDataSubmitted
		if err != nil || m.Subject != "subsidy.pii.enrolment" || proto.Unmarshal(m.Data, &back) != nil || !proto.Equal(&back, pd.Msg) {
			t.Errorf("PersonalMsg(%d) = %v, %v", i, m, err)
		}
	}
}
