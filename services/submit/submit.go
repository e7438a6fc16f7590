// Package submit hands an inbound fact to the ledger over NATS and waits
// for its outcome, as an internal service would: the fact is published to
// JetStream on its inbound subject (subsidy.in.<source>.<fact>) with a
// Nats-Msg-Id, and the ledger's IntakeOutcome for that message id is read
// from subsidy.outcome.<source>.<fact>. The HTTP API's maker/checker
// actions use it (api.Submitter).
package submit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events/facts"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/natsbus"
)

// ErrNotFact means the message is not an inbound fact of the given source.
var ErrNotFact = errors.New("submit: not an inbound fact of that source")

// NATS submits facts over a NATS connection. Create it with New.
type NATS struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	subj   natsbus.Subjects
	window time.Duration
}

// New returns a submitter publishing under subj. window is the inbound
// stream's duplicate window (natsbus.StreamOptions.DuplicateWindow): when
// JetStream reports a repeated message id, the first outcome was
// published within it, and is looked up in the outcome stream.
func New(nc *nats.Conn, js jetstream.JetStream, subj natsbus.Subjects, window time.Duration) *NATS {
	if window <= 0 {
		window = natsbus.DefaultStreamOptions.DuplicateWindow
	}
	return &NATS{nc: nc, js: js, subj: subj, window: window}
}

// Submit publishes fact as from source with msgID and returns the ledger's
// outcome for msgID: the outcome the ledger publishes for this message, or
// for a message id JetStream already had, the outcome of the first (found
// in the SUBSIDY_OUTCOMES stream, or awaited if the first is still being
// decided). Errors: ErrNotFact; a publishing error; ctx's error (wrapped)
// when no outcome arrived in time.
func (c *NATS) Submit(ctx context.Context, source, msgID string, fact proto.Message) (*subsidyv1.IntakeOutcome, error) {
	var kind facts.Kind
	for _, k := range facts.ByName(fact.ProtoReflect().Descriptor().FullName()) {
		if k.Source == source {
			kind = k
		}
	}
	if kind.IsZero() || msgID == "" {
		return nil, ErrNotFact
	}
	data, err := proto.Marshal(fact)
	if err != nil {
		return nil, fmt.Errorf("submit: encoding %s: %w", kind.Name, err)
	}
	subject := kind.Subject(c.subj.InboundPrefix())
	outcomes := c.subj.Outcome(subject)

	// Listen before publishing, so that the outcome cannot come first.
	found := make(chan *subsidyv1.IntakeOutcome, 2)
	offer := func(o *subsidyv1.IntakeOutcome) {
		select {
		case found <- o:
		default:
		}
	}
	sub, err := c.nc.Subscribe(outcomes, func(m *nats.Msg) {
		o := &subsidyv1.IntakeOutcome{}
		if proto.Unmarshal(m.Data, o) == nil && o.GetMessageId() == msgID {
			offer(o)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("submit: subscribing to %s: %w", outcomes, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := c.nc.FlushWithContext(ctx); err != nil {
		return nil, fmt.Errorf("submit: subscribing to %s: %w", outcomes, err)
	}

	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(natsbus.HeaderMsgID, msgID)
	m.Header.Set(natsbus.HeaderContentType, natsbus.ContentProtobuf)
	ack, err := c.js.PublishMsg(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("submit: publishing %s: %w", subject, err)
	}
	if ack.Duplicate {
		go func() {
			if o, err := c.lookup(ctx, outcomes, msgID); err == nil && o != nil {
				offer(o)
			}
		}()
	}
	select {
	case o := <-found:
		if ack.Duplicate {
			// The outcome is the first message's: this one repeated it.
			o.Duplicate = true
		}
		return o, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("submit: no outcome for %s yet: %w", msgID, ctx.Err())
	}
}

// lookup reads the outcome stream on subject from the start of the
// duplicate window for the outcome of msgID; nil if it is not there (yet).
func (c *NATS) lookup(ctx context.Context, subject, msgID string) (*subsidyv1.IntakeOutcome, error) {
	start := time.Now().Add(-c.window - time.Minute)
	cons, err := c.js.OrderedConsumer(ctx, natsbus.OutcomeStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start})
	if err != nil {
		return nil, fmt.Errorf("submit: reading %s: %w", natsbus.OutcomeStream, err)
	}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, fmt.Errorf("submit: reading %s: %w", natsbus.OutcomeStream, err)
		}
		n := 0
		var pending uint64
		for msg := range batch.Messages() {
			n++
			o := &subsidyv1.IntakeOutcome{}
			if proto.Unmarshal(msg.Data(), o) == nil && o.GetMessageId() == msgID {
				return o, nil
			}
			if md, err := msg.Metadata(); err == nil {
				pending = md.NumPending
			}
		}
		if n == 0 || pending == 0 {
			return nil, nil // read to the end
		}
	}
	return nil, ctx.Err()
}
