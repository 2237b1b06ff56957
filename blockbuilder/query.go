package blockbuilder

import (
	"sort"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
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
	e, ok := b.tenants[id]
	b.mu.Unlock()
	if !ok || e.db == nil {
		return TenantView{}, false
	}
	return TenantView{ID: id, ExternalLabels: labels.FromMap(b.cfg.externalLabels(id)), DB: e.db.db}, true
}
