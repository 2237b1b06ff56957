package shard

import (
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
)

// thanosHash is Thanos Receive's series hash (labelpb.HashWithPrefix),
// written plainly: the reference the Hasher must equal.
func thanosHash(tenant string, pairs ...string) uint64 {
	b := []byte(tenant)
	b = append(b, 0xff)
	for i := 0; i < len(pairs); i += 2 {
		b = append(b, pairs[i]...)
		b = append(b, 0xff)
		b = append(b, pairs[i+1]...)
		b = append(b, 0xff)
	}
	return xxhash.Sum64(b)
}

func TestHasherEqualsReference(t *testing.T) {
	long := strings.Repeat("x", 700)
	for _, tc := range []struct {
		name   string
		tenant string
		pairs  []string
	}{
		{"no labels", "t", nil},
		{"empty tenant", "", []string{"__name__", "up"}},
		{"typical", "tenant-a", []string{"__name__", "http_requests_total", "code", "200", "instance", "10.0.0.1:9100", "job", "api"}},
		{"exactly the buffer", strings.Repeat("t", 1023), nil},
		{"one past the buffer", strings.Repeat("t", 1024), nil},
		{"spills once", "t", []string{"a", long, "b", long}},
		{"spills several times", "t", []string{"a", long, "b", long, "c", long, "d", strings.Repeat("y", 5000)}},
		{"unicode", "tenant-ü", []string{"__name__", "ça_va", "émoji", "🙂"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := thanosHash(tc.tenant, tc.pairs...)

			var hb, hs Hasher
			hb.Reset(tc.tenant)
			hs.Reset(tc.tenant)
			for i := 0; i < len(tc.pairs); i += 2 {
				hb.Add([]byte(tc.pairs[i]), []byte(tc.pairs[i+1]))
				hs.AddString(tc.pairs[i], tc.pairs[i+1])
			}
			if got := hb.Sum64(); got != want {
				t.Errorf("Add: %#x, want %#x", got, want)
			}
			if got := hs.Sum64(); got != want {
				t.Errorf("AddString: %#x, want %#x", got, want)
			}
			if got := hs.Sum64(); got != want {
				t.Errorf("second Sum64: %#x, want %#x", got, want)
			}
			if got := HashSeries(tc.tenant, labels.FromStrings(tc.pairs...)); got != want {
				t.Errorf("HashSeries: %#x, want %#x", got, want)
			}

			// A Hasher is reusable after a spill.
			hs.Reset("other")
			hs.AddString("a", "b")
			if got, want := hs.Sum64(), thanosHash("other", "a", "b"); got != want {
				t.Errorf("after Reset: %#x, want %#x", got, want)
			}
		})
	}
}

// The tenant is part of the hash, and so is every label.
func TestHashDependsOnTenantAndEveryLabel(t *testing.T) {
	base := labels.FromStrings("__name__", "up", "instance", "a:1", "job", "node")
	h := HashSeries("t", base)
	if HashSeries("u", base) == h {
		t.Error("tenant does not change the hash")
	}
	for _, ls := range []labels.Labels{
		labels.FromStrings("__name__", "up", "instance", "a:2", "job", "node"),
		labels.FromStrings("__name__", "up", "instance", "a:1", "job", "node", "zone", "x"),
		labels.FromStrings("__name__", "up", "instance", "a:1"),
		// Moving bytes between a name and a value changes the hash.
		labels.FromStrings("__name__", "up", "instance", "a:1", "jo", "bnode"),
	} {
		if HashSeries("t", ls) == h {
			t.Errorf("%s hashes as %s", ls, base)
		}
	}
}

func TestHasherDoesNotAllocate(t *testing.T) {
	var h Hasher
	name, value := []byte("instance"), []byte("10.0.0.1:9100")
	ls := labels.FromStrings("__name__", "up", "instance", "10.0.0.1:9100", "job", "node")
	long := []byte(strings.Repeat("v", 3000))
	if n := testing.AllocsPerRun(1000, func() {
		h.Reset("tenant")
		h.Add(name, value)
		h.AddString("job", "node")
		h.Add(name, long)
		_ = h.Sum64()
		_ = HashSeries("tenant", ls)
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
