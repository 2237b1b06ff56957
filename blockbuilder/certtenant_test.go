package blockbuilder

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/stratametrics/strata/internal/forwarding"
	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/internal/security"
	"github.com/stratametrics/strata/loadgen"
	"github.com/stratametrics/strata/validation"
)

// TestTenantFromClientCertificate: a block builder serving mutual TLS
// with STRATA_TENANT_CERTIFICATE_FIELD=commonName files remote-write and
// OTLP sent to it directly under the common name of the sender's
// certificate, whatever the tenant header says, while a router's forward
// keeps the tenant the router resolved (X-Strata-Tenant), whatever the
// router's own certificate says. A certificate without the field is
// refused.
func TestTenantFromClientCertificate(t *testing.T) {
	ca := harness.NewCA(t)
	serverCert, serverKey := ca.Issue(t, "127.0.0.1")
	tlsCfg := security.ServerConfig{CertFile: serverCert, KeyFile: serverKey, ClientCAFile: ca.CertFile}
	bkt, err := filesystem.NewBucket(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bb := newTestBlockBuilder(t, bkt, nil, func(c *Config) {
		c.TLS = tlsCfg
		c.TenantCertificateField = validation.CertificateCommonName
	})
	srvTLS, err := tlsCfg.TLS()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(bb.Handler())
	srv.TLS = srvTLS
	srv.StartTLS()
	t.Cleanup(srv.Close)

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CertPEM)
	clientWith := func(subject pkix.Name) *http.Client {
		certPEM, keyPEM := ca.IssueSubjectPEM(t, subject)
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}}}
	}
	post := func(cl *http.Client, path string, body []byte, headers map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	rw := func(req interface{ Marshal() ([]byte, error) }) []byte {
		raw, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return snappy.Encode(nil, raw)
	}
	rwHeaders := func(extra ...string) map[string]string {
		h := map[string]string{"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy", "THANOS-TENANT": "team-header"}
		for i := 0; i+1 < len(extra); i += 2 {
			h[extra[i]] = extra[i+1]
		}
		return h
	}

	sender := clientWith(pkix.Name{CommonName: "team-cert", Organization: []string{"org-x"}})
	router := clientWith(pkix.Name{CommonName: "strata-router"})
	// OTLP's points come after the remote-write samples: with one-minute
	// blocks the head takes nothing older than half a block before its
	// newest sample.
	start := time.Now().Add(-10 * time.Minute).UnixMilli()
	direct, forwarded := minuteSeries(3, start, time.Minute), minuteSeries(2, start, time.Minute)
	for _, w := range []struct {
		name    string
		client  *http.Client
		path    string
		body    []byte
		headers map[string]string
		status  int
		says    string
	}{
		{"remote-write sent directly", sender, "/api/v1/receive", rw(direct), rwHeaders(), 204, ""},
		{"OTLP sent directly", sender, "/otlp/v1/metrics", loadgen.EncodeOTLP(0, 4, 1, 0, start+time.Minute.Milliseconds(), 15_000, "bb"), map[string]string{"Content-Type": "application/x-protobuf", "THANOS-TENANT": "team-header"}, 200, ""},
		{"a router's forward", router, "/api/v1/receive", rw(forwarded), rwHeaders(forwarding.HeaderForwarded, "1", forwarding.HeaderForwardedTenant, "team-fwd"), 204, ""},
		{"a certificate without a common name", clientWith(pkix.Name{Organization: []string{"team-cert"}}), "/api/v1/receive", rw(direct), rwHeaders(), 401,
			`the client certificate (subject "O=team-cert") has no commonName to take the tenant from`},
		{"OTLP, a certificate without a common name", clientWith(pkix.Name{Organization: []string{"team-cert"}}), "/api/v1/otlp/v1/metrics", loadgen.EncodeOTLP(0, 1, 1, 0, start+time.Minute.Milliseconds(), 15_000, "bb"), map[string]string{"Content-Type": "application/x-protobuf"}, 401,
			"has no commonName"},
	} {
		if status, body := post(w.client, w.path, w.body, w.headers); status != w.status || !strings.Contains(body, w.says) {
			t.Errorf("%s: got %d %q, want %d saying %q", w.name, status, body, w.status, w.says)
		}
	}

	cert, ok := bb.Tenant("team-cert")
	if !ok {
		t.Fatalf("no tenant team-cert; open: %v", bb.Tenants())
	}
	got := dbSamples(t, cert.DB)
	otlpSeries := 0
	for key := range got {
		if !strings.Contains(key, `"bb_test_metric"`) {
			otlpSeries++
			delete(got, key)
		}
	}
	compareSamples(t, got, expected(direct))
	if otlpSeries != 4 {
		t.Errorf("tenant team-cert holds %d series of the OTLP write, want 4", otlpSeries)
	}
	fwd, ok := bb.Tenant("team-fwd")
	if !ok {
		t.Fatal("no tenant team-fwd: the forward did not keep the router's tenant")
	}
	compareSamples(t, dbSamples(t, fwd.DB), expected(forwarded))
	for _, tenant := range []string{"team-header", "strata-router", "default-tenant"} {
		if _, ok := bb.Tenant(tenant); ok {
			t.Errorf("tenant %s was opened", tenant)
		}
	}
}
