package harness

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// LabelValues lists the values a label takes across the series of the
// named metrics, sorted and without repeats.
func LabelValues(t testing.TB, g prometheus.Gatherer, label string, names ...string) []string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if !slices.Contains(names, mf.GetName()) {
			continue
		}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == label && !slices.Contains(out, l.GetValue()) {
					out = append(out, l.GetValue())
				}
			}
		}
	}
	slices.Sort(out)
	return out
}
