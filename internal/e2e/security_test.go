package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"

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

// postBatch sends a 1.0 request over c and returns the status and the
// answer (status 0 and the error on a transport failure).
func postBatch(c *http.Client, url, tenant string, req *prompb.WriteRequest) (int, string) {
	raw, err := req.Marshal()
	if err != nil {
		panic(err)
	}
	hr, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, raw)))
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("Content-Encoding", "snappy")
	hr.Header.Set("THANOS-TENANT", tenant)
	resp, err := c.Do(hr)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startTLSBlockBuilder runs a block builder that serves HTTPS only, with a
// certificate of ca for names, and waits until it is ready.
func startTLSBlockBuilder(t *testing.T, ca *harness.CA, names ...string) string {
	t.Helper()
	cert, key := ca.Issue(t, names...)
	addr := harness.FreeAddr(t)
	harness.StartProcess(t, harness.Tool(t, "strata"), []string{"blockbuilder"}, []string{
		"STRATA_HTTP_LISTEN=" + addr,
		"STRATA_GRPC_LISTEN=" + harness.FreeAddr(t),
		"STRATA_DATA_DIR=" + t.TempDir(),
		"STRATA_BUCKET_DIR=" + t.TempDir(),
		"STRATA_TLS_CERT_FILE=" + cert,
		"STRATA_TLS_KEY_FILE=" + key,
	})
	insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	waitFor(t, 60*time.Second, func() bool {
		resp, err := insecure.Get("https://" + addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return addr
}

// writeHashrings writes a hashrings.json of one hashring over endpoints.
func writeHashrings(t *testing.T, path string, endpoints ...string) {
	t.Helper()
	b, err := json.Marshal([]map[string]any{{"hashring": "default", "endpoints": endpoints}})
	if err != nil {
		t.Fatal(err)
	}
	// Written aside and renamed, as a ConfigMap update is: the router
	// never reads half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestForwardTLSVerifiesTheAddress: a router that reaches a block builder
// by IP address refuses its certificate when the certificate is for
// another name, even from the right CA, and takes it when
// STRATA_FORWARD_TLS_SERVER_NAME names what the certificate is for.
func TestForwardTLSVerifiesTheAddress(t *testing.T) {
	ca := harness.NewCA(t)
	bbAddr := startTLSBlockBuilder(t, ca, "bb-0.strata.test")
	env := []string{"STRATA_ENDPOINTS=" + bbAddr, "STRATA_FORWARD_TLS_CA_FILE=" + ca.CertFile}
	now := time.Now().UnixMilli()

	byAddress := harness.StartRouterEnv(t, env...)
	code, body := postBatch(client, byAddress.URL(), "team-a", batch("tls_name", 3, now))
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "cannot validate certificate for 127.0.0.1") {
		t.Fatalf("a certificate for another name: got %d %q, want 503 refusing the certificate for the address", code, body)
	}

	byName := harness.StartRouterEnv(t, append(env, "STRATA_FORWARD_TLS_SERVER_NAME=bb-0.strata.test")...)
	if code, body := postBatch(client, byName.URL(), "team-a", batch("tls_name", 3, now)); code != http.StatusNoContent {
		t.Fatalf("with the server name the certificate is for: got %d %q, want 204", code, body)
	}
}

// TestHashringSchemes: an endpoint written https:// in hashrings.json is
// reached over TLS even without STRATA_FORWARD_TLS_*, verified by the
// system's CAs; with STRATA_FORWARD_TLS_*, one written http:// is refused,
// both when the router starts and when the file is reloaded, and never
// reached in the clear.
func TestHashringSchemes(t *testing.T) {
	ca := harness.NewCA(t)
	bbAddr := startTLSBlockBuilder(t, ca, "127.0.0.1")
	dir := t.TempDir()
	httpsRing := filepath.Join(dir, "https.json")
	writeHashrings(t, httpsRing, "https://"+bbAddr+"/api/v1/receive")
	now := time.Now().UnixMilli()

	// SSL_CERT_FILE stands in for the system's CAs of a router process.
	trusting := harness.StartRouterEnv(t, "STRATA_HASHRINGS_FILE="+httpsRing, "SSL_CERT_FILE="+ca.CertFile)
	// The block builder speaks only TLS: a 204 means the router spoke it.
	if code, body := postBatch(client, trusting.URL(), "team-a", batch("scheme", 3, now)); code != http.StatusNoContent {
		t.Fatalf("https:// endpoint, CA among the system's: got %d %q, want 204", code, body)
	}
	distrusting := harness.StartRouterEnv(t, "STRATA_HASHRINGS_FILE="+httpsRing, "SSL_CERT_FILE="+harness.NewCA(t).CertFile)
	code, body := postBatch(client, distrusting.URL(), "team-a", batch("scheme", 3, now))
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "certificate signed by unknown authority") {
		t.Fatalf("https:// endpoint, CA not among the system's: got %d %q, want 503 for the certificate", code, body)
	}

	// Forwarding over TLS, an http:// endpoint stops the router at start.
	httpRing := filepath.Join(dir, "http.json")
	writeHashrings(t, httpRing, "http://"+bbAddr+"/api/v1/receive")
	refused := harness.StartProcess(t, harness.Tool(t, "strata"), []string{"router"}, []string{
		"STRATA_HTTP_LISTEN=" + harness.FreeAddr(t),
		"STRATA_HASHRINGS_FILE=" + httpRing,
		"STRATA_FORWARD_TLS_CA_FILE=" + ca.CertFile,
	})
	if err := refused.Wait(30 * time.Second); err == nil {
		t.Fatal("the router started with an http:// endpoint while forwarding over TLS")
	}
	if want := `endpoint "http://` + bbAddr + `" is written http://, but the router forwards over TLS`; !strings.Contains(refused.Logs(), want) {
		t.Fatalf("the router's message does not say %q:\n%s", want, refused.Logs())
	}

	// And a reload to one is refused: the previous hashrings, over TLS,
	// stay in use.
	live := filepath.Join(dir, "live.json")
	writeHashrings(t, live, bbAddr)
	router := harness.StartRouterEnv(t, "STRATA_HASHRINGS_FILE="+live, "STRATA_HASHRING_RELOAD_INTERVAL=50ms", "STRATA_FORWARD_TLS_CA_FILE="+ca.CertFile)
	if code, body := postBatch(client, router.URL(), "team-a", batch("reload", 3, now)); code != http.StatusNoContent {
		t.Fatalf("host:port over TLS: got %d %q, want 204", code, body)
	}
	writeHashrings(t, live, "http://"+bbAddr)
	waitFor(t, 30*time.Second, func() bool {
		m := readMetrics(t, "http://"+router.Addr+"/metrics")
		return m.Has("strata_hashring_config_last_reload_successful") && m.Sum("strata_hashring_config_last_reload_successful", nil) == 0
	})
	if code, body := postBatch(client, router.URL(), "team-a", batch("reload", 3, now+1)); code != http.StatusNoContent {
		t.Fatalf("after a refused reload: got %d %q, want 204 over the previous hashrings", code, body)
	}
}
