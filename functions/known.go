package functions

import (
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
// refuses it. Memory is fixed: a table of buckets of four entries (one
// cache line each). A key may sit in either of two buckets, chosen by two
// parts of it: with one, keys of full buckets evicted each other request
// after request, and in a table half full one series in fourteen missed
// it in every request (TestKnownSeriesTable; the block builder's
// knownRefs, a third full, one in thirty). An entry evicts another only
// when both its buckets are full.
// Readers and writers share it without locks: an entry is two words, its
// check (key xor value) and its value, and a reader that sees halves of
// two different writes finds that the check does not match its key.
type knownSeries struct {
	slots []atomic.Uint64
	mask  uint64 // buckets - 1
}

const knownWays = 4

// newKnownSeries makes a table for about n series: of 2n entries (rounded
// up to a power of two), as a table fuller than half leaves series out
// (at n entries, one in eight of n series sent again and again); nil when
// n is 0, which disables it.
func newKnownSeries(n int) *knownSeries {
	if n <= 0 {
		return nil
	}
	buckets := 1
	for buckets*knownWays < 2*n {
		buckets <<= 1
	}
	return &knownSeries{slots: make([]atomic.Uint64, buckets*knownWays*2), mask: uint64(buckets - 1)}
}

// buckets are the key's two buckets, as offsets into slots: from its low
// bits and from bits 32 and up (at most 2^29 buckets, below the bits put
// chooses a way by).
func (k *knownSeries) buckets(key uint64) [2]uint64 {
	return [2]uint64{(key & k.mask) * knownWays * 2, (key >> 32 & k.mask) * knownWays * 2}
}

// get returns the value stored for key, if any.
func (k *knownSeries) get(key uint64) (uint64, bool) {
	for _, b := range k.buckets(key) {
		for w := uint64(0); w < knownWays; w++ {
			v := k.slots[b+2*w+1].Load()
			if k.slots[b+2*w].Load()^v == key {
				return v, true
			}
		}
	}
	return 0, false
}

// put stores value for key, in a free way of its first bucket, else of
// its second, else in place of an entry chosen by the key's high bits.
func (k *knownSeries) put(key, value uint64) {
	bs := k.buckets(key)
	at := bs[key>>63] + 2*(key>>61&3) // knownWays == 4
free:
	for _, b := range bs {
		for i := uint64(0); i < knownWays; i++ {
			if c := k.slots[b+2*i].Load(); c == 0 && k.slots[b+2*i+1].Load() == 0 {
				at = b + 2*i
				break free
			}
		}
	}
	k.slots[at+1].Store(value)
	k.slots[at].Store(key ^ value)
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
