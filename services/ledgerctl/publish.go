package ledgerctl

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cqhrss/subsidyledger/events/facts"
	"github.com/cqhrss/subsidyledger/events/person"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/natsbus"
)

// jsonFact is one fact in a publish file.
//
//	{"fact": "enrolment.trainee_registered",      (or "subject": "subsidy.in.enrolment.trainee_registered")
//	 "msg_id": "reg-0001",                          (optional: derived from the content)
//	 "occurred_at": "2025-03-01T08:00:00+08:00",    (optional)
//	 "payload": {"id_number": "5001…", "masked_name": "张*三", ...}}
//
// The payload is the message in protobuf's JSON form. It may give
// "id_number" instead of "person_key": ledgerctl validates it, computes the
// person key with the configured secret, fills in "masked_id" where the
// message has one, and sends neither the number nor anything containing it.
type jsonFact struct {
	Subject    string          `json:"subject"`
	Fact       string          `json:"fact"`
	MsgID      string          `json:"msg_id"`
	OccurredAt string          `json:"occurred_at"`
	Payload    json.RawMessage `json:"payload"`
}

// outFact is a fact ready to publish.
type outFact struct {
	subject    string
	msgID      string
	occurredAt string
	data       []byte
	where      string // file and index, for messages
}

// natsFlags adds --nats-url, --subject-prefix, --nats-user and --nats-ca;
// the password comes from LEDGER_NATS_PASSWORD.
type natsFlags struct {
	url, prefix, user, ca *string
	getenv                func(string) string
	// inFlight is the publish waiting for its acknowledgement, which the
	// server's refusal of it (a permission violation, reported apart from
	// the publish) ends at once.
	inFlight *inFlight
}

// inFlight is the subject of the publish under way and what ends it.
type inFlight struct {
	mu      sync.Mutex
	subject string
	cancel  context.CancelCauseFunc
}

// refused ends the publish under way if err is the server's refusal of
// its subject (a refusal of another operation, e.g. a subscription, is
// not its).
func (f *inFlight) refused(err error) {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cancel != nil && strings.Contains(err.Error(), `Publish to "`+f.subject+`"`) {
		f.cancel(err)
	}
}

func addNATSFlags(f *flags) natsFlags {
	return natsFlags{
		url:      f.str("nats-url", "nats://127.0.0.1:4222", "NATS server URL(s) of the ledger"),
		prefix:   f.str("subject-prefix", "subsidy", "prefix of the ledger's subjects"),
		user:     f.str("nats-user", "", "NATS user (the password comes from LEDGER_NATS_PASSWORD)"),
		ca:       f.str("nats-ca", "", "PEM file of the CA that signed the NATS server's TLS certificate"),
		getenv:   f.e.getenv,
		inFlight: &inFlight{},
	}
}

func (n natsFlags) connect(ctx context.Context) (*nats.Conn, jetstream.JetStream, error) {
	opts := []nats.Option{nats.Name("ledgerctl"), nats.Timeout(5 * time.Second),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { n.inFlight.refused(err) })}
	if *n.user != "" {
		// Replies come under the user's own inbox, the only one its
		// permissions let it read (natsbus.InboxPrefix).
		opts = append(opts, nats.UserInfo(*n.user, n.getenv("LEDGER_NATS_PASSWORD")), nats.CustomInboxPrefix(natsbus.InboxPrefix(*n.user)))
	}
	if *n.ca != "" {
		opts = append(opts, nats.RootCAs(*n.ca))
	}
	nc, err := nats.Connect(*n.url, opts...)
	if err != nil {
		return nil, nil, failf("connecting to NATS at %s: %v", *n.url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, failf("JetStream: %v", err)
	}
	// A service's user may not ask (its account has no JetStream of its
	// own, and its permissions allow its facts only): its first publish
	// says "no responders" if ledgerd has not made the streams yet.
	if *n.user == "" {
		if _, err := js.Stream(ctx, natsbus.InboundStream); err != nil {
			nc.Close()
			return nil, nil, failf("NATS at %s has no %s stream (%v): start ledgerd first, it creates the streams", *n.url, natsbus.InboundStream, err)
		}
	}
	return nc, js, nil
}

// publish publishes m and waits (at most 30 s) for JetStream's
// acknowledgement, or for the server's refusal of it.
func (n natsFlags) publish(ctx context.Context, js jetstream.JetStream, m *nats.Msg) (*jetstream.PubAck, error) {
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pctx, cancelT := context.WithTimeout(pctx, 30*time.Second)
	defer cancelT()
	f := n.inFlight
	f.mu.Lock()
	f.subject, f.cancel = m.Subject, cancel
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.subject, f.cancel = "", nil
		f.mu.Unlock()
	}()
	ack, err := js.PublishMsg(pctx, m)
	if cause := context.Cause(pctx); err != nil && cause != nil && errors.Is(cause, nats.ErrPermissionViolation) {
		return nil, cause
	}
	return ack, err
}

func cmdPublish(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "publish", "[--nats-url URL] [--wait 10s] FILE... (- for stdin)\n\n"+
		"A file holds facts one after another, or a JSON array of them:\n"+
		"  {\"fact\": \"bureau.annual_target_set\", \"msg_id\": \"target-2026\", \"payload\": {\"year\": 2026, \"target\": 3000}}\n"+
		"fact is <source>.<fact> (or give \"subject\"); msg_id (the Nats-Msg-Id) and occurred_at are optional;\n"+
		"payload is the message as canonical JSON, and may give id_number instead of person_key (hashed here).")
	nf := addNATSFlags(f)
	keyFile := f.str("key-file", "", "a file holding the person-key secret for id_number (default: LEDGER_PERSON_KEY)")
	wait := f.Duration("wait", 10*time.Second, "wait this long for the ledger's outcome of each fact and print it (0: do not wait)")
	if err := f.parse(args); err != nil {
		return err
	}
	if f.NArg() == 0 {
		return usageErrorf("publish: give one or more JSON files of facts (- reads stdin)")
	}
	inbound := natsbus.Subjects{Prefix: *nf.prefix}.InboundPrefix()
	var kr *person.Keyer
	getKeyer := func() (*person.Keyer, error) {
		if kr == nil {
			var err error
			if kr, err = keyer(e, *keyFile); err != nil {
				return nil, err
			}
		}
		return kr, nil
	}
	// Read and check everything before publishing anything.
	var all []outFact
	for _, path := range f.Args() {
		var r io.Reader
		if path == "-" {
			r = e.stdin
		} else {
			fh, err := os.Open(path)
			if err != nil {
				return usageErrorf("cannot read %s: %v", path, err)
			}
			defer fh.Close()
			r = fh
		}
		got, err := readFacts(r, path, inbound, getKeyer)
		if err != nil {
			return err
		}
		all = append(all, got...)
	}
	nc, js, err := nf.connect(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()

	var outcomes *outcomeWaiter
	if *wait > 0 {
		var subjects []string
		for _, of := range all {
			subjects = append(subjects, of.subject)
		}
		if outcomes, err = waitOutcomes(nc, *nf.prefix, subjects); err != nil {
			return err
		}
		defer outcomes.stop()
	}
	for _, of := range all {
		m := nats.NewMsg(of.subject)
		m.Data = of.data
		m.Header.Set(natsbus.HeaderMsgID, of.msgID)
		m.Header.Set(natsbus.HeaderContentType, natsbus.ContentProtobuf)
		if of.occurredAt != "" {
			m.Header.Set(natsbus.HeaderOccurredAt, of.occurredAt)
		}
		ack, err := nf.publish(ctx, js, m)
		if err != nil {
			return failf("publishing %s (%s): %v", of.where, of.msgID, err)
		}
		dup := ""
		if ack.Duplicate {
			dup = " (a repeat: JetStream already had it)"
		}
		fmt.Fprintf(e.stdout, "published %s %s as %s, sequence %d%s\n", of.where, of.subject, of.msgID, ack.Sequence, dup)
	}
	if outcomes == nil {
		return nil
	}
	rejected := 0
	deadline := time.After(*wait)
	for _, of := range all {
		select {
		case o := <-outcomes.get(of.msgID):
			again := ""
			if o.GetDuplicate() {
				again = " (duplicate: its first outcome)"
			}
			if o.GetAccepted() {
				fmt.Fprintf(e.stdout, "accepted %s: %s revision %d at position %d%s\n", of.msgID, o.GetStream(), o.GetRevision(), o.GetPosition(), again)
			} else {
				rejected++
				fmt.Fprintf(e.stdout, "REJECTED %s: %s %s (recorded at position %d)%s\n", of.msgID, reasonName(o.GetReason()), o.GetDetail(), o.GetPosition(), again)
			}
		case <-deadline:
			return failf("no outcome for %s after %s: is ledgerd consuming?", of.msgID, *wait)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if rejected > 0 {
		return failf("%d of %d facts were rejected", rejected, len(all))
	}
	return nil
}

// readFacts reads a file of facts: JSON objects, arrays of them, or one
// per line. Its errors have their resident ID numbers masked: they quote
// the input (protojson's and encoding/json's do), and go to a terminal or
// a job's log.
func readFacts(r io.Reader, path, inbound string, keyer func() (*person.Keyer, error)) ([]outFact, error) {
	out, err := readFactsOf(r, path, inbound, keyer)
	if err != nil {
		return nil, usageErrorf("%s", person.RedactIDString(err.Error()))
	}
	return out, nil
}

func readFactsOf(r io.Reader, path, inbound string, keyer func() (*person.Keyer, error)) ([]outFact, error) {
	dec := json.NewDecoder(r)
	var out []outFact
	for i := 0; ; {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("%s: not JSON: %v", path, err)
		}
		var list []json.RawMessage
		if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
			if err := json.Unmarshal(raw, &list); err != nil {
				return nil, fmt.Errorf("%s: %v", path, err)
			}
		} else {
			list = []json.RawMessage{raw}
		}
		for _, item := range list {
			i++
			where := fmt.Sprintf("%s#%d", path, i)
			of, err := buildFact(item, inbound, keyer)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", where, err)
			}
			of.where = where
			out = append(out, of)
		}
	}
}

func buildFact(raw json.RawMessage, inbound string, keyer func() (*person.Keyer, error)) (outFact, error) {
	var jf jsonFact
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&jf); err != nil {
		return outFact{}, fmt.Errorf("want {\"fact\" or \"subject\", \"msg_id\", \"occurred_at\", \"payload\"}: %v", err)
	}
	subject := jf.Subject
	if subject == "" && jf.Fact != "" {
		subject = inbound + "." + jf.Fact
	}
	kind, ok := facts.BySubject(inbound, subject)
	if !ok {
		return outFact{}, fmt.Errorf("%q is not a fact subject under %s (see the README's catalogue)", subject, inbound)
	}
	if jf.OccurredAt != "" {
		if _, err := time.Parse(time.RFC3339, jf.OccurredAt); err != nil {
			return outFact{}, fmt.Errorf("occurred_at %q: want RFC 3339", jf.OccurredAt)
		}
	}
	payload := map[string]any{}
	if len(jf.Payload) > 0 {
		pd := json.NewDecoder(bytes.NewReader(jf.Payload))
		pd.UseNumber()
		if err := pd.Decode(&payload); err != nil {
			return outFact{}, fmt.Errorf("payload: want a JSON object: %v", err)
		}
	}
	msg := kind.New()
	if err := personKeyFor(payload, msg.ProtoReflect().Descriptor(), keyer); err != nil {
		return outFact{}, err
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return outFact{}, err
	}
	if err := protojson.Unmarshal(b, msg); err != nil {
		return outFact{}, fmt.Errorf("payload is not a %s: %v", kind.Name, err)
	}
	if f := plainIDIn(msg.ProtoReflect()); f != "" {
		return outFact{}, fmt.Errorf("field %s holds what looks like a plain ID number: give it as \"id_number\" so that it is hashed, or mask it", f)
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return outFact{}, err
	}
	id := jf.MsgID
	if id == "" {
		h := sha256.New()
		h.Write([]byte(subject))
		h.Write([]byte{0})
		h.Write(data)
		id = "ledgerctl-" + hex.EncodeToString(h.Sum(nil))[:32]
	}
	return outFact{subject: subject, msgID: id, occurredAt: jf.OccurredAt, data: data}, nil
}

// personKeyFor replaces a payload's id_number with its person key and
// fills in masked_id where the message has it.
func personKeyFor(payload map[string]any, md protoreflect.MessageDescriptor, keyer func() (*person.Keyer, error)) error {
	var id string
	for _, name := range []string{"id_number", "idNumber"} {
		if v, ok := payload[name]; ok {
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("%s: want a string", name)
			}
			id = s
			delete(payload, name)
		}
	}
	if id == "" {
		return nil
	}
	if md.Fields().ByName("person_key") == nil {
		return fmt.Errorf("id_number given, but %s has no person_key", md.FullName())
	}
	if payload["person_key"] != nil || payload["personKey"] != nil {
		return fmt.Errorf("give id_number or person_key, not both")
	}
	k, err := keyer()
	if err != nil {
		return err
	}
	pk, err := k.Key(id)
	if err != nil {
		return fmt.Errorf("id_number %s: %v", person.MaskID(id), err)
	}
	payload["person_key"] = pk
	if md.Fields().ByName("masked_id") != nil && payload["masked_id"] == nil && payload["maskedId"] == nil {
		n, _ := person.Normalize(id)
		payload["masked_id"] = person.MaskID(n)
	}
	return nil
}

// plainIDIn returns the name of a string field holding a valid ID number
// (or containing one), "" if none does.
func plainIDIn(m protoreflect.Message) string {
	found := ""
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Kind() == protoreflect.StringKind && !fd.IsList() && !fd.IsMap():
			if containsID(v.String()) {
				found = string(fd.Name())
			}
		case fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap():
			if f := plainIDIn(v.Message()); f != "" {
				found = string(fd.Name()) + "." + f
			}
		}
		return found == ""
	})
	return found
}

func containsID(s string) bool {
	for i := 0; i+18 <= len(s); i++ {
		if s[i] >= '1' && s[i] <= '9' && person.Valid(s[i:i+18]) {
			return true
		}
	}
	return false
}

// outcomeWaiter collects the ledger's outcomes by message id.
type outcomeWaiter struct {
	subs []*nats.Subscription
	mu   sync.Mutex
	chs  map[string]chan *subsidyv1.IntakeOutcome
}

// waitOutcomes subscribes to the outcomes of the sources of subjects
// (<prefix>.outcome.<source>.>: a service's user may read its own only).
func waitOutcomes(nc *nats.Conn, prefix string, subjects []string) (*outcomeWaiter, error) {
	w := &outcomeWaiter{chs: map[string]chan *subsidyv1.IntakeOutcome{}}
	handle := func(m *nats.Msg) {
		o := &subsidyv1.IntakeOutcome{}
		if proto.Unmarshal(m.Data, o) != nil {
			return
		}
		select {
		case w.get(o.GetMessageId()) <- o:
		default:
		}
	}
	// <prefix>.outcome.<source>.<fact> of each inbound subject, its last
	// token a wildcard.
	var sources []string
	for _, s := range subjects {
		out := natsbus.Subjects{Prefix: prefix}.Outcome(s)
		if i := strings.LastIndexByte(out, '.'); i > 0 && !slices.Contains(sources, out[:i]+".>") {
			sources = append(sources, out[:i]+".>")
		}
	}
	for _, src := range sources {
		sub, err := nc.Subscribe(src, handle)
		if err != nil {
			return nil, failf("subscribing to outcomes: %v", err)
		}
		w.subs = append(w.subs, sub)
	}
	if err := nc.Flush(); err != nil {
		return nil, failf("subscribing to outcomes: %v", err)
	}
	return w, nil
}

func (w *outcomeWaiter) get(id string) chan *subsidyv1.IntakeOutcome {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch, ok := w.chs[id]
	if !ok {
		ch = make(chan *subsidyv1.IntakeOutcome, 1)
		w.chs[id] = ch
	}
	return ch
}

func (w *outcomeWaiter) stop() {
	for _, s := range w.subs {
		_ = s.Unsubscribe()
	}
}
