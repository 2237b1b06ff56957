package main

import (
	"context"
	"errors"
	"fmt"
	"io"

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
	tuneRuntime(logger, 0)
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
	// The router reloads its hashrings and probes block builders until the
	// server has drained, not only until SIGTERM: it still takes writes
	// meanwhile.
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(runCtx) }()
	err = serveBehindBalancer(ctx, l, withMetrics(r.Handler(), reg), r.BeginShutdown, cfg.ShutdownDelay, cfg.ShutdownTimeout, logger)
	// Copies still on their way to slower replicas are acknowledged data
	// too; each ends within STRATA_FORWARD_TIMEOUT.
	r.WaitForwards()
	stopRun()
	return errors.Join(err, <-runErr)
}
