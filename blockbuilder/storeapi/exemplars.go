package storeapi

import (
	"context"
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exemplars are only in the heads (blocks do not carry them), so a block
// builder is the one place Thanos Query can read them from until they
// fall out of the tenant's ring (STRATA_MAX_EXEMPLARS).

// Exemplars sends the exemplars in [req.Start, req.End] of the series the
// vector selectors of req.Query pick, in every tenant, one series per
// response, sorted by series labels with the tenant's external labels
// merged in (as Thanos Receive sends them). An expression without a
// selector has no exemplars.
//
// Matchers on external labels select tenants, as in Series. Unlike
// Thanos Receive, a selector made only of such matchers
// ({tenant_id="team-a"}) selects every series of the tenants it picks,
// rather than failing the call.
//
// A series is never split over responses: Thanos Query keeps one
// response per series and drops the rest.
func (s *Server) Exemplars(ctx context.Context, req *ExemplarsRequest, send func(Message) error) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	expr, err := s.parser.ParseExpr(req.Query)
	if err != nil {
		return status.Error(codes.InvalidArgument, fmt.Sprintf("query: %v", err))
	}
	selectors := parser.ExtractSelectors(expr)
	if len(selectors) == 0 || req.End < req.Start {
		return nil
	}
	var (
		out                 []labeledExemplars
		nSeries, nExemplars int
	)
	for _, t := range s.tenants.Tenants() {
		var sels [][]*labels.Matcher
		for _, sel := range selectors {
			ok, tms := tenantMatchers(sel, t.ExternalLabels)
			if !ok {
				continue
			}
			if len(tms) == 0 {
				tms = []*labels.Matcher{selectAll}
			}
			sels = append(sels, tms)
		}
		if len(sels) == 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return grpcError(ctx, err)
		}
		eq, err := t.DB.ExemplarQuerier(ctx)
		if err != nil {
			return grpcError(ctx, fmt.Errorf("tenant %s: exemplar querier: %w", t.ID, err))
		}
		// Select holds the ring's lock and cannot be interrupted; the
		// ring's size (STRATA_MAX_EXEMPLARS) bounds its work.
		res, err := eq.Select(req.Start, req.End, sels...)
		if err != nil {
			return grpcError(ctx, fmt.Errorf("tenant %s: select exemplars: %w", t.ID, err))
		}
		rl := newRelabeler(t.ExternalLabels, nil)
		for _, r := range res {
			nSeries++
			nExemplars += len(r.Exemplars)
			if max := s.opts.Limits.MaxSeries; max > 0 && nSeries > max {
				return grpcError(ctx, fmt.Errorf("%w: the query selects more than %d series", errTooManySeries, max))
			}
			if max := s.opts.Limits.MaxSamples; max > 0 && nExemplars > max {
				return grpcError(ctx, fmt.Errorf("%w: the query selects more than %d exemplars", errTooManySamples, max))
			}
			out = append(out, labeledExemplars{lset: rl.apply(r.SeriesLabels), exemplars: r.Exemplars})
		}
	}
	// Tenants' series interleave once their external labels are in.
	slices.SortFunc(out, func(a, b labeledExemplars) int { return labels.Compare(a.lset, b.lset) })
	var data ExemplarData
	for _, e := range out {
		if err := ctx.Err(); err != nil {
			return grpcError(ctx, err)
		}
		data.SeriesLabels = wireLabels(data.SeriesLabels, e.lset)
		data.Exemplars = wireExemplars(data.Exemplars, e.exemplars)
		// Encoded now, so that data is free to reuse: gRPC may hold a
		// message after SendMsg returns.
		resp := ExemplarsResponse{Data: &data}
		if err := send(rawMessage(resp.AppendMarshal(nil))); err != nil {
			return grpcError(ctx, err)
		}
	}
	return nil
}

// labeledExemplars is one series' exemplars with the labels it is sent
// with.
type labeledExemplars struct {
	lset      labels.Labels
	exemplars []exemplar.Exemplar
}

// wireExemplars converts exemplars into dst, reusing its label slices.
func wireExemplars(dst []Exemplar, es []exemplar.Exemplar) []Exemplar {
	dst = slices.Grow(dst[:0], len(es))[:len(es)]
	for i, e := range es {
		dst[i] = Exemplar{Labels: wireLabels(dst[i].Labels, e.Labels), Value: e.Value, Ts: e.Ts}
	}
	return dst
}
