package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	appbb "github.com/stratametrics/strata/app/blockbuilder"
	"github.com/stratametrics/strata/blockbuilder"
	"github.com/stratametrics/strata/internal/server"
)

// blockBuilderOptions tunes the runtime of a block builder process and
// returns the options it is run with: GOGC is replayGOGC until the WALs
// on disk are replayed, then tuned by blockBuilderGC until ctx ends,
// unless GOGC is set.
func blockBuilderOptions(ctx context.Context, logger *slog.Logger) appbb.Options {
	opts := appbb.Options{Logger: logger.With("component", "blockbuilder"), Pprof: debugging.Pprof}
	if tuneRuntime(logger, replayGOGC) {
		opts.Started = func(*blockbuilder.BlockBuilder) { blockBuilderGC(logger).Start(ctx) }
	}
	return opts
}

// runBlockBuilder serves a block builder configured from the environment.
func runBlockBuilder(ctx context.Context, args []string, _, stderr io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: strata blockbuilder takes no arguments; it is configured by STRATA_* variables", errUsage)
	}
	logger, err := newLogger(stderr)
	if err != nil {
		return err
	}
	opts := blockBuilderOptions(ctx, logger)
	cfg := blockbuilder.DefaultConfig()
	if err := loadEnv(&cfg); err != nil {
		return err
	}
	if cfg.ReplicaName == "" {
		cfg.ReplicaName = hostname()
	}
	limits := blockbuilder.DefaultQueryLimits()
	if err := loadEnv(&limits); err != nil {
		return err
	}
	l, err := server.ListenTLS(cfg.HTTPListen, "STRATA_HTTP_LISTEN", cfg.TLS)
	if err != nil {
		return err
	}
	grpcL, err := server.Listen(cfg.GRPCListen, "STRATA_GRPC_LISTEN")
	if err != nil {
		l.Close()
		return err
	}
	return appbb.Run(ctx, cfg, limits, l, grpcL, opts)
}
