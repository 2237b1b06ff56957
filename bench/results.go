// Package bench holds what `make bench` writes: the results of each
// scenario (a Strata topology, or a baseline receiver, at a number of
// active series, loaded by strata loadgen), the machine they ran on, and
// their rendering as a markdown table and an SVG plot in bench/results/.
// The runner that starts the processes is cmd/strata-bench.
//
// The figure of merit is samples per CPU-second of the measured processes,
// not samples per second: on a shared machine wall time depends on the
// neighbours, CPU time much less. It still depends on the CPU, so the
// targets, stated as absolute figures measured on another machine (the
// anchors), are read against baselines measured in the same run:
// VictoriaMetrics and Prometheus receiving the same load. A target scaled
// to this machine is the target times a baseline's figure here over its
// anchor.
package bench

import (
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"

	"github.com/stratametrics/strata/loadgen"
)

// Scenario names, in the order they are shown.
const (
	BlockBuilder = "blockbuilder"
	Dev          = "dev"
	Router       = "router"
	// RouterWide is the router over more block builders than RF, so that
	// each gets a part of every request, built and compressed anew, as in
	// most production rings.
	RouterWide = "router6"
	// BlockBuilderUnsorted and RouterUnsorted are BlockBuilder and Router
	// loaded with every series' labels out of order (loadgen's
	// -unsorted-labels), which the receiver sorts: their cost per sample
	// over the sorted scenario's is what sorting on receipt costs.
	BlockBuilderUnsorted = BlockBuilder + UnsortedSuffix
	RouterUnsorted       = Router + UnsortedSuffix
	// RouterRelabel is Router with every tenant's series relabeled by
	// loadgen.RelabelRules (the router's limits file, RelabelLimits): its
	// cost per sample over the plain router's is what relabeling costs.
	RouterRelabel = Router + RelabelSuffix
	// Tenants is BlockBuilder with the series split evenly over many
	// tenants (loadgen's -tenants), each request carrying one tenant's
	// series: read against BlockBuilder at the same number of series, it
	// tells what a tenant costs.
	Tenants = "tenants"
	// TenantsOne is Tenants with every request of one tenant: the same
	// number of series per request, so that read against Tenants it
	// tells what tenants cost apart from the smaller requests.
	TenantsOne = "tenants-1"
	// The baselines: other receivers taking the same load directly, so
	// that Strata's figures read as ratios that hold across machines.
	VictoriaMetrics = "victoriametrics"
	Prometheus      = "prometheus"
	// BlockBuilderOTLP, RouterOTLP and the OTLP baselines take the same
	// series as OTLP/HTTP metrics (loadgen's -protocol otlp), which each
	// receiver translates into its own series: read against each other
	// and against their remote-write scenarios, they tell what OTLP costs.
	BlockBuilderOTLP    = "otlp"
	RouterOTLP          = Router + OTLPSuffix
	VictoriaMetricsOTLP = VictoriaMetrics + OTLPSuffix
	PrometheusOTLP      = Prometheus + OTLPSuffix
)

// OTLPSuffix ends the name of a scenario that is another one (the name
// without it) loaded over OTLP; BlockBuilderOTLP is the block builder's.
const OTLPSuffix = "-otlp"

// UnsortedSuffix ends the name of a scenario that is another one (the
// name without it) loaded with unsorted labels.
const UnsortedSuffix = "-unsorted"

// RelabelSuffix ends the name of a scenario that is another one (the name
// without it) whose router relabels every series (RelabelLimits).
const RelabelSuffix = "-relabel"

// A Variant is a scenario that is another one, its base (the name without
// the variant's suffix), with one thing changed: the same processes under
// the same load otherwise. It runs beside its base at the same numbers of
// series, and results.md reads it against the base: its extra CPU per
// sample is what the change costs.
type Variant struct {
	Suffix string
	// Heading and Intro open the variant's section of results.md; Base
	// and Changed name the two runs in its columns.
	Heading, Intro, Base, Changed string
}

// Variants are the variants, in the order their sections are shown.
var Variants = []Variant{
	{
		Suffix:  UnsortedSuffix,
		Heading: "Unsorted labels",
		Intro: "Each `-unsorted` scenario is the scenario without the suffix, run next to it, with the same series sent with their labels out of order (`strata loadgen -unsorted-labels`). " +
			"Its extra ns per sample (1e9 ÷ samples per CPU-second) over the sorted run at the same number of active series is what labels out of order cost the measured processes: sorting them, and whatever else the order changes; " +
			"the two are separate runs, so a difference of a few percent is within what a rerun moves on a shared machine.",
		Base: "sorted", Changed: "unsorted",
	},
	{
		Suffix:  RelabelSuffix,
		Heading: "Relabeling",
		Intro: "Each `-relabel` scenario is the scenario without the suffix, run next to it, with the router given a limits file (`STRATA_LIMITS_FILE`) whose `default:` block holds `metric_relabel_configs`, the rule set of `loadgen.RelabelRules`: " +
			"2 of every pod's 20 metrics dropped (10% of the series, acknowledged and not forwarded) and the `endpoint` label dropped from the others, whose requests the router then re-encodes. " +
			"Samples count as sent, the dropped ones too. Its extra ns per sample (1e9 ÷ samples per CPU-second) over the plain run at the same number of active series is what relabeling costs the router: the rules run once per series, later requests find their outcome remembered; " +
			"the block builders get 10% fewer series, which the all-processes columns show. The two are separate runs, so a difference of a few percent is within what a rerun moves on a shared machine.",
		Base: "plain", Changed: "relabeled",
	},
}

// VariantOf returns the variant a scenario is of its base, and the base;
// nil and the scenario itself for a scenario that is no variant.
func VariantOf(scenario string) (base string, v *Variant) {
	for i := range Variants {
		if b, ok := strings.CutSuffix(scenario, Variants[i].Suffix); ok {
			return b, &Variants[i]
		}
	}
	return scenario, nil
}

// RelabelLimits is the router's limits file in the -relabel scenarios:
// loadgen.RelabelRules as every tenant's metric_relabel_configs.
func RelabelLimits() string {
	var b strings.Builder
	b.WriteString("default:\n  metric_relabel_configs:\n")
	for _, line := range strings.SplitAfter(strings.TrimRight(loadgen.RelabelRules, "\n"), "\n") {
		b.WriteString("    " + line)
	}
	b.WriteString("\n")
	return b.String()
}

// Scenarios lists every scenario with what it measures.
var Scenarios = []struct {
	Name, Title, Legend, Measures string
	// Baseline is set for another receiver than Strata.
	Baseline bool
}{
	{BlockBuilder, "one block builder, RF=1", "block builder, RF=1", "the block builder process, receiving directly", false},
	{BlockBuilderUnsorted, "blockbuilder with every series' labels sent out of order (a fixed permutation, __name__ last), which it sorts", "block builder, RF=1, unsorted labels", "the block builder process, receiving directly", false},
	{Tenants, "one block builder, RF=1, the same series split evenly over many tenants (-tenants, 1,000 by default), each request one tenant's", "block builder, RF=1, many tenants", "the block builder process, receiving directly", false},
	{TenantsOne, "tenants with one tenant: requests of the same size (the series of one of its tenants), all of one tenant", "block builder, RF=1, small requests", "the block builder process, receiving directly", false},
	{Dev, "strata dev: router + 3 block builders, RF=3", "dev, RF=3 (all in one)", "the one process that runs all four", false},
	{Router, "router alone, RF=3 over 3 block builders", "router alone, RF=3", "the router process only; the block builders run as processes of their own", false},
	{RouterUnsorted, "router with every series' labels sent out of order (a fixed permutation, __name__ last), which it sorts", "router alone, RF=3, unsorted labels", "the router process only; the block builders run as processes of their own", false},
	{RouterRelabel, "router with metric_relabel_configs for every tenant (loadgen.RelabelRules: 10% of the series dropped, a label dropped from the others)", "router alone, RF=3, relabeling", "the router process only; the block builders run as processes of their own", false},
	{RouterWide, "router alone, RF=3 over 6 block builders", "router alone, RF=3 of 6", "the router process only; each block builder gets about half of every request", false},
	{VictoriaMetrics, "baseline: VictoriaMetrics single node", "VictoriaMetrics (baseline)", "the victoria-metrics process, receiving directly", true},
	{Prometheus, "baseline: Prometheus with its remote-write receiver", "Prometheus (baseline)", "the prometheus process, receiving directly", true},
	{BlockBuilderOTLP, "blockbuilder receiving the same series as OTLP/HTTP metrics, which it translates into remote-write", "block builder, RF=1, OTLP", "the block builder process, receiving directly", false},
	{RouterOTLP, "router receiving the same series as OTLP/HTTP metrics, which it translates into remote-write for the block builders", "router alone, RF=3, OTLP", "the router process only; the block builders run as processes of their own", false},
	{VictoriaMetricsOTLP, "baseline: VictoriaMetrics single node receiving OTLP/HTTP metrics (/opentelemetry/v1/metrics)", "VictoriaMetrics, OTLP (baseline)", "the victoria-metrics process, receiving directly", true},
	{PrometheusOTLP, "baseline: Prometheus with its OTLP receiver (--web.enable-otlp-receiver)", "Prometheus, OTLP (baseline)", "the prometheus process, receiving directly", true},
	{Restart, "restart: one block builder, then Prometheus beside it, each loaded, killed with SIGKILL and started again (WAL replay), then stopped with SIGTERM and started again, at its own number of series (-restart-series)", "", "time from each start to ready, and peak RSS during the replay, of the block builder and of Prometheus (see Restart below)", false},
}

// IsBaseline tells whether a scenario is another receiver than Strata.
func IsBaseline(scenario string) bool {
	for _, s := range Scenarios {
		if s.Name == scenario {
			return s.Baseline
		}
	}
	return false
}

// Unsorted tells whether a scenario sends unsorted labels, and returns
// the scenario it is otherwise: its topology, and its sorted comparison.
func Unsorted(scenario string) (sorted string, ok bool) {
	return strings.CutSuffix(scenario, UnsortedSuffix)
}

// Relabeled tells whether a scenario's router relabels every series, and
// returns the scenario it is otherwise.
func Relabeled(scenario string) (plain string, ok bool) {
	return strings.CutSuffix(scenario, RelabelSuffix)
}

// OTLP tells whether a scenario sends OTLP, and returns the scenario it
// is otherwise: its processes, and its remote-write comparison.
func OTLP(scenario string) (remoteWrite string, ok bool) {
	if scenario == BlockBuilderOTLP {
		return BlockBuilder, true
	}
	return strings.CutSuffix(scenario, OTLPSuffix)
}

// OTLPBaselines are the baselines the OTLP scenarios are read against, in
// the order shown.
var OTLPBaselines = []struct{ Scenario, Name string }{
	{VictoriaMetricsOTLP, "VictoriaMetrics OTLP"},
	{PrometheusOTLP, "Prometheus OTLP"},
}

// AnchorSeries is the number of active series the anchors and the
// targets are stated at.
const AnchorSeries = 100_000

// BaselineAnchors are the baselines' figures on the anchors' machine,
// under the anchor conditions (see Anchors), in the order shown.
var BaselineAnchors = []struct {
	Scenario            string
	Name                string
	SamplesPerCPUSecond float64
	PeakRSSBytes        int64
}{
	{VictoriaMetrics, "VictoriaMetrics", 722e3, 346e6},
	{Prometheus, "Prometheus", 167e3, 364e6},
}

// A Target is what the issue asks of a scenario at AnchorSeries, as
// measured on the anchors' machine.
type Target struct {
	Scenario string
	What     string
	// AllProcesses counts the CPU of every process of the scenario, not
	// only of the measured ones.
	AllProcesses        bool
	SamplesPerCPUSecond float64
	// PeakRSSBytes, when positive, bounds the measured processes' peak
	// RSS. It is not scaled: memory does not follow the CPU.
	PeakRSSBytes int64
}

// Targets are Strata's performance targets, in the order shown.
var Targets = []Target{
	{Scenario: BlockBuilder, What: "one block builder, RF=1", SamplesPerCPUSecond: 750e3, PeakRSSBytes: 250e6},
	{Scenario: Dev, What: "router + 3 block builders, RF=3, in one process (dev)", SamplesPerCPUSecond: 200e3},
	{Scenario: Router, What: "router + 3 block builders, RF=3, as four processes, all counted (router)", AllProcesses: true, SamplesPerCPUSecond: 200e3},
	{Scenario: Router, What: "the router alone (router)", SamplesPerCPUSecond: 2e6},
}

// Result is one scenario at one number of active series.
type Result struct {
	Scenario string         `json:"scenario"`
	Series   int            `json:"series"`
	Report   loadgen.Report `json:"report"`
	// Measured are the processes the figure of merit counts; the report
	// holds every process of the scenario.
	Measured []int `json:"measured_pids"`
	// Roles names each pid ("router", "blockbuilder-0", ...).
	Roles map[int]string `json:"roles"`
	// Profiles are the files written for this run, relative to the
	// results folder, and Top the heads of the CPU profiles' -top output.
	Profiles []string          `json:"profiles,omitempty"`
	Top      map[string]string `json:"top,omitempty"`
	// Version is the module and version a baseline's binary was built
	// from, as its build information says.
	Version string `json:"version,omitempty"`
	Error   string `json:"error,omitempty"`
	// Restart is set for a run of the restart scenario, which has no
	// throughput figure (its Report is empty).
	Restart *RestartResult `json:"restart,omitempty"`
}

// ok tells whether the run delivered a throughput figure: a restart
// result has none, and stays out of the tables and the plot that read
// them.
func (r *Result) ok() bool { return r.Error == "" && r.Restart == nil && r.Report.Samples > 0 }

// cpu is the CPU seconds of the measured processes, and of all of them.
func (r *Result) cpu() (measured, all float64) {
	in := map[int]bool{}
	for _, p := range r.Measured {
		in[p] = true
	}
	for _, p := range r.Report.Processes {
		all += p.CPUSeconds
		if in[p.Pid] {
			measured += p.CPUSeconds
		}
	}
	return measured, all
}

// SamplesPerCPUSecond is the figure of merit: samples acknowledged per
// CPU-second of the measured processes.
func (r *Result) SamplesPerCPUSecond() float64 {
	m, _ := r.cpu()
	if m <= 0 {
		return 0
	}
	return float64(r.Report.Samples) / m
}

// AllSamplesPerCPUSecond counts every process of the scenario.
func (r *Result) AllSamplesPerCPUSecond() float64 {
	_, a := r.cpu()
	if a <= 0 {
		return 0
	}
	return float64(r.Report.Samples) / a
}

// PeakRSS is the largest peak RSS among the measured processes, and among
// the others (0 when there are none).
func (r *Result) PeakRSS() (measured, others int64) {
	in := map[int]bool{}
	for _, p := range r.Measured {
		in[p] = true
	}
	for _, p := range r.Report.Processes {
		if in[p.Pid] {
			measured = max(measured, p.PeakRSSBytes)
		} else {
			others = max(others, p.PeakRSSBytes)
		}
	}
	return measured, others
}

// Machine describes where the results were measured.
type Machine struct {
	CPU         string  `json:"cpu"`
	Cores       int     `json:"cores"`
	MemoryBytes int64   `json:"memory_bytes"`
	GoVersion   string  `json:"go_version"`
	Revision    string  `json:"revision"`
	LoadBefore  float64 `json:"load_before"`
	LoadAfter   float64 `json:"load_after"`
	Started     string  `json:"started"`
}

// DescribeMachine reads the CPU model and memory from /proc, and the
// revision from git in dir.
func DescribeMachine(dir string) Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH, CPU: "unknown"}
	if fs, err := procfs.NewDefaultFS(); err == nil {
		if cpus, err := fs.CPUInfo(); err == nil && len(cpus) > 0 && cpus[0].ModelName != "" {
			m.CPU = strings.TrimSpace(cpus[0].ModelName)
		}
		if mem, err := fs.Meminfo(); err == nil && mem.MemTotalBytes != nil {
			m.MemoryBytes = int64(*mem.MemTotalBytes)
		}
	}
	m.Revision = "unknown"
	if out, err := exec.Command("git", "-C", dir, "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		m.Revision = strings.TrimSpace(string(out))
		if out, err := exec.Command("git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
			m.Revision += " with uncommitted changes"
		}
	}
	m.LoadBefore = LoadAverage()
	return m
}

// LoadAverage is the one-minute load average, or -1 if unknown.
func LoadAverage() float64 {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return -1
	}
	l, err := fs.LoadAvg()
	if err != nil {
		return -1
	}
	return l.Load1
}

// Anchors are other receivers measured on another machine of this kind
// under the same conditions (100k series, 10 labels, 2000 samples per
// request, 4 senders, 30s), and Strata's targets, for the table's reader.
// WriteMarkdown scales them to this machine with the baselines of the run.
const Anchors = `Other receivers measured on another machine of this kind (the anchors) under the anchor conditions (100k series of 10 labels, 2000 samples per request, 4 senders, 30 s):

| receiver | samples per CPU-second | peak RSS |
|---|---:|---:|
| VictoriaMetrics single node | 722k | 346 MB |
| Thanos Receive, RF=1 | 253k | 579 MB |
| Prometheus 3.16 as receiver | 167k | 364 MB |
| Thanos Receive, router + 3 ingestors, RF=3 (all four processes) | 57k | ~405 MB per ingestor |

Targets: one block builder at RF=1 ≥ 750k samples per CPU-second and ≤ 250 MB peak RSS at 100k series; router + 3 block builders at RF=3 ≥ 200k across all processes; the router alone ≥ 2M.
`

// WriteMarkdown writes the results table, the machine and the conditions.
func WriteMarkdown(w io.Writer, m Machine, conditions string, results []Result, plot string) error {
	var b strings.Builder
	b.WriteString("# Strata benchmark results\n\n")
	b.WriteString("Written by `make bench` (bench/cmd/strata-bench); rerun it to refresh. ")
	b.WriteString("The figure of merit is **samples per CPU-second** of the measured processes (utime + stime from /proc over the measured window): ")
	b.WriteString("it holds on a shared machine where samples per second do not. Peak RSS is VmHWM.\n\n")
	fmt.Fprintf(&b, "Machine: %s, %d cores, %.1f GiB memory; %s; revision %s; started %s, load average %.2f before and %.2f after.\n\n",
		m.CPU, m.Cores, float64(m.MemoryBytes)/(1<<30), m.GoVersion, m.Revision, m.Started, m.LoadBefore, m.LoadAfter)
	fmt.Fprintf(&b, "Conditions: %s\n\n", conditions)
	b.WriteString("Scenarios:\n\n")
	for _, s := range Scenarios {
		fmt.Fprintf(&b, "- `%s`: %s; measured: %s.\n", s.Name, s.Title, s.Measures)
	}
	writeThroughput(&b, results)
	writeVariants(&b, results)
	writeOTLP(&b, results)
	writeTenants(&b, results)
	writeRestart(&b, results)
	if plot != "" {
		fmt.Fprintf(&b, "![samples per CPU-second and peak RSS against active series](%s)\n\n", plot)
	}
	b.WriteString(Anchors)
	writeBaselines(&b, results)
	b.WriteString("\n## CPU profiles\n\nEach measured process was profiled over the measured window (`go tool pprof -top` of the files below; the profiler's own cost is in the figures above, a few percent).\n")
	for _, r := range results {
		if len(r.Profiles) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n### %s, %s series\n\nFiles: %s\n", r.Scenario, count(float64(r.Series)), "`"+strings.Join(r.Profiles, "`, `")+"`")
		for _, p := range r.Profiles {
			if top := r.Top[p]; top != "" {
				fmt.Fprintf(&b, "\n```\n%s\n```\n", strings.TrimRight(top, "\n"))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeThroughput writes the main table, a row per throughput run; none
// when every result is a restart one.
func writeThroughput(b *strings.Builder, results []Result) {
	if !slices.ContainsFunc(results, func(r Result) bool { return r.Scenario != Restart }) {
		b.WriteString("\n")
		return
	}
	b.WriteString("\n| scenario | active series | samples/s | measured CPU (cores) | **samples per CPU-second** | ns/sample | all processes, samples per CPU-second | peak RSS | other processes' peak RSS (max) | latency p50 / p99 | errors | loadgen ns/sample |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
	for _, r := range results {
		if r.Scenario == Restart {
			continue // in its own section, failed or not
		}
		if r.Error != "" {
			fmt.Fprintf(b, "| %s | %s | failed: %s | | | | | | | | | |\n", r.Scenario, count(float64(r.Series)), strings.ReplaceAll(r.Error, "|", "/"))
			continue
		}
		rep := &r.Report
		mcpu, _ := r.cpu()
		spc := r.SamplesPerCPUSecond()
		ns := 0.0
		if rep.Samples > 0 {
			ns = mcpu * 1e9 / float64(rep.Samples)
		}
		peak, others := r.PeakRSS()
		otherRSS := "–"
		if others > 0 {
			otherRSS = megabytes(others)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %.2f | **%s** | %.0f | %s | %s | %s | %s / %s | %s | %.0f |\n",
			r.Scenario, count(float64(r.Series)), count(rep.SamplesPerSecond), mcpu/max(rep.DurationSeconds, 1e-9),
			count(spc), ns, count(r.AllSamplesPerCPUSecond()), megabytes(peak), otherRSS,
			millis(rep.LatencyP50Seconds), millis(rep.LatencyP99Seconds), errorsOf(rep), rep.GeneratorNsPerSample)
	}
	b.WriteString("\n")
}

// writeVariants reads each variant scenario against its base at the
// same number of active series, a section per variant: the extra CPU per
// sample is what the measured processes spent on the change.
func writeVariants(b *strings.Builder, results []Result) {
	for _, v := range Variants {
		var rows []string
		for _, r := range results {
			base, rv := VariantOf(r.Scenario)
			if rv == nil || rv.Suffix != v.Suffix {
				continue
			}
			row := fmt.Sprintf("| %s | %s |", r.Scenario, count(float64(r.Series)))
			o := find(results, base, r.Series)
			switch {
			case !r.ok():
				row += " failed (see above) | | | | | |"
			case o == nil:
				row += fmt.Sprintf(" no %s run at this number of series | | | | | |", base)
			default:
				ns, bns := nsPerSample(r.SamplesPerCPUSecond()), nsPerSample(o.SamplesPerCPUSecond())
				all, ball := nsPerSample(r.AllSamplesPerCPUSecond()), nsPerSample(o.AllSamplesPerCPUSecond())
				row += fmt.Sprintf(" %s / %s | %.0f / %.0f | **%+.0f** | %s | %+.0f | %s |",
					count(o.SamplesPerCPUSecond()), count(r.SamplesPerCPUSecond()), bns, ns, ns-bns, times(ns, bns), all-ball, times(all, ball))
			}
			rows = append(rows, row)
		}
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(b, "## %s\n\n%s\n\n", v.Heading, v.Intro)
		fmt.Fprintf(b, "| scenario | active series | samples per CPU-second, %[1]s / %[2]s | ns/sample, %[1]s / %[2]s | extra ns/sample | %[2]s ÷ %[1]s, CPU per sample | all processes, extra ns/sample | all processes, %[2]s ÷ %[1]s |\n", v.Base, v.Changed)
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
		b.WriteString(strings.Join(rows, "\n") + "\n\n")
	}
}

// writeOTLP reads each OTLP scenario against the OTLP baselines and
// against its remote-write scenario at the same number of active series.
func writeOTLP(b *strings.Builder, results []Result) {
	var rows []*Result
	for i := range results {
		if _, ok := OTLP(results[i].Scenario); ok {
			rows = append(rows, &results[i])
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("## OTLP\n\n")
	b.WriteString("The `otlp` scenarios send the same series as OTLP/HTTP metrics (`strata loadgen -protocol otlp`): an ExportMetricsServiceRequest per request, gzipped, one resource (service.name and service.instance.id, which Prometheus' translation makes job and instance), a gauge without unit per metric name, a data point per sample with the series' other labels as attributes. ")
	b.WriteString("Each receiver translates them into its own series, so these runs are read against the OTLP baselines, the same load in the same run, and against the same receiver over remote-write: OTLP ÷ remote-write below 1 is what translating costs. ")
	b.WriteString("The generator builds each request's gzip member once and patches it per send, so that compressing costs it nothing: one block of a dynamic code in which every byte has a 9-bit code, with the timestamps matched across points as a gzip writer matches them, about twice the size of what a gzip writer at its default level makes of the request.\n\n")
	b.WriteString("| scenario | active series | samples per CPU-second |")
	for _, base := range OTLPBaselines {
		fmt.Fprintf(b, " vs %s |", base.Name)
	}
	b.WriteString(" over remote-write, samples per CPU-second | OTLP ÷ remote-write | peak RSS |")
	for _, base := range OTLPBaselines {
		fmt.Fprintf(b, " vs %s |", base.Name)
	}
	b.WriteString("\n|---|---:|---:|" + strings.Repeat("---:|", len(OTLPBaselines)) + "---:|---:|---:|" + strings.Repeat("---:|", len(OTLPBaselines)) + "\n")
	for _, r := range rows {
		if !r.ok() {
			fmt.Fprintf(b, "| %s | %s | failed (see above) |%s\n", r.Scenario, count(float64(r.Series)), strings.Repeat(" |", 3+2*len(OTLPBaselines)))
			continue
		}
		spc := r.SamplesPerCPUSecond()
		peak, _ := r.PeakRSS()
		fmt.Fprintf(b, "| %s | %s | %s |", r.Scenario, count(float64(r.Series)), count(spc))
		for _, base := range OTLPBaselines {
			other := 0.0
			if o := find(results, base.Scenario, r.Series); o != nil {
				other = o.SamplesPerCPUSecond()
			}
			fmt.Fprintf(b, " %s |", times(spc, other))
		}
		rw, _ := OTLP(r.Scenario)
		if o := find(results, rw, r.Series); o != nil {
			fmt.Fprintf(b, " %s | %s |", count(o.SamplesPerCPUSecond()), times(spc, o.SamplesPerCPUSecond()))
		} else {
			b.WriteString(" – | – |")
		}
		fmt.Fprintf(b, " %s |", megabytes(peak))
		for _, base := range OTLPBaselines {
			var other int64
			if o := find(results, base.Scenario, r.Series); o != nil {
				other, _ = o.PeakRSS()
			}
			fmt.Fprintf(b, " %s |", times(float64(peak), float64(other)))
		}
		b.WriteString("\n")
	}
	b.WriteString("\nA dash: no such run at that number of active series (`-baseline-series` sets where the baselines run).\n\n")
}

// TenantsTarget is the least share of one tenant's samples per
// CPU-second that many tenants of the same series in all must keep.
const TenantsTarget = 0.7

// writeTenants reads each tenants run against the block builder with the
// same series in one tenant, in requests of the usual size (the target's
// comparison) and of the same size (tenants-1): the CPU and the memory a
// tenant costs.
func writeTenants(b *strings.Builder, results []Result) {
	var rows []string
	for i := range results {
		r := &results[i]
		if r.Scenario != Tenants {
			continue
		}
		row := fmt.Sprintf("| %s | %s |", r.Scenario, count(float64(r.Series)))
		o := find(results, BlockBuilder, r.Series)
		switch {
		case !r.ok():
			row += " failed (see above) | | | | | | | |"
		case o == nil:
			row += fmt.Sprintf(" no %s run at this number of series | | | | | | | |", BlockBuilder)
		default:
			n := max(r.Report.Tenants, 1)
			spc, one := r.SamplesPerCPUSecond(), o.SamplesPerCPUSecond()
			peak, _ := r.PeakRSS()
			onePeak, _ := o.PeakRSS()
			met := "no"
			if one > 0 && spc/one >= TenantsTarget {
				met = "yes"
			}
			same := "no tenants-1 run"
			if s := find(results, TenantsOne, r.Series); s != nil && s.ok() {
				same = fmt.Sprintf("%s / %s", count(s.SamplesPerCPUSecond()), times(spc, s.SamplesPerCPUSecond()))
			}
			row += fmt.Sprintf(" %d × %d | %d | %s / %s | **%s** (%s) | %s | %s / %s | %s |",
				n, r.Series/n, r.Report.SamplesPerRequest, count(one), count(spc), times(spc, one), met, same,
				megabytes(onePeak), megabytes(peak), kilobytes(float64(peak-onePeak)/float64(n)))
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("## Many tenants\n\n")
	fmt.Fprintf(b, "The `%s` scenario is `%s` with the same series split evenly over many tenants (`strata loadgen -tenants`), each request carrying the series of one tenant, as each tenant's own Prometheus sends them: a tenant of 100 series sends requests of 100 samples. "+
		"The target compares it with one tenant of the same series in the usual requests, in the same run: at least %.0f%% of its samples per CPU-second. "+
		"`%s` is one tenant in requests of the same size as the tenants', so many ÷ it is what the tenants cost apart from the smaller requests; the extra peak RSS per tenant is what each open tenant (its TSDB head, WAL, chunk writer and metrics) costs.\n\n", Tenants, BlockBuilder, TenantsTarget*100, TenantsOne)
	b.WriteString("| scenario | active series | tenants × series | samples per request | samples per CPU-second, one tenant / many | many ÷ one (target met) | one tenant in requests of the same size, samples per CPU-second / many ÷ it | peak RSS, one tenant / many | extra peak RSS per tenant |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	b.WriteString(strings.Join(rows, "\n") + "\n\n")
}

func kilobytes(b float64) string { return fmt.Sprintf("%.0f kB", b/1e3) }

// nsPerSample is CPU nanoseconds per sample at a number of samples per
// CPU-second (0 for none).
func nsPerSample(perCPUSecond float64) float64 {
	if perCPUSecond <= 0 {
		return 0
	}
	return 1e9 / perCPUSecond
}

func errorsOf(rep *loadgen.Report) string {
	if len(rep.Errors) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range rep.Errors {
		parts = append(parts, fmt.Sprintf("%s×%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// count renders 1234567 as 1.23M, 123456 as 123k.
func count(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 0, 64) + "k"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func megabytes(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/1e6) }

func millis(s float64) string { return fmt.Sprintf("%.1f ms", s*1000) }
