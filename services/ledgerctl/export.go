package ledgerctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/readmodels"
	"github.com/cqhrss/subsidyledger/services/api"
)

// views maps what export and replay show to the API's read endpoints.
var views = map[string]struct {
	path       string
	projection string
	help       string
}{
	"notice":       {"/v1/notice", "notice", "the public notice: entitlements in their notice window, masked (--on DAY or all)"},
	"quota":        {"/v1/quota", "quota", "target against trained, certified and subsidised per year (--year Y: the year's dashboard cells)"},
	"institutions": {"/v1/institutions", "scorecard", "institution scorecards"},
	"fund":         {"/v1/fund", "fund", "the fund ledger: balances by year and unit"},
	"anomalies":    {"/v1/anomalies", "anomaly", "anomaly flags for supervisors"},
	"trainees":     {"/v1/trainees", "trainee", "trainees by masked ID and name (first page of --limit)"},
}

func viewNames() string {
	names := make([]string, 0, len(views))
	for n := range views {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// localAPI serves the read API in-process over a store file: the read
// models are built from the log first.
type localAPI struct {
	h    http.Handler
	stop func()
}

func openLocalAPI(ctx context.Context, s events.Store, bar *progressBar) (*localAPI, error) {
	set, err := projections.NewSet(projections.Config{Store: s}, readmodels.Factories()...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- set.Run(ctx) }()
	head, _ := s.Head(ctx)
	for {
		err := set.Ready()
		if err == nil {
			break
		}
		// Runners report ErrStopped until their goroutines start.
		if (!errors.Is(err, projections.ErrNotReady) && !errors.Is(err, projections.ErrStopped)) || ctx.Err() != nil {
			cancel()
			<-done
			return nil, failf("building the read models: %v", err)
		}
		select {
		case rerr := <-done:
			cancel()
			return nil, failf("building the read models: %v", errors.Join(rerr, err))
		default:
		}
		var pos events.Position
		for _, r := range set.Runners() {
			if p := r.Position(); pos == 0 || p < pos {
				pos = p
			}
		}
		bar.update(uint64(pos), uint64(head), int64(pos), "events")
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	bar.done()
	h := api.New(api.Config{Projections: set, Store: s})
	return &localAPI{h: h, stop: func() { cancel(); <-done }}, nil
}

// get serves one GET in-process.
func (l *localAPI) get(ctx context.Context, path string, q url.Values) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	l.h.ServeHTTP(rec, req)
	if rec.status/100 != 2 {
		return nil, failf("GET %s: %d %s", path, rec.status, strings.TrimSpace(rec.body.String()))
	}
	return rec.body.Bytes(), nil
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(status int)      { r.status = status }

func cmdExport(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "export", "VIEW [--store PATH | --server URL] [--as-of POSITION|TIME] [--year Y] [--unit U] [--on DAY|all] [--format csv|json] [--bom] [--out FILE]\n\nVIEW is one of: "+viewNames())
	storeSpec := storeFlag(f)
	srv := addServerFlags(f)
	asOf := f.String("as-of", "", "as of a past moment: a log position or an RFC 3339 time")
	year := f.Int("year", 0, "quota: one year's dashboard; fund: one year")
	unit := f.String("unit", "", "keep one management unit (e.g. cq-yuzhong)")
	on := f.String("on", "", "notice: the day (yyyy-mm-dd, default today in China Standard Time) or all")
	limit := f.Int("limit", 1000, "trainees: how many")
	format := f.String("format", "csv", "csv or json")
	bom := f.Bool("bom", false, "csv: begin with a UTF-8 byte-order mark, so that Excel shows the Chinese text right (leave it off for programs)")
	out := f.String("out", "", "write to this file instead of stdout")
	progress := f.str("progress", "auto", "progress bar on stderr while the read models are built: auto, on or off")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if err := f.parse(args); err != nil {
			return err
		}
		return usageErrorf("export: which view? one of %s", viewNames())
	}
	what := args[0]
	if err := f.parse(args[1:]); err != nil {
		return err
	}
	if err := f.noArgs(); err != nil {
		return err
	}
	v, ok := views[what]
	if !ok {
		return usageErrorf("export: no view %q; want one of %s", what, viewNames())
	}
	if *format != "csv" && *format != "json" {
		return usageErrorf("--format %q: want csv or json", *format)
	}
	q := url.Values{"format": {*format}}
	if *bom {
		if *format != "csv" {
			return usageErrorf("--bom goes with --format csv")
		}
		q.Set("bom", "1")
	}
	path := v.path
	if *asOf != "" {
		q.Set("as_of", *asOf)
	}
	if *unit != "" {
		q.Set("unit", *unit)
	}
	switch what {
	case "quota":
		if *year != 0 {
			path += "/" + strconv.Itoa(*year)
		}
	case "fund":
		if *year != 0 {
			q.Set("year", strconv.Itoa(*year))
		}
	case "notice":
		if *on != "" {
			q.Set("on", *on)
		}
	case "trainees":
		q.Set("limit", strconv.Itoa(*limit))
	}
	body, err := fetchView(ctx, e, srv, *storeSpec, *progress, path, q)
	if err != nil {
		return err
	}
	return writeOut(e, *out, body)
}

// fetchView GETs a read endpoint from --server, or in-process over the
// store file.
func fetchView(ctx context.Context, e *env, srv serverFlags, storeSpec, progress, path string, q url.Values) ([]byte, error) {
	c, err := srv.client()
	if err != nil {
		return nil, err
	}
	if c != nil {
		var body []byte
		if err := c.do(ctx, http.MethodGet, path, q, &body); err != nil {
			return nil, err
		}
		return body, nil
	}
	s, err := openStore(storeSpec)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	bar, err := newProgress(e.stderr, progress, "read models")
	if err != nil {
		return nil, err
	}
	l, err := openLocalAPI(ctx, s, bar)
	if err != nil {
		return nil, err
	}
	defer l.stop()
	return l.get(ctx, path, q)
}

func writeOut(e *env, path string, body []byte) error {
	if path == "" {
		_, err := e.stdout.Write(body)
		return err
	}
	if err := os.WriteFile(path, body, 0o600); err != nil {
		return failf("writing %s: %v", path, err)
	}
	fmt.Fprintf(e.stderr, "wrote %s (%s bytes)\n", path, group(uint64(len(body))))
	return nil
}

func cmdReplay(ctx context.Context, e *env, args []string) error {
	names := []string{}
	for _, fac := range readmodels.Factories() {
		names = append(names, fac().Name())
	}
	f := newFlags(e, "replay", "--projection NAME [--store PATH] [--as-of POSITION|TIME] [--format snapshot|json] [--out FILE]\n\nNAME is one of: "+strings.Join(names, ", "))
	storeSpec := storeFlag(f)
	name := f.String("projection", "", "the projection to rebuild (required)")
	asOf := f.String("as-of", "", "rebuild as of a past moment: a log position or an RFC 3339 time (default: the whole log)")
	format := f.String("format", "snapshot", "snapshot (the projection's own snapshot encoding) or json (its state as the API shows it)")
	out := f.String("out", "", "write to this file instead of stdout")
	progress := f.str("progress", "auto", "progress bar on stderr: auto, on or off")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.noArgs(); err != nil {
		return err
	}
	var fac projections.Factory
	for _, fc := range readmodels.Factories() {
		if fc().Name() == *name {
			fac = fc
		}
	}
	if fac == nil {
		return usageErrorf("replay: --projection %q: want one of %s", *name, strings.Join(names, ", "))
	}
	var at *projections.At
	if *asOf != "" {
		if n, err := strconv.ParseUint(*asOf, 10, 64); err == nil {
			at = &projections.At{Position: events.Position(n)}
		} else if t, err := time.Parse(time.RFC3339Nano, *asOf); err == nil {
			at = &projections.At{Time: t}
		} else {
			return usageErrorf("--as-of %q: want a log position or an RFC 3339 time", *asOf)
		}
	}
	switch *format {
	case "json":
		path := ""
		for _, v := range views {
			if v.projection == *name {
				path = v.path
			}
		}
		q := url.Values{"format": {"json"}}
		if *asOf != "" {
			q.Set("as_of", *asOf)
		}
		if *name == "notice" {
			q.Set("on", "all")
		}
		body, err := fetchView(ctx, e, serverFlags{server: new(string), scope: new(string)}, *storeSpec, *progress, path, q)
		if err != nil {
			return err
		}
		return writeOut(e, *out, body)
	case "snapshot":
	default:
		return usageErrorf("--format %q: want snapshot or json", *format)
	}
	s, err := openStore(*storeSpec)
	if err != nil {
		return err
	}
	defer s.Close()
	bar, err := newProgress(e.stderr, *progress, "replay")
	if err != nil {
		return err
	}
	head, _ := s.Head(ctx)
	p := fac()
	var n int64
	st, err := projections.Build(ctx, s, []projections.Projection{p}, projections.BuildOptions{Until: at, Progress: func(pos events.Position) {
		n = int64(pos)
		bar.update(uint64(pos), uint64(head), n, "events")
	}})
	bar.done()
	if err != nil {
		return failf("replaying %s: %v", *name, err)
	}
	var buf bytes.Buffer
	if err := p.Snapshot(&buf); err != nil {
		return failf("snapshot of %s: %v", *name, err)
	}
	fmt.Fprintf(e.stderr, "replay: %s rebuilt from %s events, up to position %d (committed %s)\n", *name, group(st.Events), st.Position, st.Created.Format(time.RFC3339))
	return writeOut(e, *out, buf.Bytes())
}

var _ io.Writer = (*recorder)(nil)
