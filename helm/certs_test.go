// Certificates as a cluster's cert-manager would give the chart: Secrets
// with tls.crt, tls.key and ca.crt, for several names at once.

package helm

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"testing"

	"github.com/stratametrics/strata/internal/harness"
)

// certAuthority is a throw-away CA.
// certAuthority issues the certificates of the chart's TLS tests in the
// shape of the Secrets cert-manager writes.
type certAuthority struct {
	*harness.CA
	pem []byte
}

func newCertAuthority(t testing.TB) *certAuthority {
	t.Helper()
	ca := harness.NewCA(t)
	return &certAuthority{CA: ca, pem: ca.CertPEM}
}

// issue makes a certificate for names (DNS names, wildcards or IPs), good
// for servers and clients, and returns the Secret's keys: tls.crt, tls.key
// and ca.crt.
func (ca *certAuthority) issue(t testing.TB, names ...string) map[string][]byte {
	t.Helper()
	cert, key := ca.IssuePEM(t, names...)
	return map[string][]byte{"tls.crt": cert, "tls.key": key, "ca.crt": ca.pem}
}

// certFile writes the CA certificate to a file and returns its path.
func (ca *certAuthority) certFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.crt")
	writeFile(t, p, ca.pem)
	return p
}

// pool returns a certificate pool of the PEM certificates in data.
func pool(t testing.TB, data []byte) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(data) {
		t.Fatalf("no PEM certificate in %q", data)
	}
	return p
}

// keyPair parses a Secret's tls.crt and tls.key.
func keyPair(t testing.TB, secret map[string][]byte) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(secret["tls.crt"], secret["tls.key"])
	if err != nil {
		t.Fatal(err)
	}
	return c
}
