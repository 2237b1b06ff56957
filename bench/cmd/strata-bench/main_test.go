//go:build linux

package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratametrics/strata/bench"
	"github.com/stratametrics/strata/internal/harness"
)

// TestRunSmallBench runs two scenarios briefly against the real binary and
// checks that every output is written and every run delivered samples.
func TestRunSmallBench(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four strata processes")
	}
	bin := harness.Tool(t, "strata")
	out := t.TempDir()
	err := run([]string{"-bin", bin, "-out", out, "-tmp", t.TempDir(), "-series", "4000",
		"-duration", "2s", "-scenarios", "blockbuilder,router", "-concurrency", "2"})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Results []bench.Result `json:"results"`
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Results) != 2 {
		t.Fatalf("%d results, want 2", len(got.Results))
	}
	for _, r := range got.Results {
		if r.Error != "" || r.Report.Samples == 0 || r.SamplesPerCPUSecond() <= 0 {
			t.Errorf("%s: error %q, %d samples, %v per CPU-second", r.Scenario, r.Error, r.Report.Samples, r.SamplesPerCPUSecond())
		}
		if r.Scenario == bench.Router && (len(r.Report.Processes) != 4 || len(r.Measured) != 1 || r.Roles[r.Measured[0]] != "router") {
			t.Errorf("router scenario: processes %+v, measured %v (%v): want 4 processes, the router measured", r.Report.Processes, r.Measured, r.Roles)
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
	if err != nil || !strings.Contains(string(md), "| router | 4.0k |") {
		t.Errorf("results.md: %v\n%s", err, md)
	}
	f, err := os.Open(filepath.Join(out, "results.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("results.png: %v", err)
	}
}
