package e2e

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratametrics/strata/internal/harness"
)

// TestHAPairPrometheus: two real Prometheus, replicas of one pair as
// kube-prometheus-stack runs them (external labels prometheus and
// prometheus_replica), scrape the same target and write through a load
// balancer without sticky sessions to two routers in front of three block
// builders. The stored series carry no replica label and each is stored
// once; a router and the block builder owning the election restart
// mid-run without a second election; when the elected Prometheus stops,
// the other is elected, and the gap in the stored data is no longer than
// the failover timeout plus a refresh and a scrape interval.
func TestHAPairPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	const timeout = 5 * time.Second
	promBin := harness.Tool(t, "prometheus")
	s3 := harness.StartS3(t)
	var bbs []*harness.Component
	for i := 0; i < 3; i++ {
		bbs = append(bbs, harness.StartBlockBuilder(t, fmt.Sprintf("blockbuilder-%d", i), s3.Env()))
	}
	ha := []string{"STRATA_HA_ACCEPT_SAMPLES=true", "STRATA_HA_CLUSTER_LABEL=prometheus", "STRATA_HA_REPLICA_LABEL=prometheus_replica",
		"STRATA_HA_FAILOVER_TIMEOUT=" + timeout.String()}
	routers := []*harness.Component{harness.StartRouter(t, bbs, 3, ha...), harness.StartRouter(t, bbs, 3, ha...)}
	// The load balancer: each request to the next router.
	var next atomic.Int64
	lb := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		u, _ := url.Parse("http://" + routers[next.Add(1)%2].Addr)
		r.SetURL(u)
	}})
	defer lb.Close()

	target, _ := startGauges(t, "ha_gauge", 10)
	startProm := func(replica string) *harness.Process {
		dir := t.TempDir()
		cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  external_labels: {prometheus: monitoring/k8s, prometheus_replica: %s}
scrape_configs:
  - job_name: ha
    static_configs: [{targets: ['%s']}]
remote_write:
  - url: %s/api/v1/receive
    queue_config: {batch_send_deadline: 200ms, min_backoff: 100ms, max_backoff: 500ms}
`, replica, strings.TrimPrefix(target.URL, "http://"), lb.URL)
		path := filepath.Join(dir, "prometheus.yml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		addr := harness.FreeAddr(t)
		p := harness.StartProcess(t, promBin, []string{"--config.file=" + path, "--storage.tsdb.path=" + filepath.Join(dir, "data"), "--web.listen-address=" + addr}, nil)
		p.WaitHTTP("http://"+addr+"/-/ready", 60*time.Second)
		return p
	}
	// elected is the replica the block builders' metrics name, and the
	// block builder holding the election.
	elected := func() (string, int) {
		for i, b := range bbs {
			m, err := harness.ScrapeMetrics(context.Background(), "http://"+b.Addr+"/metrics")
			if err != nil {
				continue // restarting
			}
			if mf := m["strata_blockbuilder_ha_elected_replica"]; mf != nil {
				for _, s := range mf.Metric {
					for _, l := range s.Label {
						if l.GetName() == "replica" {
							return l.GetValue(), i
						}
					}
				}
			}
		}
		return "", -1
	}
	failovers := func() float64 {
		n := 0.0
		for _, b := range bbs {
			n += readMetrics(t, "http://"+b.Addr+"/metrics").Sum("strata_blockbuilder_ha_elections_total", func(l map[string]string) bool { return l["kind"] == "failover" })
		}
		return n
	}

	first := startProm("prometheus-k8s-0")
	waitFor(t, 30*time.Second, func() bool { r, _ := elected(); return r == "prometheus-k8s-0" })
	second := startProm("prometheus-k8s-1")
	time.Sleep(4 * time.Second)
	_, owner := elected()
	routers[0].Restart()
	routers[0].WaitReady(30 * time.Second)
	bbs[owner].Restart()
	bbs[owner].WaitReady(60 * time.Second)
	time.Sleep(4 * time.Second)
	if r, _ := elected(); r != "prometheus-k8s-0" || failovers() != 0 {
		t.Fatalf("after a router and the election's owner restarted: %q elected, %v failovers; want prometheus-k8s-0 and none", r, failovers())
	}
	if err := first.Stop(); err != nil {
		t.Logf("stop the elected Prometheus: %v", err)
	}
	waitFor(t, timeout+30*time.Second, func() bool { r, _ := elected(); return r == "prometheus-k8s-1" })
	time.Sleep(3 * time.Second)
	if err := second.Stop(); err != nil {
		t.Logf("stop the second Prometheus: %v", err)
	}
	bkt := flushedBucket(t, s3, bbs)
	got, _ := harness.BucketSamples(t, bkt, "tenant_id", "receive_replica")
	gauges := 0
	for s, samples := range got["default-tenant"] {
		if strings.Contains(s, "prometheus_replica") {
			t.Fatalf("stored series %s keeps the replica label", s)
		}
		if !strings.Contains(s, `prometheus="monitoring/k8s"`) {
			t.Fatalf("stored series %s lost the cluster label", s)
		}
		if !strings.Contains(s, "ha_gauge") {
			continue
		}
		gauges++
		var ts []int64
		for at := range samples {
			ts = append(ts, at)
		}
		slices.Sort(ts)
		// One replica at a time: its scrapes are a second apart; both
		// stored would put another sample inside most seconds. Around the
		// failover, at most a few come closer.
		close, longest := 0, time.Duration(0)
		for k := 1; k < len(ts); k++ {
			d := time.Duration(ts[k]-ts[k-1]) * time.Millisecond
			if d < 800*time.Millisecond {
				close++
			}
			longest = max(longest, d)
		}
		if close > 3 {
			t.Errorf("%s: %d of %d samples less than 800ms after the one before: both replicas stored", s, close, len(ts))
		}
		if limit := timeout + 3*time.Second; longest > limit {
			t.Errorf("%s: a gap of %s in the stored data, more than the failover timeout %s plus a refresh and a scrape interval", s, longest, timeout)
		}
	}
	if gauges != 10 {
		t.Fatalf("%d gauge series stored, want the target's 10 once each", gauges)
	}
}
