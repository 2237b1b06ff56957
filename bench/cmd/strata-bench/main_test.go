//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stratametrics/strata/bench"
	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/loadgen"
)

// TestRunSmallBench runs a few scenarios briefly against the real binary
// and checks that every output is written and every run delivered
// samples, the unsorted one with its labels out of order, the relabeled
// one through a router that relabeled (the run fails otherwise).
func TestRunSmallBench(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four strata processes")
	}
	bin := harness.Tool(t, "strata")
	out := t.TempDir()
	err := run([]string{"-bin", bin, "-out", out, "-tmp", t.TempDir(), "-series", "4000",
		"-duration", "2s", "-scenarios", "blockbuilder,blockbuilder-unsorted,router,router-relabel,router6", "-concurrency", "2"})
	if err != nil {
		t.Fatal(err)
	}
	got := readResults(t, out)
	if len(got.Results) != 5 {
		t.Fatalf("%d results, want 5", len(got.Results))
	}
	for _, r := range got.Results {
		if r.Error != "" || r.Report.Samples == 0 || r.SamplesPerCPUSecond() <= 0 {
			t.Errorf("%s: error %q, %d samples, %v per CPU-second", r.Scenario, r.Error, r.Report.Samples, r.SamplesPerCPUSecond())
		}
		if _, unsorted := bench.Unsorted(r.Scenario); r.Report.UnsortedLabels != unsorted {
			t.Errorf("%s: loaded with unsorted labels %v", r.Scenario, r.Report.UnsortedLabels)
		}
		if want := map[string]int{bench.Router: 4, bench.RouterRelabel: 4, bench.RouterWide: 7}[r.Scenario]; want > 0 && (len(r.Report.Processes) != want || len(r.Measured) != 1 || r.Roles[r.Measured[0]] != "router") {
			t.Errorf("%s scenario: processes %+v, measured %v (%v): want %d processes, the router measured", r.Scenario, r.Report.Processes, r.Measured, r.Roles, want)
		}
		cpu := 0
		for _, p := range r.Profiles {
			if strings.HasSuffix(p, ".cpu.pb.gz") {
				cpu++
				if fi, err := os.Stat(filepath.Join(out, p)); err != nil || fi.Size() == 0 {
					t.Errorf("profile %s: %v", p, err)
				}
			}
		}
		if cpu != 1 {
			t.Errorf("%s: %d CPU profiles (%v), want 1", r.Scenario, cpu, r.Profiles)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil || !strings.Contains(string(md), "| router | 4.0k |") || !strings.Contains(string(md), "## Unsorted labels") || !strings.Contains(string(md), "## Relabeling") {
		t.Errorf("results.md: %v\n%s", err, md)
	}
	svg, err := os.ReadFile(filepath.Join(out, "results.svg"))
	if err != nil {
		t.Fatal(err)
	}
	for d := xml.NewDecoder(bytes.NewReader(svg)); ; {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("results.svg: %v", err)
		}
	}
	if !strings.Contains(string(md), "(results.svg)") {
		t.Error("results.md does not show results.svg")
	}
}

// TestRunTenants runs the tenants scenarios briefly against the real
// binary: the series split over tenants, in requests of one tenant's
// series, read against one tenant in results.md.
func TestRunTenants(t *testing.T) {
	if testing.Short() {
		t.Skip("starts strata processes")
	}
	bin := harness.Tool(t, "strata")
	out := t.TempDir()
	err := run([]string{"-bin", bin, "-out", out, "-tmp", t.TempDir(), "-series", "4000", "-tenants", "20",
		"-duration", "2s", "-scenarios", "blockbuilder,tenants,tenants-1", "-concurrency", "2"})
	if err != nil {
		t.Fatal(err)
	}
	got := readResults(t, out)
	want := map[string]struct{ tenants, perRequest int }{bench.BlockBuilder: {1, 2000}, bench.Tenants: {20, 200}, bench.TenantsOne: {1, 200}}
	if len(got.Results) != len(want) {
		t.Fatalf("%d results, want %d", len(got.Results), len(want))
	}
	for _, r := range got.Results {
		w := want[r.Scenario]
		if r.Error != "" || r.Report.Samples == 0 || len(r.Report.Errors) > 0 || r.Report.DroppedSamples > 0 {
			t.Errorf("%s: error %q, %d samples (%d dropped), errors %v %v", r.Scenario, r.Error, r.Report.Samples, r.Report.DroppedSamples, r.Report.Errors, r.Report.ErrorExamples)
		}
		if r.Report.Tenants != w.tenants || r.Report.SamplesPerRequest != w.perRequest {
			t.Errorf("%s: %d tenants, %d samples per request; want %d, %d", r.Scenario, r.Report.Tenants, r.Report.SamplesPerRequest, w.tenants, w.perRequest)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil || !strings.Contains(string(md), "## Many tenants") || !strings.Contains(string(md), "| tenants | 4.0k | 20 × 200 | 200 |") {
		t.Errorf("results.md: %v\n%s", err, md)
	}
}

// TestRunBaselines runs the block builder beside Prometheus (and
// VictoriaMetrics, when STRATA_TEST_VICTORIAMETRICS names it: `make test`
// does not build it) at one small number of series, and checks each
// baseline took every sample, was profiled, and that results.md reads the
// block builder against it.
func TestRunBaselines(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real receivers")
	}
	bin := harness.Tool(t, "strata")
	prom := harness.Tool(t, "prometheus")
	out := t.TempDir()
	scenarios, want := "blockbuilder,prometheus", []string{bench.BlockBuilder, bench.Prometheus}
	args := []string{"-bin", bin, "-prometheus", prom, "-out", out, "-tmp", t.TempDir(), "-series", "4000",
		"-baseline-series", "4000", "-duration", "2s", "-concurrency", "2"}
	if vm := os.Getenv("STRATA_TEST_VICTORIAMETRICS"); vm != "" {
		scenarios += ",victoriametrics"
		want = append(want, bench.VictoriaMetrics)
		args = append(args, "-victoriametrics", vm)
	}
	if err := run(append(args, "-scenarios", scenarios)); err != nil {
		t.Fatal(err)
	}
	got := readResults(t, out)
	if len(got.Results) != len(want) {
		t.Fatalf("%d results, want %d (%v)", len(got.Results), len(want), want)
	}
	for i, r := range got.Results {
		if r.Scenario != want[i] {
			t.Errorf("result %d is %s, want %s (in -scenarios order)", i, r.Scenario, want[i])
		}
		if r.Error != "" || r.Report.Samples == 0 || r.SamplesPerCPUSecond() <= 0 || len(r.Report.Errors) > 0 || r.Report.DroppedSamples > 0 {
			t.Errorf("%s: error %q, %d samples (%d dropped), errors %v %v", r.Scenario, r.Error, r.Report.Samples, r.Report.DroppedSamples, r.Report.Errors, r.Report.ErrorExamples)
		}
		if !bench.IsBaseline(r.Scenario) {
			continue
		}
		if len(r.Profiles) != 2 || len(r.Measured) != 1 || r.Roles[r.Measured[0]] != r.Scenario {
			t.Errorf("%s: profiles %v, measured %v (%v): want a CPU and a heap profile of the one process", r.Scenario, r.Profiles, r.Measured, r.Roles)
		}
		if !strings.Contains(strings.ToLower(r.Version), r.Scenario) {
			t.Errorf("%s: version %q does not name its module", r.Scenario, r.Version)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"| prometheus | 4.0k |", "## Against baselines measured in this run", "| one block builder, RF=1 ≥ 750k | Prometheus (167k) | 4.49× | 4.0k * |"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("results.md lacks %q:\n%s", s, md)
		}
	}
}

// TestRunOTLP runs the OTLP scenarios beside Prometheus' OTLP receiver
// (and VictoriaMetrics', with STRATA_TEST_VICTORIAMETRICS) and checks each
// took the load over OTLP, every sample acknowledged, and that results.md
// reads them against each other.
func TestRunOTLP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real receivers")
	}
	bin := harness.Tool(t, "strata")
	prom := harness.Tool(t, "prometheus")
	out := t.TempDir()
	scenarios, want := "otlp,router-otlp,prometheus-otlp", []string{bench.BlockBuilderOTLP, bench.RouterOTLP, bench.PrometheusOTLP}
	args := []string{"-bin", bin, "-prometheus", prom, "-out", out, "-tmp", t.TempDir(), "-series", "4000",
		"-baseline-series", "4000", "-duration", "2s", "-concurrency", "2", "-profile=false"}
	if vm := os.Getenv("STRATA_TEST_VICTORIAMETRICS"); vm != "" {
		scenarios += ",victoriametrics-otlp"
		want = append(want, bench.VictoriaMetricsOTLP)
		args = append(args, "-victoriametrics", vm)
	}
	if err := run(append(args, "-scenarios", scenarios)); err != nil {
		t.Fatal(err)
	}
	got := readResults(t, out)
	if len(got.Results) != len(want) {
		t.Fatalf("%d results, want %d (%v)", len(got.Results), len(want), want)
	}
	for i, r := range got.Results {
		if r.Scenario != want[i] || r.Report.Protocol != loadgen.OTLP || !strings.HasSuffix(r.Report.URL, "/v1/metrics") {
			t.Errorf("result %d: %s over %s to %s, want %s over OTLP", i, r.Scenario, r.Report.Protocol, r.Report.URL, want[i])
		}
		if r.Error != "" || r.Report.Samples == 0 || len(r.Report.Errors) > 0 || r.Report.DroppedSamples > 0 {
			t.Errorf("%s: error %q, %d samples (%d dropped), errors %v %v", r.Scenario, r.Error, r.Report.Samples, r.Report.DroppedSamples, r.Report.Errors, r.Report.ErrorExamples)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"## OTLP", "| otlp | 4.0k |", "| prometheus-otlp | 4.0k |"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("results.md lacks %q:\n%s", s, md)
		}
	}
}

// TestRunRestart runs the restart scenario small, the block builder and
// Prometheus, and checks each was loaded, restarted after a kill -9 with
// every series replayed, stopped gracefully and restarted, and that
// results.md has the section.
func TestRunRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real receivers")
	}
	bin := harness.Tool(t, "strata")
	prom := harness.Tool(t, "prometheus")
	out := t.TempDir()
	const series, rounds = 4000, 2
	err := run([]string{"-bin", bin, "-prometheus", prom, "-out", out, "-tmp", t.TempDir(), "-scenarios", "restart",
		"-restart-series", strconv.Itoa(series), "-restart-rounds", strconv.Itoa(rounds), "-concurrency", "2"})
	if err != nil {
		t.Fatal(err)
	}
	got := readResults(t, out)
	if len(got.Results) != 2 {
		t.Fatalf("%d results, want 2 (block builder, Prometheus)", len(got.Results))
	}
	for i, want := range []string{bench.BlockBuilder, bench.Prometheus} {
		r := got.Results[i]
		rr := r.Restart
		if r.Scenario != bench.Restart || r.Series != series || r.Error != "" || rr == nil || rr.Receiver != want {
			t.Fatalf("result %d: %s at %d series, error %q, restart %+v: want %s's restart at %d", i, r.Scenario, r.Series, r.Error, rr, want, series)
		}
		if rr.SamplesLoaded != series*rounds || rr.HeadSeriesAfterCrash < series {
			t.Errorf("%s: %d samples loaded, %d series after the kill: want %d and %d", want, rr.SamplesLoaded, rr.HeadSeriesAfterCrash, series*rounds, series)
		}
		if rr.CrashReadySeconds <= 0 || rr.GracefulStopSeconds <= 0 || rr.GracefulReadySeconds <= 0 || rr.RSSBeforeBytes <= 0 || rr.ReplayPeakRSSBytes <= 0 {
			t.Errorf("%s: figures %+v, want every time and RSS positive", want, rr)
		}
	}
	if bb := got.Results[0].Restart; bb.BucketBlocks == 0 || bb.BucketSamples < bb.SamplesLoaded {
		t.Errorf("block builder: %d blocks of %d samples in the bucket after its graceful stop, want every one of %d", bb.BucketBlocks, bb.BucketSamples, bb.SamplesLoaded)
	}
	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"## Restart", "| Strata block builder | 4.0k | 8.0k |", "| Prometheus (", "graceful → ready ≤ 10 s"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("results.md lacks %q:\n%s", s, md)
		}
	}
	if strings.Contains(string(md), "| restart |") {
		t.Errorf("results.md has a restart row in a throughput table:\n%s", md)
	}
}

func TestPlan(t *testing.T) {
	o := options{
		scenarios:      []string{bench.BlockBuilder, bench.BlockBuilderUnsorted, bench.VictoriaMetrics, bench.Router, bench.RouterUnsorted, bench.RouterRelabel, bench.BlockBuilderOTLP, bench.PrometheusOTLP, bench.Restart},
		series:         []int{100_000, 10_000},
		baselineSeries: []int{100_000, 1_000_000},
		variantSeries:  []int{100_000},
		restartSeries:  1_000_000,
	}
	want := []job{
		{bench.BlockBuilder, 10_000}, {bench.Router, 10_000}, {bench.BlockBuilderOTLP, 10_000},
		{bench.BlockBuilder, 100_000}, {bench.BlockBuilderUnsorted, 100_000}, {bench.VictoriaMetrics, 100_000}, {bench.Router, 100_000}, {bench.RouterUnsorted, 100_000}, {bench.RouterRelabel, 100_000}, {bench.BlockBuilderOTLP, 100_000}, {bench.PrometheusOTLP, 100_000},
		{bench.VictoriaMetrics, 1_000_000}, {bench.PrometheusOTLP, 1_000_000}, {bench.Restart, 1_000_000},
	}
	if got := o.plan(); !slices.Equal(got, want) {
		t.Errorf("plan %v, want %v: by series, then as -scenarios lists them, baselines at -baseline-series only, variants at -variant-series only, restart at -restart-series only", got, want)
	}
}

func TestVariantCounts(t *testing.T) {
	for _, tc := range []struct {
		list   string
		series []int
		want   []int
	}{
		{"", []int{10_000, 100_000, 1_000_000}, []int{100_000}},
		{"", []int{10_000}, []int{10_000}},
		{"10000,1000000", []int{100_000}, []int{10_000, 1_000_000}},
	} {
		got, err := variantCounts(tc.list, tc.series)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("variantCounts(%q, %v) = %v, %v; want %v", tc.list, tc.series, got, err, tc.want)
		}
	}
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown scenario", []string{"-scenarios", "blockbuilder,thanos"}, `unknown scenario "thanos"`},
		{"bad baseline series", []string{"-baseline-series", "100k"}, `-baseline-series: "100k" is not a number of series`},
		{"bad variant series", []string{"-variant-series", "0"}, `-variant-series: "0" is not a number of series`},
		{"bad variant series, former name", []string{"-unsorted-series", "x"}, `-variant-series: "x" is not a number of series`},
		{"VictoriaMetrics over 2.0", []string{"-scenarios", "victoriametrics", "-protocol", "2"}, "needs remote-write 1.0"},
		{"OTLP as a protocol", []string{"-scenarios", "blockbuilder", "-protocol", "3"}, "-protocol: remote-write 1 or 2"},
		{"no Prometheus for OTLP", []string{"-scenarios", "prometheus-otlp", "-prometheus", filepath.Join(t.TempDir(), "prometheus")}, "the prometheus-otlp scenario:"},
		{"no Prometheus for restart", []string{"-scenarios", "restart", "-prometheus", filepath.Join(t.TempDir(), "prometheus")}, "the restart scenario runs beside Prometheus"},
		{"bad restart series", []string{"-scenarios", "restart", "-restart-series", "0"}, "-restart-series: 0 is not a number of series"},
		{"bad restart rounds", []string{"-scenarios", "restart", "-restart-rounds", "0"}, "-restart-rounds: want at least 1 round"},
		{"no Prometheus", []string{"-scenarios", "blockbuilder,prometheus", "-prometheus", filepath.Join(t.TempDir(), "prometheus")}, "the prometheus scenario:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(append([]string{"-out", t.TempDir()}, tc.args...))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}

func TestCounterSum(t *testing.T) {
	text := `# HELP vm_rows_ignored_total Rows ignored.
# TYPE vm_rows_ignored_total counter
vm_rows_ignored_total{reason="big_timestamp"} 0
vm_rows_ignored_total{reason="small_timestamp"} 7
vm_rows_ignored_total_other 100
vm_rows_inserted_total{type="influx"} 5
vm_rows_inserted_total{type="promremotewrite"} 2.826e+06
prometheus_tsdb_head_samples_appended_total 12
`
	m, err := harness.ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		counter counter
		want    int64
	}{
		{counter{name: "vm_rows_ignored_total"}, 7},
		{counter{"vm_rows_inserted_total", "type", "promremotewrite"}, 2_826_000},
		{counter{name: "vm_rows_inserted_total"}, 2_826_005},
		{counter{name: "prometheus_tsdb_head_samples_appended_total"}, 12},
		{counter{name: "absent_total"}, 0},
		{counter{}, 0},
	} {
		if got := tc.counter.sum(m); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.counter, got, tc.want)
		}
	}
}

// readResults reads the results.json a run wrote into out.
func readResults(t *testing.T, out string) (got struct {
	Results []bench.Result `json:"results"`
}) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	return got
}
