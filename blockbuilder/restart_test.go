package blockbuilder

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/stratametrics/strata/internal/harness"
)

// TestGracefulRestartsLeaveNoOverlap: a block builder stopped gracefully
// at several points inside one block range (early, in the middle, a
// second before its end) flushes its head each time, and the blocks cut
// after each restart begin where the flushed one ended: no two blocks of
// the stream cover the same time, which the Thanos Compactor would refuse
// without vertical compaction, and every sample is in the bucket. The
// flushed head's WAL is dropped at each stop, so that the next start has
// nothing to replay.
func TestGracefulRestartsLeaveNoOverlap(t *testing.T) {
	dir := t.TempDir()
	bkt, _ := filesystem.NewBucket(t.TempDir())
	rangeMs := time.Minute.Milliseconds()
	base := alignDown(time.Now().Add(-30*time.Minute).UnixMilli(), rangeMs)
	var sent []*prompb.WriteRequest
	from := base
	// Each stop comes after the samples up to its offset in the range; the
	// last run goes on into the next range.
	for _, until := range []int64{base + 5_000, base + 30_000, base + 59_000, base + rangeMs + 20_000} {
		b := newTestBlockBuilder(t, bkt, nil, func(c *Config) { c.DataDir = dir })
		for ts := from; ts <= until; ts += 1000 {
			req := minuteSeries(3, ts, time.Second) // one sample a series, at ts
			if w := send(t, b.Handler(), "r", req, false); w.Code != http.StatusNoContent {
				t.Fatalf("write at %d: %d %s", ts-base, w.Code, w.Body)
			}
			sent = append(sent, req)
		}
		if err := b.shutdown(); err != nil {
			t.Fatalf("graceful stop after %d ms of the range: %v", until-base, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "r", "wal")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("after a graceful stop, the flushed head's WAL is still there (stat: %v)", err)
		}
		from = until + 1000
	}
	got, infos := harness.BucketSamples(t, bkt, "tenant_id", "receive_replica")
	compareSamples(t, got["r"], expected(sent...))
	slices.SortFunc(infos, func(a, b harness.BlockInfo) int { return int(a.Meta.MinTime - b.Meta.MinTime) })
	var ranges []string
	for _, in := range infos {
		ranges = append(ranges, fmt.Sprintf("[%d, %d)", in.Meta.MinTime-base, in.Meta.MaxTime-base))
	}
	for i := 1; i < len(infos); i++ {
		if infos[i].Meta.MinTime < infos[i-1].Meta.MaxTime {
			t.Fatalf("blocks overlap (ms from the range's start): %v", ranges)
		}
	}
	if len(infos) < 4 {
		t.Fatalf("%d blocks, want one a run at least: %v", len(infos), ranges)
	}
	t.Logf("blocks (ms from the range's start): %v", ranges)
}
