package bench

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	return out
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
	if err := WriteMarkdown(&b, m, "anchor conditions", fakeResults(), "results.png"); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"Test CPU, 2 cores, 24.0 GiB", "load average 1.50 before and 2.00 after",
		"| blockbuilder | 100k | 83k | 0.13 | **625k** |", // 2.5M samples over 4 CPU-s
		"| router | 10k |", "**3.00M**", "503×2",
		"| dev | 1.00M | failed: did not get ready",
		"![samples per CPU-second", "VictoriaMetrics",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestWritePNG(t *testing.T) {
	var b bytes.Buffer
	if err := WritePNG(&b, fakeResults()); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() < 800 || img.Bounds().Dy() < 400 {
		t.Fatalf("image of %v is too small to read", img.Bounds())
	}
	// Each scenario with results is drawn in its colour, well beyond its
	// legend swatch.
	found := map[string]int{}
	for y := 100; y < img.Bounds().Dy(); y++ {
		for x := 0; x < img.Bounds().Dx(); x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			for name, c := range colors {
				if uint8(r>>8) == c.R && uint8(g>>8) == c.G && uint8(bl>>8) == c.B {
					found[name]++
				}
			}
		}
	}
	for _, name := range []string{BlockBuilder, Router} {
		if found[name] < 500 {
			t.Errorf("%s: %d pixels of its colour in the panels; its lines are missing", name, found[name])
		}
	}
	if dir := os.Getenv("STRATA_BENCH_PLOT_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "test-plot.png"), b.Bytes(), 0o644)
	}
	if err := WritePNG(&b, nil); err == nil {
		t.Error("a plot of no results: no error")
	}
}
