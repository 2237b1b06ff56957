// This file holds the sources of the current ring: a fixed one, and a
// Watcher that reloads the hashrings file when its content changes.

package shard

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratametrics/strata/internal/filewatch"
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

// Watcher is a Source that reloads a hashrings file when its content
// changes (internal/filewatch: polled, logged, counted). A file that
// fails to load keeps the previous ring.
type Watcher struct {
	opts      Options
	files     *filewatch.Files[*Ring]
	endpoints *prometheus.GaugeVec
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
	w := &Watcher{opts: opts, endpoints: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "strata_hashring_endpoints",
		Help: "Endpoints of each hashring in use.",
	}, []string{"hashring"})}
	named := filewatch.NewMetrics("strata_hashring_config", "hashrings file")
	w.files, err = filewatch.New(filewatch.Config[*Ring]{
		What:     "hashrings file",
		Paths:    []string{path},
		Parse:    func(c [][]byte) (*Ring, error) { return loadRing(c[0], opts) },
		Interval: opts.ReloadInterval,
		OnLoad:   w.publish,
		Logger:   logger,
		Named:    named,
	})
	if err != nil {
		return nil, err
	}
	// Registered only once the file loaded, so that a caller may retry
	// with the same registry.
	if reg != nil {
		if err := named.Register(reg); err != nil {
			return nil, err
		}
		if err := reg.Register(w.endpoints); err != nil {
			return nil, fmt.Errorf("register hashrings file metrics: %w", err)
		}
	}
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
func (w *Watcher) Ring() *Ring { return w.files.Value() }

// Run reloads the file every Options.ReloadInterval until ctx ends, then
// returns nil.
func (w *Watcher) Run(ctx context.Context) error {
	w.files.Run(ctx)
	return nil
}

// reload reads the file and, if its content changed, loads it.
func (w *Watcher) reload() { w.files.Reload() }

// publish sets the endpoints gauge to a ring about to be used.
func (w *Watcher) publish(r *Ring) {
	w.endpoints.Reset()
	for _, h := range r.hashrings {
		w.endpoints.WithLabelValues(h.name).Set(float64(len(h.endpoints)))
	}
}
