package functions

import (
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"
)

// TestTenantCertificateFieldConfig: STRATA_TENANT_CERTIFICATE_FIELD takes
// Thanos' spellings, is off by default, and needs mutual TLS.
func TestTenantCertificateFieldConfig(t *testing.T) {
	for _, c := range []struct {
		name string
		vars map[string]string
		want string // "" accepted, else the message
	}{
		{"off by default", nil, ""},
		{"organization with mutual TLS", map[string]string{"STRATA_TENANT_CERTIFICATE_FIELD": "organization", "STRATA_TLS_CERT_FILE": "c", "STRATA_TLS_KEY_FILE": "k", "STRATA_TLS_CLIENT_CA_FILE": "ca"}, ""},
		{"organizationalUnit with mutual TLS", map[string]string{"STRATA_TENANT_CERTIFICATE_FIELD": "organizationalUnit", "STRATA_TLS_CLIENT_CA_FILE": "ca"}, ""},
		{"commonName with mutual TLS", map[string]string{"STRATA_TENANT_CERTIFICATE_FIELD": "commonName", "STRATA_TLS_CLIENT_CA_FILE": "ca"}, ""},
		{"without a client CA", map[string]string{"STRATA_TENANT_CERTIFICATE_FIELD": "organization", "STRATA_TLS_CERT_FILE": "c", "STRATA_TLS_KEY_FILE": "k"},
			"STRATA_TENANT_CERTIFICATE_FIELD needs STRATA_TLS_CLIENT_CA_FILE"},
		{"an unknown field", map[string]string{"STRATA_TENANT_CERTIFICATE_FIELD": "CN", "STRATA_TLS_CLIENT_CA_FILE": "ca"},
			`STRATA_TENANT_CERTIFICATE_FIELD: "CN" is not a certificate field; allowed are organization, organizationalUnit, commonName`},
	} {
		t.Run(c.name, func(t *testing.T) {
			vars := map[string]string{"STRATA_ENDPOINTS": "127.0.0.1:1"}
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
