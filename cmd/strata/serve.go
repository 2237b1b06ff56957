package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stratametrics/strata/internal/logging"
)

// loadEnv fills cfg from STRATA_* environment variables over the defaults
// already in it and in its env tags.
func loadEnv(cfg any) error {
	if err := env.ParseWithOptions(cfg, env.Options{Prefix: "STRATA_"}); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	return nil
}

// logConfig is shared by every component.
type logConfig = logging.Config

func newLogger(w io.Writer) (*slog.Logger, error) { return logging.FromEnv(w) }

// newRegistry returns a registry with the Go and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// withMetrics adds /metrics, served from gatherers, to h, and the Go
// profiler under /debug/pprof/ when STRATA_PPROF=1. The profiler is off by
// default: a CPU profile costs the process while it runs and a heap dump
// shows data, so only an operator (or `make bench`) who asks gets it.
func withMetrics(h http.Handler, gatherers ...prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers(gatherers), promhttp.HandlerOpts{EnableOpenMetrics: true}))
	if os.Getenv("STRATA_PPROF") == "1" {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/", h)
	return mux
}

// listen opens a TCP listener, saying which variable or flag to change
// when the address is taken.
func listen(addr, what string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (%s): %w", addr, what, err)
	}
	return l, nil
}

// serve serves h on l until ctx ends, then stops taking connections and
// drains requests in flight for up to drain.
func serve(ctx context.Context, l net.Listener, h http.Handler, drain time.Duration) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// A request body that trickles in for longer is refused: remote-write
		// bodies are a few hundred kilobytes at most.
		ReadTimeout:    2 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("drain HTTP server: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return h
}
