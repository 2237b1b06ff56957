package storeapi

import (
	"container/heap"
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// The StoreAPI requires series sorted by their labels as sent: the
// tenant's external labels merged in, replica labels the client asked to
// drop removed. A tenant's TSDB returns series sorted by their stored
// labels, and merging in a constant label set keeps that order except in
// one case: when a series' labels are a prefix of a later series' labels
// (up{} before up{instance="a"}), inserting an external label may put
// the longer one first (up{instance="a",tenant_id="t"} sorts before
// up{tenant_id="t"}). Such a series waits, in a small heap, until no later
// series can sort before it; everything else streams as it is read.
//
// That argument needs the external labels (and dropped labels) to be
// names the tenant's series do not have. When they are not, the tenant's
// series are read whole and sorted, as Thanos does for every tenant.

// labeledSeries is a series with the labels it is sent with.
type labeledSeries struct {
	out    labels.Labels
	series storage.ChunkSeries
}

// seriesStream yields series in the order of their labels as sent.
type seriesStream interface {
	Next() bool
	At() labeledSeries
	Err() error
	Warnings() annotations.Annotations
}

// relabeler turns stored labels into sent labels: drop the names in drop,
// then add ext, whose values win over a series' own label of that name (as
// Thanos' labelpb.ExtendSortedLabels does).
type relabeler struct {
	ext  labels.Labels
	drop map[string]struct{}
	b    labels.ScratchBuilder
}

func newRelabeler(ext labels.Labels, drop []string) *relabeler {
	r := &relabeler{drop: make(map[string]struct{}, len(drop))}
	for _, d := range drop {
		r.drop[d] = struct{}{}
	}
	r.ext = ext.Copy()
	if len(r.drop) > 0 {
		b := labels.NewBuilder(r.ext)
		for d := range r.drop {
			b.Del(d)
		}
		r.ext = b.Labels()
	}
	return r
}

// maxExtName is the largest external label name sent, "" if none.
func (r *relabeler) maxExtName() string {
	max := ""
	r.ext.Range(func(l labels.Label) { max = l.Name })
	return max
}

// conflicts tells whether a stored label name is one the relabeling
// replaces or drops, which voids the streaming order argument.
func (r *relabeler) conflicts(name string) bool {
	if _, ok := r.drop[name]; ok {
		return true
	}
	return r.ext.Has(name)
}

func (r *relabeler) apply(lset labels.Labels) labels.Labels {
	r.b.Reset()
	lset.Range(func(l labels.Label) {
		if _, ok := r.drop[l.Name]; ok || r.ext.Has(l.Name) {
			return
		}
		r.b.Add(l.Name, l.Value)
	})
	r.ext.Range(func(l labels.Label) { r.b.Add(l.Name, l.Value) })
	r.b.Sort()
	return r.b.Labels()
}

// pending is a series read but not yet sent.
type pending struct {
	labeledSeries
	stored labels.Labels // as the TSDB returned them
	final  bool          // no later series can sort before it
}

type pendingHeap []*pending

func (h pendingHeap) Len() int           { return len(h) }
func (h pendingHeap) Less(i, j int) bool { return labels.Compare(h[i].out, h[j].out) < 0 }
func (h pendingHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *pendingHeap) Push(x any)        { *h = append(*h, x.(*pending)) }
func (h *pendingHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// reorderStream is the streaming order for a tenant whose series have none
// of the relabeled names. Invariant: every series in the heap that is not
// final is in open, and open is a chain of prefixes of the last series
// read (only those can still be passed by a later series).
type reorderStream struct {
	set    storage.ChunkSeriesSet
	rl     *relabeler
	maxExt string
	h      pendingHeap
	open   []*pending
	cur    labeledSeries
	done   bool
	buf    []labels.Label
}

func newReorderStream(set storage.ChunkSeriesSet, rl *relabeler) *reorderStream {
	return &reorderStream{set: set, rl: rl, maxExt: rl.maxExtName()}
}

func (s *reorderStream) Next() bool {
	for {
		if len(s.h) > 0 && s.h[0].final {
			s.cur = heap.Pop(&s.h).(*pending).labeledSeries
			return true
		}
		if s.done {
			return false
		}
		if !s.set.Next() {
			s.done = true
			for _, p := range s.open {
				p.final = true
			}
			s.open = nil
			continue
		}
		series := s.set.At()
		stored := series.Labels()
		s.buf = s.buf[:0]
		stored.Range(func(l labels.Label) { s.buf = append(s.buf, l) })
		// A series X waiting in open can be passed only by series that
		// extend X and whose first extra label sorts before the largest
		// external label. The TSDB returns X's extensions together and in
		// order of that extra label, so the first series that is not such
		// an extension frees X.
		kept := s.open[:0]
		for _, x := range s.open {
			if n := x.stored.Len(); isStrictPrefix(x.stored, s.buf) && s.buf[n].Name < s.maxExt {
				kept = append(kept, x)
			} else {
				x.final = true
			}
		}
		clear(s.open[len(kept):])
		s.open = kept
		p := &pending{labeledSeries: labeledSeries{out: s.rl.apply(stored), series: series}, stored: stored}
		// Extensions of this series have extra labels after its last one;
		// if that is past every external label, none can sort before it.
		if n := len(s.buf); s.maxExt == "" || (n > 0 && s.buf[n-1].Name >= s.maxExt) {
			p.final = true
		} else {
			s.open = append(s.open, p)
		}
		heap.Push(&s.h, p)
	}
}

// isStrictPrefix tells whether prefix is ls without at least its last
// label.
func isStrictPrefix(prefix labels.Labels, ls []labels.Label) bool {
	if prefix.Len() >= len(ls) {
		return false
	}
	i, ok := 0, true
	prefix.Range(func(l labels.Label) {
		ok = ok && ls[i] == l
		i++
	})
	return ok
}

func (s *reorderStream) At() labeledSeries                 { return s.cur }
func (s *reorderStream) Err() error                        { return s.set.Err() }
func (s *reorderStream) Warnings() annotations.Annotations { return s.set.Warnings() }

// sortedStream reads a whole set and sorts it: the fallback when
// relabeling can reorder series arbitrarily. It holds at most maxSeries
// series (0: no bound) and fails beyond, which the caller's series limit
// would refuse anyway.
type sortedStream struct {
	all  []labeledSeries
	i    int
	err  error
	warn annotations.Annotations
}

func newSortedStream(set storage.ChunkSeriesSet, rl *relabeler, maxSeries int) *sortedStream {
	s := &sortedStream{i: -1}
	for set.Next() {
		if maxSeries > 0 && len(s.all) >= maxSeries {
			s.err = fmt.Errorf("%w: more than %d series", errTooManySeries, maxSeries)
			return s
		}
		series := set.At()
		s.all = append(s.all, labeledSeries{out: rl.apply(series.Labels()), series: series})
	}
	s.err, s.warn = set.Err(), set.Warnings()
	slices.SortStableFunc(s.all, func(a, b labeledSeries) int { return labels.Compare(a.out, b.out) })
	return s
}

func (s *sortedStream) Next() bool {
	if s.err != nil || s.i+1 >= len(s.all) {
		return false
	}
	if s.i >= 0 {
		s.all[s.i] = labeledSeries{} // let the sent series go
	}
	s.i++
	return true
}

func (s *sortedStream) At() labeledSeries                 { return s.all[s.i] }
func (s *sortedStream) Err() error                        { return s.err }
func (s *sortedStream) Warnings() annotations.Annotations { return s.warn }

// mergeStream merges sorted streams (one per tenant) into one sorted
// stream.
type mergeStream struct {
	h     streamHeap
	cur   labeledSeries
	first bool
	err   error
	all   []seriesStream
}

func newMergeStream(streams []seriesStream) *mergeStream {
	return &mergeStream{all: streams, first: true}
}

type streamHeap []seriesStream

func (h streamHeap) Len() int { return len(h) }
func (h streamHeap) Less(i, j int) bool {
	return labels.Compare(h[i].At().out, h[j].At().out) < 0
}
func (h streamHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *streamHeap) Push(x any)   { *h = append(*h, x.(seriesStream)) }
func (h *streamHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (m *mergeStream) Next() bool {
	if m.err != nil {
		return false
	}
	if m.first {
		m.first = false
		for _, s := range m.all {
			if s.Next() {
				m.h = append(m.h, s)
			} else if err := s.Err(); err != nil {
				m.err = err
				return false
			}
		}
		heap.Init(&m.h)
	} else if len(m.h) > 0 {
		top := m.h[0]
		if top.Next() {
			heap.Fix(&m.h, 0)
		} else {
			if err := top.Err(); err != nil {
				m.err = err
				return false
			}
			heap.Pop(&m.h)
		}
	}
	if len(m.h) == 0 {
		return false
	}
	m.cur = m.h[0].At()
	return true
}

func (m *mergeStream) At() labeledSeries { return m.cur }
func (m *mergeStream) Err() error        { return m.err }

func (m *mergeStream) Warnings() annotations.Annotations {
	var w annotations.Annotations
	for _, s := range m.all {
		w.Merge(s.Warnings())
	}
	return w
}
