// Package router runs a router as one component: the router and its
// HTTP server (remote-write, OTLP, metrics, health), wired once for
// `strata router`, `strata dev`, the tests and the benchmarks.
//
// The one thing to know before changing it: the router keeps reloading
// its hashrings and probing block builders until the server has
// drained, not only until the stop begins, and returns only once the
// copies on their way to slower replicas are answered: they are
// acknowledged data too.
package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratametrics/strata/functions"
	"github.com/stratametrics/strata/internal/server"
)

// Options are what a caller may add to a router's configuration.
type Options struct {
	// Logger is the component's logger (nil: discard).
	Logger *slog.Logger
	// Registry gets the router's metrics (nil: server.NewRegistry()).
	Registry *prometheus.Registry
	// Pprof serves the Go profiler under /debug/pprof/ (STRATA_PPROF).
	Pprof bool
	// Routes are served beside the router's (strata dev: the bucket UI).
	Routes map[string]http.Handler
	// ReadyCheck, if set, must pass for /-/ready to answer 200.
	ReadyCheck func() error
}

// Run serves the router configured by cfg on l until ctx ends, then stops
// as behind a load balancer (ready 503, cfg.ShutdownDelay, drain). Run
// closes l whatever happens.
func Run(ctx context.Context, cfg functions.Config, l net.Listener, opts Options) error {
	r, _, h, err := build(cfg, opts)
	if err != nil {
		l.Close()
		return err
	}
	return serve(ctx, r, h, cfg, l, opts)
}

func build(cfg functions.Config, opts Options) (*functions.Router, *prometheus.Registry, http.Handler, error) {
	reg := opts.Registry
	if reg == nil {
		reg = server.NewRegistry()
	}
	r, err := functions.New(cfg, logger(opts), reg)
	if err != nil {
		return nil, nil, nil, err
	}
	if opts.ReadyCheck != nil {
		r.SetReadyCheck(opts.ReadyCheck)
	}
	h := server.WithMetrics(r.Handler(), opts.Pprof, reg)
	if len(opts.Routes) > 0 {
		mux := http.NewServeMux()
		for p, rh := range opts.Routes {
			mux.Handle(p, rh)
		}
		mux.Handle("/", h)
		h = mux
	}
	return r, reg, h, nil
}

func logger(opts Options) *slog.Logger {
	if opts.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return opts.Logger
}

func serve(ctx context.Context, r *functions.Router, h http.Handler, cfg functions.Config, l net.Listener, opts Options) error {
	logger(opts).Info("router listening", "addr", l.Addr().String(), "replication_factor", cfg.ReplicationFactor)
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(runCtx) }()
	err := server.ServeBehindBalancer(ctx, l, h, r.BeginShutdown, cfg.ShutdownDelay, cfg.ShutdownTimeout, logger(opts))
	// Each copy still on its way ends within STRATA_FORWARD_TIMEOUT.
	r.WaitForwards()
	stopRun()
	return errors.Join(err, <-runErr)
}

// Server is a router started by Start; Stop stops it as SIGTERM does
// and returns what it returned.
type Server struct {
	// Router is the running router.
	Router *functions.Router
	// Registry holds its metrics.
	Registry *prometheus.Registry
	// Addr is where it serves.
	Addr string
	*server.Running
}

// URL is the router's remote-write URL.
func (s *Server) URL() string { return "http://" + s.Addr + "/api/v1/receive" }

// Start builds the router and serves it on l in the background; it returns
// at once, or with the configuration's error.
func Start(cfg functions.Config, l net.Listener, opts Options) (*Server, error) {
	r, reg, h, err := build(cfg, opts)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("router: %w", err)
	}
	s := &Server{Router: r, Registry: reg, Addr: l.Addr().String()}
	s.Running = server.Go(func(ctx context.Context) error { return serve(ctx, r, h, cfg, l, opts) })
	return s, nil
}
