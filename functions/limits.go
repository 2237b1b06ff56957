package functions

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/stratametrics/strata/limits"
)

// DefaultTenantLimits are the limits of a tenant the limits file does not
// name, and the base it is read on: the configuration's.
func DefaultTenantLimits(cfg *Config) limits.Tenant {
	return limits.Tenant{Limits: cfg.Limits, OTLP: cfg.OTLP, HA: cfg.HA}
}

// tenantLimits holds the limits in use (reloaded from STRATA_LIMITS_FILE)
// and one rate limiter per tenant that has a rate.
type tenantLimits struct {
	cur *limits.Current
	// limiters hold the rate of each tenant seen lately; tenants over
	// their bound share overflow (nil until needed, or after a reload).
	limiters *recentTenants[*rate.Limiter]
	overflow atomic.Pointer[rate.Limiter]
}

// maxLimiters bounds the tenants with a rate limiter of their own (about
// 200 bytes each).
const maxLimiters = 100_000

func newTenantLimits(cfg *Config, logger *slog.Logger, reg prometheus.Registerer) (*tenantLimits, error) {
	l := &tenantLimits{limiters: newRecentTenants[*rate.Limiter](maxLimiters)}
	var err error
	l.cur, err = limits.Load(limits.Config{
		Path:     cfg.LimitsFile,
		Base:     DefaultTenantLimits(cfg),
		Interval: cfg.LimitsReloadInterval,
		Logger:   logger,
		// Rate limiters are rebuilt with the new rates on next use.
		OnLoad: func(*limits.Set) {
			l.limiters.reset()
			l.overflow.Store(nil)
		},
	})
	if err != nil {
		return nil, err
	}
	if reg != nil {
		if err := l.cur.Register(reg); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// run reloads the file when it changes and forgets rate limiters of
// tenants not seen for a while, so hostile tenant IDs cannot grow memory.
func (l *tenantLimits) run(ctx context.Context) {
	l.cur.Run(ctx, func(now time.Time) { l.limiters.sweep(now.Add(-10*time.Minute), nil) })
}

func (l *tenantLimits) reload() { l.cur.Reload() }

// knownSeed is the seed of knownKey for a tenant's series under the
// current limits, and those limits.
func (l *tenantLimits) knownSeed(tenant string) (uint64, *limits.Tenant) {
	set := l.cur.Set()
	return xxhash.Sum64String(tenant) ^ set.Version(), set.For(tenant)
}

// allow takes n samples from the tenant's rate; false means 429. With
// maxLimiters tenants seen in the last ten minutes, a new one shares one
// rate with the others over the bound until idle ones are forgotten: a
// sender spraying made-up tenant IDs slows only those.
func (l *tenantLimits) allow(tenant string, tl *limits.Tenant, n int, now time.Time) bool {
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
