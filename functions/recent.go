package functions

import (
	"sync"
	"sync/atomic"
	"time"
)

// recentTenants holds a value for each tenant seen lately, at most max
// of them. Tenant IDs come from senders: one making them up must not grow
// the router's memory, or its metrics, without bound.
type recentTenants[V any] struct {
	max int

	mu sync.Mutex
	m  map[string]*recentEntry[V]
}

type recentEntry[V any] struct {
	v        V
	lastUsed atomic.Int64 // unix nanoseconds
}

func newRecentTenants[V any](max int) *recentTenants[V] {
	return &recentTenants[V]{max: max, m: map[string]*recentEntry[V]{}}
}

// get returns the tenant's value, made by mk on its first use, and marks
// it used at now. When max tenants are held already, ok is false and
// nothing is kept: the caller treats the tenant as one of "the others".
func (r *recentTenants[V]) get(tenant string, now time.Time, mk func() V) (v V, ok bool) {
	r.mu.Lock()
	e, ok := r.m[tenant]
	if !ok {
		if len(r.m) >= r.max {
			r.mu.Unlock()
			return v, false
		}
		e = &recentEntry[V]{v: mk()}
		r.m[tenant] = e
	}
	r.mu.Unlock()
	e.lastUsed.Store(now.UnixNano())
	return e.v, true
}

// sweep forgets the tenants not used since before, calling drop (when not
// nil) for each.
func (r *recentTenants[V]) sweep(before time.Time, drop func(tenant string, v V)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, e := range r.m {
		if e.lastUsed.Load() < before.UnixNano() {
			delete(r.m, k)
			if drop != nil {
				drop(k, e.v)
			}
		}
	}
}

// reset forgets every tenant.
func (r *recentTenants[V]) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.m)
}

func (r *recentTenants[V]) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}
