package bench

// The restart scenario: how long a receiver takes to be ready again on
// the data it held, after a crash (kill -9: the WAL is replayed) and after
// a graceful stop, beside Prometheus restarting on the same data in the
// same run. It has no throughput figure: its results carry a
// RestartResult instead of a loadgen report, and are shown in a section
// of their own.

import (
	"fmt"
	"strings"
)

// Restart is the restart scenario's name.
const Restart = "restart"

// The restart targets for the block builder.
const (
	// RestartCrashRatio bounds its time from start to ready after a
	// kill -9 as a fraction of Prometheus' on the same data.
	RestartCrashRatio = 0.5
	// RestartGracefulSeconds bounds its time from start to ready after
	// a graceful stop.
	RestartGracefulSeconds = 10.0
	// RestartReplayRSSRatio bounds its peak RSS during the WAL replay as
	// a multiple of its RSS before the crash.
	RestartReplayRSSRatio = 1.2
)

// RestartResult is one receiver's run of the restart scenario: loaded,
// killed with SIGKILL and restarted, then stopped with SIGTERM and
// restarted. The times are from the process's start to /-/ready
// answering 200. A failed run keeps the figures measured before it
// failed.
type RestartResult struct {
	// Receiver is BlockBuilder or Prometheus.
	Receiver string `json:"receiver"`
	// SamplesLoaded were acknowledged by the receiver before the crash,
	// in Rounds rounds over every series.
	SamplesLoaded int64   `json:"samples_loaded"`
	Rounds        int     `json:"rounds"`
	LoadSeconds   float64 `json:"load_seconds"`
	// RSSBeforeBytes is VmRSS once the load was acknowledged, just
	// before the kill; LoadPeakRSSBytes is VmHWM then.
	RSSBeforeBytes   int64 `json:"rss_before_crash_bytes"`
	LoadPeakRSSBytes int64 `json:"load_peak_rss_bytes"`
	// CrashReadySeconds is the restart after the kill -9, and
	// ReplayPeakRSSBytes the restarted process's VmHWM once ready.
	CrashReadySeconds  float64 `json:"crash_to_ready_seconds"`
	ReplayPeakRSSBytes int64   `json:"replay_peak_rss_bytes"`
	// HeadSeriesAfterCrash is prometheus_tsdb_head_series once ready
	// after the kill: a restart that lost the WAL would look fast.
	HeadSeriesAfterCrash int64 `json:"head_series_after_crash"`
	// GracefulStopSeconds is from SIGTERM to the process's exit, and
	// GracefulReadySeconds the start after it.
	GracefulStopSeconds  float64 `json:"graceful_stop_seconds"`
	GracefulReadySeconds float64 `json:"graceful_to_ready_seconds"`
	// HeadSeriesAfterGraceful is prometheus_tsdb_head_series once ready
	// after the graceful stop: the series replayed by Prometheus, none
	// for the block builder, which cut its heads into blocks when it
	// stopped; BucketBlocks and BucketSamples count those blocks (the
	// block builder only).
	HeadSeriesAfterGraceful int64 `json:"head_series_after_graceful"`
	BucketBlocks            int   `json:"bucket_blocks,omitempty"`
	BucketSamples           int64 `json:"bucket_samples,omitempty"`
}

// restarts returns the restart results, in order.
func restarts(results []Result) []*Result {
	var out []*Result
	for i := range results {
		if results[i].Scenario == Restart {
			out = append(out, &results[i])
		}
	}
	return out
}

// restartOf returns the successful restart result of receiver at series,
// or nil.
func restartOf(results []Result, receiver string, series int) *RestartResult {
	for _, r := range restarts(results) {
		if r.Error == "" && r.Restart != nil && r.Restart.Receiver == receiver && r.Series == series {
			return r.Restart
		}
	}
	return nil
}

// writeRestart writes the restart section: a row per receiver, then the
// issue's targets and whether this run met them.
func writeRestart(b *strings.Builder, results []Result) {
	rs := restarts(results)
	if len(rs) == 0 {
		return
	}
	b.WriteString("## Restart\n\n")
	b.WriteString("Each receiver, in a fresh data directory, was loaded over remote-write 1.0 with a number of rounds over every series (the same for both, so both hold the same samples, all in their WAL and head), then killed with SIGKILL and started again on the same data (a WAL replay), then stopped with SIGTERM and started again. ")
	b.WriteString("A restart is timed from the process's start until `/-/ready` answers 200 (polled every 25 ms); the peak RSS during the replay is the restarted process's VmHWM then, against its VmRSS just before the kill. ")
	b.WriteString("After the kill, its `prometheus_tsdb_head_series` must hold every series, so that a restart that lost the WAL cannot look fast. ")
	b.WriteString("On a graceful stop the block builder cuts its heads into blocks and uploads them (to a filesystem bucket here), so its head is empty after that restart: the blocks in the bucket must hold every sample instead; Prometheus replays its WAL again.\n\n")
	b.WriteString("| receiver | active series | samples in the WAL | kill -9 → ready | ÷ Prometheus | RSS before the kill | peak RSS during replay | ÷ RSS before | graceful stop | graceful → ready | ÷ Prometheus | data after the restarts |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rs {
		b.WriteString(restartRow(results, r) + "\n")
	}
	b.WriteString("\n")
	writeRestartTargets(b, results, rs)
}

// restartRow is r's row of the restart table.
func restartRow(results []Result, r *Result) string {
	rr := r.Restart
	if rr == nil {
		rr = &RestartResult{}
	}
	name := receiverName(rr.Receiver, r.Version)
	if r.Error != "" {
		return fmt.Sprintf("| %s | %s | failed: %s | | | | | | | | | |", name, count(float64(r.Series)), strings.ReplaceAll(r.Error, "|", "/"))
	}
	var prom RestartResult
	if p := restartOf(results, Prometheus, r.Series); p != nil {
		prom = *p
	}
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |",
		name, count(float64(r.Series)), count(float64(rr.SamplesLoaded)),
		seconds(rr.CrashReadySeconds), times(rr.CrashReadySeconds, prom.CrashReadySeconds),
		megabytes(rr.RSSBeforeBytes), megabytes(rr.ReplayPeakRSSBytes), times(float64(rr.ReplayPeakRSSBytes), float64(rr.RSSBeforeBytes)),
		seconds(rr.GracefulStopSeconds), seconds(rr.GracefulReadySeconds), times(rr.GracefulReadySeconds, prom.GracefulReadySeconds),
		dataAfter(rr))
}

// dataAfter says what the checks after the restarts found.
func dataAfter(rr *RestartResult) string {
	s := fmt.Sprintf("head after kill -9: %s series; after graceful stop: %s", count(float64(rr.HeadSeriesAfterCrash)), count(float64(rr.HeadSeriesAfterGraceful)))
	if rr.BucketBlocks > 0 {
		s += fmt.Sprintf(", %d block(s) of %s samples in the bucket", rr.BucketBlocks, count(float64(rr.BucketSamples)))
	}
	return s
}

func receiverName(receiver, version string) string {
	switch receiver {
	case BlockBuilder:
		return "Strata block builder"
	case Prometheus:
		if version != "" {
			return "Prometheus (" + version + ")"
		}
		return "Prometheus"
	}
	return receiver
}

// writeRestartTargets states the targets and, for each block
// builder run, whether it met them.
func writeRestartTargets(b *strings.Builder, results []Result, rs []*Result) {
	fmt.Fprintf(b, "Targets, at 1M active series in one tenant: after a kill -9, ready in at most %.0f%% of Prometheus' time on the same data; after a graceful stop, ready within %.0f s; peak RSS during the replay at most %.1f× the RSS before the crash.\n\n",
		100*RestartCrashRatio, RestartGracefulSeconds, RestartReplayRSSRatio)
	for _, r := range rs {
		rr := r.Restart
		if rr == nil || rr.Receiver != BlockBuilder {
			continue
		}
		at := count(float64(r.Series))
		if r.Error != "" {
			fmt.Fprintf(b, "- At %s series: not measured, the block builder's run failed.\n", at)
			continue
		}
		if p := restartOf(results, Prometheus, r.Series); p != nil {
			fmt.Fprintf(b, "- At %s series, kill -9 → ready ≤ %.0f%% of Prometheus': %s against Prometheus' %s (%s): %s.\n", at, 100*RestartCrashRatio,
				seconds(rr.CrashReadySeconds), seconds(p.CrashReadySeconds), times(rr.CrashReadySeconds, p.CrashReadySeconds),
				metOrNot(rr.CrashReadySeconds <= RestartCrashRatio*p.CrashReadySeconds))
		} else {
			fmt.Fprintf(b, "- At %s series, kill -9 → ready ≤ %.0f%% of Prometheus': not measured, no Prometheus restart succeeded at this number of series in this run.\n", at, 100*RestartCrashRatio)
		}
		fmt.Fprintf(b, "- At %s series, graceful → ready ≤ %.0f s: %s: %s.\n", at, RestartGracefulSeconds,
			seconds(rr.GracefulReadySeconds), metOrNot(rr.GracefulReadySeconds <= RestartGracefulSeconds))
		fmt.Fprintf(b, "- At %s series, peak RSS during replay ≤ %.1f× RSS before the crash: %s against %s (%s): %s.\n", at, RestartReplayRSSRatio,
			megabytes(rr.ReplayPeakRSSBytes), megabytes(rr.RSSBeforeBytes), times(float64(rr.ReplayPeakRSSBytes), float64(rr.RSSBeforeBytes)),
			metOrNot(rr.RSSBeforeBytes > 0 && float64(rr.ReplayPeakRSSBytes) <= RestartReplayRSSRatio*float64(rr.RSSBeforeBytes)))
	}
	b.WriteString("\n")
}

func metOrNot(met bool) string {
	if met {
		return "met"
	}
	return "not met"
}

func seconds(s float64) string { return fmt.Sprintf("%.2f s", s) }
