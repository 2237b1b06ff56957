package bench

import (
	"bytes"
	"strings"
	"testing"
)

// fakeRestarts are the block builder ready in 4 s after a kill -9 and
// 12 s after a graceful stop, its replay peaking at 1.1× its RSS before
// the kill, beside Prometheus ready in 10 s and 20 s.
func fakeRestarts() []Result {
	return []Result{
		{Scenario: Restart, Series: 1_000_000, Restart: &RestartResult{
			Receiver: BlockBuilder, SamplesLoaded: 3_000_000, Rounds: 3, RSSBeforeBytes: 1000e6,
			CrashReadySeconds: 4, ReplayPeakRSSBytes: 1100e6, HeadSeriesAfterCrash: 1_000_000,
			GracefulStopSeconds: 30, GracefulReadySeconds: 12, BucketBlocks: 1, BucketSamples: 3_000_000,
		}},
		{Scenario: Restart, Series: 1_000_000, Version: "example.com/prometheus v3.16.0", Restart: &RestartResult{
			Receiver: Prometheus, SamplesLoaded: 3_000_000, Rounds: 3, RSSBeforeBytes: 2000e6,
			CrashReadySeconds: 10, ReplayPeakRSSBytes: 3000e6, HeadSeriesAfterCrash: 1_000_000,
			GracefulStopSeconds: 1, GracefulReadySeconds: 20, HeadSeriesAfterGraceful: 1_000_000,
		}},
	}
}

func TestWriteRestart(t *testing.T) {
	var b strings.Builder
	writeRestart(&b, fakeRestarts())
	md := b.String()
	for _, want := range []string{
		"| Strata block builder | 1.00M | 3.00M | 4.00 s | 0.40× | 1000 MB | 1100 MB | 1.10× | 30.00 s | 12.00 s | 0.60× | head after kill -9: 1.00M series; after graceful stop: 0, 1 block(s) of 3.00M samples in the bucket |",
		"| Prometheus (example.com/prometheus v3.16.0) | 1.00M | 3.00M | 10.00 s | 1.00× | 2000 MB | 3000 MB | 1.50× | 1.00 s | 20.00 s | 1.00× |",
		"- At 1.00M series, kill -9 → ready ≤ 50% of Prometheus': 4.00 s against Prometheus' 10.00 s (0.40×): met.",
		"- At 1.00M series, graceful → ready ≤ 10 s: 12.00 s: not met.",
		"- At 1.00M series, peak RSS during replay ≤ 1.2× RSS before the crash: 1100 MB against 1000 MB (1.10×): met.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("no %q in:\n%s", want, md)
		}
	}
}

// TestWriteRestartWithoutPrometheus: the block builder's restart without
// Prometheus' has no ratio, and its first target is not measured rather
// than met or not.
func TestWriteRestartWithoutPrometheus(t *testing.T) {
	rs := fakeRestarts()
	rs[1].Error = "not ready again"
	var b strings.Builder
	writeRestart(&b, rs)
	md := b.String()
	for _, want := range []string{
		"| Strata block builder | 1.00M | 3.00M | 4.00 s | – |",
		"| Prometheus (example.com/prometheus v3.16.0) | 1.00M | failed: not ready again |",
		"kill -9 → ready ≤ 50% of Prometheus': not measured",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("no %q in:\n%s", want, md)
		}
	}
}

// TestRestartOutOfThroughput: restart results have no throughput, so
// they stay out of the main table, the baselines' tables and the plot.
func TestRestartOutOfThroughput(t *testing.T) {
	results := append(fakeResults(), fakeRestarts()...)
	var md strings.Builder
	if err := WriteMarkdown(&md, Machine{}, "test", results, "results.svg"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(md.String(), "| restart |") || !strings.Contains(md.String(), "## Restart") {
		t.Errorf("want restart results in their own section only:\n%s", md.String())
	}
	var svg bytes.Buffer
	if err := WriteSVG(&svg, results); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(svg.String(), Restart) {
		t.Error("the plot draws the restart results")
	}
	// Restart results alone: no throughput table, no plot.
	md.Reset()
	if err := WriteMarkdown(&md, Machine{}, "test", fakeRestarts(), ""); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(md.String(), "| scenario | active series | samples/s |") {
		t.Errorf("an empty throughput table:\n%s", md.String())
	}
	if err := WriteSVG(&svg, fakeRestarts()); err == nil {
		t.Error("plotted restart results alone")
	}
}
