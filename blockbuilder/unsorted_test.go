package blockbuilder

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/stratametrics/strata/internal/harness"
)

// TestUnsortedLabelsAreOneSeries: a series written to a block builder
// directly with its labels sorted, then reversed, is one series of the
// head: the reversed writes are neither refused nor counted as new series
// against STRATA_MAX_SERIES_PER_TENANT, which here leaves no room for
// one more, and the bucket holds every sample under the sorted labels.
func TestUnsortedLabelsAreOneSeries(t *testing.T) {
	const n = 5
	bkt, _ := filesystem.NewBucket(t.TempDir())
	b := newTestBlockBuilder(t, bkt, nil, func(c *Config) { c.MaxSeriesPerTenant = n })
	start := time.Now().Add(-2 * time.Minute).UnixMilli()
	sorted := minuteSeries(n, start, 30*time.Second)
	reversed := []*prompb.WriteRequest{minuteSeries(n, start+30000, 30*time.Second), minuteSeries(n, start+60000, 30*time.Second)}
	for _, r := range reversed {
		for i := range r.Timeseries {
			slices.Reverse(r.Timeseries[i].Labels)
		}
	}
	for i, req := range append([]*prompb.WriteRequest{sorted}, reversed...) {
		if w := send(t, b.Handler(), "u", req, false); w.Code != http.StatusNoContent {
			t.Fatalf("write %d: %d %s", i, w.Code, w.Body)
		}
	}
	view, ok := b.Tenant("u")
	if !ok {
		t.Fatal("tenant u is not open")
	}
	if got := view.DB.Head().NumSeries(); got != n {
		t.Fatalf("%d series in the head, want %d", got, n)
	}
	if err := b.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, _ := harness.BucketSamples(t, bkt, "tenant_id", "receive_replica")
	for _, r := range reversed {
		for i := range r.Timeseries {
			slices.Reverse(r.Timeseries[i].Labels)
		}
	}
	compareSamples(t, got["u"], expected(append([]*prompb.WriteRequest{sorted}, reversed...)...))
}
