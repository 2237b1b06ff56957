package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/stratametrics/strata/app/dev"
	"github.com/stratametrics/strata/internal/harness"
)

// TestDevFlushesOnSIGTERM runs `strata dev` as `make run` does (on a free
// port), writes through its router, and stops it with SIGTERM: it must
// exit 0 with every acknowledged sample in its filesystem bucket, once per
// block builder (three replicas, each its own replica label).
func TestDevFlushesOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	addr := harness.FreeAddrs(t, dev.Ports(3)) // the router's, then 3 block builders' HTTP and StoreAPI
	proc := harness.StartProcess(t, harness.Tool(t, "strata"), []string{"dev", "-data-dir", dir, "-listen", addr}, nil)
	proc.WaitHTTP("http://"+addr+"/-/ready", time.Minute)

	ack := newAcked()
	now := time.Now().UnixMilli()
	for i := 0; i < 20; i++ {
		req := batch("dev_metric", 100, now+int64(i)*1000)
		if code := write("http://"+addr+"/api/v1/receive", "team-a", req); code != http.StatusNoContent {
			t.Fatalf("write %d: status %d", i, code)
		}
		ack.add(req)
	}
	if !readMetrics(t, "http://"+addr+"/metrics").Has("strata_router_requests_total") {
		t.Fatal("the router's /metrics does not show its metrics")
	}

	if err := proc.StopWithin(2 * time.Minute); err != nil {
		t.Fatalf("strata dev did not exit 0 on SIGTERM: %v", err)
	}
	bkt, err := filesystem.NewBucket(filepath.Join(dir, "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	got, blocks := harness.BucketSamples(t, bkt, "tenant_id", "receive_replica")
	if miss := ack.missing(got["team-a"]); len(miss) > 0 {
		t.Fatalf("%d acknowledged samples not in the bucket after SIGTERM, e.g. %v", len(miss), miss[:min(3, len(miss))])
	}
	replicas := map[string]bool{}
	for _, b := range blocks {
		replicas[b.Replica] = true
	}
	for i := 0; i < 3; i++ {
		if r := fmt.Sprintf("blockbuilder-%d", i); !replicas[r] {
			t.Errorf("no block from replica %s: %v", r, replicas)
		}
	}
}
