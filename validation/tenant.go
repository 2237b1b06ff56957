package validation

import (
	"fmt"
	"net/http"

	"github.com/stratametrics/strata/writeerr"
)

// MaxTenantLength bounds tenant IDs: a tenant becomes a directory name, a
// label value and part of object keys downstream.
const MaxTenantLength = 128

// Tenant returns the tenant of a request: the value of header, or def when
// the header is absent. The ID is validated: it names a directory and a
// label downstream, so only a safe set of characters is allowed.
func Tenant(h http.Header, header, def string) (string, error) {
	vs := h.Values(header)
	switch len(vs) {
	case 0:
		return def, nil
	case 1:
	default:
		return "", fmt.Errorf("%w: header %s given %d times", writeerr.ErrInvalid, header, len(vs))
	}
	if err := ValidateTenant(vs[0]); err != nil {
		return "", fmt.Errorf("header %s: %w", header, err)
	}
	return vs[0], nil
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
