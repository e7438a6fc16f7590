package ledgerctl

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// auditRow is one event of a timeline.
type auditRow struct {
	Position  events.Position `json:"position"`
	Committed time.Time       `json:"committed"`
	Occurred  *time.Time      `json:"occurred_at,omitempty"`
	Stream    string          `json:"stream"`
	Revision  uint64          `json:"revision"`
	EventID   string          `json:"event_id"`
	Type      string          `json:"type"`
	Source    string          `json:"source"`
	RuleSet   string          `json:"rule_set_version,omitempty"`
	// Reasons are the decision's reason codes and failed checks (or a
	// summary of the checks passed).
	Reasons  []string     `json:"reasons,omitempty"`
	Checks   []auditCheck `json:"checks,omitempty"`
	PrevHash string       `json:"prev_hash"`
	Hash     string       `json:"hash"`
	// HashOK: the event's content hashes to Hash; LinkOK: PrevHash is the
	// Hash of the stream's previous event.
	HashOK  bool            `json:"hash_ok"`
	LinkOK  bool            `json:"link_ok"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

type auditCheck struct {
	Rule   int32  `json:"rule"`
	Passed bool   `json:"passed"`
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// selection says which events belong to a timeline.
type selection struct {
	what    string   // for messages
	streams []string // whole streams that belong
	fields  map[string]bool
	value   string
	eventID events.ID // an event whose id is the value (entitlement, payment order)
	scan    bool      // search the whole log for references
}

func cmdAudit(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "audit", "(--person-key K | --id-number N | --entitlement ID | --payment ID | --institution ID | --stream NAME) [--store PATH | --server URL] [--format table|json|csv]")
	storeSpec := storeFlag(f)
	srv := addServerFlags(f)
	personKey := f.String("person-key", "", "a trainee's person key (64 hex characters)")
	idNumber := f.String("id-number", "", "a trainee's resident ID number, hashed here with the person-key secret (never sent or printed)")
	keyFile := f.str("key-file", "", "a file holding the person-key secret (default: LEDGER_PERSON_KEY)")
	entitlement := f.String("entitlement", "", "an entitlement id")
	payment := f.String("payment", "", "a payment order id")
	institution := f.String("institution", "", "an institution id")
	stream := f.String("stream", "", "a stream name")
	format := f.str("format", "table", "table, json or csv")
	progress := f.str("progress", "auto", "progress bar on stderr while searching the log: auto, on or off")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.noArgs(); err != nil {
		return err
	}
	if *format != "table" && *format != "json" && *format != "csv" {
		return usageErrorf("--format %q: want table, json or csv", *format)
	}
	given := 0
	for _, v := range []string{*personKey, *idNumber, *entitlement, *payment, *institution, *stream} {
		if v != "" {
			given++
		}
	}
	if given != 1 {
		return usageErrorf("audit: give exactly one of --person-key, --id-number, --entitlement, --payment, --institution, --stream")
	}
	if *idNumber != "" {
		k, err := keyer(e, *keyFile)
		if err != nil {
			return err
		}
		pk, err := k.Key(*idNumber)
		if err != nil {
			return usageErrorf("--id-number %s: %v", person.MaskID(*idNumber), err)
		}
		*personKey = pk
	}
	var sel selection
	switch {
	case *personKey != "":
		if !person.ValidKey(*personKey) {
			return usageErrorf("--person-key: want 64 lower-case hex characters")
		}
		sel = selection{what: "trainee " + *personKey, streams: []string{rules.TraineeStream(*personKey)}, fields: map[string]bool{"person_key": true}, value: *personKey, scan: true}
	case *entitlement != "":
		id, err := events.ParseID(*entitlement)
		if err != nil {
			return usageErrorf("--entitlement: %v", err)
		}
		sel = selection{what: "entitlement " + *entitlement, fields: map[string]bool{"entitlement_id": true}, value: *entitlement, eventID: id, scan: true}
	case *payment != "":
		id, err := events.ParseID(*payment)
		if err != nil {
			return usageErrorf("--payment: %v", err)
		}
		sel = selection{what: "payment order " + *payment, fields: map[string]bool{"payment_order_id": true}, value: *payment, eventID: id, scan: true}
	case *institution != "":
		sel = selection{what: "institution " + *institution, streams: []string{rules.InstitutionStream(*institution), rules.FeeStream(*institution)},
			fields: map[string]bool{"institution_id": true, "training_institution_id": true, "evaluation_institution_id": true}, value: *institution, scan: true}
	default:
		sel = selection{what: "stream " + *stream, streams: []string{*stream}}
	}

	c, err := srv.client()
	if err != nil {
		return err
	}
	var rows []auditRow
	if c != nil {
		if len(sel.streams) == 0 {
			return usageErrorf("audit: a running ledgerd serves stream timelines only; for an entitlement or payment give --store (a copy of the store file)")
		}
		rows, err = auditServer(ctx, c, sel)
	} else {
		bar, berr := newProgress(e.stderr, *progress, "audit")
		if berr != nil {
			return berr
		}
		rows, err = auditStore(ctx, *storeSpec, sel, bar)
	}
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return failf("no events of %s", sel.what)
	}
	return writeAudit(e.stdout, *format, sel.what, rows)
}

// keyer returns the person keyer of --key-file or LEDGER_PERSON_KEY.
func keyer(e *env, keyFile string) (*person.Keyer, error) {
	secret := e.getenv("LEDGER_PERSON_KEY")
	if keyFile != "" {
		var err error
		if secret, err = readSecretFile(keyFile); err != nil {
			return nil, err
		}
	}
	if secret == "" {
		return nil, usageErrorf("the person-key secret is needed: set LEDGER_PERSON_KEY or give --key-file")
	}
	k, err := person.NewKeyer([]byte(secret))
	if err != nil {
		return nil, usageErrorf("the person-key secret: %v", err)
	}
	return k, nil
}

func auditStore(ctx context.Context, spec string, sel selection, bar *progressBar) ([]auditRow, error) {
	s, err := openStore(spec)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var recs []events.RecordedEvent
	home := map[string]bool{}
	for _, st := range sel.streams {
		home[st] = true
		evs, err := s.ReadStream(ctx, st, events.Forwards, 0, 0)
		if errors.Is(err, events.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return nil, failf("reading %q: %v", st, err)
		}
		recs = append(recs, evs...)
	}
	if sel.scan {
		head, err := s.Head(ctx)
		if err != nil {
			return nil, failf("%v", err)
		}
		needle := []byte(sel.value)
		var n int64
		for after := events.Start; ; {
			page, err := s.ReadAll(ctx, after, 4096)
			if err != nil {
				return nil, failf("reading the log after position %d: %v", after, err)
			}
			if len(page) == 0 {
				break
			}
			for i := range page {
				r := &page[i]
				if home[r.Stream] || (r.ID != sel.eventID && !bytes.Contains(r.Data, needle)) {
					continue
				}
				if r.ID == sel.eventID || refers(r, sel) {
					recs = append(recs, *r)
				}
			}
			n += int64(len(page))
			after = page[len(page)-1].Position
			bar.update(uint64(after), uint64(head), n, "events")
		}
		bar.done()
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Position < recs[j].Position })
	rows := make([]auditRow, 0, len(recs))
	type seen struct {
		rev  uint64
		hash events.Hash
	}
	last := map[string]seen{} // the last event of each stream in the timeline
	for i := range recs {
		r := &recs[i]
		var prev events.Hash
		if l, ok := last[r.Stream]; ok && r.Revision > 0 && l.rev == r.Revision-1 {
			prev = l.hash
		} else if r.Revision > 0 {
			// The stream's previous event is not in the timeline: read it.
			before, err := s.ReadStream(ctx, r.Stream, events.Forwards, r.Revision-1, 1)
			if err == nil && len(before) == 1 {
				prev = before[0].Hash
			}
		}
		rows = append(rows, rowOf(r, prev))
		last[r.Stream] = seen{r.Revision, r.Hash}
	}
	return rows, nil
}

// refers reports whether the event's payload has one of the selection's
// fields, at any depth, equal to its value.
func refers(r *events.RecordedEvent, sel selection) bool {
	m, err := codec.Payload(r.EventData)
	if err != nil {
		return false
	}
	return hasField(m.ProtoReflect(), sel.fields, sel.value)
}

func hasField(m protoreflect.Message, names map[string]bool, value string) bool {
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Kind() == protoreflect.StringKind && names[string(fd.Name())]:
			if fd.IsList() {
				for i := range v.List().Len() {
					if v.List().Get(i).String() == value {
						found = true
					}
				}
			} else if !fd.IsMap() && v.String() == value {
				found = true
			}
		case fd.Kind() == protoreflect.MessageKind && fd.IsList():
			for i := range v.List().Len() {
				found = found || hasField(v.List().Get(i).Message(), names, value)
			}
		case fd.Kind() == protoreflect.MessageKind && !fd.IsMap():
			found = hasField(v.Message(), names, value)
		}
		return !found
	})
	return found
}

var pjRow = protojson.MarshalOptions{UseProtoNames: true}

// rowOf builds the row of r, whose stream's previous event has hash prev.
func rowOf(r *events.RecordedEvent, prev events.Hash) auditRow {
	row := auditRow{Position: r.Position, Committed: r.Created, Stream: r.Stream, Revision: r.Revision, EventID: r.ID.String(), Type: r.Type,
		PrevHash: hex.EncodeToString(r.PrevHash[:]), Hash: hex.EncodeToString(r.Hash[:])}
	row.HashOK = events.LinkHash(r.PrevHash, r.Stream, r.Revision, r.EventData) == r.Hash
	row.LinkOK = r.PrevHash == prev
	if env, err := codec.Envelope(r.EventData); err == nil {
		row.Source = env.GetSource()
		if env.GetOccurredAt() != nil {
			t := env.GetOccurredAt().AsTime()
			row.Occurred = &t
		}
	}
	if m, err := codec.Payload(r.EventData); err == nil {
		row.RuleSet, row.Reasons, row.Checks = reasonsOf(m)
		if b, err := pjRow.Marshal(m); err == nil {
			row.Payload = b
		}
	}
	return row
}

// reasonsOf reads a payload's reason code and its decision (rule set and
// checks), wherever the message has them.
func reasonsOf(m proto.Message) (ruleSet string, reasons []string, checks []auditCheck) {
	pm := m.ProtoReflect()
	fields := pm.Descriptor().Fields()
	if fd := fields.ByName("reason"); fd != nil && fd.Kind() == protoreflect.EnumKind {
		if n := pm.Get(fd).Enum(); n != 0 {
			r := reasonName(subsidyv1.ReasonCode(n))
			if dd := fields.ByName("detail"); dd != nil && dd.Kind() == protoreflect.StringKind && pm.Get(dd).String() != "" {
				r += ": " + pm.Get(dd).String()
			}
			reasons = append(reasons, r)
		}
	}
	if fd := fields.ByName("decision"); fd != nil && fd.Kind() == protoreflect.MessageKind && pm.Has(fd) {
		if d, ok := pm.Get(fd).Message().Interface().(*subsidyv1.Decision); ok {
			ruleSet = d.GetRuleSetVersion()
			var passed []string
			for _, c := range d.GetChecks() {
				ac := auditCheck{Rule: c.GetRule(), Passed: c.GetPassed(), Detail: c.GetDetail()}
				if c.GetReason() != 0 {
					ac.Reason = reasonName(c.GetReason())
				}
				checks = append(checks, ac)
				if c.GetPassed() {
					passed = append(passed, strconv.Itoa(int(c.GetRule())))
					continue
				}
				r := fmt.Sprintf("rule %d failed", c.GetRule())
				if ac.Reason != "" {
					r += " " + ac.Reason
				}
				if ac.Detail != "" {
					r += ": " + ac.Detail
				}
				reasons = append(reasons, r)
			}
			switch len(passed) {
			case 0:
			case 1:
				reasons = append(reasons, "rule "+passed[0]+" passed")
			default:
				reasons = append(reasons, "rules "+strings.Join(passed, ",")+" passed")
			}
		}
	}
	return ruleSet, reasons, checks
}

func reasonName(c subsidyv1.ReasonCode) string {
	return strings.TrimPrefix(c.String(), "REASON_CODE_")
}

// chinaTime is China Standard Time, in which the programme's days are
// counted.
var chinaTime = time.FixedZone("CST", 8*3600)

// serverEvent is an event of the API's audit trail (GET
// /v1/audit/streams/{stream}).
type serverEvent struct {
	Position  events.Position `json:"position"`
	Stream    string          `json:"stream"`
	Revision  uint64          `json:"revision"`
	EventID   string          `json:"event_id"`
	Type      string          `json:"type"`
	Committed time.Time       `json:"committed"`
	PrevHash  string          `json:"prev_hash"`
	Hash      string          `json:"hash"`
	HashOK    bool            `json:"hash_ok"`
	LinkOK    bool            `json:"link_ok"`
	Envelope  json.RawMessage `json:"envelope"`
	Payload   json.RawMessage `json:"payload"`
}

type serverTrail struct {
	Events []serverEvent `json:"events"`
	Next   *uint64       `json:"next"`
}

func auditServer(ctx context.Context, c *client, sel selection) ([]auditRow, error) {
	var rows []auditRow
	for _, st := range sel.streams {
		from := uint64(0)
		for {
			var tr serverTrail
			q := url.Values{"from": {strconv.FormatUint(from, 10)}, "limit": {"1000"}}
			err := c.do(ctx, http.MethodGet, "/v1/audit/streams/"+url.PathEscape(st), q, &tr)
			if err != nil {
				if strings.Contains(err.Error(), "not_found") {
					break
				}
				return nil, err
			}
			for _, ev := range tr.Events {
				row := auditRow{Position: ev.Position, Committed: ev.Committed, Stream: ev.Stream, Revision: ev.Revision, EventID: ev.EventID,
					Type: ev.Type, PrevHash: ev.PrevHash, Hash: ev.Hash, HashOK: ev.HashOK, LinkOK: ev.LinkOK, Payload: ev.Payload}
				env := &subsidyv1.Envelope{}
				if protojson.Unmarshal(ev.Envelope, env) == nil {
					row.Source = env.GetSource()
					if env.GetOccurredAt() != nil {
						t := env.GetOccurredAt().AsTime()
						row.Occurred = &t
					}
				}
				if m, err := payloadFromJSON(ev.Type, ev.Payload); err == nil {
					row.RuleSet, row.Reasons, row.Checks = reasonsOf(m)
				}
				rows = append(rows, row)
			}
			if tr.Next == nil {
				break
			}
			from = *tr.Next
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Position < rows[j].Position })
	return rows, nil
}

func payloadFromJSON(typ string, b json.RawMessage) (proto.Message, error) {
	m, err := codec.Payload(events.EventData{Type: typ})
	if err != nil {
		return nil, err
	}
	return m, protojson.Unmarshal(b, m)
}

func writeAudit(w io.Writer, format, what string, rows []auditRow) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Timeline string     `json:"timeline"`
			Events   []auditRow `json:"events"`
		}{what, rows})
	case "csv":
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"position", "committed", "occurred_at", "stream", "revision", "event_id", "type", "source", "rule_set_version", "reasons", "prev_hash", "hash", "hash_ok", "link_ok"})
		for _, r := range rows {
			occ := ""
			if r.Occurred != nil {
				occ = r.Occurred.Format(time.RFC3339Nano)
			}
			_ = cw.Write([]string{strconv.FormatUint(uint64(r.Position), 10), r.Committed.Format(time.RFC3339Nano), occ, r.Stream,
				strconv.FormatUint(r.Revision, 10), r.EventID, r.Type, r.Source, r.RuleSet, strings.Join(r.Reasons, "; "),
				r.PrevHash, r.Hash, strconv.FormatBool(r.HashOK), strconv.FormatBool(r.LinkOK)})
		}
		cw.Flush()
		return cw.Error()
	}
	fmt.Fprintf(w, "timeline of %s: %d events\n\n", what, len(rows))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POSITION\tCOMMITTED (UTC)\tOCCURRED\tSTREAM\tREV\tTYPE\tSOURCE\tREASONS\tHASH\tLINK")
	for _, r := range rows {
		link := "ok"
		switch {
		case !r.HashOK:
			link = "BROKEN: content"
		case !r.LinkOK:
			link = "BROKEN: prev"
		}
		stream := r.Stream
		if len(stream) > 28 {
			stream = stream[:25] + "…"
		}
		occurred := "-"
		if r.Occurred != nil {
			occurred = r.Occurred.In(chinaTime).Format("2006-01-02")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%.12s\t%s\n", r.Position, r.Committed.UTC().Format("2006-01-02 15:04:05"), occurred, stream, r.Revision,
			strings.TrimPrefix(r.Type, "subsidy.v1."), r.Source, strings.Join(r.Reasons, "; "), r.Hash, link)
	}
	return tw.Flush()
}
