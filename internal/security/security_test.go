package security

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/remotewrite"
)

func TestReloaderFollowsTheFileAndKeepsTheLastGoodValue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("one")
	r, err := newReloader(time.Millisecond, func(b [][]byte) (string, error) {
		if string(b[0]) == "broken" {
			return "", errors.New("broken")
		}
		return string(b[0]), nil
	}, path)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	write("two")
	time.Sleep(2 * time.Millisecond)
	if got := r.get(); got != "two" {
		t.Fatalf("after a change: %q, want two", got)
	}
	write("broken")
	time.Sleep(2 * time.Millisecond)
	if got := r.get(); got != "two" {
		t.Fatalf("after a broken file: %q, want the last good value", got)
	}
	os.Remove(path)
	time.Sleep(2 * time.Millisecond)
	if got := r.get(); got != "two" {
		t.Fatalf("after the file went: %q, want the last good value", got)
	}
}

// TestCertificateRotation: a listener picks up a new certificate from its
// files without a restart.
func TestCertificateRotation(t *testing.T) {
	ca := harness.NewCA(t)
	certFile, keyFile := ca.Issue(t, "127.0.0.1")
	r, err := newReloader(time.Millisecond, parseKeyPair, certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	first := r.get().Leaf
	newCert, newKey := ca.Issue(t, "127.0.0.1")
	for _, f := range [][2]string{{newCert, certFile}, {newKey, keyFile}} {
		b, _ := os.ReadFile(f[0])
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Millisecond)
	second := r.get().Leaf
	if first == nil || second == nil {
		t.Fatal("certificates without their parsed leaf")
	}
	if first.SerialNumber.Cmp(second.SerialNumber) == 0 {
		t.Fatal("certificate not reloaded")
	}
}

// TestMutualTLS: server and client configurations interoperate, and a
// client without a certificate from the CA is refused.
func TestMutualTLS(t *testing.T) {
	ca := harness.NewCA(t)
	srvCert, srvKey := ca.Issue(t, "127.0.0.1")
	cliCert, cliKey := ca.Issue(t, "router")
	serverTLS, err := ServerConfig{CertFile: srvCert, KeyFile: srvKey, ClientCAFile: ca.CertFile}.TLS()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	srv.TLS = serverTLS
	srv.StartTLS()
	defer srv.Close()

	get := func(c ClientConfig) error {
		cfg, err := c.TLS()
		if err != nil {
			return err
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
		resp, err := client.Get(srv.URL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := get(ClientConfig{CAFile: ca.CertFile, CertFile: cliCert, KeyFile: cliKey}); err != nil {
		t.Fatalf("client with a certificate from the CA: %v", err)
	}
	if err := get(ClientConfig{CAFile: ca.CertFile}); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}
	other := harness.NewCA(t)
	if err := get(ClientConfig{CAFile: other.CertFile, CertFile: cliCert, KeyFile: cliKey}); err == nil {
		t.Fatal("the client trusted a server its CA did not sign")
	}
	if _, err := (ServerConfig{CertFile: srvCert}).TLS(); err == nil {
		t.Fatal("a certificate without a key was accepted")
	}
	var _ *tls.Config = serverTLS
}

func TestTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte("# tokens\nall-tenants\nonly-a team-a\nab team-a,team-b\n"), 0o600)
	tok, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		auth, tenant string
		status       int
	}{
		{"Bearer all-tenants", "x", 204},
		{"Bearer only-a", "team-a", 204},
		{"Bearer only-a", "team-b", 403},
		{"Bearer ab", "team-b", 204},
		{"Bearer wrong", "team-a", 401},
		{"", "team-a", 401},
		{"Basic dXNlcjpwYXNz", "team-a", 401},
	} {
		h := http.Header{}
		if c.auth != "" {
			h.Set("Authorization", c.auth)
		}
		if got := remotewrite.HTTPStatus(tok.Authorize(h, c.tenant)); got != c.status {
			t.Errorf("%q for %s: status %d, want %d", c.auth, c.tenant, got, c.status)
		}
	}
	if _, err := LoadTokens(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("a missing token file was accepted")
	}
}
