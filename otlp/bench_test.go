package otlp_test

import (
	"context"
	"testing"
	"time"

	"github.com/stratametrics/strata/loadgen"
	"github.com/stratametrics/strata/otlp"
	"github.com/stratametrics/strata/remotewrite"
)

// benchPoints is the size of the benchmarks' requests: 2000 gauge points,
// as `strata loadgen -protocol otlp` sends them (BenchmarkOTLPRequest in
// the block builder takes the same).
const benchPoints = 2000

func benchBody() []byte {
	return loadgen.EncodeOTLP(0, benchPoints, 1, 0, time.Now().Add(-time.Hour).UnixMilli(), 15_000, "bench")
}

// BenchmarkUnmarshal measures decoding a request with pdata.
func BenchmarkUnmarshal(b *testing.B) {
	body := benchBody()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := otlp.Unmarshal(otlp.Protobuf, body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchPoints), "ns/point")
}

// BenchmarkTranslate measures what a receiver does with a decompressed
// body before the remote-write path: decoding it and translating it into
// a remote-write 2.0 request.
func BenchmarkTranslate(b *testing.B) {
	body := benchBody()
	var tr otlp.Translator
	s := otlp.DefaultConfig().Settings()
	var dst remotewrite.Buffer
	b.ReportAllocs()
	for b.Loop() {
		req, err := otlp.Unmarshal(otlp.Protobuf, body)
		if err != nil {
			b.Fatal(err)
		}
		res, err := tr.Translate(context.Background(), req.Metrics(), s, &dst)
		if err != nil || res.Samples != benchPoints {
			b.Fatalf("%+v, %v", res, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchPoints), "ns/point")
}
