package blockbuilder

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/stratametrics/strata/remotewrite"
)

func wire(kv ...string) []remotewrite.Label {
	var out []remotewrite.Label
	for i := 0; i < len(kv); i += 2 {
		out = append(out, remotewrite.Label{Name: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return out
}

// TestKeysMatchLabelsEncoding: labels read in place from a key must be
// the labels built from the same wire labels, for short and long (3-byte
// length) values, and differ from others.
func TestKeysMatchLabelsEncoding(t *testing.T) {
	if !fastKeys() {
		t.Skip("this build of labels is not string-based; series are looked up with built labels")
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
		probe := labelsOver(keyOf(nil, wire(c.wire...)))
		if got := labels.Equal(probe, lset); got != c.same {
			t.Errorf("%v vs %v: equal says %v", c.stored, c.wire, got)
		}
		if got := probe.Hash() == lset.Hash(); got != c.same {
			t.Errorf("%v vs %v: same hash says %v", c.stored, c.wire, got)
		}
	}
}

// TestLookUp finds a series the head holds, and only that one, with the
// head's own labels, whether or not the fast path is taken.
func TestLookUp(t *testing.T) {
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	app := db.AppenderV2(context.Background())
	stored := labels.FromStrings("__name__", "up", "job", "a")
	ref, err := app.Append(0, stored, 0, 1000, 1, nil, nil, storage.AOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	app = db.AppenderV2(context.Background())
	defer app.Rollback()
	getRef := app.(storage.GetRef)
	var st appendState
	got, lset, _, built := st.lookUp(getRef, wire("__name__", "up", "job", "a"))
	if got != ref || !labels.Equal(lset, stored) || built {
		t.Fatalf("known series: ref %d (want %d), labels %s, built %v", got, ref, lset, built)
	}
	// The returned labels are the head's, not a view of the reused key.
	st.key = keyOf(st.key, wire("__name__", "xx", "job", "b"))
	if !labels.Equal(lset, stored) {
		t.Fatalf("labels changed with the key buffer: %s", lset)
	}
	got, lset, _, built = st.lookUp(getRef, wire("__name__", "up", "job", "b"))
	if got != 0 {
		t.Fatalf("another series found: ref %d", got)
	}
	if built != !fastKeys() || (built && !labels.Equal(lset, labels.FromStrings("__name__", "up", "job", "b"))) {
		t.Fatalf("new series: built %v, labels %s", built, lset)
	}
}

func TestMetaCache(t *testing.T) {
	c := newMetaCache()
	if c.get(7) != nil {
		t.Fatal("hit in an empty cache")
	}
	m := &metadata.Metadata{Type: "counter", Help: "h"}
	c.put(7, m)
	if c.get(7) != m {
		t.Fatal("entry not found")
	}
	// Past the merge threshold entries move to the read map and stay found.
	for h := uint64(100); h < 500; h++ {
		c.put(h, m)
	}
	if c.get(7) != m || c.get(499) != m || len(*c.read.Load()) == 0 {
		t.Fatal("entries lost in a merge")
	}
	c.reset()
	if c.get(7) != nil {
		t.Fatal("hit after reset")
	}
	md := remotewrite.Metadata{Help: []byte("h")}
	if sameMetadata(nil, md) {
		t.Fatal("nil metadata is the same as some")
	}
}
