package security

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
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
	cert, err := newReloader("TLS certificate", ReloadInterval, parseKeyPair, c.CertFile, c.KeyFile)
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
		cas, err := newReloader("TLS client CA file", ReloadInterval, parsePool, c.ClientCAFile)
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

// ClientTLS is the TLS of a client towards its servers. The CA and client
// certificate files are re-read when they change.
type ClientTLS struct {
	serverName         string
	insecureSkipVerify bool
	cas                *reloader[*x509.CertPool] // nil: the system's CAs
	cert               *reloader[*tls.Certificate]
}

// TLS returns the client's TLS, or nil when TLS is off.
func (c ClientConfig) TLS() (*ClientTLS, error) { return c.load(ReloadInterval) }

// On tells whether the configuration turns TLS on.
func (c ClientConfig) On() bool { return c.Enabled || c.CAFile != "" || c.CertFile != "" }

func (c ClientConfig) load(interval time.Duration) (*ClientTLS, error) {
	if !c.On() {
		return nil, nil
	}
	ct := &ClientTLS{serverName: c.ServerName, insecureSkipVerify: c.InsecureSkipVerify}
	if c.CertFile != "" || c.KeyFile != "" {
		if c.CertFile == "" || c.KeyFile == "" {
			return nil, errors.New("a client certificate needs both a certificate file and a key file")
		}
		cert, err := newReloader("TLS client certificate", interval, parseKeyPair, c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate: %w", err)
		}
		ct.cert = cert
	}
	if c.CAFile != "" {
		cas, err := newReloader("TLS CA file", interval, parsePool, c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA: %w", err)
		}
		ct.cas = cas
	}
	return ct, nil
}

// Config returns the tls.Config of one connection to addr (host:port). The
// server's certificate is verified by the standard library, against the
// CAs of the moment and the name the connection is for: the configured
// server name, else the dialed host, so that an IP address must be among
// the certificate's IP addresses. A config shared by every connection
// could not do this: Go sends no server name for an IP, and a check made
// in VerifyConnection then has no name to check against.
func (c *ClientTLS) Config(addr string) *tls.Config {
	name := c.serverName
	if name == "" {
		name = addr
		if host, _, err := net.SplitHostPort(addr); err == nil {
			name = host
		}
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: name, InsecureSkipVerify: c.insecureSkipVerify}
	if c.cas != nil {
		cfg.RootCAs = c.cas.get()
	}
	if c.cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return c.cert.get(), nil
		}
	}
	return cfg
}

// DialTLSContext returns a dial function for http.Transport.DialTLSContext
// that connects with d and completes a handshake configured by Config.
// d's timeout bounds the handshake too.
func (c *ClientTLS) DialTLSContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&tls.Dialer{NetDialer: d, Config: c.Config(addr)}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, fmt.Errorf("TLS to %s: %w", addr, err)
		}
		return conn, nil
	}
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
