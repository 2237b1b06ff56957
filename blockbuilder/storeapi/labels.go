package storeapi

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// timeRange reads a label request's range; old clients send none, which
// means everything.
func timeRange(start, end int64) (int64, int64) {
	if start == 0 && end == 0 {
		return math.MinInt64, math.MaxInt64
	}
	return start, end
}

// LabelNames returns the label names of the selected tenants' series in
// the time range, with the external label names of every tenant that has
// a matching series (Thanos Receive's answer), sorted and unique.
func (s *Server) LabelNames(ctx context.Context, req *LabelNamesRequest) (*LabelNamesResponse, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	ms, err := promMatchers(req.Matchers)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	start, end := timeRange(req.Start, req.End)
	drop := map[string]struct{}{}
	for _, d := range req.WithoutReplicaLabels {
		drop[d] = struct{}{}
	}
	seen := map[string]struct{}{}
	var warnings []string
	for _, t := range s.tenants.Tenants() {
		ok, tms := tenantMatchers(ms, t.ExternalLabels)
		if !ok {
			continue
		}
		names, warns, err := tenantQuery(ctx, t.DB, start, end, func(q storage.ChunkQuerier) ([]string, []error, error) {
			names, w, err := q.LabelNames(ctx, &storage.LabelHints{Limit: int(req.Limit)}, tms...)
			return names, w.AsErrors(), err
		})
		if err != nil {
			return nil, grpcError(ctx, fmt.Errorf("tenant %s: label names: %w", t.ID, err))
		}
		for _, w := range warns {
			warnings = append(warnings, w.Error())
		}
		if len(names) == 0 {
			continue
		}
		for _, n := range names {
			if _, ok := drop[n]; !ok {
				seen[n] = struct{}{}
			}
		}
		t.ExternalLabels.Range(func(l labels.Label) {
			if _, ok := drop[l.Name]; !ok {
				seen[l.Name] = struct{}{}
			}
		})
	}
	return &LabelNamesResponse{Names: sortedLimited(seen, req.Limit), Warnings: warnings}, nil
}

// LabelValues returns the values of one label in the selected tenants'
// series in the time range. For an external label it is the tenant's
// value, if the tenant has a series matching the other matchers.
func (s *Server) LabelValues(ctx context.Context, req *LabelValuesRequest) (*LabelValuesResponse, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if req.Label == "" {
		return nil, status.Error(codes.InvalidArgument, "label name parameter cannot be empty")
	}
	if slices.Contains(req.WithoutReplicaLabels, req.Label) {
		return &LabelValuesResponse{}, nil
	}
	ms, err := promMatchers(req.Matchers)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	start, end := timeRange(req.Start, req.End)
	seen := map[string]struct{}{}
	var warnings []string
	for _, t := range s.tenants.Tenants() {
		ok, tms := tenantMatchers(ms, t.ExternalLabels)
		if !ok {
			continue
		}
		var (
			values []string
			warns  []error
		)
		if ext := t.ExternalLabels.Get(req.Label); ext != "" {
			values, warns, err = tenantQuery(ctx, t.DB, start, end, func(q storage.ChunkQuerier) ([]string, []error, error) {
				if len(tms) == 0 {
					tms = []*labels.Matcher{selectAll}
				}
				set := q.Select(ctx, false, &storage.SelectHints{Start: start, End: end, Func: "series", Limit: 1}, tms...)
				if set.Next() {
					return []string{ext}, set.Warnings().AsErrors(), nil
				}
				return nil, set.Warnings().AsErrors(), set.Err()
			})
		} else {
			values, warns, err = tenantQuery(ctx, t.DB, start, end, func(q storage.ChunkQuerier) ([]string, []error, error) {
				vs, w, err := q.LabelValues(ctx, req.Label, &storage.LabelHints{Limit: int(req.Limit)}, tms...)
				return vs, w.AsErrors(), err
			})
		}
		if err != nil {
			return nil, grpcError(ctx, fmt.Errorf("tenant %s: label values of %s: %w", t.ID, req.Label, err))
		}
		for _, w := range warns {
			warnings = append(warnings, w.Error())
		}
		for _, v := range values {
			seen[v] = struct{}{}
		}
	}
	return &LabelValuesResponse{Values: sortedLimited(seen, req.Limit), Warnings: warnings}, nil
}

// tenantQuery runs fn on a querier of db over [start, end] and copies the
// strings it returns: they may point into a block that is deleted once
// the querier is closed.
func tenantQuery(ctx context.Context, db interface {
	ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error)
}, start, end int64, fn func(storage.ChunkQuerier) ([]string, []error, error)) ([]string, []error, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	q, err := db.ChunkQuerier(start, end)
	if err != nil {
		return nil, nil, err
	}
	defer q.Close()
	out, warns, err := fn(q)
	for i := range out {
		out[i] = strings.Clone(out[i])
	}
	return out, warns, err
}

// sortedLimited returns the keys of set sorted, at most limit of them if
// limit is positive.
func sortedLimited(set map[string]struct{}, limit int64) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	if limit > 0 && int64(len(out)) > limit {
		out = out[:limit]
	}
	return out
}
