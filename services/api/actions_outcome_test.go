package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cqhrss/subsidyledger/events/facts"
	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/projections/trainee"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/api/apitest"
)

// How each maker/checker action's outcome becomes its response, with the
// ledger's intake replaced by intake: a Submitter that answers from a
// script (the real one, package submit, needs NATS and a running ledger;
// services/ledgerd tests it end to end). The rest is the fixture's:
// the generated history, the matrix's world and tokens.

// intake is a Submitter whose outcomes a test scripts. It records every
// fact it is handed.
type intake struct {
	mu     sync.Mutex
	got    []submitted
	answer func(ctx context.Context, s submitted) (*subsidyv1.IntakeOutcome, error)
}

// submitted is one call of Submit.
type submitted struct {
	source, msgID string
	fact          proto.Message
	// wait is the time left until ctx's deadline when Submit was called
	// (0: no deadline).
	wait time.Duration
}

func (f *intake) Submit(ctx context.Context, source, msgID string, fact proto.Message) (*subsidyv1.IntakeOutcome, error) {
	s := submitted{source: source, msgID: msgID, fact: proto.Clone(fact)}
	if d, ok := ctx.Deadline(); ok {
		s.wait = time.Until(d)
	}
	f.mu.Lock()
	f.got = append(f.got, s)
	answer := f.answer
	f.mu.Unlock()
	if answer == nil {
		return nil, errors.New("intake: no outcome scripted")
	}
	return answer(ctx, s)
}

// script sets the answer to every following Submit and forgets what was
// submitted so far.
func (f *intake) script(answer func(ctx context.Context, s submitted) (*subsidyv1.IntakeOutcome, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer, f.got = answer, nil
}

// take returns what was submitted since the last take or script.
func (f *intake) take() []submitted {
	f.mu.Lock()
	defer f.mu.Unlock()
	got := f.got
	f.got = nil
	return got
}

// actionNow is the handlers' clock: 01:30 on 21 May in China Standard
// Time, still 20 May in UTC.
var actionNow = time.Date(2026, 5, 20, 17, 30, 0, 0, time.UTC)

// intakeHandler is the API on the fixture with the matrix's tokens, one
// more municipal token whose name is no official id ("anon-token"), and
// sub as the intake.
func intakeHandler(t *testing.T, w world, sub Submitter, wait time.Duration) http.Handler {
	t.Helper()
	tokens := append(matrixTokens(w), Token{SHA256: HashToken("anon-token"), Scope: "municipal", Name: "市人社局 fund office"})
	scope, err := TokenScope(tokens)
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{Projections: fx.set, Store: fx.store, Scope: scope, Actions: sub, ActionWait: wait,
		Now: func() time.Time { return actionNow }, Keyer: actionKeyer})
}

// actionKeyer keys the actions' idempotency keys, as ledgerd's person-key
// secret does.
var actionKeyer = func() *person.Keyer {
	k, err := person.NewKeyer([]byte("the action keys' test secret, 32+ bytes"))
	if err != nil {
		panic(err)
	}
	return k
}()

// actionCase is one action route as a caller who may take it takes it,
// and what the ledger must be handed.
type actionCase struct {
	action     string // ActionResponse.Action
	pattern    string // the route, for the OpenAPI document
	path, body string
	token      string
	official   string // the token's official
	ent, claw  string // the response's entitlement_id and clawback_id
	source     string
	fact       proto.Message
	msgID      string
}

// wantMsgID is the documented shape of an action's idempotency key,
// written out again here so that a change of it (which would make a retry
// across an upgrade record twice) fails.
func wantMsgID(action, target string, parts ...string) string {
	h := actionKeyer.Sum("api action idempotency keys", []byte(strings.Join(parts, "\x00")))
	return "api/" + action + "/" + target + "/" + hex.EncodeToString(h[:12])
}

// TestActionKeysNeedTheSecret: an action's idempotency key cannot be
// computed without the person-key secret (found by review: it was a plain
// hash of the official, amount and reason, so any source that may publish
// could publish under it first and JetStream would drop the official's
// action as a duplicate), and another secret gives another key.
func TestActionKeysNeedTheSecret(t *testing.T) {
	parts := "muni-official-1"
	plain := sha256.Sum256([]byte(parts))
	other, err := person.NewKeyer([]byte("another deployment's secret, 32+ bytes"))
	if err != nil {
		t.Fatal(err)
	}
	got := actionKeyer.Sum("api action idempotency keys", []byte(parts))
	if got == plain || got == other.Sum("api action idempotency keys", []byte(parts)) || got == actionKeyer.Sum("another purpose", []byte(parts)) {
		t.Errorf("the action key's hash %x is the plain hash or another secret's or purpose's", got)
	}
	if w := wantMsgID("confirm", "e", parts); strings.Contains(w, hex.EncodeToString(plain[:12])) {
		t.Errorf("key %s holds the plain hash", w)
	}
}

// clawbackEntitlement is the entitlement w.claw was raised on, read from
// the trainee's status.
func clawbackEntitlement(t *testing.T, claw string) string {
	t.Helper()
	run, _ := fx.set.Runner(trainee.Name)
	m := run.Current().(*trainee.Model)
	_, key, ok := m.ClawbackOwner(claw)
	if !ok {
		t.Fatalf("clawback %s has no owner", claw)
	}
	st, _ := m.Get(key)
	for _, e := range st.Entitlements {
		if e.Clawback != nil && e.Clawback.ClawbackID == claw {
			return e.EntitlementID
		}
	}
	t.Fatalf("clawback %s is on none of its trainee's entitlements", claw)
	return ""
}

func actionCases(t *testing.T, w world) []actionCase {
	t.Helper()
	today := &subsidyv1.Date{Year: 2026, Month: 5, Day: 21} // actionNow in CST
	clawEnt := clawbackEntitlement(t, w.claw)
	const reason = "机构已注销" // writeOffBody's and writeOffApprove's
	return []actionCase{{
		action: "confirm", pattern: "/v1/entitlements/{id}/confirm",
		path: "/v1/entitlements/" + w.entA + "/confirm", token: "a-token", official: "a-official-1", ent: w.entA,
		source: facts.SourceDistrict,
		fact:   &subsidyv1.EntitlementConfirmed{EntitlementId: w.entA, OfficialId: "a-official-1", ConfirmedOn: today},
		msgID:  wantMsgID("confirm", w.entA, "a-official-1"),
	}, {
		action: "approve", pattern: "/v1/entitlements/{id}/approve",
		path: "/v1/entitlements/" + w.entA + "/approve", token: "muni-token", official: "muni-official-1", ent: w.entA,
		source: facts.SourceDistrict,
		fact:   &subsidyv1.EntitlementApproved{EntitlementId: w.entA, OfficialId: "muni-official-1", ApprovedOn: today},
		msgID:  wantMsgID("approve", w.entA, "muni-official-1"),
	}, {
		action: "request_write_off", pattern: "/v1/clawbacks/{id}/write-off/request",
		path: "/v1/clawbacks/" + w.claw + "/write-off/request", body: writeOffBody, token: "muni-token", official: "muni-official-1",
		ent: clawEnt, claw: w.claw, source: facts.SourceBureau,
		fact:  &subsidyv1.WriteOffRequested{ClawbackId: w.claw, AmountFen: 100, Reason: reason, OfficialId: "muni-official-1"},
		msgID: wantMsgID("request-write-off", w.claw, "muni-official-1", "100", reason),
	}, {
		action: "approve_write_off", pattern: "/v1/clawbacks/{id}/write-off/approve",
		path: "/v1/clawbacks/" + w.claw + "/write-off/approve", body: writeOffApprove, token: "muni-token", official: "muni-official-1",
		ent: clawEnt, claw: w.claw, source: facts.SourceBureau,
		fact: &subsidyv1.ClawbackWrittenOff{ClawbackId: w.claw, AmountFen: 100, Reason: reason,
			RequestedBy: "someone-else", ApprovedBy: "muni-official-1"},
		msgID: wantMsgID("approve-write-off", w.claw, "muni-official-1", "100", reason, "someone-else"),
	}}
}

// strict decodes b into a T, refusing fields T does not have.
func strict[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	return v
}

// checkSubmitted checks that exactly one fact was submitted, and that it
// is c's fact, from c's source, under c's message id, and a fact the
// intake takes from that source.
func checkSubmitted(t *testing.T, c actionCase, got []submitted) {
	t.Helper()
	if len(got) != 1 {
		t.Fatalf("%d submissions; want 1", len(got))
	}
	s := got[0]
	if s.source != c.source || s.msgID != c.msgID {
		t.Errorf("submitted from %q as %q; want %q, %q", s.source, s.msgID, c.source, c.msgID)
	}
	if !proto.Equal(s.fact, c.fact) {
		t.Errorf("submitted fact %T {%v}; want {%v}", s.fact, prototext.Format(s.fact), prototext.Format(c.fact))
	}
	ofSource := false
	for _, k := range facts.ByName(s.fact.ProtoReflect().Descriptor().FullName()) {
		ofSource = ofSource || k.Source == s.source
	}
	if !ofSource {
		t.Errorf("%T is no inbound fact of source %q (package submit refuses it)", s.fact, s.source)
	}
	if err := facts.Validate(s.fact); err != nil {
		t.Errorf("the intake would refuse the fact: %v", err)
	}
}

func openAPI(t *testing.T) *apitest.Validator {
	t.Helper()
	return &apitest.Validator{Doc: getJSON[map[string]any](t, "/v1/openapi.json", "")}
}

func checkDocumented(t *testing.T, v *apitest.Validator, c actionCase, r reply) {
	t.Helper()
	var body any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	if err := v.Response(c.pattern, "post", strconv.Itoa(r.code), body); err != nil {
		t.Errorf("%d response does not match the OpenAPI document: %v", r.code, err)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q; want no-store", cc)
	}
}

// TestActionAccepted: an accepted outcome answers 200 with the action,
// its targets, the acting official of the credential, the message id and
// where the ledger recorded the fact; a repeated request is the same
// message, answered as a duplicate.
func TestActionAccepted(t *testing.T) {
	w := pickWorld(t)
	f := &intake{}
	h := intakeHandler(t, w, f, time.Minute)
	v := openAPI(t)
	for i, c := range actionCases(t, w) {
		t.Run(c.action, func(t *testing.T) {
			for _, dup := range []bool{false, true} {
				pos, stream, rev := uint64(90001+10*i), fmt.Sprintf("stream-%d-of-%s", i, c.action), uint64(40+i)
				f.script(func(_ context.Context, s submitted) (*subsidyv1.IntakeOutcome, error) {
					return &subsidyv1.IntakeOutcome{MessageId: s.msgID, Subject: "subsidy.outcome.x", Accepted: true,
						Position: pos, Stream: stream, Revision: rev, Duplicate: dup}, nil
				})
				r := do(h, "POST", c.path, c.token, c.body)
				if r.code != http.StatusOK {
					t.Fatalf("duplicate=%v: %d %s; want 200", dup, r.code, r.body)
				}
				checkSubmitted(t, c, f.take())
				got := strict[ActionResponse](t, r.body)
				want := ActionResponse{Action: c.action, EntitlementID: c.ent, ClawbackID: c.claw, OfficialID: c.official,
					MessageID: c.msgID, Position: pos, Stream: stream, Revision: rev, Duplicate: dup}
				if got != want {
					t.Errorf("duplicate=%v: body %+v\nwant %+v", dup, got, want)
				}
				if p := r.header.Get("X-Ledger-Position"); p != strconv.FormatUint(pos, 10) {
					t.Errorf("X-Ledger-Position %q; want %d", p, pos)
				}
				if c.claw == "" && bytes.Contains(r.body, []byte("clawback_id")) {
					t.Errorf("an entitlement action names a clawback: %s", r.body)
				}
				checkDocumented(t, v, c, r)
			}
		})
	}

	// The official comes from the credential, and is part of the key:
	// another official confirming is another message; so is another
	// amount. (A confirm body naming an official is refused:
	// TestActionRefusedBeforeSubmit.)
	accept := func(_ context.Context, s submitted) (*subsidyv1.IntakeOutcome, error) {
		return &subsidyv1.IntakeOutcome{MessageId: s.msgID, Accepted: true, Position: 1}, nil
	}
	f.script(accept)
	cs := actionCases(t, w)
	confirm, request := cs[0], cs[2]
	for _, k := range []struct {
		token, path, body, official, msgID string
	}{
		{"muni-token", confirm.path, "", "muni-official-1", wantMsgID("confirm", w.entA, "muni-official-1")},
		{"a-token", confirm.path, "{}", "a-official-1", confirm.msgID},
		{"muni-token", request.path, `{"amount_fen": 200, "reason": "机构已注销"}`, "muni-official-1",
			wantMsgID("request-write-off", w.claw, "muni-official-1", "200", "机构已注销")},
	} {
		r := do(h, "POST", k.path, k.token, k.body)
		got := f.take()
		if r.code != http.StatusOK || len(got) != 1 {
			t.Fatalf("%s %s: %d %s, %d submissions", k.token, k.path, r.code, r.body, len(got))
		}
		if got[0].msgID != k.msgID || strict[ActionResponse](t, r.body).MessageID != k.msgID {
			t.Errorf("%s %s %s: message id %q, answered %s; want %q", k.token, k.path, k.body, got[0].msgID, r.body, k.msgID)
		}
		official := ""
		switch m := got[0].fact.(type) {
		case *subsidyv1.EntitlementConfirmed:
			official = m.GetOfficialId()
		case *subsidyv1.WriteOffRequested:
			official = m.GetOfficialId()
		}
		if official != k.official {
			t.Errorf("%s %s: fact's official %q; want %q", k.token, k.path, official, k.official)
		}
	}
}

// wantConflict are the rejections that answer 409 (the target's state
// forbids the action); every other reason answers 422.
var wantConflict = map[subsidyv1.ReasonCode]bool{
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

// TestActionRejected: every reason the ledger may reject with, on every
// action: 409 conflict or 422 rejected, the ledger's detail as the
// message, the reason code and the rejection's position.
func TestActionRejected(t *testing.T) {
	w := pickWorld(t)
	f := &intake{}
	h := intakeHandler(t, w, f, time.Minute)
	v := openAPI(t)
	values := subsidyv1.ReasonCode(0).Descriptor().Values()
	for _, c := range actionCases(t, w) {
		t.Run(c.action, func(t *testing.T) {
			n409, n422 := 0, 0
			for i := range values.Len() {
				rc := subsidyv1.ReasonCode(values.Get(i).Number())
				if rc == subsidyv1.ReasonCode_REASON_CODE_UNSPECIFIED {
					continue
				}
				pos := 70000 + uint64(rc)
				detail := "the ledger refuses: " + rc.String()
				f.script(func(_ context.Context, s submitted) (*subsidyv1.IntakeOutcome, error) {
					return &subsidyv1.IntakeOutcome{MessageId: s.msgID, Accepted: false, Reason: rc, Detail: detail,
						Position: pos, Stream: "rejections", Revision: 9}, nil
				})
				r := do(h, "POST", c.path, c.token, c.body)
				checkSubmitted(t, c, f.take())
				status, code := http.StatusUnprocessableEntity, CodeRejected
				if wantConflict[rc] {
					status, code = http.StatusConflict, CodeConflict
					n409++
				} else {
					n422++
				}
				if r.code != status {
					t.Errorf("%s: %d %s; want %d", rc, r.code, r.body, status)
					continue
				}
				e := strict[ErrorBody](t, r.body).Error
				if e.Code != code || e.Message != detail || e.Reason != rc.String() || e.Position != pos {
					t.Errorf("%s: error %+v; want code %s, message %q, reason %s, position %d", rc, e, code, detail, rc, pos)
				}
				checkDocumented(t, v, c, r)
			}
			if n409 != len(wantConflict) || n422 == 0 {
				t.Errorf("%d reasons answered 409, %d 422; want %d and some", n409, n422, len(wantConflict))
			}
		})
	}
}

// TestActionTimeout: no outcome within ActionWait (not the request's
// minute) answers 504 and asks for a repeat; the cause is not shown.
func TestActionTimeout(t *testing.T) {
	w := pickWorld(t)
	f := &intake{}
	const wait = 150 * time.Millisecond
	h := intakeHandler(t, w, f, wait)
	v := openAPI(t)
	f.script(func(ctx context.Context, s submitted) (*subsidyv1.IntakeOutcome, error) {
		<-ctx.Done() // as package submit: no outcome came
		return nil, fmt.Errorf("submit: no outcome for %s yet: %w", s.msgID, ctx.Err())
	})
	for _, c := range actionCases(t, w) {
		t.Run(c.action, func(t *testing.T) {
			t0 := time.Now()
			r := do(h, "POST", c.path, c.token, c.body)
			took := time.Since(t0)
			got := f.take()
			checkSubmitted(t, c, got)
			if got[0].wait <= 0 || got[0].wait > wait {
				t.Errorf("Submit's context ends in %v; want within ActionWait %v", got[0].wait, wait)
			}
			if took < wait || took > 10*time.Second {
				t.Errorf("answered after %v; want about %v", took, wait)
			}
			if r.code != http.StatusGatewayTimeout {
				t.Fatalf("%d %s; want 504", r.code, r.body)
			}
			e := strict[ErrorBody](t, r.body).Error
			want := "the ledger has not answered yet: repeat the request (it is idempotent) or look at the entitlement"
			if c.claw != "" {
				want = "the ledger has not answered yet: repeat the request (it is idempotent) or look at the clawback"
			}
			if e.Code != CodeTimeout || e.Message != want || e.Reason != "" || e.Position != 0 {
				t.Errorf("error %+v; want timeout %q", e, want)
			}
			if bytes.Contains(r.body, []byte("no outcome")) || bytes.Contains(r.body, []byte(c.msgID)) {
				t.Errorf("the cause shows: %s", r.body)
			}
			checkDocumented(t, v, c, r)
		})
	}
}

// TestActionIntakeDown: a fact that could not be published answers 503
// "intake unavailable" (the cause is logged, not shown); a server
// without an intake answers 503 "not available" without trying.
func TestActionIntakeDown(t *testing.T) {
	w := pickWorld(t)
	f := &intake{}
	h := intakeHandler(t, w, f, time.Minute)
	none := matrixHandler(t, w) // no Actions
	v := openAPI(t)
	f.script(func(_ context.Context, s submitted) (*subsidyv1.IntakeOutcome, error) {
		return nil, fmt.Errorf("submit: publishing subsidy.in.%s: %w", s.source, errors.New("nats: connection closed"))
	})
	for _, c := range actionCases(t, w) {
		t.Run(c.action, func(t *testing.T) {
			r := do(h, "POST", c.path, c.token, c.body)
			checkSubmitted(t, c, f.take())
			if r.code != http.StatusServiceUnavailable {
				t.Fatalf("publish error: %d %s; want 503", r.code, r.body)
			}
			e := strict[ErrorBody](t, r.body).Error
			if e.Code != CodeUnavailable || e.Message != "the ledger's intake is unavailable" || e.Reason != "" || e.Position != 0 {
				t.Errorf("publish error: %+v", e)
			}
			if bytes.Contains(r.body, []byte("connection closed")) || bytes.Contains(r.body, []byte("subsidy.in")) {
				t.Errorf("the cause shows: %s", r.body)
			}
			checkDocumented(t, v, c, r)

			r = do(none, "POST", c.path, c.token, c.body)
			if r.code != http.StatusServiceUnavailable {
				t.Fatalf("no intake: %d %s; want 503", r.code, r.body)
			}
			if e := strict[ErrorBody](t, r.body).Error; e.Code != CodeUnavailable || e.Message != "actions are not available on this server" {
				t.Errorf("no intake: %+v", e)
			}
		})
	}
}

// TestActionRefusedBeforeSubmit: callers who may not act, targets out of
// scope or unknown, and bodies not of the documented fields are refused
// by the API: nothing reaches the ledger.
func TestActionRefusedBeforeSubmit(t *testing.T) {
	w := pickWorld(t)
	f := &intake{}
	h := intakeHandler(t, w, f, time.Minute)
	f.script(func(_ context.Context, s submitted) (*subsidyv1.IntakeOutcome, error) {
		return &subsidyv1.IntakeOutcome{MessageId: s.msgID, Accepted: true, Position: 1}, nil
	})
	type refusal struct {
		why, token, path, body string
		status                 int
		code                   Code
	}
	for _, c := range actionCases(t, w) {
		t.Run(c.action, func(t *testing.T) {
			rs := []refusal{
				{"no token", "", c.path, c.body, http.StatusUnauthorized, CodeUnauthenticated},
				{"unknown token", "guessed-token", c.path, c.body, http.StatusUnauthorized, CodeUnauthenticated},
				{"auditor", "audit-token", c.path, c.body, http.StatusForbidden, CodeForbidden},
				{"institution", "x-token", c.path, c.body, http.StatusForbidden, CodeForbidden},
				{"no official", "anon-token", c.path, c.body, http.StatusForbidden, CodeForbidden},
			}
			if c.claw == "" {
				rs = append(rs,
					refusal{"another district's entitlement", "b-token", c.path, c.body, http.StatusNotFound, CodeNotFound},
					refusal{"no such entitlement", "muni-token", strings.Replace(c.path, w.entA, fakeEntitlement, 1), c.body, http.StatusNotFound, CodeNotFound},
					refusal{"an official in the body", "muni-token", c.path, `{"official_id": "forged"}`, http.StatusBadRequest, CodeBadRequest},
					refusal{"not JSON", "muni-token", c.path, "confirmed_on=2026-01-01", http.StatusBadRequest, CodeBadRequest},
					refusal{"two objects", "muni-token", c.path, "{} {}", http.StatusBadRequest, CodeBadRequest})
			} else {
				rs = append(rs,
					refusal{"district A (municipal only)", "a-token", c.path, c.body, http.StatusForbidden, CodeForbidden},
					refusal{"district B (municipal only)", "b-token", c.path, c.body, http.StatusForbidden, CodeForbidden},
					refusal{"no such clawback", "muni-token", strings.Replace(c.path, w.claw, fakeEntitlement, 1), c.body, http.StatusNotFound, CodeNotFound},
					refusal{"no body", "muni-token", c.path, "", http.StatusBadRequest, CodeBadRequest},
					refusal{"an official in the body", "muni-token", c.path,
						strings.Replace(c.body, "{", `{"official_id": "forged", `, 1), http.StatusBadRequest, CodeBadRequest},
					refusal{"not JSON", "muni-token", c.path, "amount_fen=100", http.StatusBadRequest, CodeBadRequest},
					refusal{"two objects", "muni-token", c.path, c.body + " " + c.body, http.StatusBadRequest, CodeBadRequest},
					refusal{"bytes after the object", "muni-token", c.path, c.body + " x", http.StatusBadRequest, CodeBadRequest})
			}
			for _, x := range rs {
				r := do(h, "POST", x.path, x.token, x.body)
				if got := f.take(); len(got) != 0 {
					t.Errorf("%s: %d facts submitted (%s); want none", x.why, len(got), got[0].msgID)
				}
				if r.code != x.status {
					t.Errorf("%s: %d %s; want %d", x.why, r.code, r.body, x.status)
					continue
				}
				if e := strict[ErrorBody](t, r.body).Error; e.Code != x.code || e.Reason != "" {
					t.Errorf("%s: error %+v; want code %s", x.why, e, x.code)
				}
			}
			// The same caller and target otherwise do get through (and,
			// for an action without a body, with an empty object too).
			bodies := []string{c.body, " " + c.body + "\n"}
			if c.claw == "" {
				bodies = append(bodies, "{}", " { }\n")
			}
			for _, body := range bodies {
				if r := do(h, "POST", c.path, c.token, body); r.code != http.StatusOK || len(f.take()) != 1 {
					t.Errorf("the allowed request with body %q: %d %s", body, r.code, r.body)
				}
			}
		})
	}
}

// TestCheckerIsMakerIsTheLedgers: the API does not check maker against
// checker itself: it submits the approval, and the ledger's rejection
// (recorded in the log, so the refused attempt is on the audit trail)
// answers 409 with the reason. The intake here applies rules 12 and 14's
// one-official check as the ledger's rules do (events/rules).
func TestCheckerIsMakerIsTheLedgers(t *testing.T) {
	w := pickWorld(t)
	f := &intake{}
	h := intakeHandler(t, w, f, time.Minute)
	confirmedBy := map[string]string{}
	pos := uint64(100)
	f.script(func(_ context.Context, s submitted) (*subsidyv1.IntakeOutcome, error) {
		pos++
		reject := func(rc subsidyv1.ReasonCode) (*subsidyv1.IntakeOutcome, error) {
			return &subsidyv1.IntakeOutcome{MessageId: s.msgID, Reason: rc, Detail: "one official may not be both", Position: pos}, nil
		}
		switch m := s.fact.(type) {
		case *subsidyv1.EntitlementConfirmed:
			confirmedBy[m.GetEntitlementId()] = m.GetOfficialId()
		case *subsidyv1.EntitlementApproved:
			if confirmedBy[m.GetEntitlementId()] == m.GetOfficialId() {
				return reject(subsidyv1.ReasonCode_REASON_CODE_CHECKER_IS_MAKER)
			}
		case *subsidyv1.ClawbackWrittenOff:
			if m.GetRequestedBy() == m.GetApprovedBy() {
				return reject(subsidyv1.ReasonCode_REASON_CODE_WRITE_OFF_SAME_OFFICIAL)
			}
		}
		return &subsidyv1.IntakeOutcome{MessageId: s.msgID, Accepted: true, Position: pos}, nil
	})
	step := func(what, token, path, body string, status int, reason subsidyv1.ReasonCode, check func(proto.Message) bool) {
		t.Helper()
		r := do(h, "POST", path, token, body)
		got := f.take()
		if len(got) != 1 || !check(got[0].fact) {
			t.Fatalf("%s: submitted %v", what, got)
		}
		if r.code != status {
			t.Fatalf("%s: %d %s; want %d", what, r.code, r.body, status)
		}
		if status != http.StatusOK {
			if e := strict[ErrorBody](t, r.body).Error; e.Code != CodeConflict || e.Reason != reason.String() || e.Position != pos {
				t.Errorf("%s: error %+v; want conflict %s at %d", what, e, reason, pos)
			}
		}
	}
	by := func(official string) func(proto.Message) bool {
		return func(m proto.Message) bool {
			msg := m.ProtoReflect()
			for _, name := range []protoreflect.Name{"official_id", "approved_by"} {
				if fd := msg.Descriptor().Fields().ByName(name); fd != nil && msg.Get(fd).String() == official {
					return true
				}
			}
			return false
		}
	}
	confirm, approve := "/v1/entitlements/"+w.entA+"/confirm", "/v1/entitlements/"+w.entA+"/approve"
	step("municipal confirms", "muni-token", confirm, "", http.StatusOK, 0, by("muni-official-1"))
	step("municipal approves what it confirmed", "muni-token", approve, "", http.StatusConflict,
		subsidyv1.ReasonCode_REASON_CODE_CHECKER_IS_MAKER, by("muni-official-1"))
	step("district A approves", "a-token", approve, "", http.StatusOK, 0, by("a-official-1"))
	step("municipal approves its own write-off request", "muni-token", "/v1/clawbacks/"+w.claw+"/write-off/approve",
		`{"amount_fen": 100, "reason": "机构已注销", "requested_by": "muni-official-1"}`, http.StatusConflict,
		subsidyv1.ReasonCode_REASON_CODE_WRITE_OFF_SAME_OFFICIAL, func(m proto.Message) bool {
			wo, ok := m.(*subsidyv1.ClawbackWrittenOff)
			return ok && wo.GetRequestedBy() == "muni-official-1" && wo.GetApprovedBy() == "muni-official-1"
		})
}
