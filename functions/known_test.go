package functions

import "testing"

// TestKnownSeriesTable: series sent round after round, each put when not
// found, as route does, in a table for that many: after the first rounds
// almost every one is found, with its own value; a key never put is not.
func TestKnownSeriesTable(t *testing.T) {
	const series = 1 << 19
	k := newKnownSeries(series)
	key := func(i int) uint64 { return knownKey(0x5eed, uint64(i)) }
	missed := 0
	for range 10 {
		missed = 0
		for i := range series {
			v, ok := k.get(key(i))
			if ok && v != uint64(i)+1 {
				t.Fatalf("key %d: got %d", i, v)
			}
			if !ok {
				missed++
				k.put(key(i), uint64(i)+1)
			}
		}
	}
	if missed > series/1000 {
		t.Fatalf("%d of %d series not found in the tenth round", missed, series)
	}
	if _, ok := k.get(key(series + 1)); ok {
		t.Fatal("a key never put was found")
	}
}
