//go:build linux

// Command strata-bench runs `make bench`: each scenario (one block builder
// at RF=1, strata dev with three block builders at RF=3, the router alone
// in front of three block builder processes at RF=3) at each number of
// active series, as real processes on loopback, loaded by the loadgen
// package in this process. Each measured process is CPU-profiled over the
// measured window. It writes results.md, results.png, results.json and
// the profiles into the output folder.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/stratametrics/strata/bench"
	"github.com/stratametrics/strata/loadgen"
)

type options struct {
	bin          string
	out          string
	tmp          string
	scenarios    []string
	series       []int
	duration     time.Duration
	warmupRounds int
	load         loadgen.Config
	profile      bool
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "strata-bench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	o := options{load: loadgen.DefaultConfig()}
	var scenarios, series string
	fs := flag.NewFlagSet("strata-bench", flag.ContinueOnError)
	fs.StringVar(&o.bin, "bin", "bin/strata", "the strata binary to benchmark")
	fs.StringVar(&o.out, "out", "bench/results", "folder for results.md, results.png, results.json and the profiles")
	fs.StringVar(&o.tmp, "tmp", os.TempDir(), "folder for the processes' data (removed after each run)")
	fs.StringVar(&scenarios, "scenarios", "blockbuilder,dev,router", "scenarios to run, comma-separated")
	fs.StringVar(&series, "series", "10000,100000,1000000", "active series of each run, comma-separated")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "measured time of each run, after the warm-up")
	fs.IntVar(&o.warmupRounds, "warmup-rounds", 1, "rounds over every series before measuring (creates the series)")
	fs.IntVar(&o.load.Protocol, "protocol", 1, "remote-write version: 1 or 2")
	fs.IntVar(&o.load.SamplesPerRequest, "samples-per-request", o.load.SamplesPerRequest, "samples per request")
	fs.IntVar(&o.load.Concurrency, "concurrency", o.load.Concurrency, "concurrent senders")
	fs.BoolVar(&o.profile, "profile", true, "CPU-profile the measured processes over the measured window")
	revision := fs.String("revision", "", "revision the binary was built from, for the results (default: the work tree's, from git)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, s := range strings.Split(scenarios, ",") {
		s = strings.TrimSpace(s)
		if s != bench.BlockBuilder && s != bench.Dev && s != bench.Router {
			return fmt.Errorf("unknown scenario %q: use %s, %s or %s", s, bench.BlockBuilder, bench.Dev, bench.Router)
		}
		o.scenarios = append(o.scenarios, s)
	}
	for _, s := range strings.Split(series, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-series: %q is not a number of series", s)
		}
		o.series = append(o.series, n)
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
	for _, sc := range o.scenarios {
		for _, n := range o.series {
			if ctx.Err() != nil {
				break
			}
			fmt.Printf("== %s, %d series\n", sc, n)
			r := runScenario(ctx, &o, sc, n)
			if r.Error != "" {
				fmt.Printf("   failed: %s\n", r.Error)
			} else {
				peak, _ := r.PeakRSS()
				fmt.Printf("   %.0f samples/s, %.0f samples per CPU-second, peak RSS %.0f MB, load average %.2f\n",
					r.Report.SamplesPerSecond, r.SamplesPerCPUSecond(), float64(peak)/1e6, bench.LoadAverage())
			}
			results = append(results, r)
		}
	}
	machine.LoadAfter = bench.LoadAverage()
	return write(&o, machine, results)
}

func write(o *options, m bench.Machine, results []bench.Result) error {
	conditions := fmt.Sprintf("remote-write %d.0, %d samples per request (1 per series), %d concurrent senders, %s measured after %d warm-up round(s) over every series, "+
		"Kubernetes-style series of 10 labels (strata loadgen), 15 s between a series' samples with timestamps advancing as fast as the receiver takes them (starting 72 h back), "+
		"block builders uploading to a filesystem bucket every 5 s. Small series counts advance sample time fastest, so their runs include cutting blocks; large ones may not.",
		o.load.Protocol, o.load.SamplesPerRequest, o.load.Concurrency, o.duration, o.warmupRounds)
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
	plot := "results.png"
	f, err := os.Create(filepath.Join(o.out, plot))
	if err != nil {
		return err
	}
	if err := bench.WritePNG(f, results); err != nil {
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
	url      string           // where loadgen sends
	procs    []*proc          // every process
	measured []*proc          // the ones the figure of merit counts
	profile  map[*proc]string // measured process -> its HTTP address
	roles    map[int]string   // pid -> role
	dirs     []string         // to remove
}

func runScenario(ctx context.Context, o *options, scenario string, series int) bench.Result {
	res := bench.Result{Scenario: scenario, Series: series, Roles: map[int]string{}}
	dir, err := os.MkdirTemp(o.tmp, "strata-bench-")
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer os.RemoveAll(dir)
	c, err := start(ctx, o, scenario, dir)
	defer func() {
		for _, p := range c.procs {
			p.kill()
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
	for _, p := range c.procs {
		cfg.Pids = append(cfg.Pids, p.pid())
	}
	for _, p := range c.measured {
		res.Measured = append(res.Measured, p.pid())
	}
	var profiles sync.WaitGroup
	var mu sync.Mutex
	profileErrs := []string{}
	base := fmt.Sprintf("%s-%s", scenario, shortCount(series))
	if o.profile {
		cfg.OnMeasure = func() {
			for _, p := range c.measured {
				name := fmt.Sprintf("%s-%s.cpu.pb.gz", base, c.roles[p.pid()])
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
		if err := p.exited(); err != nil {
			res.Error = fmt.Sprintf("%s exited during the run: %v; log: %s", c.roles[p.pid()], err, p.tail())
		}
	}
	if res.Error == "" && rep.Samples == 0 {
		res.Error = fmt.Sprintf("no sample acknowledged in the window; errors %v %v", rep.Errors, rep.ErrorExamples)
	}
	if len(profileErrs) > 0 {
		fmt.Fprintf(os.Stderr, "   profiles: %s\n", strings.Join(profileErrs, "; "))
	}
	if o.profile {
		for _, p := range c.measured {
			name := fmt.Sprintf("%s-%s.heap.pb.gz", base, c.roles[p.pid()])
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
func start(ctx context.Context, o *options, scenario, dir string) (*cluster, error) {
	c := &cluster{profile: map[*proc]string{}, roles: map[int]string{}}
	common := []string{
		"STRATA_PPROF=1",
		"STRATA_LOG_LEVEL=warn",
		"STRATA_BUCKET_DIR=" + filepath.Join(dir, "bucket"),
		"STRATA_UPLOAD_INTERVAL=5s",
	}
	if err := os.MkdirAll(filepath.Join(dir, "bucket"), 0o755); err != nil {
		return c, err
	}
	startBB := func(i int) (*proc, string, error) {
		addr, err := freeAddr(1)
		if err != nil {
			return nil, "", err
		}
		grpc, err := freeAddr(1)
		if err != nil {
			return nil, "", err
		}
		role := fmt.Sprintf("blockbuilder-%d", i)
		env := append(slicesClone(common),
			"STRATA_HTTP_LISTEN="+addr,
			"STRATA_GRPC_LISTEN="+grpc,
			"STRATA_DATA_DIR="+filepath.Join(dir, role),
			"STRATA_REPLICA_NAME="+role)
		p, err := startProc(o.bin, []string{"blockbuilder"}, env, filepath.Join(dir, role+".log"))
		if err != nil {
			return nil, "", err
		}
		c.procs = append(c.procs, p)
		c.roles[p.pid()] = role
		return p, addr, nil
	}
	switch scenario {
	case bench.BlockBuilder:
		p, addr, err := startBB(0)
		if err != nil {
			return c, err
		}
		c.roles[p.pid()] = "blockbuilder"
		c.measured = []*proc{p}
		c.profile[p] = addr
		c.url = "http://" + addr + "/api/v1/receive"
		return c, waitReady(ctx, p, addr)
	case bench.Dev:
		// strata dev puts its block builders on the three ports after the
		// router's.
		addr, err := freeAddr(4)
		if err != nil {
			return c, err
		}
		env := append(slicesClone(common), "STRATA_GRPC_LISTEN=127.0.0.1:0")
		p, err := startProc(o.bin, []string{"dev", "-data-dir", dir, "-listen", addr, "-rf", "3", "-blockbuilders", "3"}, env, filepath.Join(dir, "dev.log"))
		if err != nil {
			return c, err
		}
		c.procs = append(c.procs, p)
		c.roles[p.pid()] = "dev"
		c.measured = []*proc{p}
		c.profile[p] = addr
		c.url = "http://" + addr + "/api/v1/receive"
		return c, waitReady(ctx, p, addr)
	case bench.Router:
		var addrs []string
		for i := 0; i < 3; i++ {
			p, addr, err := startBB(i)
			if err != nil {
				return c, err
			}
			if err := waitReady(ctx, p, addr); err != nil {
				return c, err
			}
			addrs = append(addrs, addr)
		}
		addr, err := freeAddr(1)
		if err != nil {
			return c, err
		}
		env := append(slicesClone(common),
			"STRATA_HTTP_LISTEN="+addr,
			"STRATA_ENDPOINTS="+strings.Join(addrs, ","),
			"STRATA_REPLICATION_FACTOR=3")
		p, err := startProc(o.bin, []string{"router"}, env, filepath.Join(dir, "router.log"))
		if err != nil {
			return c, err
		}
		c.procs = append(c.procs, p)
		c.roles[p.pid()] = "router"
		c.measured = []*proc{p}
		c.profile[p] = addr
		c.url = "http://" + addr + "/api/v1/receive"
		return c, waitReady(ctx, p, addr)
	}
	return c, fmt.Errorf("unknown scenario %q", scenario)
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// freeAddr finds a loopback port p such that p to p+n-1 were free a
// moment ago.
func freeAddr(n int) (string, error) {
	for try := 0; try < 50; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{l}
		ok := true
		for i := 1; i < n; i++ {
			li, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+i)))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, li)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
		}
	}
	return "", errors.New("no run of free ports found")
}

// proc is a started process with its own process group, so that killing
// it kills what it started too.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startProc(bin string, args, env []string, logPath string) (*proc, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STRATA_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s %s: %w", bin, strings.Join(args, " "), err)
	}
	p := &proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited returns why the process ended, or nil if it runs.
func (p *proc) exited() error {
	select {
	case <-p.done:
		if p.err == nil {
			return errors.New("exit status 0")
		}
		return p.err
	default:
		return nil
	}
}

// kill ends the process at once: the run is over and its data is thrown
// away, so there is nothing to flush.
func (p *proc) kill() {
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	<-p.done
}

func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// waitReady polls /-/ready until it answers 200.
func waitReady(ctx context.Context, p *proc, addr string) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := client.Get("http://" + addr + "/-/ready")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := p.exited(); err != nil {
			return fmt.Errorf("exited before it was ready (%v): %s", err, p.tail())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not ready at %s after 2 minutes: %s", addr, p.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
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
