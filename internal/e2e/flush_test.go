package e2e

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/internal/harness"
)

const (
	flushTenant = "flush"
	retryLine   = "upload at shutdown failed; retrying until the flush timeout"
)

// writeAcked writes n one-second steps of 50 series, ending now, and
// returns what was acknowledged: minutes of samples, so that some blocks
// are cut and uploaded while the block builder runs and the rest is in
// the head its graceful stop flushes.
func writeAcked(t *testing.T, bb *harness.Component, n int) *acked {
	t.Helper()
	ack := newAcked()
	start := time.Now().Add(-time.Duration(n) * time.Second).UnixMilli()
	for i := range n {
		req := batch("flush_metric", 50, start+int64(i)*1000)
		if code := write(bb.URL(), flushTenant, req); code != http.StatusNoContent {
			t.Fatalf("write %d: status %d", i, code)
		}
		ack.add(req)
	}
	return ack
}

// checkBucketHolds fails unless the bucket holds every acknowledged sample.
func checkBucketHolds(t *testing.T, s3 *harness.S3, ack *acked) {
	t.Helper()
	bkt, err := s3.BucketConfig().Open(context.Background(), quiet, nil, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := harness.BucketSamples(t, bkt, "tenant_id", "receive_replica")
	if miss := ack.missing(got[flushTenant]); len(miss) > 0 {
		t.Fatalf("%d of %d acknowledged samples missing from the bucket, e.g. %v", len(miss), ack.count(), miss[:min(5, len(miss))])
	}
}

// running tells whether the process is still there (signal 0 checks).
func running(p *harness.Process) bool { return p.Signal(syscall.Signal(0)) == nil }

// TestFlushWaitsForBucket: a block builder gets SIGTERM while S3 is down,
// for less than STRATA_FLUSH_TIMEOUT. It does not give up after one try:
// it keeps running, logging its retries, uploads everything once S3 is
// back and exits 0, and the bucket holds every acknowledged sample. A
// pod that goes away for good (a scale-down) then leaves nothing behind.
func TestFlushWaitsForBucket(t *testing.T) {
	s3 := harness.StartS3(t)
	bb := harness.StartBlockBuilder(t, "flush-0", s3.Env(), "STRATA_BLOCK_DURATION=1m", "STRATA_FLUSH_TIMEOUT=2m")
	ack := writeAcked(t, bb, 150)

	s3.Stop()
	if err := bb.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, func() bool { return strings.Count(bb.Logs(), retryLine) >= 2 })
	if !running(bb.Process) {
		t.Fatalf("block builder exited while S3 was down, within its flush timeout")
	}
	s3.Start()
	if err := bb.Wait(4 * time.Minute); err != nil {
		t.Fatalf("block builder exit once S3 was back: %v, want status 0", err)
	}
	if logs := bb.Logs(); !strings.Contains(logs, "flushed and uploaded everything") || strings.Contains(logs, "flush incomplete") {
		t.Fatal("the log does not say everything was uploaded")
	}
	checkBucketHolds(t, s3, ack)
}

// TestFlushTimeoutLeavesBlocksForNextStart: with S3 down for longer than
// STRATA_FLUSH_TIMEOUT, the block builder exits non-zero once it has
// passed, its flushed blocks on its data directory; started again on
// that directory with S3 back, it uploads them: what an operator does
// after a scale-down whose pod could not upload (scale back up, or run a
// block builder on the volume).
func TestFlushTimeoutLeavesBlocksForNextStart(t *testing.T) {
	s3 := harness.StartS3(t)
	bb := harness.StartBlockBuilder(t, "flush-1", s3.Env(), "STRATA_BLOCK_DURATION=1m", "STRATA_FLUSH_TIMEOUT=5s")
	ack := writeAcked(t, bb, 150)

	s3.Stop()
	err := bb.StopWithin(3 * time.Minute)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("block builder exit with S3 down past its flush timeout: %v, want a non-zero status", err)
	}
	if !strings.Contains(bb.Logs(), "flush incomplete; blocks stay on disk") {
		t.Fatal("the log does not say blocks stay on disk")
	}
	if n := blockDirs(t, filepath.Join(bb.DataDir, flushTenant)); n == 0 {
		t.Fatal("no block left on disk by the failed flush")
	}

	s3.Start()
	bb.Start()
	bb.WaitReady(2 * time.Minute)
	if err := bb.StopWithin(4 * time.Minute); err != nil {
		t.Fatalf("block builder stop with S3 up: %v, want status 0", err)
	}
	checkBucketHolds(t, s3, ack)
}

// blockDirs counts the block directories of a TSDB directory.
func blockDirs(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if _, err := ulid.ParseStrict(e.Name()); err == nil && e.IsDir() {
			n++
		}
	}
	return n
}
