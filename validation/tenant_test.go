package validation

import (
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
