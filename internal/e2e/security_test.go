package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"

	"github.com/stratametrics/strata/internal/harness"
)

// TestTLSAndTokens runs the router with TLS and bearer tokens in front of
// a block builder that requires mutual TLS and a token of its own: only a
// client with the right token for its tenant gets a write through, and the
// router reaches the block builder only with its client certificate.
func TestTLSAndTokens(t *testing.T) {
	ca := harness.NewCA(t)
	bbCert, bbKey := ca.Issue(t, "127.0.0.1")
	routerCert, routerKey := ca.Issue(t, "127.0.0.1")
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(ca.CertFile)
	pool.AppendCertsFromPEM(caPEM)
	tlsClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	bbAddr, routerAddr := harness.FreeAddr(t), harness.FreeAddr(t)
	bb := harness.StartProcess(t, harness.Tool(t, "strata"), []string{"blockbuilder"}, []string{
		"STRATA_HTTP_LISTEN=" + bbAddr,
		"STRATA_GRPC_LISTEN=" + harness.FreeAddr(t),
		"STRATA_DATA_DIR=" + t.TempDir(),
		"STRATA_BUCKET_DIR=" + t.TempDir(),
		"STRATA_TLS_CERT_FILE=" + bbCert,
		"STRATA_TLS_KEY_FILE=" + bbKey,
		"STRATA_TLS_CLIENT_CA_FILE=" + ca.CertFile,
		"STRATA_BEARER_TOKEN_FILE=" + file("bb-tokens", "router-to-bb\n"),
	})
	harness.StartProcess(t, harness.Tool(t, "strata"), []string{"router"}, []string{
		"STRATA_HTTP_LISTEN=" + routerAddr,
		"STRATA_ENDPOINTS=" + bbAddr,
		"STRATA_TLS_CERT_FILE=" + routerCert,
		"STRATA_TLS_KEY_FILE=" + routerKey,
		"STRATA_BEARER_TOKEN_FILE=" + file("tokens", "team-a-token team-a\n"),
		"STRATA_FORWARD_TLS_CA_FILE=" + ca.CertFile,
		"STRATA_FORWARD_TLS_CERT_FILE=" + routerCert,
		"STRATA_FORWARD_TLS_KEY_FILE=" + routerKey,
		"STRATA_FORWARD_BEARER_TOKEN_FILE=" + file("forward-token", "router-to-bb\n"),
	})
	waitFor(t, 30*time.Second, func() bool {
		resp, err := tlsClient.Get("https://" + routerAddr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	raw, _ := batch("tls_metric", 5, time.Now().UnixMilli()).Marshal()
	body := snappy.Encode(nil, raw)
	send := func(c *http.Client, url, tenant, token string) int {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("THANOS-TENANT", tenant)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	routerURL := "https://" + routerAddr + "/api/v1/receive"
	for _, c := range []struct {
		name          string
		tenant, token string
		want          int
	}{
		{"no token", "team-a", "", 401},
		{"unknown token", "team-a", "guess", 401},
		{"token of another tenant", "team-b", "team-a-token", 403},
		{"right token", "team-a", "team-a-token", 204},
	} {
		if got := send(tlsClient, routerURL, c.tenant, c.token); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
	if got := send(client, "http://"+routerAddr+"/api/v1/receive", "team-a", "team-a-token"); got/100 == 2 {
		t.Error("the TLS router took a plain HTTP write")
	}
	// The block builder refuses clients without a certificate from the CA,
	// even with its token.
	if got := send(tlsClient, "https://"+bbAddr+"/api/v1/receive", "team-a", "router-to-bb"); got != 0 {
		t.Errorf("block builder answered %d to a client without a certificate", got)
	}
	_ = bb
}
