package blockbuilder

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/stratametrics/strata/internal/harness"
)

// TestFailedWALIsRenewed: writes that fail because the disk is full leave
// Prometheus' WAL with the first part of a record whose rest is never
// written, and the next successful write lands after it, where the WAL's
// reader stops (and its repair at the next open deletes it). Once space
// is back the failed writes are retried and taken; walRenewalDelay later
// the block builder flushes the head into blocks and starts a new WAL,
// and writes go on there: the WAL reads back whole, the graceful stop
// succeeds, and every acknowledged sample is in the bucket.
func TestFailedWALIsRenewed(t *testing.T) {
	// Room for a block's preallocated chunk file (64 MiB) once the filler
	// is gone.
	dir := harness.SmallFileSystem(t, "96m")
	bkt, _ := filesystem.NewBucket(t.TempDir())
	reg := prometheus.NewRegistry()
	data := filepath.Join(dir, "data")
	b := newTestBlockBuilder(t, bkt, reg, func(c *Config) { c.DataDir = data })

	base := time.Now().Add(-10 * time.Minute).UnixMilli()
	var acked, failedReqs []*prompb.WriteRequest
	send := func(req *prompb.WriteRequest) int {
		w := send(t, b.Handler(), "full", req, false)
		switch w.Code {
		case http.StatusNoContent:
			acked = append(acked, req)
		case http.StatusServiceUnavailable:
			failedReqs = append(failedReqs, req)
		}
		return w.Code
	}
	// Each request brings new series, so that its WAL record of series
	// spans several 32 kB pages of the WAL.
	write := func(i int) int {
		req := &prompb.WriteRequest{}
		for s := range 2000 {
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels:  []prompb.Label{{Name: "__name__", Value: "bb_test_metric"}, {Name: "pod", Value: fmt.Sprintf("pod-%03d-%04d", i, s)}},
				Samples: []prompb.Sample{{Timestamp: base + int64(i)*1000, Value: float64(i)}},
			})
		}
		return send(req)
	}
	i := 0
	for ; i < 5; i++ {
		if code := write(i); code != http.StatusNoContent {
			t.Fatalf("write %d before the disk fills: %d", i, code)
		}
	}
	free := harness.Fill(t, dir)
	failed := 0
	for ; i < 10; i++ {
		if code := write(i); code == http.StatusServiceUnavailable {
			failed++
		} else if code != http.StatusNoContent {
			t.Fatalf("write %d with the disk full: %d, want 503 (retryable)", i, code)
		}
	}
	if failed == 0 {
		t.Fatal("no write failed with the disk full")
	}
	free()
	// The senders retry what failed, and it is taken: the renewal waits.
	retries := failedReqs
	failedReqs = nil
	for k, req := range retries {
		if code := send(req); code != http.StatusNoContent {
			t.Fatalf("retry %d after space is back: %d", k, code)
		}
	}
	for ; i < 12; i++ {
		if code := write(i); code != http.StatusNoContent {
			t.Fatalf("write %d after space is back: %d", i, code)
		}
	}
	clock := useTestClock(b)
	b.maintain(context.Background())
	if n := gauge(t, reg, "strata_blockbuilder_wal_renewals_total"); n != 0 {
		t.Fatalf("%v WAL renewals right after the failure, want none before walRenewalDelay", n)
	}
	clock.Add(walRenewalDelay + time.Second)
	b.maintain(context.Background())
	if n := gauge(t, reg, "strata_blockbuilder_wal_renewals_total"); n != 1 {
		t.Fatalf("%v WAL renewals, want 1", n)
	}
	for ; i < 15; i++ {
		if code := write(i); code != http.StatusNoContent {
			t.Fatalf("write %d after the renewal: %d", i, code)
		}
	}
	// What a crash now would replay: the WAL must read back whole.
	sr, err := wlog.NewSegmentsReader(filepath.Join(data, "full", "wal"))
	if err != nil {
		t.Fatal(err)
	}
	r := wlog.NewReader(sr)
	records := 0
	for r.Next() {
		records++
	}
	if err := r.Err(); err != nil {
		t.Fatalf("the WAL written after the failure does not read back: %v", err)
	}
	sr.Close()
	if records == 0 {
		t.Fatal("the writes after the failure are not in the WAL")
	}
	if err := b.shutdown(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	got, _ := harness.BucketSamples(t, bkt, "tenant_id", "receive_replica")
	compareSamples(t, got["full"], expected(acked...))
	t.Logf("%d writes acknowledged, %d refused with the disk full and retried, %d WAL records after the renewal", len(acked), failed, records)
}
