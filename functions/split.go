package functions

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/validation"
	"github.com/stratametrics/strata/writeerr"
)

// Splitting a request by tenant (STRATA_SPLIT_TENANT_LABEL, Thanos'
// --receive.split-tenant-label-name): a series carrying the label goes to
// the tenant it names, without the label; the others stay the request's
// tenant. Each tenant's part is re-encoded (remotewrite.Rewrite) and
// written as a request of its own, with that tenant's limits, relabeling,
// hashring and credentials. Finding the label decodes every series'
// labels, which the known-series table otherwise spares: the cost is only
// paid with the setting on.

// maxSplitTenants bounds the tenants one request may be split into: each
// is a write of its own to its block builders, one after the other.
const maxSplitTenants = 1000

// splitPart is the series of one tenant in a split request.
type splitPart struct {
	tenant string
	series []int
}

// writeSplit writes a request whose series name several tenants, and
// reports false (having written nothing) when every series is the
// request's tenant's.
func (r *Router) writeSplit(hreq *http.Request, st *writeState, tenant string, version remotewrite.Version) (outcome, bool) {
	name := []byte(r.cfg.SplitTenantLabel)
	parts := []splitPart{{tenant: tenant}}
	index := map[string]int{tenant: 0}
	var invalid error
	invalidSeries := 0
	for i := 0; i < st.req.NumSeries(); i++ {
		if err := st.req.Series(i, &st.series); err != nil {
			// Left to the tenant's write, which refuses it as it would.
			parts[0].series = append(parts[0].series, i)
			continue
		}
		value := labelValue(st.series.Labels, name)
		if value == nil {
			parts[0].series = append(parts[0].series, i)
			continue
		}
		k, ok := index[string(value)]
		if !ok {
			if err := validation.ValidateTenant(string(value)); err != nil {
				invalidSeries++
				if invalid == nil {
					invalid = fmt.Errorf("series %s: label %s: %w", validation.FormatLabels(st.series.Labels, 200), r.cfg.SplitTenantLabel, err)
				}
				continue
			}
			if len(parts) > maxSplitTenants {
				return outcome{err: fmt.Errorf("%w: the series of one request name more than %d tenants in label %s", writeerr.ErrTooLarge, maxSplitTenants, r.cfg.SplitTenantLabel)}, true
			}
			k = len(parts)
			index[string(value)] = k
			parts = append(parts, splitPart{tenant: string(value)})
		}
		parts[k].series = append(parts[k].series, i)
	}
	if len(parts) == 1 && invalid == nil {
		return outcome{}, false
	}
	bodies, err := r.splitBodies(st, parts, name)
	if err != nil {
		return outcome{err: err}, true
	}
	var out outcome
	if invalid != nil {
		out.err = fmt.Errorf("%w: %d series name no valid tenant; the first: %v", writeerr.ErrInvalid, invalidSeries, invalid)
		out.series = invalidSeries
	}
	for k, p := range parts {
		if len(p.series) == 0 {
			continue
		}
		out = worse(out, r.writePart(hreq, st, p.tenant, version, bodies[k]), p.tenant)
	}
	return out, true
}

// splitBodies encodes each part as a request of its own, without the
// split label.
func (r *Router) splitBodies(st *writeState, parts []splitPart, name []byte) ([][]byte, error) {
	bodies := make([][]byte, len(parts))
	for k, p := range parts {
		st.rewrite.Reset(&st.req, nil)
		for _, i := range p.series {
			if _, err := st.addWithout(i, name); err != nil {
				return nil, err
			}
		}
		bodies[k] = st.rewrite.Finish()
	}
	return bodies, nil
}

// writePart writes one tenant's part as the tenant's own request: its
// credentials, limits, relabeling and hashring.
func (r *Router) writePart(hreq *http.Request, st *writeState, tenant string, version remotewrite.Version, body []byte) outcome {
	if err := r.authorize(hreq, tenant); err != nil {
		return outcome{err: err}
	}
	if err := st.req.Parse(version, body); err != nil {
		return outcome{err: err}
	}
	seed, tl := r.limits.knownSeed(tenant)
	return r.writeTenant(hreq, st, tenant, tl, seed, version, true)
}

// worse adds a part's outcome to a split request's: what was written adds
// up, and the answer is the failure a sender should act on first, a
// retryable one (which makes it send the whole request again, harmless
// for the parts already stored) before one that refuses data.
func worse(acc, part outcome, tenant string) outcome {
	acc.written.Add(part.written)
	acc.series += part.series
	acc.relabelDropped += part.relabelDropped
	acc.relabelHeld.Add(part.relabelHeld)
	acc.haHeld.Add(part.haHeld)
	if part.err == nil {
		return acc
	}
	rank := func(err error) int {
		switch s := writeerr.HTTPStatus(err); {
		case err == nil:
			return 0
		case s >= 500:
			return 3
		case writeerr.Retryable(s):
			return 2
		default:
			return 1
		}
	}
	if rank(part.err) > rank(acc.err) {
		acc.err = fmt.Errorf("tenant %s: %w", tenant, part.err)
	}
	return acc
}

// addWithout adds series i of st.req to st.rewrite without the label
// called name, and tells whether it had one; a series that does not
// decode is kept as it is, for routing to refuse as it would.
func (st *writeState) addWithout(i int, name []byte) (bool, error) {
	if err := st.req.Series(i, &st.series); err != nil || labelValue(st.series.Labels, name) == nil {
		st.rewrite.Keep(i)
		return false, nil
	}
	st.relabeled = st.relabeled[:0]
	for _, l := range st.series.Labels {
		if !bytes.Equal(l.Name, name) {
			st.relabeled = append(st.relabeled, l)
		}
	}
	if err := st.rewrite.WithLabels(i, st.relabeled); err != nil {
		return false, fmt.Errorf("%w: drop label %s of series %d: %v", writeerr.ErrInvalid, name, i, err)
	}
	return true, nil
}

// labelValue is the value of the label called name, nil when the series
// has none or an empty one.
func labelValue(ls []remotewrite.Label, name []byte) []byte {
	for _, l := range ls {
		if bytes.Equal(l.Name, name) && len(l.Value) > 0 {
			return l.Value
		}
	}
	return nil
}
