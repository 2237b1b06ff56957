package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stratametrics/strata/functions"
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
	cfg := functions.DefaultConfig()
	if err := loadEnv(&cfg); err != nil {
		return err
	}
	reg := newRegistry()
	r, err := functions.New(cfg, logger.With("component", "router"), reg)
	if err != nil {
		return err
	}
	l, err := listenTLS(cfg.HTTPListen, "STRATA_HTTP_LISTEN", cfg.TLS)
	if err != nil {
		return err
	}
	logger.Info("router listening", "addr", l.Addr().String(), "replication_factor", cfg.ReplicationFactor)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.Run(gctx) })
	g.Go(func() error { return serve(gctx, l, withMetrics(r.Handler(), reg), 30*time.Second) })
	return g.Wait()
}
