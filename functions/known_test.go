package functions

import (
	"sync"
	"testing"
)

// TestKnownSeriesTable: series sent round after round, each put when not
// found, as route does, in a table for that many: after the first rounds
// almost every one is found, with its own value; a key never put is not.
func TestKnownSeriesTable(t *testing.T) {
	const series = 1 << 19
	k := newKnownSeries(series)
	key := func(i int) uint64 { return knownKey(0x5eed, uint64(i)) }
	missed := knownRounds(t, k, series, 10)
	if missed > series/1000 {
		t.Fatalf("%d of %d series not found in the tenth round", missed, series)
	}
	if _, ok := k.get(key(series + 1)); ok {
		t.Fatal("a key never put was found")
	}
}

// TestKnownSeriesGrows: the table starts small, grows as series come with
// every entry kept, stops at the size for the series it was made for, and
// stays correct while it grows under concurrent gets and puts.
func TestKnownSeriesGrows(t *testing.T) {
	const series = 1 << 17
	k := newKnownSeries(series)
	key := func(i int) uint64 { return knownKey(0x5eed, uint64(i)) }
	if got := len(k.tab.Load().slots) / 2; got != minKnownBuckets*knownWays {
		t.Fatalf("a new table has %d entries, want %d", got, minKnownBuckets*knownWays)
	}
	const few = 10000
	for i := range few {
		k.put(key(i), uint64(i)+1)
	}
	// 10000 series grow 16k entries (half full at 8192) to 64k.
	if got := len(k.tab.Load().slots) / 2; got != 4*minKnownBuckets*knownWays {
		t.Fatalf("after %d series the table has %d entries, want %d", few, got, 4*minKnownBuckets*knownWays)
	}
	// A few lost their entry to others in the small table as it neared
	// half full (0.4%): they are found again once put again.
	lost := 0
	for i := range few {
		v, ok := k.get(key(i))
		if ok && v != uint64(i)+1 {
			t.Fatalf("key %d: got %d after the table grew", i, v)
		}
		if !ok {
			lost++
		}
	}
	if lost > few/100 {
		t.Fatalf("%d of %d series lost when the table grew", lost, few)
	}

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2 {
				for i := g; i < series; i += 4 {
					if v, ok := k.get(key(i)); ok && v != uint64(i)+1 {
						t.Errorf("key %d: got %d", i, v)
						return
					} else if !ok {
						k.put(key(i), uint64(i)+1)
					}
				}
			}
		}()
	}
	wg.Wait()
	if got, want := len(k.tab.Load().slots)/2, 2*series; got != want {
		t.Fatalf("with %d series the table has %d entries, want %d (its most)", series, got, want)
	}
	// Then rounds as route makes them: the grown table holds them as one
	// made at its size does (TestKnownSeriesTable).
	missed := knownRounds(t, k, series, 8)
	if missed > series/1000 {
		t.Fatalf("%d of %d series not found in the last round after the table grew", missed, series)
	}
}

// knownRounds sends series 0 to n-1 round after round, each put when not
// found, as route does, and returns how many the last round missed.
func knownRounds(t *testing.T, k *knownSeries, n, rounds int) int {
	t.Helper()
	missed := 0
	for range rounds {
		missed = 0
		for i := range n {
			key := knownKey(0x5eed, uint64(i))
			v, ok := k.get(key)
			if ok && v != uint64(i)+1 {
				t.Fatalf("key %d: got %d", i, v)
			}
			if !ok {
				missed++
				k.put(key, uint64(i)+1)
			}
		}
	}
	return missed
}
