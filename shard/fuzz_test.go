package shard

import (
	"os"
	"slices"
	"testing"
)

// FuzzParseConfig checks that no file makes ParseConfig or NewRing panic or
// hang, and that whatever loads gives distinct owners.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(thanosExample))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfgs, err := ParseConfig(data)
		if err != nil {
			if cfgs != nil {
				t.Fatalf("configs with an error: %v", err)
			}
			return
		}
		if len(cfgs) == 0 {
			t.Fatal("no configs and no error")
		}
		total := 0
		for _, c := range cfgs {
			total += len(c.Endpoints)
			for _, ep := range c.Endpoints {
				if _, a, err := normalizeAddress(ep.Address); err != nil || a != ep.Address {
					t.Fatalf("address %q is not normalised: %q, %v", ep.Address, a, err)
				}
			}
		}
		if total > 16 {
			return // building big rings is slow and proves nothing more
		}
		for _, rf := range []int{1, 2, 3} {
			r, err := NewRing(cfgs, Options{ReplicationFactor: rf})
			if err != nil {
				continue
			}
			for _, tenant := range []string{"", "tenant-a", "a", "*"} {
				h, err := r.ForTenant(tenant)
				if err != nil {
					continue
				}
				for s := range uint64(64) {
					owners := h.Owners(s*0x9e3779b97f4a7c15, nil)
					if len(owners) != rf {
						t.Fatalf("%d owners at rf=%d", len(owners), rf)
					}
					slices.Sort(owners)
					if len(slices.Compact(owners)) != rf {
						t.Fatalf("owners not distinct")
					}
				}
			}
		}
	})
}

// TestFuzzCorpusIsChecked makes sure the seed corpus is there: `go test`
// runs it as part of FuzzParseConfig.
func TestFuzzCorpusIsChecked(t *testing.T) {
	entries, err := os.ReadDir("testdata/fuzz/FuzzParseConfig")
	if err != nil || len(entries) < 10 {
		t.Fatalf("seed corpus: %d files, %v", len(entries), err)
	}
}
