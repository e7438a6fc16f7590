package api

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/scorecard"
	"github.com/cqhrss/subsidyledger/projections/trainee"
)

// AuditEvent is one stored event as the audit trail shows it. PrevHash and
// Hash are the event's hash link (hex); HashOK says that SHA-256 over the
// previous hash and the event (events.LinkHash) gives Hash, LinkOK that
// PrevHash is the Hash of the stream's previous event. Envelope and
// Payload are protobuf's canonical JSON.
type AuditEvent struct {
	Position events.Position `json:"position"`
	Stream   string          `json:"stream"`
	Revision uint64          `json:"revision"`
	EventID  string          `json:"event_id"`
	Type     string          `json:"type"`
	// Committed is when the store committed the event.
	Committed time.Time       `json:"committed"`
	PrevHash  string          `json:"prev_hash"`
	Hash      string          `json:"hash"`
	HashOK    bool            `json:"hash_ok"`
	LinkOK    bool            `json:"link_ok"`
	Envelope  json.RawMessage `json:"envelope"`
	Payload   json.RawMessage `json:"payload"`
}

// AuditTrail is GET /v1/audit/streams/{stream}.
type AuditTrail struct {
	Stream string       `json:"stream"`
	Events []AuditEvent `json:"events"`
	// Verified is true when every link shown checks out.
	Verified bool `json:"verified"`
	// Next is the revision to continue from, absent at the end.
	Next *uint64 `json:"next,omitempty"`
}

// AuditLog is GET /v1/audit/log: the whole log in position order, a page
// at a time, for those who read everything. A downstream consumer of the
// outbound feed fills a gap from it (a feed with --feed-max-bytes or
// --feed-max-events drops its oldest events).
type AuditLog struct {
	Events []AuditEvent `json:"events"`
	// Verified is true when every event's hash checks out and each links
	// to its stream's previous event.
	Verified bool `json:"verified"`
	// Next is the position to read after for the next page (the last
	// event's), absent when the page reached the end of the log.
	Next *events.Position `json:"next,omitempty"`
}

var pj = protojson.MarshalOptions{UseProtoNames: true}

func auditEvent(rec events.RecordedEvent, prev *events.Hash) AuditEvent {
	a := AuditEvent{Position: rec.Position, Stream: rec.Stream, Revision: rec.Revision, EventID: rec.ID.String(), Type: rec.Type,
		Committed: rec.Created, PrevHash: hex.EncodeToString(rec.PrevHash[:]), Hash: hex.EncodeToString(rec.Hash[:]),
		Envelope: json.RawMessage("null"), Payload: json.RawMessage("null")}
	a.HashOK = events.LinkHash(rec.PrevHash, rec.Stream, rec.Revision, rec.EventData) == rec.Hash
	a.LinkOK = prev != nil && *prev == rec.PrevHash
	if env, err := codec.Envelope(rec.EventData); err == nil {
		if b, err := pj.Marshal(env); err == nil {
			a.Envelope = b
		}
	}
	if p, err := codec.Payload(rec.EventData); err == nil {
		if b, err := pj.Marshal(p); err == nil {
			a.Payload = b
		}
	}
	return a
}

// allowedStream applies the scope to a stream by its category (see package
// rules for the streams): municipal and auditor read every stream; a
// district reads the trainees, institutions and funds of its unit, every
// evaluation institution's fee schedules (public by the programme's rules,
// and its trainees are assessed anywhere) and the reference streams; an
// institution reads its own stream, its fee schedules and the reference
// streams, but no trainee's stream (a person's whole history names the
// other institutions the person dealt with; GET /v1/trainees/{key} shows
// it the records that are its own).
func (s *server) allowedStream(r *http.Request, sc Scope, stream string) bool {
	if sc.readsAll() {
		return true
	}
	cat, rest, _ := strings.Cut(stream, "-")
	switch cat {
	case "reference", "target":
		return true
	case "trainee":
		if sc.Role == RoleInstitution {
			return false
		}
		m, _, err := modelOf[*trainee.Model](s, r, trainee.Name)
		if err != nil {
			return false
		}
		st, ok := m.Get(rest)
		return ok && allowedStatus(sc, &st)
	case "institution":
		if sc.Role == RoleInstitution {
			return rest == sc.Institution
		}
		m, _, err := modelOf[*scorecard.Model](s, r, scorecard.Name)
		if err != nil {
			return false
		}
		rec, cur, ok := m.UnitOf(rest)
		return ok && (rec == sc.Unit || cur == sc.Unit)
	case "fee":
		return sc.Role == RoleDistrict || rest == sc.Institution
	case "fund":
		if sc.Role != RoleDistrict {
			return false
		}
		// fund-<year>-<unit>
		_, unit, ok := strings.Cut(rest, "-")
		return ok && (unit == sc.Unit || s.currentUnit(unit) == sc.Unit)
	}
	return false
}

// currentUnit rolls a unit code up to today's unit (with the live
// scorecard model's unit table).
func (s *server) currentUnit(code string) string {
	run, ok := s.cfg.Projections.Runner(scorecard.Name)
	if !ok {
		return code
	}
	m, ok := projections.CurrentOf[*scorecard.Model](run)
	if !ok {
		return code
	}
	return m.CurrentUnit(code)
}

func (s *server) auditStream(r *http.Request, sc Scope) (result, error) {
	stream := r.PathValue("stream")
	if !s.allowedStream(r, sc, stream) {
		return result{}, errorf(CodeNotFound, "no such stream in your scope")
	}
	from, err := intParam(r, "from", 0, 0, 1<<62)
	if err != nil {
		return result{}, err
	}
	limit, err := intParam(r, "limit", 200, 1, 1000)
	if err != nil {
		return result{}, err
	}
	prev, err := s.prevHash(r.Context(), stream, uint64(from))
	if err != nil {
		return result{}, err
	}
	recs, err := s.cfg.Store.ReadStream(r.Context(), stream, events.Forwards, uint64(from), limit+1)
	if err != nil {
		return result{}, err
	}
	out := AuditTrail{Stream: stream, Events: []AuditEvent{}, Verified: true}
	if len(recs) > limit {
		n := recs[limit].Revision
		out.Next = &n
		recs = recs[:limit]
	}
	var pos events.Position
	for _, rec := range recs {
		a := auditEvent(rec, prev)
		out.Verified = out.Verified && a.HashOK && a.LinkOK
		out.Events = append(out.Events, a)
		h := rec.Hash
		prev = &h
		pos = rec.Position
	}
	return result{body: out, position: pos}, nil
}

func (s *server) auditEvent(r *http.Request, sc Scope) (result, error) {
	n, err := strconv.ParseUint(r.PathValue("position"), 10, 64)
	if err != nil || n == 0 {
		return result{}, errorf(CodeBadRequest, "position %q: want a positive whole number", r.PathValue("position"))
	}
	rec, err := s.eventInScope(r, sc, events.Position(n))
	if err != nil {
		return result{}, err
	}
	prev, _ := s.prevHash(r.Context(), rec.Stream, rec.Revision) // unread: the link shows as unchecked
	return result{body: auditEvent(rec, prev), position: rec.Position}, nil
}

// eventInScope reads the event at position p, if it is of a stream the
// scope may read; else the not-found error, the same whether there is no
// such event or it is another's.
func (s *server) eventInScope(r *http.Request, sc Scope, p events.Position) (events.RecordedEvent, error) {
	recs, err := s.cfg.Store.ReadAll(r.Context(), p-1, 1)
	if err != nil {
		return events.RecordedEvent{}, err
	}
	if len(recs) == 0 || recs[0].Position != p || !s.allowedStream(r, sc, recs[0].Stream) {
		return events.RecordedEvent{}, errorf(CodeNotFound, "no event at position %d in your scope", p)
	}
	return recs[0], nil
}

// prevHash returns the hash the event at revision rev of stream links to:
// the zero hash for the first, else its predecessor's (nil when the store
// has none).
func (s *server) prevHash(ctx context.Context, stream string, rev uint64) (*events.Hash, error) {
	if rev == 0 {
		return &events.Hash{}, nil
	}
	before, err := s.cfg.Store.ReadStream(ctx, stream, events.Forwards, rev-1, 1)
	if err != nil || len(before) != 1 {
		return nil, err
	}
	return &before[0].Hash, nil
}

func (s *server) auditLog(r *http.Request, sc Scope) (result, error) {
	if !sc.readsAll() {
		return result{}, errorf(CodeForbidden, "the whole log is for the municipal and auditor scopes; read a stream with /v1/audit/streams/{stream}")
	}
	after, err := intParam(r, "after", 0, 0, 1<<62)
	if err != nil {
		return result{}, err
	}
	limit, err := intParam(r, "limit", 200, 1, 1000)
	if err != nil {
		return result{}, err
	}
	recs, err := s.cfg.Store.ReadAll(r.Context(), events.Position(after), limit+1)
	if err != nil {
		return result{}, err
	}
	out := AuditLog{Events: []AuditEvent{}, Verified: true}
	if len(recs) > limit {
		recs = recs[:limit]
		next := recs[limit-1].Position
		out.Next = &next
	}
	// Each event's link is checked against its stream's previous event:
	// read from the store for the first of a stream on the page, then the
	// page's own.
	last := map[string]events.Hash{}
	pos := events.Position(after)
	for _, rec := range recs {
		var prev *events.Hash
		if h, ok := last[rec.Stream]; ok {
			prev = &h
		} else if prev, err = s.prevHash(r.Context(), rec.Stream, rec.Revision); err != nil {
			return result{}, err
		}
		a := auditEvent(rec, prev)
		out.Verified = out.Verified && a.HashOK && a.LinkOK
		out.Events = append(out.Events, a)
		last[rec.Stream] = rec.Hash
		pos = rec.Position
	}
	if len(recs) == 0 {
		// Read through the head at most: a consumer that keeps the
		// position would otherwise skip what is committed up to after.
		head, err := s.cfg.Store.Head(r.Context())
		if err != nil {
			return result{}, err
		}
		pos = min(pos, head)
	}
	return result{body: out, position: pos}, nil
}
