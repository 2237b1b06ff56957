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
	done   chan struct{} // closed when the block builder answered or the forward gave up
	series []uint64      // hashes of the series of the part
	// finished is set, under lateWrites.mu, when done is closed: the
	// table's entries of the flight are then stale.
	finished bool
}

// lateWrites are a block builder's late flights, by series. A series maps
// to the newest late flight that holds it: that one waited for the older
// ones before it was sent, so it finishes after them.
//
// With a quorum of 2 of 3 replicas, one part of nearly every request is
// late, and every series of every part is looked up here: in a Go map,
// registering, looking up and forgetting the series was over a third of
// the router's CPU over 3 block builders. So the series are in a table of
// their own, open addressing with linear probing, where a finished
// flight's entries are not deleted but ignored, and overwritten by the
// next late part of their series (the usual case: a sender sends the same
// series again and again). The table is rebuilt from the live flights
// when stale entries fill half of it, which also shrinks it after a
// burst. A series whose hash collides with another's only waits for a
// flight it need not wait for.
type lateWrites struct {
	// n counts the late flights not finished yet, so that writes to a
	// block builder that keeps up read one atomic and take no lock.
	n  atomic.Int32
	mu sync.Mutex
	// live are the late flights not finished yet, oldest first, and
	// liveSeries the sum of their series.
	live       []*flight
	liveSeries int
	// slots: a power of two of them, or none; used counts those taken,
	// by live flights or finished ones.
	slots []lateSlot
	used  int
}

type lateSlot struct {
	hash uint64
	f    *flight // nil: empty
}

// minLateSlots is the smallest table; lateSlotsPerSeries its size per
// series of the live flights, so that a rebuild comes after at least 3
// times as many series as it reinserts. A rebuild because the table is
// full keeps its size or grows it; one to shrink it comes only once it is
// lateShrink times the size the live flights need: their number varies
// from request to request (0 to 3 per block builder over 3 at RF=3), and
// at 4 times a table was reallocated every few requests.
const (
	minLateSlots       = 1 << 12
	lateSlotsPerSeries = 8
	lateShrink         = 16
)

// lateTableSize is the table for n series of live flights.
func lateTableSize(n int) int {
	size := minLateSlots
	for size < lateSlotsPerSeries*n {
		size *= 2
	}
	return size
}

// slot returns the index where hash is, or the empty slot where it goes.
func (l *lateWrites) slot(hash uint64) int {
	mask := len(l.slots) - 1
	// Fibonacci hashing: the top bits of the product mix every bit of the
	// hash into the index.
	i := int((hash*0x9E3779B97F4A7C15)>>32) & mask
	for l.slots[i].f != nil && l.slots[i].hash != hash {
		i = (i + 1) & mask
	}
	return i
}

// insert maps hash to f, in place of the flight it mapped to.
func (l *lateWrites) insert(hash uint64, f *flight) {
	i := l.slot(hash)
	if l.slots[i].f == nil {
		l.used++
	}
	l.slots[i] = lateSlot{hash: hash, f: f}
}

// rebuild empties the table, sized for n series (larger if it is and
// shrink is not set), and inserts the live flights' series again, oldest
// first, so that the newest flight of each series is the one it maps to.
func (l *lateWrites) rebuild(n int, shrink bool) {
	size := lateTableSize(n)
	if !shrink {
		size = max(size, len(l.slots))
	}
	if size == len(l.slots) {
		clear(l.slots)
	} else {
		l.slots = make([]lateSlot, size)
	}
	l.used = 0
	for _, f := range l.live {
		for _, h := range f.series {
			l.insert(h, f)
		}
	}
}

// register records a flight that is late, with the hashes of its series.
func (l *lateWrites) register(f *flight) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Rebuilt when stale entries fill half of it, or when it is far
	// larger than the live flights need (after a burst of them).
	need := l.liveSeries + len(f.series)
	if shrink := len(l.slots) >= lateShrink*lateTableSize(need); shrink || 2*(l.used+len(f.series)) > len(l.slots) {
		l.rebuild(need, shrink)
	}
	for _, h := range f.series {
		l.insert(h, f)
	}
	l.live = append(l.live, f)
	l.liveSeries += len(f.series)
	l.n.Add(1)
}

// finish forgets a late flight once its block builder answered.
func (l *lateWrites) finish(f *flight) {
	l.mu.Lock()
	f.finished = true
	if i := slices.Index(l.live, f); i >= 0 {
		l.live = slices.Delete(l.live, i, i+1)
		l.liveSeries -= len(f.series)
	}
	l.n.Add(-1)
	l.mu.Unlock()
	close(f.done)
}

// before appends to out the late flights holding any of the series (given
// as indexes into hashes), each once.
func (l *lateWrites) before(hashes []uint64, series []int32, out []*flight) []*flight {
	if l.n.Load() == 0 {
		return out
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, i := range series {
		f := l.slots[l.slot(hashes[i])].f
		if f == nil || f.finished {
			continue
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}
