package simulate

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/services/natsbus"
)

// Msg encodes a fact as the NATS message a service publishes: protobuf (or
// canonical JSON when json is true) with its Nats-Msg-Id and Content-Type.
func Msg(inboundPrefix string, f Fact, json bool) (*nats.Msg, error) {
	m := nats.NewMsg(f.Subject(inboundPrefix))
	var err error
	if json {
		m.Data, err = protojson.Marshal(f.Msg)
		m.Header.Set(natsbus.HeaderContentType, natsbus.ContentJSON)
	} else {
		m.Data, err = proto.Marshal(f.Msg)
		m.Header.Set(natsbus.HeaderContentType, natsbus.ContentProtobuf)
	}
	if err != nil {
		return nil, fmt.Errorf("simulate: encode %s: %w", f.MsgID, err)
	}
	m.Header.Set(natsbus.HeaderMsgID, f.MsgID)
	return m, nil
}

// PublishLanes publishes facts with `workers` concurrent publishers, one
// JetStream publish (awaiting its ack) at a time each; the facts of one lane
// are published in order by one worker. It returns the first error.
func PublishLanes(ctx context.Context, js jetstream.JetStream, inboundPrefix string, lanes [][]Fact, workers int) error {
	return inParallel(ctx, lanes, workers, func(lane []Fact) error {
		for _, f := range lane {
			m, err := Msg(inboundPrefix, f, false)
			if err == nil {
				_, err = js.PublishMsg(ctx, m)
			}
			if err != nil {
				return fmt.Errorf("publish %s: %w", f.MsgID, err)
			}
		}
		return nil
	})
}

// inParallel calls do for each item from `workers` goroutines (at least
// one) and returns the first error, after which no new item is started.
func inParallel[T any](ctx context.Context, items []T, workers int, do func(T) error) error {
	workers = max(workers, 1)
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	next := make(chan T)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range next {
				if err := do(it); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for _, it := range items {
		select {
		case next <- it:
		case err = <-errc:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}

// PublishBatches publishes facts in order as JetStream atomic batches of
// size (at most 1000).
func PublishBatches(ctx context.Context, nc *nats.Conn, inboundPrefix string, all []Fact, size int, batchPrefix string) error {
	for i := 0; i < len(all); i += size {
		end := min(i+size, len(all))
		msgs := make([]*nats.Msg, 0, end-i)
		for _, f := range all[i:end] {
			m, err := Msg(inboundPrefix, f, false)
			if err != nil {
				return err
			}
			msgs = append(msgs, m)
		}
		if _, err := natsbus.PublishAtomic(ctx, nc, fmt.Sprintf("%s-%d", batchPrefix, i), msgs); err != nil {
			return err
		}
	}
	return nil
}
