// Package limits is the per-tenant limits file (STRATA_LIMITS_FILE) that
// routers and block builders both read: its format, the limits of one
// tenant, and the set in use, reloaded when the file changes.
//
// The one thing to know before changing it: one file serves both, so a
// key belongs here even when only one of them acts on it (the router
// relabels and rate-limits, the block builder bounds its heads), and both
// refuse the whole file over one bad key, keeping the last good one.
package limits

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/relabel"
	"go.yaml.in/yaml/v3"

	"github.com/stratametrics/strata/internal/envconfig"
	"github.com/stratametrics/strata/internal/filewatch"
	"github.com/stratametrics/strata/otlp"
	"github.com/stratametrics/strata/validation"
)

// Tenant are the limits of one tenant.
type Tenant struct {
	// Limits bound each request; routers and block builders both check
	// them, so a tenant's own bounds hold end to end.
	validation.Limits `yaml:",inline"`
	// OTLP is how the tenant's OTLP metrics translate, as Prometheus'
	// `otlp:` block (Mimir sets these per tenant too).
	OTLP otlp.Config `yaml:"otlp"`

	// Router only.
	//
	// IngestionRate is samples (plus histogram samples) per second a
	// tenant may send; 0 means no limit. IngestionBurst is the most it may
	// send at once (default: one second's worth, at least one request).
	IngestionRate  float64 `yaml:"ingestion_rate"`
	IngestionBurst int     `yaml:"ingestion_burst"`
	// MetricRelabelConfigs rewrite or drop the tenant's series before
	// they are routed, in Prometheus' own syntax.
	MetricRelabelConfigs []*relabel.Config `yaml:"metric_relabel_configs"`
	// HA deduplicates the writes of Prometheus HA pairs.
	HA HA `yaml:",inline"`

	// Block builder only: the tenant's TSDB. Each change applies to an
	// open TSDB at its next write, with no reopen.
	//
	// OutOfOrderWindow accepts samples this much older than a series'
	// newest (STRATA_OUT_OF_ORDER_WINDOW).
	OutOfOrderWindow time.Duration `yaml:"out_of_order_window"`
	// MaxSeriesPerTenant bounds the series of the tenant's head on each
	// block builder, 0 none (STRATA_MAX_SERIES_PER_TENANT).
	MaxSeriesPerTenant int `yaml:"max_series_per_tenant"`
	// MaxExemplars is the size of the tenant's exemplar ring on each
	// block builder, 0 keeps none (STRATA_MAX_EXEMPLARS).
	MaxExemplars int64 `yaml:"max_exemplars"`

	// otlpSettings is OTLP compiled, by Validate.
	otlpSettings otlp.Settings
}

// HA are the settings of HA-pair deduplication, Mimir's names: of two
// (or more) Prometheus scraping the same targets, each naming its cluster
// and its replica in external labels, the writes of one elected replica
// per (tenant, cluster) are stored, without the replica label, and the
// others' answered 202 and dropped.
type HA struct {
	// Accept turns it on (off by default, as in Mimir).
	Accept bool `yaml:"accept_ha_samples" env:"ACCEPT_SAMPLES" envDefault:"false"`
	// ClusterLabel and ReplicaLabel are the external labels naming the
	// pair and the replica (kube-prometheus-stack: prometheus and
	// prometheus_replica).
	ClusterLabel string `yaml:"ha_cluster_label" env:"CLUSTER_LABEL" envDefault:"cluster"`
	ReplicaLabel string `yaml:"ha_replica_label" env:"REPLICA_LABEL" envDefault:"__replica__"`
	// FailoverTimeout is how long the elected replica may send nothing
	// before the next replica that writes is elected.
	FailoverTimeout time.Duration `yaml:"ha_failover_timeout" env:"FAILOVER_TIMEOUT" envDefault:"30s"`
}

// DefaultHA returns the defaults the env tags declare.
func DefaultHA() HA { return envconfig.Defaults[HA]() }

// Validate refuses settings that cannot work.
func (h HA) Validate() error {
	if !h.Accept {
		return nil
	}
	switch {
	case !model.UTF8Validation.IsValidLabelName(h.ClusterLabel) || !model.UTF8Validation.IsValidLabelName(h.ReplicaLabel):
		return fmt.Errorf("ha_cluster_label %q and ha_replica_label %q must be label names", h.ClusterLabel, h.ReplicaLabel)
	case h.ClusterLabel == h.ReplicaLabel:
		return fmt.Errorf("ha_cluster_label and ha_replica_label must differ, both are %q", h.ClusterLabel)
	case h.FailoverTimeout < time.Second:
		return fmt.Errorf("ha_failover_timeout must be at least 1s, got %s", h.FailoverTimeout)
	}
	return nil
}

// OTLPSettings are the tenant's OTLP options as the translator takes them.
func (l *Tenant) OTLPSettings() otlp.Settings { return l.otlpSettings }

// Validate refuses limits that cannot work, and compiles what is used per
// request.
func (l *Tenant) Validate() error {
	if err := l.Limits.Validate(); err != nil {
		return err
	}
	if l.IngestionRate < 0 || l.IngestionBurst < 0 {
		return fmt.Errorf("ingestion_rate and ingestion_burst must not be negative")
	}
	if l.OutOfOrderWindow < 0 || l.MaxSeriesPerTenant < 0 || l.MaxExemplars < 0 {
		return fmt.Errorf("out_of_order_window, max_series_per_tenant and max_exemplars must not be negative")
	}
	if err := l.OTLP.Validate(); err != nil {
		return err
	}
	if err := l.HA.Validate(); err != nil {
		return err
	}
	for k, rule := range l.MetricRelabelConfigs {
		if rule == nil {
			return fmt.Errorf("metric_relabel_configs rule %d is empty", k+1)
		}
		if err := rule.Validate(model.UTF8Validation); err != nil {
			return fmt.Errorf("metric_relabel_configs rule %d: %w", k+1, err)
		}
	}
	l.otlpSettings = l.OTLP.Settings()
	return nil
}

// File is the YAML of STRATA_LIMITS_FILE:
//
//	default:            # overrides the environment's defaults for all tenants
//	  ingestion_rate: 500000
//	tenants:
//	  team-a:           # overrides for one tenant, on top of default
//	    max_label_value_length: 4096
//	    out_of_order_window: 30m
type File struct {
	Default yaml.Node            `yaml:"default"`
	Tenants map[string]yaml.Node `yaml:"tenants"`
}

// Set is one loaded version of the limits: immutable.
type Set struct {
	def     Tenant
	tenants map[string]Tenant
	version uint64
}

// For returns the limits of a tenant: its own, or the default.
func (s *Set) For(tenant string) *Tenant {
	if l, ok := s.tenants[tenant]; ok {
		return &l
	}
	return &s.def
}

// Version tells sets apart (the hash of the file they were read from, 0
// without one): what was decided under one set does not hold under
// another.
func (s *Set) Version() uint64 { return s.version }

// Parse reads a limits file on top of base. Unknown keys and bad values
// are errors that name the tenant and the key.
func Parse(data []byte, base Tenant) (*Set, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse limits: %w", err)
	}
	set := &Set{def: base, tenants: map[string]Tenant{}, version: xxhash.Sum64(data)}
	if f.Default.Kind != 0 {
		if err := decodeStrict(&f.Default, &set.def); err != nil {
			return nil, fmt.Errorf("limits default: %w", err)
		}
	}
	if err := set.def.Validate(); err != nil {
		return nil, fmt.Errorf("limits default: %w", err)
	}
	for name, node := range f.Tenants {
		if err := validation.ValidateTenant(name); err != nil {
			return nil, fmt.Errorf("limits tenant %q: %w", name, err)
		}
		l := set.def
		if err := decodeStrict(&node, &l); err != nil {
			return nil, fmt.Errorf("limits tenant %q: %w", name, err)
		}
		if err := l.Validate(); err != nil {
			return nil, fmt.Errorf("limits tenant %q: %w", name, err)
		}
		set.tenants[name] = l
	}
	return set, nil
}

// decodeStrict decodes a node refusing unknown keys: a typo in a limit
// must not silently leave the default in place.
func decodeStrict(n *yaml.Node, v any) error {
	out, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// Config says where a component's limits come from.
type Config struct {
	// Path is the limits file; empty, every tenant has Base.
	Path string
	// Base is the component's own defaults (its environment), which the
	// file's default overrides.
	Base     Tenant
	Interval time.Duration
	Logger   *slog.Logger
	// OnLoad, when set, is called with every set read from the file, the
	// first included, before it is put in use.
	OnLoad func(*Set)
}

// Current holds the set in use and reloads it when the file changes.
type Current struct {
	cur      atomic.Pointer[Set]
	file     *filewatch.Files[*Set] // nil without a file
	interval time.Duration
	metrics  *filewatch.Metrics
}

// Load validates the base, reads the file if there is one, and returns
// the limits in use. A file that cannot be read or parsed is an error
// here; after that, a bad version is logged and counted, and the last
// good one stays.
func Load(cfg Config) (*Current, error) {
	if err := cfg.Base.Validate(); err != nil {
		return nil, err
	}
	c := &Current{interval: cfg.Interval, metrics: filewatch.NewMetrics("strata_limits_config", "limits file")}
	c.cur.Store(&Set{def: cfg.Base})
	if cfg.Path == "" {
		return c, nil
	}
	f, err := filewatch.New(filewatch.Config[*Set]{
		What:     "limits file",
		Paths:    []string{cfg.Path},
		Parse:    func(b [][]byte) (*Set, error) { return Parse(b[0], cfg.Base) },
		Interval: cfg.Interval,
		OnLoad: func(s *Set) {
			c.cur.Store(s)
			if cfg.OnLoad != nil {
				cfg.OnLoad(s)
			}
		},
		Logger: cfg.Logger,
		Named:  c.metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("STRATA_LIMITS_FILE: %w", err)
	}
	c.file = f
	return c, nil
}

// Register adds the reload metrics (strata_limits_config_*) to reg.
func (c *Current) Register(reg prometheus.Registerer) error { return c.metrics.Register(reg) }

// Set is the set in use.
func (c *Current) Set() *Set { return c.cur.Load() }

// Reload reads the file now if it changed.
func (c *Current) Reload() {
	if c.file != nil {
		c.file.Reload()
	}
}

// Run reloads the file when it changes until ctx ends, calling each
// (when set) at every check.
func (c *Current) Run(ctx context.Context, each func(now time.Time)) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c.Reload()
			if each != nil {
				each(now)
			}
		}
	}
}
