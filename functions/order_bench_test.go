package functions

import "testing"

// BenchmarkLateWrite is what a part answered after its request costs the
// router: registering its series as a late write, a later part of the
// same size looking for them, and forgetting them once it is answered;
// per series of the part (the router sends about one sample per series).
func BenchmarkLateWrite(b *testing.B) {
	const series = 2000
	hashes := make([]uint64, series)
	idx := make([]int32, series)
	for i := range hashes {
		hashes[i] = uint64(i)*0x9E3779B97F4A7C15 + 1
		idx[i] = int32(i)
	}
	var l lateWrites
	var after []*flight
	b.ReportAllocs()
	for b.Loop() {
		f := &flight{done: make(chan struct{}), series: make([]uint64, series)}
		copy(f.series, hashes)
		l.register(f)
		after = l.before(hashes, idx, after[:0])
		l.finish(f)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/series, "ns/series")
}
