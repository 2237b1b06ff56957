package remotewrite_test

// The router's and block builders' per-sample costs of this package, on
// the requests `strata loadgen` sends (2000 Kubernetes-style series of 10
// labels, one sample each). Every benchmark reports ns/sample, the unit
// `make bench` measures whole processes in.

import (
	"testing"

	"github.com/klauspost/compress/snappy"

	"github.com/stratametrics/strata/loadgen"
	"github.com/stratametrics/strata/remotewrite"
)

const (
	benchSeries  = 2000
	benchStartMs = int64(1_790_000_000_000)
)

var versions = []remotewrite.Version{remotewrite.V1, remotewrite.V2}

func benchBody(v remotewrite.Version) []byte {
	return loadgen.Encode(v, 0, benchSeries, 1, 0, benchStartMs, 15000)
}

func perSample(b *testing.B, samples int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(samples), "ns/sample")
}

// BenchmarkDecodeSnappy: decompressing the body.
func BenchmarkDecodeSnappy(b *testing.B) {
	for _, v := range versions {
		b.Run(v.String(), func(b *testing.B) {
			compressed := snappy.Encode(nil, benchBody(v))
			var buf remotewrite.Buffer
			b.ReportAllocs()
			for b.Loop() {
				if err := remotewrite.DecodeSnappy(&buf, compressed, 64<<20); err != nil {
					b.Fatal(err)
				}
			}
			perSample(b, benchSeries)
		})
	}
}

// BenchmarkDecodeFramed: decompressing the same body as a framed stream
// in pieces of 100 series, as a router's framed parts come
// (functions/framed.go).
func BenchmarkDecodeFramed(b *testing.B) {
	for _, v := range versions {
		b.Run(v.String(), func(b *testing.B) {
			raw := benchBody(v)
			var req remotewrite.Request
			if err := req.Parse(v, raw); err != nil {
				b.Fatal(err)
			}
			var stream remotewrite.Buffer
			enc := remotewrite.NewFramedEncoder()
			enc.Start(&stream)
			enc.Encode(req.AppendPreamble(nil))
			for first := 0; first < benchSeries; first += 100 {
				var piece []byte
				for i := first; i < first+100; i++ {
					piece = req.AppendSeries(piece, i)
				}
				enc.Encode(piece)
			}
			enc.Done()
			var buf remotewrite.Buffer
			b.ReportAllocs()
			for b.Loop() {
				if err := remotewrite.DecodeFramed(&buf, stream.B, 64<<20); err != nil {
					b.Fatal(err)
				}
			}
			if len(buf.B) != len(raw) {
				b.Fatalf("decoded %d bytes, want %d", len(buf.B), len(raw))
			}
			perSample(b, benchSeries)
		})
	}
}

// BenchmarkDecode: Parse, then Series for every series.
func BenchmarkDecode(b *testing.B) {
	for _, v := range versions {
		b.Run(v.String(), func(b *testing.B) {
			body := benchBody(v)
			var (
				req remotewrite.Request
				s   remotewrite.Series
			)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := req.Parse(v, body); err != nil {
					b.Fatal(err)
				}
				for i := 0; i < req.NumSeries(); i++ {
					if err := req.Series(i, &s); err != nil {
						b.Fatal(err)
					}
				}
			}
			perSample(b, benchSeries)
		})
	}
}

// BenchmarkFanOutEncode: what the router does to forward a request split
// over six block builders at RF=3 (each gets about half the series):
// copy each part's series bytes, then snappy-compress the part.
func BenchmarkFanOutEncode(b *testing.B) {
	const endpoints, rf = 6, 3
	for _, v := range versions {
		b.Run(v.String(), func(b *testing.B) {
			body := benchBody(v)
			var req remotewrite.Request
			if err := req.Parse(v, body); err != nil {
				b.Fatal(err)
			}
			parts := make([][]int, endpoints)
			for i := 0; i < req.NumSeries(); i++ {
				for r := 0; r < rf; r++ {
					e := (i*7 + r) % endpoints // a fixed, even spread
					parts[e] = append(parts[e], i)
				}
			}
			var raw []byte
			var out remotewrite.Buffer
			b.ReportAllocs()
			for b.Loop() {
				for _, series := range parts {
					raw = req.AppendPreamble(raw[:0])
					for _, i := range series {
						raw = req.AppendSeries(raw, i)
					}
					raw = req.AppendMetadata(raw)
					remotewrite.EncodeSnappy(&out, raw)
				}
			}
			perSample(b, benchSeries)
		})
	}
}
