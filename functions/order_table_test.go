package functions

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestLateWritesTable drives the late-write table with random flights,
// finished in random order, and checks every lookup against a plain map
// of each series to its newest flight: before must name every unfinished
// flight that is the newest of one of the series asked for, and no flight
// that is finished or holds none of them. (Finished out of order, a
// series' newest flight can finish before an older one: waiting for the
// older one then is right, though the router never needs it.) It also
// checks that the table shrinks back once the live flights are few again.
func TestLateWritesTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pool := make([]uint64, 200000)
	for i := range pool {
		pool[i] = rng.Uint64()
	}
	pool[0] = 0 // zero is a hash like any other
	var (
		l      lateWrites
		newest = map[uint64]*flight{}
		live   []*flight
		peak   int
	)
	for step := 0; step < 3000; step++ {
		// Bursts of many live flights, then few.
		maxLive, grow := 4, 1
		if step/600%2 == 1 {
			maxLive, grow = 64, 4
		}
		if len(live) < maxLive && rng.IntN(grow+1) > 0 {
			// A sender's next batch: mostly a run of the pool, as a
			// sender sends the same series again.
			n := 1 + rng.IntN(2000)
			first := rng.IntN(len(pool) - n)
			f := &flight{done: make(chan struct{})}
			for _, h := range pool[first : first+n] {
				if rng.IntN(10) > 0 {
					f.series = append(f.series, h)
				}
			}
			l.register(f)
			for _, h := range f.series {
				newest[h] = f
			}
			live = append(live, f)
		} else if len(live) > 0 {
			i := rng.IntN(len(live))
			l.finish(live[i])
			live = slices.Delete(live, i, i+1)
		}
		peak = max(peak, len(l.slots))
		if int(l.n.Load()) != len(live) {
			t.Fatalf("step %d: n is %d, want %d", step, l.n.Load(), len(live))
		}

		n := 1 + rng.IntN(500)
		first := rng.IntN(len(pool) - n)
		hashes := pool[first : first+n]
		idx := make([]int32, n)
		for i := range idx {
			idx[i] = int32(i)
		}
		var want []*flight
		for _, h := range hashes {
			if f := newest[h]; f != nil && !f.finished && !slices.Contains(want, f) {
				want = append(want, f)
			}
		}
		got := l.before(hashes, idx, nil)
		for _, f := range want {
			if !slices.Contains(got, f) {
				t.Fatalf("step %d: before missed the newest flight of a series asked for", step)
			}
		}
		for i, f := range got {
			if f.finished || slices.Contains(got[:i], f) || !slices.ContainsFunc(hashes, func(h uint64) bool { return slices.Contains(f.series, h) }) {
				t.Fatalf("step %d: before named a flight that is finished, named twice, or holds none of the series", step)
			}
		}
		for _, f := range live {
			select {
			case <-f.done:
				t.Fatalf("step %d: a live flight is done", step)
			default:
			}
		}
	}
	liveSeries := 0
	for _, f := range live {
		liveSeries += len(f.series)
	}
	// The last phase has at most 4 live flights of 2000 series, and a
	// fifth coming: the table, grown for 64 of them, must have shrunk.
	if limit := lateTableSize(5 * 2000); len(l.slots) > limit || peak <= limit {
		t.Errorf("table of %d slots at the end (peak %d) with %d series live; want at most %d, after a peak above it", len(l.slots), peak, liveSeries, limit)
	}
}

// TestLateWritesTableKeepsItsSize: with 0 to 3 late flights of new series
// at a time, as over 3 block builders at RF=3, the table settles at one
// size and is cleared, not reallocated, when stale entries fill it.
func TestLateWritesTableKeepsItsSize(t *testing.T) {
	var l lateWrites
	var live []*flight
	next := uint64(1)
	allocs := 0
	var last *lateSlot
	for step := range 2000 {
		if len(live) == 3 || len(live) > 0 && step%3 == 0 {
			l.finish(live[0])
			live = live[1:]
			continue
		}
		f := &flight{done: make(chan struct{}), series: make([]uint64, 2000)}
		for i := range f.series {
			f.series[i] = next * 0x9E3779B97F4A7C15
			next++
		}
		l.register(f)
		live = append(live, f)
		if &l.slots[0] != last {
			last = &l.slots[0]
			allocs++
		}
	}
	if allocs > 3 {
		t.Errorf("the table was allocated %d times", allocs)
	}
}
