package functions

import (
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
}

// lateWrites are a block builder's late flights, by series. A series maps
// to the newest late flight that holds it: that one waited for the older
// ones before it was sent, so it finishes after them.
type lateWrites struct {
	// n counts the late flights not finished yet, so that writes to a
	// block builder that keeps up read one atomic and take no lock.
	n  atomic.Int32
	mu sync.Mutex
	// bySeries is kept when it empties, rather than grown again for the
	// next late part (BenchmarkLateWrite: a quarter of its cost). It
	// holds at most the series of STRATA_FORWARD_MAX_INFLIGHT parts.
	bySeries map[uint64]*flight
}

// register records a flight that is late, with the hashes of its series.
func (l *lateWrites) register(f *flight) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bySeries == nil {
		l.bySeries = make(map[uint64]*flight, len(f.series))
	}
	for _, h := range f.series {
		l.bySeries[h] = f
	}
	l.n.Add(1)
}

// finish forgets a late flight once its block builder answered.
func (l *lateWrites) finish(f *flight) {
	l.mu.Lock()
	for _, h := range f.series {
		if l.bySeries[h] == f {
			delete(l.bySeries, h)
		}
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
		f := l.bySeries[hashes[i]]
		if f == nil {
			continue
		}
		seen := false
		for _, g := range out {
			if g == f {
				seen = true
				break
			}
		}
		if !seen {
			out = append(out, f)
		}
	}
	return out
}
