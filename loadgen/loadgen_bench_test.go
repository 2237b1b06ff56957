package loadgen

import (
	"testing"

	"github.com/klauspost/compress/snappy"

	"github.com/stratametrics/strata/remotewrite"
)

// modes are the label orders the generator sends, by benchmark name
// suffix.
var modes = []struct {
	suffix   string
	unsorted bool
}{{"", false}, {"-unsorted", true}}

// BenchmarkPatch is the generator's work per request: patch a 2000-sample
// template. Compare with BenchmarkSnappyEncode, what compressing each
// request anew would cost. The unsorted mode patches the same bytes; its
// bytes/sample tell whether the order changes what the receiver
// decompresses.
func BenchmarkPatch(b *testing.B) {
	for _, v := range []remotewrite.Version{remotewrite.V1, remotewrite.V2} {
		for _, m := range modes {
			b.Run(v.String()+m.suffix, func(b *testing.B) {
				tmpl := buildTemplate(v, 0, make([]int, 2000), 1, m.unsorted)
				b.ReportAllocs()
				k := int64(0)
				for b.Loop() {
					tmpl.patch(k, 1_790_000_000_000, 15000)
					k++
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000), "ns/sample")
				b.ReportMetric(float64(len(tmpl.body))/2000, "bytes/sample")
			})
		}
	}
}

// BenchmarkBuildTemplate is what building a 2000-series request costs,
// once per request at the start and again whenever churn replaces one of
// its series: off the per-sample path, but it must stay small beside a
// round of sends.
func BenchmarkBuildTemplate(b *testing.B) {
	for _, v := range []remotewrite.Version{remotewrite.V1, remotewrite.V2} {
		for _, m := range modes {
			b.Run(v.String()+m.suffix, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					buildTemplate(v, 0, make([]int, 2000), 1, m.unsorted)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000), "ns/series")
			})
		}
	}
}

func BenchmarkSnappyEncode(b *testing.B) {
	raw := Encode(remotewrite.V1, 0, 2000, 1, 0, 1_790_000_000_000, 15000)
	dst := make([]byte, snappy.MaxEncodedLen(len(raw)))
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n = len(snappy.Encode(dst, raw))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000), "ns/sample")
	b.ReportMetric(float64(n)/2000, "bytes/sample")
}
