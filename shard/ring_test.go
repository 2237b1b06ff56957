package shard

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// seriesHashes returns the hashes of 1M synthetic series, computed once per
// test binary: the property tests share them.
var seriesHashes = sync.OnceValue(func() []uint64 {
	const n = 1_000_000
	out := make([]uint64, n)
	var h Hasher
	for i := range n {
		h.Reset("tenant-" + strconv.Itoa(i%7))
		h.AddString("__name__", "http_requests_total")
		h.AddString("instance", "10.1."+strconv.Itoa(i/250%250)+"."+strconv.Itoa(i%250)+":9100")
		h.AddString("job", "node")
		h.AddString("path", "/api/v"+strconv.Itoa(i%3))
		h.AddString("series", strconv.Itoa(i))
		out[i] = h.Sum64()
	}
	return out
})

func addresses(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("block-builder-%d.block-builder.strata.svc.cluster.local:19291", i)
	}
	return out
}

func mustRing(t testing.TB, cfgs []HashringConfig, opts Options) *Ring {
	t.Helper()
	r, err := NewRing(cfgs, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ringOf(t testing.TB, algorithm string, rf int, addrs []string) *Hashring {
	t.Helper()
	cfg := HashringConfig{Name: "h", Algorithm: algorithm}
	for _, a := range addrs {
		cfg.Endpoints = append(cfg.Endpoints, Endpoint{Address: a})
	}
	return mustRing(t, []HashringConfig{cfg}, Options{ReplicationFactor: rf}).Hashrings()[0]
}

func TestOwnersDistinct(t *testing.T) {
	zoned := func(n, zones int) []Endpoint {
		var eps []Endpoint
		for i, a := range addresses(n) {
			eps = append(eps, Endpoint{Address: a})
			if zones > 0 {
				eps[i].AZ = "zone-" + strconv.Itoa(i%zones)
			}
		}
		return eps
	}
	plain := func(n int) []Endpoint { return zoned(n, 0) }
	for _, tc := range []struct {
		algorithm string
		endpoints []Endpoint
	}{
		{"ketama", plain(1)},
		{"ketama", plain(2)},
		{"ketama", plain(5)},
		{"ketama", plain(12)},
		{"ketama", zoned(6, 3)},
		{"ketama", zoned(7, 3)},
		{"ketama", append(zoned(5, 1), Endpoint{Address: "lonely:1", AZ: "other"})},
		{"hashmod", plain(1)},
		{"hashmod", plain(5)},
		{"hashmod", plain(12)},
	} {
		n := len(tc.endpoints)
		rfs := []int{1, 2, 3, n - 1, n}
		slices.Sort(rfs)
		for _, rf := range slices.Compact(rfs) {
			if rf < 1 || rf > n {
				continue
			}
			t.Run(fmt.Sprintf("%s/n=%d/zoned=%v/rf=%d", tc.algorithm, n, tc.endpoints[n-1].AZ != "", rf), func(t *testing.T) {
				r := mustRing(t, []HashringConfig{{Name: "h", Algorithm: tc.algorithm, Endpoints: tc.endpoints}}, Options{ReplicationFactor: rf})
				h := r.Hashrings()[0]
				dst := make([]int, 0, rf)
				for _, s := range seriesHashes()[:50_000] {
					dst = h.Owners(s, dst[:0])
					if len(dst) != rf {
						t.Fatalf("%d owners, want %d", len(dst), rf)
					}
					sorted := slices.Clone(dst)
					slices.Sort(sorted)
					if len(slices.Compact(sorted)) != rf {
						t.Fatalf("owners %v are not distinct", dst)
					}
					for _, id := range dst {
						if id < 0 || id >= len(r.Endpoints()) {
							t.Fatalf("owner %d out of range", id)
						}
					}
				}
				// The ring wraps: hashes past the last section belong to the first.
				for _, s := range []uint64{0, 1, 1<<63 - 1, 1 << 63, ^uint64(0) - 1, ^uint64(0)} {
					if got := h.Owners(s, nil); len(got) != rf {
						t.Fatalf("Owners(%#x) = %v", s, got)
					}
				}
			})
		}
	}
}

func loads(h *Hashring, n int, hashes []uint64, rf int) []int {
	count := make([]int, n)
	dst := make([]int, 0, rf)
	for _, s := range hashes {
		dst = h.Owners(s, dst[:0])
		for _, id := range dst {
			count[id]++
		}
	}
	return count
}

func maxMin(count []int) float64 {
	return float64(slices.Max(count)) / float64(slices.Min(count))
}

// The most loaded endpoint of a ketama ring holds at most 1.15 times the
// series of the least loaded one, for every size from 3 to 30.
func TestKetamaBalance(t *testing.T) {
	hashes := seriesHashes()
	worst, worstN := 0.0, 0
	for n := 3; n <= 30; n++ {
		h := ringOf(t, "ketama", 1, addresses(n))
		ratio := maxMin(loads(h, n, hashes, 1))
		if ratio > worst {
			worst, worstN = ratio, n
		}
		if ratio > 1.15 {
			t.Errorf("%d endpoints: max/min load %.3f > 1.15", n, ratio)
		}
	}
	t.Logf("primary owners: worst max/min load %.3f (%d endpoints)", worst, worstN)

	// Replicas balance as well: an endpoint holds about rf/n of the series.
	for _, n := range []int{3, 7, 16, 30} {
		h := ringOf(t, "ketama", 3, addresses(n))
		ratio := maxMin(loads(h, n, hashes, 3))
		t.Logf("rf=3, %d endpoints: max/min load %.3f", n, ratio)
		if ratio > 1.15 {
			t.Errorf("rf=3, %d endpoints: max/min load %.3f > 1.15", n, ratio)
		}
	}
}

// Adding one endpoint to n moves about 1/(n+1) of the series with ketama,
// all of them to the new endpoint; hashmod moves most series.
func TestMovementOnAddingAnEndpoint(t *testing.T) {
	hashes := seriesHashes()
	for _, n := range []int{3, 7, 16, 30} {
		addrs := addresses(n + 1)
		before := ringOf(t, "ketama", 3, addrs[:n])
		after := ringOf(t, "ketama", 3, addrs)
		// IDs are indices into the sorted addresses; compare addresses.
		beforeIDs, afterIDs := sorted(addrs[:n]), sorted(addrs)
		beforeAddr := func(id int) string { return beforeIDs[id] }
		afterAddr := func(id int) string { return afterIDs[id] }

		moved, copiesMoved := 0, 0
		var b, a []int
		for _, s := range hashes {
			b, a = before.Owners(s, b[:0]), after.Owners(s, a[:0])
			if beforeAddr(b[0]) != afterAddr(a[0]) {
				moved++
				if afterAddr(a[0]) != addrs[n] {
					t.Fatalf("n=%d: a series moved from %s to %s, not to the new endpoint", n, beforeAddr(b[0]), afterAddr(a[0]))
				}
			}
			// Replica sets change only by taking in the new endpoint.
			old := map[string]bool{}
			for _, id := range b {
				old[beforeAddr(id)] = true
			}
			for _, id := range a {
				if addr := afterAddr(id); !old[addr] {
					copiesMoved++
					if addr != addrs[n] {
						t.Fatalf("n=%d: replica moved to %s, not to the new endpoint", n, addr)
					}
				}
			}
		}
		frac := float64(moved) / float64(len(hashes))
		ideal := 1 / float64(n+1)
		t.Logf("ketama %d->%d endpoints: %.4f of series moved (ideal %.4f, ratio %.3f); %.4f of replicas moved",
			n, n+1, frac, ideal, frac/ideal, float64(copiesMoved)/float64(3*len(hashes)))
		if frac > ideal*1.3 || frac < ideal/1.3 {
			t.Errorf("ketama %d->%d endpoints: %.4f of series moved, want within 1.3x of %.4f", n, n+1, frac, ideal)
		}

		hb, ha := ringOf(t, "hashmod", 1, addrs[:n]), ringOf(t, "hashmod", 1, addrs)
		moved = 0
		for _, s := range hashes {
			if beforeAddr(hb.Owners(s, b[:0])[0]) != afterAddr(ha.Owners(s, a[:0])[0]) {
				moved++
			}
		}
		frac = float64(moved) / float64(len(hashes))
		t.Logf("hashmod %d->%d endpoints: %.4f of series moved", n, n+1, frac)
		if frac < 0.5 {
			t.Errorf("hashmod %d->%d endpoints: only %.4f of series moved; expected most", n, n+1, frac)
		}
	}
}

func sorted(addrs []string) []string {
	s := slices.Clone(addrs)
	slices.Sort(s)
	return s
}

// With rf=3 over three zones, the replicas of every series are in three
// distinct zones; with more replicas than zones, zones fill evenly.
func TestZoneSpread(t *testing.T) {
	hashes := seriesHashes()[:200_000]
	for _, tc := range []struct {
		name  string
		zones []int // endpoints per zone
		rf    int
	}{
		{"3 zones of 3, rf=3", []int{3, 3, 3}, 3},
		{"3 zones of 1, rf=3", []int{1, 1, 1}, 3},
		{"3 unequal zones, rf=3", []int{1, 4, 7}, 3},
		{"2 zones of 3, rf=3", []int{3, 3}, 3},
		{"3 zones of 2, rf=5", []int{2, 2, 2}, 5},
		{"zones of 1 and 5, rf=4", []int{1, 5}, 4}, // Thanos loops forever here
		{"zones of 1 and 5, rf=6", []int{1, 5}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var eps []Endpoint
			for z, size := range tc.zones {
				for i := range size {
					eps = append(eps, Endpoint{Address: fmt.Sprintf("bb-%d-%d:19291", z, i), AZ: fmt.Sprintf("zone-%c", 'a'+z)})
				}
			}
			r := mustRing(t, []HashringConfig{{Name: "h", Endpoints: eps}}, Options{ReplicationFactor: tc.rf})
			h := r.Hashrings()[0]
			// Replicas per zone must be as even as the zone sizes allow:
			// no zone gets a second replica while another zone that still
			// has endpoints has none, and so on.
			var dst []int
			for _, s := range hashes {
				dst = h.Owners(s, dst[:0])
				per := make(map[string]int)
				for _, id := range dst {
					per[r.Endpoints()[id].AZ]++
				}
				for z, size := range tc.zones {
					zone := fmt.Sprintf("zone-%c", 'a'+z)
					for z2, size2 := range tc.zones {
						zone2 := fmt.Sprintf("zone-%c", 'a'+z2)
						if per[zone] > per[zone2]+1 && per[zone2] < size2 {
							t.Fatalf("owners %v: zone %s has %d replicas, zone %s has %d of %d endpoints", dst, zone, per[zone], zone2, per[zone2], size2)
						}
					}
					if per[zone] > size {
						t.Fatalf("owners %v: more replicas than endpoints in %s", dst, zone)
					}
				}
				if tc.rf <= len(tc.zones) && len(per) != tc.rf {
					t.Fatalf("owners %v span %d zones, want %d", dst, len(per), tc.rf)
				}
			}
		})
	}
}

// A ketama ring does not depend on the order of endpoints or hashrings in
// the file.
func TestKetamaIgnoresOrder(t *testing.T) {
	addrs := addresses(7)
	rev := slices.Clone(addrs)
	slices.Reverse(rev)
	a, b := ringOf(t, "ketama", 3, addrs), ringOf(t, "ketama", 3, rev)
	for _, s := range seriesHashes()[:100_000] {
		if x, y := a.Owners(s, nil), b.Owners(s, nil); !slices.Equal(x, y) {
			t.Fatalf("owners of %#x: %v vs %v", s, x, y)
		}
	}
}

func TestOwnersDoesNotAllocate(t *testing.T) {
	for _, algorithm := range []string{"ketama", "hashmod"} {
		h := ringOf(t, algorithm, 3, addresses(10))
		dst := make([]int, 0, 3)
		var s uint64
		if n := testing.AllocsPerRun(1000, func() {
			s += 0x9e3779b97f4a7c15
			dst = h.Owners(s, dst[:0])
		}); n != 0 {
			t.Errorf("%s: %v allocations per Owners", algorithm, n)
		}
	}
}

// TestOwnersEach: the batch lookup gives, hash after hash, what Owners
// gives for each.
func TestOwnersEach(t *testing.T) {
	for _, algorithm := range []string{"ketama", "hashmod"} {
		for _, n := range []int{1, 3, 6, 30} {
			rf := min(3, n)
			h := ringOf(t, algorithm, rf, addresses(n))
			hashes := make([]uint64, 5000)
			var s uint64
			for i := range hashes {
				s += 0x9e3779b97f4a7c15
				hashes[i] = s
			}
			hashes[0], hashes[1] = 0, math.MaxUint64
			got := h.OwnersEach(hashes, nil)
			if len(got) != rf*len(hashes) {
				t.Fatalf("%s, %d endpoints: %d owners for %d hashes, want %d each", algorithm, n, len(got), len(hashes), rf)
			}
			for i, x := range hashes {
				want := h.Owners(x, nil)
				for j, e := range want {
					if int(got[i*rf+j]) != e {
						t.Fatalf("%s, %d endpoints: owners of %#x are %v, want %v", algorithm, n, x, got[i*rf:i*rf+rf], want)
					}
				}
			}
		}
	}
}
