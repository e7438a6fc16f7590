package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/facts"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/projections/trainee"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// Maker/checker actions (rule 12 and rule 14's write-off). The API builds
// the fact with the acting official's id from the caller's credential
// (Scope.Official: never from the request body), hands it to the ledger's
// intake exactly as the district or bureau service would (Submitter), and
// answers with what the ledger recorded. Who may act:
//
//   - municipal: every action;
//   - district:<unit>: confirm and approve entitlements of its unit (the
//     entitlement's unit as recorded, or the unit that answers for it
//     today); write-offs are the municipal bureau's;
//   - auditor, institution: no action (403).
//
// A caller without an official id (a token whose name is not an official
// id and that sets no "official"; in --demo, a request without
// X-Ledger-Official) may not act (403). An entitlement or clawback the
// caller cannot see is "not found", with the same answer as an id that
// does not exist. The 403s above do not depend on the id, so they tell
// nothing about it either.

// Submitter hands an inbound fact to the ledger and waits for its outcome.
// ledgerd's is natsbus-backed (package submit): the fact is published on
// its inbound subject and the answer read from the outcome subject.
type Submitter interface {
	// Submit publishes fact (an inbound fact of the catalogue in
	// events/facts) as from source, with msgID as its idempotency key
	// (Nats-Msg-Id), and returns the ledger's outcome. A repeated msgID
	// is answered with the outcome of the first. It returns ctx.Err()
	// (wrapped) when no outcome arrived before ctx ended, and another
	// error when the fact could not be published.
	Submit(ctx context.Context, source, msgID string, fact proto.Message) (*subsidyv1.IntakeOutcome, error)
}

// ActionResponse is the answer of an accepted action.
type ActionResponse struct {
	// Action is confirm, approve, request_write_off or approve_write_off.
	Action        string `json:"action"`
	EntitlementID string `json:"entitlement_id"`
	ClawbackID    string `json:"clawback_id,omitempty"`
	// OfficialID is the acting official recorded in the fact.
	OfficialID string `json:"official_id"`
	// MessageID is the fact's idempotency key: the same request by the
	// same official gives the same key, so a retry records nothing new.
	MessageID string `json:"message_id"`
	// Position, Stream and Revision locate the recorded fact in the log.
	Position uint64 `json:"position"`
	Stream   string `json:"stream"`
	Revision uint64 `json:"revision"`
	// Duplicate is true when the request repeated one already recorded.
	Duplicate bool `json:"duplicate"`
}

// WriteOffRequest is the body of POST /v1/clawbacks/{id}/write-off/request.
type WriteOffRequest struct {
	AmountFen int64  `json:"amount_fen"`
	Reason    string `json:"reason"`
}

// WriteOffApproval is the body of POST /v1/clawbacks/{id}/write-off/approve:
// the pending request it approves (its official, amount and reason; the
// clawback's audit stream shows the WriteOffRequested event).
type WriteOffApproval struct {
	AmountFen   int64  `json:"amount_fen"`
	Reason      string `json:"reason"`
	RequestedBy string `json:"requested_by"`
}

// DefaultActionWait bounds the wait for the ledger's outcome of an action.
const DefaultActionWait = 15 * time.Second

func (s *server) actionRoutes() []route {
	pEnt := param{name: "id", in: "path", typ: "string", required: true, desc: "Entitlement id."}
	pClaw := param{name: "id", in: "path", typ: "string", required: true, desc: "Clawback id."}
	return []route{
		{method: "POST", pattern: "/v1/entitlements/{id}/confirm", id: "confirmEntitlement", action: true,
			summary:  "Confirm an entitlement (maker, rule 12) as the official of the credential, today (China Standard Time). Municipal, or the entitlement's district.",
			params:   []param{pEnt},
			response: ActionResponse{},
			handle: s.action(actionSpec{name: "confirm", source: facts.SourceDistrict, find: s.entitlementInScope,
				fact: func(r *http.Request, sc Scope, id string) (proto.Message, []string, error) {
					if err := noBody(r); err != nil {
						return nil, nil, err
					}
					return &subsidyv1.EntitlementConfirmed{EntitlementId: id, OfficialId: sc.Official, ConfirmedOn: s.today()}, nil, nil
				}})},
		{method: "POST", pattern: "/v1/entitlements/{id}/approve", id: "approveEntitlement", action: true,
			summary:  "Approve a confirmed entitlement (checker, rule 12; not the official who confirmed it) and open its public notice. Municipal, or the entitlement's district.",
			params:   []param{pEnt},
			response: ActionResponse{},
			handle: s.action(actionSpec{name: "approve", source: facts.SourceDistrict, find: s.entitlementInScope,
				fact: func(r *http.Request, sc Scope, id string) (proto.Message, []string, error) {
					if err := noBody(r); err != nil {
						return nil, nil, err
					}
					return &subsidyv1.EntitlementApproved{EntitlementId: id, OfficialId: sc.Official, ApprovedOn: s.today()}, nil, nil
				}})},
		{method: "POST", pattern: "/v1/clawbacks/{id}/write-off/request", id: "requestWriteOff", action: true,
			summary: "Request the write-off of (part of) a clawback's outstanding receivable, with a reason (maker, rule 14). Municipal only.",
			params:  []param{pClaw},
			request: WriteOffRequest{}, response: ActionResponse{},
			handle: s.action(actionSpec{name: "request_write_off", source: facts.SourceBureau, municipalOnly: true, find: s.clawbackInScope,
				fact: func(r *http.Request, sc Scope, id string) (proto.Message, []string, error) {
					var b WriteOffRequest
					if err := decodeBody(r, &b); err != nil {
						return nil, nil, err
					}
					return &subsidyv1.WriteOffRequested{ClawbackId: id, AmountFen: b.AmountFen, Reason: b.Reason, OfficialId: sc.Official},
						[]string{strconv.FormatInt(b.AmountFen, 10), b.Reason}, nil
				}})},
		{method: "POST", pattern: "/v1/clawbacks/{id}/write-off/approve", id: "approveWriteOff", action: true,
			summary: "Approve a pending write-off (checker, rule 14; not the official who requested it). Municipal only.",
			params:  []param{pClaw},
			request: WriteOffApproval{}, response: ActionResponse{},
			handle: s.action(actionSpec{name: "approve_write_off", source: facts.SourceBureau, municipalOnly: true, find: s.clawbackInScope,
				fact: func(r *http.Request, sc Scope, id string) (proto.Message, []string, error) {
					var b WriteOffApproval
					if err := decodeBody(r, &b); err != nil {
						return nil, nil, err
					}
					return &subsidyv1.ClawbackWrittenOff{ClawbackId: id, AmountFen: b.AmountFen, Reason: b.Reason, RequestedBy: b.RequestedBy, ApprovedBy: sc.Official},
						[]string{strconv.FormatInt(b.AmountFen, 10), b.Reason, b.RequestedBy}, nil
				}})},
	}
}

// actionSpec is what sets a maker/checker action apart.
type actionSpec struct {
	// name is ActionResponse.Action; with "-" for "_", the action of the
	// idempotency key (actionID).
	name string
	// source is the fact's source (facts.Source*).
	source string
	// municipalOnly: a district may not take the action (mayAct).
	municipalOnly bool
	// find looks the path's id up in the caller's scope and returns the
	// entitlement and clawback (if any) the response names.
	find func(r *http.Request, sc Scope, id string) (ent, claw string, err error)
	// fact builds the fact on the path's id, reading the request body if
	// the action takes one, and returns it with the parts of its
	// idempotency key after the official.
	fact func(r *http.Request, sc Scope, id string) (proto.Message, []string, error)
}

// action is the handler of a: it checks the caller's role and official,
// finds the target, builds the fact and submits it (act).
func (s *server) action(a actionSpec) func(*http.Request, Scope) (result, error) {
	key := strings.ReplaceAll(a.name, "_", "-")
	return func(r *http.Request, sc Scope) (result, error) {
		if err := s.mayAct(sc, a.municipalOnly); err != nil {
			return result{}, err
		}
		id := r.PathValue("id")
		ent, claw, err := a.find(r, sc, id)
		if err != nil {
			return result{}, err
		}
		fact, parts, err := a.fact(r, sc, id)
		if err != nil {
			return result{}, err
		}
		return s.act(r, a.name, a.source, s.actionID(key, id, append([]string{sc.Official}, parts...)...), fact,
			ActionResponse{Action: a.name, EntitlementID: ent, ClawbackID: claw, OfficialID: sc.Official})
	}
}

// mayAct checks what does not depend on the target: the role and the
// official.
func (s *server) mayAct(sc Scope, municipalOnly bool) error {
	switch {
	case sc.Role == RoleDistrict && municipalOnly:
		return errorf(CodeForbidden, "only the municipal scope may do this")
	case sc.Role != RoleMunicipal && sc.Role != RoleDistrict:
		return errorf(CodeForbidden, "the %s scope may not act", sc.Role)
	case sc.Official == "":
		return errorf(CodeForbidden, "this credential names no official: give the token an \"official\" id in the tokens file (in --demo, send %s)", OfficialHeader)
	}
	return nil
}

var errNoEntitlement = errorf(CodeNotFound, "no such entitlement in your scope")

// entitlementInScope finds the entitlement an action targets in the live
// trainee model (an actionSpec's find: it returns the entitlement's id and
// no clawback): "not found" unless the caller sees its trainee and, for a
// district, the entitlement is of its unit (a trainee seen through an
// enrolment in the unit may have an entitlement of another: answering
// "forbidden" there would tell that it exists, and where).
func (s *server) entitlementInScope(r *http.Request, sc Scope, id string) (ent, claw string, err error) {
	m, _, err := modelOf[*trainee.Model](s, r, trainee.Name)
	if err != nil {
		return "", "", err
	}
	key, ok := m.EntitlementOwner(id)
	if !ok {
		return "", "", errNoEntitlement
	}
	st, ok := m.Get(key)
	if !ok || !allowedStatus(sc, &st) {
		return "", "", errNoEntitlement
	}
	for _, e := range st.Entitlements {
		if e.EntitlementID != id {
			continue
		}
		if sc.Role == RoleDistrict && e.Unit.Code != sc.Unit && e.Unit.CurrentCode != sc.Unit {
			return "", "", errNoEntitlement
		}
		return e.EntitlementID, "", nil
	}
	return "", "", errNoEntitlement
}

func (s *server) today() *subsidyv1.Date {
	t := s.cfg.Now().In(cst)
	return refdata.D(t.Year(), t.Month(), t.Day()).Proto()
}

var errNoClawback = errorf(CodeNotFound, "no such clawback in your scope")

// clawbackInScope finds the clawback an action targets (an actionSpec's
// find: it returns the entitlement the clawback was raised on, and the
// clawback's id).
func (s *server) clawbackInScope(r *http.Request, sc Scope, id string) (ent, claw string, err error) {
	m, _, err := modelOf[*trainee.Model](s, r, trainee.Name)
	if err != nil {
		return "", "", err
	}
	ent, key, ok := m.ClawbackOwner(id)
	if !ok {
		return "", "", errNoClawback
	}
	if st, ok := m.Get(key); !ok || !allowedStatus(sc, &st) {
		return "", "", errNoClawback
	}
	return ent, id, nil
}

// decodeBody reads a JSON request body of at most 64 KiB with no unknown
// fields.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(CodeBadRequest, "request body: want a JSON object of the documented fields")
	}
	// One object and nothing after it: a second object or stray bytes
	// mean the client sent something other than it thinks.
	if _, err := dec.Token(); err != io.EOF {
		return errorf(CodeBadRequest, "request body: want one JSON object of the documented fields and nothing after it")
	}
	return nil
}

// noBody accepts an empty request body or an empty JSON object, for the
// actions that take nothing but their path and the caller's credential;
// anything else (an official or a date, say) is refused rather than
// silently ignored.
func noBody(r *http.Request) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return errorf(CodeBadRequest, "request body: cannot read it")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	var v struct{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil || dec.More() {
		return errorf(CodeBadRequest, "request body: this action takes none (an empty body or {}); the official is the credential's")
	}
	return nil
}

// actionID is the deterministic idempotency key of an action: the same
// action on the same target by the same official (with the same
// amount and reason) is the same message, so a retried request records
// nothing new and is answered with the first outcome. Its hash is keyed
// by the person-key secret (Config.Keyer: person.Keyer.Sum) where there
// is one, as ledgerd always has: JetStream drops a message whose
// Nats-Msg-Id it saw in the last two minutes whoever sent it, so a key
// anyone could compute would let any source that may publish suppress an
// official's confirmation or approval by publishing under its key first
// (found by review).
func (s *server) actionID(action, target string, parts ...string) string {
	data := []byte(strings.Join(parts, "\x00"))
	var h [32]byte
	if s.cfg.Keyer != nil {
		h = s.cfg.Keyer.Sum("api action idempotency keys", data)
	} else {
		h = sha256.Sum256(data)
	}
	return "api/" + action + "/" + target + "/" + hex.EncodeToString(h[:12])
}

// conflicts are the reasons that answer 409: the request is well-formed
// but the target's recorded state forbids it now (it is in another state,
// held, paid, already done, or the same official made it), so the same
// request may be right at another time. Other rejections are 422: the
// request itself breaks a rule (a missing reason, an amount past what is
// owed), whatever the state.
var conflicts = map[subsidyv1.ReasonCode]bool{
	subsidyv1.ReasonCode_REASON_CODE_WRONG_STATE:             true,
	subsidyv1.ReasonCode_REASON_CODE_NOT_CONFIRMED:           true,
	subsidyv1.ReasonCode_REASON_CODE_CHECKER_IS_MAKER:        true,
	subsidyv1.ReasonCode_REASON_CODE_WRITE_OFF_SAME_OFFICIAL: true,
	subsidyv1.ReasonCode_REASON_CODE_DUPLICATE_FACT:          true,
	subsidyv1.ReasonCode_REASON_CODE_CONFLICTING_DUPLICATE:   true,
	subsidyv1.ReasonCode_REASON_CODE_ALREADY_PAID:            true,
	subsidyv1.ReasonCode_REASON_CODE_ENTITLEMENT_HELD:        true,
	subsidyv1.ReasonCode_REASON_CODE_OBJECTION_PENDING:       true,
	subsidyv1.ReasonCode_REASON_CODE_NOT_APPROVED:            true,
	subsidyv1.ReasonCode_REASON_CODE_NOTICE_NOT_ELAPSED:      true,
	subsidyv1.ReasonCode_REASON_CODE_SUPERVISOR_HOLD:         true,
	subsidyv1.ReasonCode_REASON_CODE_OUTSIDE_NOTICE_WINDOW:   true,
	subsidyv1.ReasonCode_REASON_CODE_HOLD_NOT_LIFTABLE:       true,
	subsidyv1.ReasonCode_REASON_CODE_PAYMENT_IN_FLIGHT:       true,
	subsidyv1.ReasonCode_REASON_CODE_ALREADY_EXISTS:          true,
	subsidyv1.ReasonCode_REASON_CODE_ALREADY_SUBSIDISED:      true,
	subsidyv1.ReasonCode_REASON_CODE_INSTITUTION_SUSPENDED:   true,
}

// act submits the fact and translates the outcome.
func (s *server) act(r *http.Request, action, source, msgID string, fact proto.Message, ok ActionResponse) (result, error) {
	if s.cfg.Actions == nil {
		return result{}, errorf(CodeUnavailable, "actions are not available on this server")
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ActionWait)
	defer cancel()
	out, err := s.cfg.Actions.Submit(ctx, source, msgID, fact)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		target := "entitlement"
		if ok.ClawbackID != "" {
			target = "clawback"
		}
		return result{}, &Error{Code: CodeTimeout, Message: "the ledger has not answered yet: repeat the request (it is idempotent) or look at the " + target, Err: err}
	case err != nil:
		return result{}, &Error{Code: CodeUnavailable, Message: "the ledger's intake is unavailable", Err: err}
	}
	s.log.Info("action", "action", action, "official", ok.OfficialID, "message_id", msgID, "accepted", out.GetAccepted(),
		"reason", out.GetReason().String(), "position", out.GetPosition())
	if !out.GetAccepted() {
		code := CodeRejected
		if conflicts[out.GetReason()] {
			code = CodeConflict
		}
		return result{}, &Error{Code: code, Message: out.GetDetail(), Reason: out.GetReason().String(), Position: out.GetPosition()}
	}
	ok.MessageID, ok.Position, ok.Stream, ok.Revision, ok.Duplicate = msgID, out.GetPosition(), out.GetStream(), out.GetRevision(), out.GetDuplicate()
	return result{body: ok, position: events.Position(out.GetPosition())}, nil
}
