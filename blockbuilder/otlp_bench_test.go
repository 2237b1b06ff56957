package blockbuilder

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stratametrics/strata/loadgen"
)

// BenchmarkOTLPRequest measures the block builder's OTLP endpoint through
// its HTTP handler (no network): 20k active series, requests of 2000
// gauge points as `strata loadgen -protocol otlp` sends them, uncompressed,
// each decoded, translated, parsed and appended. Compare its ns/sample
// with BenchmarkAppendRequest's: the difference is what OTLP costs.
func BenchmarkOTLPRequest(b *testing.B) {
	const (
		series     = 20_000
		perRequest = 2000
		intervalMs = 15_000
		rounds     = 8
	)
	bb := newBenchBlockBuilder(b)
	b.Cleanup(func() { _ = bb.shutdown() })
	h := bb.Handler()
	startMs := time.Now().Add(-time.Hour).UnixMilli()
	chunks := series / perRequest
	// Bodies are made before timing; each round's timestamps are new, so
	// that every append is in order.
	bodies := make([][]byte, 0, rounds*chunks)
	for r := range rounds {
		for c := range chunks {
			bodies = append(bodies, loadgen.EncodeOTLP(c*perRequest, perRequest, 1, int64(r), startMs, intervalMs, "bench"))
		}
	}
	post := func(body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/otlp/v1/metrics", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("THANOS-TENANT", "bench")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("answer %d: %s", w.Code, w.Body)
		}
	}
	// The first round creates the series: steady state is measured.
	for _, body := range bodies[:chunks] {
		post(body)
	}
	b.ReportAllocs()
	var cpu time.Duration
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		k := chunks + i%(len(bodies)-chunks)
		if k == chunks && i > 0 {
			b.StopTimer()
			// Out of fresh timestamps: the remaining rounds again, later.
			startMs += int64(rounds) * intervalMs
			for j := chunks; j < len(bodies); j++ {
				r, c := j/chunks, j%chunks
				bodies[j] = loadgen.EncodeOTLP(c*perRequest, perRequest, 1, int64(r), startMs, intervalMs, "bench")
			}
			b.StartTimer()
		}
		cpu0 := processCPU()
		post(bodies[k])
		cpu += processCPU() - cpu0
		n += perRequest
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/sample")
	// As in BenchmarkAppendRequest: CPU time holds on a shared machine.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/sample")
}
