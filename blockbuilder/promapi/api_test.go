package promapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"

	appbb "github.com/stratametrics/strata/app/blockbuilder"
	"github.com/stratametrics/strata/blockbuilder"
	"github.com/stratametrics/strata/internal/harness"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// point is one sample of the test data; h is set for histograms.
type point struct {
	t int64
	v float64
	h *histogram.Histogram
}

type series struct {
	lset   labels.Labels
	points []point
}

// testData is 30 minutes of counters, a gauge and a native histogram
// counter, every 15s from base.
func testData(base int64) []series {
	var out []series
	for i, inst := range []struct{ job, instance string }{{"api", "a"}, {"api", "b"}, {"web", "c"}} {
		s := series{lset: labels.FromStrings("__name__", "http_requests_total", "instance", inst.instance, "job", inst.job)}
		v := 0.0
		for k := 0; k < 120; k++ {
			v += float64(i+1) * float64(1+k%7) // uneven increments
			if k == 60 && i == 2 {
				v = 3 // a counter reset
			}
			s.points = append(s.points, point{t: base + int64(k)*15000, v: v})
		}
		out = append(out, s)
	}
	g := series{lset: labels.FromStrings("__name__", "temperature", "room", "lab")}
	for k := 0; k < 120; k++ {
		g.points = append(g.points, point{t: base + int64(k)*15000, v: 20 + float64(k%11)/4})
	}
	out = append(out, g)
	h := series{lset: labels.FromStrings("__name__", "request_duration_seconds", "job", "api")}
	for k, hist := range tsdbutil.GenerateTestHistograms(120) {
		h.points = append(h.points, point{t: base + int64(k)*15000, h: hist})
	}
	return append(out, h)
}

func writeRequest(data []series) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	for _, s := range data {
		ts := prompb.TimeSeries{}
		s.lset.Range(func(l labels.Label) { ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value}) })
		for _, p := range s.points {
			if p.h != nil {
				ts.Histograms = append(ts.Histograms, prompb.FromIntHistogram(p.t, p.h))
			} else {
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: p.t, Value: p.v})
			}
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	return req
}

// blockBuilder is a real block builder serving remote-write and the query
// API on one HTTP server, as `strata blockbuilder` runs it (app/blockbuilder).
type blockBuilder struct {
	url string
	// token is sent with writes, when set.
	token string
}

func startBlockBuilder(t *testing.T, limits blockbuilder.QueryLimits) *blockBuilder {
	t.Helper()
	return startBlockBuilderWith(t, limits, nil)
}

// startBlockBuilderWith is startBlockBuilder with tweak applied to the
// block builder's configuration.
func startBlockBuilderWith(t *testing.T, limits blockbuilder.QueryLimits, tweak func(*blockbuilder.Config)) *blockBuilder {
	t.Helper()
	cfg := blockbuilder.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.ReplicaName = "bb-0"
	cfg.Bucket.Dir = t.TempDir()
	if tweak != nil {
		tweak(&cfg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	srv, err := appbb.Start(cfg, limits, l, grpcL, appbb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop the block builder: %v", err)
		}
	})
	return &blockBuilder{url: "http://" + srv.Addr}
}

// query is the URL of path on the block builder with the query
// parameters given as name, value pairs.
func (b *blockBuilder) query(path string, params ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		v.Add(params[i], params[i+1])
	}
	return b.url + path + "?" + v.Encode()
}

func (b *blockBuilder) write(t *testing.T, tenant string, req *prompb.WriteRequest) {
	t.Helper()
	h := http.Header{"THANOS-TENANT": {tenant}}
	if b.token != "" {
		h.Set("Authorization", "Bearer "+b.token)
	}
	if resp, body := harness.PostWrite(t, nil, b.url+"/api/v1/receive", h, req); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %d %s", resp.StatusCode, body)
	}
}

type tenantTransport struct{ tenant string }

func (tt tenantTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("THANOS-TENANT", tt.tenant)
	return http.DefaultTransport.RoundTrip(r)
}

// client is Prometheus' own Go client for its HTTP API: an independent
// reader of the answers' format.
func (b *blockBuilder) client(t *testing.T, tenant string) promv1.API {
	t.Helper()
	c, err := promapi.NewClient(promapi.Config{Address: b.url, RoundTripper: tenantTransport{tenant}})
	if err != nil {
		t.Fatal(err)
	}
	return promv1.NewAPI(c)
}

// reference loads the same samples into a fresh TSDB and evaluates with
// Prometheus' engine directly, with the options the API uses.
type reference struct {
	db     *tsdb.DB
	engine *promql.Engine
}

func newReference(t *testing.T, data []series) *reference {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), quietLogger(), nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	app := db.Appender(context.Background())
	for _, s := range data {
		for _, p := range s.points {
			if p.h != nil {
				_, err = app.AppendHistogram(0, s.lset, p.t, p.h, nil)
			} else {
				_, err = app.Append(0, s.lset, p.t, p.v)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	engine := promql.NewEngine(promql.EngineOpts{
		Logger: quietLogger(), MaxSamples: 50000000, Timeout: time.Minute,
		EnableAtModifier: true, EnableNegativeOffset: true,
		NoStepSubqueryIntervalFn: func(int64) int64 { return 60000 },
	})
	return &reference{db: db, engine: engine}
}

func (r *reference) instant(t *testing.T, q string, ts time.Time) model.Value {
	t.Helper()
	qry, err := r.engine.NewInstantQuery(context.Background(), r.db, nil, q, ts)
	if err != nil {
		t.Fatal(err)
	}
	defer qry.Close()
	res := qry.Exec(context.Background())
	if res.Err != nil {
		t.Fatalf("reference %s: %v", q, res.Err)
	}
	return toModel(t, res.Value)
}

func (r *reference) rangeQuery(t *testing.T, q string, start, end time.Time, step time.Duration) model.Value {
	t.Helper()
	qry, err := r.engine.NewRangeQuery(context.Background(), r.db, nil, q, start, end, step)
	if err != nil {
		t.Fatal(err)
	}
	defer qry.Close()
	res := qry.Exec(context.Background())
	if res.Err != nil {
		t.Fatalf("reference %s: %v", q, res.Err)
	}
	return toModel(t, res.Value)
}

func metric(ls labels.Labels) model.Metric {
	m := model.Metric{}
	ls.Range(func(l labels.Label) { m[model.LabelName(l.Name)] = model.LabelValue(l.Value) })
	return m
}

// toModel turns the engine's result into the client's types, sorted by
// series, so that the two compare with ==.
func toModel(t *testing.T, v any) model.Value {
	t.Helper()
	switch v := v.(type) {
	case promql.Vector:
		out := model.Vector{}
		for _, s := range v {
			if s.H != nil {
				t.Fatal("compare float results only")
			}
			out = append(out, &model.Sample{Metric: metric(s.Metric), Value: model.SampleValue(s.F), Timestamp: model.Time(s.T)})
		}
		return sortModel(out)
	case promql.Matrix:
		out := model.Matrix{}
		for _, s := range v {
			ss := &model.SampleStream{Metric: metric(s.Metric)}
			for _, p := range s.Floats {
				ss.Values = append(ss.Values, model.SamplePair{Timestamp: model.Time(p.T), Value: model.SampleValue(p.F)})
			}
			out = append(out, ss)
		}
		return sortModel(out)
	case promql.Scalar:
		return &model.Scalar{Value: model.SampleValue(v.V), Timestamp: model.Time(v.T)}
	case promql.String:
		return &model.String{Value: v.V, Timestamp: model.Time(v.T)}
	}
	t.Fatalf("unexpected result %T", v)
	return nil
}

func sortModel(v model.Value) model.Value {
	switch v := v.(type) {
	case model.Vector:
		sort.Slice(v, func(i, j int) bool { return v[i].Metric.String() < v[j].Metric.String() })
	case model.Matrix:
		sort.Slice(v, func(i, j int) bool { return v[i].Metric.String() < v[j].Metric.String() })
	}
	return v
}

func TestQueryAPIMatchesPromQL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a block builder")
	}
	base := (time.Now().Add(-40*time.Minute).UnixMilli() / 60000) * 60000
	data := testData(base)
	bb := startBlockBuilder(t, blockbuilder.DefaultQueryLimits())
	bb.write(t, "team-a", writeRequest(data))
	// Another tenant's data must not show.
	other := testData(base)[:1]
	other[0].points = other[0].points[:10]
	other[0].lset = labels.FromStrings("__name__", "http_requests_total", "instance", "z", "job", "other")
	bb.write(t, "team-b", writeRequest(other))
	ref := newReference(t, data)
	api := bb.client(t, "team-a")
	ctx := context.Background()

	at := time.UnixMilli(base + 25*60000)
	start, end, step := time.UnixMilli(base), time.UnixMilli(base+30*60000), 30*time.Second
	queries := []string{
		`http_requests_total`,
		`rate(http_requests_total[5m])`,
		`sum by (job) (rate(http_requests_total[5m]))`,
		`increase(http_requests_total{job="api"}[10m])`,
		`max_over_time(temperature[3m]) - min_over_time(temperature[3m])`,
		`histogram_quantile(0.9, rate(request_duration_seconds[5m]))`,
		`histogram_count(rate(request_duration_seconds[5m]))`,
		`sum(rate(http_requests_total[1m])) / count(http_requests_total)`,
		`topk(2, http_requests_total offset 5m)`,
		`avg_over_time(rate(http_requests_total[2m])[10m:])`,
		`scalar(sum(http_requests_total))`,
		`time()`,
	}
	for _, q := range queries {
		t.Run("instant "+q, func(t *testing.T) {
			got, _, _, err := api.Query(ctx, q, at)
			if err != nil {
				t.Fatal(err)
			}
			want := ref.instant(t, q, at)
			if got.Type() == model.ValVector && len(got.(model.Vector)) == 0 {
				t.Fatalf("empty answer: a test that cannot fail")
			}
			if got, want := sortModel(got).String(), want.String(); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
		t.Run("range "+q, func(t *testing.T) {
			got, _, _, err := api.QueryRange(ctx, q, promv1.Range{Start: start, End: end, Step: step})
			if err != nil {
				t.Fatal(err)
			}
			want := ref.rangeQuery(t, q, start, end, step)
			if got, want := sortModel(got).String(), want.String(); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}

	t.Run("string", func(t *testing.T) {
		// Prometheus' Go client does not read string results: the
		// format is checked on the raw answer.
		u := bb.url + "/api/v1/query?" + url.Values{"query": {`"hello"`}, "time": {"1700000000.5"}}.Encode()
		status, a := get(t, "GET", u, "team-a")
		if status != 200 || string(a.Data) != `{"resultType":"string","result":[1700000000.5,"hello"]}` {
			t.Errorf("%d %s", status, a.Data)
		}
	})

	t.Run("series", func(t *testing.T) {
		got, _, _, err := api.Series(ctx, []string{`http_requests_total{job="api"}`, `temperature`}, start, end)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, ls := range got {
			names = append(names, ls.String())
		}
		want := []string{
			`{__name__="http_requests_total", instance="a", job="api"}`,
			`{__name__="http_requests_total", instance="b", job="api"}`,
			`{__name__="temperature", room="lab"}`,
		}
		if !slices.Equal(names, want) {
			t.Errorf("series %v, want %v", names, want)
		}
	})

	t.Run("labels", func(t *testing.T) {
		names, _, _, err := api.LabelNames(ctx, nil, start, end)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fmt.Sprint([]model.LabelName(names)), "[__name__ instance job room]"; got != want {
			t.Errorf("label names %s, want %s", got, want)
		}
		names, _, _, err = api.LabelNames(ctx, []string{"temperature"}, time.Time{}, time.Time{})
		if err != nil || fmt.Sprint([]model.LabelName(names)) != "[__name__ room]" {
			t.Errorf("label names of temperature %v, %v", names, err)
		}
		values, _, _, err := api.LabelValues(ctx, "job", nil, start, end)
		if err != nil || fmt.Sprint([]model.LabelValue(values)) != "[api web]" {
			t.Errorf("job values %v, %v", values, err)
		}
		values, _, _, err = api.LabelValues(ctx, "instance", []string{`{job="web"}`}, start, end)
		if err != nil || fmt.Sprint([]model.LabelValue(values)) != "[c]" {
			t.Errorf("instance values of web %v, %v", values, err)
		}
	})

	t.Run("tenants are apart", func(t *testing.T) {
		got, _, _, err := bb.client(t, "team-b").Query(ctx, `http_requests_total`, time.UnixMilli(base+60000))
		if err != nil {
			t.Fatal(err)
		}
		if v := got.(model.Vector); len(v) != 1 || v[0].Metric["job"] != "other" {
			t.Errorf("team-b sees %v", got)
		}
		got, _, _, err = bb.client(t, "nobody").Query(ctx, `http_requests_total`, at)
		if err != nil || got.Type() != model.ValVector || len(got.(model.Vector)) != 0 {
			t.Errorf("a tenant with no data: %v, %v", got, err)
		}
	})
}

// apiAnswer is Prometheus' JSON envelope as a client reads it.
type apiAnswer struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

func get(t *testing.T, method, rawURL, tenant string) (int, apiAnswer) {
	t.Helper()
	return getWithToken(t, method, rawURL, tenant, "")
}

// getWithToken is get with a bearer token, when token is set.
func getWithToken(t *testing.T, method, rawURL, tenant, token string) (int, apiAnswer) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tenant != "" {
		req.Header.Set("THANOS-TENANT", tenant)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a apiAnswer
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("%s %s: not JSON: %s", method, rawURL, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	return resp.StatusCode, a
}

func TestQueryAPIErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a block builder")
	}
	base := (time.Now().Add(-40*time.Minute).UnixMilli() / 60000) * 60000
	bb := startBlockBuilder(t, blockbuilder.QueryLimits{MaxSeries: 3, MaxSamples: 200, Timeout: time.Minute})
	bb.write(t, "team-a", writeRequest(testData(base)))
	ts := fmt.Sprint((base + 20*60000) / 1000)
	q := bb.query
	cases := []struct {
		name, method, url, tenant string
		status                    int
		errType, contains         string
	}{
		{"no query", "GET", q("/api/v1/query"), "team-a", 400, "bad_data", `invalid parameter "query"`},
		{"syntax", "GET", q("/api/v1/query", "query", "sum(", "time", ts), "team-a", 400, "bad_data", "unclosed"},
		{"bad time", "GET", q("/api/v1/query", "query", "up", "time", "yesterday"), "team-a", 400, "bad_data", `invalid parameter "time"`},
		{"bad timeout", "GET", q("/api/v1/query", "query", "up", "timeout", "soon"), "team-a", 400, "bad_data", `"timeout"`},
		{"zero step", "GET", q("/api/v1/query_range", "query", "up", "start", "0", "end", "60", "step", "0"), "team-a", 400, "bad_data", "zero or negative"},
		{"end before start", "GET", q("/api/v1/query_range", "query", "up", "start", "60", "end", "0", "step", "15"), "team-a", 400, "bad_data", "before start"},
		{"too many points", "GET", q("/api/v1/query_range", "query", "up", "start", "0", "end", "100000", "step", "1"), "team-a", 400, "bad_data", "11,000 points"},
		{"missing step", "GET", q("/api/v1/query_range", "query", "up", "start", "0", "end", "60"), "team-a", 400, "bad_data", "required"},
		{"bad tenant", "GET", q("/api/v1/query", "query", "up"), "../etc", 400, "bad_data", "tenant"},
		{"series without match", "GET", q("/api/v1/series"), "team-a", 400, "bad_data", "match[]"},
		{"empty matcher", "GET", q("/api/v1/series", "match[]", `{job=~".*"}`), "team-a", 400, "bad_data", "non-empty"},
		{"bad label name", "GET", bb.url + "/api/v1/label/%ff/values", "team-a", 400, "bad_data", "invalid label name"},
		{"bad limit", "GET", q("/api/v1/labels", "limit", "-1"), "team-a", 400, "bad_data", "limit"},
		{"method", "DELETE", q("/api/v1/query", "query", "up"), "team-a", 405, "bad_data", "not allowed"},
		{"too many series", "GET", q("/api/v1/query", "query", "http_requests_total or temperature", "time", ts), "team-a", 422, "execution", "STRATA_QUERY_MAX_SERIES"},
		{"too many series listed", "GET", q("/api/v1/series", "match[]", `{__name__=~".+"}`), "team-a", 422, "execution", "STRATA_QUERY_MAX_SERIES"},
		{"too many samples", "GET", q("/api/v1/query", "query", "http_requests_total[20m]", "time", ts), "team-a", 422, "execution", "too many samples"},
		{"timeout", "GET", q("/api/v1/query", "query", "http_requests_total", "time", ts, "timeout", "0.000000001"), "team-a", 503, "timeout", "timed out"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, a := get(t, tc.method, tc.url, tc.tenant)
			if status != tc.status || a.Status != "error" || a.ErrorType != tc.errType || !strings.Contains(a.Error, tc.contains) {
				t.Errorf("%d %+v, want %d %s containing %q", status, a, tc.status, tc.errType, tc.contains)
			}
		})
	}

	t.Run("limit truncates with a warning", func(t *testing.T) {
		status, a := get(t, "GET", q("/api/v1/labels", "limit", "2"), "team-a")
		if status != 200 || string(a.Data) != `["__name__","instance"]` || len(a.Warnings) != 1 {
			t.Errorf("%d %s %v", status, a.Data, a.Warnings)
		}
	})
	t.Run("post form", func(t *testing.T) {
		status, a := postForm(t, bb.url+"/api/v1/query", url.Values{"query": {"sum(temperature)"}, "time": {ts}}, "team-a")
		if status != 200 || !strings.Contains(string(a.Data), `"resultType":"vector"`) {
			t.Errorf("%d %+v", status, a)
		}
	})
	t.Run("empty result is a list", func(t *testing.T) {
		status, a := get(t, "GET", q("/api/v1/query", "query", "nothing_here", "time", ts), "team-a")
		if status != 200 || string(a.Data) != `{"resultType":"vector","result":[]}` {
			t.Errorf("%d %s", status, a.Data)
		}
	})
}

// TestQueryAPITokens: with STRATA_BEARER_TOKEN_FILE, reading a tenant
// takes a token allowed for it, as writing does, on every endpoint; a
// token for one tenant reads no other, the default tenant included.
func TestQueryAPITokens(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a block builder")
	}
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("router-token\nreader-a team-a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bb := startBlockBuilderWith(t, blockbuilder.DefaultQueryLimits(), func(cfg *blockbuilder.Config) { cfg.BearerTokenFile = tokens })
	bb.token = "router-token"
	base := (time.Now().Add(-40*time.Minute).UnixMilli() / 60000) * 60000
	// An exemplar on the gauge, for query_exemplars to find.
	exemplar := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:    []prompb.Label{{Name: "__name__", Value: "temperature"}, {Name: "room", Value: "lab"}},
		Samples:   []prompb.Sample{{Timestamp: base + 31*60000, Value: 21}},
		Exemplars: []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "t1"}}, Value: 21, Timestamp: base + 31*60000}},
	}}}
	for _, tenant := range []string{"team-a", "team-b", "default-tenant"} {
		bb.write(t, tenant, writeRequest(testData(base)))
		bb.write(t, tenant, exemplar)
	}
	ts := fmt.Sprint((base + 20*60000) / 1000)
	q := bb.query
	endpoints := map[string]string{
		"query":        q("/api/v1/query", "query", "temperature", "time", ts),
		"query_range":  q("/api/v1/query_range", "query", "temperature", "start", ts, "end", ts, "step", "15"),
		"series":       q("/api/v1/series", "match[]", "temperature"),
		"labels":       q("/api/v1/labels"),
		"label values": q("/api/v1/label/room/values"),
		"exemplars":    q("/api/v1/query_exemplars", "query", "temperature"),
	}
	for name, u := range endpoints {
		for _, c := range []struct {
			token, tenant string
			status        int
			errType, says string
		}{
			{"", "team-a", 401, "unauthorized", "a bearer token is required"},
			{"guess", "team-a", 401, "unauthorized", "unknown bearer token"},
			{"reader-a", "team-b", 403, "forbidden", `this token is not for tenant "team-b"`},
			{"reader-a", "", 403, "forbidden", `this token is not for tenant "default-tenant"`},
			{"reader-a", "team-a", 200, "", ""},
			{"router-token", "team-b", 200, "", ""},
		} {
			status, a := getWithToken(t, http.MethodGet, u, c.tenant, c.token)
			if status != c.status || a.ErrorType != c.errType || !strings.Contains(a.Error, c.says) {
				t.Errorf("%s, token %q, tenant %q: %d %+v, want %d %s saying %q", name, c.token, c.tenant, status, a, c.status, c.errType, c.says)
			}
			// Answers that let the reader in hold the tenant's data.
			if c.status == 200 && (a.Status != "success" || !strings.Contains(string(a.Data), "lab") && !strings.Contains(string(a.Data), "room")) {
				t.Errorf("%s, token %q, tenant %q: %s, want the tenant's data", name, c.token, c.tenant, a.Data)
			}
		}
	}
}

// postForm posts values as a form for tenant and returns the answer.
func postForm(t *testing.T, u string, values url.Values, tenant string) (int, apiAnswer) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(values.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("THANOS-TENANT", tenant)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a apiAnswer
	_ = json.NewDecoder(resp.Body).Decode(&a)
	return resp.StatusCode, a
}
