package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/stratametrics/strata/loadgen"
)

const loadgenUsage = `usage: strata loadgen -url URL [flags]

Sends Prometheus remote-write of Kubernetes-style series (a metric name and
9 labels) to URL as fast as it is taken, retrying 5xx and 429 like
Prometheus, and reports samples/s, latency, errors and, for each -pid, the
CPU seconds and peak RSS of that process: samples per CPU-second of the
server is the figure that holds on a busy machine. Every flag but -o can
also be set as STRATA_LOADGEN_<FLAG> (upper case, '-' as '_'; the pids as
STRATA_LOADGEN_PIDS=1,2); flags win.

flags:
`

// runLoadgen sends load to a remote-write endpoint and reports.
func runLoadgen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := loadgen.DefaultConfig()
	if err := loadEnv(&cfg); err != nil {
		return err
	}
	output := "text"
	fs := flag.NewFlagSet("strata loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), loadgenUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.URL, "url", cfg.URL, "remote-write endpoint, e.g. http://127.0.0.1:19291/api/v1/receive")
	fs.StringVar(&cfg.Tenant, "tenant", cfg.Tenant, "tenant to send in the tenant header (none: the receiver's default)")
	fs.StringVar(&cfg.TenantHeader, "tenant-header", cfg.TenantHeader, "header that carries the tenant")
	fs.IntVar(&cfg.Tenants, "tenants", cfg.Tenants, "split the series evenly over this many tenants, named -tenant with -0, -1, ... appended, each request carrying one tenant's series")
	fs.Var(&cfg.Protocol, "protocol", "remote-write version, 1 or 2, or otlp: OTLP/HTTP metrics (protobuf) to -url, or to /api/v1/otlp/v1/metrics of a -url without a path")
	fs.BoolVar(&cfg.OTLPGzip, "otlp-gzip", cfg.OTLPGzip, "gzip OTLP requests, as the OpenTelemetry Collector's otlphttp exporter does by default")
	fs.IntVar(&cfg.Series, "series", cfg.Series, "active series")
	fs.IntVar(&cfg.SamplesPerRequest, "samples-per-request", cfg.SamplesPerRequest, "samples in a request (Prometheus' default queue: up to 2000)")
	fs.IntVar(&cfg.SamplesPerSeries, "samples-per-series", cfg.SamplesPerSeries, "samples of each series in a request, at consecutive timestamps")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "concurrent senders, each owning a share of the series")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to measure, after the warm-up (0: until -rounds are sent)")
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "stop after sending every series this many times (0: no limit)")
	fs.IntVar(&cfg.WarmupRounds, "warmup-rounds", cfg.WarmupRounds, "rounds sent before measuring, so that creating series is not counted")
	fs.Float64Var(&cfg.Churn, "churn", cfg.Churn, "fraction of series replaced by new ones per minute of sample time, e.g. 0.01")
	fs.BoolVar(&cfg.UnsortedLabels, "unsorted-labels", cfg.UnsortedLabels, "send every series' labels out of order (a fixed permutation, __name__ last), the same series otherwise, to measure a receiver that sorts them; one that requires sorted labels refuses every request")
	fs.DurationVar(&cfg.Interval, "interval", cfg.Interval, "time between a series' samples")
	fs.DurationVar(&cfg.Backfill, "backfill", cfg.Backfill, "how far in the past the first samples are; samples never go beyond now, so this bounds how far ahead of real time the run may send (0: real time)")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "timeout of one request")
	fs.Func("pid", "process whose CPU time and peak RSS to report; repeat for several", func(s string) error {
		pid, err := strconv.Atoi(s)
		if err != nil || pid <= 0 {
			return fmt.Errorf("not a process ID: %q", s)
		}
		cfg.Pids = append(cfg.Pids, pid)
		return nil
	})
	fs.StringVar(&output, "o", output, "output: text or json")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if output != "text" && output != "json" {
		return fmt.Errorf("%w: -o must be text or json, got %q", errUsage, output)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	rep, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	} else if err := rep.WriteText(stdout); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if rep.AckedSamples == 0 {
		return fmt.Errorf("no sample was acknowledged; errors: %s", formatErrors(rep))
	}
	return nil
}

func formatErrors(rep loadgen.Report) string {
	if len(rep.Errors) == 0 {
		return "none (the run ended before an answer came)"
	}
	var parts []string
	for k, n := range rep.Errors {
		parts = append(parts, fmt.Sprintf("%s x%d (%s)", k, n, rep.ErrorExamples[k]))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}
