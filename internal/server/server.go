// Package server holds what every Strata HTTP server shares: listeners
// that say which setting to change when a port is taken, the registry
// with the process' collectors, /metrics and the profiler, and the two
// ways of stopping: draining at once, or first telling load balancers.
//
// The one thing to know before changing it: a server behind load
// balancers must keep taking connections after it starts answering
// /-/ready with 503, or writes in flight on their way to it are refused
// instead of sent elsewhere.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stratametrics/strata/internal/filewatch"
	"github.com/stratametrics/strata/internal/security"
)

// Listen opens a TCP listener, saying which variable or flag to change
// when the address is taken.
func Listen(addr, what string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (%s): %w", addr, what, err)
	}
	return l, nil
}

// ListenTLS is Listen serving TLS when cfg enables it, with certificates
// re-read when their files change.
func ListenTLS(addr, what string, cfg security.ServerConfig) (net.Listener, error) {
	tlsCfg, err := cfg.TLS()
	if err != nil {
		return nil, fmt.Errorf("STRATA_TLS_*: %w", err)
	}
	l, err := Listen(addr, what)
	if err != nil || tlsCfg == nil {
		return l, err
	}
	return tls.NewListener(l, tlsCfg), nil
}

// NewRegistry returns a registry with the Go and process collectors and
// the reloaded files of the process (strata_config_file_*).
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := filewatch.Register(reg); err != nil {
		panic(err) // a fresh registry: cannot collide
	}
	return reg
}

// WithMetrics adds /metrics, served from gatherers, to h, and the Go
// profiler under /debug/pprof/ when pprof is set. The profiler is off by
// default: a CPU profile costs the process while it runs and a heap dump
// shows data, so only an operator (or `make bench`) who asks gets it.
func WithMetrics(h http.Handler, pprofOn bool, gatherers ...prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers(gatherers), promhttp.HandlerOpts{EnableOpenMetrics: true}))
	if pprofOn {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/", h)
	return mux
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

// Serve serves h on l until ctx ends, then stops taking connections and
// drains requests in flight for up to drain.
func Serve(ctx context.Context, l net.Listener, h http.Handler, drain time.Duration) error {
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

// ServeBehindBalancer is Serve for a server behind load balancers. When
// ctx ends it calls stopping, which turns /-/ready to 503 and returns a
// channel closed once the requests in flight at that moment are answered.
// It keeps taking connections until then, and for at least delay, so that
// load balancers see the change and stop sending before the listener
// closes; then it drains what is still in flight. bound limits the whole.
func ServeBehindBalancer(ctx context.Context, l net.Listener, h http.Handler, stopping func() <-chan struct{}, delay, bound time.Duration, logger *slog.Logger) error {
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

// Running is a component that Go runs in the background until Stop: what
// the Start functions of app/ return, so that tests and strata dev run a
// component exactly as its command does.
type Running struct {
	stop context.CancelFunc
	done chan struct{}
	err  error
}

// Go runs run in a goroutine, with a context that Stop cancels.
func Go(run func(ctx context.Context) error) *Running {
	ctx, stop := context.WithCancel(context.Background())
	r := &Running{stop: stop, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = run(ctx)
	}()
	return r
}

// Done is closed once run has returned.
func (r *Running) Done() <-chan struct{} { return r.done }

// Stop cancels run's context (as SIGTERM does to a command) and returns
// what run returned, once it has. It may be called more than once.
func (r *Running) Stop() error {
	r.stop()
	<-r.done
	return r.err
}
