package validation

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"

	"github.com/stratametrics/strata/writeerr"
)

// MaxTenantLength bounds tenant IDs: a tenant becomes a directory name, a
// label value and part of object keys downstream.
const MaxTenantLength = 128

// CertificateField names the field of a verified client certificate's
// subject that gives a request's tenant. The values are those of Thanos
// Receive's --receive.tenant-certificate-field; "" turns it off.
type CertificateField string

// The fields a tenant can be taken from.
const (
	CertificateOrganization       CertificateField = "organization"
	CertificateOrganizationalUnit CertificateField = "organizationalUnit"
	CertificateCommonName         CertificateField = "commonName"
)

var certificateFields = []CertificateField{CertificateOrganization, CertificateOrganizationalUnit, CertificateCommonName}

// Validate accepts "" (off) and the fields of certificateFields, spelled
// exactly so.
func (f CertificateField) Validate() error {
	if f == "" {
		return nil
	}
	names := make([]string, len(certificateFields))
	for i, c := range certificateFields {
		if f == c {
			return nil
		}
		names[i] = string(c)
	}
	return fmt.Errorf("%q is not a certificate field; allowed are %s (or empty: off)", string(f), strings.Join(names, ", "))
}

// CheckConfig refuses STRATA_TENANT_CERTIFICATE_FIELD when it names no
// field, or when mutual TLS (STRATA_TLS_CLIENT_CA_FILE) is off: only it
// verifies client certificates.
func (f CertificateField) CheckConfig(mutualTLS bool) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("STRATA_TENANT_CERTIFICATE_FIELD: %w", err)
	}
	if f != "" && !mutualTLS {
		return fmt.Errorf("STRATA_TENANT_CERTIFICATE_FIELD needs STRATA_TLS_CLIENT_CA_FILE: the tenant is taken from client certificates, which only mutual TLS verifies")
	}
	return nil
}

// TenantSource says where the tenant of a request comes from: a header,
// a default for requests without it, and optionally a field of the
// client certificate, which then overrides both.
type TenantSource struct {
	// Header names the tenant; Default is the tenant without it.
	Header, Default string
	// CertificateField, when set, takes the tenant from this field of the
	// request's verified client certificate whatever the header says: a
	// sender authenticated by mutual TLS writes as its certificate's
	// tenant only. Without such a certificate the request is refused.
	CertificateField CertificateField
}

// Tenant returns the tenant of a request with headers h and TLS state cs
// (nil without TLS). The ID is validated: it names a directory and a
// label downstream, so only a safe set of characters is allowed.
func (s TenantSource) Tenant(h http.Header, cs *tls.ConnectionState) (string, error) {
	if s.CertificateField != "" {
		return TenantFromCertificate(cs, s.CertificateField)
	}
	vs := h.Values(s.Header)
	switch len(vs) {
	case 0:
		return s.Default, nil
	case 1:
	default:
		return "", fmt.Errorf("%w: header %s given %d times", writeerr.ErrInvalid, s.Header, len(vs))
	}
	if err := ValidateTenant(vs[0]); err != nil {
		return "", fmt.Errorf("header %s: %w", s.Header, err)
	}
	return vs[0], nil
}

// Tenant returns the tenant of a request: the value of header, or def when
// the header is absent (TenantSource without a certificate field).
func Tenant(h http.Header, header, def string) (string, error) {
	return TenantSource{Header: header, Default: def}.Tenant(h, nil)
}

// TenantFromCertificate returns the tenant that field of the verified
// client certificate of cs names, validated as any tenant. The
// certificate is the leaf of the first verified chain, the one the
// handshake authenticated (Thanos takes the first peer certificate, the
// same one once verified); of several organizations or units, the
// first, as in Thanos.
//
// No verified certificate, or a certificate without the field, is a
// failure to authenticate as a tenant (401; Thanos answers 400): the
// sender's credentials, not its data, are wrong. A field that is no
// valid tenant ID is refused as a header's would be (400).
func TenantFromCertificate(cs *tls.ConnectionState, field CertificateField) (string, error) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", fmt.Errorf("%w: a verified client certificate (mutual TLS) is required: the tenant is taken from its %s", writeerr.ErrUnauthorized, field)
	}
	cert := cs.VerifiedChains[0][0]
	var tenant string
	switch field {
	case CertificateOrganization:
		if len(cert.Subject.Organization) > 0 {
			tenant = cert.Subject.Organization[0]
		}
	case CertificateOrganizationalUnit:
		if len(cert.Subject.OrganizationalUnit) > 0 {
			tenant = cert.Subject.OrganizationalUnit[0]
		}
	case CertificateCommonName:
		tenant = cert.Subject.CommonName
	default:
		// Configurations are validated: a caller's mistake.
		return "", fmt.Errorf("tenant from the client certificate: unknown field %q", string(field))
	}
	if tenant == "" {
		return "", fmt.Errorf("%w: the client certificate (subject %q) has no %s to take the tenant from", writeerr.ErrUnauthorized, clip([]byte(cert.Subject.String()), 128), field)
	}
	if err := ValidateTenant(tenant); err != nil {
		return "", fmt.Errorf("%s of the client certificate: %w", field, err)
	}
	return tenant, nil
}

// ValidateTenant accepts 1 to MaxTenantLength characters of [A-Za-z0-9_.-],
// never "." or "..": no path separators, nothing that walks a directory.
func ValidateTenant(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty tenant", writeerr.ErrInvalid)
	}
	if len(id) > MaxTenantLength {
		return fmt.Errorf("%w: tenant of %d bytes, at most %d allowed", writeerr.ErrInvalid, len(id), MaxTenantLength)
	}
	if id == "." || id == ".." {
		return fmt.Errorf("%w: tenant %q is not allowed", writeerr.ErrInvalid, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			continue
		}
		return fmt.Errorf("%w: tenant %q has character %q at %d; allowed are letters, digits, '-', '_' and '.'", writeerr.ErrInvalid, clip([]byte(id), 64), c, i)
	}
	return nil
}
