package security

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/stratametrics/strata/writeerr"
)

// Authorize's errors wrap writeerr.ErrUnauthorized (no or an unknown
// token: 401) or writeerr.ErrForbidden (a token not allowed for the
// tenant: 403), so they map to their status where every other one does.

// Tokens checks bearer tokens against a file, re-read when it changes.
// The file has one token per line, optionally followed by the tenants it
// may write, comma-separated; a token without tenants may write any:
//
//	# comments and blank lines are ignored
//	s3cr3t-for-prometheus-a   team-a
//	s3cr3t-for-ops            team-a,team-b
//	s3cr3t-admin
type Tokens struct {
	file *reloader[[]token]
}

type token struct {
	secret  []byte
	tenants []string // nil: any tenant
}

// LoadTokens reads a token file.
func LoadTokens(path string) (*Tokens, error) {
	r, err := newReloader("bearer tokens file", ReloadInterval, parseTokens, path)
	if err != nil {
		return nil, fmt.Errorf("bearer token file: %w", err)
	}
	return &Tokens{file: r}, nil
}

func parseTokens(b [][]byte) ([]token, error) {
	var out []token
	for i, line := range strings.Split(string(b[0]), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) > 2 {
			return nil, fmt.Errorf("line %d: want a token and optionally a comma-separated tenant list", i+1)
		}
		t := token{secret: []byte(f[0])}
		if len(f) == 2 {
			t.tenants = strings.Split(f[1], ",")
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, errors.New("no token in the file")
	}
	return out, nil
}

// Authorize checks the request's bearer token, and that it may act (write
// or read) for tenant.
func (t *Tokens) Authorize(h http.Header, tenant string) error {
	auth := h.Get("Authorization")
	secret, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || secret == "" {
		return fmt.Errorf("%w: a bearer token is required (Authorization: Bearer ...)", writeerr.ErrUnauthorized)
	}
	for _, tok := range t.file.get() {
		if subtle.ConstantTimeCompare(tok.secret, []byte(secret)) != 1 {
			continue
		}
		if tok.tenants != nil && !slices.Contains(tok.tenants, tenant) {
			return fmt.Errorf("%w: this token is not for tenant %q", writeerr.ErrForbidden, tenant)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown bearer token", writeerr.ErrUnauthorized)
}

// Secret is a secret read from a file (a bearer token to send), re-read
// when the file changes.
type Secret struct {
	file *reloader[string]
}

// LoadSecret reads a secret file; surrounding white space is dropped.
func LoadSecret(path string) (*Secret, error) {
	r, err := newReloader("bearer token file", ReloadInterval, func(b [][]byte) (string, error) {
		s := strings.TrimSpace(string(b[0]))
		if s == "" {
			return "", errors.New("empty")
		}
		return s, nil
	}, path)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	return &Secret{file: r}, nil
}

// Value is the current secret.
func (s *Secret) Value() string { return s.file.get() }
