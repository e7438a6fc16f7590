package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
)

// Atomic batch publish headers (JetStream ADR-50).
const (
	headerBatchID     = "Nats-Batch-Id"
	headerBatchSeq    = "Nats-Batch-Sequence"
	headerBatchCommit = "Nats-Batch-Commit"
)

// MaxAtomicBatch is the server's default limit on messages in one atomic batch.
const MaxAtomicBatch = 1000

// BatchAck is the server's acknowledgement of a committed atomic batch.
type BatchAck struct {
	Stream string `json:"stream"`
	// Sequence of the batch's last message in the stream.
	Sequence uint64 `json:"seq"`
	BatchID  string `json:"batch"`
	Count    int    `json:"count"`
}

// BatchError is the server's refusal of a batch.
type BatchError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("natsbus: atomic batch refused: %s (code %d/%d)", e.Description, e.Code, e.ErrCode)
}

// PublishAtomic publishes msgs to a stream that allows atomic publish as one
// batch: the stream stores all of them or none. It returns after the server
// acknowledged the commit, which (with sync always) is after fsync. The
// batch id must be unique per batch (at most 64 characters).
func PublishAtomic(ctx context.Context, nc *nats.Conn, batchID string, msgs []*nats.Msg) (BatchAck, error) {
	if len(msgs) == 0 {
		return BatchAck{}, errors.New("natsbus: empty batch")
	}
	if len(msgs) > MaxAtomicBatch {
		return BatchAck{}, fmt.Errorf("natsbus: batch of %d exceeds %d", len(msgs), MaxAtomicBatch)
	}
	for i, m := range msgs {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header.Set(headerBatchID, batchID)
		m.Header.Set(headerBatchSeq, strconv.Itoa(i+1))
		last := i == len(msgs)-1
		if last {
			m.Header.Set(headerBatchCommit, "1")
		}
		switch {
		case i == 0 || last:
			// The first message is a request so that a refusal (e.g. atomic
			// publish disabled) is seen at once; the last gets the ack.
			resp, err := nc.RequestMsgWithContext(ctx, m)
			if err != nil {
				return BatchAck{}, fmt.Errorf("natsbus: atomic batch %s message %d: %w", batchID, i+1, err)
			}
			if len(resp.Data) == 0 {
				if last {
					return BatchAck{}, fmt.Errorf("natsbus: atomic batch %s: empty commit reply", batchID)
				}
				continue
			}
			var r struct {
				BatchAck
				Error *BatchError `json:"error"`
			}
			if err := json.Unmarshal(resp.Data, &r); err != nil {
				return BatchAck{}, fmt.Errorf("natsbus: atomic batch %s: reply %q: %w", batchID, resp.Data, err)
			}
			if r.Error != nil {
				return BatchAck{}, r.Error
			}
			if last {
				return r.BatchAck, nil
			}
		default:
			if err := nc.PublishMsg(m); err != nil {
				return BatchAck{}, fmt.Errorf("natsbus: atomic batch %s message %d: %w", batchID, i+1, err)
			}
		}
	}
	return BatchAck{}, errors.New("natsbus: unreachable")
}
