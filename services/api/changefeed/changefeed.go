// Package changefeed publishes the read models' changes on NATS for
// downstream reporting consumers: one message per event a live projection
// applied, on a subject per projection, with the keys of what changed, so
// that a consumer refreshes exactly those records (GET /v1/...) or, for
// the fund ledger, takes the postings from the message itself.
//
// # Subjects
//
// With the default prefix "subsidy":
//
//	subsidy.projection.trainee     a trainee's status changed
//	subsidy.projection.quota       a year's dashboard changed
//	subsidy.projection.scorecard   an institution's scorecard changed
//	subsidy.projection.fund        postings (double-entry journal entries)
//	subsidy.projection.notice      the public notice changed
//	subsidy.projection.anomaly     a flag was raised
//
// The body is JSON (Change). Headers: Ledger-Projection, Ledger-Position
// (the log position of the event), Ledger-Seq (per projection, counting
// from 1 since the process started, with no gap unless messages were
// dropped: a consumer that sees a gap resynchronises from the API),
// Ledger-Event-Type, Ledger-Instance (the publishing process: with several
// ledgerd instances each publishes the changes its own projections apply,
// with a Ledger-Seq of its own, so a consumer counts Ledger-Seq per
// instance and takes each projection's Ledger-Position once), Nats-Msg-Id
// (projection and position). A message with Ledger-Resync: true (and
// "resync": true, no event) says the read model was rebuilt and swapped in
// at Ledger-Position (POST /v1/projections/{name}/rebuild, or a failed
// projection repaired): changes it took in were not announced one by one,
// so a consumer reads what it keeps of that read model again.
//
// Messages are published with core NATS, after the change is visible in the
// API, from a bounded queue: the apply loop never waits for NATS. When the
// queue is full the message is dropped and counted
// (subsidy_ledger_changefeed_dropped_total), and the consumer sees the gap
// in Ledger-Seq. Person keys appear in bodies (not in subjects), except in
// the public notice's messages, which name entitlements, institutions and
// units but never a person.
package changefeed

import (
	"context"
	"crypto/rand"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/fund"
	"github.com/cqhrss/subsidyledger/projections/notice"
)

// Config configures a Feed.
type Config struct {
	Conn *nats.Conn
	// Prefix of the subjects (default "subsidy").
	Prefix string
	// Queue is the number of messages that may wait for NATS (default
	// 65,536).
	Queue      int
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Instance names this process in every message's Ledger-Instance
	// header; New makes one up if empty.
	Instance string
}

// Change is the body of a change message.
type Change struct {
	Projection string          `json:"projection"`
	Position   events.Position `json:"position"`
	EventType  string          `json:"event_type"`
	EventID    string          `json:"event_id"`
	// The keys of what changed, as far as the event names them (a flag's
	// person key is its subject, when the flag is about a person).
	PersonKey     string   `json:"person_key,omitempty"`
	EntitlementID string   `json:"entitlement_id,omitempty"`
	ClawbackID    string   `json:"clawback_id,omitempty"`
	FlagID        string   `json:"flag_id,omitempty"`
	Institutions  []string `json:"institutions,omitempty"`
	Year          int32    `json:"year,omitempty"`
	UnitCode      string   `json:"unit_code,omitempty"`
	// Postings are the fund ledger's journal entries the event made.
	Postings []fund.Entry `json:"postings,omitempty"`
	// Resync: the read model was rebuilt and swapped in at Position (no
	// event; see the package doc).
	Resync bool `json:"resync,omitempty"`
}

type msg struct {
	subject string
	change  Change
	seq     uint64
}

// Feed is the change feed. Create it with New, pass Observer to the
// projections' Config, and Run it.
type Feed struct {
	cfg       Config
	log       *slog.Logger
	q         chan msg
	mu        sync.Mutex
	seq       map[string]uint64
	published *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	subjects  map[string]string // projection -> subject, under mu
	fields    sync.Map          // protoreflect.FullName -> *keyFields
	// Run's, reused for every message (PublishMsg copies what it sends):
	buf    []byte
	header nats.Header
	counts map[string]prometheus.Counter // published, by projection
}

// New returns a Feed.
func New(cfg Config) *Feed {
	if cfg.Prefix == "" {
		cfg.Prefix = "subsidy"
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 1 << 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Instance == "" {
		cfg.Instance = rand.Text()[:16]
	}
	f := &Feed{cfg: cfg, log: cfg.Logger, q: make(chan msg, cfg.Queue), seq: map[string]uint64{}, subjects: map[string]string{},
		counts: map[string]prometheus.Counter{},
		header: nats.Header{
			"Content-Type":      {"application/json"},
			"Ledger-Projection": {""},
			"Ledger-Position":   {""},
			"Ledger-Seq":        {""},
			"Ledger-Event-Type": {""},
			"Ledger-Instance":   {cfg.Instance},
			nats.MsgIdHdr:       {""},
		},
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "subsidy_ledger_changefeed_published_total", Help: "Change messages published on NATS, by projection.",
		}, []string{"projection"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "subsidy_ledger_changefeed_dropped_total", Help: "Change messages dropped because the queue to NATS was full, by projection.",
		}, []string{"projection"}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(f.published, f.dropped)
	}
	return f
}

// Subject returns the subject of a projection's changes.
func (f *Feed) Subject(projection string) string { return f.cfg.Prefix + ".projection." + projection }

// Observer is the projections.Config.Observer that feeds the queue.
func (f *Feed) Observer(p projections.Projection, ev *projections.Event) {
	c := Change{Projection: p.Name(), Position: ev.Position, EventType: ev.Type, EventID: ev.ID.String()}
	f.keys(ev.Payload.ProtoReflect(), &c)
	if c.Projection == notice.Name {
		// The public notice is masked data only: its changes name the
		// entitlement, never the person (a person key would join the
		// public list to the trainee's records).
		c.PersonKey = ""
	}
	if fm, ok := p.(*fund.Model); ok {
		if c.Postings = fm.PostedAt(ev.Position); len(c.Postings) == 0 {
			return // nothing posted: nothing changed in the ledger
		}
	}
	f.enqueue(c)
}

// Swapped is the projections.Config.Swapped that announces a rebuilt read
// model (a message with Ledger-Resync).
func (f *Feed) Swapped(p projections.Projection, pos events.Position) {
	f.enqueue(Change{Projection: p.Name(), Position: pos, Resync: true})
}

// Instance is the Ledger-Instance of this feed's messages.
func (f *Feed) Instance() string { return f.cfg.Instance }

// enqueue numbers c in its projection's Ledger-Seq and queues it.
func (f *Feed) enqueue(c Change) {
	f.mu.Lock()
	f.seq[c.Projection]++
	subject, ok := f.subjects[c.Projection]
	if !ok {
		subject = f.Subject(c.Projection)
		f.subjects[c.Projection] = subject
	}
	m := msg{subject: subject, change: c, seq: f.seq[c.Projection]}
	f.mu.Unlock()
	select {
	case f.q <- m:
	default:
		f.dropped.WithLabelValues(c.Projection).Inc()
	}
}

// Run publishes queued changes until ctx ends, then flushes what is queued.
func (f *Feed) Run(ctx context.Context) error {
	for {
		select {
		case m := <-f.q:
			f.publish(m)
		case <-ctx.Done():
			for {
				select {
				case m := <-f.q:
					f.publish(m)
				default:
					_ = f.cfg.Conn.Flush()
					return nil
				}
			}
		}
	}
}

func (f *Feed) publish(m msg) {
	body, err := appendJSON(f.buf[:0], &m.change)
	if err != nil {
		f.log.Error("encoding a change failed", "projection", m.change.Projection, "err", err)
		return
	}
	f.buf = body // PublishMsg copies it into the connection's buffer
	pos := strconv.FormatUint(uint64(m.change.Position), 10)
	// One header for every message, its values replaced (the keys are in
	// canonical form: Header.Set would canonicalise each).
	h := f.header
	h["Ledger-Projection"][0] = m.change.Projection
	h["Ledger-Position"][0] = pos
	h["Ledger-Seq"][0] = strconv.FormatUint(m.seq, 10)
	h["Ledger-Event-Type"][0] = m.change.EventType
	h[nats.MsgIdHdr][0] = m.change.Projection + "-" + pos
	if m.change.Resync {
		h["Ledger-Resync"] = []string{"true"}
		h[nats.MsgIdHdr][0] += "-resync"
	} else {
		delete(h, "Ledger-Resync")
	}
	nm := nats.Msg{Subject: m.subject, Data: body, Header: h}
	if err := f.cfg.Conn.PublishMsg(&nm); err != nil {
		f.dropped.WithLabelValues(m.change.Projection).Inc()
		f.log.Warn("publishing a change failed", "projection", m.change.Projection, "err", err)
		return
	}
	n, ok := f.counts[m.change.Projection]
	if !ok {
		n = f.published.WithLabelValues(m.change.Projection)
		f.counts[m.change.Projection] = n
	}
	n.Inc()
}

// keyFields are the fields of one message type that name what changed
// (nil where the type has none).
type keyFields struct {
	person, entitlement, clawback, flag, unit protoreflect.FieldDescriptor
	// subject: a flag's (ViolationFlagged, FlagCleared) subject, the
	// person key when the flag is about a person.
	subject                 protoreflect.FieldDescriptor
	institutions            []protoreflect.FieldDescriptor
	year                    protoreflect.FieldDescriptor
	payee, payeeInstitution protoreflect.FieldDescriptor
}

func keyFieldsOf(md protoreflect.MessageDescriptor) *keyFields {
	fields := md.Fields()
	str := func(name string) protoreflect.FieldDescriptor {
		if fd := fields.ByName(protoreflect.Name(name)); fd != nil && fd.Kind() == protoreflect.StringKind {
			return fd
		}
		return nil
	}
	k := &keyFields{person: str("person_key"), entitlement: str("entitlement_id"), clawback: str("clawback_id"),
		flag: str("flag_id"), unit: str("unit_code")}
	if k.person == nil && k.flag != nil {
		k.subject = str("subject")
	}
	for _, n := range []string{"institution_id", "training_institution_id", "evaluation_institution_id"} {
		if fd := str(n); fd != nil {
			k.institutions = append(k.institutions, fd)
		}
	}
	if fd := fields.ByName("year"); fd != nil && fd.Kind() == protoreflect.Int32Kind {
		k.year = fd
	}
	if fd := fields.ByName("payee"); fd != nil && fd.Kind() == protoreflect.MessageKind {
		k.payee, k.payeeInstitution = fd, fd.Message().Fields().ByName("institution_id")
	}
	return k
}

// keys copies the well-known key fields of a payload into c. The payload's
// strings point into a page of the log that the projection runner reuses
// (projections.Config.Observer), so c gets copies.
func (f *Feed) keys(m protoreflect.Message, c *Change) {
	md := m.Descriptor()
	v, ok := f.fields.Load(md.FullName())
	if !ok {
		v, _ = f.fields.LoadOrStore(md.FullName(), keyFieldsOf(md))
	}
	k := v.(*keyFields)
	str := func(fd protoreflect.FieldDescriptor) string {
		if fd == nil {
			return ""
		}
		return strings.Clone(m.Get(fd).String())
	}
	c.PersonKey = str(k.person)
	if k.subject != nil {
		if s := m.Get(k.subject).String(); person.ValidKey(s) {
			c.PersonKey = strings.Clone(s)
		}
	}
	c.EntitlementID = str(k.entitlement)
	c.ClawbackID = str(k.clawback)
	c.FlagID = str(k.flag)
	c.UnitCode = str(k.unit)
	for _, fd := range k.institutions {
		if v := str(fd); v != "" {
			c.Institutions = append(c.Institutions, v)
		}
	}
	if k.year != nil {
		c.Year = int32(m.Get(k.year).Int())
	}
	if k.payee != nil && k.payeeInstitution != nil && m.Has(k.payee) {
		if id := m.Get(k.payee).Message().Get(k.payeeInstitution).String(); id != "" {
			c.Institutions = append(c.Institutions, strings.Clone(id))
		}
	}
}
