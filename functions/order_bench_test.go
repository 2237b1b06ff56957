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
// part, as a sender does; series=new sends new ones every time.
// next=other has the later part look for other series than the late
// one's, as a sender's next batch mostly does, and find none of them
// late. It runs in cache, where the router's lookups mostly do not: the
// end-to-end router scenarios are the measure of what it costs there.
func BenchmarkLateWrite(b *testing.B) {
	const series = 2000
	for _, c := range []struct {
		live         int
		fresh, other bool
	}{{0, false, false}, {0, true, false}, {4, false, false}, {4, true, false}, {4, true, true}} {
		live, fresh, other := c.live, c.fresh, c.other
		name := fmt.Sprintf("live=%d/series=%s", live, map[bool]string{false: "same", true: "new"}[fresh])
		if other {
			name += "/next=other"
		}
		b.Run(name, func(b *testing.B) {
			hashesOf := func(k int) []uint64 {
				h := make([]uint64, series)
				for i := range h {
					h[i] = uint64(k*series+i)*0x9E3779B97F4A7C15 + 1
				}
				return h
			}
			idx := make([]int32, series)
			for i := range idx {
				idx[i] = int32(i)
			}
			var l lateWrites
			for k := 0; k < live; k++ {
				l.register(hashesOf(1+k), idx)
			}
			hashes, others := hashesOf(0), hashesOf(live+1)
			mul := uint64(0x9E3779B97F4A7C15)
			shift := series * 1000 * mul
			var after []*flight
			b.ReportAllocs()
			for b.Loop() {
				if fresh {
					for i := range hashes {
						hashes[i] += shift
					}
				}
				f := l.register(hashes, idx)
				if other {
					after = l.before(others, idx, after[:0])
				} else {
					after = l.before(hashes, idx, after[:0])
				}
				l.finish(f)
			}
			if want := map[bool]int{false: 1, true: 0}[other]; len(after) != want {
				b.Fatalf("a part found %d late flights of its series, want %d", len(after), want)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/series, "ns/series")
		})
	}
}
