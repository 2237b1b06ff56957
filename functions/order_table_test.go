package functions

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestLateWritesTable drives the late writes with random flights,
// finished in random order, and checks every lookup against a plain
// model: before must name exactly the unfinished flights that hold any
// of the series asked for, each once.
func TestLateWritesTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pool := make([]uint64, 200000)
	for i := range pool {
		pool[i] = rng.Uint64()
	}
	pool[0] = 0 // zero is a hash like any other
	var (
		l        lateWrites
		seriesOf = map[*flight][]uint64{}
		live     []*flight
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
			var idx []int32
			for i := first; i < first+n; i++ {
				if rng.IntN(10) > 0 {
					idx = append(idx, int32(i))
				}
			}
			f := l.register(pool, idx)
			for _, i := range idx {
				seriesOf[f] = append(seriesOf[f], pool[i])
			}
			live = append(live, f)
		} else if len(live) > 0 {
			i := rng.IntN(len(live))
			l.finish(live[i])
			live = slices.Delete(live, i, i+1)
		}
		if int(l.n.Load()) != len(live) {
			t.Fatalf("step %d: n is %d, want %d", step, l.n.Load(), len(live))
		}
		if len(l.free) > maxFreeSets {
			t.Fatalf("step %d: %d free sets kept, want at most %d", step, len(l.free), maxFreeSets)
		}

		n := 1 + rng.IntN(500)
		first := rng.IntN(len(pool) - n)
		hashes := pool[first : first+n]
		idx := make([]int32, n)
		for i := range idx {
			idx[i] = int32(i)
		}
		var want []*flight
		for _, f := range live {
			if slices.ContainsFunc(hashes, func(h uint64) bool { return slices.Contains(seriesOf[f], h) }) {
				want = append(want, f)
			}
		}
		got := l.before(hashes, idx, nil)
		if len(got) != len(want) {
			t.Fatalf("step %d: before named %d flights, want %d", step, len(got), len(want))
		}
		for _, f := range want {
			if !slices.Contains(got, f) {
				t.Fatalf("step %d: before missed a live flight holding a series asked for", step)
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
}

// TestLateWritesReuseSets: with 0 to 3 late flights of new series at a
// time, as over 3 block builders at RF=3, the flights' sets are reused,
// not allocated each time; a set too large to keep is let go.
func TestLateWritesReuseSets(t *testing.T) {
	var l lateWrites
	var live []*flight
	idx := make([]int32, 2000)
	for i := range idx {
		idx[i] = int32(i)
	}
	hashes := make([]uint64, len(idx))
	next := uint64(1)
	sets := map[*uint64]bool{}
	for step := range 2000 {
		if len(live) == 3 || len(live) > 0 && step%3 == 0 {
			l.finish(live[0])
			live = live[1:]
			continue
		}
		for i := range hashes {
			hashes[i] = next * 0x9E3779B97F4A7C15
			next++
		}
		f := l.register(hashes, idx)
		sets[&f.set[0]] = true
		live = append(live, f)
	}
	if len(sets) > 4 {
		t.Errorf("%d sets allocated for at most 3 live flights", len(sets))
	}

	huge := make([]int32, maxFreeSetSlots)
	f := l.register(make([]uint64, len(huge)), huge)
	l.finish(f)
	for _, s := range l.free {
		if len(s) > maxFreeSetSlots {
			t.Errorf("a set of %d slots was kept, want at most %d", len(s), maxFreeSetSlots)
		}
	}
}
