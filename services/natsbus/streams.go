package natsbus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream and consumer names.
const (
	InboundStream  = "SUBSIDY_IN"
	OutcomeStream  = "SUBSIDY_OUTCOMES"
	FeedStream     = "SUBSIDY_FEED"
	LedgerConsumer = "ledger"
	// PIIStream holds plain personal data on its way to the vault; not part
	// of the log. PIIConsumer is ledgerd's durable consumer on it.
	PIIStream   = "SUBSIDY_PII"
	PIIConsumer = "vault"
	// LedgerPriorityGroup is the inbound consumer's only priority group,
	// with the pinned-client policy: however many ledger instances pull
	// from the consumer, JetStream delivers to one of them (the pinned one)
	// until it has sent no pull request for PinnedTTL, so one instance
	// decides at a time, in the inbound stream's order, and another takes
	// over when it stops or dies. Pull with
	// jetstream.PullPriorityGroup(LedgerPriorityGroup) (or
	// FetchPriorityGroup).
	LedgerPriorityGroup = "ledger"
)

// Headers the ledger reads and writes.
const (
	HeaderMsgID       = "Nats-Msg-Id"
	HeaderContentType = "Content-Type"
	// HeaderOccurredAt (RFC 3339) is when the fact happened at its source;
	// defaults to the time JetStream stored the message.
	HeaderOccurredAt = "Subsidy-Occurred-At"
	// HeaderPosition is the global log position of a feed event.
	HeaderPosition = "Ledger-Position"
	HeaderStream   = "Ledger-Stream"
	HeaderRevision = "Ledger-Revision"
	HeaderType     = "Ledger-Type"
	HeaderEventID  = "Ledger-Event-Id"
)

// Content types of inbound facts.
const (
	ContentProtobuf = "application/protobuf"
	ContentJSON     = "application/json"
)

// Subjects names every subject under one prefix (default "subsidy").
type Subjects struct{ Prefix string }

// DefaultSubjects uses the prefix "subsidy".
var DefaultSubjects = Subjects{Prefix: "subsidy"}

// InboundPrefix is the prefix of inbound fact subjects, e.g. "subsidy.in".
func (s Subjects) InboundPrefix() string { return s.Prefix + ".in" }

// Inbound is the subject of a fact from source with subject token fact.
func (s Subjects) Inbound(source, fact string) string {
	return s.Prefix + ".in." + source + "." + fact
}

// PII is the subject on which source publishes plain personal data
// (subsidy.v1.PersonalDataSubmitted) for the vault, e.g.
// "subsidy.pii.enrolment".
func (s Subjects) PII(source string) string { return s.Prefix + ".pii." + source }

// Outcome is the subject on which the outcome of an inbound subject is
// published: the inbound subject with "in" replaced by "outcome".
func (s Subjects) Outcome(inbound string) string {
	rest := strings.TrimPrefix(inbound, s.Prefix+".in.")
	return s.Prefix + ".outcome." + rest
}

// Feed is the subject of a committed event of a stream category and type
// (the type's last dotted element, e.g. "Enrolled").
func (s Subjects) Feed(category, typ string) string {
	if i := strings.LastIndexByte(typ, '.'); i >= 0 {
		typ = typ[i+1:]
	}
	if category == "" {
		category = "other"
	}
	return s.Prefix + ".feed." + category + "." + typ
}

// StreamOptions tunes the streams the ledger creates.
type StreamOptions struct {
	// Replicas for clustered JetStream (1 on a single server).
	Replicas int
	// DuplicateWindow is JetStream's Nats-Msg-Id dedupe window: a first,
	// cheap filter kept in the server's memory (about 200 bytes a
	// message), so it is short; the ledger itself answers a repeated
	// message id at any time with the original outcome.
	DuplicateWindow time.Duration
	// MaxMsgSize bounds one inbound message.
	MaxMsgSize int32
	// AckWait is how long a delivered inbound message may stay unacknowledged.
	AckWait time.Duration
	// MaxAckPending bounds the inbound messages in flight.
	MaxAckPending int
	// FeedMaxBytes and FeedMaxEvents bound SUBSIDY_FEED: past either, the
	// oldest events leave the stream as new ones arrive. 0 keeps every
	// event (the default). There is no age limit: an idle feed would age
	// out its last message, and the feed resumes after the position that
	// message carries; a size or count limit always keeps the newest.
	FeedMaxBytes  int64
	FeedMaxEvents int64
	// PIIMaxAge is how long plain personal data may wait in SUBSIDY_PII for
	// the ledger (each message is securely deleted once stored).
	PIIMaxAge time.Duration
	// PinnedTTL, when set, gives the inbound consumer the priority group
	// LedgerPriorityGroup with the pinned-client policy, for several
	// ledger instances sharing one store: the consumer stays pinned to the
	// instance that is deciding until that instance has sent no pull
	// request for PinnedTTL; then another takes over. Make it longer than
	// AckWait, so that a crashed instance's unacknowledged messages are
	// due for redelivery before its successor receives anything. 0 (one
	// instance, e.g. on the embedded store, which only one process can
	// open) leaves the consumer without priority groups.
	PinnedTTL time.Duration
	// FeedJetStream, when set, reaches SUBSIDY_FEED in an account of its
	// own (FeedAPIPrefix; see FeedAccount); nil: the JetStream of the
	// other streams.
	FeedJetStream jetstream.JetStream
	// FeedConsumers are the reporting users: each gets a durable pull
	// consumer of SUBSIDY_FEED named after it (FeedConsumerConfig), made
	// if it does not exist and otherwise left as it is (its position is
	// the reader's). Reporting users may not make consumers themselves
	// (Subjects.Permissions).
	FeedConsumers []string
	// FeedConsumersOnly (with accounts: the feed in FeedAccount) keeps
	// SUBSIDY_FEED's consumers to what FeedConsumers needs: every push
	// consumer is deleted (a deliver subject inside the feed's account
	// could reach another consumer's pull or reset subject; one made
	// before the accounts, when anyone could, moves in with the stream),
	// and a reporting user's consumer that is not a pull consumer shaped
	// as FeedConsumerConfig is made anew at the position it had reached.
	FeedConsumersOnly bool
}

// ensureFeedConsumers makes the reporting users' consumers of SUBSIDY_FEED
// (StreamOptions.FeedConsumers) and, with FeedConsumersOnly, deletes the
// consumers no one may have there.
func ensureFeedConsumers(ctx context.Context, fjs jetstream.JetStream, o StreamOptions) error {
	existing := map[string]*jetstream.ConsumerInfo{}
	if o.FeedConsumersOnly {
		st, err := fjs.Stream(ctx, FeedStream)
		if err != nil {
			return fmt.Errorf("natsbus: stream %s: %w", FeedStream, err)
		}
		l := st.ListConsumers(ctx)
		for ci := range l.Info() {
			existing[ci.Name] = ci
		}
		if err := l.Err(); err != nil {
			return fmt.Errorf("natsbus: the consumers of %s: %w", FeedStream, err)
		}
		for _, name := range slices.Sorted(maps.Keys(existing)) {
			ci := existing[name]
			mine := slices.Contains(o.FeedConsumers, name)
			switch {
			case ci.Config.DeliverSubject == "" && (!mine || feedConsumerShaped(ci.Config)):
				continue // an operator's pull consumer, or the reader's own
			case mine && updatable(ci.Config):
				// Settings an update may change: changed in place, where
				// the reader had read to.
				c := FeedConsumerConfig(name, o.Replicas)
				c.DeliverPolicy, c.OptStartSeq = ci.Config.DeliverPolicy, ci.Config.OptStartSeq
				if _, err := fjs.UpdateConsumer(ctx, FeedStream, c); err != nil {
					return fmt.Errorf("natsbus: the feed's consumer %s: %w", name, err)
				}
				continue
			}
			if err := fjs.DeleteConsumer(ctx, FeedStream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return fmt.Errorf("natsbus: deleting the feed's consumer %s: %w", name, err)
			}
			if mine {
				// A push consumer under a reporting user's name, or one
				// an update cannot turn into its shape: made anew in one
				// step from where it had read to, so that a start retried
				// after a lost reply finds it shaped and keeps it.
				c := FeedConsumerConfig(name, o.Replicas)
				if from := ci.AckFloor.Stream + 1; from > 1 {
					c.DeliverPolicy, c.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
				}
				if err := createFeedConsumer(ctx, fjs, c); err != nil {
					return err
				}
			}
		}
	}
	for _, name := range o.FeedConsumers {
		if _, ok := existing[name]; ok {
			continue
		}
		if _, err := fjs.Consumer(ctx, FeedStream, name); err == nil {
			continue
		} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("natsbus: the feed's consumer %s: %w", name, err)
		}
		if err := createFeedConsumer(ctx, fjs, FeedConsumerConfig(name, o.Replicas)); err != nil {
			return err
		}
	}
	return nil
}

// createFeedConsumer makes consumer c of SUBSIDY_FEED; one that exists
// already (another instance's start) will do.
func createFeedConsumer(ctx context.Context, fjs jetstream.JetStream, c jetstream.ConsumerConfig) error {
	if _, err := fjs.CreateConsumer(ctx, FeedStream, c); err != nil && !errors.Is(err, jetstream.ErrConsumerExists) {
		return fmt.Errorf("natsbus: making the feed's consumer %s: %w", c.Durable, err)
	}
	return nil
}

// feedConsumerShaped: c is a durable pull consumer of every event, each
// acknowledged, from the first or from a start sequence (one made anew
// where its reader had read to), whatever a reset or an operator changed
// harmlessly.
func feedConsumerShaped(c jetstream.ConsumerConfig) bool {
	return c.Durable != "" && c.DeliverSubject == "" && c.AckPolicy == jetstream.AckExplicitPolicy &&
		(c.DeliverPolicy == jetstream.DeliverAllPolicy || c.DeliverPolicy == jetstream.DeliverByStartSequencePolicy) &&
		c.FilterSubject == "" && len(c.FilterSubjects) == 0 && c.InactiveThreshold == 0 && c.MaxDeliver <= 0
}

// updatable: an update can give c FeedConsumerConfig's shape (a pull
// consumer acknowledging each event, delivering from the first or a start
// sequence: its filter, inactivity and delivery limits may change).
func updatable(c jetstream.ConsumerConfig) bool {
	return c.Durable != "" && c.DeliverSubject == "" && c.AckPolicy == jetstream.AckExplicitPolicy &&
		(c.DeliverPolicy == jetstream.DeliverAllPolicy || c.DeliverPolicy == jetstream.DeliverByStartSequencePolicy)
}

// FeedConsumerConfig is the durable consumer of SUBSIDY_FEED that
// EnsureStreams makes for reporting user name: every event from the
// oldest the stream holds, each acknowledged, redelivered after a minute;
// its reader starts again from any stream sequence with
// $JS.FEED.API.CONSUMER.RESET.SUBSIDY_FEED.<name> {"seq": N}.
func FeedConsumerConfig(name string, replicas int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "The feed for reporting user " + name + " (made by ledgerd; its position is the reader's).",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxAckPending: 10000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		Replicas:      replicas,
	}
}

// DefaultStreamOptions are the single-server defaults.
var DefaultStreamOptions = StreamOptions{
	Replicas:        1,
	DuplicateWindow: 2 * time.Minute,
	MaxMsgSize:      1 << 20,
	AckWait:         30 * time.Second,
	MaxAckPending:   20000,
	PIIMaxAge:       24 * time.Hour,
}

// EnsureStreams creates or updates the ledger's streams and its durable
// inbound consumer, and returns the consumer.
//
// SUBSIDY_IN keeps inbound messages for 7 days (limits retention: a work
// queue would delete each acknowledged message, one synced write per fact,
// which halves intake throughput); the durable consumer "ledger" tracks what
// was recorded. The messages carry person keys, never ID numbers. SUBSIDY_FEED keeps every
// committed event for downstream consumers to read from any position, or
// the newest within FeedMaxBytes and FeedMaxEvents.
// Streams deny delete and purge of messages by clients.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, subj Subjects, o StreamOptions) (jetstream.Consumer, error) {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	cfgs := []jetstream.StreamConfig{{
		Name:               InboundStream,
		Description:        "Inbound facts from internal services (kept 7 days; the consumer ledger tracks what was recorded).",
		Subjects:           []string{subj.InboundPrefix() + ".>"},
		Retention:          jetstream.LimitsPolicy,
		MaxAge:             7 * 24 * time.Hour,
		Storage:            jetstream.FileStorage,
		Replicas:           o.Replicas,
		Duplicates:         o.DuplicateWindow,
		MaxMsgSize:         o.MaxMsgSize,
		AllowAtomicPublish: true,
		DenyDelete:         true,
		DenyPurge:          true,
	}, {
		Name:        OutcomeStream,
		Description: "What became of each inbound fact: accepted (with position) or rejected (with reason). Flushed asynchronously: the ledger itself is the durable record.",
		Subjects:    []string{subj.Prefix + ".outcome.>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		PersistMode: outcomePersist(o.Replicas),
		Replicas:    o.Replicas,
		MaxAge:      7 * 24 * time.Hour,
		DenyDelete:  true,
		DenyPurge:   true,
	}, {
		Name:               FeedStream,
		Description:        "Every committed ledger event, in global position order.",
		Subjects:           []string{subj.Prefix + ".feed.>"},
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardOld,
		MaxBytes:           unlimited(o.FeedMaxBytes),
		MaxMsgs:            unlimited(o.FeedMaxEvents),
		Storage:            jetstream.FileStorage,
		Replicas:           o.Replicas,
		Duplicates:         o.DuplicateWindow,
		AllowAtomicPublish: true,
		DenyDelete:         true,
		DenyPurge:          true,
	}}
	for _, c := range cfgs {
		sjs := js
		if c.Name == FeedStream && o.FeedJetStream != nil {
			sjs = o.FeedJetStream
		}
		if err := createOrUpdate(ctx, sjs, c); err != nil {
			return nil, fmt.Errorf("natsbus: stream %s: %w", c.Name, err)
		}
	}
	if _, err := EnsurePIIStream(ctx, js, subj, o); err != nil {
		return nil, err
	}
	fjs := js
	if o.FeedJetStream != nil {
		fjs = o.FeedJetStream
	}
	if err := ensureFeedConsumers(ctx, fjs, o); err != nil {
		return nil, err
	}
	cc := jetstream.ConsumerConfig{
		Durable:       LedgerConsumer,
		Description:   "The ledger's intake.",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxAckPending: o.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		Replicas:      o.Replicas,
	}
	if o.PinnedTTL > 0 {
		cc.Description = "The ledger's intake: the pinned instance decides, the others stand by."
		cc.PriorityPolicy = jetstream.PriorityPolicyPinned
		cc.PriorityGroups = []string{LedgerPriorityGroup}
		cc.PinnedTTL = o.PinnedTTL
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, InboundStream, cc)
	if err != nil {
		return nil, fmt.Errorf("natsbus: consumer %s: %w", LedgerConsumer, err)
	}
	return cons, nil
}

// EnsurePIIStream creates or updates SUBSIDY_PII and ledgerd's durable
// consumer "vault" on it, and returns the consumer.
//
// SUBSIDY_PII carries plain personal data (<prefix>.pii.<source>) and is
// not part of the log: a work queue (an acknowledged message is removed;
// ledgerd securely deletes each one first, overwriting its bytes), file
// storage, messages dropped after PIIMaxAge if never consumed. Clients
// other than ledgerd may not delete or purge it.
func EnsurePIIStream(ctx context.Context, js jetstream.JetStream, subj Subjects, o StreamOptions) (jetstream.Consumer, error) {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.PIIMaxAge <= 0 {
		o.PIIMaxAge = DefaultStreamOptions.PIIMaxAge
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        PIIStream,
		Description: "Plain personal data on its way to the ledger's encrypted vault; each message is securely deleted once stored. Not part of the log.",
		Subjects:    []string{subj.Prefix + ".pii.>"},
		Retention:   jetstream.WorkQueuePolicy,
		MaxAge:      o.PIIMaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		Duplicates:  o.DuplicateWindow,
		MaxMsgSize:  64 << 10,
		DenyPurge:   true,
	}); err != nil {
		return nil, fmt.Errorf("natsbus: stream %s: %w", PIIStream, err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, PIIStream, jetstream.ConsumerConfig{
		Durable:       PIIConsumer,
		Description:   "The ledger's personal-data vault.",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxAckPending: 1000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		Replicas:      o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("natsbus: consumer %s: %w", PIIConsumer, err)
	}
	return cons, nil
}

// ErrNoFeed means the feed stream has no message yet.
var ErrNoFeed = errors.New("natsbus: feed is empty")

// unlimited is JetStream's -1 for a limit of 0 (none).
func unlimited(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

// outcomePersist flushes outcomes asynchronously where JetStream allows it
// (single replica); replicated streams are made durable by their quorum.
func outcomePersist(replicas int) jetstream.PersistModeType {
	if replicas > 1 {
		return jetstream.DefaultPersistMode
	}
	return jetstream.AsyncPersistMode
}

// createOrUpdate creates the stream c or brings it to c, keeping a deny
// delete or deny purge the stream already has where c has none: the
// server cannot cancel either, and a release that wrote them (this one
// added deny purge to SUBSIDY_OUTCOMES) must not stop an earlier or later
// one from starting on the same data.
func createOrUpdate(ctx context.Context, js jetstream.JetStream, c jetstream.StreamConfig) error {
	_, err := js.CreateOrUpdateStream(ctx, c)
	if err == nil || (c.DenyDelete && c.DenyPurge) {
		return err
	}
	s, ierr := js.Stream(ctx, c.Name)
	if ierr != nil {
		return err
	}
	have := s.CachedInfo().Config
	if (!have.DenyDelete || c.DenyDelete) && (!have.DenyPurge || c.DenyPurge) {
		return err // not that
	}
	c.DenyDelete = c.DenyDelete || have.DenyDelete
	c.DenyPurge = c.DenyPurge || have.DenyPurge
	_, err = js.CreateOrUpdateStream(ctx, c)
	return err
}
