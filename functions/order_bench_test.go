package functions

import (
	"fmt"
	"testing"
)

// BenchmarkLateWrite is what a part answered after its request costs the
// router: registering its series as a late write, a later part of the
// same size looking for them, and forgetting them once it is answered;
// per series of the part (the router sends about one sample per series).
// With live=4, four older late parts of other series are still in flight
// (other senders' shards). series=same sends the same series in every
// part, as a sender does; series=new sends new ones every time, so that
// the table fills with stale entries and is rebuilt.
func BenchmarkLateWrite(b *testing.B) {
	const series = 2000
	for _, live := range []int{0, 4} {
		for _, fresh := range []bool{false, true} {
			b.Run(fmt.Sprintf("live=%d/series=%s", live, map[bool]string{false: "same", true: "new"}[fresh]), func(b *testing.B) {
				hashesOf := func(k int) []uint64 {
					h := make([]uint64, series)
					for i := range h {
						h[i] = uint64(k*series+i)*0x9E3779B97F4A7C15 + 1
					}
					return h
				}
				var l lateWrites
				for k := 0; k < live; k++ {
					l.register(&flight{done: make(chan struct{}), series: hashesOf(1 + k)})
				}
				hashes := hashesOf(0)
				idx := make([]int32, series)
				for i := range idx {
					idx[i] = int32(i)
				}
				mul := uint64(0x9E3779B97F4A7C15)
				shift := series * 1000 * mul
				var after []*flight
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					if fresh {
						for i := range hashes {
							hashes[i] += shift
						}
					}
					f := &flight{done: make(chan struct{}), series: make([]uint64, series)}
					copy(f.series, hashes)
					l.register(f)
					after = l.before(hashes, idx, after[:0])
					l.finish(f)
					n++
				}
				if len(after) != 1 {
					b.Fatalf("a part found %d late flights of its series, want 1", len(after))
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/series, "ns/series")
			})
		}
	}
}
