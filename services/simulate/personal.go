package simulate

import (
	"context"
	"fmt"
	"hash/fnv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/natsbus"
)

// Personal is the plain personal data the simulated enrolment system sends
// the ledger's vault for one registered trainee, on <prefix>.pii.enrolment
// (never on the inbound fact subjects).
type Personal struct {
	MsgID string
	Msg   *subsidyv1.PersonalDataSubmitted
}

// PersonalData returns the personal data of the trainee a profile
// describes: its ID number and name, and for trainees paid directly (no
// advance through their institution) a fictitious bank account.
func (p *Programme) PersonalData(pr Profile) Personal {
	m := &subsidyv1.PersonalDataSubmitted{IdNumber: pr.IDNumber, Name: pr.Name}
	if !pr.Advance {
		h := fnv.New64a()
		fmt.Fprintf(h, "%d/%d", p.cfg.Seed, pr.Index)
		m.PayeeAccount = fmt.Sprintf("6217%015d", h.Sum64()%1_000_000_000_000_000)
	}
	return Personal{MsgID: fmt.Sprintf("s%d-t%d-pii", p.cfg.Seed, pr.Index), Msg: m}
}

// PersonalMsg encodes personal data as the NATS message the enrolment
// system publishes (protobuf, with its Nats-Msg-Id).
func PersonalMsg(subj natsbus.Subjects, pd Personal) (*nats.Msg, error) {
	m := nats.NewMsg(subj.PII("enrolment"))
	b, err := proto.Marshal(pd.Msg)
	if err != nil {
		return nil, fmt.Errorf("simulate: encode %s: %w", pd.MsgID, err)
	}
	m.Data = b
	m.Header.Set(natsbus.HeaderContentType, natsbus.ContentProtobuf)
	m.Header.Set(natsbus.HeaderMsgID, pd.MsgID)
	return m, nil
}

// PublishPersonal publishes personal data with `workers` concurrent
// publishers, each awaiting JetStream's ack. It returns the first error.
func PublishPersonal(ctx context.Context, js jetstream.JetStream, subj natsbus.Subjects, all []Personal, workers int) error {
	return inParallel(ctx, all, workers, func(pd Personal) error {
		m, err := PersonalMsg(subj, pd)
		if err == nil {
			_, err = js.PublishMsg(ctx, m)
		}
		if err != nil {
			return fmt.Errorf("publish %s: %w", pd.MsgID, err)
		}
		return nil
	})
}
