package validate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	grafanaprom "github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/text"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	dfparser "github.com/moby/buildkit/frontend/dockerfile/parser"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"golang.org/x/mod/modfile"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// Paths, relative to this directory (go test runs in it).
var (
	repo        = filepath.Join("..", "..")
	deployments = ".."
	composeFile = filepath.Join(deployments, "compose.yaml")
	dockerfile  = filepath.Join(deployments, "ledgerd.Dockerfile")
	rulesGlob   = filepath.Join(deployments, "prometheus", "rules", "*.yml")
	dashGlob    = filepath.Join(deployments, "grafana", "dashboards", "*.json")
	datasources = filepath.Join(deployments, "grafana", "provisioning", "datasources", "prometheus.yaml")
	providers   = filepath.Join(deployments, "grafana", "provisioning", "dashboards", "subsidy-ledger.yaml")
	kustomize   = []string{filepath.Join(deployments, "k8s", "base"), filepath.Join(deployments, "k8s", "overlays", "production")}
	readme      = filepath.Join(deployments, "README.md")
)

// The Secrets an operator creates (README); every other referenced
// ConfigMap or Secret must be in the build.
var operatorSecrets = map[string]bool{"grafana-admin": true, "esdb-tls": true, "esdb-ledger": true, "nats-users": true, "ledgerd-keys": true, "ledgerd-api-tokens": true, "prometheus-scrape": true}

// natsPasswords are the variables nats/auth.conf reads (example.env lists
// them for compose, the Secret nats-users holds them in Kubernetes).
var natsPasswords = []string{"LEDGERD_NATS_PASSWORD", "OPERATOR_NATS_PASSWORD", "BUREAU_NATS_PASSWORD", "DISTRICT_NATS_PASSWORD",
	"ENROLMENT_NATS_PASSWORD", "EVALUATION_NATS_PASSWORD", "PAYMENT_NATS_PASSWORD", "REPORTING_NATS_PASSWORD"}

// The compose shape, and the same shape in Kubernetes.
var (
	wantServices = []string{"esdb-1", "esdb-2", "esdb-3", "grafana", "ledgerd-1", "ledgerd-2", "nats-1", "nats-2", "nats-3", "prometheus"}
	natsNodes    = []string{"nats-1", "nats-2", "nats-3"}
	esdbNodes    = []string{"esdb-1", "esdb-2", "esdb-3"}
	ledgerds     = []string{"ledgerd-1", "ledgerd-2"}
)

var exported = sync.OnceValues(func() (Metrics, error) {
	own, err := ScanExported(filepath.Join(repo, "services"), filepath.Join(repo, "projections"), filepath.Join(repo, "events"))
	if err != nil {
		return nil, err
	}
	std, err := Standard()
	if err != nil {
		return nil, err
	}
	return Union(own, std, Scrape), nil
})

func allowed(t *testing.T) Metrics {
	t.Helper()
	m, err := exported()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func glob(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s (%v)", pattern, err)
	}
	return files
}

// strictYAML decodes YAML into v, failing on fields v does not have.
func strictYAML(data []byte, v any) error {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// TestExportedMetrics: the scan finds ledgerd's metrics, and nothing that a
// plain grep of the sources finds is missed without notice.
func TestExportedMetrics(t *testing.T) {
	own, err := ScanExported(filepath.Join(repo, "services"), filepath.Join(repo, "projections"), filepath.Join(repo, "events"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"subsidy_ledger_facts_received_total", "subsidy_ledger_intake_up", "subsidy_ledger_projection_lag_seconds"} {
		if _, ok := own[want]; !ok {
			t.Errorf("ScanExported does not find %s; found %v", want, own.Names())
		}
	}
	if own["subsidy_ledger_append_duration_seconds"] != Histogram {
		t.Errorf("subsidy_ledger_append_duration_seconds: kind %v; want Histogram", own["subsidy_ledger_append_duration_seconds"])
	}
	t.Logf("ledgerd exports %d metrics of its own: %s", len(own), strings.Join(own.Names(), " "))
	// A grep finds names in comments and docs too; a name only grep finds is
	// reported, in case it is registered in a way the scan does not know.
	grep := regexp.MustCompile(`"(subsidy_ledger_[a-z_]+)"`)
	for _, dir := range []string{"services", "projections", "events"} {
		_ = filepath.WalkDir(filepath.Join(repo, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			for _, m := range grep.FindAllSubmatch(read(t, p), -1) {
				if _, ok := own[string(m[1])]; !ok {
					t.Logf("%s: %q is a string literal but not a registered metric name", p, m[1])
				}
			}
			return nil
		})
	}
}

// TestClientGolangVersion: the standard go_/process_ names are gathered from
// this module's client_golang, so it must be the version ledgerd uses.
func TestClientGolangVersion(t *testing.T) {
	const mod = "github.com/prometheus/client_golang"
	f, err := modfile.ParseLax("go.mod", read(t, filepath.Join(repo, "services", "go.mod")), nil)
	if err != nil {
		t.Fatal(err)
	}
	var want string
	for _, r := range f.Require {
		if r.Mod.Path == mod {
			want = r.Mod.Version
		}
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Skip("no build info")
	}
	for _, d := range bi.Deps {
		if d.Path == mod && d.Version != want {
			t.Errorf("deployments/validate uses %s %s, services uses %s: run\n\tcd deployments/validate && GOWORK=off go get %s@%s && GOWORK=off go mod tidy", mod, d.Version, want, mod, want)
		}
	}
}

// checkNames fails for every series name in expr that ledgerd does not export.
func checkNames(t *testing.T, where, expr string, ok Metrics) {
	t.Helper()
	names, err := SeriesNames(expr)
	if err != nil {
		t.Errorf("%s: %v\n\t%s", where, err, expr)
		return
	}
	if len(names) == 0 {
		t.Errorf("%s: the expression refers to no metric\n\t%s", where, expr)
	}
	for _, n := range names {
		if !ok.Series(n) {
			t.Errorf("%s: %s is not a metric ledgerd exports\n\t%s", where, n, expr)
		}
	}
}

// TestAlertRules: the rule files parse with Prometheus's own rule parser
// (unknown fields are errors, every expression and template is checked),
// every alert has a severity and says what it means, refers only to metrics
// ledgerd exports, and is described in the README.
func TestAlertRules(t *testing.T) {
	ok := allowed(t)
	doc := string(read(t, readme))
	for _, file := range glob(t, rulesGlob) {
		groups, errs := rulefmt.Parse(read(t, file), false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
		for _, err := range errs {
			t.Errorf("%s: %v", file, err)
		}
		if groups == nil {
			continue
		}
		recorded := Metrics{}
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					recorded[r.Record] = Plain
				}
			}
		}
		ok := Union(ok, recorded)
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				name := r.Alert + r.Record
				checkNames(t, fmt.Sprintf("%s: %s", file, name), r.Expr, ok)
				if r.Alert == "" {
					continue
				}
				if s := r.Labels["severity"]; s != "warning" && s != "critical" {
					t.Errorf("%s: alert %s: severity %q; want warning or critical", file, r.Alert, s)
				}
				for _, a := range []string{"summary", "description"} {
					if r.Annotations[a] == "" {
						t.Errorf("%s: alert %s has no %s", file, r.Alert, a)
					}
				}
				if !strings.Contains(doc, "`"+r.Alert+"`") {
					t.Errorf("alert %s is not described in %s", r.Alert, readme)
				}
			}
		}
	}
}

// Grafana's schema types decode panel options strictly only for registered
// panel types; the dashboard may use only these.
var panelTypes = map[string]bool{"row": true, "timeseries": true, "stat": true, "text": true}

func registerGrafana() {
	rt := cog.NewRuntime()
	rt.RegisterPanelcfgVariant(timeseries.VariantConfig())
	rt.RegisterPanelcfgVariant(stat.VariantConfig())
	rt.RegisterPanelcfgVariant(text.VariantConfig())
	rt.RegisterDataqueryVariant(grafanaprom.VariantConfig())
}

type grafanaDatasources struct {
	APIVersion  int `json:"apiVersion"`
	Datasources []struct {
		Name      string         `json:"name"`
		UID       string         `json:"uid"`
		Type      string         `json:"type"`
		Access    string         `json:"access"`
		URL       string         `json:"url"`
		IsDefault bool           `json:"isDefault"`
		Editable  bool           `json:"editable"`
		JSONData  map[string]any `json:"jsonData"`
	} `json:"datasources"`
}

type grafanaProviders struct {
	APIVersion int `json:"apiVersion"`
	Providers  []struct {
		Name                  string `json:"name"`
		Folder                string `json:"folder"`
		Type                  string `json:"type"`
		DisableDeletion       bool   `json:"disableDeletion"`
		AllowUIUpdates        bool   `json:"allowUiUpdates"`
		UpdateIntervalSeconds int    `json:"updateIntervalSeconds"`
		Options               struct {
			Path                      string `json:"path"`
			FoldersFromFilesStructure bool   `json:"foldersFromFilesStructure"`
		} `json:"options"`
	} `json:"providers"`
}

// provisioned returns the datasource uid and the dashboards path Grafana is
// provisioned with.
func provisioned(t *testing.T) (uid, path string) {
	t.Helper()
	var ds grafanaDatasources
	if err := strictYAML(read(t, datasources), &ds); err != nil {
		t.Fatalf("%s: %v", datasources, err)
	}
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].UID == "" {
		t.Fatalf("%s: want apiVersion 1 and one prometheus datasource with a uid; got %+v", datasources, ds)
	}
	if ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("%s: url %q; want http://prometheus:9090 (the prometheus service in compose and Kubernetes)", datasources, ds.Datasources[0].URL)
	}
	var pr grafanaProviders
	if err := strictYAML(read(t, providers), &pr); err != nil {
		t.Fatalf("%s: %v", providers, err)
	}
	if pr.APIVersion != 1 || len(pr.Providers) != 1 || pr.Providers[0].Type != "file" || pr.Providers[0].Options.Path == "" {
		t.Fatalf("%s: want apiVersion 1 and one file provider with a path; got %+v", providers, pr)
	}
	return ds.Datasources[0].UID, pr.Providers[0].Options.Path
}

// TestGrafanaDashboards: each dashboard decodes strictly into Grafana's own
// schema types (unknown or mistyped fields, missing required ones are
// errors), uses the provisioned datasource, and every query and variable
// refers only to metrics ledgerd exports.
func TestGrafanaDashboards(t *testing.T) {
	registerGrafana()
	ok := allowed(t)
	uid, _ := provisioned(t)
	for _, file := range glob(t, dashGlob) {
		var d dashboard.Dashboard
		data := read(t, file)
		if msg := strictDashboard(data); msg != "" {
			t.Errorf("%s: %s", file, msg)
			continue
		}
		// The strict decoders validate but drop the panels they decode
		// (see strictDashboard): take the values from a plain decode.
		if err := json.Unmarshal(data, &d); err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if d.Uid == nil || *d.Uid == "" || d.Title == nil || *d.Title == "" {
			t.Errorf("%s: a provisioned dashboard needs a uid and a title", file)
		}
		for _, v := range d.Templating.List {
			where := fmt.Sprintf("%s: variable %s", file, v.Name)
			if v.Type != dashboard.VariableTypeQuery {
				continue
			}
			if v.Datasource == nil || v.Datasource.Uid == nil || *v.Datasource.Uid != uid {
				t.Errorf("%s: datasource is not the provisioned %q", where, uid)
			}
			q := variableQuery(v.Query)
			expr, err := VariableQueryExpr(q)
			if err != nil {
				t.Errorf("%s: %v", where, err)
			} else if expr != "" {
				checkNames(t, where, expr, ok)
			}
		}
		ids := map[uint32]bool{}
		queries := 0
		var panels []dashboard.Panel
		for _, p := range d.Panels {
			if p.RowPanel != nil {
				if !p.RowPanel.Collapsed && len(p.RowPanel.Panels) > 0 {
					t.Errorf("%s: row %q is open but holds panels", file, deref(p.RowPanel.Title))
				}
				panels = append(panels, p.RowPanel.Panels...)
				if ids[p.RowPanel.Id] {
					t.Errorf("%s: panel id %d is used twice", file, p.RowPanel.Id)
				}
				ids[p.RowPanel.Id] = true
				continue
			}
			panels = append(panels, *p.Panel)
		}
		for _, p := range panels {
			where := fmt.Sprintf("%s: panel %q", file, deref(p.Title))
			if !panelTypes[p.Type] {
				t.Errorf("%s: type %q; use one of %v (or register its schema here)", where, p.Type, keys(panelTypes))
			}
			if p.Id == nil || ids[*p.Id] {
				t.Errorf("%s: needs an id of its own", where)
			} else {
				ids[*p.Id] = true
			}
			if p.GridPos == nil || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.W == 0 || p.GridPos.H == 0 {
				t.Errorf("%s: gridPos %+v does not fit the 24 columns", where, p.GridPos)
			}
			if p.Type != "text" && (p.Datasource == nil || p.Datasource.Uid == nil || *p.Datasource.Uid != uid) {
				t.Errorf("%s: datasource is not the provisioned %q", where, uid)
			}
			for i, q := range p.Targets {
				pq, isProm := q.(*grafanaprom.Dataquery)
				if !isProm {
					t.Errorf("%s: target %d is a %T, not a Prometheus query", where, i, q)
					continue
				}
				if pq.Datasource != nil && (pq.Datasource.Uid == nil || *pq.Datasource.Uid != uid) {
					t.Errorf("%s: target %d: datasource is not the provisioned %q", where, i, uid)
				}
				queries++
				checkNames(t, fmt.Sprintf("%s target %s", where, deref(pq.RefId)), GrafanaExpr(pq.Expr), ok)
			}
		}
		t.Logf("%s: %d panels, %d queries", file, len(panels), queries)
	}
}

// strictDashboard decodes a dashboard strictly with Grafana's schema types
// and returns what is wrong with it, or "". The generated strict decoders
// return their (empty) error list as a non-nil error even on success, and a
// union (panel or row) then drops what it decoded; only a non-empty list is
// a failure. TestGrafanaStrictDecoder makes sure failures still show.
func strictDashboard(data []byte) string {
	registerGrafana()
	var d dashboard.Dashboard
	return describe(d.UnmarshalJSONStrict(data))
}

// describe spells out a strict-decoding error of Grafana's schema types,
// whose nested errors can carry an empty message.
func describe(err error) string {
	if err == nil {
		return ""
	}
	var be cog.BuildErrors
	if !errors.As(err, &be) {
		return err.Error()
	}
	var lines []string
	for _, e := range be {
		lines = append(lines, fmt.Sprintf("%s: %s", e.Path, e.Message))
	}
	return strings.Join(lines, "\n\t")
}

// TestGrafanaStrictDecoder: the strict decoding above does reject what it
// should, deep inside panels too (so a quirk of the generated decoders
// cannot make TestGrafanaDashboards pass vacuously).
func TestGrafanaStrictDecoder(t *testing.T) {
	file := glob(t, dashGlob)[0]
	for _, tc := range []struct {
		name   string
		mutate func(d map[string]any)
	}{
		{"unknown top-level field", func(d map[string]any) { d["titel"] = "x" }},
		{"unknown panel field", func(d map[string]any) { lastPanel(d)["gridpos"] = map[string]any{} }},
		{"unknown option", func(d map[string]any) { lastPanel(d)["options"].(map[string]any)["legendd"] = true }},
		{"mistyped field", func(d map[string]any) { lastPanel(d)["title"] = 7 }},
		{"query without expr", func(d map[string]any) { delete(lastPanel(d)["targets"].([]any)[0].(map[string]any), "expr") }},
		{"missing required option", func(d map[string]any) { delete(lastPanel(d)["options"].(map[string]any), "tooltip") }},
	} {
		var d map[string]any
		if err := json.Unmarshal(read(t, file), &d); err != nil {
			t.Fatal(err)
		}
		tc.mutate(d)
		b, _ := json.Marshal(d)
		if msg := strictDashboard(b); msg == "" {
			t.Errorf("%s: the strict decoder accepts a dashboard with an %s", file, tc.name)
		}
	}
}

// lastPanel is the dashboard's last panel, which must be a timeseries panel.
func lastPanel(d map[string]any) map[string]any {
	ps := d["panels"].([]any)
	return ps[len(ps)-1].(map[string]any)
}

func variableQuery(q *dashboard.StringOrMap) string {
	if q == nil {
		return ""
	}
	if q.String != nil {
		return *q.String
	}
	if s, ok := q.Map["query"].(string); ok {
		return s
	}
	return ""
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ledgerdFlags checks a ledgerd command line and environment against the
// flags ledgerd defines, and returns the flags given.
func ledgerdFlags(t *testing.T, where string, args []string, env map[string]string) map[string]string {
	t.Helper()
	known, err := LedgerdFlags(filepath.Join(repo, "services", "ledgerd", "config.go"))
	if err != nil {
		t.Fatal(err)
	}
	given, err := ArgFlags(args)
	if err != nil {
		t.Errorf("%s: %v", where, err)
	}
	for name := range given {
		if !known[name] {
			t.Errorf("%s: ledgerd has no flag --%s (it has %v)", where, name, keys(known))
		}
	}
	for k, v := range env {
		if k == "LEDGER_CHECKPOINT_KEY" || k == "LEDGER_PERSON_KEY" || k == "LEDGER_VAULT_KEY" {
			continue // the key itself, read from the environment only (services/ledgerd/config.go)
		}
		if f := EnvFlag(k); f != "" {
			if !known[f] {
				t.Errorf("%s: %s names no ledgerd flag (--%s)", where, k, f)
			}
			if _, ok := given[f]; !ok {
				given[f] = v
			}
		}
	}
	return given
}

// checkCluster: ledgerd talks to all three NATS nodes and all three store
// nodes, with streams at three replicas.
func checkCluster(t *testing.T, where string, flags map[string]string, nats, esdb []string) {
	t.Helper()
	if flags["replicas"] != "3" {
		t.Errorf("%s: --replicas %q; want 3 on a three-node cluster", where, flags["replicas"])
	}
	// Without --api-tokens ledgerd does not start (outside --demo); without
	// --metrics-token-file /metrics is open (an overlay's args replace the
	// base's list whole, so each shape is checked).
	for _, f := range []string{"api-tokens", "metrics-token-file"} {
		if flags[f] == "" {
			t.Errorf("%s: no --%s", where, f)
		}
	}
	// nats/auth.conf keeps SUBSIDY_FEED in the account FEED, imported
	// under this prefix (services/natsbus FeedAPIPrefix).
	if flags["feed-js-api-prefix"] != "$JS.FEED.API" {
		t.Errorf("%s: --feed-js-api-prefix %q; want $JS.FEED.API (nats/auth.conf)", where, flags["feed-js-api-prefix"])
	}
	// The reporting users of nats/auth.conf get their consumers from
	// ledgerd (they may not make one).
	if flags["feed-consumers"] != "reporting" {
		t.Errorf("%s: --feed-consumers %q; want reporting, the reporting user of nats/auth.conf", where, flags["feed-consumers"])
	}
	for _, n := range nats {
		if !strings.Contains(flags["nats-url"], "nats://"+n+":4222") {
			t.Errorf("%s: --nats-url %q does not list nats://%s:4222", where, flags["nats-url"], n)
		}
	}
	store := flags["store"]
	if strings.HasPrefix(store, "secret:") {
		return // with credentials, from a Secret the README asks for
	}
	if !strings.HasPrefix(store, "esdb://") {
		t.Errorf("%s: --store %q; want esdb://", where, store)
	}
	for _, n := range esdb {
		if !strings.Contains(store, n+":2113") {
			t.Errorf("%s: --store %q does not list %s:2113", where, store, n)
		}
	}
}

var natsImage = regexp.MustCompile(`^nats:(\d+)\.(\d+)(\.\d+)?(-alpine)?$`)

// checkNATSImage: atomic batch publish (bulk feeds) needs NATS 2.12; the
// health checks need wget, so the alpine variant.
func checkNATSImage(t *testing.T, where, image string) {
	t.Helper()
	m := natsImage.FindStringSubmatch(image)
	if m == nil || m[4] == "" {
		t.Errorf("%s: image %q; want nats:X.Y[.Z]-alpine", where, image)
		return
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major < 2 || major == 2 && minor < 12 {
		t.Errorf("%s: image %q; atomic batch publish needs nats 2.12 or newer", where, image)
	}
}

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	env := []string{"LEDGERD_CHECKPOINT_KEY=x", "LEDGERD_PERSON_KEY=x", "LEDGERD_VAULT_KEY=x", "LEDGERD_SCRAPE_TOKEN=x"}
	for _, v := range natsPasswords {
		env = append(env, v+"=x")
	}
	env = append(env, natsRoutePassword+"=route-pw")
	p, err := LoadCompose(context.Background(), composeFile, env)
	if err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	return p
}

// TestCompose loads compose.yaml as `docker compose config` does (schema,
// interpolation, consistency) and checks the production shape in it.
func TestCompose(t *testing.T) {
	p := loadCompose(t)
	if got := p.ServiceNames(); !slices.Equal(sorted(got), wantServices) {
		t.Errorf("services %v; want %v", sorted(got), wantServices)
	}
	for name, s := range p.Services {
		if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) == 0 {
			t.Errorf("service %s has no health check", name)
		}
		if s.Image == "" || strings.HasSuffix(s.Image, ":latest") || !strings.Contains(s.Image, ":") {
			t.Errorf("service %s: image %q; want a pinned tag", name, s.Image)
		}
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("service %s: bind mount: %v", name, err)
				}
			}
		}
		for _, pt := range s.Ports {
			if pt.HostIP != "127.0.0.1" {
				t.Errorf("service %s publishes %s on %q; bind it to 127.0.0.1", name, pt.Published, pt.HostIP)
			}
		}
	}
	for _, n := range natsNodes {
		checkNATSImage(t, "service "+n, p.Services[n].Image)
		// The route password and the route URLs that carry it (nats/cluster.conf).
		env := envMap(p.Services[n].Environment)
		if env[natsRoutePassword] != "route-pw" {
			t.Errorf("service %s: %s=%q; want it from deployments/.env", n, natsRoutePassword, env[natsRoutePassword])
		}
		for i, v := range natsRouteVars["cluster.conf"] {
			if want := "nats-route://route:route-pw@" + natsNodes[i] + ":6222"; env[v] != want {
				t.Errorf("service %s: %s=%q; want %q", n, v, env[v], want)
			}
		}
	}
	// Without the route password compose refuses to start, as without the users'.
	var env []string
	for _, v := range append(slices.Clone(natsPasswords), "LEDGERD_CHECKPOINT_KEY", "LEDGERD_PERSON_KEY", "LEDGERD_VAULT_KEY", "LEDGERD_SCRAPE_TOKEN") {
		env = append(env, v+"=x")
	}
	for _, unset := range [][]string{nil, {natsRoutePassword + "="}} {
		if _, err := LoadCompose(context.Background(), composeFile, append(slices.Clone(env), unset...)); err == nil || !strings.Contains(err.Error(), natsRoutePassword) {
			t.Errorf("compose.yaml loads with %s unset or empty (%v); it must refuse", natsRoutePassword, err)
		}
	}
	for _, n := range ledgerds {
		s := p.Services[n]
		flags := ledgerdFlags(t, "service "+n, s.Command, envMap(s.Environment))
		checkCluster(t, "service "+n, flags, natsNodes, esdbNodes)
		if s.Build == nil {
			t.Errorf("service %s: no build", n)
		} else if df := filepath.Join(s.Build.Context, s.Build.Dockerfile); !sameFile(df, dockerfile) {
			t.Errorf("service %s builds %s; want %s", n, df, dockerfile)
		}
		for _, dep := range append(slices.Clone(natsNodes), esdbNodes...) {
			if d, ok := s.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
				t.Errorf("service %s does not wait for %s to be healthy", n, dep)
			}
		}
		if !slices.Contains(s.HealthCheck.Test, "/usr/local/bin/probe") {
			t.Errorf("service %s: health check %v; want the image's /usr/local/bin/probe", n, s.HealthCheck.Test)
		}
	}
	// Prometheus scrapes exactly the ledgerd services.
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(read(t, filepath.Join(deployments, "prometheus", "prometheus.yml")), &prom); err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, sc := range prom.ScrapeConfigs {
		if sc.JobName == "ledgerd" {
			for _, s := range sc.StaticConfigs {
				targets = append(targets, s.Targets...)
			}
		}
	}
	var want []string
	for _, n := range ledgerds {
		want = append(want, n+":8080")
	}
	if !slices.Equal(sorted(targets), want) {
		t.Errorf("prometheus.yml scrapes ledgerd at %v; compose runs %v", targets, want)
	}
	// Grafana reads the provisioned dashboards where the provider looks.
	_, path := provisioned(t)
	mounted := false
	for _, v := range p.Services["grafana"].Volumes {
		if v.Target == path && sameFile(v.Source, filepath.Join(deployments, "grafana", "dashboards")) {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("grafana: deployments/grafana/dashboards is not mounted at the provider's path %s", path)
	}
}

func envMap(m types.MappingWithEquals) map[string]string {
	out := make(map[string]string)
	for k, v := range m {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func sameFile(a, b string) bool {
	ai, err1 := os.Stat(a)
	bi, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(ai, bi)
}

// TestKustomize builds the base and every overlay, decodes every object
// strictly into its k8s.io/api type and checks the shape.
func TestKustomize(t *testing.T) {
	overlays, _ := filepath.Glob(filepath.Join(deployments, "k8s", "overlays", "*"))
	dirs := slices.Clone(kustomize[:1])
	dirs = append(dirs, overlays...)
	if len(overlays) == 0 {
		t.Error("no overlays in deployments/k8s/overlays")
	}
	compose := loadCompose(t)
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			objs, err := Kustomize(dir)
			if err != nil {
				t.Fatal(err)
			}
			checkKube(t, objs, compose)
		})
	}
}

func checkKube(t *testing.T, objs []Object, compose *types.Project) {
	configMaps := map[string]*corev1.ConfigMap{}
	type workload struct {
		kind, name string
		replicas   int32
		selector   map[string]string
		pod        corev1.PodTemplateSpec
	}
	var workloads []workload
	var services []*corev1.Service
	var netpols []*networkingv1.NetworkPolicy
	pdbs := map[string]bool{}
	for _, o := range objs {
		if o.Kind != "Namespace" {
			if ns := o.Obj.(interface{ GetNamespace() string }).GetNamespace(); ns != "subsidy-ledger" {
				t.Errorf("%s %s: namespace %q; want subsidy-ledger", o.Kind, o.Name, ns)
			}
		}
		switch v := o.Obj.(type) {
		case *corev1.ConfigMap:
			configMaps[v.Name] = v
		case *appsv1.Deployment:
			workloads = append(workloads, workload{"Deployment", v.Name, deref(v.Spec.Replicas), v.Spec.Selector.MatchLabels, v.Spec.Template})
		case *appsv1.StatefulSet:
			workloads = append(workloads, workload{"StatefulSet", v.Name, deref(v.Spec.Replicas), v.Spec.Selector.MatchLabels, v.Spec.Template})
		case *corev1.Service:
			services = append(services, v)
		case *policyv1.PodDisruptionBudget:
			pdbs[v.Spec.Selector.MatchLabels["app.kubernetes.io/name"]] = true
		case *networkingv1.NetworkPolicy:
			netpols = append(netpols, v)
		}
	}
	replicas := map[string]int32{}
	images := map[string]string{}
	for _, w := range workloads {
		where := w.kind + " " + w.name
		replicas[w.name] = w.replicas
		for k, v := range w.selector {
			if w.pod.Labels[k] != v {
				t.Errorf("%s: selector %s=%s does not match its pod template", where, k, v)
			}
		}
		ps := w.pod.Spec
		if ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: pod does not set runAsNonRoot", where)
		}
		for _, c := range ps.Containers {
			cw := where + " container " + c.Name
			images[w.name] = c.Image
			if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s: needs a memory request and limit", cw)
			}
			if c.ReadinessProbe == nil || c.LivenessProbe == nil {
				t.Errorf("%s: needs readiness and liveness probes", cw)
			}
			if c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
				t.Errorf("%s: must set allowPrivilegeEscalation: false", cw)
			}
			for _, e := range c.EnvFrom {
				if e.ConfigMapRef != nil && configMaps[e.ConfigMapRef.Name] == nil {
					t.Errorf("%s: ConfigMap %s is not in the build", cw, e.ConfigMapRef.Name)
				}
				if e.SecretRef != nil && !operatorSecrets[e.SecretRef.Name] {
					t.Errorf("%s: Secret %s is neither built nor one the README asks for", cw, e.SecretRef.Name)
				}
			}
			for _, e := range c.Env {
				if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil && !operatorSecrets[r.SecretKeyRef.Name] {
					t.Errorf("%s: Secret %s is neither built nor one the README asks for", cw, r.SecretKeyRef.Name)
				}
			}
		}
		for _, v := range ps.Volumes {
			var cms []string
			if v.ConfigMap != nil {
				cms = append(cms, v.ConfigMap.Name)
			}
			if v.Projected != nil {
				for _, s := range v.Projected.Sources {
					if s.ConfigMap != nil {
						cms = append(cms, s.ConfigMap.Name)
						for _, it := range s.ConfigMap.Items {
							if cm := configMaps[s.ConfigMap.Name]; cm != nil {
								if _, ok := cm.Data[it.Key]; !ok {
									t.Errorf("%s: volume %s projects key %s that ConfigMap %s does not have", where, v.Name, it.Key, cm.Name)
								}
							}
						}
					}
				}
			}
			for _, name := range cms {
				if configMaps[name] == nil {
					t.Errorf("%s: volume %s: ConfigMap %s is not in the build", where, v.Name, name)
				}
			}
			if v.Secret != nil && !operatorSecrets[v.Secret.SecretName] {
				t.Errorf("%s: volume %s: Secret %s is neither built nor one the README asks for", where, v.Name, v.Secret.SecretName)
			}
		}
		if w.name == "ledgerd" {
			c := ps.Containers[0]
			env := map[string]string{}
			for _, e := range c.Env {
				env[e.Name] = e.Value
				if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
					env[e.Name] = "secret:" + r.SecretKeyRef.Name
				}
			}
			flags := ledgerdFlags(t, where, c.Args, env)
			var nats, esdb []string
			for i := range 3 {
				nats = append(nats, fmt.Sprintf("nats-%d.nats-headless", i))
				esdb = append(esdb, fmt.Sprintf("esdb-%d.esdb-headless", i))
			}
			checkCluster(t, where, flags, nats, esdb)
			if ps.SecurityContext.RunAsUser == nil || *ps.SecurityContext.RunAsUser != 65532 {
				t.Errorf("%s: runAsUser; want 65532 (the image's nonroot)", where)
			}
		}
		if w.name == "nats" {
			checkNATSImage(t, where, ps.Containers[0].Image)
			checkNATSRoutes(t, where, w.replicas, ps, configMaps)
			checkNATSNetworkPolicy(t, where, w.pod, netpols)
		}
	}
	for name, want := range map[string]int32{"nats": 3, "esdb": 3, "ledgerd": 2, "prometheus": 1, "grafana": 1} {
		if got, ok := replicas[name]; !ok {
			t.Errorf("no workload %s", name)
		} else if got < want {
			t.Errorf("%s: %d replicas; want at least %d", name, got, want)
		}
	}
	for _, n := range []string{"nats", "esdb", "ledgerd"} {
		if !pdbs[n] {
			t.Errorf("%s has no PodDisruptionBudget", n)
		}
	}
	// The same images as compose for everything but ledgerd (which the
	// overlays set to a released tag).
	same := map[string]string{"nats": "nats-1", "esdb": "esdb-1", "prometheus": "prometheus", "grafana": "grafana"}
	for k8s, svc := range same {
		if images[k8s] != compose.Services[svc].Image {
			t.Errorf("%s runs %s in Kubernetes but %s in compose", k8s, images[k8s], compose.Services[svc].Image)
		}
	}
	// Every Service selects some pods.
	for _, s := range services {
		found := false
		for _, w := range workloads {
			match := len(s.Spec.Selector) > 0
			for k, v := range s.Spec.Selector {
				if w.pod.Labels[k] != v {
					match = false
				}
			}
			found = found || match
		}
		if !found {
			t.Errorf("Service %s selects no pods", s.Name)
		}
	}
	// Prometheus loads every rule file; Grafana every dashboard.
	var rules, dashes *corev1.ConfigMap
	for name, cm := range configMaps {
		if strings.HasPrefix(name, "prometheus-rules") {
			rules = cm
		}
		if strings.HasPrefix(name, "grafana-dashboards") {
			dashes = cm
		}
	}
	for _, f := range glob(t, rulesGlob) {
		if rules == nil || rules.Data[filepath.Base(f)] == "" {
			t.Errorf("%s is not in the prometheus-rules ConfigMap", f)
		}
	}
	for _, f := range glob(t, dashGlob) {
		if dashes == nil || dashes.Data[filepath.Base(f)] == "" {
			t.Errorf("%s is not in the grafana-dashboards ConfigMap", f)
		}
	}
}

var kubeVarRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// checkNATSRoutes loads the NATS configuration of the built ConfigMap with
// the environment the StatefulSet gives its first pod (values from Secrets
// made up, $(VAR) expanded from the variables before it, as the kubelet
// does) and checks that the routes authenticate: cluster authorization with
// the route password from a Secret key, and route URLs to every pod that
// carry it.
func checkNATSRoutes(t *testing.T, where string, replicas int32, ps corev1.PodSpec, configMaps map[string]*corev1.ConfigMap) {
	t.Helper()
	c := ps.Containers[0]
	var cm *corev1.ConfigMap
	for _, v := range ps.Volumes {
		if v.ConfigMap != nil && configMaps[v.ConfigMap.Name] != nil && configMaps[v.ConfigMap.Name].Data["nats.conf"] != "" {
			cm = configMaps[v.ConfigMap.Name]
		}
	}
	if cm == nil {
		t.Errorf("%s: no ConfigMap with nats.conf among its volumes", where)
		return
	}
	if i := slices.Index(c.Args, "--config"); i < 0 || i+1 >= len(c.Args) || filepath.Base(c.Args[i+1]) != "nats.conf" {
		t.Errorf("%s: args %v; want --config .../nats.conf", where, c.Args)
	}
	dir := t.TempDir()
	for k, v := range cm.Data {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{}
	for _, e := range c.EnvFrom {
		if e.SecretRef != nil && e.SecretRef.Name == "nats-users" {
			for _, v := range natsPasswords {
				env[v] = "pw-" + v
			}
		}
	}
	var routePW string
	for _, e := range c.Env {
		switch r := e.ValueFrom; {
		case r == nil:
			env[e.Name] = kubeVarRef.ReplaceAllStringFunc(e.Value, func(ref string) string {
				if v, ok := env[ref[2:len(ref)-1]]; ok {
					return v
				}
				return ref
			})
		case r.FieldRef != nil && r.FieldRef.FieldPath == "metadata.name":
			env[e.Name] = "nats-0"
		case r.SecretKeyRef != nil:
			env[e.Name] = "secret-" + r.SecretKeyRef.Name + "-" + r.SecretKeyRef.Key
			if e.Name == natsRoutePassword {
				routePW = env[e.Name]
			}
		}
	}
	if routePW == "" {
		t.Errorf("%s: %s does not come from a Secret key (env, secretKeyRef)", where, natsRoutePassword)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	opts, err := natsserver.ProcessConfigFile(filepath.Join(dir, "nats.conf"))
	if err != nil {
		t.Errorf("%s: nats.conf with the pod's environment: %v", where, err)
		return
	}
	if opts.Cluster.Username == "" || routePW == "" || opts.Cluster.Password != routePW {
		t.Errorf("%s: cluster authorization user %q, password %q; want the route password from its Secret", where, opts.Cluster.Username, opts.Cluster.Password)
	}
	var hosts []string
	for _, u := range opts.Routes {
		hosts = append(hosts, u.Host)
		if pw, _ := u.User.Password(); u.User.Username() != opts.Cluster.Username || pw != opts.Cluster.Password {
			t.Errorf("%s: route %s does not carry the cluster's credentials", where, u.Redacted())
		}
	}
	var want []string
	for i := range replicas {
		want = append(want, fmt.Sprintf("nats-%d.nats-headless:6222", i))
	}
	if !slices.Equal(hosts, want) {
		t.Errorf("%s: routes to %v; want every pod, %v", where, hosts, want)
	}
}

// checkNATSNetworkPolicy: a NetworkPolicy isolates the nats pods so that
// their route port admits the nats pods only (no other pod, namespace or
// address), their monitoring port no other pod (the kubelet's probes come
// from the node, always let in), and the client port stays open to all.
func checkNATSNetworkPolicy(t *testing.T, where string, pod corev1.PodTemplateSpec, netpols []*networkingv1.NetworkPolicy) {
	t.Helper()
	selects := func(sel *metav1.LabelSelector, labels map[string]string) bool {
		s, err := metav1.LabelSelectorAsSelector(sel)
		return err == nil && s.Matches(k8slabels.Set(labels))
	}
	// A peer that admits only nats pods: a pod selector (in the policy's
	// own namespace) that requires the nats pods' name label.
	name := pod.Labels["app.kubernetes.io/name"]
	natsOnly := func(p networkingv1.NetworkPolicyPeer) bool {
		return p.PodSelector != nil && p.NamespaceSelector == nil && p.IPBlock == nil &&
			p.PodSelector.MatchLabels["app.kubernetes.io/name"] == name && selects(p.PodSelector, pod.Labels)
	}
	covers := func(np []networkingv1.NetworkPolicyPort, cp corev1.ContainerPort) bool {
		if len(np) == 0 {
			return true
		}
		for _, p := range np {
			switch {
			case p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP:
			case p.Port == nil:
				return true
			case p.Port.Type == intstr.String && p.Port.StrVal == cp.Name:
				return true
			case p.Port.Type == intstr.Int && p.Port.IntVal == cp.ContainerPort:
				return true
			case p.Port.Type == intstr.Int && p.EndPort != nil && p.Port.IntVal <= cp.ContainerPort && cp.ContainerPort <= *p.EndPort:
				return true
			}
		}
		return false
	}
	isolated := false
	open := map[string]bool{}     // ports admitted from anywhere
	fromNats := map[string]bool{} // ports admitted from the nats pods
	for _, np := range netpols {
		if !selects(&np.Spec.PodSelector, pod.Labels) {
			continue
		}
		if len(np.Spec.PolicyTypes) > 0 && !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			continue
		}
		isolated = true
		for i, rule := range np.Spec.Ingress {
			for _, cp := range pod.Spec.Containers[0].Ports {
				if !covers(rule.Ports, cp) {
					continue
				}
				if len(rule.From) == 0 {
					open[cp.Name] = true
				}
				if slices.ContainsFunc(rule.From, natsOnly) {
					fromNats[cp.Name] = true
				}
				others := len(rule.From) == 0 || slices.ContainsFunc(rule.From, func(p networkingv1.NetworkPolicyPeer) bool { return !natsOnly(p) })
				if (cp.ContainerPort == 6222 || cp.ContainerPort == 8222) && others {
					t.Errorf("%s: NetworkPolicy %s, ingress rule %d admits port %s from more than the nats pods", where, np.Name, i, cp.Name)
				}
			}
		}
	}
	if !isolated {
		t.Errorf("%s: no NetworkPolicy isolates its pods: anything in the cluster reaches the route port", where)
		return
	}
	for _, cp := range pod.Spec.Containers[0].Ports {
		switch cp.ContainerPort {
		case 6222:
			if !fromNats[cp.Name] {
				t.Errorf("%s: no NetworkPolicy admits the route port %s from the nats pods: the cluster cannot form", where, cp.Name)
			}
		case 8222:
		default:
			if !open[cp.Name] {
				t.Errorf("%s: the NetworkPolicy closes port %s (%d), which clients reach from anywhere", where, cp.Name, cp.ContainerPort)
			}
		}
	}
}

// TestNATSConfig: the cluster configurations load with nats-server's own
// option parser and form a three-node JetStream cluster.
func TestNATSConfig(t *testing.T) {
	// The publishing roles of ledgerd's embedded server, each a user here.
	src := string(read(t, filepath.Join(repo, "services", "natsbus", "auth.go")))
	m := regexp.MustCompile(`var Sources = \[\]string\{([^}]*)\}`).FindStringSubmatch(src)
	if m == nil {
		t.Fatal("services/natsbus/auth.go: no Sources list")
	}
	var sources []string
	for _, q := range strings.Split(m[1], ",") {
		if s, err := strconv.Unquote(strings.TrimSpace(q)); err == nil {
			sources = append(sources, s)
		}
	}
	t.Setenv("SERVER_NAME", "node-x")
	for _, v := range natsPasswords {
		t.Setenv(v, "pw-"+v)
	}
	const routePW = "0123456789abcdef0123456789abcdef"
	t.Setenv(natsRoutePassword, routePW)
	example := string(read(t, filepath.Join(deployments, "example.env")))
	for _, v := range append(slices.Clone(natsPasswords), natsRoutePassword) {
		if !strings.Contains(example, "\n"+v+"=") {
			t.Errorf("example.env does not list %s", v)
		}
	}
	for _, name := range []string{"cluster.conf", "cluster.k8s.conf"} {
		file := filepath.Join(deployments, "nats", name)
		for i, v := range natsRouteVars[name] {
			t.Setenv(v, fmt.Sprintf("nats-route://route:%s@node-%d:6222", routePW, i))
		}
		opts, err := natsserver.ProcessConfigFile(file)
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if !opts.JetStream || opts.StoreDir == "" {
			t.Errorf("%s: JetStream is not enabled with a store_dir", file)
		}
		if opts.ServerName != "node-x" {
			t.Errorf("%s: server_name %q; want it from $SERVER_NAME", file, opts.ServerName)
		}
		if opts.Cluster.Name == "" || opts.Cluster.Port == 0 || len(opts.Routes) != 3 {
			t.Errorf("%s: want a named cluster with three routes; got name %q, port %d, %d routes", file, opts.Cluster.Name, opts.Cluster.Port, len(opts.Routes))
		}
		if opts.HTTPPort == 0 {
			t.Errorf("%s: no monitoring port: the health checks need /healthz", file)
		}
		// Compose has no network policy: monitoring (unauthenticated, it
		// lists every connection's user and address) on loopback, where
		// the health check runs.
		if name == "cluster.conf" && opts.HTTPHost != "127.0.0.1" {
			t.Errorf("%s: monitoring listens on %q; want 127.0.0.1 (compose has no network policy)", file, opts.HTTPHost)
		}
		// Routes authenticate: a server without the route password cannot
		// join (a route bypasses every user and permission), and this
		// node presents it on every route it solicits.
		if opts.Cluster.Username == "" || opts.Cluster.Password != routePW {
			t.Errorf("%s: cluster authorization user %q, password %q; want a user and the password from $%s", file, opts.Cluster.Username, opts.Cluster.Password, natsRoutePassword)
		}
		if opts.Cluster.TLSMap || opts.Cluster.TLSCheckKnownURLs || opts.CustomRouterAuthentication != nil {
			t.Errorf("%s: route authentication other than the route password; the checks here assume that one", file)
		}
		for i, u := range opts.Routes {
			pw, _ := u.User.Password()
			if u.User == nil || u.User.Username() != opts.Cluster.Username || pw != opts.Cluster.Password {
				t.Errorf("%s: route %s does not carry the cluster's credentials", file, u.Redacted())
			}
			if want := fmt.Sprintf("node-%d:6222", i); u.Host != want {
				t.Errorf("%s: route %d is %s; want it from $%s (%s)", file, i, u.Host, natsRouteVars[name][i], want)
			}
		}
		users := map[string]*natsserver.User{}
		for _, u := range opts.Users {
			users[u.Username] = u
			if u.Password == "" || !strings.HasPrefix(u.Password, "pw-") {
				t.Errorf("%s: user %s: password %q does not come from the environment", file, u.Username, u.Password)
			}
		}
		if opts.NoAuthUser != "" || len(users) == 0 {
			t.Errorf("%s: clients must authenticate", file)
		}
		for _, s := range sources {
			want := []string{"subsidy.in." + s + ".>"}
			if s == "enrolment" { // and the trainees' personal data (services/natsbus PIISources)
				want = append(want, "subsidy.pii.enrolment")
			}
			found := false
			for _, u := range users {
				if p := u.Permissions; p != nil && p.Publish != nil && slices.Equal(p.Publish.Allow, want) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: no user may publish %v (and only that)", file, want)
			}
		}
		if u := users["ledgerd"]; u == nil || u.Permissions == nil || u.Permissions.Publish == nil || len(u.Permissions.Publish.Deny) == 0 {
			t.Errorf("%s: user ledgerd must exist and be denied destroying streams", file)
		}
		// Replies: every other user with permissions reads only its own
		// inbox (services/natsbus InboxPrefix), never another's or
		// ledgerd's (which gets the facts and personal data).
		for name, u := range users {
			if name == "ledgerd" || u.Permissions == nil {
				continue
			}
			if u.Permissions.Subscribe == nil {
				t.Errorf("%s: user %s may subscribe to anything", file, name)
				continue
			}
			for _, subj := range u.Permissions.Subscribe.Allow {
				if (strings.HasPrefix(subj, "_") || strings.HasPrefix(subj, ">") || strings.HasPrefix(subj, "*")) && subj != "_INBOX."+name+".>" {
					t.Errorf("%s: user %s may subscribe to %s; its inbox is _INBOX.%s.> only", file, name, subj, name)
				}
			}
		}
	}
}

// TestDockerfile parses the image build with BuildKit's own parser and
// linter (as `docker build --check` would) and checks the build: a Go
// builder stage with CGO off that builds ledgerd and the probe, and a
// distroless or scratch final stage that runs as nonroot.
func TestDockerfile(t *testing.T) {
	res, err := dfparser.Parse(bytes.NewReader(read(t, dockerfile)))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range res.Warnings {
		t.Errorf("%s: %s", dockerfile, w.Short)
	}
	var lints []string
	lint := linter.New(&linter.Config{Warn: func(rule, desc, url, msg string, loc []dfparser.Range) {
		lints = append(lints, fmt.Sprintf("%s: %s", rule, msg))
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lints {
		t.Errorf("%s: %s", dockerfile, l)
	}
	if len(stages) < 2 {
		t.Fatalf("%s: %d stages; want a builder and a final stage", dockerfile, len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(build.BaseName, "golang:") {
		t.Errorf("builder stage FROM %s; want golang:", build.BaseName)
	}
	if !strings.HasPrefix(final.BaseName, "gcr.io/distroless/static") && final.BaseName != "scratch" {
		t.Errorf("final stage FROM %s; want distroless/static or scratch", final.BaseName)
	}
	src := string(read(t, dockerfile))
	for _, want := range []string{"CGO_ENABLED=0", "./services/cmd/ledgerd", "services/cmd/ledgerctl", "deployments/probe"} {
		if !strings.Contains(src, want) {
			t.Errorf("%s does not mention %s", dockerfile, want)
		}
	}
	var user string
	var exposed []string
	volume := false
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.ExposeCommand:
			exposed = append(exposed, c.Ports...)
		case *instructions.VolumeCommand:
			volume = true
		}
	}
	if user != "65532:65532" && user != "65532" && user != "nonroot" && user != "nonroot:nonroot" {
		t.Errorf("final stage USER %q; want nonroot (65532)", user)
	}
	if !slices.Contains(exposed, "8080") {
		t.Errorf("final stage EXPOSE %v; want 8080", exposed)
	}
	if !volume {
		t.Error("final stage declares no VOLUME for the data directory")
	}
	// The context filter must let the build see what it builds.
	ignore := string(read(t, dockerfile+".dockerignore"))
	if !strings.Contains(ignore, "!deployments/probe") {
		t.Errorf("%s.dockerignore hides deployments/probe", dockerfile)
	}
}
