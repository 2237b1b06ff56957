package harness

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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

// Gathered is the value of the first series of the named gauge or counter
// in g that has the given label pairs (name, value, ...); the test fails
// without one.
func Gathered(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			if hasLabels(m, labels) {
				if g := m.GetGauge(); g != nil {
					return g.GetValue()
				}
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		if !slices.ContainsFunc(m.Label, func(l *dto.LabelPair) bool { return l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] }) {
			return false
		}
	}
	return true
}

// Metrics are the metric families of a text exposition, by name.
type Metrics map[string]*dto.MetricFamily

// ParseMetrics reads a text exposition.
func ParseMetrics(r io.Reader) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// ScrapeMetrics reads the text exposition at url (a /metrics).
func ScrapeMetrics(ctx context.Context, url string) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics %s: %s", url, resp.Status)
	}
	m, err := ParseMetrics(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("metrics %s: %w", url, err)
	}
	return m, nil
}

// Sum adds up the values of the counters, gauges and untyped series of
// family name whose labels pass keep (nil: all of them); NaN values are
// left out. A family that is not there sums to 0.
func (m Metrics) Sum(name string, keep func(labels map[string]string) bool) float64 {
	mf := m[name]
	if mf == nil {
		return 0
	}
	total := 0.0
	for _, s := range mf.Metric {
		if keep != nil {
			ls := make(map[string]string, len(s.Label))
			for _, l := range s.Label {
				ls[l.GetName()] = l.GetValue()
			}
			if !keep(ls) {
				continue
			}
		}
		var v float64
		switch {
		case s.Counter != nil:
			v = s.Counter.GetValue()
		case s.Gauge != nil:
			v = s.Gauge.GetValue()
		case s.Untyped != nil:
			v = s.Untyped.GetValue()
		}
		if !math.IsNaN(v) {
			total += v
		}
	}
	return total
}

// Has tells whether the exposition has family name.
func (m Metrics) Has(name string) bool { return m[name] != nil }

// Label keeps, in Sum, the series whose label name has value.
func Label(name, value string) func(labels map[string]string) bool {
	return func(ls map[string]string) bool { return ls[name] == value }
}
