package blockbuilder

import (
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"

	"github.com/stratametrics/strata/remotewrite"
)

// A series already in the head is found there by the hash of its labels,
// without building them: the wire labels are copied once into the
// encoding labels.Labels uses (keyOf), which the head hashes and compares
// as it stands. Building labels (an allocation per series per request)
// and checking them again is left to new series. Series the tenant's
// knownRefs holds skip even this (known.go): 50 to 100 bytes per series
// of a table that holds no labels, for a quarter to two fifths of the
// CPU per sample (BenchmarkAppendRequest 1.0, 1.0-unsorted; 2.0, whose
// labels are cheap to decode, gains when they come unsorted).

// keyOf writes the labels in the encoding labels.Labels uses internally
// (stringlabels: each name and value as a length then its bytes) into
// buf.
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

// labelsOver returns labels.Labels that read key in place, for a lookup
// only: nothing may keep them, as key is reused. Valid when fastKeys.
func labelsOver(key []byte) labels.Labels {
	s := unsafe.String(unsafe.SliceData(key), len(key))
	return *(*labels.Labels)(unsafe.Pointer(&s))
}

// fastKeys tells whether this build of prometheus/model/labels is the
// string-based one whose encoding keyOf reproduces and whose hash is
// xxhash of it; otherwise series are looked up with built labels.
var fastKeys = sync.OnceValue(func() bool {
	lset := labels.FromStrings("__name__", "up", "job", strings.Repeat("x", 300))
	if unsafe.Sizeof(lset) != unsafe.Sizeof("") {
		return false
	}
	key := keyOf(nil, []remotewrite.Label{
		{Name: []byte("__name__"), Value: []byte("up")},
		{Name: []byte("job"), Value: []byte(strings.Repeat("x", 300))},
	})
	data := *(*string)(unsafe.Pointer(&lset))
	return data == string(key) && lset.Hash() == xxhash.Sum64(key) && labels.Equal(labelsOver(key), lset)
})

// lookUp finds the series of the wire labels ls in the head: its reference
// and the labels the head keeps (ref 0 if the head has no such series).
// Unless fastKeys, the labels are built for the lookup and returned with
// built set, for a new series to own. h is the series' hash, which keys
// its last metadata.
func (st *appendState) lookUp(getRef storage.GetRef, ls []remotewrite.Label) (ref storage.SeriesRef, lset labels.Labels, h uint64, built bool) {
	var probe labels.Labels
	if fastKeys() {
		st.key = keyOf(st.key, ls)
		h = xxhash.Sum64(st.key)
		probe = labelsOver(st.key)
	} else {
		probe = remotewrite.BuildLabels(&st.builder, ls)
		h, built = probe.Hash(), true
	}
	if getRef != nil {
		if ref, lset = getRef.GetRef(probe, h); ref != 0 {
			return ref, lset, h, false
		}
	}
	if built {
		return 0, probe, h, true
	}
	return 0, labels.EmptyLabels(), h, false
}

// metaCache remembers, per tenant, the last metadata each series was
// appended with (remote-write 2.0 sends it with every series), keyed by
// the series' hash, so that unchanged metadata is not copied out of the
// request again. A hash shared by two series only costs a copy: an
// entry is used when its content equals what the request says.
type metaCache struct {
	// read is an immutable map, replaced whole: lookups, which are most
	// of the traffic, read it without writing any shared memory (no lock
	// word bouncing between cores).
	read atomic.Pointer[map[uint64]*metadata.Metadata]
	// mu guards dirty: entries added since read was built, merged into a
	// new read map once there are enough of them for the copy to amortise.
	mu    sync.Mutex
	dirty map[uint64]*metadata.Metadata
}

func newMetaCache() *metaCache {
	c := &metaCache{}
	c.reset()
	return c
}

// get returns the last metadata stored under h, or nil.
func (c *metaCache) get(h uint64) *metadata.Metadata {
	if m, ok := (*c.read.Load())[h]; ok {
		return m
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dirty[h]
}

// put adds or replaces an entry. A replaced entry may still be found in
// the read map until the next merge: harmless, as entries are compared
// before use.
func (c *metaCache) put(h uint64, m *metadata.Metadata) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirty[h] = m
	read := *c.read.Load()
	if len(c.dirty) < 256+len(read)/4 {
		return
	}
	merged := make(map[uint64]*metadata.Metadata, len(read)+len(c.dirty))
	for k, v := range read {
		merged[k] = v
	}
	for k, v := range c.dirty {
		merged[k] = v
	}
	c.read.Store(&merged)
	c.dirty = map[uint64]*metadata.Metadata{}
}

// reset forgets every entry, after a cut removed series from the head.
func (c *metaCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	empty := map[uint64]*metadata.Metadata{}
	c.read.Store(&empty)
	c.dirty = map[uint64]*metadata.Metadata{}
}

// sameMetadata tells whether m is what md (from the wire) says.
func sameMetadata(m *metadata.Metadata, md remotewrite.Metadata) bool {
	return m != nil && m.Help == string(md.Help) && m.Unit == string(md.Unit) && m.Type == md.ToType()
}
