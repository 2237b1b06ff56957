// Package promapi serves Prometheus' HTTP query API on a block builder,
// over one tenant per request: /api/v1/query, /api/v1/query_range,
// /api/v1/series, /api/v1/labels and /api/v1/label/<name>/values, answered
// by Prometheus' own PromQL engine over the tenant's TSDB (head and local
// blocks), and /api/v1/query_exemplars from the head's exemplar storage,
// in Prometheus' JSON format. Grafana, promtool and curl can then
// look at the data a block builder holds, before it reaches the bucket.
//
// The one thing to know before changing it: answers must stay what a
// Prometheus server would answer for the same samples (the tests compare
// with the engine run directly), so the work here is parsing parameters
// and classifying errors, never computing.
package promapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/stratametrics/strata/blockbuilder"
	"github.com/stratametrics/strata/validation"
	"github.com/stratametrics/strata/writeerr"
)

// Tenants finds a tenant's TSDB and says who may read it: a block
// builder.
type Tenants interface {
	Tenant(id string) (blockbuilder.TenantView, bool)
	// Authorize checks that the request may act for the tenant (a bearer
	// token allowed for it, when tokens are configured), as for writes.
	// Its errors wrap writeerr.ErrUnauthorized or ErrForbidden.
	Authorize(h http.Header, tenant string) error
}

// Config of the query API.
type Config struct {
	// TenantHeader and DefaultTenant find a request's tenant, as for
	// writes (STRATA_TENANT_HEADER, STRATA_DEFAULT_TENANT).
	TenantHeader  string
	DefaultTenant string
	// Limits bound each query (STRATA_QUERY_*).
	Limits blockbuilder.QueryLimits
	// LookbackDelta is how far back an instant vector looks for a
	// sample; 0 is Prometheus' default, 5m.
	LookbackDelta time.Duration
}

// maxPoints is Prometheus' limit on the points of one range query series.
const maxPoints = 11000

// API answers the query endpoints.
type API struct {
	cfg     Config
	tenants Tenants
	engine  *promql.Engine
	parser  parser.Parser
	logger  *slog.Logger
	now     func() time.Time
}

// New returns the query API over tenants. reg, if not nil, gets the PromQL
// engine's metrics.
func New(cfg Config, tenants Tenants, logger *slog.Logger, reg prometheus.Registerer) (*API, error) {
	if cfg.TenantHeader == "" {
		return nil, errors.New("promapi: the tenant header must be set (STRATA_TENANT_HEADER)")
	}
	if err := validation.ValidateTenant(cfg.DefaultTenant); err != nil {
		return nil, fmt.Errorf("STRATA_DEFAULT_TENANT: %w", err)
	}
	if err := cfg.Limits.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := parser.NewParser(parser.Options{})
	// The engine reads 0 as "none allowed": unlimited is the largest value.
	maxSamples := cfg.Limits.MaxSamples
	if maxSamples == 0 {
		maxSamples = math.MaxInt
	}
	timeout := cfg.Limits.Timeout
	if timeout == 0 {
		timeout = time.Duration(math.MaxInt64)
	}
	engine := promql.NewEngine(promql.EngineOpts{
		Logger:               logger,
		Reg:                  reg,
		MaxSamples:           maxSamples,
		Timeout:              timeout,
		LookbackDelta:        cfg.LookbackDelta,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		// Subqueries without a step use Prometheus' default evaluation
		// interval, as a Prometheus server with a default config does.
		NoStepSubqueryIntervalFn: func(int64) int64 { return time.Minute.Milliseconds() },
		Parser:                   p,
	})
	return &API{cfg: cfg, tenants: tenants, engine: engine, parser: p, logger: logger, now: time.Now}, nil
}

// Register adds the endpoints to mux. They take GET and, like Prometheus,
// POST with a form body (which long queries need).
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("/api/v1/query", a.handle(a.query, true))
	mux.HandleFunc("/api/v1/query_range", a.handle(a.queryRange, true))
	mux.HandleFunc("/api/v1/series", a.handle(a.series, true))
	mux.HandleFunc("/api/v1/labels", a.handle(a.labelNames, true))
	mux.HandleFunc("/api/v1/label/{name}/values", a.handle(a.labelValues, false))
	mux.HandleFunc("/api/v1/query_exemplars", a.handle(a.queryExemplars, true))
}

// Handler returns the endpoints alone, for serving without the block
// builder's other routes.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	a.Register(mux)
	return mux
}

// response is Prometheus' envelope.
type response struct {
	Status    string   `json:"status"`
	Data      any      `json:"data,omitempty"`
	ErrorType string   `json:"errorType,omitempty"`
	Error     string   `json:"error,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	Infos     []string `json:"infos,omitempty"`
}

// queryData is the data of query and query_range.
type queryData struct {
	ResultType parser.ValueType `json:"resultType"`
	Result     parser.Value     `json:"result"`
}

// apiError is an error with Prometheus' type and HTTP status.
type apiError struct {
	typ    string
	status int
	err    error
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

// The error types of Prometheus' API and their statuses.
func badData(err error) *apiError { return &apiError{"bad_data", http.StatusBadRequest, err} }

func invalidParam(name string, err error) *apiError {
	return badData(fmt.Errorf("invalid parameter %q: %w", name, err))
}

// classify turns an error of the engine or the storage into Prometheus'
// error type: the one place that decides what a client sees.
func classify(err error) *apiError {
	var ae *apiError
	var canceled promql.ErrQueryCanceled
	var timeout promql.ErrQueryTimeout
	var storageErr promql.ErrStorage
	// The engine wraps what a series set fails with in ErrStorage, which
	// does not unwrap: look inside for the errors that are not the
	// storage's fault.
	inner := err
	if errors.As(err, &storageErr) {
		inner = storageErr.Err
	}
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, writeerr.ErrUnauthorized):
		return &apiError{"unauthorized", http.StatusUnauthorized, err}
	case errors.Is(err, writeerr.ErrForbidden):
		return &apiError{"forbidden", http.StatusForbidden, err}
	case errors.As(err, &timeout), errors.Is(inner, context.DeadlineExceeded):
		return &apiError{"timeout", http.StatusServiceUnavailable, err}
	case errors.As(err, &canceled), errors.Is(inner, context.Canceled):
		// 499, nginx's "client closed request", as Prometheus answers.
		return &apiError{"canceled", 499, err}
	case errors.Is(inner, errTooManySeries), errors.Is(inner, errTooManyExemplars):
		return &apiError{"execution", http.StatusUnprocessableEntity, err}
	case inner != err:
		return &apiError{"internal", http.StatusInternalServerError, err}
	}
	return &apiError{"execution", http.StatusUnprocessableEntity, err}
}

// result is what an endpoint computed: data and warnings to send, and
// a function to call once they are written (queries hold their result's
// memory until then).
type result struct {
	data     any
	warnings annotations.Annotations
	query    string // for the position of warnings
	done     func()
}

type endpoint func(r *http.Request, t blockbuilder.TenantView, q storage.Queryable) (result, error)

func (a *API) handle(fn endpoint, allowPost bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet:
		case r.Method == http.MethodPost && allowPost:
		default:
			allow := http.MethodGet
			if allowPost {
				allow += ", " + http.MethodPost
			}
			w.Header().Set("Allow", allow)
			a.respondError(w, &apiError{"bad_data", http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed", r.Method)})
			return
		}
		tenant, err := validation.Tenant(r.Header, a.cfg.TenantHeader, a.cfg.DefaultTenant)
		if err != nil {
			a.respondError(w, badData(fmt.Errorf("tenant (%s header): %w", a.cfg.TenantHeader, err)))
			return
		}
		// Before the form is read: a client that may not read the tenant
		// costs nothing more than its headers.
		if err := a.tenants.Authorize(r.Header, tenant); err != nil {
			a.respondError(w, classify(err))
			return
		}
		if err := r.ParseForm(); err != nil {
			a.respondError(w, badData(fmt.Errorf("error parsing form values: %w", err)))
			return
		}
		view, ok := a.tenants.Tenant(tenant)
		var q storage.Queryable = emptyQueryable{}
		if ok {
			// A tenant with no TSDB open here has no data here: it
			// answers empty, as Prometheus does for a selector that
			// matches nothing.
			q = view.DB
		}
		q = &limitQueryable{Queryable: q, max: a.cfg.Limits.MaxSeries}
		res, err := fn(r, view, q)
		if res.done != nil {
			defer res.done()
		}
		if err != nil {
			a.respondError(w, classify(err))
			return
		}
		if res.data == nil {
			// Nothing to answer (query_exemplars without a selector):
			// Prometheus says 204 and writes no body.
			w.WriteHeader(http.StatusNoContent)
			return
		}
		warn, info := res.warnings.AsStrings(res.query, 10, 10)
		a.respond(w, http.StatusOK, response{Status: "success", Data: res.data, Warnings: warn, Infos: info})
	}
}

func (a *API) respond(w http.ResponseWriter, status int, resp response) {
	b, err := json.Marshal(resp)
	if err != nil {
		a.logger.Error("encode query answer", "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (a *API) respondError(w http.ResponseWriter, e *apiError) {
	if e.status >= 500 {
		a.logger.Warn("query failed", "type", e.typ, "err", e.err)
	}
	a.respond(w, e.status, response{Status: "error", ErrorType: e.typ, Error: e.err.Error()})
}

// withTimeout applies the request's timeout parameter, which can only
// shorten the configured one (the engine applies that one itself).
func (a *API) withTimeout(r *http.Request) (context.Context, context.CancelFunc, error) {
	ctx := r.Context()
	s := r.FormValue("timeout")
	if s == "" {
		return ctx, func() {}, nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return nil, nil, invalidParam("timeout", err)
	}
	if d <= 0 {
		return nil, nil, invalidParam("timeout", fmt.Errorf("timeout must be positive, got %s", d))
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	return ctx, cancel, nil
}

func (a *API) queryOpts(r *http.Request) (promql.QueryOpts, error) {
	var lookback time.Duration
	if s := r.FormValue("lookback_delta"); s != "" {
		d, err := parseDuration(s)
		if err != nil {
			return nil, invalidParam("lookback_delta", err)
		}
		lookback = d
	}
	return promql.NewPrometheusQueryOpts(false, lookback, nil), nil
}

// exec runs a built query and packs its result.
func exec(ctx context.Context, qry promql.Query, qs string) (result, error) {
	res := qry.Exec(ctx)
	if res.Err != nil {
		return result{warnings: res.Warnings, query: qs, done: qry.Close}, res.Err
	}
	value := res.Value
	// An empty result is [] in Prometheus' answers, never null.
	switch v := value.(type) {
	case promql.Vector:
		if v == nil {
			value = promql.Vector{}
		}
	case promql.Matrix:
		if v == nil {
			value = promql.Matrix{}
		}
	}
	return result{data: queryData{ResultType: value.Type(), Result: value}, warnings: res.Warnings, query: qs, done: qry.Close}, nil
}

func (a *API) query(r *http.Request, _ blockbuilder.TenantView, q storage.Queryable) (result, error) {
	qs := r.FormValue("query")
	ts, err := parseTimeParam(r, "time", a.now())
	if err != nil {
		return result{}, err
	}
	opts, err := a.queryOpts(r)
	if err != nil {
		return result{}, err
	}
	ctx, cancel, err := a.withTimeout(r)
	if err != nil {
		return result{}, err
	}
	defer cancel()
	qry, err := a.engine.NewInstantQuery(ctx, q, opts, qs, ts)
	if err != nil {
		return result{}, invalidParam("query", err)
	}
	return exec(ctx, qry, qs)
}

func (a *API) queryRange(r *http.Request, _ blockbuilder.TenantView, q storage.Queryable) (result, error) {
	qs := r.FormValue("query")
	start, err := parseTimeParam(r, "start", time.Time{})
	if err != nil {
		return result{}, err
	}
	end, err := parseTimeParam(r, "end", time.Time{})
	if err != nil {
		return result{}, err
	}
	if r.FormValue("start") == "" || r.FormValue("end") == "" || r.FormValue("step") == "" {
		return result{}, badData(errors.New("start, end and step are required"))
	}
	if end.Before(start) {
		return result{}, invalidParam("end", errors.New("end timestamp must not be before start time"))
	}
	step, err := parseDuration(r.FormValue("step"))
	if err != nil {
		return result{}, invalidParam("step", err)
	}
	if step <= 0 {
		return result{}, invalidParam("step", errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer"))
	}
	// Bound the points of each series, as Prometheus does.
	if end.Sub(start)/step > maxPoints {
		return result{}, badData(errors.New("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"))
	}
	opts, err := a.queryOpts(r)
	if err != nil {
		return result{}, err
	}
	ctx, cancel, err := a.withTimeout(r)
	if err != nil {
		return result{}, err
	}
	defer cancel()
	qry, err := a.engine.NewRangeQuery(ctx, q, opts, qs, start, end, step)
	if err != nil {
		return result{}, invalidParam("query", err)
	}
	return exec(ctx, qry, qs)
}

// selectRange reads the start and end of the metadata endpoints, which
// default to all time.
func selectRange(r *http.Request) (int64, int64, error) {
	mint, maxt := int64(math.MinInt64), int64(math.MaxInt64)
	if s := r.FormValue("start"); s != "" {
		t, err := parseTimeParam(r, "start", time.Time{})
		if err != nil {
			return 0, 0, err
		}
		mint = t.UnixMilli()
	}
	if s := r.FormValue("end"); s != "" {
		t, err := parseTimeParam(r, "end", time.Time{})
		if err != nil {
			return 0, 0, err
		}
		maxt = t.UnixMilli()
	}
	if maxt < mint {
		return 0, 0, invalidParam("end", errors.New("end timestamp must not be before start time"))
	}
	return mint, maxt, nil
}

func (a *API) matchers(r *http.Request, required bool) ([][]*labels.Matcher, error) {
	ms := r.Form["match[]"]
	if len(ms) == 0 {
		if required {
			return nil, badData(errors.New("no match[] parameter provided"))
		}
		return nil, nil
	}
	sets, err := a.parser.ParseMetricSelectors(ms)
	if err != nil {
		return nil, invalidParam("match[]", err)
	}
	for _, set := range sets {
		empty := true
		for _, m := range set {
			if !m.Matches("") {
				empty = false
			}
		}
		if empty {
			return nil, badData(errors.New("match[] must contain at least one non-empty matcher"))
		}
	}
	return sets, nil
}

func (a *API) series(r *http.Request, _ blockbuilder.TenantView, q storage.Queryable) (result, error) {
	sets, err := a.matchers(r, true)
	if err != nil {
		return result{}, err
	}
	limit, err := parseLimit(r)
	if err != nil {
		return result{}, err
	}
	mint, maxt, err := selectRange(r)
	if err != nil {
		return result{}, err
	}
	ctx, cancel := a.requestContext(r)
	defer cancel()
	querier, err := q.Querier(mint, maxt)
	if err != nil {
		return result{}, promql.ErrStorage{Err: err}
	}
	defer querier.Close()
	// One more than the limit, to know when the answer is truncated.
	hints := &storage.SelectHints{Start: mint, End: maxt, Func: "series", Limit: hintLimit(limit)}
	var ss []storage.SeriesSet
	for _, ms := range sets {
		ss = append(ss, querier.Select(ctx, true, hints, ms...))
	}
	set := storage.NewMergeSeriesSet(ss, 0, storage.ChainedSeriesMerge)
	out := []labels.Labels{}
	var warnings annotations.Annotations
	for set.Next() {
		if limit > 0 && len(out) >= limit {
			warnings.Add(errors.New("results truncated due to limit"))
			break
		}
		// Copied: the querier closes before the answer is written.
		out = append(out, set.At().Labels().Copy())
	}
	if err := set.Err(); err != nil {
		return result{}, err
	}
	warnings.Merge(set.Warnings())
	return result{data: out, warnings: warnings}, nil
}

func (a *API) labelNames(r *http.Request, _ blockbuilder.TenantView, q storage.Queryable) (result, error) {
	sets, err := a.matchers(r, false)
	if err != nil {
		return result{}, err
	}
	return a.labelQuery(r, q, sets, func(ctx context.Context, qr storage.Querier, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
		return qr.LabelNames(ctx, hints, ms...)
	})
}

func (a *API) labelValues(r *http.Request, _ blockbuilder.TenantView, q storage.Queryable) (result, error) {
	name := r.PathValue("name")
	if !labelNameValid(name) {
		return result{}, badData(fmt.Errorf("invalid label name: %q", name))
	}
	sets, err := a.matchers(r, false)
	if err != nil {
		return result{}, err
	}
	return a.labelQuery(r, q, sets, func(ctx context.Context, qr storage.Querier, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
		return qr.LabelValues(ctx, name, hints, ms...)
	})
}

// labelQuery runs a label names or values lookup for each matcher set (or
// once without matchers) and answers their union, sorted.
func (a *API) labelQuery(r *http.Request, q storage.Queryable, sets [][]*labels.Matcher,
	fn func(context.Context, storage.Querier, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error),
) (result, error) {
	limit, err := parseLimit(r)
	if err != nil {
		return result{}, err
	}
	mint, maxt, err := selectRange(r)
	if err != nil {
		return result{}, err
	}
	ctx, cancel := a.requestContext(r)
	defer cancel()
	querier, err := q.Querier(mint, maxt)
	if err != nil {
		return result{}, promql.ErrStorage{Err: err}
	}
	defer querier.Close()
	hints := &storage.LabelHints{Limit: hintLimit(limit)}
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	seen := map[string]struct{}{}
	var warnings annotations.Annotations
	for _, ms := range sets {
		vals, w, err := fn(ctx, querier, hints, ms...)
		if err != nil {
			return result{}, err
		}
		warnings.Merge(w)
		for _, v := range vals {
			seen[v] = struct{}{}
		}
	}
	out := sortedKeys(seen)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
		warnings.Add(errors.New("results truncated due to limit"))
	}
	return result{data: out, warnings: warnings}, nil
}

// requestContext bounds a metadata request by the configured timeout.
func (a *API) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	if a.cfg.Limits.Timeout > 0 {
		return context.WithTimeout(r.Context(), a.cfg.Limits.Timeout)
	}
	return context.WithCancel(r.Context())
}

// emptyQueryable answers for a tenant that has no TSDB here.
type emptyQueryable struct{}

func (emptyQueryable) Querier(int64, int64) (storage.Querier, error) {
	return storage.NoopQuerier(), nil
}

// errTooManySeries is the series limit of one query.
var errTooManySeries = errors.New("too many series (STRATA_QUERY_MAX_SERIES)")

// limitQueryable fails a query once its selectors, together, return more
// than max series (0: no limit). One is made per request.
type limitQueryable struct {
	storage.Queryable
	max int
	n   atomic.Int64
}

func (l *limitQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := l.Queryable.Querier(mint, maxt)
	if err != nil || l.max <= 0 {
		return q, err
	}
	return &limitQuerier{Querier: q, l: l}, nil
}

type limitQuerier struct {
	storage.Querier
	l *limitQueryable
}

func (q *limitQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	return &limitSeriesSet{SeriesSet: q.Querier.Select(ctx, sortSeries, hints, ms...), l: q.l}
}

type limitSeriesSet struct {
	storage.SeriesSet
	l   *limitQueryable
	err error
}

func (s *limitSeriesSet) Next() bool {
	if s.err != nil || !s.SeriesSet.Next() {
		return false
	}
	if n := s.l.n.Add(1); n > int64(s.l.max) {
		s.err = fmt.Errorf("%w: the query selects more than %d series", errTooManySeries, s.l.max)
		return false
	}
	return true
}

func (s *limitSeriesSet) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.SeriesSet.Err()
}
