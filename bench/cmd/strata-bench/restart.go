//go:build linux

package main

// The restart scenario: the block builder, then Prometheus, each loaded
// with the same samples, killed with SIGKILL and started again (a WAL
// replay), then stopped with SIGTERM and started again, each start timed
// to ready.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/stratametrics/strata/bench"
	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/loadgen"
)

const (
	// restartReadyTimeout bounds a restart's wait for ready: replaying
	// the WAL of a million series takes a while, longer on a busy
	// machine, and a slow restart is a figure, not a failure.
	restartReadyTimeout = 10 * time.Minute
	// gracefulStopTimeout bounds a graceful stop: the block builder cuts
	// its heads into blocks and uploads them before it exits.
	gracefulStopTimeout = 10 * time.Minute
)

// headSeries is the series in the receiver's head: the block builder
// exports its tenants' TSDB metrics with a tenant label, Prometheus its
// own TSDB's.
var headSeries = counter{name: "prometheus_tsdb_head_series"}

// restartStored names the counters of the samples each receiver
// appended, checked against those acknowledged before the kill.
var restartStored = map[string]struct{ stored, ignored counter }{
	bench.BlockBuilder: {counter{"strata_blockbuilder_appended_total", "type", "float"}, counter{}},
	bench.Prometheus:   {counter{name: "prometheus_tsdb_head_samples_appended_total"}, counter{}},
}

// runRestart runs the restart scenario at series: the block builder,
// then Prometheus, a result each.
func runRestart(ctx context.Context, o *options, series int) []bench.Result {
	var out []bench.Result
	for _, receiver := range []string{bench.BlockBuilder, bench.Prometheus} {
		if ctx.Err() != nil {
			break
		}
		out = append(out, restartOne(ctx, o, receiver, series))
	}
	return out
}

// restarting is one receiver under the restart scenario.
type restarting struct {
	o        *options
	receiver string
	series   int
	dir      string
	proc     *harness.Proc
	addr     string // its HTTP address
	url      string // where loadgen sends
	res      *bench.Result
	rr       *bench.RestartResult
}

func restartOne(ctx context.Context, o *options, receiver string, series int) bench.Result {
	rr := &bench.RestartResult{Receiver: receiver, Rounds: o.restartRounds}
	res := bench.Result{Scenario: bench.Restart, Series: series, Roles: map[int]string{}, Restart: rr}
	if receiver == bench.Prometheus {
		res.Version = o.restartBaseline.version
	}
	fmt.Printf("   %s: ", receiver)
	if err := restartSteps(ctx, o, receiver, series, &res); err != nil {
		res.Error = err.Error()
		fmt.Printf("failed: %s\n", res.Error)
		return res
	}
	fmt.Printf("%d samples loaded in %.1f s, RSS %.0f MB; kill -9 → ready %.2f s (peak RSS %.0f MB); graceful stop %.2f s, → ready %.2f s\n",
		rr.SamplesLoaded, rr.LoadSeconds, float64(rr.RSSBeforeBytes)/1e6, rr.CrashReadySeconds, float64(rr.ReplayPeakRSSBytes)/1e6,
		rr.GracefulStopSeconds, rr.GracefulReadySeconds)
	return res
}

// restartSteps starts the receiver in a fresh folder, loads it, kills
// and restarts it, then stops it gracefully and restarts it, filling
// res.Restart as it goes.
func restartSteps(ctx context.Context, o *options, receiver string, series int, res *bench.Result) error {
	dir, err := os.MkdirTemp(o.tmp, "strata-bench-restart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	r := &restarting{o: o, receiver: receiver, series: series, dir: dir, res: res, rr: res.Restart}
	err = r.start()
	defer func() {
		if r.proc != nil {
			// The run is over and its data thrown away: nothing to flush.
			_ = r.proc.Stop(syscall.SIGKILL, 0)
		}
	}()
	if err != nil {
		return err
	}
	r.res.Roles[r.proc.Pid()] = receiver
	for _, step := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"load", r.load},
		{"kill -9 and restart", r.crash},
		{"graceful stop and restart", r.graceful},
	} {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := step.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", step.name, err)
		}
	}
	return nil
}

// start starts the receiver as its throughput scenario does, and waits
// until it is ready.
func (r *restarting) start() error {
	var c *cluster
	var err error
	switch r.receiver {
	case bench.BlockBuilder:
		c, err = start(r.o, bench.BlockBuilder, r.dir)
	case bench.Prometheus:
		c = &cluster{profile: map[*harness.Proc]string{}, roles: map[int]string{}}
		// Remote-write 1.0, whatever -protocol says: the load is.
		err = startBaseline(c, r.o.restartBaseline.bin, bench.Prometheus, r.dir, loadgen.RemoteWrite1)
	default:
		return fmt.Errorf("no restart of %q", r.receiver)
	}
	if len(c.measured) > 0 {
		r.proc = c.measured[0]
		r.addr = c.profile[r.proc]
		r.url = c.url
	}
	return err
}

// load sends the rounds over every series, all acknowledged and
// appended, and reads the RSS before the kill.
func (r *restarting) load(ctx context.Context) error {
	cfg := r.o.load
	cfg.Protocol = loadgen.RemoteWrite1
	cfg.URL = r.url
	cfg.Tenant = "bench"
	cfg.Series = r.series
	cfg.Duration = 0
	cfg.Rounds = r.o.restartRounds
	cfg.WarmupRounds = 0
	cfg.Backfill = 72 * time.Hour
	cfg.Pids = []int{r.proc.Pid()}
	begin := time.Now()
	rep, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	r.rr.LoadSeconds = time.Since(begin).Seconds()
	r.rr.SamplesLoaded = rep.AckedSamples
	if want := int64(r.series) * int64(r.o.restartRounds); rep.AckedSamples != want {
		return fmt.Errorf("%d of %d samples acknowledged; errors %v %v", rep.AckedSamples, want, rep.Errors, rep.ErrorExamples)
	}
	if err := checkStored(ctx, r.addr, restartStored[r.receiver], rep.AckedSamples); err != nil {
		return err
	}
	peak, current, err := loadgen.ProcessMemory(r.proc.Pid())
	if err != nil {
		return err
	}
	r.rr.RSSBeforeBytes, r.rr.LoadPeakRSSBytes = current, peak
	return nil
}

// crash kills the receiver with SIGKILL, restarts it on the same data,
// and checks that it replayed every series.
func (r *restarting) crash(ctx context.Context) error {
	// Stop's exit status is the kill's, nothing to check.
	_ = r.proc.Stop(syscall.SIGKILL, 0)
	took, err := r.restart("after-kill")
	r.rr.CrashReadySeconds = took.Seconds()
	if err != nil {
		return err
	}
	peak, _, err := loadgen.ProcessMemory(r.proc.Pid())
	if err != nil {
		return err
	}
	r.rr.ReplayPeakRSSBytes = peak
	if r.rr.HeadSeriesAfterCrash, err = r.headSeries(ctx); err != nil {
		return err
	}
	if r.rr.HeadSeriesAfterCrash < int64(r.series) {
		return fmt.Errorf("ready with %d series in its head, %d were written before the kill: the WAL was not replayed", r.rr.HeadSeriesAfterCrash, r.series)
	}
	return nil
}

// graceful stops the receiver with SIGTERM, checks its data survived the
// stop, and restarts it.
func (r *restarting) graceful(ctx context.Context) error {
	begin := time.Now()
	exit := r.proc.Stop(syscall.SIGTERM, gracefulStopTimeout)
	r.rr.GracefulStopSeconds = time.Since(begin).Seconds()
	if exit != nil {
		return fmt.Errorf("stopped after %.1f s with %v (killed after %s if it did not exit): %s", r.rr.GracefulStopSeconds, exit, gracefulStopTimeout, r.proc.Tail(2000))
	}
	if r.receiver == bench.BlockBuilder {
		// Its heads were cut into blocks and uploaded at the stop.
		blocks, samples, err := bucketBlocks(filepath.Join(r.dir, "bucket"))
		if err != nil {
			return err
		}
		r.rr.BucketBlocks, r.rr.BucketSamples = blocks, samples
		if samples < r.rr.SamplesLoaded {
			return fmt.Errorf("stopped with %d blocks of %d samples in the bucket, %d were written", blocks, samples, r.rr.SamplesLoaded)
		}
	}
	took, err := r.restart("after-stop")
	r.rr.GracefulReadySeconds = took.Seconds()
	if err != nil {
		return err
	}
	if r.rr.HeadSeriesAfterGraceful, err = r.headSeries(ctx); err != nil {
		return err
	}
	if r.receiver == bench.Prometheus && r.rr.HeadSeriesAfterGraceful < int64(r.series) {
		return fmt.Errorf("ready with %d series in its head, %d were written before the stop: the WAL was not replayed", r.rr.HeadSeriesAfterGraceful, r.series)
	}
	return nil
}

// restart starts the receiver again on its data and times it from the
// start to /-/ready answering 200.
func (r *restarting) restart(role string) (time.Duration, error) {
	begin := time.Now()
	if err := r.proc.Start(); err != nil {
		return 0, err
	}
	r.res.Roles[r.proc.Pid()] = r.receiver + "-" + role
	err := r.proc.WaitAnswer("http://"+r.addr+"/-/ready", restartReadyTimeout, func(code int) bool { return code == 200 })
	took := time.Since(begin)
	if err != nil {
		return took, fmt.Errorf("not ready again: %w: %s", err, r.proc.Tail(2000))
	}
	return took, nil
}

// headSeries reads the series in the receiver's head from its metrics.
func (r *restarting) headSeries(ctx context.Context) (int64, error) {
	m, err := harness.ScrapeMetrics(ctx, "http://"+r.addr+"/metrics")
	if err != nil {
		return 0, fmt.Errorf("read its metrics: %w", err)
	}
	return headSeries.sum(m), nil
}

// bucketBlocks counts the blocks in a filesystem bucket and the samples
// their meta.json files say they hold.
func bucketBlocks(dir string) (blocks int, samples int64, err error) {
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "meta.json" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var meta struct {
			Stats struct {
				NumSamples int64 `json:"numSamples"`
			} `json:"stats"`
		}
		if err := json.Unmarshal(b, &meta); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		blocks++
		samples += meta.Stats.NumSamples
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, 0, fmt.Errorf("read the bucket: %w", err)
	}
	return blocks, samples, nil
}
