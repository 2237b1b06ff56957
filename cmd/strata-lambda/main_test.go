package main

import (
	"io"
	"strings"
	"testing"
)

// TestSetupRefusesWhatLambdaCannotDo: the Function URL or API Gateway
// terminates TLS, so neither the listener's TLS nor a tenant taken from
// client certificates can work; both are refused at start, naming the
// variable.
func TestSetupRefusesWhatLambdaCannotDo(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"STRATA_TENANT_CERTIFICATE_FIELD": "organization", "STRATA_TLS_CLIENT_CA_FILE": "ca.pem"}, "STRATA_TENANT_CERTIFICATE_FIELD has no effect in Lambda"},
		{map[string]string{"STRATA_TENANT_CERTIFICATE_FIELD": "commonName"}, "STRATA_TENANT_CERTIFICATE_FIELD has no effect in Lambda"},
		{map[string]string{"STRATA_TLS_CLIENT_CA_FILE": "ca.pem"}, "STRATA_TLS_* has no effect in Lambda"},
	} {
		t.Setenv("STRATA_ENDPOINTS", "127.0.0.1:1")
		for _, v := range []string{"STRATA_TENANT_CERTIFICATE_FIELD", "STRATA_TLS_CLIENT_CA_FILE"} {
			t.Setenv(v, c.env[v])
		}
		if _, _, err := setup(io.Discard); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want a refusal saying %q", c.env, err, c.want)
		}
	}
}
