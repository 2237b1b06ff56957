package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/caarlos0/env/v11"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stratametrics/strata/internal/filewatch"
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

// newLogger is the command's logger; it is also the process' default, which
// the watchers of TLS and token files log to.
func newLogger(w io.Writer) (*slog.Logger, error) {
	l, err := logging.FromEnv(w)
	if err == nil {
		slog.SetDefault(l)
	}
	return l, err
}

// blockBuilderGOGC is the GOGC of processes that run block builders. Their
// heap is mostly the TSDB heads, which grow in place: little is allocated
// per sample (about 10 MB/s at a million samples/s), so a collection every
// quarter of growth, not every doubling as by default, costs a few percent
// of CPU and keeps their peak memory, what sizes their pods, lower (at 100k
// series, 5% below GOGC=50). Below 25 the peak hardly moves: it is then
// the live heads at the moment all their head chunks are cut at once.
const blockBuilderGOGC = 25

// tuneRuntime prepares the Go runtime of a server: gcPercent (0: Go's
// default) unless GOGC is set, and a soft memory limit at 90% of the
// container's (cgroup) limit unless GOMEMLIMIT is set, so that the
// garbage collector works harder as the limit nears instead of the
// process being killed past it (AUTOMEMLIMIT=off or a ratio changes this).
func tuneRuntime(logger *slog.Logger, gcPercent int) {
	if _, set := os.LookupEnv("GOGC"); !set && gcPercent > 0 {
		debug.SetGCPercent(gcPercent)
	}
	limit, err := memlimit.Set(memlimit.WithLogger(logger))
	if err == nil && limit != math.MaxInt64 {
		logger.Info("memory limit set from the container's", "GOMEMLIMIT", limit)
	}
}

// newRegistry returns a registry with the Go and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Every reloaded file of the process, by path (strata_config_file_*).
	if err := filewatch.Register(reg); err != nil {
		panic(err) // a fresh registry: cannot collide
	}
	return reg
}

// debugConfig is what an operator sets to look inside a process, for
// every command; run reads it before the command starts.
type debugConfig struct {
	// Pprof serves the Go profiler under /debug/pprof/ on the HTTP port.
	Pprof bool `env:"PPROF"`
}

// debugging is the process' debugConfig.
var debugging debugConfig

// withMetrics adds /metrics, served from gatherers, to h, and the Go
// profiler under /debug/pprof/ when STRATA_PPROF is true. The profiler is off by
// default: a CPU profile costs the process while it runs and a heap dump
// shows data, so only an operator (or `make bench`) who asks gets it.
func withMetrics(h http.Handler, gatherers ...prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers(gatherers), promhttp.HandlerOpts{EnableOpenMetrics: true}))
	if debugging.Pprof {
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

func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// A request body that trickles in for longer is refused: remote-write
		// bodies are a few hundred kilobytes at most.
		ReadTimeout:    2 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
}

// serve serves h on l until ctx ends, then stops taking connections and
// drains requests in flight for up to drain.
func serve(ctx context.Context, l net.Listener, h http.Handler, drain time.Duration) error {
	srv, errc, err := serveUntil(ctx, l, h)
	if srv == nil {
		return err
	}
	return shutdown(srv, errc, time.Now().Add(drain))
}

// serveUntil serves h on l until ctx ends and returns the server and the
// channel its Serve returns on; or, when Serve failed first, a nil server
// and its error.
func serveUntil(ctx context.Context, l net.Listener, h http.Handler) (*http.Server, chan error, error) {
	srv := newHTTPServer(h)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return nil, nil, err
	case <-ctx.Done():
		return srv, errc, nil
	}
}

// serveBehindBalancer is serve for a server behind load balancers. When ctx
// ends it calls stopping, which turns /-/ready to 503 and returns a channel
// closed once the requests in flight at that moment are answered. It keeps
// taking connections until then, and for at least delay, so that load
// balancers see the change and stop sending before the listener closes;
// then it drains what is still in flight. bound limits the whole.
func serveBehindBalancer(ctx context.Context, l net.Listener, h http.Handler, stopping func() <-chan struct{}, delay, bound time.Duration, logger *slog.Logger) error {
	srv, errc, err := serveUntil(ctx, l, h)
	if srv == nil {
		return err
	}
	deadline := time.Now().Add(bound)
	answered, delayed := stopping(), time.After(delay)
	logger.Info("shutting down: /-/ready answers 503; still serving until the writes in flight are answered and load balancers have had the delay to see it", "delay", delay)
	timeout := time.NewTimer(bound)
	defer timeout.Stop()
	for answered != nil || delayed != nil {
		select {
		case <-answered:
			answered = nil
		case <-delayed:
			delayed = nil
		case <-timeout.C:
			answered, delayed = nil, nil
		case err := <-errc:
			return err
		}
	}
	logger.Info("closing the listener; draining requests in flight", "until", deadline)
	return shutdown(srv, errc, deadline)
}

// shutdown stops srv taking connections and waits until deadline for the
// requests in flight; errc is srv.Serve's result.
func shutdown(srv *http.Server, errc <-chan error, deadline time.Time) error {
	sctx, cancel := context.WithDeadline(context.Background(), deadline)
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
