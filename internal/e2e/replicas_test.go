package e2e

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/loadgen"
)

// TestCatchUpSenderFillsEveryReplica: a sender catching up (hours of
// backlog, each batch sent as soon as the last one is answered, as
// Prometheus does after an outage) into a router and three block builders
// at RF=3. The router answers at quorum while the third copy is on its
// way; the next batch must not overtake it there. Every acknowledged
// sample must be in the blocks of every one of the three replicas.
func TestCatchUpSenderFillsEveryReplica(t *testing.T) {
	s3 := harness.StartS3(t)
	bbs := startBlockBuilders(t, s3, 3)
	router := harness.StartRouter(t, bbs, 3)

	var (
		mu    sync.Mutex
		acked = map[loadgen.SeriesID]map[int64]float64{}
	)
	cfg := loadgen.DefaultConfig()
	cfg.URL = router.URL()
	cfg.Tenant = "catchup"
	cfg.Series = 1000
	cfg.Interval = time.Minute
	cfg.Backfill = 6 * time.Hour
	cfg.Rounds = 300
	cfg.Concurrency = 2
	cfg.Duration = 0
	cfg.Acked = func(id loadgen.SeriesID, ts int64, v float64) {
		mu.Lock()
		m := acked[id]
		if m == nil {
			m = map[int64]float64{}
			acked[id] = m
		}
		m[ts] = v
		mu.Unlock()
	}
	rep, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.DroppedSamples != 0 || rep.AbandonedSamples != 0 {
		t.Fatalf("load: %d samples dropped, %d abandoned; errors %v", rep.DroppedSamples, rep.AbandonedSamples, rep.Errors)
	}
	routerCounters := readMetrics(t, "http://"+router.Addr+"/metrics")
	replicas := flushReplicas(t, s3, bbs, "catchup")
	missing := 0
	var examples []string
	for replica, got := range replicas {
		for id, m := range acked {
			for ts, v := range m {
				if gv, ok := got[id.String()][ts]; ok && (gv == v || math.IsNaN(gv) && math.IsNaN(v)) {
					continue
				}
				if missing++; len(examples) < 5 {
					examples = append(examples, fmt.Sprintf("%s: %s@%d", replica, id, ts))
				}
			}
		}
	}
	total := 0
	for _, m := range acked {
		total += len(m)
	}
	t.Logf("%d samples acknowledged; router: %v forwards answered after quorum, %v minority rejections",
		total, routerCounters.Sum("strata_router_forwards_after_quorum_total", nil), routerCounters.Sum("strata_router_minority_rejections_total", nil))
	if missing > 0 {
		t.Fatalf("%d acknowledged samples are missing from a replica (of %d, on 3 replicas), e.g. %s", missing, total, strings.Join(examples, "; "))
	}
	if r := routerCounters.Sum("strata_router_minority_rejections_total", nil); r != 0 {
		t.Errorf("strata_router_minority_rejections_total = %v, want 0: a replica refused writes", r)
	}
}

// TestPrometheusBacklogFillsEveryReplica: a real Prometheus scrapes while
// its router is down for a minute, then replays the backlog from its WAL
// as fast as the router answers. Every sample it sent must be in the
// blocks of every one of the three replicas.
func TestPrometheusBacklogFillsEveryReplica(t *testing.T) {
	promBin := harness.Tool(t, "prometheus")
	s3 := harness.StartS3(t)
	bbs := startBlockBuilders(t, s3, 3)
	router := harness.StartRouter(t, bbs, 3)

	target, scrapes := startGauges(t, "backlog_gauge", 500)
	dir := t.TempDir()
	promAddr := harness.FreeAddr(t)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	// Small batches and several shards: the backlog goes as many batches
	// in a row, each sent when the last one of its shard is answered.
	conf := fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: backlog
    static_configs:
      - targets: ['%s']
remote_write:
  - url: %s
    headers:
      THANOS-TENANT: backlog
    queue_config:
      max_samples_per_send: 200
      min_shards: 4
      batch_send_deadline: 500ms
      min_backoff: 100ms
      max_backoff: 1s
`, strings.TrimPrefix(target.URL, "http://"), router.URL())
	if err := os.WriteFile(cfgPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	prom := harness.StartProcess(t, promBin, []string{
		"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + promAddr,
	}, nil)
	prom.WaitHTTP("http://"+promAddr+"/-/ready", 60*time.Second)
	waitFor(t, time.Minute, func() bool { return scrapes.Load() >= 10 })

	if err := router.Stop(); err != nil {
		t.Fatalf("router: %v", err)
	}
	time.Sleep(time.Minute)
	router.Start()
	router.WaitReady(time.Minute)
	// Let Prometheus catch up, then stop scraping by stopping it once its
	// queue has sent everything it read.
	var m harness.Metrics
	waitFor(t, 3*time.Minute, func() bool {
		m = readMetrics(t, "http://"+promAddr+"/metrics")
		behind := m.Sum("prometheus_remote_storage_highest_timestamp_in_seconds", nil) - m.Sum("prometheus_remote_storage_queue_highest_sent_timestamp_seconds", nil)
		return m.Sum("prometheus_remote_storage_samples_total", nil) > 0 && behind <= 2
	})
	if err := prom.Stop(); err != nil {
		t.Fatalf("prometheus: %v", err)
	}
	// What Prometheus had sent by then, all of it answered: samples
	// scraped after that may not have been sent.
	sentUntil := int64(m.Sum("prometheus_remote_storage_queue_highest_sent_timestamp_seconds", nil) * 1000)
	if m.Sum("prometheus_remote_storage_samples_failed_total", nil) != 0 || m.Sum("prometheus_remote_storage_samples_dropped_total", nil) != 0 {
		t.Errorf("Prometheus: %v samples failed, %v dropped", m.Sum("prometheus_remote_storage_samples_failed_total", nil), m.Sum("prometheus_remote_storage_samples_dropped_total", nil))
	}
	routerCounters := readMetrics(t, "http://"+router.Addr+"/metrics")
	replicas := flushReplicas(t, s3, bbs, "backlog")
	// Prometheus' TSDB holds what it scraped: every sample of the target
	// it had sent must be in each replica.
	want := promSamples(t, filepath.Join(dir, "data"), "backlog_gauge", sentUntil)
	wantN := 0
	for _, m := range want {
		wantN += len(m)
	}
	t.Logf("Prometheus sent %d samples of %d series, a minute of them while the router was down", wantN, len(want))
	if wantN < 500*60 {
		t.Fatalf("Prometheus stored only %d samples", wantN)
	}
	for replica, got := range replicas {
		missing := 0
		var example string
		for series, m := range want {
			for ts := range m {
				if _, ok := got[series][ts]; !ok {
					if missing++; example == "" {
						example = fmt.Sprintf("%s@%d", series, ts)
					}
				}
			}
		}
		t.Logf("replica %s: %d of the samples Prometheus sent missing", replica, missing)
		if missing > 0 {
			t.Errorf("replica %s misses %d samples Prometheus scraped and sent, e.g. %s", replica, missing, example)
		}
	}
	t.Logf("router: %v forwards answered after quorum, %v minority rejections",
		routerCounters.Sum("strata_router_forwards_after_quorum_total", nil), routerCounters.Sum("strata_router_minority_rejections_total", nil))
}

// startBlockBuilders starts n block builders on one S3 bucket.
func startBlockBuilders(t *testing.T, s3 *harness.S3, n int) []*harness.Component {
	var bbs []*harness.Component
	for i := 0; i < n; i++ {
		bbs = append(bbs, harness.StartBlockBuilder(t, fmt.Sprintf("blockbuilder-%d", i), s3.Env()))
	}
	return bbs
}

// flushReplicas stops every block builder gracefully (each uploads all
// it holds) and returns each replica's samples of one tenant.
func flushReplicas(t *testing.T, s3 *harness.S3, bbs []*harness.Component, tenant string) map[string]map[string]map[int64]float64 {
	t.Helper()
	bkt := flushedBucket(t, s3, bbs)
	c := harness.ReadBucket(t, bkt, "tenant_id", "receive_replica")
	out := map[string]map[string]map[int64]float64{}
	for replica, s := range c.Replicas {
		out[replica] = s[tenant]
	}
	if len(out) != len(bbs) {
		t.Fatalf("blocks of %d replicas in the bucket, want %d", len(out), len(bbs))
	}
	return out
}

// promSamples reads the samples of one metric up to a time (ms) from a
// stopped Prometheus' TSDB, by series (labels as a string).
func promSamples(t *testing.T, dir, metric string, until int64) map[string]map[int64]float64 {
	t.Helper()
	db, err := tsdb.OpenDBReadOnly(dir, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := db.Querier(math.MinInt64, until)
	if err != nil {
		t.Fatal(err)
	}
	return harness.QuerierSamples(t, q, labels.MustNewMatcher(labels.MatchEqual, "__name__", metric))
}
