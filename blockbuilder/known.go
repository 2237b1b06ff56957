package blockbuilder

import (
	"hash/maphash"
	"sync/atomic"

	"github.com/prometheus/prometheus/storage"
)

// knownRefs remembers, per tenant, the head reference of series by the
// bytes of their labels as a 1.0 request encodes them (LabelRun), or by
// the symbols a 2.0 request's series refers to. Senders
// send the same series request after request: a series found here is
// appended by its reference without decoding, hashing and comparing its
// labels and looking them up in the head's index, which was most of a
// block builder's work per sample.
//
// Unlike the router's table (a hint: block builders check again), what
// it answers is stored, so a wrong answer must never happen: entries are
// keyed by 128 bits, two hashes under seeds chosen at random when the
// process starts, so that senders can neither find nor craft two label
// sets with the same key. A reference the head no longer holds (the
// series was garbage-collected after a cut) fails its first append, and
// the series is then looked up as a new one (appendRequest): references
// are never reused by a head.
//
// Memory is an open table of 24-byte entries that doubles, empty, when
// more series were put than half its entries. A key may sit in either of
// two buckets (one per half of the key): with one, keys of full buckets
// evicted each other round after round, and at the table's usual load (a
// third to a half full) one series in thirty was looked up the slow way
// in every request (BenchmarkAppendRequest's unknown/series); with two,
// both are full for almost none. Entries of other keys are overwritten
// only then. Readers and writers share it without
// locks: an entry's words are its key's two halves each xored with the
// value, and the value; a reader that sees parts of two writes finds a
// key that does not match.
type knownRefs struct {
	table atomic.Pointer[refTable]
	// puts counts entries written into the current table.
	puts atomic.Int64
}

type refTable struct {
	words []atomic.Uint64 // three per entry
	mask  uint64          // buckets - 1
}

// refWays is the entries of a bucket, probed in turn.
const refWays = 4

// minRefSlots is a new tenant's table: 6 KiB, so that a thousand small
// tenants cost little.
const minRefSlots = 256

var refSeeds = [4]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed(), maphash.MakeSeed(), maphash.MakeSeed()}

// refKey is the 128-bit key of a series' label bytes.
type refKey struct{ a, b uint64 }

func keyOfRun(run []byte) refKey {
	return refKey{maphash.Bytes(refSeeds[0], run), maphash.Bytes(refSeeds[1], run)}
}

// keyOfSymbols is the key of 2.0 labels written as keyOf writes them,
// under seeds of their own: 2.0 and 1.0 keys are independent, whatever
// the bytes.
func keyOfSymbols(encoded []byte) refKey {
	return refKey{maphash.Bytes(refSeeds[2], encoded), maphash.Bytes(refSeeds[3], encoded)}
}

// maxRefSlots bounds a table: 1.5 GiB at 64M series in one tenant.
const maxRefSlots = 1 << 26

func newKnownRefs() *knownRefs {
	k := &knownRefs{}
	k.table.Store(newRefTable(minRefSlots))
	return k
}

func newRefTable(slots int) *refTable {
	return &refTable{words: make([]atomic.Uint64, 3*slots), mask: uint64(slots/refWays - 1)}
}

// get returns the reference stored for key, if any.
func (k *knownRefs) get(key refKey) (storage.SeriesRef, bool) {
	t := k.table.Load()
	if v, ok := t.find(t.first(key), key); ok {
		return storage.SeriesRef(v), true
	}
	if v, ok := t.find(t.second(key), key); ok {
		return storage.SeriesRef(v), true
	}
	return 0, false
}

// first and second are the key's two buckets, as offsets into words.
func (t *refTable) first(key refKey) uint64  { return (key.a & t.mask) * refWays * 3 }
func (t *refTable) second(key refKey) uint64 { return (key.b & t.mask) * refWays * 3 }

// find returns the value of key's entry in the bucket at b.
func (t *refTable) find(b uint64, key refKey) (uint64, bool) {
	for w := uint64(0); w < refWays; w++ {
		e := t.words[b+3*w : b+3*w+3]
		v := e[2].Load()
		if v != 0 && e[0].Load()^v == key.a && e[1].Load()^v == key.b {
			return v, true
		}
	}
	return 0, false
}

// put stores ref (not 0) for key: in the key's entry if it has one (a
// stale reference), else in a free entry of its first bucket, then of its
// second, else in place of one of the two chosen by the key's high bits.
// headSeries is the head's series: the table grows to twice to four
// times as many entries, not with the churn of series that came and went.
func (k *knownRefs) put(key refKey, ref storage.SeriesRef, headSeries func() uint64) {
	t := k.table.Load()
	if n, slots := k.puts.Add(1), len(t.words)/3; n > int64(slots/2) && slots < maxRefSlots && uint64(slots) < 2*headSeries() {
		// Grown empty: the series come back within a request or two.
		bigger := newRefTable(2 * len(t.words) / 3)
		if k.table.CompareAndSwap(t, bigger) {
			k.puts.Store(0)
		}
		t = k.table.Load()
	}
	at, free := -1, -1
	buckets := [2]uint64{t.first(key), t.second(key)}
	for _, b := range buckets {
		for w := uint64(0); w < refWays; w++ {
			i := int(b + 3*w)
			e := t.words[i : i+3]
			old := e[2].Load()
			if old != 0 && e[0].Load()^old == key.a && e[1].Load()^old == key.b {
				at = i
				break
			}
			if old == 0 && free < 0 {
				free = i
			}
		}
		if at >= 0 {
			break
		}
	}
	switch {
	case at >= 0:
	case free >= 0:
		at = free
	default:
		// refWays == 4: the top bit picks the bucket, the next two the way.
		at = int(buckets[key.b>>63] + 3*(key.b>>61&3))
	}
	e := t.words[at : at+3]
	v := uint64(ref)
	// Value first: a reader between the stores sees the new value with
	// (part of) the old key, which matches neither.
	e[2].Store(v)
	e[0].Store(key.a ^ v)
	e[1].Store(key.b ^ v)
}

// bytes is the table's memory.
func (k *knownRefs) bytes() int { return 8 * len(k.table.Load().words) }
