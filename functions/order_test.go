package functions_test

import (
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/stratametrics/strata/blockbuilder"
	"github.com/stratametrics/strata/internal/harness"
)

// TestLateCopiesKeepTheirOrder: a sender catching up sends each batch as
// soon as the last one is answered, and the answer comes at quorum, while
// the copy to the slowest replica is still on its way. Every other write
// to that replica is held long, so the next batch would overtake the late
// copy there and have it refused as out of order: the replica would lose
// it. Each replica must end with every sample, and the late answers must
// be counted.
func TestLateCopiesKeepTheirOrder(t *testing.T) {
	c := startCluster(t, 3, 3, nil)
	slow := func(n int32) time.Duration {
		if n%2 == 1 {
			return 150 * time.Millisecond
		}
		return 0
	}
	c.bbs[2].delay.Store(&slow)

	const batches, series = 20, 50
	ts0 := time.Now().Add(-time.Minute).UnixMilli()
	for b := 0; b < batches; b++ {
		resp, body := post(t, c.routerURL, encodeV1(t, seriesV1("catchup", series, ts0+int64(b)*1000)), v1Headers("t"))
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("batch %d: %d %s", b, resp.StatusCode, body)
		}
	}
	c.router.WaitForwards()

	for i, b := range c.bbs {
		if got := samplesIn(t, b.bb, "t"); got != batches*series {
			t.Errorf("block builder %d holds %d samples, want %d", i, got, batches*series)
		}
	}
	slowAddr := c.bbs[2].addr
	answers := map[string]float64{}
	for _, m := range c.routerMetric("strata_router_forwards_after_quorum_total") {
		if labelOf(m, "endpoint") == slowAddr {
			answers[labelOf(m, "result")] = m.Counter.GetValue()
		}
	}
	if answers["written"] == 0 || answers["refused"] != 0 || answers["failed"] != 0 {
		t.Errorf("late answers of the slow block builder: %v; want some written, none refused or failed", answers)
	}
	total := 0.0
	for _, m := range c.routerMetric("strata_router_forwards_total") {
		total += m.Counter.GetValue()
	}
	if total != 3*batches {
		t.Errorf("strata_router_forwards_total sums to %v, want %d (every part of every batch)", total, 3*batches)
	}
}

// TestLateRefusalsAreCounted: a replica that refuses a write after the
// request was answered is a replica missing data; its refusal must show
// in the router's metrics like one that came before the answer.
func TestLateRefusalsAreCounted(t *testing.T) {
	c := startCluster(t, 3, 3, nil)
	ts := time.Now().Add(-time.Minute).UnixMilli()
	// Block builder 2 alone holds a newer sample of every series, so it
	// refuses the router's older ones as out of order; and it answers
	// last.
	if resp, body := post(t, c.bbs[2].url(), encodeV1(t, seriesV1("late", 10, ts+1000)), v1Headers("t")); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("direct write: %d %s", resp.StatusCode, body)
	}
	slow := func(int32) time.Duration { return 200 * time.Millisecond }
	c.bbs[2].delay.Store(&slow)
	if resp, body := post(t, c.routerURL, encodeV1(t, seriesV1("late", 10, ts)), v1Headers("t")); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %d %s", resp.StatusCode, body)
	}
	c.router.WaitForwards()
	slowAddr := c.bbs[2].addr
	var refused float64
	for _, m := range c.routerMetric("strata_router_forwards_after_quorum_total") {
		if labelOf(m, "endpoint") == slowAddr && labelOf(m, "result") == "refused" {
			refused = m.Counter.GetValue()
		}
	}
	if refused != 1 {
		t.Errorf("late refused answers of block builder 2: %v, want 1", refused)
	}
	if got := c.routerMetric("strata_router_minority_rejections_total")[0].Counter.GetValue(); got != 10 {
		t.Errorf("strata_router_minority_rejections_total = %v, want 10", got)
	}
}

// samplesIn counts the float samples a block builder holds for a tenant.
func samplesIn(t *testing.T, bb *blockbuilder.BlockBuilder, tenant string) int {
	t.Helper()
	v, ok := bb.Tenant(tenant)
	if !ok {
		return 0
	}
	q, err := v.DB.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range harness.QuerierSamples(t, q) {
		n += len(m)
	}
	return n
}
