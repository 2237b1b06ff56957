package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/stratametrics/strata/blockbuilder"
	"github.com/stratametrics/strata/blockbuilder/promapi"
	"github.com/stratametrics/strata/blockbuilder/storeapi"
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
	tuneRuntime(logger, blockBuilderGOGC)
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
	l, err := listenTLS(cfg.HTTPListen, "STRATA_HTTP_LISTEN", cfg.TLS)
	if err != nil {
		return err
	}
	grpcL, err := listen(cfg.GRPCListen, "STRATA_GRPC_LISTEN")
	if err != nil {
		l.Close()
		return err
	}
	return runBlockBuilderOn(ctx, cfg, limits, l, grpcL, logger.With("component", "blockbuilder"), nil)
}

// runBlockBuilderOn opens the bucket and the tenants (replaying WALs) and
// serves on l (HTTP: remote-write, the Prometheus query API under
// /api/v1/, metrics, health) and grpcL (Thanos' StoreAPI) until ctx ends.
// Then it stops taking writes, flushes and uploads everything, and only
// then closes the listeners, so that writes racing the shutdown get a 503
// the router can route around. started, if not nil, is called once the
// block builder serves.
func runBlockBuilderOn(ctx context.Context, cfg blockbuilder.Config, limits blockbuilder.QueryLimits, l, grpcL net.Listener, logger *slog.Logger, started func(*blockbuilder.BlockBuilder)) error {
	closeAll := func() {
		l.Close()
		grpcL.Close()
	}
	reg := newRegistry()
	if err := cfg.Validate(); err != nil {
		closeAll()
		return err
	}
	// The StoreAPI is served with the HTTP listener's TLS, so that one
	// certificate covers the block builder.
	var grpcOpts []grpc.ServerOption
	tlsCfg, err := cfg.TLS.TLS()
	if err != nil {
		closeAll()
		return fmt.Errorf("STRATA_TLS_*: %w", err)
	}
	if tlsCfg != nil {
		grpcOpts = append(grpcOpts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	bkt, err := cfg.Bucket.Open(ctx, logger, reg, "blockbuilder")
	if err != nil {
		closeAll()
		return fmt.Errorf("open bucket %s: %w", cfg.Bucket, err)
	}
	defer bkt.Close()
	bb, err := blockbuilder.New(cfg, bkt, logger, reg)
	if err != nil {
		closeAll()
		return err
	}
	queryAPI, err := promapi.New(promapi.Config{TenantHeader: cfg.TenantHeader, DefaultTenant: cfg.DefaultTenant, Limits: limits},
		bb, logger.With("api", "query"), reg)
	if err != nil {
		closeAll()
		return err
	}
	storeAPI, err := storeapi.New(bb, storeapi.Options{
		Limits: limits, Ready: bb.Ready, Logger: logger.With("api", "store"),
		NoExemplars: cfg.MaxExemplars == 0,
	})
	if err != nil {
		closeAll()
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", bb.Handler())
	queryAPI.Register(mux)
	// Serve from the start so that /-/healthy answers during WAL replay,
	// while /-/ready says 503 (and the StoreAPI's Info Unavailable) until
	// it is done.
	srvCtx, stopServer := context.WithCancel(context.Background())
	defer stopServer()
	srvErr, grpcErr := make(chan error, 1), make(chan error, 1)
	go func() {
		srvErr <- serve(srvCtx, l, withMetrics(mux, reg, bb.TSDBGatherer()), 10*time.Second)
	}()
	go func() { grpcErr <- storeAPI.Serve(srvCtx, grpcL, 10*time.Second, grpcOpts...) }()
	logger.Info("block builder listening", "addr", l.Addr().String(), "grpc_addr", grpcL.Addr().String(),
		"bucket", cfg.Bucket.String(), "data_dir", cfg.DataDir)
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
	if err := <-grpcErr; err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

var _ prometheus.Gatherer = (*prometheus.Registry)(nil)
