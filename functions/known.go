package functions

import (
	"sync"
	"sync/atomic"
)

// knownSeries remembers series the router has validated, by a 64-bit key
// of their tenant, the tenant's limits and their encoded labels, with the
// series' hash for the hashring. Senders send the same series scrape after
// scrape, so most series of a request are known: the router then skips
// decoding and checking their labels and hashing them, which is most of
// its work per sample.
//
// It is a hint, never the last word: block builders validate every series
// they do not know themselves, so the 2^-64 chance that another series has
// the same key can only let an invalid series reach a block builder, which
// refuses it. Memory is bounded: a table of buckets of four entries (one
// cache line each). A key may sit in either of two buckets, chosen by two
// parts of it: with one, keys of full buckets evicted each other request
// after request, and in a table half full one series in fourteen missed
// it in every request (TestKnownSeriesTable; the block builder's
// knownRefs, a third full, one in thirty). An entry evicts another only
// when both its buckets are full.
// Readers and writers share it without locks: an entry is two words, its
// check (key xor value) and its value, and a reader that sees halves of
// two different writes finds that the check does not match its key.
//
// It starts small and grows, by copying its entries into a table four
// times larger, as it fills, up to the size for the configured number of
// series: a router that sees fewer series than that keeps a table the
// size of what it sees (4 MB for 100k series, where the full table of 1M
// series is 32 MB), which also keeps more of it in cache. Puts that race
// with a copy may be lost, and cost their series one more full decode.
type knownSeries struct {
	tab atomic.Pointer[knownTable]
	// maxBuckets is the size it grows to; filled counts the entries put
	// in free ways of the current table, which grows when half are.
	maxBuckets uint64
	filled     atomic.Int64
	growMu     sync.Mutex
}

type knownTable struct {
	slots []atomic.Uint64
	mask  uint64 // buckets - 1
}

const (
	knownWays = 4
	// minKnownBuckets is the size a table starts at: 16k entries, 256 KB.
	minKnownBuckets = 1 << 12
	knownGrowth     = 4
)

// newKnownSeries makes a table for about n series: of up to 2n entries
// (rounded up to a power of two), as a table fuller than half leaves
// series out (at n entries, one in eight of n series sent again and
// again); nil when n is 0, which disables it.
func newKnownSeries(n int) *knownSeries {
	if n <= 0 {
		return nil
	}
	buckets := uint64(1)
	for buckets*knownWays < 2*uint64(n) {
		buckets <<= 1
	}
	k := &knownSeries{maxBuckets: buckets}
	k.tab.Store(newKnownTable(min(buckets, minKnownBuckets)))
	return k
}

func newKnownTable(buckets uint64) *knownTable {
	return &knownTable{slots: make([]atomic.Uint64, buckets*knownWays*2), mask: buckets - 1}
}

// get returns the value stored for key, if any.
func (k *knownSeries) get(key uint64) (uint64, bool) { return k.tab.Load().get(key) }

// put stores value for key, and grows the table once half of it is taken.
func (k *knownSeries) put(key, value uint64) {
	t := k.tab.Load()
	if !t.put(key, value) {
		return
	}
	buckets := t.mask + 1
	if buckets < k.maxBuckets && k.filled.Add(1) > int64(buckets*knownWays/2) {
		k.grow(t)
	}
}

// grow replaces t, if it is still the table, by one knownGrowth times
// larger (at most maxBuckets) holding its entries.
func (k *knownSeries) grow(t *knownTable) {
	k.growMu.Lock()
	defer k.growMu.Unlock()
	if k.tab.Load() != t {
		return // another put grew it
	}
	nt := newKnownTable(min((t.mask+1)*knownGrowth, k.maxBuckets))
	filled := int64(0)
	for i := 0; i < len(t.slots); i += 2 {
		check, value := t.slots[i].Load(), t.slots[i+1].Load()
		if check == 0 && value == 0 {
			continue
		}
		// An entry written while it is read may be torn: its key is then
		// one no series has, but for a 2^-64 chance.
		if nt.put(check^value, value) {
			filled++
		}
	}
	k.filled.Store(filled)
	k.tab.Store(nt)
}

// buckets are the key's two buckets, as offsets into slots: from its low
// bits and from bits 32 and up (at most 2^29 buckets, below the bits put
// chooses a way by).
func (t *knownTable) buckets(key uint64) [2]uint64 {
	return [2]uint64{(key & t.mask) * knownWays * 2, (key >> 32 & t.mask) * knownWays * 2}
}

func (t *knownTable) get(key uint64) (uint64, bool) {
	for _, b := range t.buckets(key) {
		for w := uint64(0); w < knownWays; w++ {
			v := t.slots[b+2*w+1].Load()
			if t.slots[b+2*w].Load()^v == key {
				return v, true
			}
		}
	}
	return 0, false
}

// put stores value for key, in a free way of its first bucket, else of
// its second, else in place of an entry chosen by the key's high bits;
// it reports whether it took a free way.
func (t *knownTable) put(key, value uint64) bool {
	bs := t.buckets(key)
	at := bs[key>>63] + 2*(key>>61&3) // knownWays == 4
	free := false
search:
	for _, b := range bs {
		for i := uint64(0); i < knownWays; i++ {
			if c := t.slots[b+2*i].Load(); c == 0 && t.slots[b+2*i+1].Load() == 0 {
				at, free = b+2*i, true
				break search
			}
		}
	}
	t.slots[at+1].Store(value)
	t.slots[at].Store(key ^ value)
	return free
}

// knownKey is the key of a series: seed (its tenant and limits) mixed with
// the hash of its encoded labels. It is never 0, which marks a free entry
// (a free entry's check and value are both 0, so it matches key 0 only).
func knownKey(seed, labels uint64) uint64 {
	x := seed ^ labels
	// The finalizer of MurmurHash3: every bit of the seed reaches the
	// bucket index (the low bits).
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	if x == 0 {
		x = 1
	}
	return x
}
