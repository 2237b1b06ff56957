package functions_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stratametrics/strata/remotewrite"
)

// TestFramedForwards: over 6 block builders at RF=3 the router learns
// from the block builders' first answers that they take framed bodies,
// and sends them from then on, 1.0 and 2.0 alike. Then one block builder
// is rolled back to a release without them (415 to a framed body, no
// Accept-Encoding): it gets its next part again as a snappy block, and
// blocks from then on. Every replica stores every sample throughout.
func TestFramedForwards(t *testing.T) {
	c := startCluster(t, 6, 3, nil)
	const n, rounds = 2000, 8
	now := time.Now().Add(-time.Minute).UnixMilli()
	send := func(round int) {
		t.Helper()
		ts := now + int64(round)*1000
		body, headers := encodeV1(t, seriesV1("fv1", n, ts)), v1Headers("f")
		if round%2 == 1 {
			body, headers = encodeV2(t, seriesV2("fv2", n, ts)), v2Headers("f")
		}
		if resp, answer := post(t, c.routerURL, body, headers); resp.StatusCode != 204 {
			t.Fatalf("round %d: %d %s", round, resp.StatusCode, answer)
		}
	}
	framedBytes := func() float64 {
		for _, m := range c.routerMetric("strata_router_forwarded_bytes_total") {
			if labelOf(m, "encoding") == remotewrite.EncodingSnappyFramed {
				return m.Counter.GetValue()
			}
		}
		return 0
	}
	for round := 0; round < rounds/2; round++ {
		send(round)
	}
	c.router.WaitForwards()
	if framedBytes() == 0 {
		t.Fatal("no framed bodies sent to block builders that take them")
	}

	old := c.bbs[0]
	old.mode.Store(modeOldRelease)
	for round := rounds / 2; round < rounds; round++ {
		send(round)
	}
	c.router.WaitForwards()
	if got := old.refusedFramed.Load(); got != 1 {
		t.Fatalf("the rolled back block builder refused %d framed bodies, want 1 (the router's next ones are blocks)", got)
	}
	for _, m := range c.routerMetric("strata_router_forwards_total") {
		if labelOf(m, "endpoint") == old.addr && labelOf(m, "result") != "written" && m.Counter.GetValue() > 0 {
			for _, e := range c.routerMetric("strata_router_forward_errors_total") {
				t.Logf("error %s %s %v", labelOf(e, "endpoint"), labelOf(e, "reason"), e.Counter.GetValue())
			}
			t.Fatalf("forwards to the rolled back block builder: %v %s", m.Counter.GetValue(), labelOf(m, "result"))
		}
	}

	c.flush()
	got, blocks := c.bucketSamples()
	if len(got["f"]) != 2*n {
		t.Fatalf("%d series in the bucket, want %d", len(got["f"]), 2*n)
	}
	for series, samples := range got["f"] {
		if len(samples) != rounds/2 {
			t.Fatalf("series %s has %d samples, want %d", series, len(samples), rounds/2)
		}
	}
	perReplica := map[string]uint64{}
	var stored uint64
	for _, b := range blocks {
		perReplica[b.Replica] += b.Meta.Stats.NumSamples
		stored += b.Meta.Stats.NumSamples
	}
	// Every part was answered (WaitForwards): three copies of each.
	if want := uint64(3 * 2 * n * rounds / 2); stored != want {
		t.Fatalf("blocks hold %d samples, want %d (RF=3); per replica %v", stored, want, perReplica)
	}
	if perReplica["bb-0"] == 0 {
		t.Fatalf("nothing from the rolled back block builder: %v", perReplica)
	}
	t.Logf("framed bytes %v, samples per replica %s", framedBytes(), fmt.Sprint(perReplica))
}
