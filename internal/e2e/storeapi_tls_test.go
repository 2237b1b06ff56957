package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/stratametrics/strata/internal/harness"
)

// rawCodec sends and receives messages as bytes: the test needs a
// StoreAPI call to go through, not its messages decoded.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(b []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), b...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// TestStoreAPIMutualTLS: the StoreAPI answers with every tenant's data, so
// the README asks for mutual TLS on it. With STRATA_TLS_CLIENT_CA_FILE, a
// block builder's StoreAPI answers a client that presents a certificate
// from the CA, and refuses one that presents none.
func TestStoreAPIMutualTLS(t *testing.T) {
	ca := harness.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1")
	querierCertFile, querierKeyFile := ca.Issue(t, "thanos-query")
	querierCert, err := tls.LoadX509KeyPair(querierCertFile, querierKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CertPEM)

	httpAddr, grpcAddr := harness.FreeAddr(t), harness.FreeAddr(t)
	harness.StartProcess(t, harness.Tool(t, "strata"), []string{"blockbuilder"}, []string{
		"STRATA_HTTP_LISTEN=" + httpAddr,
		"STRATA_GRPC_LISTEN=" + grpcAddr,
		"STRATA_DATA_DIR=" + t.TempDir(),
		"STRATA_BUCKET_DIR=" + t.TempDir(),
		"STRATA_TLS_CERT_FILE=" + cert,
		"STRATA_TLS_KEY_FILE=" + key,
		"STRATA_TLS_CLIENT_CA_FILE=" + ca.CertFile,
	})
	withCert := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{querierCert}}
	https := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: withCert}}
	waitFor(t, 60*time.Second, func() bool {
		resp, err := https.Get("https://" + httpAddr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	info := func(cfg *tls.Config) error {
		conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
			grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var req, resp []byte // an empty InfoRequest is no bytes
		return conn.Invoke(ctx, "/thanos.info.Info/Info", &req, &resp)
	}
	// Under TLS 1.3 the client may learn of the refusal as the server's
	// alert or as a broken connection: the call after it, with the
	// certificate, shows that nothing else made it fail.
	if err := info(&tls.Config{RootCAs: roots}); err == nil {
		t.Fatal("Info without a client certificate was answered")
	}
	if err := info(withCert); err != nil {
		t.Fatalf("Info with a client certificate from the CA: %v", err)
	}
}
