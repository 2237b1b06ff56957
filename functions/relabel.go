package functions

import (
	"fmt"
	"slices"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"

	"github.com/stratametrics/strata/internal/forwarding"
	"github.com/stratametrics/strata/limits"
	"github.com/stratametrics/strata/remotewrite"
)

// Relabeling at the router: a tenant's metric_relabel_configs rewrite the
// request before it is routed, so that what is hashed, validated and
// stored is the relabeled series. Series it keeps unchanged are copied as
// they are; relabeled ones are re-encoded (remotewrite.Rewrite); dropped
// ones count as accepted.
//
// Running the rules costs far more than routing a series, so their
// outcome for a 1.0 series is remembered by its label bytes, as the
// known-series table remembers hashes: a series sent again, as every
// scrape sends it, costs a lookup and a copy.

// relabelOutcome is what a tenant's rules do to one series.
type relabelOutcome struct {
	drop bool
	same bool
	// fields are the relabeled labels as 1.0 label fields.
	fields []byte
	// refusal, when set, refuses the series: the relabeled labels are
	// invalid, and it says after which rule.
	refusal *forwarding.Rejection
}

// relabelCache holds outcomes by knownKey of the label bytes (the seed
// holds the limits' version, so new rules are not answered with old
// outcomes). It keeps two generations of at most max/2 entries: when the
// current one is full, the older is dropped, so what is in use stays and
// memory stays bounded.
type relabelCache struct {
	mu       sync.Mutex
	cur, old map[uint64]relabelOutcome
	max      int
}

func newRelabelCache(max int) *relabelCache {
	return &relabelCache{cur: map[uint64]relabelOutcome{}, max: max}
}

func (c *relabelCache) get(key uint64) (relabelOutcome, bool) {
	if o, ok := c.cur[key]; ok {
		return o, true
	}
	o, ok := c.old[key]
	if ok {
		c.put(key, o)
	}
	return o, ok
}

func (c *relabelCache) put(key uint64, o relabelOutcome) {
	if c.max <= 0 {
		return
	}
	if len(c.cur) >= c.max/2+1 {
		c.old, c.cur = c.cur, make(map[uint64]relabelOutcome, len(c.cur))
	}
	c.cur[key] = o
}

// relabel applies the tenant's rules to st.req and parses the result back
// into st.req. Series whose relabeled labels are invalid go to
// st.refusedEarly. It returns the series dropped and what they held.
func (r *Router) relabel(st *writeState, tl *limits.Tenant, seed uint64) (dropped int, held forwarding.Written, err error) {
	req := &st.req
	n := req.NumSeries()
	// The keys first, then every lookup under one lock, so that the
	// lookups' cache misses overlap (as lookUpKnown does).
	st.relabelKeys = grow(st.relabelKeys, n)
	st.relabelRuns = slices.Grow(st.relabelRuns[:0], n)[:n]
	for i := range n {
		run, ok := req.LabelRun(i)
		if ok {
			st.relabelKeys[i] = knownKey(seed, xxhash.Sum64(run))
		}
		st.relabelRuns[i] = int32(len(run))
	}
	st.outcomes = slices.Grow(st.outcomes[:0], n)[:n]
	st.hit = slices.Grow(st.hit[:0], n)[:n]
	c := r.relabelCache
	c.mu.Lock()
	for i, key := range st.relabelKeys {
		st.outcomes[i], st.hit[i] = relabelOutcome{}, false
		if key != 0 {
			st.outcomes[i], st.hit[i] = c.get(key)
		}
	}
	c.mu.Unlock()
	st.rewrite.Reset(req, st.relabelBody)
	for i := range n {
		o := &st.outcomes[i]
		if !st.hit[i] {
			*o = r.relabelSeries(st, i, tl)
			if key := st.relabelKeys[i]; key != 0 {
				c.mu.Lock()
				c.put(key, *o)
				c.mu.Unlock()
			}
		}
		switch {
		case o.drop:
			dropped++
			s := &st.series
			if req.SeriesSkipLabels(i, int(st.relabelRuns[i]), s) || req.Series(i, s) == nil {
				held.Add(forwarding.Written{Samples: len(s.Samples), Histograms: len(s.Histograms), Exemplars: len(s.Exemplars)})
			}
		case o.refusal != nil:
			rj := *o.refusal
			rj.Series = i
			st.refusedEarly = append(st.refusedEarly, rj)
		case o.same:
			st.rewrite.Keep(i)
		case req.Version == remotewrite.V1:
			err = st.rewrite.WithLabelFields(i, o.fields)
		default:
			err = st.rewrite.WithLabels(i, st.relabeled)
		}
		if err != nil {
			return 0, held, err
		}
	}
	st.relabelBody = st.rewrite.Finish()
	st.rewritten = true
	return dropped, held, req.Parse(req.Version, st.relabelBody)
}

// relabelSeries runs the rules on series i. For a 2.0 series whose labels
// change, the new labels are left in st.relabeled. A malformed series is
// refused, as routing refuses it.
func (r *Router) relabelSeries(st *writeState, i int, tl *limits.Tenant) relabelOutcome {
	s := &st.series
	if err := st.req.Series(i, s); err != nil {
		return relabelOutcome{refusal: &forwarding.Rejection{Kind: forwarding.KindOf(err), Reason: err.Error()}}
	}
	st.builder.Reset()
	for _, l := range s.Labels {
		st.builder.Add(string(l.Name), string(l.Value))
	}
	st.builder.Sort()
	orig := st.builder.Labels()
	lb := labels.NewBuilder(orig)
	keep := relabel.ProcessBuilder(lb, tl.MetricRelabelConfigs...)
	out := lb.Labels()
	switch {
	case !keep:
		return relabelOutcome{drop: true}
	case labels.Equal(out, orig):
		return relabelOutcome{same: true}
	}
	st.relabeled = toLabels(st.relabeled[:0], out)
	check := remotewrite.Series{Labels: st.relabeled}
	if err := tl.CheckLabels(&check); err != nil {
		return relabelOutcome{refusal: &forwarding.Rejection{Kind: forwarding.KindOf(err), Reason: ruleError(orig, tl.MetricRelabelConfigs, tl, err)}}
	}
	if st.req.Version != remotewrite.V1 {
		return relabelOutcome{}
	}
	return relabelOutcome{fields: remotewrite.AppendLabelFields(nil, st.relabeled)}
}

// ruleError says which rule made the labels invalid: the first after
// which they no longer pass.
func ruleError(ls labels.Labels, rules []*relabel.Config, tl *limits.Tenant, err error) string {
	var scratch []remotewrite.Label
	lb := labels.NewBuilder(ls)
	for k, rule := range rules {
		if !relabel.ProcessBuilder(lb, rule) {
			break
		}
		scratch = toLabels(scratch[:0], lb.Labels())
		if e := tl.CheckLabels(&remotewrite.Series{Labels: scratch}); e != nil {
			return fmt.Sprintf("%v, after metric_relabel_configs rule %d (action %s)", e, k+1, rule.Action)
		}
	}
	return fmt.Sprintf("%v, after metric_relabel_configs", err)
}

func toLabels(dst []remotewrite.Label, ls labels.Labels) []remotewrite.Label {
	ls.Range(func(l labels.Label) {
		dst = append(dst, remotewrite.Label{Name: []byte(l.Name), Value: []byte(l.Value)})
	})
	return dst
}
