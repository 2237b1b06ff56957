// This file holds Ring, the immutable snapshot of one hashrings file, and
// Hashring, one of its hashrings: tenancy and the owners of a series hash.

package shard

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"
)

// ErrUnknownTenant is returned (wrapped, naming the tenant) by Ring.ForTenant
// when no hashring takes the tenant.
var ErrUnknownTenant = errors.New("no hashring takes this tenant (it is in no hashring's tenants and there is no hashring without tenants)")

// Options are the settings of a ring that do not come from the file.
type Options struct {
	// ReplicationFactor is the number of copies of each series; every
	// hashring needs at least this many endpoints. At least 1.
	ReplicationFactor int
	// DefaultAlgorithm is the algorithm of hashrings that name none:
	// "ketama" (if empty) or "hashmod".
	DefaultAlgorithm string
	// ReloadInterval is how often a Watcher reads the file; 5s if zero.
	ReloadInterval time.Duration
	// TLS tells that endpoints written host:port are reached over TLS (the
	// router's STRATA_FORWARD_TLS_*). An endpoint written http:// is then
	// refused, rather than reached in the clear.
	TLS bool
}

// DefaultOptions returns the defaults: one copy, ketama, reload every 5s.
func DefaultOptions() Options {
	return Options{ReplicationFactor: 1, DefaultAlgorithm: AlgorithmKetama, ReloadInterval: defaultReloadInterval}
}

const defaultReloadInterval = 5 * time.Second

func (o Options) withDefaults() (Options, error) {
	if o.ReplicationFactor < 1 {
		return o, fmt.Errorf("replication factor must be at least 1, got %d", o.ReplicationFactor)
	}
	switch o.DefaultAlgorithm {
	case "":
		o.DefaultAlgorithm = AlgorithmKetama
	case AlgorithmKetama, AlgorithmHashmod:
	default:
		return o, fmt.Errorf("default hashring algorithm %q is unknown; use %q or %q", o.DefaultAlgorithm, AlgorithmKetama, AlgorithmHashmod)
	}
	if o.ReloadInterval < 0 {
		return o, fmt.Errorf("reload interval must not be negative, got %s", o.ReloadInterval)
	}
	if o.ReloadInterval == 0 {
		o.ReloadInterval = defaultReloadInterval
	}
	return o, nil
}

// Ring is an immutable snapshot of all hashrings of one file. It is safe for
// concurrent use.
type Ring struct {
	endpoints []Endpoint
	hashrings []*Hashring
	// exact maps a tenant to the hashring that lists it with the exact
	// matcher; validation guarantees at most one does.
	exact map[string]int
}

// Hashring is one hashring of a Ring.
type Hashring struct {
	name           string
	tenants        []string
	matcher        string
	glob           bool
	externalLabels map[string]string
	algorithm      string
	rf             int
	endpoints      []int // IDs, in the file's order

	ketama  *ketama
	hashmod []int32 // IDs sorted by address, as Thanos sorts them
}

// NewRing validates the hashrings and builds their rings. The configs are
// not modified.
func NewRing(cfgs []HashringConfig, opts Options) (*Ring, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	cfgs = cloneConfigs(cfgs)
	if err := validate(cfgs, opts.TLS); err != nil {
		return nil, err
	}
	var errs []error
	for i, cfg := range cfgs {
		ref := hashringRef(i, cfg.Name)
		if n := len(cfg.Endpoints); n < opts.ReplicationFactor {
			errs = append(errs, fmt.Errorf("%s: replication factor %d needs at least %d endpoints, it has %d; add endpoints or lower the replication factor",
				ref, opts.ReplicationFactor, opts.ReplicationFactor, n))
		}
		if algorithmOf(cfg, opts) == AlgorithmHashmod {
			for _, ep := range cfg.Endpoints {
				if ep.AZ != "" {
					errs = append(errs, fmt.Errorf("%s: algorithm hashmod cannot spread replicas over zones (endpoint %q has az %q); use \"ketama\" or remove \"az\"", ref, ep.Address, ep.AZ))
					break
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	r := &Ring{exact: make(map[string]int)}
	ids := make(map[string]int)
	for _, cfg := range cfgs {
		for _, ep := range cfg.Endpoints {
			if _, ok := ids[ep.Address]; !ok {
				ids[ep.Address] = 0
				r.endpoints = append(r.endpoints, ep)
			}
		}
	}
	// IDs follow the address order, so that they do not depend on the order
	// of hashrings in the file.
	slices.SortFunc(r.endpoints, func(a, b Endpoint) int { return strings.Compare(a.Address, b.Address) })
	for id, ep := range r.endpoints {
		ids[ep.Address] = id
	}

	for i, cfg := range cfgs {
		h := &Hashring{
			name:           cfg.Name,
			tenants:        cfg.Tenants,
			matcher:        cfg.TenantMatcherType,
			glob:           cfg.TenantMatcherType == TenantMatcherGlob,
			externalLabels: cfg.ExternalLabels,
			algorithm:      algorithmOf(cfg, opts),
			rf:             opts.ReplicationFactor,
		}
		if h.matcher == "" {
			h.matcher = TenantMatcherExact
		}
		for _, ep := range cfg.Endpoints {
			h.endpoints = append(h.endpoints, ids[ep.Address])
		}
		switch h.algorithm {
		case AlgorithmKetama:
			k, err := newKetama(cfg.Endpoints, h.endpoints, h.rf, virtualNodes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", hashringRef(i, cfg.Name), err)
			}
			h.ketama = k
		case AlgorithmHashmod:
			h.hashmod = newHashmod(cfg.Endpoints, h.endpoints)
		}
		if !h.glob {
			for _, t := range h.tenants {
				r.exact[t] = i
			}
		}
		r.hashrings = append(r.hashrings, h)
	}
	return r, nil
}

func algorithmOf(cfg HashringConfig, opts Options) string {
	if cfg.Algorithm != "" {
		return cfg.Algorithm
	}
	return opts.DefaultAlgorithm
}

// cloneConfigs deep-copies what validate and NewRing modify or keep, so that
// a Ring never shares memory with its caller's configs.
func cloneConfigs(cfgs []HashringConfig) []HashringConfig {
	out := make([]HashringConfig, len(cfgs))
	for i, c := range cfgs {
		c.Tenants = slices.Clone(c.Tenants)
		c.Endpoints = slices.Clone(c.Endpoints)
		c.ExternalLabels = maps.Clone(c.ExternalLabels)
		out[i] = c
	}
	return out
}

// SingleHashring builds a ring of one soft hashring, named "default", from a
// list of addresses: the shortcut for a router configured with a list of
// block builders and no hashrings file.
func SingleHashring(addresses []string, opts Options) (*Ring, error) {
	cfg := HashringConfig{Name: "default"}
	for _, a := range addresses {
		cfg.Endpoints = append(cfg.Endpoints, Endpoint{Address: a})
	}
	return NewRing([]HashringConfig{cfg}, opts)
}

// Endpoints returns every distinct endpoint of every hashring, sorted by
// address. An endpoint's index in it is its ID, the value Owners returns.
// The slice is shared: do not modify it.
func (r *Ring) Endpoints() []Endpoint { return r.endpoints }

// Hashrings returns the hashrings in the file's order. The slice is shared:
// do not modify it.
func (r *Ring) Hashrings() []*Hashring { return r.hashrings }

// ForTenant returns the hashring that takes the tenant: the first one, in
// the file's order, that lists it (exactly or by a glob pattern) or that has
// no tenants, as in Thanos. The error wraps ErrUnknownTenant.
func (r *Ring) ForTenant(tenant string) (*Hashring, error) {
	exact, ok := r.exact[tenant]
	if !ok {
		exact = len(r.hashrings)
	}
	// Only hashrings before the exact one can take the tenant first.
	for _, h := range r.hashrings[:exact] {
		if len(h.tenants) == 0 || (h.glob && h.matchGlob(tenant)) {
			return h, nil
		}
	}
	if ok {
		return r.hashrings[exact], nil
	}
	return nil, fmt.Errorf("tenant %q: %w", tenant, ErrUnknownTenant)
}

func (h *Hashring) matchGlob(tenant string) bool {
	for _, p := range h.tenants {
		// Patterns were checked when the ring was built, so Match cannot
		// fail here.
		if ok, _ := path.Match(p, tenant); ok {
			return true
		}
	}
	return false
}

// Name returns the hashring's name ("" if the file gives none).
func (h *Hashring) Name() string { return h.name }

// ExternalLabels returns the hashring's external labels. The map is shared:
// do not modify it.
func (h *Hashring) ExternalLabels() map[string]string { return h.externalLabels }

// ReplicationFactor returns how many owners Owners gives.
func (h *Hashring) ReplicationFactor() int { return h.rf }

// Algorithm returns "ketama" or "hashmod".
func (h *Hashring) Algorithm() string { return h.algorithm }

// Tenants returns the tenants or patterns of the hashring; none for a soft
// hashring. The slice is shared: do not modify it.
func (h *Hashring) Tenants() []string { return h.tenants }

// TenantMatcherType returns "exact" or "glob".
func (h *Hashring) TenantMatcherType() string { return h.matcher }

// Endpoints returns the IDs of the hashring's endpoints, in the file's
// order. The slice is shared: do not modify it.
func (h *Hashring) Endpoints() []int { return h.endpoints }

// Owners appends the IDs (indices into Ring.Endpoints) of the
// ReplicationFactor distinct owners of the series whose hash is given, the
// primary owner first. It does not allocate when dst has room for them.
func (h *Hashring) Owners(seriesHash uint64, dst []int) []int {
	if h.ketama != nil {
		return h.ketama.owners(seriesHash, dst)
	}
	return hashmodOwners(h.hashmod, h.rf, seriesHash, dst)
}

// OwnersEach appends, for each hash in turn, the ReplicationFactor owners
// Owners gives for it. It is Owners for many series at once: the ring's
// tables are larger than a core's cache, and a loop that does nothing
// else lets the CPU wait for many of their reads at once, where a lookup
// between other work per series waits for each in turn.
func (h *Hashring) OwnersEach(seriesHashes []uint64, dst []int32) []int32 {
	if h.ketama != nil {
		return h.ketama.ownersEach(seriesHashes, dst)
	}
	for _, sh := range seriesHashes {
		dst = hashmodOwners(h.hashmod, h.rf, sh, dst)
	}
	return dst
}
