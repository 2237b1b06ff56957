package promapi

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"

	"github.com/stratametrics/strata/blockbuilder"
)

// /api/v1/query_exemplars: the exemplars the tenant's head holds (blocks
// carry none) for the series an expression's vector selectors pick, as
// Prometheus answers it: the same parameters, errors and JSON.

// errTooManyExemplars bounds the exemplars of one answer, with the limit
// on samples: an exemplar costs about what a sample does.
var errTooManyExemplars = errors.New("too many exemplars (STRATA_QUERY_MAX_SAMPLES)")

func (a *API) queryExemplars(r *http.Request, view blockbuilder.TenantView, _ storage.Queryable) (result, error) {
	start, err := parseTimeParam(r, "start", minTime)
	if err != nil {
		return result{}, err
	}
	end, err := parseTimeParam(r, "end", maxTime)
	if err != nil {
		return result{}, err
	}
	if end.Before(start) {
		return result{}, badData(errors.New("end timestamp must not be before start timestamp"))
	}
	expr, err := a.parser.ParseExpr(r.FormValue("query"))
	if err != nil {
		return result{}, badData(err)
	}
	selectors := parser.ExtractSelectors(expr)
	if len(selectors) == 0 {
		// No data at all, which is answered 204 as Prometheus does.
		return result{}, nil
	}
	out := []exemplarSeries{}
	if view.DB == nil {
		return result{data: out}, nil
	}
	ctx, cancel := a.requestContext(r)
	defer cancel()
	eq, err := view.DB.ExemplarQuerier(ctx)
	if err != nil {
		return result{}, err
	}
	// Select holds the ring's lock and cannot be interrupted; the ring's
	// size (STRATA_MAX_EXEMPLARS) bounds its work.
	res, err := eq.Select(start.UnixMilli(), end.UnixMilli(), selectors...)
	if err != nil {
		return result{}, err
	}
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	if max := a.cfg.Limits.MaxSeries; max > 0 && len(res) > max {
		return result{}, fmt.Errorf("%w: the query selects more than %d series", errTooManySeries, max)
	}
	n := 0
	for _, s := range res {
		n += len(s.Exemplars)
		if max := a.cfg.Limits.MaxSamples; max > 0 && n > max {
			return result{}, fmt.Errorf("%w: the query selects more than %d exemplars", errTooManyExemplars, max)
		}
		es := make([]exemplarJSON, len(s.Exemplars))
		for i, e := range s.Exemplars {
			es[i] = exemplarJSON(e)
		}
		out = append(out, exemplarSeries{SeriesLabels: s.SeriesLabels, Exemplars: es})
	}
	return result{data: out}, nil
}

// exemplarSeries is exemplar.QueryResult as Prometheus writes it.
type exemplarSeries struct {
	SeriesLabels labels.Labels  `json:"seriesLabels"`
	Exemplars    []exemplarJSON `json:"exemplars"`
}

// exemplarJSON writes an exemplar as Prometheus' API does:
// {"labels":{...},"value":"<float>","timestamp":<seconds>}, the value a
// string (NaN and infinities have no JSON number) and the timestamp in
// seconds with milliseconds. The type's own JSON tags would write neither.
type exemplarJSON exemplar.Exemplar

func (e exemplarJSON) MarshalJSON() ([]byte, error) {
	ls, err := e.Labels.MarshalJSON()
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(ls)+64)
	b = append(b, `{"labels":`...)
	b = append(b, ls...)
	b = append(b, `,"value":"`...)
	b = appendFloat(b, e.Value)
	b = append(b, `","timestamp":`...)
	b = appendTimestamp(b, e.Ts)
	return append(b, '}'), nil
}

// appendFloat formats as Prometheus' JSON does: the shortest form, in
// exponent notation only when very small or very large.
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, f, format, -1, 64)
}

// appendTimestamp writes milliseconds as seconds, with the fraction's
// three digits when it has one (1.5s is 1.500), as Prometheus does.
func appendTimestamp(b []byte, ms int64) []byte {
	if ms < 0 {
		b = append(b, '-')
		ms = -ms
	}
	b = strconv.AppendInt(b, ms/1000, 10)
	if frac := ms % 1000; frac != 0 {
		b = append(b, '.')
		if frac < 100 {
			b = append(b, '0')
		}
		if frac < 10 {
			b = append(b, '0')
		}
		b = strconv.AppendInt(b, frac, 10)
	}
	return b
}
