package blockbuilder

import (
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"
)

// TestTenantCertificateFieldConfig: the block builder reads
// STRATA_TENANT_CERTIFICATE_FIELD, off by default, and checks it as the
// router does (functions' test has every case).
func TestTenantCertificateFieldConfig(t *testing.T) {
	for _, c := range []struct {
		name string
		vars map[string]string
		want string // "" accepted, else the message
	}{
		{"off by default", nil, ""},
		{"commonName with mutual TLS", map[string]string{"STRATA_TENANT_CERTIFICATE_FIELD": "commonName", "STRATA_TLS_CLIENT_CA_FILE": "ca"}, ""},
		{"without a client CA", map[string]string{"STRATA_TENANT_CERTIFICATE_FIELD": "commonName"},
			"STRATA_TENANT_CERTIFICATE_FIELD needs STRATA_TLS_CLIENT_CA_FILE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			vars := map[string]string{"STRATA_REPLICA_NAME": "bb-0", "STRATA_BUCKET_DIR": t.TempDir()}
			for k, v := range c.vars {
				vars[k] = v
			}
			var cfg Config
			if err := env.ParseWithOptions(&cfg, env.Options{Prefix: "STRATA_", Environment: vars}); err != nil {
				t.Fatal(err)
			}
			if string(cfg.TenantCertificateField) != c.vars["STRATA_TENANT_CERTIFICATE_FIELD"] {
				t.Fatalf("TenantCertificateField = %q, want %q", cfg.TenantCertificateField, c.vars["STRATA_TENANT_CERTIFICATE_FIELD"])
			}
			err := cfg.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("got %v, want a refusal saying %q", err, c.want)
			}
		})
	}
}
