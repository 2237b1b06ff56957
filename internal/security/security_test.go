package security

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/writeerr"
)

func TestReloaderFollowsTheFileAndKeepsTheLastGoodValue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("one")
	r, err := newReloader("test file", time.Millisecond, func(b [][]byte) (string, error) {
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
	r, err := newReloader("TLS certificate", time.Millisecond, parseKeyPair, certFile, keyFile)
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

// tlsServer serves over TLS with cert and key, requiring client
// certificates from clientCA when it is set, and answers with the serial
// number of the client's certificate. It is served as strata serves
// (httptest's StartTLS would add a certificate of its own, which a
// handshake without a server name gets).
func tlsServer(t *testing.T, cert, key, clientCA string) (url string) {
	t.Helper()
	cfg, err := ServerConfig{CertFile: cert, KeyFile: key, ClientCAFile: clientCA}.TLS()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if len(r.TLS.PeerCertificates) > 0 {
				io.WriteString(w, r.TLS.PeerCertificates[0].SerialNumber.String())
			}
		}),
		ErrorLog: log.New(io.Discard, "", 0), // refused handshakes are what the tests make
	}
	go srv.Serve(tls.NewListener(l, cfg))
	t.Cleanup(func() { srv.Close() })
	return "https://" + l.Addr().String()
}

// fetch gets url over a new connection made by ct, as the router's
// transport makes them, and returns the answer.
func fetch(ct *ClientTLS, url string) (string, error) {
	transport := &http.Transport{DialTLSContext: ct.DialTLSContext(&net.Dialer{Timeout: 5 * time.Second})}
	defer transport.CloseIdleConnections()
	resp, err := (&http.Client{Transport: transport, Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestMutualTLS: server and client configurations interoperate, and a
// client without a certificate from the CA is refused.
func TestMutualTLS(t *testing.T) {
	ca := harness.NewCA(t)
	srvCert, srvKey := ca.Issue(t, "127.0.0.1")
	cliCert, cliKey := ca.Issue(t, "router")
	url := tlsServer(t, srvCert, srvKey, ca.CertFile)

	get := func(c ClientConfig) error {
		ct, err := c.TLS()
		if err != nil {
			return err
		}
		_, err = fetch(ct, url)
		return err
	}
	if err := get(ClientConfig{CAFile: ca.CertFile, CertFile: cliCert, KeyFile: cliKey}); err != nil {
		t.Fatalf("client with a certificate from the CA: %v", err)
	}
	if err := get(ClientConfig{CAFile: ca.CertFile}); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}
	other := harness.NewCA(t)
	otherCert, otherKey := other.Issue(t, "router")
	if err := get(ClientConfig{CAFile: ca.CertFile, CertFile: otherCert, KeyFile: otherKey}); err == nil {
		t.Fatal("a client with a certificate from another CA was accepted")
	}
	if err := get(ClientConfig{CAFile: other.CertFile, CertFile: cliCert, KeyFile: cliKey}); err == nil {
		t.Fatal("the client trusted a server its CA did not sign")
	}
	if _, err := (ServerConfig{CertFile: srvCert}).TLS(); err == nil {
		t.Fatal("a certificate without a key was accepted")
	}
	if _, err := (ClientConfig{CertFile: cliCert}).TLS(); err == nil {
		t.Fatal("a client certificate without a key was accepted")
	}
}

// TestClientVerifiesTheServerName: the client checks the server's
// certificate against the address it dialed (an IP address against the
// certificate's IP addresses) or, when set, against the configured server
// name; a certificate from the right CA for another name is refused.
func TestClientVerifiesTheServerName(t *testing.T) {
	ca := harness.NewCA(t)
	for _, c := range []struct {
		name       string
		certFor    []string // the server's certificate names; it listens on 127.0.0.1
		serverName string   // STRATA_FORWARD_TLS_SERVER_NAME
		ok         bool
	}{
		{"the dialed IP address", []string{"127.0.0.1"}, "", true},
		{"the dialed IP address among others", []string{"bb-0.strata.test", "10.0.0.7", "127.0.0.1"}, "", true},
		{"another IP address", []string{"127.0.0.2"}, "", false},
		{"a DNS name only, dialed by IP address", []string{"bb-0.strata.test"}, "", false},
		{"the configured server name", []string{"bb-0.strata.test"}, "bb-0.strata.test", true},
		{"a wildcard covering the configured server name", []string{"*.strata.test"}, "bb-0.strata.test", true},
		{"another name than the configured one", []string{"bb-1.strata.test"}, "bb-0.strata.test", false},
		{"the dialed IP address when another server name is configured", []string{"127.0.0.1"}, "bb-0.strata.test", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cert, key := ca.Issue(t, c.certFor...)
			url := tlsServer(t, cert, key, "")
			ct, err := ClientConfig{CAFile: ca.CertFile, ServerName: c.serverName}.TLS()
			if err != nil {
				t.Fatal(err)
			}
			_, err = fetch(ct, url)
			var nameErr x509.HostnameError
			switch {
			case c.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !c.ok && err == nil:
				t.Fatal("a certificate for another name was accepted")
			case !c.ok && !errors.As(err, &nameErr):
				t.Fatalf("refused, but not for its name: %v", err)
			}
		})
	}

	// Without a CA file the system's CAs verify, by the same name rules:
	// the test CA is not among them.
	cert, key := ca.Issue(t, "127.0.0.1")
	url := tlsServer(t, cert, key, "")
	ct, err := ClientConfig{Enabled: true}.TLS()
	if err != nil {
		t.Fatal(err)
	}
	var authErr x509.UnknownAuthorityError
	if _, err := fetch(ct, url); !errors.As(err, &authErr) {
		t.Fatalf("the system's CAs: got %v, want the test CA unknown", err)
	}
}

// TestClientReloadsCertificateAndCA: a client presents its rotated
// certificate and trusts its rotated CA on new connections, without being
// built again.
func TestClientReloadsCertificateAndCA(t *testing.T) {
	ca := harness.NewCA(t)
	dir := t.TempDir()
	caFile, certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	install := func(pairs ...[2]string) {
		t.Helper()
		for _, p := range pairs {
			b, err := os.ReadFile(p[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p[1], b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		// Past the reload interval, the next connection reads the files.
		time.Sleep(2 * time.Millisecond)
	}
	c1, k1 := ca.Issue(t, "router")
	install([2]string{ca.CertFile, caFile}, [2]string{c1, certFile}, [2]string{k1, keyFile})
	ct, err := ClientConfig{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}.load(time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	srvCert, srvKey := ca.Issue(t, "127.0.0.1")
	url := tlsServer(t, srvCert, srvKey, ca.CertFile)
	first, err := fetch(ct, url)
	if err != nil {
		t.Fatal(err)
	}
	c2, k2 := ca.Issue(t, "router")
	install([2]string{c2, certFile}, [2]string{k2, keyFile})
	second, err := fetch(ct, url)
	if err != nil {
		t.Fatalf("after the client certificate changed: %v", err)
	}
	if first == "" || first == second {
		t.Fatalf("client certificate serial %q, then %q: not reloaded", first, second)
	}

	// A server whose certificate comes from a new CA is trusted once the
	// CA file holds it.
	newCA := harness.NewCA(t)
	newCert, newKey := newCA.Issue(t, "127.0.0.1")
	rotatedURL := tlsServer(t, newCert, newKey, "")
	if _, err := fetch(ct, rotatedURL); err == nil {
		t.Fatal("a server from a CA not in the file yet was trusted")
	}
	install([2]string{newCA.CertFile, caFile})
	if _, err := fetch(ct, rotatedURL); err != nil {
		t.Fatalf("after the CA file changed: %v", err)
	}
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
		if got := writeerr.HTTPStatus(tok.Authorize(h, c.tenant)); got != c.status {
			t.Errorf("%q for %s: status %d, want %d", c.auth, c.tenant, got, c.status)
		}
	}
	if _, err := LoadTokens(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("a missing token file was accepted")
	}
}
