package functions

import (
	"sync"

	"github.com/stratametrics/strata/internal/forwarding"
)

// relabelCache remembers what a tenant's rules do to each series, by a
// 64-bit key of the series (the seed of knownKey holds the tenant and the
// limits' version, so new rules are not answered with old outcomes). It
// keeps two generations of at most max/2 outcomes each: when the current
// one is full, the older is dropped and the current becomes the older, so
// what is in use stays (an outcome found in the older is copied into the
// current) and memory stays bounded.
//
// A generation is an open-addressing table of (key, value) words, without
// pointers, and an arena of the relabeled labels of the series the rules
// change; a value is the outcome's kind and, for those, where its labels
// are in the arena. An arena is only ever appended to: the outcomes that
// lookups hand out point into it and are read after the lock is released,
// so a generation dropped gets a new arena rather than reusing its bytes
// (its table is reused: only read under the lock).
type relabelCache struct {
	mu       sync.Mutex
	cur, old relabelGen
	// maxEntries and maxArena bound a generation: outcomes, and bytes of
	// relabeled labels.
	maxEntries, maxArena int
	// sink keeps what warm reads from being optimized away.
	sink uint64
}

// relabelGen is one generation of the cache.
type relabelGen struct {
	// slots holds pairs of words, key then value; a key of 0 is a free
	// slot (knownKey is never 0). At most 3/4 of the pairs are taken, so
	// a probe always ends.
	slots []uint64
	n     int
	// arena holds the entries of rewrites (relabelOutcome.entry).
	arena []byte
	// refusals holds the refusals of the generation, by index.
	refusals []forwarding.Rejection
}

// A value packs the outcome's kind in its low 2 bits, then for a rewrite
// its entry's offset in the arena (32 bits) and length (30 bits), for a
// refusal its index in refusals.
const (
	relabelKindBits   = 2
	relabelOffsetBits = 32
	relabelMaxEntry   = 1<<(64-relabelKindBits-relabelOffsetBits) - 1
	// relabelArenaPerEntry is the bytes of relabeled labels a generation
	// holds per outcome, on average: well above the few hundred bytes of
	// a Kubernetes series, so that the number of outcomes is what bounds
	// a generation, and a tenant relabeling long series into long ones
	// gets generations with fewer of them.
	relabelArenaPerEntry = 512
	relabelMinSlots      = 256
)

// newRelabelCache makes a cache for about max outcomes; max 0 turns it
// off. Its memory is taken as it fills.
func newRelabelCache(max int) *relabelCache {
	if max <= 0 {
		return &relabelCache{}
	}
	entries := max/2 + 1
	return &relabelCache{maxEntries: entries, maxArena: min(entries*relabelArenaPerEntry, 1<<relabelOffsetBits-1)}
}

// get returns the outcome remembered for key. Callers hold mu.
func (c *relabelCache) get(key uint64) (relabelOutcome, bool) {
	if v, ok := c.cur.lookup(key); ok {
		return c.cur.outcome(v), true
	}
	v, ok := c.old.lookup(key)
	if !ok {
		return relabelOutcome{}, false
	}
	o := c.old.outcome(v)
	c.put(key, o)
	return o, true
}

// warm reads the first slot of each key in the current generation, and
// sums them into sink, without a branch on what it finds: the CPU then
// has all of them on their way from memory at once, and the lookups that
// follow, whose branches would have it wait for each in turn, find them
// in its caches. Callers hold mu.
func (c *relabelCache) warm(keys []uint64) {
	g := &c.cur
	if len(g.slots) == 0 {
		return
	}
	mask := uint64(len(g.slots)/2 - 1)
	x := c.sink
	for _, key := range keys {
		x += g.slots[2*(key&mask)]
	}
	c.sink = x
}

// put remembers o for key. Callers hold mu.
func (c *relabelCache) put(key uint64, o relabelOutcome) {
	if c.maxEntries <= 0 || key == 0 {
		return
	}
	need := 0
	if o.kind == relabelRewrite {
		if need = len(o.entry); need > relabelMaxEntry || need > c.maxArena {
			return
		}
	}
	if c.cur.n >= c.maxEntries || len(c.cur.arena)+need > c.maxArena {
		c.flip()
	}
	g := &c.cur
	v := uint64(o.kind)
	switch o.kind {
	case relabelRewrite:
		v |= uint64(len(g.arena))<<relabelKindBits | uint64(len(o.entry))<<(relabelKindBits+relabelOffsetBits)
		g.arena = append(g.arena, o.entry...)
	case relabelRefuse:
		v |= uint64(len(g.refusals)) << relabelKindBits
		g.refusals = append(g.refusals, *o.refusal)
	}
	g.insert(key, v)
}

// flip drops the older generation and starts a new current one, on the
// older one's table.
func (c *relabelCache) flip() {
	slots := c.old.slots
	clear(slots)
	c.old = c.cur
	c.cur = relabelGen{slots: slots, arena: make([]byte, 0, len(c.old.arena))}
}

// lookup returns the value of key.
func (g *relabelGen) lookup(key uint64) (uint64, bool) {
	if len(g.slots) == 0 {
		return 0, false
	}
	mask := uint64(len(g.slots)/2 - 1)
	for i := key & mask; ; i = (i + 1) & mask {
		switch g.slots[2*i] {
		case key:
			return g.slots[2*i+1], true
		case 0:
			return 0, false
		}
	}
}

// insert sets the value of key, growing the table when it is 3/4 full.
func (g *relabelGen) insert(key, value uint64) {
	if (g.n+1)*4 > len(g.slots)/2*3 {
		g.grow()
	}
	mask := uint64(len(g.slots)/2 - 1)
	for i := key & mask; ; i = (i + 1) & mask {
		switch g.slots[2*i] {
		case key:
			g.slots[2*i+1] = value
			return
		case 0:
			g.slots[2*i], g.slots[2*i+1] = key, value
			g.n++
			return
		}
	}
}

// grow doubles the table.
func (g *relabelGen) grow() {
	old := g.slots
	g.slots = make([]uint64, max(2*len(old), 2*relabelMinSlots))
	g.n = 0
	for i := 0; i < len(old); i += 2 {
		if old[i] != 0 {
			g.insert(old[i], old[i+1])
		}
	}
}

// outcome unpacks a value of the generation.
func (g *relabelGen) outcome(v uint64) relabelOutcome {
	o := relabelOutcome{kind: relabelKind(v & (1<<relabelKindBits - 1))}
	switch o.kind {
	case relabelRewrite:
		off := int(v >> relabelKindBits & (1<<relabelOffsetBits - 1))
		end := off + int(v>>(relabelKindBits+relabelOffsetBits))
		// Capacity cut to the entry: nothing may append into the arena.
		o.entry = g.arena[off:end:end]
	case relabelRefuse:
		o.refusal = &g.refusals[v>>relabelKindBits]
	}
	return o
}
