package monitoring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/stratametrics/strata/internal/harness"
)

// root is the repository root, from this package.
const root = ".."

// The files in the repository are what the generator writes now: a change
// to the alerts or dashboards without `make monitoring` fails here, and so
// does an edit of a generated file.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, f := range files {
		want[filepath.Join(root, f.Path)] = true
		have, err := os.ReadFile(filepath.Join(root, f.Path))
		if err != nil {
			t.Errorf("%s: %v; run `make monitoring`", f.Path, err)
			continue
		}
		if !bytes.Equal(have, f.Data) {
			t.Errorf("%s is not what monitoring/ generates; run `make monitoring` (and edit monitoring/*.go, not the file)", f.Path)
		}
	}
	// A dashboard left behind would be in the chart without a ConfigMap
	// key, or a stale copy of a renamed one.
	present, err := filepath.Glob(filepath.Join(root, DashboardsDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range present {
		if !want[p] {
			t.Errorf("%s is no dashboard of monitoring/dashboards.go; `make monitoring` removes it", p)
		}
	}
}

// alertNames are the alerts, in order.
func alertNames() []string {
	var names []string
	for _, g := range Groups {
		for _, a := range g.Alerts {
			names = append(names, a.Name)
		}
	}
	return names
}

func TestAlertDefinitions(t *testing.T) {
	seen := map[string]bool{}
	alertName := regexp.MustCompile(`^Strata[A-Z][A-Za-z0-9]+$`)
	for _, g := range Groups {
		if len(g.Alerts) == 0 {
			t.Errorf("group %s has no alerts", g.Name)
		}
		for _, a := range g.Alerts {
			if seen[a.Name] {
				t.Errorf("alert %s is defined twice", a.Name)
			}
			seen[a.Name] = true
			if !alertName.MatchString(a.Name) {
				t.Errorf("alert %q: want a CamelCase name beginning with Strata", a.Name)
			}
			if a.Severity != Critical && a.Severity != Warning {
				t.Errorf("alert %s: severity %q", a.Name, a.Severity)
			}
			if a.For != "" {
				if _, err := model.ParseDuration(a.For); err != nil {
					t.Errorf("alert %s: for %q: %v", a.Name, a.For, err)
				}
			}
			for field, text := range map[string]string{"Summary": a.Summary, "Description": a.Description, "Meaning": a.Meaning, "Confirm": a.Confirm, "Act": a.Act} {
				if strings.TrimSpace(text) == "" {
					t.Errorf("alert %s has no %s", a.Name, field)
				}
			}
			if _, err := ParseExpr(a.Expr); err != nil {
				t.Errorf("alert %s: %v", a.Name, err)
			}
		}
	}
}

// Every link of the runbook to one of its sections names an alert (the
// anchor the heading gets), so a renamed alert cannot leave a dead link.
func TestRunbookLinks(t *testing.T) {
	rb, err := Runbook()
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(rb), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			anchors[strings.ToLower(strings.ReplaceAll(h, " ", "-"))] = true
		}
	}
	for _, n := range alertNames() {
		if !anchors[strings.ToLower(n)] {
			t.Errorf("the runbook has no section for %s", n)
		}
	}
	links := regexp.MustCompile(`\]\(#([^)]+)\)`).FindAllStringSubmatch(string(rb), -1)
	if len(links) < len(alertNames()) {
		t.Fatalf("only %d links to the runbook's sections", len(links))
	}
	for _, l := range links {
		if !anchors[l[1]] {
			t.Errorf("the runbook links to #%s, which no heading has", l[1])
		}
	}
}

// The chart's expressions are the plain ones with the release's namespace
// on every selector and its block builders' claims on the kubelet's.
func TestReleaseExpr(t *testing.T) {
	got, err := ReleaseExpr(`up{job="router"} == 0 and on (namespace) kubelet_volume_stats_available_bytes{`+blockBuilderPVC+`} < 1`, "ns", "r-strata-blockbuilder")
	if err != nil {
		t.Fatal(err)
	}
	want := `up{job="router",namespace="ns"} == 0 and on (namespace) kubelet_volume_stats_available_bytes{namespace="ns",persistentvolumeclaim=~"data-r-strata-blockbuilder-[0-9]+"} < 1`
	if got != want {
		t.Errorf("ReleaseExpr:\n got %s\nwant %s", got, want)
	}
	if _, err := ReleaseExpr(`up{namespace="other"}`, "ns", "x"); err == nil {
		t.Error("ReleaseExpr kept a namespace of its own")
	}
}

// Grafana's variables, and what stands for them when a query is run
// outside Grafana: every value (".*", as All is), and a range that fits
// the tests' one-second scrapes.
var rateInterval = "1m"

// expand replaces a dashboard's variables in a query with vals (name to
// regexp), and $__rate_interval with rateInterval.
func expand(q string, d Dashboard, vals map[string]string) string {
	q = strings.ReplaceAll(q, "$__rate_interval", rateInterval)
	for _, v := range d.Vars {
		val, ok := vals[v.Name]
		if !ok {
			val = ".*"
		}
		q = strings.ReplaceAll(q, "$"+v.Name, val)
	}
	return q
}

// query is one PromQL expression of the alerts or dashboards, Grafana's
// variables replaced.
type query struct {
	where string
	expr  string
	// panel is the panel's title, "" for alerts and variables.
	panel string
	// variable: a variable's selector, which gives series as scraped.
	variable bool
}

// allQueries lists every expression: each alert's (as in the plain rules
// file), each panel target's and each variable's selector.
func allQueries(vals map[string]string) []query {
	var qs []query
	for _, g := range Groups {
		for _, a := range g.Alerts {
			qs = append(qs, query{where: "alert " + a.Name, expr: a.Expr})
		}
	}
	for _, d := range Dashboards {
		for _, v := range d.Vars {
			qs = append(qs, query{where: fmt.Sprintf("%s variable %s", d.UID, v.Name), expr: expand(v.Selector, d, vals), variable: true})
		}
		for _, r := range d.Rows {
			for _, p := range r.Panels {
				for i, tg := range p.Targets {
					qs = append(qs, query{where: fmt.Sprintf("%s panel %q target %d", d.UID, p.Title, i), expr: expand(tg.Expr, d, vals), panel: p.Title})
				}
			}
		}
	}
	return qs
}

// exposition is what the scraped processes expose: each metric name, and
// the label names its series carry.
type exposition map[string]map[string]bool

// selectors lists the metric names and label matchers an expression
// selects with.
func selectors(e parser.Expr) []*parser.VectorSelector {
	var out []*parser.VectorSelector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out
}

func metricName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

// unexposed tells what of an expression the processes do not expose: a
// metric name no process has (and no ExternalMetrics entry), a selector
// without a metric name, or a label matched on that the metric's series do
// not carry (target labels aside: Prometheus adds those).
func unexposed(expr string, exp exposition) ([]string, error) {
	e, err := ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, vs := range selectors(e) {
		name := metricName(vs)
		switch {
		case name == "":
			problems = append(problems, fmt.Sprintf("%s selects no metric by name", vs))
			continue
		case ExternalMetrics[name] != "":
			continue
		case exp[name] == nil:
			problems = append(problems, fmt.Sprintf("no process exposes %s", name))
			continue
		}
		for _, m := range vs.LabelMatchers {
			if m.Name != model.MetricNameLabel && !slices.Contains(TargetLabels, m.Name) && !exp[name][m.Name] {
				problems = append(problems, fmt.Sprintf("%s has no label %s", name, m.Name))
			}
		}
	}
	return problems, nil
}

// The check of TestQueriesSelectExposedMetrics, on made-up expositions:
// it must catch a renamed metric and a renamed label.
func TestUnexposedCatchesRenames(t *testing.T) {
	exp := exposition{"strata_router_requests_total": {"tenant": true, "code": true}}
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (code) (rate(strata_router_requests_total{code=~"5..", namespace="x"}[5m]))`, nil},
		{`rate(strata_router_request_total[5m])`, []string{"no process exposes strata_router_request_total"}},
		{`strata_router_requests_total{status="503"}`, []string{"strata_router_requests_total has no label status"}},
		{`{__name__=~"strata_.*"}`, []string{`{__name__=~"strata_.*"} selects no metric by name`}},
		{`up == 0 and kubelet_volume_stats_available_bytes{persistentvolumeclaim="x"} > 0`, nil},
	} {
		got, err := unexposed(tc.expr, exp)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("unexposed(%s) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

// The dashboards are Grafana dashboard JSON: a schema version, a unique
// uid, unique panel ids, panels that do not overlap on the grid, every
// query on the ${datasource} variable of type prometheus, and no variable
// used that the dashboard does not declare.
func TestDashboardsJSON(t *testing.T) {
	uids := map[string]bool{}
	for _, d := range Dashboards {
		t.Run(d.UID, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(root, DashboardsDir, d.File))
			if err != nil {
				t.Fatal(err)
			}
			var dash struct {
				UID           string `json:"uid"`
				Title         string `json:"title"`
				SchemaVersion int    `json:"schemaVersion"`
				Templating    struct {
					List []struct {
						Name       string          `json:"name"`
						Type       string          `json:"type"`
						Query      json.RawMessage `json:"query"`
						Datasource *dsRef          `json:"datasource"`
					} `json:"list"`
				} `json:"templating"`
				Panels []struct {
					ID         int    `json:"id"`
					Type       string `json:"type"`
					Title      string `json:"title"`
					Datasource *dsRef `json:"datasource"`
					GridPos    struct{ H, W, X, Y int }
					Targets    []struct {
						RefID      string `json:"refId"`
						Expr       string `json:"expr"`
						Datasource *dsRef `json:"datasource"`
					} `json:"targets"`
				} `json:"panels"`
			}
			dec := json.NewDecoder(bytes.NewReader(data))
			if err := dec.Decode(&dash); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if dash.UID == "" || uids[dash.UID] || dash.Title == "" {
				t.Errorf("uid %q (seen before: %v), title %q: want a unique uid and a title", dash.UID, uids[dash.UID], dash.Title)
			}
			uids[dash.UID] = true
			if dash.SchemaVersion < 36 {
				t.Errorf("schemaVersion %d: want one with data source references by uid (36 and later)", dash.SchemaVersion)
			}

			declared := map[string]bool{}
			for i, v := range dash.Templating.List {
				declared[v.Name] = true
				if i == 0 {
					if v.Name != "datasource" || v.Type != "datasource" || string(v.Query) != `"prometheus"` {
						t.Errorf("first variable %s of type %s, query %s: want datasource of type datasource, query prometheus", v.Name, v.Type, v.Query)
					}
					continue
				}
				if !v.Datasource.isVariable() {
					t.Errorf("variable %s queries %+v, not ${datasource}", v.Name, v.Datasource)
				}
			}
			used := regexp.MustCompile(`\$\{?([A-Za-z_]\w*)`)

			ids := map[int]bool{}
			var boxes [][4]int
			queries := 0
			for _, p := range dash.Panels {
				if p.ID <= 0 || ids[p.ID] {
					t.Errorf("panel %q has id %d, not unique and positive", p.Title, p.ID)
				}
				ids[p.ID] = true
				g := p.GridPos
				if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 || g.Y < 0 {
					t.Errorf("panel %q at %+v: off Grafana's 24 columns", p.Title, g)
				}
				for _, b := range boxes {
					if g.X < b[0]+b[2] && b[0] < g.X+g.W && g.Y < b[1]+b[3] && b[1] < g.Y+g.H {
						t.Errorf("panel %q at %+v overlaps another at %v", p.Title, g, b)
					}
				}
				boxes = append(boxes, [4]int{g.X, g.Y, g.W, g.H})
				if p.Type == "row" || p.Type == "text" {
					continue
				}
				if !p.Datasource.isVariable() || len(p.Targets) == 0 {
					t.Errorf("panel %q: data source %+v, %d targets: want ${datasource} and queries", p.Title, p.Datasource, len(p.Targets))
				}
				refs := map[string]bool{}
				for _, tg := range p.Targets {
					queries++
					if tg.RefID == "" || refs[tg.RefID] || tg.Expr == "" || !tg.Datasource.isVariable() {
						t.Errorf("panel %q: target %+v: want a unique refId, an expression and ${datasource}", p.Title, tg)
					}
					refs[tg.RefID] = true
					for _, m := range used.FindAllStringSubmatch(tg.Expr, -1) {
						if !declared[m[1]] && !strings.HasPrefix(m[1], "__") {
							t.Errorf("panel %q uses $%s, which the dashboard does not declare", p.Title, m[1])
						}
					}
				}
			}
			if queries == 0 {
				t.Error("no queries")
			}
		})
	}
}

type dsRef struct{ Type, UID string }

func (d *dsRef) isVariable() bool {
	return d != nil && d.Type == "prometheus" && d.UID == "${datasource}"
}

// Every query parses, and keeps to the dashboard's namespace: a panel
// that forgets $namespace would mix in other releases' series.
func TestDashboardQueriesKeepToTheNamespace(t *testing.T) {
	for _, d := range Dashboards {
		for _, r := range d.Rows {
			for _, p := range r.Panels {
				for _, tg := range p.Targets {
					e, err := ParseExpr(expand(tg.Expr, d, map[string]string{"namespace": "NS"}))
					if err != nil {
						t.Errorf("%s panel %q: %v\n%s", d.UID, p.Title, err, tg.Expr)
						continue
					}
					for _, vs := range selectors(e) {
						ok := false
						for _, m := range vs.LabelMatchers {
							ok = ok || (m.Name == "namespace" && m.Type == labels.MatchRegexp && m.Value == "NS")
						}
						if !ok {
							t.Errorf("%s panel %q: %s does not keep to $namespace", d.UID, p.Title, vs)
						}
					}
				}
			}
		}
	}
}

func runPromtool(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(harness.Tool(t, "promtool"), args...)
	// rules_test.yml names its rules file relative to itself.
	cmd.Dir = "."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtoolCheckRules(t *testing.T) {
	out := runPromtool(t, "check", "rules", filepath.Base(RulesPath))
	if want := fmt.Sprintf("SUCCESS: %d rules found", len(alertNames())); !strings.Contains(out, want) {
		t.Errorf("promtool check rules: want %q in\n%s", want, out)
	}
}

// promtool's unit tests of the rules, and a check that they test every
// alert both ways: firing on some series, and silent (at a time before it
// fires, or on healthy series only).
func TestPromtoolTestRules(t *testing.T) {
	data, err := os.ReadFile("rules_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(file.RuleFiles, []string{filepath.Base(RulesPath)}) {
		t.Fatalf("rules_test.yml tests %v, want the generated %s", file.RuleFiles, filepath.Base(RulesPath))
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range file.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	var missing []string
	for _, n := range alertNames() {
		if !fires[n] {
			missing = append(missing, n+" (firing)")
		}
		if !silent[n] {
			missing = append(missing, n+" (silent)")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("rules_test.yml has no test of %s", strings.Join(missing, ", "))
	}
	out := runPromtool(t, "test", "rules", "rules_test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules:\n%s", out)
	}
}
