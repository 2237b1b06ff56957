// This file holds the sources of the current ring: a fixed one, and a
// Watcher that reloads the hashrings file when its content changes.

package shard

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Source gives the current ring. A caller takes one Ring per request and
// uses it throughout, so that a reload never splits a request over two
// rings.
type Source interface {
	Ring() *Ring
}

// Static returns a Source that always gives r.
func Static(r *Ring) Source { return staticSource{r} }

type staticSource struct{ r *Ring }

func (s staticSource) Ring() *Ring { return s.r }

// Watcher is a Source that reloads a hashrings file. It polls the file's
// content rather than watching events: Kubernetes updates a mounted
// ConfigMap by swapping the `..data` symlink to a new directory, which
// inotify on the file itself does not report, and a poll is also right on
// every other file system. A file that fails to load keeps the previous
// ring.
type Watcher struct {
	path    string
	opts    Options
	logger  *slog.Logger
	metrics *watcherMetrics
	now     func() time.Time

	ring atomic.Pointer[Ring]

	mu sync.Mutex // serialises reloads; guards the fields below
	// sum is the content hash of the last file read, loaded or not, so
	// that an unchanged file, good or broken, is neither rebuilt nor
	// logged again.
	sum     uint64
	haveSum bool
	readErr string // the last read error, logged once
}

type watcherMetrics struct {
	lastSuccessful prometheus.Gauge
	lastSuccessTS  prometheus.Gauge
	reloads        *prometheus.CounterVec
	endpoints      *prometheus.GaugeVec
}

func newWatcherMetrics(reg prometheus.Registerer) (*watcherMetrics, error) {
	m := &watcherMetrics{
		lastSuccessful: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_hashring_config_last_reload_successful",
			Help: "Whether the last load of the hashrings file succeeded (1) or failed and the previous hashrings are still in use (0).",
		}),
		lastSuccessTS: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_hashring_config_last_reload_success_timestamp_seconds",
			Help: "Time of the last successful load of the hashrings file.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_hashring_config_reloads_total",
			Help: "Loads of the hashrings file, by result (success or failure); an unchanged file is not loaded again.",
		}, []string{"result"}),
		endpoints: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_hashring_endpoints",
			Help: "Endpoints of each hashring in use.",
		}, []string{"hashring"}),
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	if reg != nil {
		for _, c := range []prometheus.Collector{m.lastSuccessful, m.lastSuccessTS, m.reloads, m.endpoints} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register hashring metrics: %w", err)
			}
		}
	}
	return m, nil
}

// NewWatcher loads the hashrings file at path and returns a Watcher of it.
// It fails if the first load fails. Metrics are registered on reg if it is
// not nil; logger may be nil.
func NewWatcher(path string, opts Options, logger *slog.Logger, reg prometheus.Registerer) (*Watcher, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read hashrings file: %w", err)
	}
	ring, err := loadRing(data, opts)
	if err != nil {
		return nil, fmt.Errorf("hashrings file %s: %w", path, err)
	}
	// Registered only once the file loaded, so that a caller may retry
	// with the same registry.
	metrics, err := newWatcherMetrics(reg)
	if err != nil {
		return nil, err
	}
	w := &Watcher{path: path, opts: opts, logger: logger, metrics: metrics, now: time.Now}
	w.sum, w.haveSum = xxhash.Sum64(data), true
	w.install(ring)
	return w, nil
}

func loadRing(data []byte, opts Options) (*Ring, error) {
	cfgs, err := ParseConfig(data)
	if err != nil {
		return nil, err
	}
	return NewRing(cfgs, opts)
}

// Ring returns the current ring.
func (w *Watcher) Ring() *Ring { return w.ring.Load() }

// Run reloads the file every Options.ReloadInterval until ctx ends, then
// returns nil.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.opts.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			w.reload()
		}
	}
}

// reload reads the file and, if its content changed, loads it.
func (w *Watcher) reload() {
	w.mu.Lock()
	defer w.mu.Unlock()

	data, err := os.ReadFile(w.path)
	if err != nil {
		// A missing file is usually a mount being replaced; report it once,
		// and load the file again whatever it holds when it is back.
		w.haveSum = false
		if msg := err.Error(); msg != w.readErr {
			w.readErr = msg
			w.failed(err)
		}
		return
	}
	w.readErr = ""
	sum := xxhash.Sum64(data)
	if w.haveSum && sum == w.sum {
		return
	}
	w.sum, w.haveSum = sum, true
	ring, err := loadRing(data, w.opts)
	if err != nil {
		w.failed(err)
		return
	}
	w.install(ring)
	w.logger.Info("hashrings file reloaded", "path", w.path, "hashrings", len(ring.hashrings), "endpoints", len(ring.endpoints))
}

func (w *Watcher) failed(err error) {
	w.metrics.lastSuccessful.Set(0)
	w.metrics.reloads.WithLabelValues("failure").Inc()
	w.logger.Error("hashrings file not loaded; the previous hashrings stay in use", "path", w.path, "err", err)
}

func (w *Watcher) install(r *Ring) {
	w.ring.Store(r)
	m := w.metrics
	m.lastSuccessful.Set(1)
	m.lastSuccessTS.Set(float64(w.now().UnixNano()) / 1e9)
	m.reloads.WithLabelValues("success").Inc()
	m.endpoints.Reset()
	for _, h := range r.hashrings {
		m.endpoints.WithLabelValues(h.name).Set(float64(len(h.endpoints)))
	}
}
