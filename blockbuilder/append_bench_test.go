package blockbuilder

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/stratametrics/strata/loadgen"
	"github.com/stratametrics/strata/remotewrite"
)

// The load of BenchmarkAppendRequest and of BenchmarkHeadAppend, its
// floor: the same series in the same batches, so that the two compare.
const (
	appendBenchSeries     = 100_000
	appendBenchPerRequest = 2000
	appendBenchIntervalMs = 15_000
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
		series     = appendBenchSeries
		perRequest = appendBenchPerRequest
		intervalMs = appendBenchIntervalMs
		warmup     = 3 // rounds
	)
	for _, c := range []struct {
		name     string
		v        remotewrite.Version
		unsorted bool
	}{
		{"1.0", remotewrite.V1, false},
		{"2.0", remotewrite.V2, false},
		{"1.0-unsorted", remotewrite.V1, true},
		{"2.0-unsorted", remotewrite.V2, true},
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
			// Each request is encoded once and its samples patched for
			// every round, into a copy (the block builder may reorder
			// labels in the bytes it is given): encoding anew allocated
			// so much that collecting it took a third of the time
			// measured.
			reqs := make([]*loadgen.Request, chunks)
			for i := range reqs {
				reqs[i] = loadgen.NewRequest(v, i*perRequest, perRequest, 1, c.unsorted)
			}
			var body []byte
			next := func(i int) {
				round, chunk := i/chunks, i%chunks
				body = append(body[:0], reqs[chunk].Patch(int64(round), startMs, intervalMs)...)
			}
			st := &appendState{}
			write := func(i int) {
				next(i)
				if err := st.req.Parse(v, body); err != nil {
					b.Fatal(err)
				}
				res, err := bb.write(context.Background(), "bench", bb.limits.Set(), st, nowMs)
				if err != nil || len(res.rejected) > 0 || res.written.Samples != perRequest {
					b.Fatalf("request %d: err %v, %d rejected, %d written", i, err, len(res.rejected), res.written.Samples)
				}
			}
			// Create every series first, and send them until the
			// tenant's knownRefs has grown to its size (it grows empty):
			// steady state is what is measured.
			for i := 0; i < warmup*chunks; i++ {
				write(i)
			}
			b.ReportAllocs()
			var cpu time.Duration
			misses := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Encoding is the sender's work: keep it out of the timing.
				b.StopTimer()
				next(warmup*chunks + i)
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
				for _, kl := range st.byKey {
					if kl.ref == 0 {
						misses++
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perRequest), "ns/sample")
			// CPU time counts every goroutine (the TSDB's too) and, unlike
			// wall time, holds on a machine shared with other work.
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*perRequest), "cpu-ns/sample")
			// Series of the head that knownRefs did not know, looked up
			// the slow way.
			b.ReportMetric(float64(misses)/float64(b.N*perRequest), "unknown/series")
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

// BenchmarkHeadAppend is the floor under BenchmarkAppendRequest: the
// tenant's TSDB alone (opened as a tenant opens it, its WAL on), given
// the same 100k series with their references already known and the same
// batches of 2000 samples, one commit each. Nothing is decoded or looked
// up: its cost per sample is what a block builder cannot go below while
// it appends through Prometheus' head, whatever it does in front of it.
func BenchmarkHeadAppend(b *testing.B) {
	const (
		series     = appendBenchSeries
		perRequest = appendBenchPerRequest
		intervalMs = appendBenchIntervalMs
	)
	bb := newBenchBlockBuilder(b)
	t, err := bb.tenant("bench", true)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = t.db.Close() })
	startMs := time.Now().UnixMilli() - 24*time.Hour.Milliseconds()
	lsets := make([]labels.Labels, series)
	refs := make([]storage.SeriesRef, series)
	for i := range lsets {
		var bl labels.ScratchBuilder
		for _, l := range (loadgen.SeriesID{Slot: i}).Labels() {
			bl.Add(l.Name, l.Value)
		}
		lsets[i] = bl.Labels()
	}
	appendBatch := func(first int, k int64) {
		app := t.db.AppenderV2(context.Background())
		ts := startMs + k*intervalMs
		for i := first; i < first+perRequest; i++ {
			ref, err := app.Append(refs[i], lsets[i], 0, ts, loadgen.Value(loadgen.SeriesID{Slot: i}, k), nil, nil, storage.AOptions{})
			if err != nil {
				b.Fatalf("series %d, sample %d: %v", i, k, err)
			}
			refs[i] = ref
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	// Create every series first: steady state is what is measured.
	for first := 0; first < series; first += perRequest {
		appendBatch(first, 0)
	}
	chunks := series / perRequest
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		appendBatch((i%chunks)*perRequest, int64(1+i/chunks))
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perRequest), "ns/sample")
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N*perRequest), "cpu-ns/sample")
}
