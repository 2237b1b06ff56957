package security

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// ReloadInterval is how often certificate and token files are checked.
const ReloadInterval = 10 * time.Second

// ServerConfig is the TLS of a listener.
type ServerConfig struct {
	// CertFile and KeyFile enable TLS.
	CertFile string `env:"CERT_FILE"`
	KeyFile  string `env:"KEY_FILE"`
	// ClientCAFile, when set, requires clients to present a certificate
	// signed by one of its CAs (mutual TLS).
	ClientCAFile string `env:"CLIENT_CA_FILE"`
}

// Enabled tells whether TLS is configured.
func (c ServerConfig) Enabled() bool { return c.CertFile != "" || c.KeyFile != "" }

// TLS returns the listener's tls.Config, or nil when TLS is off. The
// certificate and client CAs are re-read when their files change.
func (c ServerConfig) TLS() (*tls.Config, error) {
	if !c.Enabled() {
		if c.ClientCAFile != "" {
			return nil, errors.New("a client CA file needs a certificate and key file too")
		}
		return nil, nil
	}
	if c.CertFile == "" || c.KeyFile == "" {
		return nil, errors.New("TLS needs both a certificate file and a key file")
	}
	cert, err := newReloader(ReloadInterval, parseKeyPair, c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return cert.get(), nil
		},
	}
	if c.ClientCAFile != "" {
		cas, err := newReloader(ReloadInterval, parsePool, c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client CA: %w", err)
		}
		// The pool is chosen per handshake so that a rotated CA applies to
		// new connections without a restart.
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := cfg.Clone()
			c.GetConfigForClient = nil
			c.ClientCAs = cas.get()
			return c, nil
		}
	}
	return cfg, nil
}

// ClientConfig is the TLS a client uses towards a server.
type ClientConfig struct {
	// Enabled turns TLS on (https) even without any file: the system's
	// CAs then verify the server.
	Enabled bool `env:"ENABLED"`
	// CAFile verifies the server instead of the system's CAs.
	CAFile string `env:"CA_FILE"`
	// CertFile and KeyFile are a client certificate, for mutual TLS.
	CertFile string `env:"CERT_FILE"`
	KeyFile  string `env:"KEY_FILE"`
	// ServerName overrides the name verified in the server's certificate.
	ServerName string `env:"SERVER_NAME"`
	// InsecureSkipVerify does not verify the server. For tests only.
	InsecureSkipVerify bool `env:"INSECURE_SKIP_VERIFY"`
}

// TLS returns the client's tls.Config, or nil when TLS is off.
func (c ClientConfig) TLS() (*tls.Config, error) {
	if !c.Enabled && c.CAFile == "" && c.CertFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CertFile != "" || c.KeyFile != "" {
		if c.CertFile == "" || c.KeyFile == "" {
			return nil, errors.New("a client certificate needs both a certificate file and a key file")
		}
		cert, err := newReloader(ReloadInterval, parseKeyPair, c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate: %w", err)
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return cert.get(), nil
		}
	}
	if c.CAFile != "" && !c.InsecureSkipVerify {
		cas, err := newReloader(ReloadInterval, parsePool, c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA: %w", err)
		}
		// Verify against the current pool ourselves, so a rotated CA file
		// applies without rebuilding clients. The standard check is off
		// only to be replaced by this one.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server presented no certificate")
			}
			opts := x509.VerifyOptions{Roots: cas.get(), DNSName: cs.ServerName, Intermediates: x509.NewCertPool()}
			for _, ic := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	return cfg, nil
}

func parseKeyPair(b [][]byte) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(b[0], b[1])
	if err != nil {
		return nil, err
	}
	return &c, nil
}

func parsePool(b [][]byte) (*x509.CertPool, error) {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b[0]) {
		return nil, errors.New("no PEM certificate found")
	}
	return p, nil
}
