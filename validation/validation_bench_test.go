package validation_test

// The per-sample cost of validation, on the requests `strata loadgen`
// sends (2000 Kubernetes-style series of 10 labels, one sample each), in
// ns/sample, the unit `make bench` measures whole processes in.

import (
	"slices"
	"testing"

	"github.com/stratametrics/strata/loadgen"
	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/validation"
)

const (
	benchSeries  = 2000
	benchStartMs = int64(1_790_000_000_000)
)

// BenchmarkCheckSeries: validation alone, on decoded series, with their
// labels as senders sort them and reversed (validation sorts them). Both
// copy the labels back before each round, so that they differ only in
// the sorting.
func BenchmarkCheckSeries(b *testing.B) {
	body := loadgen.Encode(remotewrite.V1, 0, benchSeries, 1, 0, benchStartMs, 15000)
	var req remotewrite.Request
	if err := req.Parse(remotewrite.V1, body); err != nil {
		b.Fatal(err)
	}
	for _, order := range []string{"sorted", "unsorted"} {
		b.Run(order, func(b *testing.B) {
			series := make([]remotewrite.Series, req.NumSeries())
			sent := make([][]remotewrite.Label, len(series))
			for i := range series {
				if err := req.Series(i, &series[i]); err != nil {
					b.Fatal(err)
				}
				sent[i] = slices.Clone(series[i].Labels)
				if order == "unsorted" {
					slices.Reverse(sent[i])
				}
			}
			limits := validation.DefaultLimits()
			now := benchStartMs + 60_000
			b.ReportAllocs()
			for b.Loop() {
				for i := range series {
					copy(series[i].Labels, sent[i])
					if err := limits.CheckSeries(remotewrite.V1, &series[i], now); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(benchSeries), "ns/sample")
		})
	}
}
