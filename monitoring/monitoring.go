package monitoring

import "strings"

// Severity is an alert's severity label, as kube-prometheus-stack's
// Alertmanager routes it.
type Severity string

const (
	Critical Severity = "critical"
	Warning  Severity = "warning"
)

// Alert is one alerting rule and its section of the runbook.
type Alert struct {
	// Name is the alertname and the runbook's heading.
	Name string
	// Expr is PromQL; ExternalMetrics lists the metrics it may select
	// that Strata does not expose itself.
	Expr string
	// For is a Prometheus duration, or empty to fire at once.
	For      string
	Severity Severity
	// Summary and Description are Prometheus alert templates ($labels,
	// $value).
	Summary     string
	Description string
	// Meaning, Confirm and Act are the runbook's Markdown: what the alert
	// says, how to check it, what to do.
	Meaning string
	Confirm string
	Act     string
}

// Anchor is the alert's fragment in docs/runbook.md: the anchor GitHub
// and most Markdown renderers give its heading.
func (a Alert) Anchor() string { return strings.ToLower(a.Name) }

// Group is a rule group: alerts evaluated together.
type Group struct {
	Name   string
	Alerts []Alert
}

// Dashboard is one Grafana dashboard, written to File under
// helm/strata/dashboards/.
type Dashboard struct {
	File        string
	UID         string
	Title       string
	Description string
	// Vars are its query variables after ${datasource}, in order.
	Vars []Variable
	Rows []Row
}

// Variable is a query variable of a dashboard: label_values(Selector,
// Label), multi-valued with an All of ".*", so that panels match it with
// =~ (and All matches series without the label, outside Kubernetes).
type Variable struct {
	Name, Label string
	Selector    string
	LabelName   string
}

// Query is the variable's Grafana query.
func (v Variable) Query() string {
	return "label_values(" + v.Selector + ", " + v.LabelName + ")"
}

// Row is a titled row of panels, laid out left to right.
type Row struct {
	Title  string
	Panels []Panel
}

// PanelType is a Grafana panel type.
type PanelType string

const (
	TimeSeries PanelType = "timeseries"
	Stat       PanelType = "stat"
	Text       PanelType = "text"
)

// Panel is one panel. Width is in Grafana's 24 columns (8 when zero).
type Panel struct {
	Title       string
	Description string
	Type        PanelType
	Unit        string
	Width       int
	// Stack stacks the series of a time series panel.
	Stack bool
	// Markdown is a text panel's content.
	Markdown string
	Targets  []Target
}

// Target is one PromQL query of a panel. It may use the dashboard's
// variables and $__rate_interval.
type Target struct {
	Expr   string
	Legend string
}

// ExternalMetrics are the metrics the alerts and dashboards may select
// that no Strata process exposes: Prometheus' own for each target, and
// the kubelet's volume statistics, which kube-prometheus-stack scrapes.
var ExternalMetrics = map[string]string{
	"up":                                   "Prometheus, for every target it scrapes",
	"kubelet_volume_stats_available_bytes": "the kubelet, per PersistentVolumeClaim (kube-prometheus-stack scrapes it)",
	"kubelet_volume_stats_capacity_bytes":  "the kubelet, per PersistentVolumeClaim (kube-prometheus-stack scrapes it)",
}

// TargetLabels are labels Prometheus (or the Prometheus Operator) gives
// every series of a target; no Strata metric carries them itself.
var TargetLabels = []string{"job", "instance", "namespace", "pod", "service", "endpoint", "container"}
