package functions

import (
	"slices"
	"sync"
	"sync/atomic"
)

// A request is answered once a quorum of its replicas wrote it; the copies
// still on their way to the other replicas finish in the background. A
// sender that sends its next batch as soon as the last one is answered
// (Prometheus catching up after an outage) would have that batch overtake
// such a late copy at the slower replica, whose TSDB then refuses the
// older samples as out of order: that replica would lose them for good,
// with nothing wrong with it. So a write to a block builder first waits
// for the late writes to that block builder that hold any of its series.
// Requests answered before it are so written in order on every replica,
// series by series, while writes of other series (other senders' shards,
// other tenants) go ahead without waiting.

// flight is one part of a request on its way to a block builder, tracked
// only once it is late: its request was answered before it finished.
type flight struct {
	done chan struct{} // closed when the block builder answered or the forward gave up
	// set holds the hashes of the series of the part, while it is live
	// (under lateWrites.mu).
	set seriesSet
}

// lateWrites are a block builder's late flights. With a quorum of 2 of 3
// replicas, one part of nearly every request is late, and every series of
// every part is looked up here. One table of every late series, shared
// by the flights, was about 1 MB per block builder and out of the core's
// caches: its lookups were 14% of the router's CPU over 3 block builders,
// mostly waiting for memory. So each flight has a set of its own, about
// 16 bytes per series (32 KB for 2000), written once and dropped whole
// when the flight finishes, and a part is looked up in each live flight
// in turn: there are few (0 to 3 per block builder over 3 at RF=3), and
// the set being read stays in cache. A lagging block builder has at most
// about STRATA_FORWARD_MAX_INFLIGHT of them (late flights are writes in
// flight), so a part costs it at most that many scans while it lags.
type lateWrites struct {
	// n counts the late flights not finished yet, so that writes to a
	// block builder that keeps up read one atomic and take no lock.
	n  atomic.Int32
	mu sync.Mutex
	// live are the late flights not finished yet; free the sets of
	// finished ones, for the next.
	live []*flight
	free []seriesSet
}

const (
	// maxFreeSets bounds the sets kept for reuse, and maxFreeSetSlots
	// their size: a burst of huge parts does not stay in memory.
	maxFreeSets     = 8
	maxFreeSetSlots = 1 << 16
)

// register records a part that is late, of the series hashes[i] for i in
// series, and returns its flight.
func (l *lateWrites) register(hashes []uint64, series []int32) *flight {
	f := &flight{done: make(chan struct{})}
	l.mu.Lock()
	defer l.mu.Unlock()
	f.set = l.takeSet(len(series))
	for _, i := range series {
		f.set.add(hashes[i])
	}
	l.live = append(l.live, f)
	l.n.Add(1)
	return f
}

// takeSet returns an empty set for n series, reusing a free one no more
// than four times too large.
func (l *lateWrites) takeSet(n int) seriesSet {
	size := seriesSetSize(n)
	for i, s := range l.free {
		if len(s) >= size && len(s) <= 4*size {
			l.free = slices.Delete(l.free, i, i+1)
			clear(s)
			return s
		}
	}
	return make(seriesSet, size)
}

// finish forgets a late flight once its block builder answered.
func (l *lateWrites) finish(f *flight) {
	l.mu.Lock()
	if i := slices.Index(l.live, f); i >= 0 {
		l.live = slices.Delete(l.live, i, i+1)
		l.n.Add(-1)
		if len(l.free) < maxFreeSets && len(f.set) <= maxFreeSetSlots {
			l.free = append(l.free, f.set)
		}
		f.set = nil
	}
	l.mu.Unlock()
	close(f.done)
}

// before appends to out the late flights holding any of the series (given
// as indexes into hashes), each once. It names every such flight, not
// only the newest of each series: the newer waited for the older before
// it was sent, so waiting for both takes no longer.
func (l *lateWrites) before(hashes []uint64, series []int32, out []*flight) []*flight {
	if l.n.Load() == 0 {
		return out
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.live {
		for _, i := range series {
			if f.set.has(hashes[i]) {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

// seriesSet is a set of series hashes: open addressing, linear probing,
// at most half full. A slot holds a hash with its lowest bit set, 0 being
// a free slot: two hashes that differ only in that bit are one, and a
// part of the one waits for a flight of the other, which it need not.
type seriesSet []uint64

// seriesSetSize is the slots of a set of n series: a power of two, at
// least twice n.
func seriesSetSize(n int) int {
	size := 64
	for size < 2*n {
		size *= 2
	}
	return size
}

// slot returns where h (lowest bit set) is, or the free slot where it goes.
func (s seriesSet) slot(h uint64) int {
	mask := len(s) - 1
	// Fibonacci hashing: the top bits of the product mix every bit of the
	// hash into the index.
	i := int((h*0x9E3779B97F4A7C15)>>32) & mask
	for s[i] != 0 && s[i] != h {
		i = (i + 1) & mask
	}
	return i
}

func (s seriesSet) add(hash uint64) {
	h := hash | 1
	s[s.slot(h)] = h
}

func (s seriesSet) has(hash uint64) bool {
	h := hash | 1
	return s[s.slot(h)] == h
}
