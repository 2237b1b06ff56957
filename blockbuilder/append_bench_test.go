package blockbuilder

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/stratametrics/strata/loadgen"
	"github.com/stratametrics/strata/remotewrite"
)

// BenchmarkAppendRequest measures a block builder's write path below HTTP
// in steady state: 100k active series (created before timing starts),
// written in requests of 2000 samples as `strata loadgen` sends them, each
// parsed, decoded, validated and appended to the tenant's TSDB and WAL in
// one commit. It reports ns/sample and the heap per active series. The
// unsorted cases send every series' labels out of order (as vmagent does
// by default), which the block builder sorts.
func BenchmarkAppendRequest(b *testing.B) {
	const (
		series     = 100_000
		perRequest = 2000
		intervalMs = 15_000
	)
	for _, c := range []struct {
		name   string
		v      remotewrite.Version
		encode func(v remotewrite.Version, first, n, perSeries int, k0, startMs, intervalMs int64) []byte
	}{
		{"1.0", remotewrite.V1, loadgen.Encode},
		{"2.0", remotewrite.V2, loadgen.Encode},
		{"1.0-unsorted", remotewrite.V1, loadgen.EncodeUnsorted},
		{"2.0-unsorted", remotewrite.V2, loadgen.EncodeUnsorted},
	} {
		v := c.v
		b.Run(c.name, func(b *testing.B) {
			bb := newBenchBlockBuilder(b)
			b.Cleanup(func() {
				if t, err := bb.tenant("bench", false); err == nil {
					_ = t.db.Close()
				}
			})
			nowMs := time.Now().UnixMilli()
			startMs := nowMs - 24*time.Hour.Milliseconds()
			chunks := series / perRequest
			st := &appendState{}
			write := func(i int) {
				round, chunk := i/chunks, i%chunks
				body := c.encode(v, chunk*perRequest, perRequest, 1, int64(round), startMs, intervalMs)
				if err := st.req.Parse(v, body); err != nil {
					b.Fatal(err)
				}
				res, err := bb.write(context.Background(), "bench", bb.limits.Set(), st, nowMs)
				if err != nil || len(res.rejected) > 0 || res.written.Samples != perRequest {
					b.Fatalf("request %d: err %v, %d rejected, %d written", i, err, len(res.rejected), res.written.Samples)
				}
			}
			// Create every series first: steady state is what is measured.
			for i := 0; i < chunks; i++ {
				write(i)
			}
			b.ReportAllocs()
			var cpu time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Encoding is the sender's work: keep it out of the timing.
				b.StopTimer()
				round, chunk := 1+i/chunks, i%chunks
				body := c.encode(v, chunk*perRequest, perRequest, 1, int64(round), startMs, intervalMs)
				b.StartTimer()
				cpu0 := processCPU()
				if err := st.req.Parse(v, body); err != nil {
					b.Fatal(err)
				}
				res, err := bb.write(context.Background(), "bench", bb.limits.Set(), st, nowMs)
				if err != nil || len(res.rejected) > 0 {
					b.Fatalf("request %d: err %v, %d rejected", i, err, len(res.rejected))
				}
				cpu += processCPU() - cpu0
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perRequest), "ns/sample")
			// CPU time counts every goroutine (the TSDB's too) and, unlike
			// wall time, holds on a machine shared with other work.
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*perRequest), "cpu-ns/sample")
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapInuse)/series, "heap-bytes/series")
		})
	}
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// newBenchBlockBuilder opens a block builder with the default
// configuration on temporary directories, a filesystem bucket.
func newBenchBlockBuilder(b *testing.B) *BlockBuilder {
	b.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = b.TempDir()
	cfg.Bucket.Dir = b.TempDir()
	cfg.ReplicaName = "bench"
	bkt, err := filesystem.NewBucket(cfg.Bucket.Dir)
	if err != nil {
		b.Fatal(err)
	}
	bb, err := New(cfg, bkt, testLogger(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	if err := bb.Open(); err != nil {
		b.Fatal(err)
	}
	return bb
}
