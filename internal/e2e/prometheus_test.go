package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/remotewrite"
)

// TestPrometheusEndToEnd: a real Prometheus scrapes a target and
// remote-writes it to a router in front of four block builders (RF=3),
// once with remote-write 1.0 and once with 2.0, each to its own tenant.
// With more block builders than RF the router sends each one framed
// parts (its series grouped by their owners); the test checks it did.
// Blocks are cut every minute and uploaded to a real S3 server. What
// Prometheus' own counters say it sent must be exactly what the uploaded
// blocks hold, per tenant, replicas deduplicated; each sample must be in
// one block of each of its 3 replicas, and the Thanos Compactor must take
// the bucket.
func TestPrometheusEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	promBin := harness.Tool(t, "prometheus")
	s3 := harness.StartS3(t)
	var bbs []*harness.Component
	const blockBuilders, rf, gauges = 4, 3, 400 // 4 owner sets of ~100 series a scrape: enough for framed parts
	for i := 0; i < blockBuilders; i++ {
		bbs = append(bbs, harness.StartBlockBuilder(t, fmt.Sprintf("blockbuilder-%d", i), s3.Env(), "STRATA_BLOCK_DURATION=1m"))
	}
	router := harness.StartRouter(t, bbs, rf)

	target, scrapes := startGauges(t, "e2e_gauge", gauges)

	dir := t.TempDir()
	promAddr := harness.FreeAddr(t)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	writeConfig := func(scrape bool) {
		t.Helper()
		var b strings.Builder
		b.WriteString("global:\n  scrape_interval: 1s\n")
		if scrape {
			fmt.Fprintf(&b, "scrape_configs:\n  - job_name: e2e\n    static_configs:\n      - targets: ['%s']\n", strings.TrimPrefix(target.URL, "http://"))
		}
		b.WriteString("remote_write:\n")
		for _, q := range []struct{ name, msg string }{{"v1", "prometheus.WriteRequest"}, {"v2", "io.prometheus.write.v2.Request"}} {
			fmt.Fprintf(&b, "  - name: %s\n    url: %s\n    protobuf_message: %s\n    headers:\n      THANOS-TENANT: e2e-%s\n"+
				"    queue_config:\n      batch_send_deadline: 500ms\n      min_backoff: 100ms\n      max_backoff: 1s\n",
				q.name, router.URL(), q.msg, q.name)
		}
		if err := os.WriteFile(cfgPath, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig(true)
	prom := harness.StartProcess(t, promBin, []string{
		"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + promAddr,
		"--web.enable-lifecycle",
	}, nil)
	prom.WaitHTTP("http://"+promAddr+"/-/ready", 60*time.Second)

	// Scrape long enough to span a block boundary, then stop scraping (the
	// target's series get stale markers, which are sent too) and wait until
	// both queues have sent everything.
	waitFor(t, 2*time.Minute, func() bool { return scrapes.Load() >= 75 })
	writeConfig(false)
	resp, err := http.Post("http://"+promAddr+"/-/reload", "", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("reload Prometheus: %v %v", err, resp)
	}
	resp.Body.Close()
	var sent map[string]float64
	stable := 0
	waitFor(t, 2*time.Minute, func() bool {
		m := readMetrics(t, "http://"+promAddr+"/metrics")
		cur := map[string]float64{}
		for _, q := range []string{"v1", "v2"} {
			queue := harness.Label("remote_name", q)
			if m.Sum("prometheus_remote_storage_samples_pending", queue) != 0 {
				stable = 0
				return false
			}
			for _, name := range []string{"samples_total", "samples_failed_total", "samples_retried_total", "samples_dropped_total"} {
				cur[q+" "+name] = m.Sum("prometheus_remote_storage_"+name, queue)
			}
		}
		if fmt.Sprint(cur) == fmt.Sprint(sent) {
			stable++
		} else {
			stable, sent = 0, cur
		}
		time.Sleep(500 * time.Millisecond)
		return stable >= 6
	})
	prom.Stop()
	if framed := readMetrics(t, "http://"+router.Addr+"/metrics").Sum("strata_router_forwarded_bytes_total", harness.Label("encoding", remotewrite.EncodingSnappyFramed)); framed == 0 {
		t.Error("the router sent no framed parts to block builders that take them")
	}

	bkt := flushedBucket(t, s3, bbs)
	got, blocks := harness.BucketSamples(t, bkt, "tenant_id", "receive_replica")
	replicas := map[string]bool{}
	for _, b := range blocks {
		replicas[b.Replica] = true
	}
	if len(replicas) != blockBuilders {
		t.Fatalf("blocks from replicas %v, want %d", replicas, blockBuilders)
	}
	for _, q := range []string{"v1", "v2"} {
		total, failed, retried, dropped := sent[q+" samples_total"], sent[q+" samples_failed_total"], sent[q+" samples_retried_total"], sent[q+" samples_dropped_total"]
		if failed != 0 || dropped != 0 {
			t.Errorf("remote-write %s: %v samples failed, %v dropped", q, failed, dropped)
		}
		want := int(total - retried)
		have := got.TenantCount("e2e-" + q)
		t.Logf("remote-write %s: Prometheus sent %d samples (%v attempts, %v retried); the bucket holds %d for tenant e2e-%s", q, want, total, retried, have, q)
		if want < 75*gauges {
			t.Fatalf("remote-write %s: only %d samples sent", q, want)
		}
		if have != want {
			t.Errorf("remote-write %s: bucket holds %d samples, Prometheus sent %d", q, have, want)
		}
	}

	// Every sample is in exactly RF blocks, one from each replica that
	// owns its series, and the unmodified Thanos Compactor takes the
	// bucket as it is.
	occ, live := harness.CountLiveSamples(t, bkt, "tenant_id", "receive_replica")
	if n, examples := occ.NotIn(rf); n > 0 {
		t.Errorf("%d samples not in exactly %d blocks (one per replica), e.g. %v", n, rf, examples)
	}
	run, err := s3.ThanosCompact(t)
	if err != nil {
		t.Fatalf("the Thanos Compactor refused the bucket: %v", err)
	}
	if run.Synced != len(live.Blocks) {
		t.Errorf("the Thanos Compactor saw %d blocks of the %d in the bucket:\n%s", run.Synced, len(live.Blocks), run.Log)
	}
}

// startGauges serves n gauges of one metric whose values change every
// scrape, and counts the scrapes.
func startGauges(t *testing.T, metric string, n int) (*httptest.Server, *atomic.Int64) {
	scrapes := &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		k := scrapes.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP %s A gauge that changes every scrape.\n# TYPE %s gauge\n", metric, metric)
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "%s{n=\"%03d\"} %d\n", metric, i, k*1000+int64(i))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, scrapes
}
