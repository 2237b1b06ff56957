// The chart's alerts and dashboards (monitoring.*), which monitoring/
// generates: rendered, checked by promtool, and installed into a real API
// server with the Prometheus Operator's PrometheusRule kind.

package helm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/monitoring"
)

// prometheusRuleAPI is the kind the Prometheus Operator's CRD adds; the
// chart makes its PrometheusRule only in a cluster that has it.
const prometheusRuleAPI = "monitoring.coreos.com/v1/PrometheusRule"

// monitoringOn turns on the alerts and the dashboards, with the settings
// a kube-prometheus-stack user gives them.
var monitoringOn = []string{
	"--set", "monitoring.rules.enabled=true",
	"--set", "monitoring.rules.labels.release=kube-prometheus-stack",
	"--set", "monitoring.rules.runbookBaseURL=https://runbooks.example.org/strata.md",
	"--set", "monitoring.dashboards.enabled=true",
}

// renderMonitoring renders release in namespace with the defaults set and
// extra arguments, for a cluster with the ServiceMonitor kind and, when
// withRuleKind, the PrometheusRule kind.
func renderMonitoring(t *testing.T, h *cli, release, namespace string, withRuleKind bool, extra ...string) (manifest, string) {
	t.Helper()
	args := []string{"template", release, chartDir, "--namespace", namespace, "--values", valueSets[0].file, "--api-versions", serviceMonitorAPI}
	if withRuleKind {
		args = append(args, "--api-versions", prometheusRuleAPI)
	}
	out := h.must(t, "", append(args, extra...)...)
	return parseManifest(t, out), out
}

type prometheusRule struct {
	Metadata objectMeta `yaml:"metadata"`
	Spec     struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	} `yaml:"spec"`
}

// The defaults make neither: both are opt-in, like the ServiceMonitor.
func TestMonitoringIsOffByDefault(t *testing.T) {
	h := newHelm(t)
	m, _ := renderMonitoring(t, h, "strata", "monitoring", true)
	if n := len(m.ofKind("PrometheusRule")); n != 0 {
		t.Errorf("the defaults render %d PrometheusRules", n)
	}
	if cm := m.byName("ConfigMap", "strata-dashboards"); cm != nil {
		t.Errorf("the defaults render %s", cm)
	}
}

// With monitoring on, the release has the alerts of monitoring/ as a
// PrometheusRule, with the release's namespace on every selector (and its
// block builders' claims on the kubelet's), the annotations as Prometheus
// will template them (Helm left their {{ }} alone) and runbook links on the
// configured base; promtool accepts its rules. Releases of another name and
// namespace get their own.
func TestMonitoringRendersTheAlerts(t *testing.T) {
	h := newHelm(t)
	for _, rel := range []struct{ release, namespace string }{{"strata", "monitoring"}, {"metrics", "observability"}} {
		t.Run(rel.release, func(t *testing.T) {
			m, _ := renderMonitoring(t, h, rel.release, rel.namespace, true, monitoringOn...)
			var pr prometheusRule
			m.find(t, "PrometheusRule", "strata").decode(t, &pr)
			if pr.Metadata.Namespace != rel.namespace || pr.Metadata.Labels["release"] != "kube-prometheus-stack" {
				t.Errorf("PrometheusRule in namespace %q with labels %v: want %q and monitoring.rules.labels", pr.Metadata.Namespace, pr.Metadata.Labels, rel.namespace)
			}
			var sts workload
			m.find(t, "StatefulSet", "-blockbuilder").decode(t, &sts)

			if len(pr.Spec.Groups) != len(monitoring.Groups) {
				t.Fatalf("%d rule groups, want %d", len(pr.Spec.Groups), len(monitoring.Groups))
			}
			for i, g := range monitoring.Groups {
				got := pr.Spec.Groups[i]
				if got.Name != g.Name || len(got.Rules) != len(g.Alerts) {
					t.Errorf("group %d is %s with %d rules, want %s with %d", i, got.Name, len(got.Rules), g.Name, len(g.Alerts))
					continue
				}
				for j, a := range g.Alerts {
					r := got.Rules[j]
					expr, err := monitoring.ReleaseExpr(a.Expr, rel.namespace, sts.Metadata.Name)
					if err != nil {
						t.Fatal(err)
					}
					want := map[string]string{
						"summary":     a.Summary,
						"description": a.Description,
						"runbook_url": "https://runbooks.example.org/strata.md#" + a.Anchor(),
					}
					if r.Alert != a.Name || r.Expr != expr || r.For != a.For || r.Labels["severity"] != string(a.Severity) || fmt.Sprint(r.Annotations) != fmt.Sprint(want) {
						t.Errorf("rule %s:\n got %+v\nwant expr %s, for %q, severity %s, annotations %v", a.Name, r, expr, a.For, a.Severity, want)
					}
				}
			}

			// The rules as Prometheus loads them from the operator.
			var spec strings.Builder
			spec.WriteString("groups:\n")
			for _, g := range pr.Spec.Groups {
				fmt.Fprintf(&spec, "  - name: %q\n    rules:\n", g.Name)
				for _, r := range g.Rules {
					fmt.Fprintf(&spec, "      - alert: %q\n        expr: %q\n", r.Alert, r.Expr)
					if r.For != "" {
						fmt.Fprintf(&spec, "        for: %q\n", r.For)
					}
					fmt.Fprintf(&spec, "        labels: {severity: %q}\n        annotations:\n", r.Labels["severity"])
					for _, k := range sortedKeys(r.Annotations) {
						fmt.Fprintf(&spec, "          %s: %q\n", k, r.Annotations[k])
					}
				}
			}
			file := filepath.Join(t.TempDir(), "rules.yml")
			if err := os.WriteFile(file, []byte(spec.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(harness.Tool(t, "promtool"), "check", "rules", file).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "SUCCESS") {
				t.Errorf("promtool check rules on the chart's PrometheusRule: %v\n%s", err, out)
			}
		})
	}
}

// The dashboards ConfigMap carries every dashboard file of the chart
// byte for byte, with the label kube-prometheus-stack's Grafana sidecar
// looks for, in the namespace asked for; and it does not depend on the
// PrometheusRule kind, which Grafana does not need.
func TestMonitoringRendersTheDashboards(t *testing.T) {
	h := newHelm(t)
	m, _ := renderMonitoring(t, h, "strata", "monitoring", true, monitoringOn...)
	var cm configMap
	m.find(t, "ConfigMap", "-dashboards").decode(t, &cm)
	if cm.Metadata.Labels["grafana_dashboard"] != "1" || cm.Metadata.Namespace != "monitoring" {
		t.Errorf("dashboards ConfigMap in %q with labels %v: want the release's namespace and grafana_dashboard: \"1\"", cm.Metadata.Namespace, cm.Metadata.Labels)
	}
	files, err := filepath.Glob(filepath.Join(chartDir, "dashboards", "*.json"))
	if err != nil || len(files) != len(monitoring.Dashboards) {
		t.Fatalf("dashboard files %v (%v), want %d", files, err, len(monitoring.Dashboards))
	}
	if len(cm.Data) != len(files) {
		t.Errorf("the ConfigMap has %d dashboards, the chart %d", len(cm.Data), len(files))
	}
	for _, f := range files {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := cm.Data[filepath.Base(f)]; !ok || got != strings.TrimSuffix(string(want), "\n") {
			t.Errorf("the ConfigMap's %s is not the chart's file (present: %v)", filepath.Base(f), ok)
		}
	}

	elsewhere, _ := renderMonitoring(t, h, "strata", "monitoring", false, append(monitoringOn, "--set", "monitoring.dashboards.namespace=grafana")...)
	var moved configMap
	elsewhere.find(t, "ConfigMap", "-dashboards").decode(t, &moved)
	if moved.Metadata.Namespace != "grafana" {
		t.Errorf("monitoring.dashboards.namespace=grafana puts the ConfigMap in %q", moved.Metadata.Namespace)
	}
	if n := len(elsewhere.ofKind("PrometheusRule")); n != 0 {
		t.Errorf("without the PrometheusRule kind the chart renders %d PrometheusRules", n)
	}
}

// Without the kind, the PrometheusRule is left out and nothing else
// changes, so an install before kube-prometheus-stack's succeeds.
func TestPrometheusRuleNeedsItsKind(t *testing.T) {
	h := newHelm(t)
	with, _ := renderMonitoring(t, h, "strata", "monitoring", true, monitoringOn...)
	without, _ := renderMonitoring(t, h, "strata", "monitoring", false, monitoringOn...)
	if n := len(with.ofKind("PrometheusRule")); n != 1 {
		t.Fatalf("with the kind: %d PrometheusRules, want 1", n)
	}
	var rest manifest
	for _, o := range with {
		if o.Kind != "PrometheusRule" {
			rest = append(rest, o)
		}
	}
	if fmt.Sprint(without) != fmt.Sprint(rest) {
		t.Fatalf("without the kind the chart renders %v, want %v", without, rest)
	}
	for i, o := range without {
		if o.text != rest[i].text {
			t.Errorf("without the kind %s is\n%s\nwant\n%s", o, o.text, rest[i].text)
		}
	}
}

func TestMonitoringLint(t *testing.T) {
	h := newHelm(t)
	out := h.must(t, "", append([]string{"lint", "--strict", chartDir, "--values", valueSets[0].file}, monitoringOn...)...)
	if !strings.Contains(out, "0 chart(s) failed") {
		t.Fatalf("helm lint did not pass:\n%s", out)
	}
	for _, bad := range []struct{ set, want string }{
		{"monitoring.rules.enable=true", "'enable'"},
		{"monitoring.rules.runbookBaseURL=has space", "/monitoring/rules/runbookBaseURL"},
		{"monitoring.dashboards.namespace=Not_A_Namespace", "/monitoring/dashboards/namespace"},
	} {
		_, err := h.run("", "template", "r", chartDir, "--values", valueSets[0].file, "--set", bad.set)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("--set %s: want an error naming %q, got %v", bad.set, bad.want, err)
		}
	}
}

// TestMonitoringInstall installs the release with monitoring on into a
// real API server that has the Prometheus Operator's kinds: strict
// server-side validation of the PrometheusRule and the dashboards
// ConfigMap, a helm install that stores both, and a refusal of a
// PrometheusRule with a misspelt field, which shows the kind's schema is
// what judges them.
func TestMonitoringInstall(t *testing.T) {
	kubeconfig := startControlPlane(t)
	h := newHelm(t).withKubeconfig(kubeconfig)
	kubectl := &cli{bin: harness.Tool(t, "kubectl"), env: h.env}
	for _, crd := range []string{"testdata/servicemonitor-crd.yaml", "testdata/prometheusrule-crd.yaml"} {
		kubectl.must(t, "", "apply", "--validate=strict", "-f", crd)
	}
	kubectl.must(t, "", "wait", "--for=condition=Established", "--timeout=60s",
		"crd/servicemonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com")

	ns := "observed"
	kubectl.must(t, "", "create", "namespace", ns)
	m, text := renderMonitoring(t, h, "strata", ns, true, monitoringOn...)
	kubectl.must(t, text, "apply", "--dry-run=server", "--validate=strict", "--namespace", ns, "-f", "-")

	h.must(t, "", append([]string{"install", "strata", chartDir, "--namespace", ns, "--values", valueSets[0].file}, monitoringOn...)...)
	stored := getJSON[struct {
		Spec struct {
			Groups []struct {
				Rules []struct {
					Alert string `json:"alert"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}](t, kubectl, ns, "prometheusrule/strata")
	n := 0
	for _, g := range stored.Spec.Groups {
		n += len(g.Rules)
	}
	want := 0
	for _, g := range monitoring.Groups {
		want += len(g.Alerts)
	}
	if n != want {
		t.Errorf("the stored PrometheusRule has %d rules, want %d", n, want)
	}
	cm := getJSON[configMap](t, kubectl, ns, "configmap/strata-dashboards")
	if len(cm.Data) != len(monitoring.Dashboards) {
		t.Errorf("the stored dashboards ConfigMap has %d dashboards, want %d", len(cm.Data), len(monitoring.Dashboards))
	}

	obj := m.find(t, "PrometheusRule", "strata")
	broken := strings.Replace(obj.text, "expr:", "exp:", 1)
	if broken == obj.text {
		t.Fatalf("no expr: to misspell in\n%s", obj.text)
	}
	_, err := kubectl.run("---\n"+broken, "apply", "--dry-run=server", "--validate=strict", "--namespace", ns, "-f", "-")
	if err == nil || !strings.Contains(err.Error(), `unknown field "spec.groups[0].rules[0].exp"`) {
		t.Fatalf("want the CRD's schema to refuse spec.groups[0].rules[0].exp, got %v", err)
	}
}
