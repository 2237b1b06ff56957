// Package functions is Strata's router: a stateless http.Handler that takes
// Prometheus remote-write (1.0 and 2.0), validates every series, finds the
// tenant, asks shard for each series' owners and writes each block builder
// its part at once, answering by quorum.
//
// The one thing to know before changing it: the router never re-encodes
// series, except those a tenant's relabeling changes (relabel.go). Parts
// for block builders are made by copying the bytes of the series they own
// (remotewrite.Request.Append*), which is what keeps its cost per sample
// low; the answer's status is decided in decide alone.
package functions

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratametrics/strata/internal/security"
	"github.com/stratametrics/strata/otlp"
	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/shard"
	"github.com/stratametrics/strata/validation"
)

// Router is the remote-write front door. It holds no data.
type Router struct {
	cfg     Config
	ring    shard.Source
	watcher *shard.Watcher
	limits  *tenantLimits
	eps     *endpoints
	logger  *slog.Logger
	metrics *metrics
	// compressed and raw recycle request bodies: kept apart so that each
	// pool's buffers have the size its use needs.
	compressed, raw *remotewrite.BufferPool
	states          sync.Pool
	otlp            otlp.Translator
	known           *knownSeries // nil when turned off
	relabelCache    *relabelCache
	ha              haElections

	ctx    context.Context
	cancel context.CancelFunc

	// readyCheck, when set, must pass for /-/ready to answer 200.
	readyCheck func() error
	// drain tracks the writes begun before shutdown; see BeginShutdown.
	drain drainer

	tokens *security.Tokens // nil: no bearer token required
	// tenancy finds a request's tenant: the header, the default, or the
	// client certificate.
	tenancy validation.TenantSource

	// forwards counts the parts on their way to block builders, also
	// those still running after their request was answered.
	forwards sync.WaitGroup
	// waitAll answers only once every part was answered (see
	// WaitForEveryReplica).
	waitAll bool
}

// New checks cfg, loads the hashrings and prepares a router.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Router{
		cfg: cfg, logger: logger,
		tenancy: validation.TenantSource{Header: cfg.TenantHeader, Default: cfg.DefaultTenant, CertificateField: cfg.TenantCertificateField},
		// Buffers past these sizes (bodies far larger than Prometheus
		// sends) are dropped after use rather than kept.
		compressed: remotewrite.NewBufferPool(4 << 20),
		raw:        remotewrite.NewBufferPool(16 << 20),
	}
	opts := cfg.shardOptions()
	if cfg.HashringsFile != "" {
		w, err := shard.NewWatcher(cfg.HashringsFile, opts, logger, reg)
		if err != nil {
			return nil, fmt.Errorf("STRATA_HASHRINGS_FILE: %w", err)
		}
		r.ring, r.watcher = w, w
	} else {
		ring, err := shard.SingleHashring(cfg.Endpoints, opts)
		if err != nil {
			return nil, fmt.Errorf("STRATA_ENDPOINTS: %w", err)
		}
		r.ring = shard.Static(ring)
	}
	var err error
	if r.limits, err = newTenantLimits(&r.cfg, logger, reg); err != nil {
		return nil, err
	}
	if cfg.BearerTokenFile != "" {
		if r.tokens, err = security.LoadTokens(cfg.BearerTokenFile); err != nil {
			return nil, fmt.Errorf("STRATA_BEARER_TOKEN_FILE: %w", err)
		}
	}
	r.metrics = newMetrics(reg, cfg.MetricsMaxTenants)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if r.eps, err = newEndpoints(r.ctx, &r.cfg, logger, r.metrics); err != nil {
		return nil, err
	}
	r.states.New = func() any { return &writeState{} }
	r.known = newKnownSeries(cfg.KnownSeries)
	r.relabelCache = newRelabelCache(cfg.KnownSeries)
	return r, nil
}

// SetReadyCheck makes /-/ready also require check to pass (strata dev uses
// it to wait for its block builders).
func (r *Router) SetReadyCheck(check func() error) { r.readyCheck = check }

// WaitForEveryReplica makes the router answer a write only once every
// block builder it went to has answered (or its forward timed out), not
// as soon as a quorum has it. For AWS Lambda, which freezes the execution
// environment after each answer: a part still on its way would stop with
// it, and likely time out at the thaw.
func (r *Router) WaitForEveryReplica() { r.waitAll = true }

// WaitForwards returns once every part sent to a block builder has been
// answered or has timed out, those of writes answered early included.
// Call it after the HTTP server has drained, before the process exits:
// a part still on its way is a replica's copy of acknowledged data.
func (r *Router) WaitForwards() { r.forwards.Wait() }

// BeginShutdown marks the router as shutting down: /-/ready answers 503
// from now on, so that load balancers stop sending to it, while it still
// takes every write that reaches it. The channel it returns is closed once
// every write begun before the call has been answered.
func (r *Router) BeginShutdown() <-chan struct{} { return r.drain.begin() }

// Handler serves remote-write and health.
func (r *Router) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/receive", r.handleWrite)
	mux.HandleFunc("POST /api/v1/write", r.handleWrite)
	// OTLP/HTTP: Prometheus' and Thanos Receive's path, and Mimir's.
	mux.HandleFunc("POST /api/v1/otlp/v1/metrics", r.handleOTLP)
	mux.HandleFunc("POST /otlp/v1/metrics", r.handleOTLP)
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "healthy")
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if r.drain.stopping() {
			http.Error(w, "not ready: shutting down", http.StatusServiceUnavailable)
			return
		}
		if r.readyCheck != nil {
			if err := r.readyCheck(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// Run reloads the hashrings and limits files until ctx ends.
func (r *Router) Run(ctx context.Context) error {
	defer r.cancel()
	var wg sync.WaitGroup
	if r.watcher != nil {
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.watcher.Run(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); r.limits.run(ctx) }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				r.metrics.sweep(now.Add(-tenantMetricsTTL))
			}
		}
	}()
	<-ctx.Done()
	wg.Wait()
	return nil
}

// respond writes the decided answer: 204 with the written counts, or the
// error's status and message. Written headers are sent on every 2.0
// answer, as its specification asks, and on no 1.0 answer.
func (r *Router) respond(w http.ResponseWriter, out outcome) {
	// What relabeling dropped was accepted: a sender counts what a
	// receiver does not say it wrote as failed.
	written := out.written
	written.Add(out.relabelHeld)
	written.Add(out.haHeld)
	written.SetHeaders(out.version, w.Header())
	status := out.httpStatus()
	if out.err == nil {
		w.WriteHeader(status)
		return
	}
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	msg := out.err.Error()
	if status >= 500 {
		r.logger.Warn("write failed", "status", status, "err", msg)
	} else {
		r.logger.Debug("write refused", "status", status, "err", msg)
	}
	http.Error(w, strings.TrimSpace(msg), status)
}

// drainer counts the writes in flight that began before shutdown, so that
// shutdown can wait for them while the listener stays open.
type drainer struct {
	mu       sync.Mutex
	shutdown bool
	before   int           // writes begun before shutdown, not answered yet
	answered chan struct{} // closed once shutdown began and before is 0
}

// enter counts a write begun before shutdown; leave, given enter's
// answer, uncounts it. Writes that begin after shutdown are not counted:
// the HTTP server's own drain waits for them.
func (d *drainer) enter() (counted bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.shutdown {
		return false
	}
	d.before++
	return true
}

func (d *drainer) leave(counted bool) {
	if !counted {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.before--; d.shutdown && d.before == 0 {
		close(d.answered)
	}
}

func (d *drainer) begin() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.shutdown {
		d.shutdown = true
		d.answered = make(chan struct{})
		if d.before == 0 {
			close(d.answered)
		}
	}
	return d.answered
}

func (d *drainer) stopping() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.shutdown
}
