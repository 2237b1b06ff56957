package validation

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"strings"
	"testing"

	"github.com/stratametrics/strata/writeerr"
)

func TestTenant(t *testing.T) {
	for _, c := range []struct {
		values []string
		want   string
		err    string
	}{
		{nil, "default-tenant", ""},
		{[]string{"team-a"}, "team-a", ""},
		{[]string{"a.b_c-D9"}, "a.b_c-D9", ""},
		{[]string{""}, "", "empty tenant"},
		{[]string{"."}, "", "not allowed"},
		{[]string{".."}, "", "not allowed"},
		{[]string{"../../etc"}, "", "character '/'"},
		{[]string{"a/b"}, "", "character '/'"},
		{[]string{"a\\b"}, "", "character"},
		{[]string{"tëam"}, "", "character"},
		{[]string{strings.Repeat("t", 129)}, "", "129 bytes"},
		{[]string{"a", "b"}, "", "given 2 times"},
	} {
		h := http.Header{}
		for _, v := range c.values {
			h.Add("THANOS-TENANT", v)
		}
		got, err := Tenant(h, "THANOS-TENANT", "default-tenant")
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("%q: got %q, %v; want %q", c.values, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || writeerr.HTTPStatus(err) != 400):
			t.Errorf("%q: error %v (status %d), want a 400 saying %q", c.values, err, writeerr.HTTPStatus(err), c.err)
		}
	}
}

// FuzzTenant: whatever the header holds, an accepted tenant is safe to use
// as a directory name and a label value.
func FuzzTenant(f *testing.F) {
	for _, s := range []string{"team-a", "..", "../x", "a/b", "", "x\x00y", strings.Repeat("a", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		h := http.Header{}
		h.Set("THANOS-TENANT", v)
		got, err := Tenant(h, "THANOS-TENANT", "default-tenant")
		if err != nil {
			if writeerr.HTTPStatus(err) != 400 {
				t.Fatalf("status %d for a bad tenant", writeerr.HTTPStatus(err))
			}
			return
		}
		if got == "" || got == "." || got == ".." || strings.ContainsAny(got, "/\\\x00") || len(got) > MaxTenantLength {
			t.Fatalf("unsafe tenant %q accepted", got)
		}
	})
}

// TestTenantFromCertificate: with a certificate field set, the tenant is
// that field of the verified client certificate, whatever the header
// says; without a verified certificate, or with the field empty, the
// request is refused as unauthenticated (401), and a field that is no
// valid tenant ID as a bad header is (400).
func TestTenantFromCertificate(t *testing.T) {
	subject := pkix.Name{
		CommonName:         "prometheus-0",
		Organization:       []string{"team-cert", "team-second"},
		OrganizationalUnit: []string{"unit-a", "unit-b"},
	}
	verified := func(s pkix.Name) *tls.ConnectionState {
		leaf := &x509.Certificate{Subject: s}
		ca := &x509.Certificate{Subject: pkix.Name{CommonName: "ca", Organization: []string{"ca-org"}}}
		return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf, ca}}}
	}
	// Presented but not verified: a listener that asks for certificates
	// without checking them.
	unverified := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: subject}}}
	for _, c := range []struct {
		name   string
		field  CertificateField
		cs     *tls.ConnectionState
		want   string
		status int
		says   string
	}{
		{"organization: the first", CertificateOrganization, verified(subject), "team-cert", 0, ""},
		{"organizational unit: the first", CertificateOrganizationalUnit, verified(subject), "unit-a", 0, ""},
		{"common name", CertificateCommonName, verified(subject), "prometheus-0", 0, ""},
		{"no TLS", CertificateOrganization, nil, "", 401, "a verified client certificate (mutual TLS) is required: the tenant is taken from its organization"},
		{"TLS without a client certificate", CertificateCommonName, &tls.ConnectionState{}, "", 401, "a verified client certificate (mutual TLS) is required"},
		{"a certificate not verified", CertificateOrganization, unverified, "", 401, "a verified client certificate"},
		{"no organization", CertificateOrganization, verified(pkix.Name{CommonName: "x"}), "", 401, `the client certificate (subject "CN=x") has no organization to take the tenant from`},
		{"an empty organization", CertificateOrganization, verified(pkix.Name{CommonName: "x", Organization: []string{""}}), "", 401, "has no organization"},
		{"no organizational unit", CertificateOrganizationalUnit, verified(pkix.Name{Organization: []string{"o"}}), "", 401, "has no organizationalUnit"},
		{"no common name", CertificateCommonName, verified(pkix.Name{Organization: []string{"o"}}), "", 401, "has no commonName"},
		{"a path in the organization", CertificateOrganization, verified(pkix.Name{Organization: []string{"../etc"}}), "", 400, "organization of the client certificate: invalid request: tenant \"../etc\" has character '/'"},
		{"a space in the common name", CertificateCommonName, verified(pkix.Name{CommonName: "team a"}), "", 400, "commonName of the client certificate: invalid request: tenant \"team a\" has character ' '"},
		{"a dot-dot unit", CertificateOrganizationalUnit, verified(pkix.Name{OrganizationalUnit: []string{".."}}), "", 400, "not allowed"},
		{"too long", CertificateCommonName, verified(pkix.Name{CommonName: strings.Repeat("t", 129)}), "", 400, "129 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The header names another tenant, given twice even, and is
			// not read: the certificate decides.
			h := http.Header{"Thanos-Tenant": {"team-header", "team-other"}}
			src := TenantSource{Header: "THANOS-TENANT", Default: "default-tenant", CertificateField: c.field}
			got, err := src.Tenant(h, c.cs)
			if c.status == 0 {
				if err != nil || got != c.want {
					t.Fatalf("got %q, %v; want %q", got, err, c.want)
				}
				if err := ValidateTenant(got); err != nil {
					t.Fatalf("tenant %q from the certificate does not pass ValidateTenant: %v", got, err)
				}
				return
			}
			if err == nil || got != "" {
				t.Fatalf("got %q, %v; want a %d saying %q", got, err, c.status, c.says)
			}
			if s := writeerr.HTTPStatus(err); s != c.status || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("error %q (status %d), want a %d saying %q", err, s, c.status, c.says)
			}
		})
	}

	// Without a field, the certificate is not read: the header decides.
	h := http.Header{"Thanos-Tenant": {"team-header"}}
	if got, err := (TenantSource{Header: "THANOS-TENANT", Default: "default-tenant"}).Tenant(h, verified(subject)); err != nil || got != "team-header" {
		t.Fatalf("without a certificate field: got %q, %v; want the header's team-header", got, err)
	}
}

func TestCertificateFieldValidate(t *testing.T) {
	for _, f := range []CertificateField{"", "organization", "organizationalUnit", "commonName"} {
		if err := f.Validate(); err != nil {
			t.Errorf("%q refused: %v", f, err)
		}
	}
	for _, f := range []CertificateField{"Organization", "organizationalunit", "cn", "O", "common_name", " commonName"} {
		err := f.Validate()
		if err == nil || !strings.Contains(err.Error(), "allowed are organization, organizationalUnit, commonName") {
			t.Errorf("%q: got %v, want a refusal naming the allowed fields", f, err)
		}
	}
}
