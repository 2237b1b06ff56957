package blockbuilder

import (
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"

	"github.com/stratametrics/strata/remotewrite"
)

// seriesCache remembers, per tenant, the series already appended: keyed by
// a hash of their encoded labels, it holds the TSDB's reference, the
// labels.Labels the head keeps, and the last metadata. A known series is
// then appended without building its labels (an allocation), validating
// them again, or looking the series up by label hash in the head; that is
// most of the cost of a sample once a series exists.
//
// An entry is only a hint: labels are compared in full before one is used,
// and a reference the head has dropped (series garbage-collected after a
// block was cut) makes the head look the series up by its labels again.
// The cache is emptied after each cut, so series that went away do not
// hold memory.
type seriesCache struct {
	// read is an immutable map, replaced whole: lookups, which are most
	// of the traffic, read it without writing any shared memory (no lock
	// word bouncing between cores).
	read atomic.Pointer[map[uint64]cachedSeries]
	// mu guards dirty: entries added since read was built, merged into a
	// new read map once there are enough of them for the copy to amortise.
	mu    sync.Mutex
	dirty map[uint64]cachedSeries
	// fast: labels compare as one string (see labelsData).
	fast bool
}

// cachedSeries is kept small (32 bytes) so that many fit in the CPU's
// caches: metadata, rare and shared by many entries, is behind a pointer.
type cachedSeries struct {
	ref  storage.SeriesRef
	lset labels.Labels
	meta *metadata.Metadata
}

func newSeriesCache() *seriesCache {
	c := &seriesCache{fast: fastKeys()}
	c.reset()
	return c
}

// keyOf writes the labels in the encoding labels.Labels uses internally
// (stringlabels: each name and value as a length then its bytes) into
// buf: one pass of copying, then one hash and, for a hit, one comparison
// of memory, instead of a call per label for each.
func keyOf(buf []byte, ls []remotewrite.Label) []byte {
	buf = buf[:0]
	for _, l := range ls {
		buf = appendSized(buf, l.Name)
		buf = appendSized(buf, l.Value)
	}
	return buf
}

func appendSized(buf, s []byte) []byte {
	if n := len(s); n < 255 {
		buf = append(buf, byte(n))
	} else {
		buf = append(buf, 255, byte(n), byte(n>>8), byte(n>>16))
	}
	return append(buf, s...)
}

// labelsData is the encoded form inside lset, when this build of
// prometheus/model/labels is the string-based one whose encoding keyOf
// reproduces; ok is false otherwise, and callers compare label by label.
func labelsData(lset labels.Labels) (data string, ok bool) {
	if unsafe.Sizeof(lset) != unsafe.Sizeof("") {
		return "", false
	}
	return *(*string)(unsafe.Pointer(&lset)), true
}

// sameKey tells whether lset holds exactly the labels encoded in key (ls
// being the same labels, for the slow path).
func sameKey(lset labels.Labels, key []byte, ls []remotewrite.Label, fast bool) bool {
	if fast {
		data, _ := labelsData(lset)
		return data == string(key)
	}
	return sameLabels(lset, ls)
}

// fastKeys tells whether labelsData's layout holds for this build.
func fastKeys() bool {
	lset := labels.FromStrings("__name__", "up", "job", strings.Repeat("x", 300))
	data, ok := labelsData(lset)
	if !ok {
		return false
	}
	key := keyOf(nil, []remotewrite.Label{
		{Name: []byte("__name__"), Value: []byte("up")},
		{Name: []byte("job"), Value: []byte(strings.Repeat("x", 300))},
	})
	return data == string(key)
}

// get returns the entry of the labels ls, encoded as key by keyOf, with
// hash h, if it holds exactly those labels.
func (c *seriesCache) get(h uint64, key []byte, ls []remotewrite.Label) (cachedSeries, bool) {
	e, ok := (*c.read.Load())[h]
	if !ok {
		c.mu.Lock()
		e, ok = c.dirty[h]
		c.mu.Unlock()
	}
	if !ok || !sameKey(e.lset, key, ls, c.fast) {
		return cachedSeries{}, false
	}
	return e, true
}

// put adds or replaces an entry. A replaced entry may still be found in
// the read map until the next merge: harmless, as entries are hints.
func (c *seriesCache) put(h uint64, e cachedSeries) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirty[h] = e
	read := *c.read.Load()
	if len(c.dirty) < 256+len(read)/4 {
		return
	}
	merged := make(map[uint64]cachedSeries, len(read)+len(c.dirty))
	for k, v := range read {
		merged[k] = v
	}
	for k, v := range c.dirty {
		merged[k] = v
	}
	c.read.Store(&merged)
	c.dirty = map[uint64]cachedSeries{}
}

// reset forgets every entry.
func (c *seriesCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	empty := map[uint64]cachedSeries{}
	c.read.Store(&empty)
	c.dirty = map[uint64]cachedSeries{}
}

// sameLabels compares labels.Labels with encoded labels without
// allocating.
func sameLabels(lset labels.Labels, ls []remotewrite.Label) bool {
	i, same := 0, true
	lset.Range(func(l labels.Label) {
		if !same {
			return
		}
		if i >= len(ls) || l.Name != string(ls[i].Name) || l.Value != string(ls[i].Value) {
			same = false
		}
		i++
	})
	return same && i == len(ls)
}

// sameMetadata tells whether m is what md (from the wire) says.
func sameMetadata(m *metadata.Metadata, md remotewrite.Metadata) bool {
	return m != nil && m.Help == string(md.Help) && m.Unit == string(md.Unit) && m.Type == md.ToType()
}

func metaChanged(a, b *metadata.Metadata) bool {
	if a == nil || b == nil {
		return a != b
	}
	return *a != *b
}
