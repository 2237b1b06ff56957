// Package blockbuilder runs a block builder as one component: its
// bucket, the block builder, its HTTP server (remote-write, OTLP, the
// Prometheus query API, metrics, health) and its StoreAPI server, wired
// once for `strata blockbuilder`, `strata dev`, the tests and the
// benchmarks.
//
// The one thing to know before changing it: the listeners close only
// after the block builder has flushed and uploaded everything, so that
// writes racing the shutdown get a 503 the router can route around.
package blockbuilder

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
	"github.com/stratametrics/strata/internal/server"
)

// Options are what a caller may add to a block builder's configuration.
type Options struct {
	// Logger is the component's logger (nil: discard).
	Logger *slog.Logger
	// Registry gets the block builder's metrics and serves them with its
	// TSDBs' (nil: server.NewRegistry()).
	Registry *prometheus.Registry
	// Pprof serves the Go profiler under /debug/pprof/ (STRATA_PPROF).
	Pprof bool
	// Wrap, if set, wraps the HTTP handler: tests put faults in front.
	Wrap func(http.Handler) http.Handler
	// Started, if set, is called once the block builder serves, after its
	// WALs are replayed.
	Started func(*blockbuilder.BlockBuilder)
}

// Run opens the bucket and the tenants (replaying WALs) and serves on l
// (HTTP) and grpcL (Thanos' StoreAPI) until ctx ends. Then it stops
// taking writes, flushes and uploads everything, and only then closes the
// listeners. Run closes both listeners whatever happens.
func Run(ctx context.Context, cfg blockbuilder.Config, limits blockbuilder.QueryLimits, l, grpcL net.Listener, opts Options) error {
	closeAll := func() {
		l.Close()
		grpcL.Close()
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	reg := opts.Registry
	if reg == nil {
		reg = server.NewRegistry()
	}
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
		// The limits file may give a tenant exemplars.
		NoExemplars: cfg.MaxExemplars == 0 && cfg.LimitsFile == "",
	})
	if err != nil {
		closeAll()
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", bb.Handler())
	queryAPI.Register(mux)
	var h http.Handler = mux
	if opts.Wrap != nil {
		h = opts.Wrap(h)
	}
	// Serve from the start so that /-/healthy answers during WAL replay,
	// while /-/ready says 503 (and the StoreAPI's Info Unavailable) until
	// it is done.
	srvCtx, stopServer := context.WithCancel(context.Background())
	defer stopServer()
	srvErr, grpcErr := make(chan error, 1), make(chan error, 1)
	go func() {
		srvErr <- server.Serve(srvCtx, l, server.WithMetrics(h, opts.Pprof, reg, bb.TSDBGatherer()), 10*time.Second)
	}()
	go func() { grpcErr <- storeAPI.Serve(srvCtx, grpcL, 10*time.Second, grpcOpts...) }()
	logger.Info("block builder listening", "addr", l.Addr().String(), "grpc_addr", grpcL.Addr().String(),
		"bucket", cfg.Bucket.String(), "data_dir", cfg.DataDir)
	if err := bb.Open(); err != nil {
		stopServer()
		<-srvErr
		<-grpcErr
		return err
	}
	if opts.Started != nil {
		opts.Started(bb)
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

// Server is a block builder started by Start; Stop stops it as SIGTERM
// does (flush, upload, close) and returns what Run returned.
type Server struct {
	// BlockBuilder is the running block builder.
	BlockBuilder *blockbuilder.BlockBuilder
	// Addr and GRPCAddr are where it serves HTTP and the StoreAPI.
	Addr, GRPCAddr string
	*server.Running
}

// Start runs Run in the background on l and grpcL and returns once the
// block builder serves (its WALs replayed), or with Run's error.
func Start(cfg blockbuilder.Config, limits blockbuilder.QueryLimits, l, grpcL net.Listener, opts Options) (*Server, error) {
	s := &Server{Addr: l.Addr().String(), GRPCAddr: grpcL.Addr().String()}
	started := make(chan *blockbuilder.BlockBuilder, 1)
	next := opts.Started
	opts.Started = func(bb *blockbuilder.BlockBuilder) {
		if next != nil {
			next(bb)
		}
		started <- bb
	}
	s.Running = server.Go(func(ctx context.Context) error { return Run(ctx, cfg, limits, l, grpcL, opts) })
	select {
	case s.BlockBuilder = <-started:
		return s, nil
	case <-s.Done():
		err := s.Stop()
		if err == nil {
			err = fmt.Errorf("block builder %s stopped before it served", cfg.ReplicaName)
		}
		return nil, err
	}
}
