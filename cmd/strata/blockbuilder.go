package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratametrics/strata/blockbuilder"
)

// runBlockBuilder serves a block builder configured from the environment.
func runBlockBuilder(ctx context.Context, args []string, _, stderr io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: strata blockbuilder takes no arguments; it is configured by STRATA_* variables", errUsage)
	}
	logger, err := newLogger(stderr)
	if err != nil {
		return err
	}
	cfg := blockbuilder.DefaultConfig()
	if err := loadEnv(&cfg); err != nil {
		return err
	}
	if cfg.ReplicaName == "" {
		cfg.ReplicaName = hostname()
	}
	l, err := listen(cfg.HTTPListen, "STRATA_HTTP_LISTEN")
	if err != nil {
		return err
	}
	return runBlockBuilderOn(ctx, cfg, l, logger.With("component", "blockbuilder"), nil)
}

// runBlockBuilderOn opens the bucket and the tenants (replaying WALs) and
// serves on l until ctx ends. Then it stops taking writes, flushes and
// uploads everything, and only then closes the listener, so that writes
// racing the shutdown get a 503 the router can route around. started, if
// not nil, is called once the block builder serves.
func runBlockBuilderOn(ctx context.Context, cfg blockbuilder.Config, l net.Listener, logger *slog.Logger, started func(*blockbuilder.BlockBuilder)) error {
	reg := newRegistry()
	if err := cfg.Validate(); err != nil {
		l.Close()
		return err
	}
	bkt, err := cfg.Bucket.Open(ctx, logger, reg, "blockbuilder")
	if err != nil {
		l.Close()
		return fmt.Errorf("open bucket %s: %w", cfg.Bucket, err)
	}
	defer bkt.Close()
	bb, err := blockbuilder.New(cfg, bkt, logger, reg)
	if err != nil {
		l.Close()
		return err
	}
	// Serve from the start so that /-/healthy answers during WAL replay,
	// while /-/ready says 503 until it is done.
	srvCtx, stopServer := context.WithCancel(context.Background())
	defer stopServer()
	srvErr := make(chan error, 1)
	go func() {
		srvErr <- serve(srvCtx, l, withMetrics(bb.Handler(), reg, bb.TSDBGatherer()), 10*time.Second)
	}()
	logger.Info("block builder listening", "addr", l.Addr().String(), "bucket", cfg.Bucket.String(), "data_dir", cfg.DataDir)
	if err := bb.Open(); err != nil {
		return err
	}
	if started != nil {
		started(bb)
	}
	runErr := bb.Run(ctx)
	stopServer()
	if err := <-srvErr; err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

var _ prometheus.Gatherer = (*prometheus.Registry)(nil)
