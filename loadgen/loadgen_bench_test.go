package loadgen

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
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

// BenchmarkPatchOTLP is BenchmarkPatch for OTLP, gzipped and not: the
// gzip one patches the raw request too and computes its CRC. Compare with
// BenchmarkGzipEncode, what gzipping each request anew would cost, and
// its bytes/sample with what a gzip writer makes of the same request.
func BenchmarkPatchOTLP(b *testing.B) {
	for _, gz := range []bool{true, false} {
		name := "identity"
		if gz {
			name = "gzip"
		}
		b.Run(name, func(b *testing.B) {
			tmpl := buildOTLPTemplate(0, make([]int, 2000), 1, false, "loadgen-0", gz)
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

func BenchmarkBuildOTLPTemplate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		buildOTLPTemplate(0, make([]int, 2000), 1, false, "loadgen-0", true)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000), "ns/series")
}

// BenchmarkGzipEncode gzips a 2000-sample OTLP request at the default
// level, as the OpenTelemetry Collector's exporter does.
func BenchmarkGzipEncode(b *testing.B) {
	raw := EncodeOTLP(0, 2000, 1, 0, 1_790_000_000_000, 15000, "loadgen-0")
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	b.ReportAllocs()
	for b.Loop() {
		out.Reset()
		zw.Reset(&out)
		_, _ = zw.Write(raw)
		_ = zw.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000), "ns/sample")
	b.ReportMetric(float64(out.Len())/2000, "bytes/sample")
	b.ReportMetric(float64(len(raw))/2000, "raw-bytes/sample")
}

// BenchmarkInflateOTLP is what a receiver spends inflating a 2000-sample
// OTLP request as the generator gzips it (template) and as gzip writers
// at levels 1 and 6 (the Collector's default) do, with klauspost's reader
// as Strata uses. The generator's member costs more than a level 6
// member (more symbols: every literal is one) and less than a level 1
// one; inflating is a few percent of what a receiver spends on OTLP.
func BenchmarkInflateOTLP(b *testing.B) {
	tmpl := buildOTLPTemplate(0, make([]int, 2000), 1, false, "loadgen-0", true)
	tmpl.patch(5, 1_790_000_000_000, 15000)
	bodies := []struct {
		name string
		body []byte
	}{{"template", tmpl.body}}
	for _, level := range []int{1, 6} {
		var out bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&out, level)
		_, _ = zw.Write(tmpl.raw)
		_ = zw.Close()
		bodies = append(bodies, struct {
			name string
			body []byte
		}{map[int]string{1: "gzip-1", 6: "gzip-6"}[level], out.Bytes()})
	}
	dst := bytes.NewBuffer(make([]byte, 0, len(tmpl.raw)))
	for _, c := range bodies {
		b.Run(c.name, func(b *testing.B) {
			zr, err := kgzip.NewReader(bytes.NewReader(c.body))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				_ = zr.Reset(bytes.NewReader(c.body))
				dst.Reset()
				if _, err := io.Copy(dst, zr); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000), "ns/sample")
			b.ReportMetric(float64(len(c.body))/2000, "bytes/sample")
		})
	}
}
