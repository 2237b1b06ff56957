package bench

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/relabel"
	"go.yaml.in/yaml/v3"

	"github.com/stratametrics/strata/functions"
	"github.com/stratametrics/strata/limits"
	"github.com/stratametrics/strata/loadgen"
)

func fakeResults() []Result {
	var out []Result
	for i, n := range []int{10_000, 100_000, 1_000_000} {
		samples := int64(3_000_000 - i*500_000)
		out = append(out,
			Result{Scenario: BlockBuilder, Series: n, Measured: []int{10},
				Report: loadgen.Report{Samples: samples, DurationSeconds: 30, SamplesPerSecond: float64(samples) / 30,
					Processes: []loadgen.ProcessReport{{Pid: 10, CPUSeconds: 4, PeakRSSBytes: int64(n) * 2000}}}},
			Result{Scenario: Router, Series: n, Measured: []int{20},
				Report: loadgen.Report{Samples: samples, DurationSeconds: 30, Errors: map[string]int64{"503": 2},
					Processes: []loadgen.ProcessReport{
						{Pid: 20, CPUSeconds: 1, PeakRSSBytes: 50e6},
						{Pid: 21, CPUSeconds: 5, PeakRSSBytes: int64(n) * 3000},
						{Pid: 22, CPUSeconds: 5, PeakRSSBytes: int64(n) * 3000},
						{Pid: 23, CPUSeconds: 5, PeakRSSBytes: int64(n) * 3000},
					}}},
		)
	}
	out = append(out, Result{Scenario: Dev, Series: 1_000_000, Error: "did not get ready"})
	return append(out, fakeBaselines()...)
}

// fakeBaselines are VictoriaMetrics at 10k and 100k series (600k and 500k
// samples per CPU-second) and Prometheus at 100k (167k).
func fakeBaselines() []Result {
	one := func(scenario string, series int, samples int64, cpu float64, rss int64) Result {
		return Result{Scenario: scenario, Series: series, Measured: []int{30}, Version: "example.com/" + scenario + " v1.0.0",
			Report: loadgen.Report{Samples: samples, DurationSeconds: 30, SamplesPerSecond: float64(samples) / 30,
				Processes: []loadgen.ProcessReport{{Pid: 30, CPUSeconds: cpu, PeakRSSBytes: rss}}}}
	}
	return []Result{
		one(VictoriaMetrics, 10_000, 3_000_000, 5, 250e6),
		one(VictoriaMetrics, 100_000, 2_500_000, 5, 300e6),
		one(Prometheus, 100_000, 2_500_000, 15, 400e6),
	}
}

func TestFigureOfMerit(t *testing.T) {
	r := fakeResults()[1] // router, 10k series: 3M samples
	if got := r.SamplesPerCPUSecond(); got != 3e6 {
		t.Errorf("router: %v samples per CPU-second, want 3e6 (its own CPU only)", got)
	}
	if got := r.AllSamplesPerCPUSecond(); got != 3e6/16 {
		t.Errorf("all processes: %v, want %v", got, 3e6/16)
	}
	if m, o := r.PeakRSS(); m != 50e6 || o != 30e6 {
		t.Errorf("peak RSS %d / %d, want the router's 50 MB and the block builders' 30 MB", m, o)
	}
}

func TestWriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	m := Machine{CPU: "Test CPU", Cores: 2, MemoryBytes: 24 << 30, GoVersion: "go1.x", Revision: "abc", LoadBefore: 1.5, LoadAfter: 2}
	if err := WriteMarkdown(&b, m, "anchor conditions", fakeResults(), "results.svg"); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"Test CPU, 2 cores, 24.0 GiB", "load average 1.50 before and 2.00 after",
		"| blockbuilder | 100k | 83k | 0.13 | **625k** |", // 2.5M samples over 4 CPU-s
		"| router | 10k |", "**3.00M**", "503×2",
		"| dev | 1.00M | failed: did not get ready",
		"![samples per CPU-second", "VictoriaMetrics",
		"| victoriametrics | 100k | 83k | 0.17 | **500k** |",
		"- `prometheus`: baseline: Prometheus",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestBaselines(t *testing.T) {
	noBaselines := fakeResults()[:7]
	// The baselines ran at 10k series only: the targets are scaled there,
	// marked as off the anchors' count.
	at10k := append(fakeResults()[:7], fakeBaselines()[0])
	for _, tc := range []struct {
		name          string
		results       []Result
		want, notWant []string
	}{
		{"at the anchors' series", fakeResults(), []string{
			"## Against baselines measured in this run",
			"- VictoriaMetrics (example.com/victoriametrics v1.0.0), samples per CPU-second here: 600k at 10k series, 500k at 100k series (0.69× its anchor); on the anchors' machine: 722k at 100k series.",
			"- Prometheus (example.com/prometheus v1.0.0), samples per CPU-second here: 167k at 100k series (1.00× its anchor)",
			"| scenario | active series | samples per CPU-second | vs VictoriaMetrics | vs Prometheus | peak RSS | vs VictoriaMetrics | vs Prometheus |",
			// 2.5M samples over 4 CPU-s against 500k and 167k; 200 MB
			// against 300 and 400 MB.
			"| blockbuilder | 100k | 625k | 1.25× | 3.75× | 200 MB | 0.67× | 0.50× |",
			"| blockbuilder | 10k | 750k | 1.25× | – | 20 MB | 0.08× | – |",
			"| router | 1.00M | 2.00M | – | – | 50 MB | – | – |",
			"| victoriametrics | 100k | 500k | 1.00× | 3.00× |",
			// 750k × 500k / 722k; 750k × 167k / 167k.
			"| one block builder, RF=1 ≥ 750k | VictoriaMetrics (722k) | 1.04× | 100k | 500k | 519k | 625k | 1.25× | yes |",
			"| one block builder, RF=1 ≥ 750k | Prometheus (167k) | 4.49× | 100k | 167k | 749k | 625k | 3.75× | no, 17% short |",
			// 2.5M over the router's 1 CPU-s and over all four's 16.
			"| the router alone (router) ≥ 2.00M | VictoriaMetrics (722k) | 2.77× | 100k | 500k | 1.39M | 2.50M | 5.00× | yes |",
			"| router + 3 block builders, RF=3, as four processes, all counted (router) ≥ 200k | VictoriaMetrics (722k) | 0.28× | 100k | 500k | 139k | 156k | 0.31× | yes |",
			"| router + 3 block builders, RF=3, in one process (dev) ≥ 200k | Prometheus (167k) | 1.20× | – | – | – | – | – | not measured at a common number of series |",
			"one block builder, RF=1 at 100k series, 200 MB against the target of ≤ 250 MB: met. The baselines here at 100k series: VictoriaMetrics 300 MB (anchor 346 MB), Prometheus 400 MB (anchor 364 MB).",
		}, []string{"Not the anchors'"}},
		{"no baselines", noBaselines, []string{
			"No baseline delivered a figure in this run",
		}, []string{"### Targets scaled", "vs VictoriaMetrics"}},
		{"off the anchors' series", at10k, []string{
			"| blockbuilder | 10k | 750k | 1.25× | 20 MB | 0.08× |",
			"| blockbuilder | 100k | 625k | – | 200 MB | – |",
			"| one block builder, RF=1 ≥ 750k | VictoriaMetrics (722k) | 1.04× | 10k * | 600k | 623k | 750k | 1.25× | yes |",
			"\\* Not the anchors' 100k series",
		}, []string{"Prometheus (167k)", "(anchor 346 MB)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			writeBaselines(&b, tc.results)
			md := b.String()
			for _, want := range tc.want {
				if !strings.Contains(md, want) {
					t.Errorf("lacks %q:\n%s", want, md)
				}
			}
			for _, no := range tc.notWant {
				if strings.Contains(md, no) {
					t.Errorf("has %q:\n%s", no, md)
				}
			}
		})
	}
}

// TestUnsorted reads the unsorted scenarios against their sorted ones at
// the same number of series, and only there.
func TestUnsorted(t *testing.T) {
	if sorted, ok := Unsorted(RouterUnsorted); !ok || sorted != Router {
		t.Errorf("Unsorted(%q) = %q, %v", RouterUnsorted, sorted, ok)
	}
	if _, ok := Unsorted(RouterWide); ok {
		t.Errorf("%s is not an unsorted scenario", RouterWide)
	}
	results := append(fakeResults(),
		// 2.5M samples over 5 CPU-s against the block builder's 4: 2000
		// ns/sample against 1600.
		Result{Scenario: BlockBuilderUnsorted, Series: 100_000, Measured: []int{40},
			Report: loadgen.Report{Samples: 2_500_000, DurationSeconds: 30, UnsortedLabels: true,
				Processes: []loadgen.ProcessReport{{Pid: 40, CPUSeconds: 5, PeakRSSBytes: 200e6}}}},
		// The router's 1 CPU-s of 16 become 1.25 of 16.25.
		Result{Scenario: RouterUnsorted, Series: 100_000, Measured: []int{50},
			Report: loadgen.Report{Samples: 2_500_000, DurationSeconds: 30, UnsortedLabels: true,
				Processes: []loadgen.ProcessReport{{Pid: 50, CPUSeconds: 1.25}, {Pid: 51, CPUSeconds: 15}}}},
		Result{Scenario: RouterUnsorted, Series: 5000, Error: "did not get ready"},
		Result{Scenario: BlockBuilderUnsorted, Series: 5000, Measured: []int{40},
			Report: loadgen.Report{Samples: 1000, DurationSeconds: 30, Processes: []loadgen.ProcessReport{{Pid: 40, CPUSeconds: 1}}}},
	)
	var b bytes.Buffer
	if err := WriteMarkdown(&b, Machine{}, "conditions", results, ""); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"## Unsorted labels",
		"- `blockbuilder-unsorted`: blockbuilder with every series' labels sent out of order",
		"| blockbuilder-unsorted | 100k | 625k / 500k | 1600 / 2000 | **+400** | 1.25× | +400 | 1.25× |",
		"| router-unsorted | 100k | 2.50M / 2.00M | 400 / 500 | **+100** | 1.25× | +100 | 1.02× |",
		"| router-unsorted | 5.0k | failed (see above) |",
		"| blockbuilder-unsorted | 5.0k | no blockbuilder run at this number of series |",
		"| blockbuilder-unsorted | 100k | 0 | 0.17 | **500k** |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	var plain strings.Builder
	if err := WriteMarkdown(&plain, Machine{}, "conditions", fakeResults(), ""); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "## Unsorted labels") {
		t.Error("a section on unsorted labels without an unsorted scenario")
	}
	var svg bytes.Buffer
	if err := WriteSVG(&svg, results); err != nil {
		t.Fatal(err)
	}
}

// TestRelabel reads the relabeling scenario against the plain router at
// the same number of series, in a section of its own, and checks its
// limits file is one the router takes, with loadgen's rules for every
// tenant.
func TestRelabel(t *testing.T) {
	if plain, ok := Relabeled(RouterRelabel); !ok || plain != Router {
		t.Errorf("Relabeled(%q) = %q, %v", RouterRelabel, plain, ok)
	}
	for sc, want := range map[string]string{RouterRelabel: RelabelSuffix, RouterUnsorted: UnsortedSuffix, BlockBuilderUnsorted: UnsortedSuffix, Router: "", RouterOTLP: ""} {
		base, v := VariantOf(sc)
		switch {
		case want == "" && (v != nil || base != sc):
			t.Errorf("VariantOf(%q) = %q, %v: no variant", sc, base, v)
		case want != "" && (v == nil || v.Suffix != want || base+want != sc):
			t.Errorf("VariantOf(%q) = %q, %v: want the %s variant", sc, base, v, want)
		}
	}
	results := append(fakeResults(),
		// The router's 1 CPU-s of 16 at 100k series become 1.5 of 15.5
		// (the block builders get a tenth fewer series).
		Result{Scenario: RouterRelabel, Series: 100_000, Measured: []int{50},
			Report: loadgen.Report{Samples: 2_500_000, DurationSeconds: 30,
				Processes: []loadgen.ProcessReport{{Pid: 50, CPUSeconds: 1.5}, {Pid: 51, CPUSeconds: 14}}}},
		Result{Scenario: RouterRelabel, Series: 5000, Error: "did not get ready"},
	)
	var b bytes.Buffer
	if err := WriteMarkdown(&b, Machine{}, "conditions", results, ""); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"## Relabeling",
		"- `router-relabel`: router with metric_relabel_configs for every tenant",
		"| scenario | active series | samples per CPU-second, plain / relabeled | ns/sample, plain / relabeled | extra ns/sample | relabeled ÷ plain, CPU per sample | all processes, extra ns/sample | all processes, relabeled ÷ plain |",
		"| router-relabel | 100k | 2.50M / 1.67M | 400 / 600 | **+200** | 1.50× | -200 | 0.97× |",
		"| router-relabel | 5.0k | failed (see above) |",
		// Against the baselines as any other scenario: 2.5M over 1.5 CPU-s
		// against VictoriaMetrics' 500k and Prometheus' 167k.
		"| router-relabel | 100k | 1.67M | 3.33× | 10.00× |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "## Unsorted labels") {
		t.Error("a section on unsorted labels without an unsorted scenario")
	}

	cfg := functions.DefaultConfig()
	if _, err := limits.Parse([]byte(RelabelLimits()), functions.DefaultTenantLimits(&cfg)); err != nil {
		t.Fatalf("the limits file of the relabel scenarios: %v\n%s", err, RelabelLimits())
	}
	var rules []*relabel.Config
	if err := yaml.Unmarshal([]byte(loadgen.RelabelRules), &rules); err != nil {
		t.Fatal(err)
	}
	var file struct {
		Default struct {
			MetricRelabelConfigs []*relabel.Config `yaml:"metric_relabel_configs"`
		} `yaml:"default"`
	}
	if err := yaml.Unmarshal([]byte(RelabelLimits()), &file); err != nil {
		t.Fatal(err)
	}
	got := file.Default.MetricRelabelConfigs
	if len(got) != len(rules) || len(got) == 0 {
		t.Fatalf("every tenant has %d rules, want loadgen.RelabelRules' %d:\n%s", len(got), len(rules), RelabelLimits())
	}
	for i := range rules {
		if got[i].Action != rules[i].Action || got[i].Regex.String() != rules[i].Regex.String() {
			t.Errorf("rule %d: %s %s, want %s %s", i+1, got[i].Action, got[i].Regex, rules[i].Action, rules[i].Regex)
		}
	}
}

func TestWriteSVG(t *testing.T) {
	var b bytes.Buffer
	if err := WriteSVG(&b, fakeResults()); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML: the texts it shows, and the scenarios drawn in
	// each panel.
	var texts []string
	drawn := map[string]int{}
	d := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	var inText, root bool
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, b.String())
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if !root && (tok.Name.Local != "svg" || tok.Name.Space != "http://www.w3.org/2000/svg") {
				t.Fatalf("root element %v, want svg", tok.Name)
			}
			root = true
			inText = tok.Name.Local == "text"
			for _, a := range tok.Attr {
				if a.Name.Local == "data-scenario" {
					drawn[a.Value]++
				}
			}
		case xml.CharData:
			if inText {
				texts = append(texts, string(tok))
			}
		case xml.EndElement:
			inText = false
		}
	}
	for _, want := range []string{
		"Strata: samples per CPU-second and peak RSS against active series",
		"samples per CPU-second", "peak RSS", "active series",
		"10k", "100k", "1.00M", "(same run, same load)  (dashed: targets)",
	} {
		if !slices.Contains(texts, want) {
			t.Errorf("no text %q in %q", want, texts)
		}
	}
	// Each scenario of the plot has its label in the legend, whether it
	// ran or not, and a line (or point) in both panels when it ran.
	for _, s := range Scenarios {
		if !plotted(s.Name) {
			if slices.Contains(texts, s.Legend) || drawn[s.Name] > 0 {
				t.Errorf("%s is in the plot", s.Name)
			}
			continue
		}
		if !slices.Contains(texts, s.Legend) {
			t.Errorf("no legend %q in %q", s.Legend, texts)
		}
	}
	for _, name := range []string{BlockBuilder, Router, VictoriaMetrics, Prometheus} {
		if drawn[name] != 2 {
			t.Errorf("%s drawn in %d panels, want 2", name, drawn[name])
		}
	}
	if drawn[Dev] != 0 {
		t.Errorf("%s, which failed, drawn in %d panels", Dev, drawn[Dev])
	}
	if dir := os.Getenv("STRATA_BENCH_PLOT_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "test-plot.svg"), b.Bytes(), 0o644)
	}
	if err := WriteSVG(&b, nil); err == nil {
		t.Error("a plot of no results: no error")
	}
}

// TestOTLP reads the OTLP scenarios against the OTLP baselines and their
// remote-write scenarios at the same number of series, and leaves them
// out of the remote-write baselines' table and of the plot.
func TestOTLP(t *testing.T) {
	for sc, want := range map[string]string{BlockBuilderOTLP: BlockBuilder, RouterOTLP: Router, PrometheusOTLP: Prometheus, VictoriaMetricsOTLP: VictoriaMetrics} {
		if rw, ok := OTLP(sc); !ok || rw != want {
			t.Errorf("OTLP(%q) = %q, %v; want %q", sc, rw, ok, want)
		}
	}
	if _, ok := OTLP(BlockBuilder); ok {
		t.Errorf("%s is not an OTLP scenario", BlockBuilder)
	}
	if !IsBaseline(PrometheusOTLP) || !IsBaseline(VictoriaMetricsOTLP) || IsBaseline(BlockBuilderOTLP) {
		t.Error("the OTLP baselines are baselines, the otlp scenario is not")
	}
	one := func(scenario string, series int, samples int64, cpu float64, rss int64) Result {
		return Result{Scenario: scenario, Series: series, Measured: []int{60},
			Report: loadgen.Report{Samples: samples, DurationSeconds: 30, Protocol: loadgen.OTLP,
				Processes: []loadgen.ProcessReport{{Pid: 60, CPUSeconds: cpu, PeakRSSBytes: rss}}}}
	}
	results := append(fakeResults(),
		// 2.5M samples over 10 CPU-s: 250k, against the block builder's
		// 625k over remote-write.
		one(BlockBuilderOTLP, 100_000, 2_500_000, 10, 240e6),
		one(VictoriaMetricsOTLP, 100_000, 2_500_000, 5, 300e6),
		one(PrometheusOTLP, 100_000, 2_500_000, 20, 480e6),
		one(BlockBuilderOTLP, 10_000, 1_000_000, 4, 24e6),
		Result{Scenario: RouterOTLP, Series: 100_000, Error: "did not get ready"},
	)
	var b bytes.Buffer
	if err := WriteMarkdown(&b, Machine{}, "conditions", results, ""); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"## OTLP",
		"| scenario | active series | samples per CPU-second | vs VictoriaMetrics OTLP | vs Prometheus OTLP | over remote-write, samples per CPU-second | OTLP ÷ remote-write | peak RSS | vs VictoriaMetrics OTLP | vs Prometheus OTLP |",
		"| otlp | 100k | 250k | 0.50× | 2.00× | 625k | 0.40× | 240 MB | 0.80× | 0.50× |",
		"| otlp | 10k | 250k | – | – | 750k | 0.33× | 24 MB | – | – |",
		"| router-otlp | 100k | failed (see above) |",
		"| victoriametrics-otlp | 100k | 500k | 1.00× | 4.00× | 500k | 1.00× |",
		"- `prometheus-otlp`: baseline: Prometheus with its OTLP receiver",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// The remote-write baselines' table has no OTLP row.
	against := md[strings.Index(md, "## Against baselines"):]
	if strings.Contains(against, "| otlp |") || strings.Contains(against, "| prometheus-otlp |") {
		t.Errorf("OTLP rows read against the remote-write baselines:\n%s", against)
	}
	var plain strings.Builder
	if err := WriteMarkdown(&plain, Machine{}, "conditions", fakeResults(), ""); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "## OTLP") {
		t.Error("a section on OTLP without an OTLP scenario")
	}
	var svg bytes.Buffer
	if err := WriteSVG(&svg, results); err != nil {
		t.Fatal(err)
	}
}

// TestTenants reads the tenants scenario against one tenant of the same
// series in the usual requests (the target) and in requests of the same
// size (tenants-1), with the memory each tenant adds.
func TestTenants(t *testing.T) {
	one := func(scenario string, series, tenants, perRequest int, samples int64, cpu float64, rss int64) Result {
		return Result{Scenario: scenario, Series: series, Measured: []int{60},
			Report: loadgen.Report{Samples: samples, DurationSeconds: 30, Tenants: tenants, SamplesPerRequest: perRequest,
				Processes: []loadgen.ProcessReport{{Pid: 60, CPUSeconds: cpu, PeakRSSBytes: rss}}}}
	}
	results := append(fakeResults(),
		// 500k samples per CPU-second against the block builder's 625k
		// at 100k series (200 MB), 600k in one tenant's small requests.
		one(Tenants, 100_000, 1000, 100, 1_500_000, 3, 800e6),
		one(TenantsOne, 100_000, 1, 100, 1_500_000, 2.5, 190e6),
		// 300k against 750k at 10k series: under the target.
		one(Tenants, 10_000, 1000, 10, 3_000_000, 10, 400e6),
	)
	var b strings.Builder
	if err := WriteMarkdown(&b, Machine{}, "conditions", results, ""); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"## Many tenants",
		"| tenants | 100k | 1000 × 100 | 100 | 625k / 500k | **0.80×** (yes) | 600k / 0.83× | 200 MB / 800 MB | 600 kB |",
		"| tenants | 10k | 1000 × 10 | 10 | 750k / 300k | **0.40×** (no) | no tenants-1 run | 20 MB / 400 MB | 380 kB |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	var plain strings.Builder
	if err := WriteMarkdown(&plain, Machine{}, "conditions", fakeResults(), ""); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "## Many tenants") {
		t.Error("a section on tenants without a tenants run")
	}
}
