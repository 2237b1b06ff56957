package functions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/stratametrics/strata/internal/forwarding"
	"github.com/stratametrics/strata/limits"
	"github.com/stratametrics/strata/shard"
	"github.com/stratametrics/strata/writeerr"
)

// HA-pair deduplication (see docs/ARCHITECTURE.md, "HA-pair
// deduplication"). The election of each (tenant, cluster) is held by the
// block builder that owns the hash of the pair first on the hashring; the
// router asks it at most once a refresh interval per cluster and keeps
// its answer. As in Mimir, a request's first series decides for the
// whole request: a Prometheus puts its external labels on every series.

// haRefreshMax bounds how long a router trusts an answer before asking
// again: the elected replica's writes reach the election at least this
// often, so a failover comes within the timeout plus about this much.
const haRefreshMax = time.Second

// maxHAClusters bounds the clusters a router keeps answers for.
const maxHAClusters = 100_000

// haElections are the answers a router keeps.
type haElections struct {
	mu sync.Mutex
	m  map[haKey]*haAnswer
}

type haKey struct{ tenant, cluster string }

type haAnswer struct {
	// mu makes the writes of one cluster wait for one ask, not each
	// send their own.
	mu        sync.Mutex
	replica   string
	confirmed time.Time
	// electedSeen is when the elected replica last wrote through this
	// router.
	electedSeen time.Time
}

func (h *haElections) answer(k haKey, now time.Time) *haAnswer {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[haKey]*haAnswer{}
	}
	a := h.m[k]
	if a == nil {
		if len(h.m) >= maxHAClusters {
			for k, a := range h.m {
				if a.mu.TryLock() {
					if now.Sub(a.confirmed) > 10*time.Minute {
						delete(h.m, k)
					}
					a.mu.Unlock()
				}
			}
		}
		a = &haAnswer{}
		if len(h.m) < maxHAClusters {
			h.m[k] = a
		}
	}
	return a
}

// dedupHA applies the tenant's HA deduplication to st.req: held is what
// a request of a replica that is not elected holds (accepted, not
// stored); otherwise the replica label is gone from every series (st.req
// rewritten when there was one).
func (r *Router) dedupHA(ctx context.Context, st *writeState, tenant string, ha *limits.HA) (held forwarding.Written, dropped bool, err error) {
	if st.req.NumSeries() == 0 {
		return held, false, nil
	}
	if err := st.req.Series(0, &st.series); err != nil {
		return held, false, nil // refused as it would be without HA
	}
	cluster := labelValue(st.series.Labels, []byte(ha.ClusterLabel))
	replica := labelValue(st.series.Labels, []byte(ha.ReplicaLabel))
	if cluster == nil || replica == nil {
		return held, false, nil
	}
	elected, err := r.elected(ctx, tenant, ha, string(cluster), string(replica))
	if err != nil {
		return held, false, err
	}
	if !elected {
		for i := 0; i < st.req.NumSeries(); i++ {
			if st.req.Series(i, &st.series) == nil {
				held.Samples += len(st.series.Samples)
				held.Histograms += len(st.series.Histograms)
				held.Exemplars += len(st.series.Exemplars)
			}
		}
		return held, true, nil
	}
	return held, false, r.dropLabel(st, []byte(ha.ReplicaLabel))
}

// elected tells whether replica is the elected one of its cluster.
func (r *Router) elected(ctx context.Context, tenant string, ha *limits.HA, cluster, replica string) (bool, error) {
	now := time.Now()
	a := r.ha.answer(haKey{tenant, cluster}, now)
	a.mu.Lock()
	defer a.mu.Unlock()
	refresh := min(ha.FailoverTimeout/10, haRefreshMax)
	if !a.confirmed.IsZero() && now.Sub(a.confirmed) < refresh {
		return a.seen(replica, now), nil
	}
	res, err := r.askElection(ctx, forwarding.ElectRequest{
		Tenant: tenant, Cluster: cluster, Replica: replica, Known: a.replica, TimeoutMs: ha.FailoverTimeout.Milliseconds(),
	})
	if err != nil {
		// The election's owner is away (a restart): its last answer
		// holds for a timeout, as it would have there, while the elected
		// replica keeps writing through this router; one silent for a
		// timeout may have been replaced meanwhile. Otherwise the write
		// is refused for the sender to retry rather than dropped or
		// stored twice.
		if !a.confirmed.IsZero() && now.Sub(a.confirmed) < ha.FailoverTimeout && now.Sub(a.electedSeen) < ha.FailoverTimeout {
			return a.seen(replica, now), nil
		}
		return false, fmt.Errorf("%w: HA election of tenant %s, cluster %s: %v", writeerr.ErrUnavailable, tenant, cluster, err)
	}
	a.replica, a.confirmed = res.Replica, now
	return a.seen(replica, now), nil
}

// seen tells whether replica is the elected one, noting when it was.
func (a *haAnswer) seen(replica string, now time.Time) bool {
	if a.replica != replica {
		return false
	}
	a.electedSeen = now
	return true
}

// askElection asks the block builder owning the cluster's election.
func (r *Router) askElection(ctx context.Context, req forwarding.ElectRequest) (forwarding.ElectResponse, error) {
	var res forwarding.ElectResponse
	ring := r.ring.Ring()
	hr, err := ring.ForTenant(req.Tenant)
	if err != nil {
		return res, err
	}
	var h shard.Hasher
	h.Reset(req.Tenant)
	h.AddString("__ha_cluster__", req.Cluster)
	owners := hr.Owners(h.Sum64(), nil)
	if len(owners) == 0 {
		return res, errors.New("the hashring has no endpoint")
	}
	ep := r.eps.of(ring)[owners[0]]
	body, err := json.Marshal(req)
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ForwardTimeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.electURL, bytes.NewReader(body))
	if err != nil {
		return res, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("User-Agent", "strata-router")
	if r.eps.token != nil {
		hreq.Header.Set("Authorization", "Bearer "+r.eps.token.Value())
	}
	resp, err := r.eps.client.Do(hreq)
	if err != nil {
		return res, fmt.Errorf("block builder %s: %w", ep.addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("block builder %s answered %d: %s", ep.addr, resp.StatusCode, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, &res); err != nil || res.Replica == "" {
		return res, fmt.Errorf("block builder %s: bad election answer %q", ep.addr, b)
	}
	return res, nil
}

// dropLabel rewrites st.req without the label in any series, if one has it.
func (r *Router) dropLabel(st *writeState, name []byte) error {
	st.rewrite.Reset(&st.req, st.haBody)
	found := false
	for i := 0; i < st.req.NumSeries(); i++ {
		had, err := st.addWithout(i, name)
		if err != nil {
			return err
		}
		found = found || had
	}
	if !found {
		return nil
	}
	st.haBody = st.rewrite.Finish()
	st.rewritten = true
	return st.req.Parse(st.req.Version, st.haBody)
}
