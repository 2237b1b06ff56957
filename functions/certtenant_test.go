package functions_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/stratametrics/strata/functions"
	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/internal/security"
	"github.com/stratametrics/strata/validation"
)

// TestTenantFromClientCertificate: a router serving mutual TLS with
// STRATA_TENANT_CERTIFICATE_FIELD=organization files writes under the
// organization of the sender's client certificate, not under the tenant
// its THANOS-TENANT header names, for remote-write 1.0, 2.0 and OTLP
// alike; a bearer token limited to tenants is checked against the
// certificate's tenant. A certificate without an organization, or with
// one that is no tenant ID, is refused, and so is a request that reaches
// the handler without a verified certificate.
func TestTenantFromClientCertificate(t *testing.T) {
	ca := harness.NewCA(t)
	serverCert, serverKey := ca.Issue(t, "127.0.0.1")
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("cert-token team-cert\nheader-token team-header\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startClusterWith(t, 2, 2, clusterOptions{router: func(cfg *functions.Config) {
		cfg.TLS = security.ServerConfig{CertFile: serverCert, KeyFile: serverKey, ClientCAFile: ca.CertFile}
		cfg.TenantCertificateField = validation.CertificateOrganization
		cfg.BearerTokenFile = tokens
	}})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CertPEM)
	// clientWith presents a certificate of ca with subject, or none.
	clientWith := func(subject *pkix.Name) *http.Client {
		cfg := &tls.Config{RootCAs: roots}
		if subject != nil {
			certPEM, keyPEM := ca.IssueSubjectPEM(t, *subject)
			cert, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	send := func(cl *http.Client, url string, body []byte, headers map[string]string, token string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	teamCert := clientWith(&pkix.Name{CommonName: "prometheus-0", Organization: []string{"team-cert", "team-other"}})
	now := time.Now().UnixMilli()
	otlpURL := strings.TrimSuffix(c.routerURL, "/api/v1/receive") + "/api/v1/otlp/v1/metrics"
	ts := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	otlpBody, err := pmetricotlp.NewExportRequestFromMetrics(otlpMetrics(ts)).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		name    string
		client  *http.Client
		url     string
		body    []byte
		headers map[string]string
		token   string
		status  int
		says    string
	}{
		{"1.0, the header naming another tenant", teamCert, c.routerURL, encodeV1(t, seriesV1("cert_v1", 5, now)), v1Headers("team-header"), "cert-token", 204, ""},
		{"2.0, without the header", teamCert, c.routerURL, encodeV2(t, seriesV2("cert_v2", 3, now)), v2Headers(""), "cert-token", 204, ""},
		{"OTLP, the header naming another tenant", teamCert, otlpURL, otlpBody, map[string]string{"Content-Type": "application/json", "THANOS-TENANT": "team-header"}, "cert-token", 200, ""},
		{"a token for the header's tenant, not the certificate's", teamCert, c.routerURL, encodeV1(t, seriesV1("cert_forbidden", 2, now)), v1Headers("team-header"), "header-token", 403, `this token is not for tenant "team-cert"`},
		{"a certificate without an organization", clientWith(&pkix.Name{CommonName: "team-header"}), c.routerURL, encodeV1(t, seriesV1("cert_noorg", 2, now)), v1Headers("team-header"), "header-token", 401,
			`the client certificate (subject "CN=team-header") has no organization to take the tenant from`},
		{"an organization that is no tenant ID", clientWith(&pkix.Name{Organization: []string{"team/cert"}}), c.routerURL, encodeV1(t, seriesV1("cert_badorg", 2, now)), v1Headers("team-header"), "cert-token", 400,
			`organization of the client certificate: invalid request: tenant "team/cert" has character '/'`},
	} {
		status, body := send(w.client, w.url, w.body, w.headers, w.token)
		if status != w.status || !strings.Contains(body, w.says) {
			t.Errorf("%s: got %d %q, want %d saying %q", w.name, status, body, w.status, w.says)
		}
	}

	// Mutual TLS itself refuses a client without a certificate; the
	// handler refuses a request that comes without one anyway (behind a
	// listener that did not verify one, as the Lambda adapter's).
	if _, err := clientWith(nil).Post(c.routerURL, "application/x-protobuf", bytes.NewReader(encodeV1(t, seriesV1("cert_none", 1, now)))); err == nil {
		t.Error("the router took a connection without a client certificate")
	}
	req := httptest.NewRequest(http.MethodPost, "/api/v1/receive", bytes.NewReader(encodeV1(t, seriesV1("cert_none", 1, now))))
	for k, v := range v1Headers("team-header") {
		req.Header.Set(k, v)
	}
	req.Header.Set("Authorization", "Bearer header-token")
	rec := httptest.NewRecorder()
	c.router.Handler().ServeHTTP(rec, req)
	if want := "a verified client certificate (mutual TLS) is required: the tenant is taken from its organization"; rec.Code != 401 || !strings.Contains(rec.Body.String(), want) {
		t.Errorf("a request without a client certificate: got %d %q, want 401 saying %q", rec.Code, rec.Body.String(), want)
	}

	c.flush()
	got, _ := c.bucketSamples()
	for tenant, want := range map[string]int{"team-header": 0, "default-tenant": 0, "team-other": 0} {
		if n := got.TenantCount(tenant); n != want {
			t.Errorf("tenant %s: %d samples in the bucket, want %d", tenant, n, want)
		}
	}
	// Replicas deduplicated: one sample per series.
	for prefix, n := range map[string]int{"cert_v1": 5, "cert_v2": 3} {
		stored := 0
		for key, s := range got["team-cert"] {
			if strings.Contains(key, `"`+prefix+`_metric"`) {
				stored += len(s)
			}
		}
		if stored != n {
			t.Errorf("tenant team-cert holds %d series of %s, want %d", stored, prefix, n)
		}
	}
	key := `{__name__="room_temperature_celsius", instance="i-1", job="shop/api", room="kitchen"}`
	if v, ok := got["team-cert"][key][ts.UnixMilli()]; !ok || v != 21.5 {
		t.Errorf("tenant team-cert: OTLP gauge %s at %d: %v (present %v), want 21.5", key, ts.UnixMilli(), v, ok)
	}
}
