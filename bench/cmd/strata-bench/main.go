//go:build linux

// Command strata-bench runs `make bench`: each scenario (one block builder
// at RF=1, strata dev with three block builders at RF=3, the router alone
// in front of three block builder processes at RF=3) at each number of
// active series, as real processes on loopback, loaded by the loadgen
// package in this process. Each measured process is CPU-profiled over the
// measured window. It writes results.md, results.svg, results.json and
// the profiles into the output folder.
//
// The baselines, VictoriaMetrics single node and Prometheus with its
// remote-write receiver (-victoriametrics, -prometheus), take the same
// load directly and are measured the same way, by default at the anchors'
// 100k series only (-baseline-series): the targets are absolute figures
// from another machine, and the baselines of the same run scale them to
// this one. Runs go by number of series, so that each baseline runs next
// to the Strata scenarios it is compared with.
//
// The variants are the same topologies with one thing changed: the
// -unsorted scenarios (blockbuilder-unsorted, router-unsorted) are loaded
// with every series' labels out of order, the -relabel one
// (router-relabel) has its router relabel every series with
// loadgen.RelabelRules. They run beside their base scenario, by default
// at the anchors' 100k series only (-variant-series), as one number is
// what their comparison needs.
//
// The tenants scenario is the block builder with the same series split
// over -tenants tenants, read against blockbuilder at the same count; it
// runs at -variant-series too.
//
// The OTLP scenarios (otlp for the block builder, router-otlp, and the
// baselines victoriametrics-otlp and prometheus-otlp) are the same
// processes loaded with the same series as OTLP/HTTP metrics, at -series
// and -baseline-series as the others.
package main

import (
	"cmp"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/stratametrics/strata/app/dev"
	"github.com/stratametrics/strata/bench"
	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/loadgen"
)

type options struct {
	bin       string
	out       string
	tmp       string
	scenarios []string
	series    []int
	// baselineSeries are the numbers of series the baselines run at.
	baselineSeries []int
	// variantSeries are the numbers of series the variants (-unsorted,
	// -relabel) run at.
	variantSeries []int
	// baselines maps a baseline scenario to its binary and the module
	// version it was built from.
	baselines map[string]baseline
	// restartSeries and restartRounds size the restart scenario: its
	// active series, and the rounds over every series loaded before the
	// kill. restartBaseline is the Prometheus it runs beside.
	restartSeries   int
	restartRounds   int
	restartBaseline baseline
	duration        time.Duration
	warmupRounds    int
	load            loadgen.Config
	profile         bool
	// tenants is how many tenants the tenants scenario splits the series
	// over.
	tenants int
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "strata-bench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	o := options{load: loadgen.DefaultConfig()}
	var scenarios, series, baselineSeries, variantSeries, vmBin, promBin string
	fs := flag.NewFlagSet("strata-bench", flag.ContinueOnError)
	fs.StringVar(&o.bin, "bin", "bin/strata", "the strata binary to benchmark")
	fs.StringVar(&vmBin, "victoriametrics", "victoria-metrics", "the VictoriaMetrics single-node binary, for the victoriametrics scenarios (a bare name is looked up in PATH)")
	fs.StringVar(&promBin, "prometheus", "prometheus", "the Prometheus binary, for the prometheus scenarios (a bare name is looked up in PATH)")
	fs.StringVar(&o.out, "out", "bench/results", "folder for results.md, results.svg, results.json and the profiles")
	fs.StringVar(&o.tmp, "tmp", os.TempDir(), "folder for the processes' data (removed after each run)")
	fs.StringVar(&scenarios, "scenarios", "blockbuilder,dev,router,victoriametrics,prometheus", "scenarios to run, comma-separated")
	fs.StringVar(&series, "series", "10000,100000,1000000", "active series of each run of Strata, comma-separated")
	fs.StringVar(&baselineSeries, "baseline-series", strconv.Itoa(bench.AnchorSeries), "active series of each run of a baseline (victoriametrics, prometheus), comma-separated; the targets are scaled with the baselines at the anchors' 100k")
	fs.StringVar(&variantSeries, "variant-series", "", "active series of each run of a variant (an -unsorted or -relabel scenario) and of the tenants scenario, comma-separated (default: the anchors' 100k when -series has it, else every -series count: they are read against their base scenario at the same count)")
	fs.StringVar(&variantSeries, "unsorted-series", "", "the former name of -variant-series")
	fs.IntVar(&o.restartSeries, "restart-series", 1_000_000, "active series of the restart scenario, in one tenant")
	fs.IntVar(&o.restartRounds, "restart-rounds", 3, "rounds over every series loaded before each restart scenario's kill -9, the same for the block builder and Prometheus")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "measured time of each run, after the warm-up")
	fs.IntVar(&o.warmupRounds, "warmup-rounds", 1, "rounds over every series before measuring (creates the series)")
	protocol := fs.Int("protocol", 1, "remote-write version: 1 or 2 (the OTLP scenarios send OTLP whatever it is)")
	fs.IntVar(&o.load.SamplesPerRequest, "samples-per-request", o.load.SamplesPerRequest, "samples per request")
	fs.IntVar(&o.load.Concurrency, "concurrency", o.load.Concurrency, "concurrent senders")
	fs.IntVar(&o.tenants, "tenants", 1000, "tenants the tenants scenario splits its series over")
	fs.BoolVar(&o.profile, "profile", true, "CPU-profile the measured processes over the measured window")
	revision := fs.String("revision", "", "revision the binary was built from, for the results (default: the work tree's, from git)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *protocol != 1 && *protocol != 2 {
		return fmt.Errorf("-protocol: remote-write 1 or 2, got %d (OTLP is the -otlp scenarios')", *protocol)
	}
	o.load.Protocol = loadgen.Protocol(*protocol)
	var known []string
	for _, sc := range bench.Scenarios {
		known = append(known, sc.Name)
	}
	for _, s := range strings.Split(scenarios, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(known, s) {
			return fmt.Errorf("unknown scenario %q: use %s", s, strings.Join(known, ", "))
		}
		o.scenarios = append(o.scenarios, s)
	}
	var err error
	if o.series, err = counts("-series", series); err != nil {
		return err
	}
	if o.tenants < 1 {
		return fmt.Errorf("-tenants: at least 1, got %d", o.tenants)
	}
	if o.baselineSeries, err = counts("-baseline-series", baselineSeries); err != nil {
		return err
	}
	if o.variantSeries, err = variantCounts(variantSeries, o.series); err != nil {
		return err
	}
	if o.restartSeries < 1 {
		return fmt.Errorf("-restart-series: %d is not a number of series", o.restartSeries)
	}
	if o.restartRounds < 1 {
		return fmt.Errorf("-restart-rounds: want at least 1 round, got %d", o.restartRounds)
	}
	o.baselines = map[string]baseline{}
	bins := map[string]string{bench.VictoriaMetrics: vmBin, bench.Prometheus: promBin}
	for _, sc := range o.scenarios {
		if sc == bench.Restart {
			// Not a baseline scenario, but run beside Prometheus.
			if o.restartBaseline, err = findBaseline(promBin); err != nil {
				return fmt.Errorf("the %s scenario runs beside Prometheus: %w (set -prometheus, or leave the scenario out; `make bench` builds it)", sc, err)
			}
			continue
		}
		if !bench.IsBaseline(sc) {
			continue
		}
		kind, _ := bench.OTLP(sc)
		path := bins[kind]
		// VictoriaMetrics reads remote-write 1.0 only: it answers a 2.0
		// request 204 and stores nothing, as a 1.0 one with no series.
		if sc == bench.VictoriaMetrics && o.load.Protocol != 1 {
			return fmt.Errorf("the %s scenario needs remote-write 1.0, as VictoriaMetrics does not read 2.0: leave it out of -scenarios with -protocol %d", sc, o.load.Protocol)
		}
		b, err := findBaseline(path)
		if err != nil {
			return fmt.Errorf("the %s scenario: %w (set -%s, or leave the scenario out; `make bench` builds it)", sc, err, kind)
		}
		o.baselines[sc] = b
	}
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("the strata binary: %w (run `make build`)", err)
	}
	o.bin = bin
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", o.out, err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	machine := bench.DescribeMachine(".")
	if *revision != "" {
		machine.Revision = *revision
	}
	machine.Started = time.Now().UTC().Format(time.RFC3339)
	fmt.Printf("strata-bench: %s, %d cores; load average %.2f\n", machine.CPU, machine.Cores, machine.LoadBefore)

	var results []bench.Result
	for _, job := range o.plan() {
		if ctx.Err() != nil {
			break
		}
		fmt.Printf("== %s, %d series\n", job.scenario, job.series)
		if job.scenario == bench.Restart {
			results = append(results, runRestart(ctx, &o, job.series)...)
			continue
		}
		r := runScenario(ctx, &o, job.scenario, job.series)
		if r.Error != "" {
			fmt.Printf("   failed: %s\n", r.Error)
		} else {
			peak, _ := r.PeakRSS()
			fmt.Printf("   %.0f samples/s, %.0f samples per CPU-second, peak RSS %.0f MB, load average %.2f\n",
				r.Report.SamplesPerSecond, r.SamplesPerCPUSecond(), float64(peak)/1e6, bench.LoadAverage())
		}
		results = append(results, r)
	}
	// Shown by scenario, as -scenarios lists them, then by series.
	slices.SortStableFunc(results, func(a, b bench.Result) int {
		return cmp.Or(cmp.Compare(slices.Index(o.scenarios, a.Scenario), slices.Index(o.scenarios, b.Scenario)), cmp.Compare(a.Series, b.Series))
	})
	machine.LoadAfter = bench.LoadAverage()
	return write(&o, machine, results)
}

// counts parses a comma-separated list of numbers of series.
func counts(flag, list string) ([]int, error) {
	var ns []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not a number of series", flag, s)
		}
		if !slices.Contains(ns, n) {
			ns = append(ns, n)
		}
	}
	return ns, nil
}

// variantCounts parses -variant-series; empty means the anchors' count if
// the base scenarios run there, else theirs, as a variant reads only
// against its base at the same count.
func variantCounts(list string, series []int) ([]int, error) {
	switch {
	case list != "":
		return counts("-variant-series", list)
	case slices.Contains(series, bench.AnchorSeries):
		return []int{bench.AnchorSeries}, nil
	}
	return series, nil
}

type job struct {
	scenario string
	series   int
}

// plan orders the runs by number of series, then as -scenarios lists
// them, so that a baseline runs close in time to the Strata runs it is
// compared with: the neighbours' load on a shared machine drifts.
func (o *options) plan() []job {
	var all []int
	for _, n := range slices.Concat(o.series, o.baselineSeries, o.variantSeries, []int{o.restartSeries}) {
		if !slices.Contains(all, n) {
			all = append(all, n)
		}
	}
	slices.Sort(all)
	var jobs []job
	for _, n := range all {
		for _, sc := range o.scenarios {
			in := o.series
			if sc == bench.Restart {
				in = []int{o.restartSeries}
			} else if bench.IsBaseline(sc) {
				in = o.baselineSeries
			} else if _, v := bench.VariantOf(sc); v != nil || sc == bench.Tenants || sc == bench.TenantsOne {
				in = o.variantSeries
			}
			if slices.Contains(in, n) {
				jobs = append(jobs, job{sc, n})
			}
		}
	}
	return jobs
}

// baseline is another receiver's binary.
type baseline struct {
	bin string
	// version is the main module and its version, from the binary's
	// build information (the binaries built by `go install` carry no
	// version of their own).
	version string
}

func findBaseline(path string) (baseline, error) {
	bin, err := exec.LookPath(path)
	if err != nil {
		return baseline{}, err
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return baseline{}, err
	}
	b := baseline{bin: bin}
	if info, err := buildinfo.ReadFile(bin); err == nil && info.Main.Path != "" {
		b.version = info.Main.Path + " " + info.Main.Version
	}
	return b, nil
}

func write(o *options, m bench.Machine, results []bench.Result) error {
	conditions := fmt.Sprintf("remote-write %d.0, %d samples per request (1 per series), %d concurrent senders, %s measured after %d warm-up round(s) over every series, "+
		"Kubernetes-style series of 10 labels (strata loadgen), 15 s between a series' samples with timestamps advancing as fast as the receiver takes them (starting 72 h back), "+
		"block builders uploading to a filesystem bucket every 5 s. Small series counts advance sample time fastest, so their runs include cutting blocks; large ones may not.",
		o.load.Protocol, o.load.SamplesPerRequest, o.load.Concurrency, o.duration, o.warmupRounds)
	if len(o.baselines) > 0 {
		conditions += " The baselines take the same load directly, each as one process with its defaults but for listening on loopback"
		if _, ok := o.baselines[bench.VictoriaMetrics]; ok {
			conditions += "; VictoriaMetrics keeps 100 years (-retentionPeriod=100y)"
		}
		if _, ok := o.baselines[bench.Prometheus]; ok {
			conditions += fmt.Sprintf("; Prometheus has an empty configuration (no scraping) and its receiver accepts the remote-write %d.0 message", o.load.Protocol)
		}
		conditions += ". Each was checked, through its own metrics, to have stored every sample it acknowledged."
	}
	for _, sc := range o.scenarios {
		if _, otlp := bench.OTLP(sc); otlp {
			conditions += " The OTLP scenarios send the same series, requests and senders as OTLP/HTTP protobuf, gzipped, to each receiver's OTLP endpoint (Strata's /api/v1/otlp/v1/metrics, Prometheus' with --web.enable-otlp-receiver, VictoriaMetrics' /opentelemetry/v1/metrics with its defaults), each translating with its own defaults."
			break
		}
	}
	if slices.Contains(o.scenarios, bench.Restart) {
		conditions += fmt.Sprintf(" The restart scenario loads the block builder (one tenant) and then Prometheus (%s, an empty configuration, its remote-write receiver) each in a fresh data directory with %d round(s) over %d series, remote-write 1.0, %d samples per request, %d concurrent senders, "+
			"kills it with SIGKILL, starts it again on the same data, then stops it with SIGTERM (waiting up to %s) and starts it again; each start is timed until /-/ready answers 200.",
			cmp.Or(o.restartBaseline.version, "version unknown"), o.restartRounds, o.restartSeries, o.load.SamplesPerRequest, o.load.Concurrency, gracefulStopTimeout)
	}
	js, err := json.MarshalIndent(struct {
		Machine    bench.Machine  `json:"machine"`
		Conditions string         `json:"conditions"`
		Results    []bench.Result `json:"results"`
	}{m, conditions, results}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "results.json"), js, 0o644); err != nil {
		return err
	}
	plot := "results.svg"
	f, err := os.Create(filepath.Join(o.out, plot))
	if err != nil {
		return err
	}
	if err := bench.WriteSVG(f, results); err != nil {
		fmt.Fprintln(os.Stderr, "strata-bench: no plot:", err)
		plot = ""
	}
	if err := f.Close(); err != nil {
		return err
	}
	md, err := os.Create(filepath.Join(o.out, "results.md"))
	if err != nil {
		return err
	}
	if err := bench.WriteMarkdown(md, m, conditions, results, plot); err != nil {
		md.Close()
		return err
	}
	if err := md.Close(); err != nil {
		return err
	}
	fmt.Printf("strata-bench: wrote %s\n", filepath.Join(o.out, "results.md"))
	for _, r := range results {
		if r.Error != "" {
			return fmt.Errorf("%d of the runs failed; see results.md", countFailed(results))
		}
	}
	return nil
}

func countFailed(rs []bench.Result) int {
	n := 0
	for _, r := range rs {
		if r.Error != "" {
			n++
		}
	}
	return n
}

// cluster is the processes of one run.
type cluster struct {
	url      string                   // where loadgen sends
	procs    []*harness.Proc          // every process
	measured []*harness.Proc          // the ones the figure of merit counts
	profile  map[*harness.Proc]string // measured process -> its HTTP address
	roles    map[int]string           // pid -> role
}

func runScenario(ctx context.Context, o *options, scenario string, series int) bench.Result {
	res := bench.Result{Scenario: scenario, Series: series, Roles: map[int]string{}, Version: o.baselines[scenario].version}
	dir, err := os.MkdirTemp(o.tmp, "strata-bench-")
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer os.RemoveAll(dir)
	c, err := start(o, scenario, dir)
	defer func() {
		for _, p := range c.procs {
			// The run is over and its data thrown away: nothing to flush.
			_ = p.Stop(syscall.SIGKILL, 0)
		}
	}()
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Roles = c.roles

	cfg := o.load
	cfg.URL = c.url
	cfg.Tenant = "bench"
	cfg.Series = series
	cfg.Duration = o.duration
	cfg.WarmupRounds = o.warmupRounds
	cfg.Backfill = 72 * time.Hour
	_, cfg.UnsortedLabels = bench.Unsorted(scenario)
	switch scenario {
	case bench.Tenants:
		cfg.Tenants = min(o.tenants, series)
		cfg.SamplesPerRequest = min(cfg.SamplesPerRequest, series/cfg.Tenants*cfg.SamplesPerSeries)
	case bench.TenantsOne:
		cfg.SamplesPerRequest = min(cfg.SamplesPerRequest, series/min(o.tenants, series)*cfg.SamplesPerSeries)
	}
	if _, otlp := bench.OTLP(scenario); otlp {
		cfg.Protocol = loadgen.OTLP
	}
	for _, p := range c.procs {
		cfg.Pids = append(cfg.Pids, p.Pid())
	}
	for _, p := range c.measured {
		res.Measured = append(res.Measured, p.Pid())
	}
	var profiles sync.WaitGroup
	var mu sync.Mutex
	profileErrs := []string{}
	base := fmt.Sprintf("%s-%s", scenario, shortCount(series))
	if o.profile {
		cfg.OnMeasure = func() {
			for _, p := range c.measured {
				name := fmt.Sprintf("%s-%s.cpu.pb.gz", base, c.roles[p.Pid()])
				profiles.Add(1)
				go func() {
					defer profiles.Done()
					secs := max(1, int(o.duration.Seconds())-1)
					if err := fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", c.profile[p], secs), filepath.Join(o.out, name)); err != nil {
						mu.Lock()
						profileErrs = append(profileErrs, err.Error())
						mu.Unlock()
						return
					}
					mu.Lock()
					res.Profiles = append(res.Profiles, name)
					mu.Unlock()
				}()
			}
		}
	}
	rep, err := loadgen.Run(ctx, cfg)
	profiles.Wait()
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Report = rep
	for _, p := range c.procs {
		if exit, done := p.Exited(); done {
			res.Error = fmt.Sprintf("%s exited during the run (%v); log: %s", c.roles[p.Pid()], exit, p.Tail(2000))
		}
	}
	if res.Error == "" && rep.Samples == 0 {
		res.Error = fmt.Sprintf("no sample acknowledged in the window; errors %v %v", rep.Errors, rep.ErrorExamples)
	}
	if m, ok := storedMetrics[scenario]; ok && res.Error == "" {
		if err := checkStored(ctx, c.profile[c.measured[0]], m, rep.AckedSamples); err != nil {
			res.Error = err.Error()
		}
	}
	if _, relabel := bench.Relabeled(scenario); relabel && res.Error == "" {
		if err := checkRelabeled(ctx, c.profile[c.measured[0]], rep.AckedSamples); err != nil {
			res.Error = err.Error()
		}
	}
	if len(profileErrs) > 0 {
		fmt.Fprintf(os.Stderr, "   profiles: %s\n", strings.Join(profileErrs, "; "))
	}
	if o.profile {
		for _, p := range c.measured {
			name := fmt.Sprintf("%s-%s.heap.pb.gz", base, c.roles[p.Pid()])
			if err := fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/heap", c.profile[p]), filepath.Join(o.out, name)); err == nil {
				res.Profiles = append(res.Profiles, name)
			}
		}
	}
	res.Top = map[string]string{}
	for _, name := range res.Profiles {
		if strings.HasSuffix(name, ".cpu.pb.gz") {
			res.Top[name] = top(filepath.Join(o.out, name))
		}
	}
	return res
}

// start starts the processes of a scenario and waits until they are ready.
func start(o *options, scenario, dir string) (*cluster, error) {
	c := &cluster{profile: map[*harness.Proc]string{}, roles: map[int]string{}}
	// A variant or OTLP scenario is its base, remote-write one's
	// processes; only the load differs, and where it is sent, or (a
	// -relabel one) the router's limits file.
	name := scenario
	scenario, _ = bench.VariantOf(scenario)
	scenario, otlp := bench.OTLP(scenario)
	_, relabel := bench.Relabeled(name)
	tenants := scenario == bench.Tenants
	if tenants || scenario == bench.TenantsOne {
		scenario = bench.BlockBuilder
	}
	path := "/api/v1/receive"
	if otlp {
		path = loadgen.OTLPPath
	}
	common := []string{
		"STRATA_PPROF=1",
		"STRATA_LOG_LEVEL=warn",
		"STRATA_BUCKET_DIR=" + filepath.Join(dir, "bucket"),
		"STRATA_UPLOAD_INTERVAL=5s",
	}
	if err := os.MkdirAll(filepath.Join(dir, "bucket"), 0o755); err != nil {
		return c, err
	}
	startBB := func(i int) (*harness.Proc, string, error) {
		addr, err := harness.FreePorts(1)
		if err != nil {
			return nil, "", err
		}
		grpc, err := harness.FreePorts(1)
		if err != nil {
			return nil, "", err
		}
		role := fmt.Sprintf("blockbuilder-%d", i)
		env := append(slicesClone(common),
			"STRATA_HTTP_LISTEN="+addr,
			"STRATA_GRPC_LISTEN="+grpc,
			"STRATA_DATA_DIR="+filepath.Join(dir, role),
			"STRATA_REPLICA_NAME="+role)
		if tenants {
			env = append(env, "STRATA_MAX_TENANTS="+strconv.Itoa(max(o.tenants, 1000)))
		}
		p, err := startProc(role, o.bin, []string{"blockbuilder"}, env, dir)
		if err != nil {
			return nil, "", err
		}
		c.procs = append(c.procs, p)
		c.roles[p.Pid()] = role
		return p, addr, nil
	}
	switch scenario {
	case bench.BlockBuilder:
		p, addr, err := startBB(0)
		if err != nil {
			return c, err
		}
		c.roles[p.Pid()] = "blockbuilder"
		c.measured = []*harness.Proc{p}
		c.profile[p] = addr
		c.url = "http://" + addr + path
		return c, waitReady(p, addr)
	case bench.Dev:
		// strata dev puts its block builders on the ports after the
		// router's.
		addr, err := harness.FreePorts(dev.Ports(3))
		if err != nil {
			return c, err
		}
		env := append(slicesClone(common), "STRATA_GRPC_LISTEN=127.0.0.1:0")
		p, err := startProc("dev", o.bin, []string{"dev", "-data-dir", dir, "-listen", addr, "-rf", "3", "-blockbuilders", "3"}, env, dir)
		if err != nil {
			return c, err
		}
		c.procs = append(c.procs, p)
		c.roles[p.Pid()] = "dev"
		c.measured = []*harness.Proc{p}
		c.profile[p] = addr
		c.url = "http://" + addr + path
		return c, waitReady(p, addr)
	case bench.Router, bench.RouterWide:
		n := 3
		if scenario == bench.RouterWide {
			n = 6
		}
		var addrs []string
		for i := 0; i < n; i++ {
			p, addr, err := startBB(i)
			if err != nil {
				return c, err
			}
			if err := waitReady(p, addr); err != nil {
				return c, err
			}
			addrs = append(addrs, addr)
		}
		addr, err := harness.FreePorts(1)
		if err != nil {
			return c, err
		}
		env := append(slicesClone(common),
			"STRATA_HTTP_LISTEN="+addr,
			"STRATA_ENDPOINTS="+strings.Join(addrs, ","),
			"STRATA_REPLICATION_FACTOR=3")
		if relabel {
			limits := filepath.Join(dir, "limits.yaml")
			if err := os.WriteFile(limits, []byte(bench.RelabelLimits()), 0o644); err != nil {
				return c, err
			}
			env = append(env, "STRATA_LIMITS_FILE="+limits)
		}
		p, err := startProc("router", o.bin, []string{"router"}, env, dir)
		if err != nil {
			return c, err
		}
		c.procs = append(c.procs, p)
		c.roles[p.Pid()] = "router"
		c.measured = []*harness.Proc{p}
		c.profile[p] = addr
		c.url = "http://" + addr + path
		return c, waitReady(p, addr)
	case bench.VictoriaMetrics, bench.Prometheus:
		return c, startBaseline(c, o.baselines[name].bin, name, dir, o.load.Protocol)
	}
	return c, fmt.Errorf("unknown scenario %q", scenario)
}

// startBaseline starts another receiver, listening on loopback only, for
// remote-write or, for an OTLP scenario, OTLP straight from the load
// generator, and waits until it is ready. Both serve /-/ready and
// /debug/pprof/ on their HTTP address.
func startBaseline(c *cluster, bin, scenario, dir string, protocol loadgen.Protocol) error {
	addr, err := harness.FreePorts(1)
	if err != nil {
		return err
	}
	data := filepath.Join(dir, scenario)
	kind, otlp := bench.OTLP(scenario)
	var args []string
	path := "/api/v1/write"
	switch kind {
	case bench.VictoriaMetrics:
		// Graphite, InfluxDB and OpenTSDB listeners stay off, as they are
		// unless set. The retention keeps the backfilled samples (72 h
		// back) far from its edge. OTLP needs no flag: its endpoint is
		// always on, translating with VictoriaMetrics' defaults.
		args = []string{"-storageDataPath=" + data, "-httpListenAddr=" + addr, "-retentionPeriod=100y"}
		if otlp {
			path = "/opentelemetry/v1/metrics"
		}
	case bench.Prometheus:
		// An empty configuration: no scraping, no rules, no remote write;
		// it only receives. The receiver accepts one protobuf message, the
		// one of the load's remote-write version.
		cfg := filepath.Join(dir, "prometheus.yml")
		if err := os.WriteFile(cfg, nil, 0o644); err != nil {
			return err
		}
		msg := "prometheus.WriteRequest"
		if protocol == loadgen.RemoteWrite2 {
			msg = "io.prometheus.write.v2.Request"
		}
		args = []string{"--config.file=" + cfg, "--storage.tsdb.path=" + data, "--web.listen-address=" + addr}
		if otlp {
			// The OTLP receiver alone, translating with Prometheus'
			// defaults (no otlp: block in the configuration).
			args = append(args, "--web.enable-otlp-receiver")
			path = "/api/v1/otlp/v1/metrics"
		} else {
			args = append(args, "--web.enable-remote-write-receiver", "--web.remote-write-receiver.accepted-protobuf-messages="+msg)
		}
	}
	p, err := startProc(scenario, bin, args, nil, dir)
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	c.roles[p.Pid()] = scenario
	c.measured = []*harness.Proc{p}
	c.profile[p] = addr
	c.url = "http://" + addr + path
	return waitReady(p, addr)
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// startProc starts bin in dir, logging to dir/role.log.
func startProc(role, bin string, args, env []string, dir string) (*harness.Proc, error) {
	p := harness.NewProc(role, bin, args, env, dir)
	return p, p.Start()
}

// waitReady polls /-/ready until it answers 200.
func waitReady(p *harness.Proc, addr string) error {
	err := p.WaitAnswer("http://"+addr+"/-/ready", 2*time.Minute, func(code int) bool { return code == http.StatusOK })
	if err != nil {
		return fmt.Errorf("%s not ready: %w: %s", p.Name(), err, p.Tail(2000))
	}
	return nil
}

// storedMetrics names, per baseline, the counters of its /metrics that
// count the samples it took in and those of them it dropped without
// telling the sender: a baseline that acknowledges what it does not store
// would look faster than it is.
var storedMetrics = map[string]struct{ stored, ignored counter }{
	bench.VictoriaMetrics:     {counter{"vm_rows_inserted_total", "type", "promremotewrite"}, counter{name: "vm_rows_ignored_total"}},
	bench.Prometheus:          {counter{name: "prometheus_tsdb_head_samples_appended_total"}, counter{}},
	bench.VictoriaMetricsOTLP: {counter{"vm_rows_inserted_total", "type", "opentelemetry"}, counter{name: "vm_rows_ignored_total"}},
	bench.PrometheusOTLP:      {counter{name: "prometheus_tsdb_head_samples_appended_total"}, counter{}},
}

// A counter is the series of a metric (none without a name), or, with a
// label, those of its series whose label has the value.
type counter struct{ name, label, value string }

func (c counter) String() string {
	if c.label == "" {
		return c.name
	}
	return fmt.Sprintf("%s{%s=%q}", c.name, c.label, c.value)
}

// sum adds up the counter's series in m.
func (c counter) sum(m harness.Metrics) int64 {
	var keep func(map[string]string) bool
	if c.label != "" {
		keep = harness.Label(c.label, c.value)
	}
	return int64(m.Sum(c.name, keep))
}

// checkStored fails when a baseline at addr stored fewer samples than it
// acknowledged.
func checkStored(ctx context.Context, addr string, m struct{ stored, ignored counter }, acked int64) error {
	metrics, err := harness.ScrapeMetrics(ctx, "http://"+addr+"/metrics")
	if err != nil {
		return fmt.Errorf("read its metrics: %w", err)
	}
	stored, ignored := m.stored.sum(metrics), m.ignored.sum(metrics)
	if stored-ignored < acked {
		return fmt.Errorf("it acknowledged %d samples but stored %d (%s) and ignored %d (%s)", acked, stored, m.stored, ignored, m.ignored)
	}
	return nil
}

// relabelDropped counts the samples the router's relabeling dropped.
var relabelDropped = counter{"strata_router_relabel_dropped_total", "type", "sample"}

// checkRelabeled fails when the router at addr did not relabel: its rules
// drop a tenth of the series, so some of the samples it acknowledged
// must have been dropped.
func checkRelabeled(ctx context.Context, addr string, acked int64) error {
	metrics, err := harness.ScrapeMetrics(ctx, "http://"+addr+"/metrics")
	if err != nil {
		return fmt.Errorf("read the router's metrics: %w", err)
	}
	if dropped := relabelDropped.sum(metrics); dropped <= 0 {
		return fmt.Errorf("the router acknowledged %d samples and relabeling dropped %d (%s): the rules were not applied", acked, dropped, relabelDropped)
	}
	return nil
}

// fetch saves url's body in path.
func fetch(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("fetch %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	return f.Close()
}

// top is the head of `go tool pprof -top` of a profile, or why not.
func top(path string) string {
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=10", path).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("go tool pprof failed: %v: %s", err, out)
	}
	return string(out)
}

func shortCount(n int) string {
	switch {
	case n >= 1e6 && n%1e6 == 0:
		return strconv.Itoa(n/1e6) + "m"
	case n >= 1e3 && n%1e3 == 0:
		return strconv.Itoa(n/1e3) + "k"
	}
	return strconv.Itoa(n)
}
