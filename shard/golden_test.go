package shard

import (
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// These values decide where data lives. If this test fails, the hash or the
// placement changed, and every existing series would move to other block
// builders after a deploy: revert the change (see the package comment).

var goldenSeries = []struct {
	tenant string
	pairs  []string
	hash   uint64
	// owners at rf=2 in the hashrings of goldenConfig, in order
	ketama, ketamaAZ, hashmod []string
}{
	{
		"default-tenant", []string{"__name__", "up", "instance", "localhost:9090", "job", "prometheus"}, 0xcb7a3eb434a9984c,
		[]string{"bb-1.strata:19291", "bb-0.strata:19291"},
		[]string{"az-2.strata:19291", "az-0.strata:19291"},
		[]string{"bb-4.strata:19291", "bb-0.strata:19291"},
	},
	{
		"tenant-a", []string{"__name__", "http_requests_total", "code", "200", "handler", "/api/v1/query", "instance", "10.0.0.1:9100", "job", "api"}, 0x60a3f251da686b7c,
		[]string{"bb-3.strata:19291", "bb-2.strata:19291"},
		[]string{"az-2.strata:19291", "az-1.strata:19291"},
		[]string{"bb-2.strata:19291", "bb-4.strata:19291"},
	},
	{
		"tenant-b", []string{"__name__", "node_cpu_seconds_total", "cpu", "0", "mode", "idle"}, 0x2428a2e83c78b4dc,
		[]string{"bb-4.strata:19291", "bb-2.strata:19291"},
		[]string{"az-0.strata:19291", "az-2.strata:19291"},
		[]string{"bb-0.strata:19291", "bb-2.strata:19291"},
	},
	{
		"", []string{"__name__", "x"}, 0x7dd474ad3908b0c5,
		[]string{"bb-2.strata:19291", "bb-3.strata:19291"},
		[]string{"az-0.strata:19291", "az-2.strata:19291"},
		[]string{"bb-4.strata:19291", "bb-0.strata:19291"},
	},
}

func goldenConfig() []HashringConfig {
	return []HashringConfig{
		{Name: "ketama", Tenants: []string{"k"}, Endpoints: []Endpoint{
			{Address: "bb-0.strata:19291"}, {Address: "bb-1.strata:19291"}, {Address: "bb-2.strata:19291"}, {Address: "bb-3.strata:19291"}, {Address: "bb-4.strata:19291"},
		}},
		{Name: "ketama-az", Tenants: []string{"z"}, Endpoints: []Endpoint{
			{Address: "az-0.strata:19291", AZ: "a"}, {Address: "az-1.strata:19291", AZ: "a"},
			{Address: "az-2.strata:19291", AZ: "b"}, {Address: "az-3.strata:19291", AZ: "b"},
		}},
		{Name: "hashmod", Algorithm: "hashmod", Endpoints: []Endpoint{
			{Address: "bb-4.strata:19291"}, {Address: "bb-0.strata:19291"}, {Address: "bb-2.strata:19291"},
		}},
	}
}

func TestGoldenPlacement(t *testing.T) {
	r := mustRing(t, goldenConfig(), Options{ReplicationFactor: 2})
	hs := r.Hashrings()
	for _, s := range goldenSeries {
		h := HashSeries(s.tenant, labels.FromStrings(s.pairs...))
		if h != s.hash {
			t.Errorf("hash of %q %v = %#x, want %#x", s.tenant, s.pairs, h, s.hash)
			continue
		}
		for i, want := range [][]string{s.ketama, s.ketamaAZ, s.hashmod} {
			var got []string
			for _, id := range hs[i].Owners(h, nil) {
				got = append(got, r.Endpoints()[id].Address)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: owners of %#x = %q, want %q", hs[i].Name(), h, got, want)
			}
		}
	}
}
