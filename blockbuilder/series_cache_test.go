package blockbuilder

import (
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/stratametrics/strata/remotewrite"
)

func wire(kv ...string) []remotewrite.Label {
	var out []remotewrite.Label
	for i := 0; i < len(kv); i += 2 {
		out = append(out, remotewrite.Label{Name: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return out
}

// TestKeysMatchLabelsEncoding: the one-comparison path must agree with a
// label-by-label comparison, for short and long (3-byte length) values.
func TestKeysMatchLabelsEncoding(t *testing.T) {
	if !fastKeys() {
		t.Skip("this build of labels is not string-based; the slow comparison is used")
	}
	long := strings.Repeat("v", 70000)
	for _, c := range []struct {
		stored []string
		wire   []string
		same   bool
	}{
		{[]string{"__name__", "up", "job", "a"}, []string{"__name__", "up", "job", "a"}, true},
		{[]string{"__name__", "up", "job", long}, []string{"__name__", "up", "job", long}, true},
		{[]string{"__name__", "up", "job", "a"}, []string{"__name__", "up", "job", "b"}, false},
		{[]string{"__name__", "up", "job", "a"}, []string{"__name__", "up"}, false},
		{[]string{"__name__", "up"}, []string{"__name__", "up", "job", "a"}, false},
		{[]string{"a", "bc"}, []string{"ab", "c"}, false},
	} {
		lset := labels.FromStrings(c.stored...)
		ls := wire(c.wire...)
		key := keyOf(nil, ls)
		if got := sameKey(lset, key, ls, true); got != c.same {
			t.Errorf("%v vs %v: fast comparison says %v", c.stored, c.wire, got)
		}
		if got := sameKey(lset, key, ls, false); got != c.same {
			t.Errorf("%v vs %v: slow comparison says %v", c.stored, c.wire, got)
		}
	}
}

func TestSeriesCache(t *testing.T) {
	c := newSeriesCache()
	ls := wire("__name__", "up", "job", "a")
	key := keyOf(nil, ls)
	h := xxhash.Sum64(key)
	if _, ok := c.get(h, key, ls); ok {
		t.Fatal("hit in an empty cache")
	}
	c.put(h, cachedSeries{ref: 7, lset: labels.FromStrings("__name__", "up", "job", "a")})
	if e, ok := c.get(h, key, ls); !ok || e.ref != 7 {
		t.Fatalf("got %+v %v", e, ok)
	}
	// Same hash, other labels (a collision): a miss, never the wrong series.
	other := wire("__name__", "up", "job", "b")
	if _, ok := c.get(h, keyOf(nil, other), other); ok {
		t.Fatal("an entry for other labels was returned")
	}
	c.reset()
	if _, ok := c.get(h, key, ls); ok {
		t.Fatal("hit after reset")
	}
}
