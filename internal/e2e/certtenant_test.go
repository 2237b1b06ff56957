package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratametrics/strata/bucket"
	"github.com/stratametrics/strata/internal/harness"
)

// TestPrometheusTenantFromClientCertificate: a real Prometheus
// remote-writes over mutual TLS, presenting a client certificate whose
// organization is team-cert, to a router with
// STRATA_TENANT_CERTIFICATE_FIELD=organization, while its remote_write
// headers name another tenant in THANOS-TENANT. Everything Prometheus
// sent is in the bucket under team-cert, and nothing under the header's
// tenant or any other.
func TestPrometheusTenantFromClientCertificate(t *testing.T) {
	promBin := harness.Tool(t, "prometheus")
	ca := harness.NewCA(t)
	routerCert, routerKey := ca.Issue(t, "127.0.0.1")
	promCert, promKey := ca.IssueSubject(t, pkix.Name{CommonName: "prometheus-0", Organization: []string{"team-cert"}})
	bucketDir := t.TempDir()
	bb := harness.StartBlockBuilder(t, "blockbuilder-0", []string{"STRATA_BUCKET_DIR=" + bucketDir})

	routerAddr := harness.FreeAddr(t)
	harness.StartProcess(t, harness.Tool(t, "strata"), []string{"router"}, []string{
		"STRATA_HTTP_LISTEN=" + routerAddr,
		"STRATA_SHUTDOWN_DELAY=0s",
		"STRATA_ENDPOINTS=" + bb.Addr,
		"STRATA_TLS_CERT_FILE=" + routerCert,
		"STRATA_TLS_KEY_FILE=" + routerKey,
		"STRATA_TLS_CLIENT_CA_FILE=" + ca.CertFile,
		"STRATA_TENANT_CERTIFICATE_FIELD=organization",
	})
	// Mutual TLS: /-/ready too asks for a client certificate.
	pair, err := tls.LoadX509KeyPair(promCert, promKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CertPEM)
	mtls := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}}}
	waitFor(t, 30*time.Second, func() bool {
		resp, err := mtls.Get("https://" + routerAddr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	target, scrapes := startGauges(t, "cert_gauge", 20)
	dir := t.TempDir()
	promAddr := harness.FreeAddr(t)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	writeConfig := func(scrape bool) {
		t.Helper()
		var b strings.Builder
		b.WriteString("global:\n  scrape_interval: 1s\n")
		if scrape {
			fmt.Fprintf(&b, "scrape_configs:\n  - job_name: cert\n    static_configs:\n      - targets: ['%s']\n", strings.TrimPrefix(target.URL, "http://"))
		}
		fmt.Fprintf(&b, `remote_write:
  - url: https://%s/api/v1/receive
    headers:
      THANOS-TENANT: team-header
    tls_config:
      ca_file: %s
      cert_file: %s
      key_file: %s
    queue_config:
      batch_send_deadline: 500ms
      min_backoff: 100ms
      max_backoff: 1s
`, routerAddr, ca.CertFile, promCert, promKey)
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

	// Scrape a while, then stop scraping and wait until the queue has
	// sent everything.
	waitFor(t, time.Minute, func() bool { return scrapes.Load() >= 10 })
	writeConfig(false)
	resp, err := http.Post("http://"+promAddr+"/-/reload", "", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("reload Prometheus: %v %v", err, resp)
	}
	resp.Body.Close()
	var sent, last string
	var m harness.Metrics
	stable := 0
	waitFor(t, time.Minute, func() bool {
		m = readMetrics(t, "http://"+promAddr+"/metrics")
		if m.Sum("prometheus_remote_storage_samples_pending", nil) != 0 {
			stable = 0
			return false
		}
		cur := fmt.Sprint(m.Sum("prometheus_remote_storage_samples_total", nil), m.Sum("prometheus_remote_storage_samples_failed_total", nil), m.Sum("prometheus_remote_storage_samples_retried_total", nil))
		if cur == last {
			stable++
		} else {
			stable, last = 0, cur
		}
		time.Sleep(500 * time.Millisecond)
		return stable >= 6
	})
	sent = last
	total, failed, retried := m.Sum("prometheus_remote_storage_samples_total", nil), m.Sum("prometheus_remote_storage_samples_failed_total", nil), m.Sum("prometheus_remote_storage_samples_retried_total", nil)
	if failed != 0 || m.Sum("prometheus_remote_storage_samples_dropped_total", nil) != 0 {
		t.Errorf("Prometheus: %v samples failed, %v dropped (sent, failed, retried: %s)", failed, m.Sum("prometheus_remote_storage_samples_dropped_total", nil), sent)
	}
	want := int(total - retried)
	if want < 10*20 {
		t.Fatalf("Prometheus sent only %d samples", want)
	}

	// The block builder flushes everything into the bucket as it stops.
	if err := bb.Stop(); err != nil {
		t.Fatalf("block builder did not flush cleanly: %v", err)
	}
	bkt, err := bucket.Config{Dir: bucketDir}.Open(context.Background(), quiet, nil, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	got, blocks := harness.BucketSamples(t, bkt, "tenant_id", "receive_replica")
	tenants := map[string]bool{}
	for _, b := range blocks {
		tenants[b.Tenant] = true
	}
	gauges := 0
	for key := range got["team-cert"] {
		if strings.Contains(key, `__name__="cert_gauge"`) {
			gauges++
		}
	}
	have := got.TenantCount("team-cert")
	t.Logf("Prometheus sent %d samples; the bucket holds %d for tenant team-cert, %d series of cert_gauge; blocks of tenants %v", want, have, gauges, tenants)
	if have != want || gauges != 20 {
		t.Errorf("tenant team-cert holds %d samples (%d series of cert_gauge), want the %d Prometheus sent (20 series)", have, gauges, want)
	}
	for tenant := range tenants {
		if tenant != "team-cert" {
			t.Errorf("the bucket has blocks of tenant %s (%d samples): the certificate names the tenant, not the header", tenant, got.TenantCount(tenant))
		}
	}
}
