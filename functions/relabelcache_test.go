package functions

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/stratametrics/strata/internal/forwarding"
)

// rewriteOf is a rewrite outcome of n bytes of labels told apart by k,
// with the known key k*3.
func rewriteOf(k uint64, n int) relabelOutcome {
	entry := binary.LittleEndian.AppendUint64(nil, k*3)
	return relabelOutcome{kind: relabelRewrite, entry: append(entry, bytes.Repeat([]byte{byte(k)}, n)...)}
}

func sameOutcome(a, b relabelOutcome) bool {
	if a.kind != b.kind || !bytes.Equal(a.entry, b.entry) || (a.refusal == nil) != (b.refusal == nil) {
		return false
	}
	return a.refusal == nil || *a.refusal == *b.refusal
}

// TestRelabelCacheCollisions: keys that land on the same slot, and keys
// whose probes run into each other's, each find their own outcome, of
// every kind; an absent key that lands there finds none.
func TestRelabelCacheCollisions(t *testing.T) {
	c := newRelabelCache(1 << 20)
	const stride = 1 << 40 // the same low bits: the same first slot
	want := map[uint64]relabelOutcome{}
	for k := uint64(1); k <= 40; k++ {
		key := k * stride
		if k%4 == 0 {
			key = k*stride + 1 // the slot after, which the others probe into
		}
		var o relabelOutcome
		switch k % 4 {
		case 0:
			o = relabelOutcome{kind: relabelDrop}
		case 1:
			o = relabelOutcome{kind: relabelSame}
		case 2:
			o = rewriteOf(k, int(k))
		case 3:
			o = relabelOutcome{kind: relabelRefuse, refusal: &forwarding.Rejection{Kind: "invalid", Reason: fmt.Sprintf("rule %d", k)}}
		}
		c.put(key, o)
		want[key] = o
	}
	for key, o := range want {
		got, ok := c.get(key)
		if !ok || !sameOutcome(got, o) {
			t.Errorf("key %#x: %+v, %v; want %+v", key, got, ok, o)
		}
	}
	for _, absent := range []uint64{41 * stride, 2, 44*stride + 1} {
		if got, ok := c.get(absent); ok {
			t.Errorf("absent key %#x found: %+v", absent, got)
		}
	}
	// Put again, a key keeps one entry with the new outcome.
	n := c.cur.n
	c.put(2*stride, relabelOutcome{kind: relabelDrop})
	if got, _ := c.get(2 * stride); got.kind != relabelDrop || c.cur.n != n {
		t.Errorf("after a second put: %+v, %d entries (want drop, %d)", got, c.cur.n, n)
	}
}

// TestRelabelCacheGenerations: a full generation becomes the older one;
// what is found in the older moves into the current, what is not is gone
// one flip later. Outcomes handed out before keep their labels.
func TestRelabelCacheGenerations(t *testing.T) {
	c := newRelabelCache(8) // 5 outcomes a generation
	if c.maxEntries != 5 {
		t.Fatalf("%d outcomes a generation, want 5", c.maxEntries)
	}
	for k := uint64(1); k <= 5; k++ {
		c.put(k, rewriteOf(k, 10))
	}
	held, _ := c.get(1)
	c.put(6, rewriteOf(6, 10)) // flips: 1-5 are the older generation
	if c.cur.n != 1 || c.old.n != 5 {
		t.Fatalf("after the flip: %d current, %d older; want 1 and 5", c.cur.n, c.old.n)
	}
	if got, ok := c.get(2); !ok || !sameOutcome(got, rewriteOf(2, 10)) {
		t.Fatalf("key 2 from the older generation: %+v, %v", got, ok)
	}
	if _, ok := c.cur.lookup(2); !ok {
		t.Fatal("key 2, found in the older generation, is not in the current one")
	}
	for k := uint64(7); k <= 9; k++ {
		c.put(k, rewriteOf(k, 10)) // 2, 6, 7, 8, 9: full
	}
	c.put(10, rewriteOf(10, 10)) // flips again: 1, 3, 4, 5 are gone
	for k := uint64(1); k <= 10; k++ {
		_, ok := c.get(k)
		if gone := k == 1 || k == 3 || k == 4 || k == 5; ok == gone {
			t.Errorf("key %d: found %v, want %v", k, ok, !gone)
		}
	}
	if !sameOutcome(held, rewriteOf(1, 10)) {
		t.Errorf("an outcome handed out before two flips changed: %+v", held)
	}
}

// TestRelabelCacheBound: however many series, a cache holds at most
// about max outcomes, its tables stay within their size, its arenas
// within their bytes; labels larger than an arena are not remembered; 0
// remembers nothing.
func TestRelabelCacheBound(t *testing.T) {
	const bound = 1000
	c := newRelabelCache(bound)
	slots := 0
	for k := uint64(1); k <= 100_000; k++ {
		o := relabelOutcome{kind: relabelSame}
		if k%2 == 0 {
			o = rewriteOf(k, 100)
		}
		c.put(knownKey(7, k), o)
		if n := c.cur.n + c.old.n; n > bound+2 {
			t.Fatalf("after %d series: %d outcomes, want at most %d", k, n, bound+2)
		}
		if len(c.cur.arena) > c.maxArena || len(c.old.arena) > c.maxArena {
			t.Fatalf("after %d series: arenas of %d and %d bytes, over %d", k, len(c.cur.arena), len(c.old.arena), c.maxArena)
		}
		slots = max(slots, len(c.cur.slots)/2, len(c.old.slots)/2)
	}
	// 501 outcomes at most 3/4 of a table: 1024 slots.
	if slots > 1024 {
		t.Errorf("a table of %d slots for %d outcomes", slots, c.maxEntries)
	}
	// Long labels fill an arena before its outcomes: the generation flips
	// on bytes.
	long := newRelabelCache(bound)
	for k := uint64(1); k <= 2000; k++ {
		long.put(knownKey(7, k), rewriteOf(k, 2000))
		if len(long.cur.arena) > long.maxArena {
			t.Fatalf("an arena of %d bytes, over %d", len(long.cur.arena), long.maxArena)
		}
	}
	if long.cur.n >= long.maxEntries {
		t.Errorf("long labels: %d outcomes in a generation, want fewer than %d", long.cur.n, long.maxEntries)
	}
	if long.put(1, rewriteOf(1, long.maxArena-7)); func() bool { _, ok := long.get(1); return ok }() {
		t.Error("labels larger than an arena remembered")
	}
	off := newRelabelCache(0)
	off.put(1, relabelOutcome{kind: relabelDrop})
	if _, ok := off.get(1); ok || off.cur.slots != nil {
		t.Error("a cache of 0 outcomes remembered one")
	}
}
