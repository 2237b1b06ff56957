package storeapi_test

import (
	"testing"

	"github.com/stratametrics/strata/blockbuilder/storeapi"
)

// BenchmarkSeriesRequestUnmarshal measures the decoding the server does at
// the start of every Series call: a request as Thanos Query sends it.
func BenchmarkSeriesRequestUnmarshal(b *testing.B) {
	req := storeapi.SeriesRequest{
		MinTime: 1700000000000, MaxTime: 1700003600000,
		Matchers: []storeapi.LabelMatcher{
			{Type: storeapi.MatchEQ, Name: "__name__", Value: "http_requests_total"},
			{Type: storeapi.MatchRE, Name: "job", Value: "api|web"},
			{Type: storeapi.MatchNEQ, Name: "tenant_id", Value: "team-b"},
		},
		PartialResponseStrategy: 1,
		WithoutReplicaLabels:    []string{"receive_replica"},
		ResponseBatchSize:       64,
	}
	data := req.AppendMarshal(nil)
	b.ReportAllocs()
	var got storeapi.SeriesRequest
	for range b.N {
		if err := got.Unmarshal(data); err != nil {
			b.Fatal(err)
		}
	}
}
