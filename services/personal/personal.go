// Package personal is the intake of plain personal data: it consumes
// subsidy.v1.PersonalDataSubmitted from the stream SUBSIDY_PII
// (<prefix>.pii.<source>), validates the ID number, computes the person key
// with the configured HMAC key, stores the data in the encrypted vault
// (durably), and only then removes the message with JetStream's secure
// delete (which overwrites its bytes) and acknowledges it.
//
// Plain data never enters the log: a message that cannot be stored is
// recorded as a FactRejected with its subject, message id and reason code
// but without its payload or headers. Nothing is dropped silently; a vault
// that cannot write hands the message back to be tried again.
package personal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/person"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/natsbus"
	"github.com/cqhrss/subsidyledger/services/vault"
)

// Source is the envelope source of the rejections this intake records (the
// ledger itself, as for the fact intake's).
const Source = "ledger"

// Limits of the fields (bytes).
const (
	maxName    = 200
	maxAccount = 64
)

// Config configures the intake.
type Config struct {
	// Consumer is the durable consumer on SUBSIDY_PII
	// (natsbus.EnsurePIIStream); Stream the stream, for secure delete.
	Consumer jetstream.Consumer
	Stream   jetstream.Stream
	Keyer    *person.Keyer
	Vault    *vault.Vault
	// Store receives the rejections.
	Store    events.Store
	Subjects natsbus.Subjects
	Logger   *slog.Logger
	Metrics  *Metrics
	// RetryDelay is how long a message waits before it is tried again after
	// the vault or the store failed (default 1s).
	RetryDelay time.Duration
}

// Metrics of the intake; no label carries personal data.
type Metrics struct {
	Received *prometheus.CounterVec
}

// NewMetrics registers the intake's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{Received: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "subsidy_ledger_personal_data_received_total",
		Help: "Personal-data messages taken from SUBSIDY_PII, by outcome (stored, rejected, retried) and reason code (rejections).",
	}, []string{"outcome", "reason"})}
	reg.MustRegister(m.Received)
	return m
}

// Intake consumes SUBSIDY_PII into the vault.
type Intake struct{ cfg Config }

// New returns an intake.
func New(cfg Config) *Intake {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = time.Second
	}
	return &Intake{cfg: cfg}
}

// Run consumes until ctx ends, then returns nil; messages in hand are
// handed back unacknowledged. It returns an error only if the consumer
// cannot be read.
func (in *Intake) Run(ctx context.Context) error {
	it, err := in.cfg.Consumer.Messages(jetstream.PullMaxMessages(100))
	if err != nil {
		return fmt.Errorf("personal: consuming %s: %w", natsbus.PIIStream, err)
	}
	go func() { <-ctx.Done(); it.Stop() }()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			in.cfg.Logger.Warn("reading the personal-data stream", "err", err)
			select { // no hot loop on a lasting error
			case <-ctx.Done():
				return nil
			case <-time.After(in.cfg.RetryDelay):
			}
			continue
		}
		in.Handle(ctx, msg)
	}
}

// rejection is why a message cannot be stored.
type rejection struct {
	code   subsidyv1.ReasonCode
	detail string
}

// Handle stores or rejects one message, then securely deletes and
// acknowledges it; on a failure to write it naks the message for a retry.
func (in *Intake) Handle(ctx context.Context, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		in.cfg.Logger.Error("personal-data message without JetStream metadata", "err", err)
		_ = msg.Term()
		return
	}
	// A key that holds an ID number is masked before it is logged or
	// recorded (person.RedactIDs).
	key := person.RedactIDString(msg.Headers().Get(natsbus.HeaderMsgID))
	if key == "" {
		key = "pii-seq-" + strconv.FormatUint(md.Sequence.Stream, 10)
	}
	log := in.cfg.Logger.With("message_id", key, "seq", md.Sequence.Stream)
	pk, rec, rej := in.decode(msg, md.Timestamp)
	outcome, reason := "stored", ""
	if rej == nil {
		if err := in.cfg.Vault.Put(pk, rec); err != nil {
			in.retry(ctx, msg, log, "storing personal data in the vault", err)
			return
		}
		log.Info("personal data stored", "person_key", pk)
	} else {
		if err := in.reject(ctx, msg, key, md, *rej); err != nil {
			in.retry(ctx, msg, log, "recording the rejection", err)
			return
		}
		outcome, reason = "rejected", rej.code.String()
		log.Warn("personal data rejected", "reason", rej.code.String(), "detail", rej.detail)
	}
	// The data is safe (or the rejection recorded): overwrite the message
	// in the stream before acknowledging it.
	if err := in.cfg.Stream.SecureDeleteMsg(ctx, md.Sequence.Stream); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		in.retry(ctx, msg, log, "securely deleting the message", err)
		return
	}
	_ = msg.Ack()
	if m := in.cfg.Metrics; m != nil {
		m.Received.WithLabelValues(outcome, reason).Inc()
	}
}

// retry hands msg back to be tried again after a failure: an error, or
// only a note when ctx ended (ledgerd stopping cuts the call short).
func (in *Intake) retry(ctx context.Context, msg jetstream.Msg, log *slog.Logger, what string, err error) {
	if ctx.Err() != nil {
		log.Info(what+" interrupted by the stop; the message will be tried again", "err", err)
	} else {
		log.Error(what+" failed; the message will be tried again", "err", err)
	}
	if m := in.cfg.Metrics; m != nil {
		m.Received.WithLabelValues("retried", "").Inc()
	}
	_ = msg.NakWithDelay(in.cfg.RetryDelay)
}

// decode checks a message and returns the person key and record, or why
// not. Details never quote the payload.
func (in *Intake) decode(msg jetstream.Msg, received time.Time) (string, vault.Record, *rejection) {
	var rec vault.Record
	source, ok := strings.CutPrefix(msg.Subject(), in.cfg.Subjects.Prefix+".pii.")
	if !ok || source == "" || strings.Contains(source, ".") {
		return "", rec, &rejection{subsidyv1.ReasonCode_REASON_CODE_UNKNOWN_SUBJECT, "not a personal-data subject"}
	}
	if len(msg.Data()) > 64<<10 {
		return "", rec, &rejection{subsidyv1.ReasonCode_REASON_CODE_OVERSIZED, "larger than 64 KiB"}
	}
	var m subsidyv1.PersonalDataSubmitted
	switch ct := msg.Headers().Get(natsbus.HeaderContentType); ct {
	case "", natsbus.ContentProtobuf:
		if proto.Unmarshal(msg.Data(), &m) != nil {
			return "", rec, &rejection{subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE, "not a subsidy.v1.PersonalDataSubmitted in protobuf"}
		}
	case natsbus.ContentJSON:
		// protojson's errors quote the input: never pass them on.
		if protojson.Unmarshal(msg.Data(), &m) != nil {
			return "", rec, &rejection{subsidyv1.ReasonCode_REASON_CODE_UNDECODABLE, "not a subsidy.v1.PersonalDataSubmitted in canonical JSON"}
		}
	default:
		return "", rec, &rejection{subsidyv1.ReasonCode_REASON_CODE_UNSUPPORTED_CONTENT_TYPE, "want application/protobuf or application/json"}
	}
	pk, err := in.cfg.Keyer.Key(m.GetIdNumber())
	if err != nil {
		var ie *person.IDError
		detail := "invalid ID number"
		if errors.As(err, &ie) {
			detail = "id_number: " + string(ie.Problem) // never the number
		}
		return "", rec, &rejection{subsidyv1.ReasonCode_REASON_CODE_INVALID_PERSON_ID, detail}
	}
	name := strings.TrimSpace(m.GetName())
	switch {
	case name == "":
		return "", rec, &rejection{subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION, "name: required"}
	case len(name) > maxName || !utf8.ValidString(name):
		return "", rec, &rejection{subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION, "name: not valid UTF-8 of at most 200 bytes"}
	case len(m.GetPayeeAccount()) > maxAccount || !utf8.ValidString(m.GetPayeeAccount()):
		return "", rec, &rejection{subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION, "payee_account: not valid UTF-8 of at most 64 bytes"}
	}
	id, _ := person.Normalize(m.GetIdNumber())
	rec = vault.Record{IDNumber: id, Name: name, PayeeAccount: strings.TrimSpace(m.GetPayeeAccount()), SubmittedAt: received.UTC()}
	if m.GetSubmittedAt() != nil && m.GetSubmittedAt().IsValid() {
		rec.SubmittedAt = m.GetSubmittedAt().AsTime().UTC()
	}
	return pk, rec, nil
}

// reject appends a FactRejected without the payload to
// rejection-<source>. Its id and body depend only on the message, so a
// redelivery stores nothing new.
func (in *Intake) reject(ctx context.Context, msg jetstream.Msg, key string, md *jetstream.MsgMetadata, r rejection) error {
	// The stream is named from the subject masked, as the fact intake
	// names it: a token holding an ID number would name it in the log.
	subject := person.RedactIDString(msg.Subject())
	source := "unknown"
	if s, ok := strings.CutPrefix(subject, in.cfg.Subjects.Prefix+".pii."); ok && s != "" && !strings.Contains(s, ".") {
		source = s
	}
	at := timestamppb.New(md.Timestamp.UTC())
	rej := &subsidyv1.FactRejected{
		Subject:     subject,
		Reason:      r.code,
		Detail:      person.RedactIDString(r.detail),
		MessageId:   key,
		ReceivedAt:  at,
		ContentType: person.RedactIDString(msg.Headers().Get(natsbus.HeaderContentType)),
	}
	env := &subsidyv1.Envelope{RecordedAt: at, OccurredAt: at, Source: Source, CorrelationId: key, MessageId: key}
	stream := natsbus.RejectionStream(source)
	data, err := codec.Encode(MessageID(key), stream, env, rej)
	if err != nil {
		return err
	}
	_, err = in.cfg.Store.Append(ctx, stream, events.Any, data)
	return err
}

// MessageID is the event id of the rejection of a personal-data message
// (apart from the fact intake's ids: the same publisher id may be used on
// both subjects).
func MessageID(key string) events.ID { return events.DeriveID("pii-message", key) }
