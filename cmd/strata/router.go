package main

import (
	"context"
	"fmt"
	"io"

	"github.com/stratametrics/strata/app/router"
	"github.com/stratametrics/strata/functions"
	"github.com/stratametrics/strata/internal/server"
)

// runRouter serves the router configured from the environment.
func runRouter(ctx context.Context, args []string, _, stderr io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: strata router takes no arguments; it is configured by STRATA_* variables", errUsage)
	}
	logger, err := newLogger(stderr)
	if err != nil {
		return err
	}
	tuneRuntime(logger, 0)
	cfg := functions.DefaultConfig()
	if err := loadEnv(&cfg); err != nil {
		return err
	}
	l, err := server.ListenTLS(cfg.HTTPListen, "STRATA_HTTP_LISTEN", cfg.TLS)
	if err != nil {
		return err
	}
	return router.Run(ctx, cfg, l, router.Options{Logger: logger.With("component", "router"), Pprof: debugging.Pprof})
}
