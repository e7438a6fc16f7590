package api

import (
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/anomaly"
	"github.com/cqhrss/subsidyledger/projections/fund"
	"github.com/cqhrss/subsidyledger/projections/notice"
	"github.com/cqhrss/subsidyledger/projections/quota"
	"github.com/cqhrss/subsidyledger/projections/scorecard"
	"github.com/cqhrss/subsidyledger/projections/trainee"
)

var (
	pAsOf = param{name: "as_of", in: "query", typ: "string",
		desc: "Answer as of a past moment: a log position (integer) or an RFC 3339 time (the state after every event committed by then)."}
	pFormat = param{name: "format", in: "query", typ: "string", enum: []string{"json", "csv"}, desc: "Response format."}
	pBOM    = param{name: "bom", in: "query", typ: "boolean", desc: "With format=csv: begin with a UTF-8 byte-order mark, so that Excel shows the Chinese text right when the file is opened (not for programs: some read the mark as part of the first column's name)."}
	pView   = param{name: "view", in: "query", typ: "string", enum: []string{"current", "recorded"},
		desc: "current (default): abolished units rolled up into their successors; recorded: units as recorded."}
	pUnit        = param{name: "unit", in: "query", typ: "string", desc: "Keep one management unit (e.g. cq-yuzhong). A district scope is always narrowed to its unit."}
	pInstitution = param{name: "institution", in: "query", typ: "string", desc: "Keep one institution."}
)

func (s *server) table() []route {
	return append(s.readRoutes(), s.actionRoutes()...)
}

func (s *server) readRoutes() []route {
	return []route{
		{method: "GET", pattern: "/v1/openapi.json", id: "getOpenAPI", summary: "This API's OpenAPI 3 document.", public: true,
			response: map[string]any{}, handle: s.openAPI},
		{method: "GET", pattern: "/v1/status", id: "getStatus", summary: "Position, lag and health of every read model.",
			response: StatusResponse{}, handle: s.status},
		{method: "POST", pattern: "/v1/projections/{name}/rebuild", id: "rebuildProjection", status: http.StatusAccepted,
			summary:  "Rebuild a read model from the start of the log in the background (municipal scope); the old state is served until the swap.",
			params:   []param{{name: "name", in: "path", typ: "string", required: true, desc: "Projection name (see /v1/status)."}},
			response: RebuildResponse{}, handle: s.rebuild},
		{method: "GET", pattern: "/v1/trainees", id: "listTrainees", asOf: true, csv: true,
			summary: "Trainees: by masked ID number (and masked name) for authorised users, or a page of all in the scope.",
			params: []param{
				{name: "masked_id", in: "query", typ: "string", desc: "Masked ID number, e.g. 5001**********123X."},
				{name: "masked_name", in: "query", typ: "string", desc: "Masked name, e.g. 张*三 (with masked_id)."},
				{name: "from", in: "query", typ: "integer", desc: "Cursor: the next value of a previous page (the number of the caller's trainees before it: a district or institution counts its own only)."},
				{name: "limit", in: "query", typ: "integer", desc: "Page size (default 100, at most 1000)."}, pAsOf, pFormat, pBOM},
			response: TraineeList{}, handle: s.trainees},
		{method: "GET", pattern: "/v1/trainees/{person_key}", id: "getTrainee", asOf: true,
			summary:  "Everything about one person key, with the reason and rule set of each decision.",
			params:   []param{{name: "person_key", in: "path", typ: "string", required: true, desc: "The 64-character person key."}, pAsOf},
			response: trainee.Status{}, handle: s.trainee},
		{method: "POST", pattern: "/v1/trainees/lookup", id: "lookupTrainee",
			summary:  "Find a trainee by plain resident ID number, given in the body (never in the URL, which is logged): the person key and the status, within the caller's scope. The access is logged (person key only).",
			request:  LookupRequest{},
			response: LookupResponse{}, handle: s.lookup},
		{method: "GET", pattern: "/v1/trainees/{person_key}/personal-data", id: "getPersonalData",
			summary:  "The trainee's personal data (ID number, name, payee account) from the encrypted vault: municipal scope, or a district for its unit's trainees. 410 erased after an erasure. The access is logged (person key only).",
			params:   []param{{name: "person_key", in: "path", typ: "string", required: true, desc: "The 64-character person key."}},
			response: PersonalData{}, gone: true, handle: s.personalData},
		{method: "DELETE", pattern: "/v1/trainees/{person_key}/personal-data", id: "erasePersonalData",
			summary:  "Crypto-shred the trainee's personal data (municipal scope): its data key and ciphertext are destroyed; the log, which holds only person keys, is untouched.",
			params:   []param{{name: "person_key", in: "path", typ: "string", required: true, desc: "The 64-character person key."}},
			response: ErasureResponse{}, handle: s.erasePersonalData},
		{method: "GET", pattern: "/v1/quota", id: "listQuotaYears", asOf: true, csv: true,
			summary:  "Target against trained, certified and subsidised for each year 2025–2030.",
			params:   []param{pView, pUnit, pAsOf, pFormat, pBOM},
			response: QuotaYears{}, handle: s.quotaYears},
		{method: "GET", pattern: "/v1/quota/{year}", id: "getQuota", asOf: true, csv: true,
			summary: "The year's quota dashboard: by month against the pro-rata target, by occupation, level and unit, pass rates, spend against budget. CSV: one row per unit and qualification.",
			params: []param{{name: "year", in: "path", typ: "integer", required: true, desc: "Calendar year."}, pView, pUnit,
				{name: "measure", in: "query", typ: "string", enum: []string{"trained", "certified"}, desc: "What counts toward the target (default trained)."}, pAsOf, pFormat, pBOM},
			response: QuotaResponse{}, handle: s.quota},
		{method: "GET", pattern: "/v1/institutions", id: "listInstitutions", asOf: true, csv: true,
			summary: "Institution scorecards, one row each.",
			params: []param{pUnit, {name: "kind", in: "query", typ: "string", enum: []string{"training", "evaluation"}, desc: "Keep one kind."},
				pAsOf, pFormat, pBOM},
			response: InstitutionList{}, handle: s.institutions},
		{method: "GET", pattern: "/v1/institutions/{id}", id: "getInstitution", asOf: true,
			summary:  "One institution's scorecard: pass rates by qualification, advances, reimbursements, clawbacks, flags, holds.",
			params:   []param{{name: "id", in: "path", typ: "string", required: true, desc: "Institution id."}, pAsOf},
			response: scorecard.Card{}, handle: s.institution},
		{method: "GET", pattern: "/v1/fund", id: "getFund", asOf: true, csv: true,
			summary:  "The fund ledger: double-entry balances by year and unit, the trial balance and the chart of accounts.",
			params:   []param{pView, pUnit, {name: "year", in: "query", typ: "integer", desc: "Keep one year."}, pAsOf, pFormat, pBOM},
			response: fund.Ledger{}, handle: s.fund},
		{method: "GET", pattern: "/v1/fund/journal", id: "getFundJournal",
			summary:  "The most recent journal entries (postings), newest first.",
			params:   []param{pUnit, {name: "limit", in: "query", typ: "integer", desc: "At most this many (default 100, at most 1000)."}},
			response: JournalResponse{}, handle: s.journal},
		{method: "GET", pattern: "/v1/notice", id: "getNotice", asOf: true, csv: true,
			summary: "The public notice: entitlements in their notice window, masked.",
			params: []param{{name: "on", in: "query", typ: "string", desc: "A day (yyyy-mm-dd; default today, China Standard Time) or \"all\" for every open notice."},
				pUnit, pInstitution, pAsOf, pFormat, pBOM},
			response: notice.List{}, handle: s.notice},
		{method: "GET", pattern: "/v1/anomalies", id: "getAnomalies", asOf: true, csv: true,
			summary: "Open flags with their evidence, newest first (or the flags a later fact cleared: status).",
			params: []param{pUnit, pInstitution, {name: "reason", in: "query", typ: "string", desc: "A reason code name, e.g. REASON_CODE_CERTIFICATE_SPIKE."},
				{name: "status", in: "query", typ: "string", enum: []string{anomaly.StatusOpen, anomaly.StatusCleared, anomaly.StatusAll},
					desc: "open (default): the flags still open; cleared: those a FlagCleared closed (with the clearing); all: both. The counts open and cleared cover both whichever is asked."},
				{name: "limit", in: "query", typ: "integer", desc: "At most this many flags (default 500)."}, pAsOf, pFormat, pBOM},
			response: anomaly.List{}, handle: s.anomalies},
		{method: "GET", pattern: "/v1/audit/streams/{stream}", id: "getAuditStream",
			summary: "A stream's events with their positions and hash links, each link verified.",
			params: []param{{name: "stream", in: "path", typ: "string", required: true, desc: "Stream name, e.g. trainee-<person key>, institution-T0001, fund-2025-cq-yuzhong."},
				{name: "from", in: "query", typ: "integer", desc: "First revision (default 0)."},
				{name: "limit", in: "query", typ: "integer", desc: "At most this many events (default 200, at most 1000)."}},
			response: AuditTrail{}, handle: s.auditStream},
		{method: "GET", pattern: "/v1/audit/events/{position}", id: "getAuditEvent",
			summary:  "One event by log position: envelope, payload (with a decision's checks and evidence), hash link.",
			params:   []param{{name: "position", in: "path", typ: "integer", required: true, desc: "Global log position."}},
			response: AuditEvent{}, handle: s.auditEvent},
		{method: "GET", pattern: "/v1/audit/log", id: "getAuditLog",
			summary: "The whole log in position order, a page at a time, each event's hash and link verified (municipal and auditor scopes): how a consumer of the outbound feed fills a gap the feed's limits left.",
			params: []param{{name: "after", in: "query", typ: "integer", desc: "Read the events after this position (default 0: from the first)."},
				{name: "limit", in: "query", typ: "integer", desc: "At most this many events (default 200, at most 1000)."}},
			response: AuditLog{}, handle: s.auditLog},
	}
}

// StatusResponse is GET /v1/status.
type StatusResponse struct {
	Ready       bool                 `json:"ready"`
	Projections []projections.Status `json:"projections"`
	Scope       string               `json:"scope"`
}

func (s *server) status(r *http.Request, sc Scope) (result, error) {
	st := s.cfg.Projections.Status(r.Context())
	return result{body: StatusResponse{Ready: s.cfg.Projections.Ready() == nil, Projections: st, Scope: sc.String()}}, nil
}

// RebuildResponse is POST /v1/projections/{name}/rebuild.
type RebuildResponse struct {
	Projection string `json:"projection"`
	Started    bool   `json:"started"`
}

func (s *server) rebuild(r *http.Request, sc Scope) (result, error) {
	if sc.Role != RoleMunicipal {
		return result{}, errorf(CodeForbidden, "only the municipal scope may rebuild read models")
	}
	name := r.PathValue("name")
	run, ok := s.cfg.Projections.Runner(name)
	if !ok {
		return result{}, errorf(CodeNotFound, "no read model %q", name)
	}
	errc := make(chan error, 1)
	go func() {
		// Detached from the request: a rebuild outlives it.
		ctx, cancel := contextWithoutCancel(r)
		defer cancel()
		errc <- run.Rebuild(ctx)
	}()
	select {
	case err := <-errc: // failed at once (busy, stopped)
		if err != nil {
			return result{}, err
		}
	case <-time.After(50 * time.Millisecond):
	}
	return result{body: RebuildResponse{Projection: name, Started: true}}, nil
}

func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, errorf(CodeBadRequest, "%s %q: want a whole number from %d to %d", name, v, lo, hi)
	}
	return n, nil
}

// TraineeList is GET /v1/trainees.
type TraineeList struct {
	Trainees []trainee.Summary `json:"trainees"`
	// Next is the cursor of the next page (absent at the end or for a
	// masked lookup).
	Next     *int            `json:"next,omitempty"`
	Position events.Position `json:"position"`
}

// inScope is a trainee row as the scope sees it: an institution's counts
// and money are of its own records only (trainee.Status.ForInstitution).
func inScope(m *trainee.Model, sc Scope, row trainee.Summary) trainee.Summary {
	if sc.Role != RoleInstitution {
		return row
	}
	st, ok := m.Get(row.PersonKey)
	if !ok {
		return row
	}
	return st.ForInstitution(sc.Institution).Summary()
}

func (s *server) allowedSummary(sc Scope, t *trainee.Summary) bool {
	switch sc.Role {
	case RoleDistrict:
		return t.InUnit(sc.Unit)
	case RoleInstitution:
		return t.WithInstitution(sc.Institution)
	}
	return sc.readsAll()
}

func (s *server) trainees(r *http.Request, sc Scope) (result, error) {
	m, pos, err := modelOf[*trainee.Model](s, r, trainee.Name)
	if err != nil {
		return result{}, err
	}
	q := r.URL.Query()
	if mid := q.Get("masked_id"); mid != "" {
		if err := sc.forbidInstitution("the masked lookup"); err != nil {
			return result{}, err
		}
		out := TraineeList{Trainees: []trainee.Summary{}, Position: pos}
		for _, t := range m.FindMasked(mid, q.Get("masked_name"), 100) {
			if s.allowedSummary(sc, &t) {
				out.Trainees = append(out.Trainees, t)
			}
		}
		return result{body: out, rows: out.Trainees, position: pos, filename: "trainees.csv"}, nil
	}
	if q.Get("format") == "csv" {
		// The whole export, streamed page by page.
		return result{position: pos, filename: "trainees.csv", stream: func(ctx context.Context, w http.ResponseWriter) error {
			cw := csv.NewWriter(w)
			header := false
			for from := 0; from >= 0; {
				var page []trainee.Summary
				page, from = m.Page(from, 2000)
				var rows []trainee.Summary
				for i := range page {
					if s.allowedSummary(sc, &page[i]) {
						rows = append(rows, inScope(m, sc, page[i]))
					}
				}
				if err := appendCSV(cw, rows, !header); err != nil {
					return err
				}
				header = true
				cw.Flush()
				if err := cw.Error(); err != nil {
					return err
				}
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if !header {
				return appendCSV(cw, []trainee.Summary{}, true)
			}
			cw.Flush()
			return cw.Error()
		}}, nil
	}
	from, err := intParam(r, "from", 0, 0, 1<<31-1)
	if err != nil {
		return result{}, err
	}
	limit, err := intParam(r, "limit", 100, 1, 1000)
	if err != nil {
		return result{}, err
	}
	out := TraineeList{Trainees: []trainee.Summary{}, Position: pos}
	if sc.readsAll() {
		// The cursor is the place in the registration order.
		page, next := m.Page(from, limit)
		out.Trainees = append(out.Trainees, page...)
		if next >= 0 {
			out.Next = &next
		}
		return result{body: out, rows: out.Trainees, position: pos, filename: "trainees.csv"}, nil
	}
	// A district or institution: the cursor counts the trainees of its
	// scope only, so that it tells nothing of how many others registered
	// between them. A page scans from the start (about a microsecond per
	// trainee registered).
	seen := 0 // of the scope's trainees, before the one looked at
	for next := 0; next >= 0 && out.Next == nil; {
		var page []trainee.Summary
		page, next = m.Page(next, 4096)
		for i := range page {
			if !s.allowedSummary(sc, &page[i]) {
				continue
			}
			switch {
			case seen < from:
			case len(out.Trainees) < limit:
				out.Trainees = append(out.Trainees, inScope(m, sc, page[i]))
			default: // one more: there is a next page
				n := from + limit
				out.Next = &n
			}
			if seen++; out.Next != nil {
				break
			}
		}
		if err := r.Context().Err(); err != nil {
			return result{}, err
		}
	}
	return result{body: out, rows: out.Trainees, position: pos, filename: "trainees.csv"}, nil
}

func (s *server) trainee(r *http.Request, sc Scope) (result, error) {
	m, pos, err := modelOf[*trainee.Model](s, r, trainee.Name)
	if err != nil {
		return result{}, err
	}
	st, ok := statusFor(sc, m, r.PathValue("person_key"))
	if !ok {
		return result{}, errorf(CodeNotFound, "no such trainee in your scope")
	}
	return result{body: st, position: pos}, nil
}

// statusFor returns the status of the trainee pk as sc may see it: false
// if sc may not see the trainee at all; an institution sees its own
// records only (trainee.Status.ForInstitution). Every route that answers
// with a trainee's status goes through it.
func statusFor(sc Scope, m *trainee.Model, pk string) (trainee.Status, bool) {
	st, ok := m.Get(pk)
	if !ok || !allowedStatus(sc, &st) {
		return trainee.Status{}, false
	}
	if sc.Role == RoleInstitution {
		st = st.ForInstitution(sc.Institution)
	}
	return st, true
}

func allowedStatus(sc Scope, st *trainee.Status) bool {
	switch sc.Role {
	case RoleDistrict:
		return st.InUnit(sc.Unit)
	case RoleInstitution:
		return st.WithInstitution(sc.Institution)
	}
	return sc.readsAll()
}

// QuotaYears is GET /v1/quota.
type QuotaYears struct {
	Years    []quota.YearSummary `json:"years"`
	View     string              `json:"view"`
	Unit     string              `json:"unit,omitempty"`
	Position events.Position     `json:"position"`
}

func (s *server) quotaFilter(r *http.Request, sc Scope) (quota.Filter, error) {
	if err := sc.forbidInstitution("the quota dashboard"); err != nil {
		return quota.Filter{}, err
	}
	q := r.URL.Query()
	unit, err := sc.unitFilter(q.Get("unit"))
	if err != nil {
		return quota.Filter{}, err
	}
	f := quota.Filter{View: q.Get("view"), Unit: unit, Measure: q.Get("measure")}
	if f.View != "" && f.View != "current" && f.View != "recorded" {
		return f, errorf(CodeBadRequest, "view %q: want current or recorded", f.View)
	}
	if f.Measure != "" && f.Measure != quota.MeasureTrained && f.Measure != quota.MeasureCertified {
		return f, errorf(CodeBadRequest, "measure %q: want trained or certified", f.Measure)
	}
	if f.View == "" {
		f.View = "current"
	}
	return f, nil
}

func (s *server) quotaYears(r *http.Request, sc Scope) (result, error) {
	f, err := s.quotaFilter(r, sc)
	if err != nil {
		return result{}, err
	}
	m, pos, err := modelOf[*quota.Model](s, r, quota.Name)
	if err != nil {
		return result{}, err
	}
	out := QuotaYears{Years: m.Years(f), View: f.View, Unit: f.Unit, Position: pos}
	return result{body: out, rows: out.Years, position: pos, filename: "quota-years.csv"}, nil
}

// QuotaResponse is GET /v1/quota/{year}: the dashboard and the year's fund
// balances (subsidy committed and paid against budget).
type QuotaResponse struct {
	quota.Dashboard
	// Fund is the year's balances in the scope (from the fund ledger,
	// at FundPosition).
	Fund         fund.Balances   `json:"fund"`
	FundPosition events.Position `json:"fund_position"`
}

// QuotaCSVRow is one row of the quota CSV: a unit and qualification.
type QuotaCSVRow struct {
	Year int `json:"year"`
	quota.CellRow
}

func (s *server) quota(r *http.Request, sc Scope) (result, error) {
	year, err := strconv.Atoi(r.PathValue("year"))
	if err != nil || year < 2000 || year > 2100 {
		return result{}, errorf(CodeBadRequest, "year %q: want a year such as 2026", r.PathValue("year"))
	}
	f, err := s.quotaFilter(r, sc)
	if err != nil {
		return result{}, err
	}
	m, pos, err := modelOf[*quota.Model](s, r, quota.Name)
	if err != nil {
		return result{}, err
	}
	fm, fpos, err := modelOf[*fund.Model](s, r, fund.Name)
	if err != nil {
		return result{}, err
	}
	if r.URL.Query().Get("format") == "csv" {
		var rows []QuotaCSVRow
		for _, c := range m.Cells(year, f) {
			rows = append(rows, QuotaCSVRow{Year: year, CellRow: c})
		}
		return result{rows: rows, position: pos, filename: "quota-" + strconv.Itoa(year) + ".csv"}, nil
	}
	// The dashboard is the hottest query: its answer is kept until either
	// model moves.
	key := fmt.Sprintf("quota %d %+v %p %d %p %d", year, f, m, m.Position(), fm, fm.Position())
	raw, err := s.cached(key, func() (any, error) {
		out := QuotaResponse{Dashboard: m.Dashboard(year, f), FundPosition: fpos}
		if l := fm.Ledger(fund.Filter{View: f.View, Year: year, Unit: f.Unit}); len(l.Years) == 1 {
			out.Fund = l.Years[0].Balances
		}
		return out, nil
	})
	if err != nil {
		return result{}, err
	}
	return result{raw: raw, position: pos}, nil
}

// InstitutionList is GET /v1/institutions.
type InstitutionList struct {
	Institutions []scorecard.Row `json:"institutions"`
	Position     events.Position `json:"position"`
}

func (s *server) institutions(r *http.Request, sc Scope) (result, error) {
	q := r.URL.Query()
	unit, err := sc.unitFilter(q.Get("unit"))
	if err != nil {
		return result{}, err
	}
	inst, err := sc.institutionFilter("")
	if err != nil {
		return result{}, err
	}
	kind := q.Get("kind")
	if kind != "" && kind != "training" && kind != "evaluation" {
		return result{}, errorf(CodeBadRequest, "kind %q: want training or evaluation", kind)
	}
	m, pos, err := modelOf[*scorecard.Model](s, r, scorecard.Name)
	if err != nil {
		return result{}, err
	}
	out := InstitutionList{Institutions: m.List(scorecard.Filter{Unit: unit, Institution: inst, Kind: kind}), Position: pos}
	return result{body: out, rows: out.Institutions, position: pos, filename: "institutions.csv"}, nil
}

func (s *server) institution(r *http.Request, sc Scope) (result, error) {
	m, pos, err := modelOf[*scorecard.Model](s, r, scorecard.Name)
	if err != nil {
		return result{}, err
	}
	id := r.PathValue("id")
	c, ok := m.Get(id)
	if ok {
		switch sc.Role {
		case RoleDistrict:
			ok = c.UnitCode == sc.Unit || c.CurrentUnitCode == sc.Unit
		case RoleInstitution:
			ok = id == sc.Institution
		}
	}
	if !ok {
		return result{}, errorf(CodeNotFound, "no such institution in your scope")
	}
	switch sc.Role {
	case RoleInstitution:
		c = c.ForInstitution()
	case RoleDistrict:
		// The card's flags are the anomaly list's (same ids): a detail
		// naming a trainee of another unit is withheld there, and here.
		am, _, err := modelOf[*anomaly.Model](s, r, anomaly.Name)
		if err != nil {
			return result{}, err
		}
		l := am.List(anomaly.Filter{Institution: id, Status: anomaly.StatusAll, Limit: math.MaxInt})
		c = c.WithoutDetails(s.othersTrainees(r, sc, l.Flags))
	}
	return result{body: c, position: pos}, nil
}

// othersTrainees returns the ids of the flags among flags that are about a
// trainee the scope may not see (a district's institutions train people
// of other units).
func (s *server) othersTrainees(r *http.Request, sc Scope, flags []anomaly.Flag) map[string]bool {
	out := map[string]bool{}
	tm, _, err := modelOf[*trainee.Model](s, r, trainee.Name)
	for _, f := range flags {
		if f.SubjectKind != "person" {
			continue
		}
		var st trainee.Status
		ok := false
		if err == nil {
			st, ok = tm.Get(f.Subject)
		}
		if !ok || !allowedStatus(sc, &st) {
			out[f.FlagID] = true
		}
	}
	return out
}

// FundCSVRow is one row of the fund CSV.
type FundCSVRow = fund.Row

func (s *server) fund(r *http.Request, sc Scope) (result, error) {
	if err := sc.forbidInstitution("the fund ledger"); err != nil {
		return result{}, err
	}
	q := r.URL.Query()
	unit, err := sc.unitFilter(q.Get("unit"))
	if err != nil {
		return result{}, err
	}
	year, err := intParam(r, "year", 0, 0, 2100)
	if err != nil {
		return result{}, err
	}
	view := q.Get("view")
	if view != "" && view != "current" && view != "recorded" {
		return result{}, errorf(CodeBadRequest, "view %q: want current or recorded", view)
	}
	m, pos, err := modelOf[*fund.Model](s, r, fund.Name)
	if err != nil {
		return result{}, err
	}
	l := m.Ledger(fund.Filter{View: view, Year: year, Unit: unit})
	return result{body: l, rows: l.Funds, position: pos, filename: "fund.csv"}, nil
}

// JournalResponse is GET /v1/fund/journal.
type JournalResponse struct {
	Entries  []fund.Entry    `json:"entries"`
	Position events.Position `json:"position"`
}

func (s *server) journal(r *http.Request, sc Scope) (result, error) {
	if err := sc.forbidInstitution("the fund journal"); err != nil {
		return result{}, err
	}
	unit, err := sc.unitFilter(r.URL.Query().Get("unit"))
	if err != nil {
		return result{}, err
	}
	limit, err := intParam(r, "limit", 100, 1, fund.JournalSize)
	if err != nil {
		return result{}, err
	}
	m, pos, err := modelOf[*fund.Model](s, r, fund.Name)
	if err != nil {
		return result{}, err
	}
	return result{body: JournalResponse{Entries: m.Journal(limit, unit), Position: pos}, position: pos}, nil
}

// cst is China Standard Time, for "today".
var cst = time.FixedZone("CST", 8*3600)

func (s *server) notice(r *http.Request, sc Scope) (result, error) {
	q := r.URL.Query()
	unit, err := sc.unitFilter(q.Get("unit"))
	if err != nil {
		return result{}, err
	}
	inst, err := sc.institutionFilter(q.Get("institution"))
	if err != nil {
		return result{}, err
	}
	f := notice.Filter{Unit: unit, Institution: inst}
	switch on := q.Get("on"); on {
	case "all":
	case "":
		t := s.cfg.Now().In(cst)
		f.On = refdata.D(t.Year(), t.Month(), t.Day())
	default:
		d, err := refdata.ParseDate(on)
		if err != nil {
			return result{}, errorf(CodeBadRequest, "on %q: want yyyy-mm-dd or all", on)
		}
		f.On = d
	}
	m, pos, err := modelOf[*notice.Model](s, r, notice.Name)
	if err != nil {
		return result{}, err
	}
	l := m.List(f)
	return result{body: l, rows: l.Entries, position: pos, filename: "notice.csv"}, nil
}

func (s *server) anomalies(r *http.Request, sc Scope) (result, error) {
	q := r.URL.Query()
	unit, err := sc.unitFilter(q.Get("unit"))
	if err != nil {
		return result{}, err
	}
	inst, err := sc.institutionFilter(q.Get("institution"))
	if err != nil {
		return result{}, err
	}
	limit, err := intParam(r, "limit", 500, 1, 100000)
	if err != nil {
		return result{}, err
	}
	status := q.Get("status")
	switch status {
	case "", anomaly.StatusOpen, anomaly.StatusCleared, anomaly.StatusAll:
	default:
		return result{}, errorf(CodeBadRequest, "status %q: want open, cleared or all", status)
	}
	m, pos, err := modelOf[*anomaly.Model](s, r, anomaly.Name)
	if err != nil {
		return result{}, err
	}
	l := m.List(anomaly.Filter{Unit: unit, Institution: inst, Reason: q.Get("reason"), Status: status, Limit: limit})
	switch sc.Role {
	case RoleInstitution:
		for i := range l.Flags {
			l.Flags[i] = l.Flags[i].ForInstitution()
		}
	case RoleDistrict:
		// A flag is the district's by its institution's unit; a trainee
		// it is about may be of another unit (GET /v1/trainees/{key}:
		// not found), and is not named.
		foreign := s.othersTrainees(r, sc, l.Flags)
		for i := range l.Flags {
			if foreign[l.Flags[i].FlagID] {
				l.Flags[i] = l.Flags[i].WithoutPerson()
			}
		}
	}
	return result{body: l, rows: l.Flags, position: pos, filename: "anomalies.csv"}, nil
}
