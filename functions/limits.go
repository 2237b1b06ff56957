package functions

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
	"golang.org/x/time/rate"

	"github.com/stratametrics/strata/internal/filewatch"
	"github.com/stratametrics/strata/otlp"
	"github.com/stratametrics/strata/validation"
)

// TenantLimits are the limits of one tenant: the request limits plus an
// ingestion rate.
type TenantLimits struct {
	validation.Limits `yaml:",inline"`
	// IngestionRate is samples (plus histogram samples) per second a
	// tenant may send; 0 means no limit. IngestionBurst is the most it may
	// send at once (default: one second's worth, at least one request).
	IngestionRate  float64 `yaml:"ingestion_rate"`
	IngestionBurst int     `yaml:"ingestion_burst"`
	// OTLP is how the tenant's OTLP metrics translate, as Prometheus'
	// `otlp:` block (Mimir sets these per tenant too).
	OTLP otlp.Config `yaml:"otlp"`
	// otlpSettings is OTLP compiled, by validate.
	otlpSettings otlp.Settings
	// MetricRelabelConfigs rewrite or drop the tenant's series before
	// they are routed, in Prometheus' own syntax (see relabel.go).
	MetricRelabelConfigs []*relabel.Config `yaml:"metric_relabel_configs"`
}

// DefaultTenantLimits are the limits of a tenant the limits file does not
// name, and the base it is read on: the configuration's.
func DefaultTenantLimits(cfg *Config) (TenantLimits, error) {
	l := TenantLimits{Limits: cfg.Limits, OTLP: cfg.OTLP}
	return l, l.validate()
}

// LimitsFile is the YAML of STRATA_LIMITS_FILE:
//
//	default:            # overrides the STRATA_LIMIT_* defaults for all tenants
//	  ingestion_rate: 500000
//	tenants:
//	  team-a:           # overrides for one tenant, on top of default
//	    max_label_value_length: 4096
//	    ingestion_rate: 1000000
type LimitsFile struct {
	Default yaml.Node            `yaml:"default"`
	Tenants map[string]yaml.Node `yaml:"tenants"`
}

// limitSet is one loaded version of the limits: immutable.
type limitSet struct {
	def     TenantLimits
	tenants map[string]TenantLimits
	// version tells limit sets apart (the hash of the file they were read
	// from): what was validated under one set is not known under another.
	version uint64
}

func (s *limitSet) forTenant(t string) *TenantLimits {
	if l, ok := s.tenants[t]; ok {
		return &l
	}
	return &s.def
}

// ParseLimits reads a limits file on top of base. Unknown keys and bad
// values are errors that name the tenant and the key.
func ParseLimits(data []byte, base TenantLimits) (*limitSet, error) {
	var f LimitsFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse limits: %w", err)
	}
	set := &limitSet{def: base, tenants: map[string]TenantLimits{}}
	if f.Default.Kind != 0 {
		if err := decodeStrict(&f.Default, &set.def); err != nil {
			return nil, fmt.Errorf("limits default: %w", err)
		}
	}
	if err := set.def.validate(); err != nil {
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
		if err := l.validate(); err != nil {
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

func (l *TenantLimits) validate() error {
	if err := l.Limits.Validate(); err != nil {
		return err
	}
	if l.IngestionRate < 0 || l.IngestionBurst < 0 {
		return fmt.Errorf("ingestion_rate and ingestion_burst must not be negative")
	}
	if err := l.OTLP.Validate(); err != nil {
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

// limits holds the current limit set, reloads it from a file and keeps one
// rate limiter per tenant that has a rate.
type limits struct {
	interval time.Duration
	cur      atomic.Pointer[limitSet]
	file     *filewatch.Files[*limitSet] // nil without a limits file
	// limiters hold the rate of each tenant seen lately; tenants over
	// their bound share overflow (nil until needed, or after a reload).
	limiters *recentTenants[*rate.Limiter]
	overflow atomic.Pointer[rate.Limiter]
}

// maxLimiters bounds the tenants with a rate limiter of their own (about
// 200 bytes each).
const maxLimiters = 100_000

func newLimits(cfg *Config, logger *slog.Logger, reg prometheus.Registerer) (*limits, error) {
	l := &limits{
		interval: cfg.LimitsReloadInterval,
		limiters: newRecentTenants[*rate.Limiter](maxLimiters),
	}
	base, err := DefaultTenantLimits(cfg)
	if err != nil {
		return nil, err
	}
	l.cur.Store(&limitSet{def: base})
	named := filewatch.NewMetrics("strata_limits_config", "limits file")
	if cfg.LimitsFile != "" {
		f, err := filewatch.New(filewatch.Config[*limitSet]{
			What:  "limits file",
			Paths: []string{cfg.LimitsFile},
			Parse: func(c [][]byte) (*limitSet, error) {
				set, err := ParseLimits(c[0], base)
				if err == nil {
					set.version = xxhash.Sum64(c[0])
				}
				return set, err
			},
			Interval: cfg.LimitsReloadInterval,
			OnLoad:   l.install,
			Logger:   logger,
			Named:    named,
		})
		if err != nil {
			return nil, fmt.Errorf("STRATA_LIMITS_FILE: %w", err)
		}
		l.file = f
	}
	if reg != nil {
		if err := named.Register(reg); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// install puts a new limit set in use.
func (l *limits) install(set *limitSet) {
	l.cur.Store(set)
	// Rebuilt with the new rates on next use.
	l.limiters.reset()
	l.overflow.Store(nil)
}

// run reloads the file when it changes and forgets rate limiters of
// tenants not seen for a while, so hostile tenant IDs cannot grow memory.
func (l *limits) run(ctx context.Context) {
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.reload()
			l.limiters.sweep(time.Now().Add(-10*time.Minute), nil)
		}
	}
}

func (l *limits) reload() {
	if l.file != nil {
		l.file.Reload()
	}
}

// knownSeed is the seed of knownKey for a tenant's series under the
// current limits, and those limits.
func (l *limits) knownSeed(tenant string) (uint64, *TenantLimits) {
	set := l.cur.Load()
	return xxhash.Sum64String(tenant) ^ set.version, set.forTenant(tenant)
}

// allow takes n samples from the tenant's rate; false means 429. With
// maxLimiters tenants seen in the last ten minutes, a new one shares one
// rate with the others over the bound until idle ones are forgotten: a
// sender spraying made-up tenant IDs slows only those.
func (l *limits) allow(tenant string, tl *TenantLimits, n int, now time.Time) bool {
	if tl.IngestionRate <= 0 {
		return true
	}
	mk := func() *rate.Limiter {
		burst := tl.IngestionBurst
		if burst == 0 {
			burst = max(int(tl.IngestionRate), tl.MaxSamplesPerRequest)
		}
		return rate.NewLimiter(rate.Limit(tl.IngestionRate), burst)
	}
	lim, ok := l.limiters.get(tenant, now, mk)
	if !ok {
		if lim = l.overflow.Load(); lim == nil {
			l.overflow.CompareAndSwap(nil, mk())
			lim = l.overflow.Load()
		}
	}
	return lim.AllowN(now, n)
}
