package helm

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stratametrics/strata/functions"
	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/limits"
	"github.com/stratametrics/strata/otlp"
	"github.com/stratametrics/strata/shard"
	"github.com/stratametrics/strata/validation"
)

// chartDir is the chart, relative to this package.
const chartDir = "strata"

// valueSets are the configurations every chart test renders; each file
// says what it exercises.
var valueSets = []struct{ name, file string }{
	{"defaults", "testdata/values-defaults.yaml"},
	{"rf1", "testdata/values-rf1.yaml"},
	{"existing-secret", "testdata/values-existing-secret.yaml"},
	{"own-hashrings", "testdata/values-own-hashrings.yaml"},
	{"servicemonitor", "testdata/values-servicemonitor.yaml"},
	{"tls", "testdata/values-tls.yaml"},
	{"mtls", "testdata/values-mtls.yaml"},
	// The kind walkthrough's values (examples/kind/README.md).
	{"kind", "../examples/kind/values-strata.yaml"},
}

// helmCmdTimeout bounds one helm or kubectl command; they take a second.
const helmCmdTimeout = 2 * time.Minute

// cli runs a command-line tool (helm, kubectl) with an environment of its
// own: helm's cache, config and data homes in a temporary directory, so a
// developer's repositories and plugins play no part, and a kubeconfig.
type cli struct {
	bin string
	env []string
}

func newHelm(t testing.TB) *cli {
	t.Helper()
	bin := harness.Tool(t, "helm")
	home := t.TempDir()
	env := append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "no-cluster"),
	)
	return &cli{bin: bin, env: env}
}

// withKubeconfig returns a copy of c that talks to the cluster of kubeconfig.
func (c *cli) withKubeconfig(kubeconfig string) *cli {
	env := append([]string(nil), c.env...)
	return &cli{bin: c.bin, env: append(env, "KUBECONFIG="+kubeconfig)}
}

// run runs the tool with args and stdin, returning its stdout, or an error
// holding its stderr.
func (c *cli) run(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), helmCmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s%s", filepath.Base(c.bin), strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String(), nil
}

// must is run that fails the test on error.
func (c *cli) must(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	out, err := c.run(stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// serviceMonitorAPI is the kind kube-prometheus-stack's CRD adds; the
// chart makes a ServiceMonitor only in a cluster that has it.
const serviceMonitorAPI = "monitoring.coreos.com/v1/ServiceMonitor"

// render runs helm template for release in namespace with the value files
// and extra arguments (--set ...), as for a cluster with the ServiceMonitor
// kind, and parses the result.
func render(t testing.TB, h *cli, release, namespace string, valueFiles []string, extra ...string) (manifest, string) {
	t.Helper()
	args := []string{"template", release, chartDir, "--namespace", namespace, "--api-versions", serviceMonitorAPI}
	for _, f := range valueFiles {
		args = append(args, "--values", f)
	}
	out := h.must(t, "", append(args, extra...)...)
	return parseManifest(t, out), out
}

// writeValues writes values YAML to a temporary file and returns its path.
func writeValues(t testing.TB, yamlText string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(p, []byte(yamlText), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLint(t *testing.T) {
	h := newHelm(t)
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			out := h.must(t, "", "lint", "--strict", chartDir, "--values", vs.file)
			if !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("helm lint did not pass:\n%s", out)
			}
		})
	}
}

// The chart's defaults alone name no bucket: installing them must fail and
// say what to set, not start block builders that cannot upload. (helm lint
// does not run the templates' fail, so this renders.)
func TestDefaultsAloneAreRefused(t *testing.T) {
	h := newHelm(t)
	_, err := h.run("", "template", "strata", chartDir)
	if err == nil || !strings.Contains(err.Error(), "set exactly one of objstore.s3.bucket, objstore.config and objstore.existingConfigSecret") {
		t.Fatalf("helm lint of the bare defaults: want the objstore message, got %v", err)
	}
}

// Values the chart must refuse, each on top of the defaults set: typos and
// wrong types through values.schema.json, inconsistent settings through the
// templates' checks.
func TestBadValuesAreRefused(t *testing.T) {
	h := newHelm(t)
	for _, tc := range []struct {
		name   string
		values string
		want   []string
	}{
		{"top-level typo", "replicationFactr: 3", []string{"additional properties 'replicationFactr' not allowed"}},
		{"nested typo", "router:\n  replcas: 3", []string{"/router", "'replcas'"}},
		{"typo under objstore.s3", "objstore:\n  s3:\n    pathstyle: true", []string{"/objstore/s3", "'pathstyle'"}},
		{"typo in a limit", "limits:\n  defaults:\n    max_serie_per_request: 10", []string{"/limits/defaults", "'max_serie_per_request'"}},
		{"typo in a tenant's limits", "limits:\n  file:\n    tenants:\n      team-a:\n        ingestion_rat: 10", []string{"/limits/file/tenants/team-a", "'ingestion_rat'"}},
		{"replication factor as a string", `replicationFactor: "3"`, []string{"/replicationFactor", "want integer"}},
		{"replicas as a string", `blockbuilder: {replicas: "five"}`, []string{"/blockbuilder/replicas", "want integer"}},
		{"flag as a string", `serviceMonitor: {enabled: "yes"}`, []string{"/serviceMonitor/enabled", "want boolean"}},
		{"block duration not a duration", `blockbuilder: {blockDuration: "2 hours"}`, []string{"/blockbuilder/blockDuration", "does not match pattern"}},
		{"external label value with a comma", `blockbuilder: {externalLabels: {cluster: "a,b"}}`, []string{"/blockbuilder/externalLabels/cluster", "does not match pattern"}},
		{"external label with a bad name", `blockbuilder: {externalLabels: {"my-cluster": "a"}}`, []string{"invalid propertyName 'my-cluster'"}},
		{"unknown pull policy", `image: {pullPolicy: Sometimes}`, []string{"/image/pullPolicy", "must be one of 'Always', 'IfNotPresent', 'Never'"}},
		{"unknown log format", `log: {format: xml}`, []string{"/log/format", "must be one of 'logfmt', 'json'"}},
		{"unknown certificate field", `tenantCertificateField: CN`, []string{"/tenantCertificateField", "must be one of '', 'organization', 'organizationalUnit', 'commonName'"}},
		{"grace period too short to flush", `blockbuilder: {terminationGracePeriodSeconds: 10}`, []string{"/blockbuilder/terminationGracePeriodSeconds", "minimum"}},

		{"more copies than block builders", `blockbuilder: {replicas: 2}`, []string{"replicationFactor (3) is more than blockbuilder.replicas (2)"}},
		{"two buckets", `objstore: {config: "type: GCS"}`, []string{"set exactly one of objstore.s3.bucket"}},
		{"access key without secret key", `objstore: {s3: {secretKey: ""}}`, []string{"set accessKey and secretKey together"}},
		{"existing secret and keys", `objstore: {s3: {existingSecret: mine}}`, []string{"set either existingSecret or accessKey/secretKey"}},
		{"custom hashrings not JSON", `hashrings: {custom: "endpoints: [a:1]"}`, []string{"hashrings.custom must be a hashrings.json"}},
		{"custom hashrings not an array of objects", `hashrings: {custom: "[1, 2]"}`, []string{"hashrings.custom must be a hashrings.json"}},
		{"external label the block builder sets", `blockbuilder: {externalLabels: {tenant_id: x}}`, []string{`"tenant_id" is set by the block builder itself`}},
		{"autoscaling without a target", `router: {autoscaling: {enabled: true, targetCPUUtilizationPercentage: null}}`, []string{"set targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage"}},

		{"typo under tls", `tls: {router: {enable: true}}`, []string{"/tls/router", "'enable'"}},
		{"typo under tls.forward", `tls: {forward: {servername: x}}`, []string{"/tls/forward", "'servername'"}},
		{"typo under auth", `auth: {bearerTokens: {secret: x}}`, []string{"/auth/bearerTokens", "'secret'"}},
		{"tls flag as a string", `tls: {router: {enabled: "yes"}}`, []string{"/tls/router/enabled", "want boolean"}},
		{"empty token key", `auth: {forwardToken: {key: ""}}`, []string{"/auth/forwardToken/key", "minLength"}},
		{"token key that is no file name", `auth: {bearerTokens: {key: "a/b"}}`, []string{"/auth/bearerTokens/key", "does not match pattern"}},
		{"secret name that is no Secret name", `tls: {router: {enabled: true, existingSecret: My_Certs}}`, []string{"/tls/router/existingSecret", "does not match pattern"}},

		{"router TLS without a Secret", `tls: {router: {enabled: true}}`, []string{"tls.router.enabled needs tls.router.existingSecret"}},
		{"block builder TLS without a Secret", `tls: {blockbuilder: {enabled: true}}`, []string{"tls.blockbuilder.enabled needs tls.blockbuilder.existingSecret"}},
		{"a Secret but TLS off", `tls: {router: {existingSecret: certs}}`, []string{"tls.router: settings are given but tls.router.enabled is false"}},
		{"client CA without TLS", `tls: {blockbuilder: {clientCA: {enabled: true}}}`, []string{"tls.blockbuilder: settings are given but tls.blockbuilder.enabled is false"}},
		{"client CA Secret but client CA off", `tls: {router: {enabled: true, existingSecret: certs, clientCA: {existingSecret: ca}}}`, []string{"tls.router.clientCA.existingSecret is set but tls.router.clientCA.enabled is false"}},
		{"forward settings without block builder TLS", `tls: {forward: {serverName: bb.internal}}`, []string{"tls.forward is the routers' HTTPS towards the block builders: set tls.blockbuilder.enabled"}},
		{"block builder client CA without the routers' certificate", `tls: {blockbuilder: {enabled: true, existingSecret: certs, clientCA: {enabled: true}}}`, []string{"the routers must present a client certificate to the block builders; set tls.forward.clientCertSecret"}},
		{"ServiceMonitor without a client certificate for mutual TLS", `{tls: {router: {enabled: true, existingSecret: certs, clientCA: {enabled: true}}}, serviceMonitor: {enabled: true}}`, []string{"tls.router.clientCA.enabled: the ServiceMonitor's Prometheus must present a client certificate; set serviceMonitor.clientCertSecret"}},
		{"tenant from certificates without mutual TLS", `{tls: {router: {enabled: true, existingSecret: certs}}, tenantCertificateField: organization}`, []string{"tenantCertificateField needs tls.router.clientCA.enabled"}},
		{"ServiceMonitor client certificate nothing asks for", `serviceMonitor: {enabled: true, clientCertSecret: prometheus-client}`, []string{"serviceMonitor.clientCertSecret is only used"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := writeValues(t, tc.values)
			_, err := h.run("", "template", "r", chartDir, "--values", valueSets[0].file, "--values", bad)
			if err == nil {
				t.Fatalf("helm template accepted %q", tc.values)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// The ServiceMonitor is made only where the cluster has its kind: without
// kube-prometheus-stack's CRD the API server would refuse the whole release
// for it. Everything else renders the same either way. (TestInstall shows
// both against a real API server.)
func TestServiceMonitorNeedsItsKind(t *testing.T) {
	h := newHelm(t)
	for _, vs := range valueSets {
		if !readValues(t, vs.file).ServiceMonitor.Enabled {
			continue
		}
		t.Run(vs.name, func(t *testing.T) {
			_, with := render(t, h, "strata", "monitoring", []string{vs.file})
			without := h.must(t, "", "template", "strata", chartDir, "--namespace", "monitoring", "--values", vs.file)
			if n := len(parseManifest(t, with).ofKind("ServiceMonitor")); n != 1 {
				t.Errorf("with the ServiceMonitor kind: %d ServiceMonitors, want 1", n)
			}
			var rest manifest
			for _, o := range parseManifest(t, with) {
				if o.Kind != "ServiceMonitor" {
					rest = append(rest, o)
				}
			}
			got := parseManifest(t, without)
			if fmt.Sprint(got) != fmt.Sprint(rest) {
				t.Fatalf("without the ServiceMonitor kind the chart renders %v, want %v", got, rest)
			}
			for i, o := range got {
				if o.text != rest[i].text {
					t.Errorf("without the ServiceMonitor kind %s is\n%s\nwant\n%s", o, o.text, rest[i].text)
				}
			}
		})
	}
}

// TestRender checks what the API server cannot: that the pieces of a
// rendered release fit together (selectors, names, ports, files) and
// that the files it gives the binaries are ones they load.
func TestRender(t *testing.T) {
	h := newHelm(t)
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			m, _ := render(t, h, "strata", "monitoring", []string{vs.file})
			values := readValues(t, vs.file)
			checkSelectors(t, m)
			checkRouter(t, m, values)
			checkBlockBuilders(t, m, values)
			checkHashrings(t, m, values)
			checkSecurity(t, m, values)
			checkServiceMonitorTLS(t, m, values, "monitoring")
		})
	}
}

// values is the part of a values file the checks compare with.
type values struct {
	ReplicationFactor      *int   `json:"replicationFactor"`
	TenantCertificateField string `json:"tenantCertificateField"`
	Hashrings              struct {
		Custom string `json:"custom"`
	} `json:"hashrings"`
	Limits struct {
		File map[string]any `json:"file"`
	} `json:"limits"`
	Blockbuilder struct {
		Replicas            *int              `json:"replicas"`
		ExternalLabels      map[string]string `json:"externalLabels"`
		PodDisruptionBudget struct {
			MaxUnavailable *int `json:"maxUnavailable"`
		} `json:"podDisruptionBudget"`
		Persistence struct {
			Enabled *bool `json:"enabled"`
		} `json:"persistence"`
	} `json:"blockbuilder"`
	ServiceMonitor struct {
		Enabled          bool   `json:"enabled"`
		ClientCertSecret string `json:"clientCertSecret"`
	} `json:"serviceMonitor"`
	TLS struct {
		Router       listenerTLS `json:"router"`
		Blockbuilder listenerTLS `json:"blockbuilder"`
		Forward      struct {
			ServerName       string `json:"serverName"`
			ClientCertSecret string `json:"clientCertSecret"`
		} `json:"forward"`
	} `json:"tls"`
	Auth struct {
		BearerTokens secretKey `json:"bearerTokens"`
		ForwardToken secretKey `json:"forwardToken"`
	} `json:"auth"`
}

// The chart's defaults for the fields of values that sets may leave out.
func (v *values) rf() int {
	if v.ReplicationFactor == nil {
		return 3
	}
	return *v.ReplicationFactor
}

func (v *values) blockBuilders() int {
	if v.Blockbuilder.Replicas == nil {
		return 3
	}
	return *v.Blockbuilder.Replicas
}

func readValues(t testing.TB, file string) values {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var v values
	if err := yamlToJSON(data, &v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return v
}

// checkSelectors: every Service, PodDisruptionBudget and ServiceMonitor
// selects the pods (or services) it is for, and only those.
func checkSelectors(t *testing.T, m manifest) {
	t.Helper()
	type pods struct {
		name   string
		labels map[string]string
	}
	var all []pods
	for _, kind := range []string{"Deployment", "StatefulSet"} {
		for _, o := range m.ofKind(kind) {
			var w workload
			o.decode(t, &w)
			if !w.Spec.Selector.matches(w.Spec.Template.Metadata.Labels) {
				t.Errorf("%s: selector %v does not match its pod labels %v", o, w.Spec.Selector.MatchLabels, w.Spec.Template.Metadata.Labels)
			}
			all = append(all, pods{o.String(), w.Spec.Template.Metadata.Labels})
		}
	}
	selected := func(sel map[string]string) []string {
		var names []string
		for _, p := range all {
			if selects(sel, p.labels) {
				names = append(names, p.name)
			}
		}
		return names
	}
	want := map[string]string{
		"Service/strata-router":                "Deployment/strata-router",
		"Service/strata-blockbuilder-headless": "StatefulSet/strata-blockbuilder",
	}
	for _, o := range m.ofKind("Service") {
		var s service
		o.decode(t, &s)
		if got := selected(s.Spec.Selector); len(got) != 1 || got[0] != want[o.String()] {
			t.Errorf("%s selects %v, want [%s]", o, got, want[o.String()])
		}
	}
	for _, o := range m.ofKind("PodDisruptionBudget") {
		var p pdb
		o.decode(t, &p)
		if got := selected(p.Spec.Selector.MatchLabels); len(got) != 1 || !strings.HasSuffix(got[0], "/"+o.Metadata.Name) {
			t.Errorf("%s selects %v, want only the workload of its name", o, got)
		}
	}
	// Each service is scraped by exactly one endpoint of the
	// ServiceMonitor: the services its selector picks, less those an
	// endpoint's relabelings drop.
	for _, o := range m.ofKind("ServiceMonitor") {
		var sm serviceMonitor
		o.decode(t, &sm)
		scrapedBy := map[string][]int{}
		for _, so := range m.ofKind("Service") {
			var s service
			so.decode(t, &s)
			if !sm.Spec.Selector.matches(s.Metadata.Labels) {
				continue
			}
			scrapedBy[so.Metadata.Name] = nil
			for i, ep := range sm.Spec.Endpoints {
				if !keptBy(t, ep.Relabelings, s) {
					continue
				}
				scrapedBy[so.Metadata.Name] = append(scrapedBy[so.Metadata.Name], i)
				found := false
				for _, p := range s.Spec.Ports {
					found = found || p.Name == ep.Port
				}
				if !found {
					t.Errorf("%s endpoint %d scrapes port %q, which %s does not have", o, i, ep.Port, so)
				}
				if ep.Path != "/metrics" {
					t.Errorf("%s scrapes %q, want /metrics", o, ep.Path)
				}
			}
		}
		if len(scrapedBy) != 2 {
			t.Errorf("%s selects services %v, want the router's and the block builders'", o, sortedKeys(scrapedBy))
		}
		for svc, eps := range scrapedBy {
			if len(eps) != 1 {
				t.Errorf("%s scrapes Service/%s with endpoints %v, want exactly one", o, svc, eps)
			}
		}
	}
	for _, o := range m.ofKind("HorizontalPodAutoscaler") {
		var hpa struct {
			Spec struct {
				ScaleTargetRef struct{ Kind, Name string } `yaml:"scaleTargetRef"`
			} `yaml:"spec"`
		}
		o.decode(t, &hpa)
		if ref := hpa.Spec.ScaleTargetRef; m.byName(ref.Kind, ref.Name) == nil {
			t.Errorf("%s scales %s/%s, which the release does not have", o, ref.Kind, ref.Name)
		}
	}
}

// checkRouter: probes on the served paths and port, the hashrings mounted
// as a directory, and a router pod template that does not change when the
// hashring does (see TestScalingDoesNotRestartRouters).
func checkRouter(t *testing.T, m manifest, v values) {
	t.Helper()
	var d workload
	m.find(t, "Deployment", "-router").decode(t, &d)
	c := onlyContainer(t, d)
	if !reflect.DeepEqual(c.Args, []string{"router"}) || c.Command != nil {
		t.Errorf("router container runs command %q args %q, want the image's entrypoint with [router]", c.Command, c.Args)
	}
	checkProbes(t, "router", c, v.TLS.Router)
	if got, _ := c.env("STRATA_REPLICATION_FACTOR"); got != strconv.Itoa(v.rf()) {
		t.Errorf("router STRATA_REPLICATION_FACTOR = %q, want %d", got, v.rf())
	}
	// The tenant from the senders' certificates: the routers' setting, next
	// to their client CA.
	if got, set := c.env("STRATA_TENANT_CERTIFICATE_FIELD"); got != v.TenantCertificateField || set != (v.TenantCertificateField != "") {
		t.Errorf("router STRATA_TENANT_CERTIFICATE_FIELD = %q (set %v), want %q", got, set, v.TenantCertificateField)
	}
	if _, set := c.env("STRATA_TLS_CLIENT_CA_FILE"); v.TenantCertificateField != "" && !set {
		t.Errorf("router has STRATA_TENANT_CERTIFICATE_FIELD without STRATA_TLS_CLIENT_CA_FILE: it would not start")
	}
	file, _ := c.env("STRATA_HASHRINGS_FILE")
	mount, vol := mountOf(t, d, c, file)
	if mount.SubPath != "" {
		t.Errorf("the hashrings are mounted with subPath %q: the kubelet never updates a subPath mount", mount.SubPath)
	}
	if vol.ConfigMap == nil || !strings.HasSuffix(vol.ConfigMap.Name, "-hashrings") {
		t.Fatalf("STRATA_HASHRINGS_FILE %s is not in the hashrings ConfigMap's volume", file)
	}
	var svc service
	m.find(t, "Service", "-router").decode(t, &svc)
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 19291 || svc.Spec.Ports[0].TargetPort.Value != "http" || c.port("http") != 19291 {
		t.Errorf("router service ports %+v and container port %d: want 19291 to the container's http port 19291", svc.Spec.Ports, c.port("http"))
	}

	checkLimitsFile(t, m, v, "router", d, c)
}

// checkLimitsFile: routers and block builders read the same limits file,
// the one in the values, and both would load it.
func checkLimitsFile(t *testing.T, m manifest, v values, who string, d workload, c *container) {
	t.Helper()
	limitsFile, set := c.env("STRATA_LIMITS_FILE")
	if set != (len(v.Limits.File) > 0) {
		t.Errorf("%s STRATA_LIMITS_FILE set = %v, but the values have a limits file: %v", who, set, len(v.Limits.File) > 0)
	}
	if set {
		_, lv := mountOf(t, d, c, limitsFile)
		var cm configMap
		m.byName("ConfigMap", lv.ConfigMap.Name).decode(t, &cm)
		data := cm.Data[filepath.Base(limitsFile)]
		if _, err := limits.Parse([]byte(data), limits.Tenant{Limits: validation.DefaultLimits(), OTLP: otlp.DefaultConfig(), HA: limits.DefaultHA()}); err != nil {
			t.Errorf("the %s would refuse the chart's limits file: %v\n%s", who, err, data)
		}
	}
}

// checkBlockBuilders: the StatefulSet's identity (headless service, stable
// names, Parallel), its volume, its shutdown time and its disruption
// budget.
func checkBlockBuilders(t *testing.T, m manifest, v values) {
	t.Helper()
	var s workload
	m.find(t, "StatefulSet", "-blockbuilder").decode(t, &s)
	c := onlyContainer(t, s)
	if !reflect.DeepEqual(c.Args, []string{"blockbuilder"}) || c.Command != nil {
		t.Errorf("block builder container runs command %q args %q, want the image's entrypoint with [blockbuilder]", c.Command, c.Args)
	}
	checkProbes(t, "blockbuilder", c, v.TLS.Blockbuilder)
	checkLimitsFile(t, m, v, "block builder", s, c)
	// Block builders take their writes from the routers, which pass on
	// the tenant they found.
	if got, set := c.env("STRATA_TENANT_CERTIFICATE_FIELD"); set {
		t.Errorf("block builder STRATA_TENANT_CERTIFICATE_FIELD = %q, want it unset", got)
	}
	if s.Spec.PodManagementPolicy != "Parallel" {
		t.Errorf("podManagementPolicy = %q, want Parallel", s.Spec.PodManagementPolicy)
	}
	if *s.Spec.Replicas != v.blockBuilders() {
		t.Errorf("replicas = %d, want %d", *s.Spec.Replicas, v.blockBuilders())
	}
	var hl service
	m.find(t, "Service", "-headless").decode(t, &hl)
	if s.Spec.ServiceName != hl.Metadata.Name || hl.Spec.ClusterIP != "None" {
		t.Errorf("serviceName %q, headless service %q with clusterIP %q: want the StatefulSet's own headless service", s.Spec.ServiceName, hl.Metadata.Name, hl.Spec.ClusterIP)
	}
	ports := map[string]int{}
	for _, p := range hl.Spec.Ports {
		ports[p.TargetPort.Value] = p.Port
	}
	if c.port("http") != 19291 || c.port("grpc") != 10901 || ports["http"] != 19291 || ports["grpc"] != 10901 {
		t.Errorf("block builder container ports %+v, headless service ports %v: want http 19291 and grpc 10901 on both", c.Ports, ports)
	}
	for name, port := range map[string]int{"STRATA_HTTP_LISTEN": 19291, "STRATA_GRPC_LISTEN": 10901} {
		if got, _ := c.env(name); got != fmt.Sprintf(":%d", port) {
			t.Errorf("%s = %q, want :%d", name, got, port)
		}
	}

	dataDir, _ := c.env("STRATA_DATA_DIR")
	mount, vol := mountOf(t, s, c, dataDir+"/x")
	persistent := v.Blockbuilder.Persistence.Enabled == nil || *v.Blockbuilder.Persistence.Enabled
	claimed := len(s.Spec.VolumeClaimTemplates) == 1 && s.Spec.VolumeClaimTemplates[0].Metadata.Name == mount.Name && vol == nil
	if persistent != claimed {
		t.Errorf("STRATA_DATA_DIR %s on volume %q: persistence %v but claim template used %v", dataDir, mount.Name, persistent, claimed)
	}
	if !persistent && (vol == nil || vol.EmptyDir == nil) {
		t.Errorf("without persistence STRATA_DATA_DIR must be on an emptyDir, is on %+v", vol)
	}

	grace := *s.Spec.Template.Spec.TerminationGracePeriodSeconds
	flush, _ := c.env("STRATA_FLUSH_TIMEOUT")
	if d, err := time.ParseDuration(flush); err != nil || d > time.Duration(grace-30)*time.Second || grace < 60 {
		t.Errorf("STRATA_FLUSH_TIMEOUT %q with a grace period of %ds: the flush must end 30s before the kubelet kills the pod", flush, grace)
	}

	// Each pod its own replica: a fixed name would make every pod claim
	// the same one, and Thanos would merge their blocks as duplicates.
	fromPodName := false
	for _, e := range c.Env {
		if e.Name == "STRATA_REPLICA_NAME" {
			fromPodName = e.Value == "" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name"
		}
	}
	if !fromPodName {
		t.Errorf("STRATA_REPLICA_NAME must come from the pod name (fieldRef metadata.name)")
	}
	if len(v.Blockbuilder.ExternalLabels) > 0 {
		var pairs []string
		for _, k := range sortedKeys(v.Blockbuilder.ExternalLabels) {
			pairs = append(pairs, k+"="+v.Blockbuilder.ExternalLabels[k])
		}
		if got, _ := c.env("STRATA_EXTERNAL_LABELS"); got != strings.Join(pairs, ",") {
			t.Errorf("STRATA_EXTERNAL_LABELS = %q, want %q", got, strings.Join(pairs, ","))
		}
	}

	var budget pdb
	m.find(t, "PodDisruptionBudget", "-blockbuilder").decode(t, &budget)
	want := v.rf() - functions.Quorum(v.rf())
	if v.Blockbuilder.PodDisruptionBudget.MaxUnavailable != nil {
		want = *v.Blockbuilder.PodDisruptionBudget.MaxUnavailable
	}
	if budget.Spec.MaxUnavailable.Value != strconv.Itoa(want) {
		t.Errorf("block builder PodDisruptionBudget maxUnavailable = %q, want %d (RF %d, quorum %d)", budget.Spec.MaxUnavailable.Value, want, v.rf(), functions.Quorum(v.rf()))
	}
}

// checkHashrings: the routers' file loads, and names each block builder
// pod by the DNS name Kubernetes gives it, or is the user's file verbatim.
func checkHashrings(t *testing.T, m manifest, v values) {
	t.Helper()
	var cm configMap
	m.find(t, "ConfigMap", "-hashrings").decode(t, &cm)
	data := cm.Data["hashrings.json"]
	cfgs, err := shard.ParseConfig([]byte(data))
	if err != nil {
		t.Fatalf("the router would refuse the chart's hashrings.json: %v\n%s", err, data)
	}
	if _, err := shard.NewRing(cfgs, shard.Options{ReplicationFactor: v.rf()}); err != nil {
		t.Errorf("the router would refuse the hashrings with RF %d: %v", v.rf(), err)
	}
	if v.Hashrings.Custom != "" {
		if strings.TrimSpace(data) != strings.TrimSpace(v.Hashrings.Custom) {
			t.Errorf("hashrings.json is not the custom one verbatim:\n%s", data)
		}
		return
	}
	var s workload
	m.find(t, "StatefulSet", "-blockbuilder").decode(t, &s)
	want := podAddresses(s, "monitoring", "cluster.local")
	if len(cfgs) != 1 {
		t.Fatalf("generated %d hashrings, want 1", len(cfgs))
	}
	var got []string
	for _, ep := range cfgs[0].Endpoints {
		got = append(got, ep.Address)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hashring endpoints %q, want the block builder pods %q", got, want)
	}
}

// podAddresses are the host:port of each pod of a StatefulSet through its
// headless service: <name>-<ordinal>.<service>.<namespace>.svc.<domain>.
func podAddresses(s workload, namespace, domain string) []string {
	var out []string
	for i := 0; i < *s.Spec.Replicas; i++ {
		out = append(out, fmt.Sprintf("%s-%d.%s.%s.svc.%s:19291", s.Metadata.Name, i, s.Spec.ServiceName, namespace, domain))
	}
	return out
}

func onlyContainer(t *testing.T, w workload) *container {
	t.Helper()
	if n := len(w.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("%s has %d containers, want 1", w.Metadata.Name, n)
	}
	return &w.Spec.Template.Spec.Containers[0]
}

// checkProbes: readiness on /-/ready and liveness on /-/healthy, on the
// container's http port (TestWiring asks the binaries for these paths),
// over HTTPS when the listener serves TLS. Under mutual TLS the kubelet
// cannot present a client certificate, so both are TCP checks of the port
// (TestWiringTLS shows that an HTTPS probe would fail there).
func checkProbes(t *testing.T, what string, c *container, tl listenerTLS) {
	t.Helper()
	for _, p := range []struct {
		name  string
		probe *probe
		path  string
	}{{"readiness", c.ReadinessProbe, "/-/ready"}, {"liveness", c.LivenessProbe, "/-/healthy"}} {
		switch {
		case p.probe == nil:
			t.Errorf("%s has no %s probe", what, p.name)
		case tl.Enabled && tl.ClientCA.Enabled:
			if p.probe.HTTPGet != nil || p.probe.TCPSocket == nil || p.probe.TCPSocket.Port.Value != "http" {
				t.Errorf("%s %s probe under mutual TLS: want a TCP check of port http, got %+v", what, p.name, p.probe)
			}
		default:
			scheme := "HTTP"
			if tl.Enabled {
				scheme = "HTTPS"
			}
			g := p.probe.HTTPGet
			if g == nil || g.Path != p.path || g.Port.Value != "http" || cmp.Or(g.Scheme, "HTTP") != scheme {
				t.Errorf("%s %s probe: want GET %s on port http over %s, got %+v", what, p.name, p.path, scheme, p.probe)
			}
		}
	}
}

// mountOf returns the volume mount that holds path and its pod volume (nil
// for a volume claim template).
func mountOf(t *testing.T, w workload, c *container, path string) (volumeMount, *volume) {
	t.Helper()
	var best volumeMount
	for _, vm := range c.VolumeMounts {
		if strings.HasPrefix(path, vm.MountPath+"/") && len(vm.MountPath) > len(best.MountPath) {
			best = vm
		}
	}
	if best.Name == "" {
		t.Fatalf("%s: %s is on no volume; the root file system is read-only", w.Metadata.Name, path)
	}
	for i, v := range w.Spec.Template.Spec.Volumes {
		if v.Name == best.Name {
			return best, &w.Spec.Template.Spec.Volumes[i]
		}
	}
	return best, nil
}

// Scaling the block builders changes the hashrings ConfigMap and nothing
// of the routers' pod template: the routers reload the file, a changed
// template would restart them all instead. With TLS too: the name the
// routers verify does not depend on the block builder count.
func TestScalingDoesNotRestartRouters(t *testing.T) {
	h := newHelm(t)
	for _, file := range []string{valueSets[0].file, "testdata/values-tls.yaml"} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			three, _ := render(t, h, "strata", "monitoring", []string{file}, "--set", "blockbuilder.replicas=3")
			five, _ := render(t, h, "strata", "monitoring", []string{file}, "--set", "blockbuilder.replicas=5")
			before, after := three.find(t, "Deployment", "-router"), five.find(t, "Deployment", "-router")
			if before.text != after.text {
				t.Errorf("the router Deployment changes with blockbuilder.replicas:\n%s\nvs\n%s", before.text, after.text)
			}
			var a, b configMap
			three.find(t, "ConfigMap", "-hashrings").decode(t, &a)
			five.find(t, "ConfigMap", "-hashrings").decode(t, &b)
			cfgs, err := shard.ParseConfig([]byte(b.Data["hashrings.json"]))
			if err != nil || len(cfgs[0].Endpoints) != 5 || a.Data["hashrings.json"] == b.Data["hashrings.json"] {
				t.Errorf("the hashrings do not follow blockbuilder.replicas=5: %v\n%s", err, b.Data["hashrings.json"])
			}
		})
	}
}

// yamlToJSON decodes YAML into v through JSON, so v's json tags apply.
func yamlToJSON(data []byte, v any) error {
	var generic any
	if err := yamlUnmarshal(data, &generic); err != nil {
		return err
	}
	j, err := json.Marshal(generic)
	if err != nil {
		return err
	}
	return json.Unmarshal(j, v)
}
