package promapi

import (
	"errors"
	"fmt"
	"net/http"

	jsoniter "github.com/json-iterator/go"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/jsonutil"

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

// exemplarJSON writes an exemplar as Prometheus' API does, with its own
// formatting of values and timestamps (util/jsonutil):
// {"labels":{...},"value":"<float>","timestamp":<seconds>}, the value a
// string (NaN and infinities have no JSON number) and the timestamp in
// seconds with milliseconds. The type's own JSON tags would write neither.
type exemplarJSON exemplar.Exemplar

func (e exemplarJSON) MarshalJSON() ([]byte, error) {
	ls, err := e.Labels.MarshalJSON()
	if err != nil {
		return nil, err
	}
	stream := jsoniter.ConfigCompatibleWithStandardLibrary.BorrowStream(nil)
	defer jsoniter.ConfigCompatibleWithStandardLibrary.ReturnStream(stream)
	stream.WriteRaw(`{"labels":`)
	stream.WriteRaw(string(ls))
	stream.WriteRaw(`,"value":`)
	jsonutil.MarshalFloat(e.Value, stream)
	stream.WriteRaw(`,"timestamp":`)
	jsonutil.MarshalTimestamp(e.Ts, stream)
	stream.WriteRaw(`}`)
	return append([]byte(nil), stream.Buffer()...), stream.Error
}
