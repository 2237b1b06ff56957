package main

import (
	"crypto/tls"
	"fmt"
	"net"

	"github.com/stratametrics/strata/internal/security"
)

// listenTLS opens a listener and, when cfg enables TLS, serves TLS on it
// with certificates re-read when their files change.
func listenTLS(addr, what string, cfg security.ServerConfig) (net.Listener, error) {
	tlsCfg, err := cfg.TLS()
	if err != nil {
		return nil, fmt.Errorf("STRATA_TLS_*: %w", err)
	}
	l, err := listen(addr, what)
	if err != nil || tlsCfg == nil {
		return l, err
	}
	return tls.NewListener(l, tlsCfg), nil
}
