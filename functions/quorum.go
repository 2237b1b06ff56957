package functions

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/stratametrics/strata/internal/forwarding"
	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/validation"
	"github.com/stratametrics/strata/writeerr"
)

// decide applies the quorum rule series by series (see
// docs/ARCHITECTURE.md) and turns the result into the one answer the
// sender gets:
//
//   - a series is stored when `quorum` replicas wrote it;
//   - it is rejected when fewer wrote it but enough answered that they
//     refused it (conflict, invalid, limit): retrying cannot help;
//   - it failed otherwise, and the sender must retry (503).
//
// Rejections by a minority of replicas are not returned: the series is
// stored, and a replica that missed writes while restarting would
// otherwise make senders drop good batches.
//
// Exemplars are advisory: a replica may drop some and still write the
// series. A stored series counts its exemplars less the most dropped by
// a replica that wrote it; a refused one, less the most not stored by a
// replica that answered for it. The exemplars written header so never
// counts more than each of those replicas holds. What is dropped depends
// on the series' history (older than its newest exemplar) or on the
// exemplar itself (labels too long), so replicas mostly agree anyway.
func (r *Router) decide(st *writeState, results []forwardResult, quorum int) outcome {
	var failed []error
	// wholeOK counts the parts written when every part holds every series
	// (st.aliased): each is then one more replica of every series, counted
	// once instead of series by series.
	wholeOK := 0
	for k := range results {
		res := &results[k]
		series := st.epSeries[res.ep]
		switch {
		case res.status/100 == 2:
			if st.aliased {
				wholeOK++
			} else {
				for _, i := range series {
					st.info[i].ok++
				}
			}
			st.applyDrops(series, res.dropped)
		case len(res.rejected) > 0 && writeerr.RefusesData(res.status):
			st.applyRejections(series, res.rejected)
			st.applyDrops(series, res.dropped)
		case writeerr.RefusesData(res.status):
			// Refused whole without a list: every series of the part.
			kind := forwarding.KindOfStatus(res.status)
			for _, i := range series {
				info := &st.info[i]
				info.reject(kind, res.err.Error(), info.samples, info.histograms, info.exemplars)
			}
		default:
			failed = append(failed, res.err)
		}
	}
	var (
		out      outcome
		rejected = st.rejected
		noQuorum int
		minority int
		routed   int
	)
	for i := range st.info {
		info := &st.info[i]
		if !info.routed {
			continue
		}
		routed++
		ok := int(info.ok) + wholeOK
		switch {
		case ok >= quorum:
			out.written.Samples += int(info.samples)
			out.written.Histograms += int(info.histograms)
			out.written.Exemplars += int(max(info.exemplars-info.exDropped, 0))
			if info.rejected > 0 {
				minority++
			}
		case ok+int(info.rejected) >= quorum:
			out.written.Samples += int(max(info.samples-info.rejSamples, 0))
			out.written.Histograms += int(max(info.histograms-info.rejHistograms, 0))
			out.written.Exemplars += int(max(info.exemplars-max(info.exDropped, info.rejExemplars), 0))
			rejected = append(rejected, forwarding.Rejection{Series: i, Kind: info.rejKind, Reason: info.rejReason,
				Samples: int(info.rejSamples), Histograms: int(info.rejHistograms)})
		default:
			noQuorum++
		}
	}
	out.series = routed
	if minority > 0 {
		r.metrics.minorityRejections.Add(float64(minority))
	}
	if noQuorum > 0 {
		r.metrics.quorumFailures.Inc()
		out.err = fmt.Errorf("%w: %d of %d series were not written to a quorum of %d block builders; retry later: %v",
			writeerr.ErrUnavailable, noQuorum, routed, quorum, errors.Join(failed...))
		return out
	}
	slices.SortFunc(rejected, func(a, b forwarding.Rejection) int { return a.Series - b.Series })
	out.err = forwarding.RejectionsError(rejected, func(rj forwarding.Rejection) string {
		return r.describe(st, rj)
	})
	return out
}

// applyRejections records a block builder's per-series refusals; the
// other series of its part were written.
func (st *writeState) applyRejections(series []int32, rs []forwarding.Rejection) {
	refused := make(map[int]*forwarding.Rejection, len(rs))
	for k := range rs {
		if rs[k].Series >= 0 && rs[k].Series < len(series) {
			refused[rs[k].Series] = &rs[k]
		}
	}
	for j, i := range series {
		info := &st.info[i]
		if rj, ok := refused[j]; ok {
			info.reject(rj.Kind, rj.Reason, int32(rj.Samples), int32(rj.Histograms), int32(rj.Exemplars))
			continue
		}
		info.ok++
	}
}

// applyDrops records the exemplars a block builder did not store of the
// series of its part it wrote.
func (st *writeState) applyDrops(series []int32, drops []forwarding.ExemplarDrop) {
	for _, d := range drops {
		if d.Series >= 0 && d.Series < len(series) {
			info := &st.info[series[d.Series]]
			info.exDropped = max(info.exDropped, int32(d.Exemplars))
		}
	}
}

// kindRank orders rejection kinds by which decides the answer.
var kindRank = map[string]int{forwarding.KindInvalid: 3, forwarding.KindLimit: 2, forwarding.KindConflict: 1}

func (info *seriesInfo) reject(kind, reason string, samples, histograms, exemplars int32) {
	info.rejected++
	if kindRank[kind] > kindRank[info.rejKind] {
		info.rejKind, info.rejReason = kind, reason
	}
	info.rejSamples = max(info.rejSamples, samples)
	info.rejHistograms = max(info.rejHistograms, histograms)
	info.rejExemplars = max(info.rejExemplars, exemplars)
}

// describe names the series of a rejection for the sender's log. Reasons
// from the router's own checks name the series already; block builders'
// reasons (TSDB errors) do not.
func (r *Router) describe(st *writeState, rj forwarding.Rejection) string {
	if strings.Contains(rj.Reason, "{") {
		return rj.Reason
	}
	var s remotewrite.Series
	if err := st.req.Series(rj.Series, &s); err != nil {
		return fmt.Sprintf("series %d: %s", rj.Series, rj.Reason)
	}
	return fmt.Sprintf("series %s: %s", validation.FormatLabels(s.Labels, 200), rj.Reason)
}
