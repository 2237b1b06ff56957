package blockbuilder

import (
	"fmt"
	"sort"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/stratametrics/strata/internal/envconfig"
)

// TenantView is one open tenant, for the read paths (StoreAPI, PromQL):
// its TSDB (head and local blocks) and the external labels its blocks
// carry in the bucket.
type TenantView struct {
	ID             string
	ExternalLabels labels.Labels
	DB             *tsdb.DB
}

// Tenants returns a view of every open tenant, sorted by ID. A tenant may
// be closed for idleness while a caller still holds its view: queries on
// it then fail and are retried by the caller's client.
func (b *BlockBuilder) Tenants() []TenantView {
	open := b.openTenants()
	out := make([]TenantView, 0, len(open))
	for _, t := range open {
		out = append(out, TenantView{ID: t.id, ExternalLabels: labels.FromMap(b.cfg.externalLabels(t.id)), DB: t.db})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Tenant returns the view of one open tenant.
func (b *BlockBuilder) Tenant(id string) (TenantView, bool) {
	b.mu.Lock()
	var t *tenantDB
	if e, ok := b.tenants[id]; ok {
		t = e.db // written under b.mu once opened (see tenantEntry)
	}
	b.mu.Unlock()
	if t == nil {
		return TenantView{}, false
	}
	return TenantView{ID: id, ExternalLabels: labels.FromMap(b.cfg.externalLabels(id)), DB: t.db}, true
}

// QueryLimits bound the work of one query on a block builder's read paths
// (the StoreAPI and the PromQL HTTP API), so that one query cannot take
// the memory the write path needs. Read from STRATA_QUERY_* variables.
type QueryLimits struct {
	// MaxSeries is the most series one query may select; 0 is no limit.
	MaxSeries int `env:"QUERY_MAX_SERIES" envDefault:"1000000"`
	// MaxSamples is the most samples one query may hold: the samples of
	// the chunks one StoreAPI Series call sends, the PromQL engine's limit
	// on samples in memory, and the exemplars one exemplar query returns
	// (HTTP or gRPC). 0 is no limit.
	MaxSamples int `env:"QUERY_MAX_SAMPLES" envDefault:"50000000"`
	// Timeout ends a query that runs longer (a client's shorter deadline
	// wins). 0 is no timeout.
	Timeout time.Duration `env:"QUERY_TIMEOUT" envDefault:"2m"`
}

// DefaultQueryLimits returns the defaults the env tags declare.
func DefaultQueryLimits() QueryLimits { return envconfig.Defaults[QueryLimits]() }

// Validate rejects negative limits, naming the variable.
func (l QueryLimits) Validate() error {
	switch {
	case l.MaxSeries < 0:
		return fmt.Errorf("STRATA_QUERY_MAX_SERIES must not be negative, got %d", l.MaxSeries)
	case l.MaxSamples < 0:
		return fmt.Errorf("STRATA_QUERY_MAX_SAMPLES must not be negative, got %d", l.MaxSamples)
	case l.Timeout < 0:
		return fmt.Errorf("STRATA_QUERY_TIMEOUT must not be negative, got %s", l.Timeout)
	}
	return nil
}
