package bench

// Strata's figures as ratios to the baselines measured in the same run,
// and the targets scaled to this machine by them. Absolute figures shift
// with the CPU (some 30% between two machines of the same kind); a ratio
// to another receiver under the same load, on the same cores, in the same
// run, much less.

import (
	"fmt"
	"math"
	"strings"
)

// find returns the successful result of scenario at series, or nil.
func find(results []Result, scenario string, series int) *Result {
	for i := range results {
		if r := &results[i]; r.Scenario == scenario && r.Series == series && r.ok() {
			return r
		}
	}
	return nil
}

// commonSeries is the number of active series at which to compare a and
// b: AnchorSeries when both succeeded there, else the nearest to it (on a
// log scale) at which both did; 0 when there is none.
func commonSeries(results []Result, a, b string) int {
	best, dist := 0, math.Inf(1)
	for _, r := range results {
		if r.Scenario != a || !r.ok() || find(results, b, r.Series) == nil {
			continue
		}
		if d := math.Abs(math.Log(float64(r.Series) / AnchorSeries)); d < dist {
			best, dist = r.Series, d
		}
	}
	return best
}

// times renders a/b as a ratio, or a dash when b is unknown.
func times(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func ran(results []Result, scenario string) bool {
	for _, r := range results {
		if r.Scenario == scenario {
			return true
		}
	}
	return false
}

// writeBaselines writes the section that reads the run against its
// baselines: every result as ratios to them at the same number of active
// series, then the targets scaled to this machine.
func writeBaselines(b *strings.Builder, results []Result) {
	b.WriteString("\n## Against baselines measured in this run\n\n")
	var bases []int // indexes into BaselineAnchors of the baselines that delivered
	for i, a := range BaselineAnchors {
		for _, r := range results {
			if r.Scenario == a.Scenario && r.ok() {
				bases = append(bases, i)
				break
			}
		}
	}
	if len(bases) == 0 {
		fmt.Fprintf(b, "No baseline delivered a figure in this run: the `%s` and `%s` scenarios, which receive the same load, give Strata's figures as ratios and scale the targets to this machine.\n", VictoriaMetrics, Prometheus)
		return
	}
	b.WriteString("The baselines received the same load as Strata in this run, each as one process measured as the block builder is. ")
	b.WriteString("Absolute figures shift with the CPU; a ratio to another receiver measured on the same cores in the same run much less, so these are the figures to compare with the targets.\n\n")
	for _, i := range bases {
		a := BaselineAnchors[i]
		var here []string
		version := ""
		for _, r := range results {
			if r.Scenario != a.Scenario || !r.ok() {
				continue
			}
			if r.Version != "" {
				version = " (" + r.Version + ")"
			}
			s := fmt.Sprintf("%s at %s series", count(r.SamplesPerCPUSecond()), count(float64(r.Series)))
			if r.Series == AnchorSeries {
				s += fmt.Sprintf(" (%s its anchor)", times(r.SamplesPerCPUSecond(), a.SamplesPerCPUSecond))
			}
			here = append(here, s)
		}
		fmt.Fprintf(b, "- %s%s, samples per CPU-second here: %s; on the anchors' machine: %s at %s series.\n",
			a.Name, version, strings.Join(here, ", "), count(a.SamplesPerCPUSecond), count(AnchorSeries))
	}

	b.WriteString("\n| scenario | active series | samples per CPU-second |")
	for _, i := range bases {
		fmt.Fprintf(b, " vs %s |", BaselineAnchors[i].Name)
	}
	b.WriteString(" peak RSS |")
	for _, i := range bases {
		fmt.Fprintf(b, " vs %s |", BaselineAnchors[i].Name)
	}
	b.WriteString("\n|---|---:|---:|" + strings.Repeat("---:|", len(bases)) + "---:|" + strings.Repeat("---:|", len(bases)) + "\n")
	for _, r := range results {
		// OTLP runs take another load: they are read against the OTLP
		// baselines (see writeOTLP).
		if _, otlp := OTLP(r.Scenario); !r.ok() || otlp {
			continue
		}
		spc := r.SamplesPerCPUSecond()
		peak, _ := r.PeakRSS()
		fmt.Fprintf(b, "| %s | %s | %s |", r.Scenario, count(float64(r.Series)), count(spc))
		for _, i := range bases {
			base := 0.0
			if o := find(results, BaselineAnchors[i].Scenario, r.Series); o != nil {
				base = o.SamplesPerCPUSecond()
			}
			fmt.Fprintf(b, " %s |", times(spc, base))
		}
		fmt.Fprintf(b, " %s |", megabytes(peak))
		for _, i := range bases {
			var base int64
			if o := find(results, BaselineAnchors[i].Scenario, r.Series); o != nil {
				base, _ = o.PeakRSS()
			}
			fmt.Fprintf(b, " %s |", times(float64(peak), float64(base)))
		}
		b.WriteString("\n")
	}
	b.WriteString("\nA dash: no baseline at that number of active series (`-baseline-series` sets where they run).\n")

	fmt.Fprintf(b, "\n### Targets scaled to this machine\n\n"+
		"The targets are stated at %s active series against the anchors. Scaled to this machine, a target is the target × (the baseline here ÷ its anchor); "+
		"equivalently, it is met when Strata's ratio to the baseline here reaches the target's ratio to the baseline's anchor. "+
		"Each baseline gives its own scale: where they disagree, the machine favours one receiver's work over the other's.\n\n", count(AnchorSeries))
	b.WriteString("| target | baseline (anchor) | target ÷ anchor | active series | baseline here | target scaled here | Strata here | Strata ÷ baseline here | met |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	off := false
	for _, t := range Targets {
		if !ran(results, t.Scenario) {
			continue
		}
		for _, i := range bases {
			a := BaselineAnchors[i]
			fmt.Fprintf(b, "| %s ≥ %s | %s (%s) | %s |", t.What, count(t.SamplesPerCPUSecond), a.Name, count(a.SamplesPerCPUSecond), times(t.SamplesPerCPUSecond, a.SamplesPerCPUSecond))
			n := commonSeries(results, t.Scenario, a.Scenario)
			if n == 0 {
				b.WriteString(" – | – | – | – | – | not measured at a common number of series |\n")
				continue
			}
			if n != AnchorSeries {
				off = true
			}
			s, base := find(results, t.Scenario, n), find(results, a.Scenario, n).SamplesPerCPUSecond()
			got := s.SamplesPerCPUSecond()
			if t.AllProcesses {
				got = s.AllSamplesPerCPUSecond()
			}
			scaled := t.SamplesPerCPUSecond * base / a.SamplesPerCPUSecond
			met := "yes"
			if got < scaled {
				met = fmt.Sprintf("no, %.0f%% short", 100*(1-got/scaled))
			}
			series := count(float64(n))
			if n != AnchorSeries {
				series += " *"
			}
			fmt.Fprintf(b, " %s | %s | %s | %s | %s | %s |\n", series, count(base), count(scaled), count(got), times(got, base), met)
		}
	}
	if off {
		fmt.Fprintf(b, "\n\\* Not the anchors' %s series: the baseline did not run there; indicative only, as every receiver's figure changes with the number of series.\n", count(AnchorSeries))
	}

	for _, t := range Targets {
		if t.PeakRSSBytes <= 0 || !ran(results, t.Scenario) {
			continue
		}
		n := 0
		for _, r := range results {
			if r.Scenario == t.Scenario && r.ok() && (n == 0 || math.Abs(math.Log(float64(r.Series)/AnchorSeries)) < math.Abs(math.Log(float64(n)/AnchorSeries))) {
				n = r.Series
			}
		}
		if n == 0 {
			continue
		}
		peak, _ := find(results, t.Scenario, n).PeakRSS()
		met := "met"
		if peak > t.PeakRSSBytes {
			met = "not met"
		}
		fmt.Fprintf(b, "\nPeak RSS is not scaled, as memory does not follow the CPU: %s at %s series, %s against the target of ≤ %s: %s.",
			t.What, count(float64(n)), megabytes(peak), megabytes(t.PeakRSSBytes), met)
		var here []string
		for _, i := range bases {
			a := BaselineAnchors[i]
			if r := find(results, a.Scenario, n); r != nil {
				p, _ := r.PeakRSS()
				s := a.Name + " " + megabytes(p)
				if n == AnchorSeries {
					s += " (anchor " + megabytes(a.PeakRSSBytes) + ")"
				}
				here = append(here, s)
			}
		}
		if len(here) > 0 {
			fmt.Fprintf(b, " The baselines here at %s series: %s.", count(float64(n)), strings.Join(here, ", "))
		}
		b.WriteString("\n")
	}
}
