package promapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/stratametrics/strata/blockbuilder"
	"github.com/stratametrics/strata/internal/harness"
)

// sentExemplar is one exemplar as a test wrote it.
type sentExemplar struct {
	labels labels.Labels
	value  float64
	ts     int64
}

// exemplarSeries is a series a test writes: a sample a minute, each with
// an exemplar (none if exemplars is empty).
type exemplarSeries struct {
	lset      labels.Labels
	exemplars []sentExemplar
}

// exemplarData is, per series of a tenant, a sample every minute from
// base and an exemplar just after each, with values of every format a
// float takes in JSON (integers, fractions, the tiny and the huge written
// with exponents, negatives), trace IDs that tell tenant, series and
// minute apart, some with a second label and one with none. The last
// series has samples only.
func exemplarData(tenant string, base int64, minutes int) []exemplarSeries {
	out := []exemplarSeries{
		{lset: labels.FromStrings("__name__", "rpc_seconds_bucket", "job", "api", "le", "0.1")},
		{lset: labels.FromStrings("__name__", "rpc_seconds_bucket", "job", "web", "le", "0.1")},
		{lset: labels.FromStrings("__name__", "rpc_total", "job", "api")},
	}
	values := []float64{0.05, 3, -2.5, 1e-7, 1e22, 123456.789, 0, 1e-5, 1e20}
	for si := range out {
		for m := 0; m < minutes; m++ {
			e := sentExemplar{
				labels: labels.FromStrings("trace_id", fmt.Sprintf("%s-%d-%02d", tenant, si, m)),
				value:  values[(m+si)%len(values)],
				ts:     exemplarTs(base, m),
			}
			switch {
			case m == 7:
				e.labels = labels.EmptyLabels()
			case m%5 == 4:
				e.labels = labels.FromStrings("span_id", fmt.Sprint(m), "trace_id", fmt.Sprintf("%s-%d-%02d", tenant, si, m))
			}
			out[si].exemplars = append(out[si].exemplars, e)
		}
	}
	return append(out, exemplarSeries{lset: labels.FromStrings("__name__", "plain_gauge")})
}

// exemplarTs is the time of minute m's exemplar: milliseconds after the
// sample, of every width Prometheus' JSON writes (.250, .005, .040, none).
func exemplarTs(base int64, m int) int64 {
	return base + int64(m)*60000 + []int64{250, 5, 40, 0}[m%4]
}

func exemplarRequest(data []exemplarSeries, base int64, minutes int) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	for _, s := range data {
		ts := prompb.TimeSeries{}
		s.lset.Range(func(l labels.Label) { ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value}) })
		for m := 0; m < minutes; m++ {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: base + int64(m)*60000, Value: float64(m)})
		}
		for _, e := range s.exemplars {
			pe := prompb.Exemplar{Value: e.value, Timestamp: e.ts}
			e.labels.Range(func(l labels.Label) { pe.Labels = append(pe.Labels, prompb.Label{Name: l.Name, Value: l.Value}) })
			ts.Exemplars = append(ts.Exemplars, pe)
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	return req
}

// wantExemplars is what Prometheus' client must read: the series keep
// selects that have exemplars in [start, end], sorted by labels.
func wantExemplars(data []exemplarSeries, start, end int64, keep func(labels.Labels) bool) []promv1.ExemplarQueryResult {
	out := []promv1.ExemplarQueryResult{}
	for _, s := range data {
		if !keep(s.lset) {
			continue
		}
		r := promv1.ExemplarQueryResult{SeriesLabels: model.LabelSet(metric(s.lset))}
		for _, e := range s.exemplars {
			if e.ts >= start && e.ts <= end {
				r.Exemplars = append(r.Exemplars, promv1.Exemplar{Labels: model.LabelSet(metric(e.labels)), Value: model.SampleValue(e.value), Timestamp: model.Time(e.ts)})
			}
		}
		if len(r.Exemplars) > 0 {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b promv1.ExemplarQueryResult) int {
		return strings.Compare(a.SeriesLabels.String(), b.SeriesLabels.String())
	})
	return out
}

// TestQueryExemplars writes exemplars to a block builder and reads them
// back with Prometheus' own client: selectors, time ranges, tenants.
func TestQueryExemplars(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a block builder")
	}
	const minutes = 20
	base := (time.Now().Add(-30*time.Minute).UnixMilli() / 60000) * 60000
	bb := startBlockBuilder(t, blockbuilder.DefaultQueryLimits())
	data := map[string][]exemplarSeries{}
	for _, tenant := range []string{"team-a", "team-b"} {
		data[tenant] = exemplarData(tenant, base, minutes)
		bb.write(t, tenant, exemplarRequest(data[tenant], base, minutes))
	}
	all := func(labels.Labels) bool { return true }
	named := func(n string) func(labels.Labels) bool {
		return func(ls labels.Labels) bool { return ls.Get("__name__") == n }
	}
	ms := func(ms int64) time.Time { return time.UnixMilli(ms) }
	cases := []struct {
		name, query string
		start, end  int64
		keep        func(labels.Labels) bool
	}{
		{"one metric", "rpc_seconds_bucket", base, base + minutes*60000, named("rpc_seconds_bucket")},
		{"every series", `{__name__=~".+"}`, base, base + minutes*60000, all},
		{"a matcher excludes a job, in a time range", `rpc_seconds_bucket{job!="web"}`, exemplarTs(base, 3) + 1, exemplarTs(base, 9),
			func(ls labels.Labels) bool {
				return ls.Get("__name__") == "rpc_seconds_bucket" && ls.Get("job") != "web"
			}},
		{"every selector of an expression", `histogram_quantile(0.9, rate(rpc_seconds_bucket{job="web"}[5m])) / on() group_left sum(rpc_total)`, base, base + minutes*60000,
			func(ls labels.Labels) bool { return ls.Get("job") == "web" || ls.Get("__name__") == "rpc_total" }},
		{"a range before the first", "rpc_total", base - 60000, base + 249, func(labels.Labels) bool { return false }},
		{"samples only", "plain_gauge", base, base + minutes*60000, func(labels.Labels) bool { return false }},
	}
	for _, tenant := range []string{"team-a", "team-b"} {
		api := bb.client(t, tenant)
		for _, tc := range cases {
			t.Run(tenant+" "+tc.name, func(t *testing.T) {
				got, err := api.QueryExemplars(context.Background(), tc.query, ms(tc.start), ms(tc.end))
				if err != nil {
					t.Fatal(err)
				}
				want := wantExemplars(data[tenant], tc.start, tc.end, tc.keep)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("got\n %v\nwant\n %v", got, want)
				}
			})
		}
	}

	q := func(params ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(params); i += 2 {
			v.Add(params[i], params[i+1])
		}
		return bb.url + "/api/v1/query_exemplars?" + v.Encode()
	}
	// The format, byte for byte: Prometheus writes values as strings and
	// timestamps as seconds with their milliseconds.
	t.Run("format", func(t *testing.T) {
		at := exemplarTs(base, 4)
		status, a := get(t, "GET", q("query", `rpc_total`, "start", fmt.Sprintf("%.3f", float64(at)/1000), "end", fmt.Sprintf("%.3f", float64(at+4*60000)/1000)), "team-a")
		want := fmt.Sprintf(`[{"seriesLabels":{"__name__":"rpc_total","job":"api"},"exemplars":[`+
			`{"labels":{"span_id":"4","trace_id":"team-a-2-04"},"value":"0","timestamp":%s},`+
			`{"labels":{"trace_id":"team-a-2-05"},"value":"0.00001","timestamp":%s},`+
			`{"labels":{"trace_id":"team-a-2-06"},"value":"100000000000000000000","timestamp":%s},`+
			`{"labels":{},"value":"0.05","timestamp":%s},`+
			`{"labels":{"trace_id":"team-a-2-08"},"value":"3","timestamp":%s}]}]`,
			secs(at), secs(exemplarTs(base, 5)), secs(exemplarTs(base, 6)), secs(exemplarTs(base, 7)), secs(exemplarTs(base, 8)))
		if status != 200 || a.Status != "success" || string(a.Data) != want {
			t.Errorf("%d %s %s\nwant %s", status, a.Status, a.Data, want)
		}
	})
	t.Run("default range is all time", func(t *testing.T) {
		got, err := bb.client(t, "team-b").QueryExemplars(context.Background(), "rpc_total", time.Time{}, time.Time{})
		if want := wantExemplars(data["team-b"], math.MinInt64, math.MaxInt64, named("rpc_total")); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%v %v, want %v", got, err, want)
		}
	})
	t.Run("post form", func(t *testing.T) {
		status, a := postForm(t, bb.url+"/api/v1/query_exemplars", url.Values{"query": {"rpc_total"}, "start": {fmt.Sprint(base / 1000)}}, "team-a")
		if status != 200 || !strings.Contains(string(a.Data), `"trace_id":"team-a-2-19"`) {
			t.Errorf("%d %+v", status, a)
		}
	})
	t.Run("no selector, no content", func(t *testing.T) {
		// Prometheus answers 204 without a body.
		a := rawAnswer(t, bb.url, url.Values{"query": {"1 + 1"}})
		if a.status != http.StatusNoContent || a.body != "" {
			t.Errorf("%d %q", a.status, a.body)
		}
	})
	t.Run("a tenant with no data here", func(t *testing.T) {
		status, a := get(t, "GET", q("query", "rpc_total"), "team-z")
		if status != 200 || string(a.Data) != "[]" {
			t.Errorf("%d %s", status, a.Data)
		}
	})
	errCases := []struct {
		name, url         string
		status            int
		errType, contains string
	}{
		{"no query", q(), 400, "bad_data", "no expression"},
		{"syntax", q("query", "sum("), 400, "bad_data", "unclosed"},
		{"bad start", q("query", "up", "start", "yesterday"), 400, "bad_data", `invalid parameter "start"`},
		{"bad end", q("query", "up", "end", "tomorrow"), 400, "bad_data", `invalid parameter "end"`},
		{"end before start", q("query", "up", "start", "60", "end", "0"), 400, "bad_data", "end timestamp must not be before start timestamp"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			status, a := get(t, "GET", tc.url, "team-a")
			if status != tc.status || a.Status != "error" || a.ErrorType != tc.errType || !strings.Contains(a.Error, tc.contains) {
				t.Errorf("%d %+v, want %d %s containing %q", status, a, tc.status, tc.errType, tc.contains)
			}
		})
	}
}

// secs formats milliseconds as Prometheus' JSON does.
func secs(ms int64) string {
	s := fmt.Sprint(ms / 1000)
	if f := ms % 1000; f != 0 {
		s += fmt.Sprintf(".%03d", f)
	}
	return s
}

// TestQueryExemplarsLimits: STRATA_QUERY_MAX_SERIES bounds the series
// of an answer, STRATA_QUERY_MAX_SAMPLES its exemplars.
func TestQueryExemplarsLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a block builder")
	}
	const minutes = 20
	base := (time.Now().Add(-30*time.Minute).UnixMilli() / 60000) * 60000
	bb := startBlockBuilder(t, blockbuilder.QueryLimits{MaxSeries: 2, MaxSamples: 30, Timeout: time.Minute})
	bb.write(t, "team-a", exemplarRequest(exemplarData("team-a", base, minutes), base, minutes))
	q := func(query string) string {
		return bb.url + "/api/v1/query_exemplars?" + url.Values{"query": {query}}.Encode()
	}
	for _, c := range []struct {
		query             string
		status            int
		errType, contains string
	}{
		{`{__name__=~"rpc_.+"}`, 422, "execution", "STRATA_QUERY_MAX_SERIES"},
		{`rpc_seconds_bucket`, 422, "execution", "STRATA_QUERY_MAX_SAMPLES"},
		{`rpc_seconds_bucket{job="api"}`, 200, "", ""},
	} {
		status, a := get(t, "GET", q(c.query), "team-a")
		if status != c.status || a.ErrorType != c.errType || !strings.Contains(a.Error, c.contains) {
			t.Errorf("%s: %d %+v, want %d %s containing %q", c.query, status, a, c.status, c.errType, c.contains)
		}
	}
}

// TestQueryExemplarsMatchesPrometheus sends the same remote-write request
// to a block builder and to a real Prometheus with exemplar storage, and
// requires the same answers from both, byte for byte: the data of every
// query, and the status and error type of bad ones.
func TestQueryExemplarsMatchesPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Prometheus")
	}
	promBin := harness.Tool(t, "prometheus")
	promAddr := harness.FreeAddr(t)
	dir := t.TempDir()
	prom := harness.StartProcess(t, promBin, []string{
		"--config.file=/dev/null",
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + promAddr,
		"--web.enable-remote-write-receiver",
		"--enable-feature=exemplar-storage",
	}, nil)
	prom.WaitHTTP("http://"+promAddr+"/-/ready", time.Minute)
	promURL := "http://" + promAddr

	const minutes = 20
	base := (time.Now().Add(-30*time.Minute).UnixMilli() / 60000) * 60000
	req := exemplarRequest(exemplarData("team-a", base, minutes), base, minutes)
	bb := startBlockBuilder(t, blockbuilder.DefaultQueryLimits())
	bb.write(t, "team-a", req)
	if resp, body := harness.PostWrite(t, nil, promURL+"/api/v1/write", nil, req); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write to Prometheus: %d %s", resp.StatusCode, body)
	}

	s := func(ms int64) string { return secs(ms) }
	cases := []struct {
		params url.Values
		empty  bool // Prometheus finds nothing (or fails)
	}{
		{url.Values{"query": {"rpc_seconds_bucket"}}, false},
		{url.Values{"query": {`{__name__=~".+"}`}, "start": {s(base)}, "end": {s(base + minutes*60000)}}, false},
		{url.Values{"query": {`rpc_seconds_bucket{job!="web"}`}, "start": {s(exemplarTs(base, 3) + 1)}, "end": {s(exemplarTs(base, 9))}}, false},
		{url.Values{"query": {`rate(rpc_total[5m]) + on() group_left sum(rpc_seconds_bucket{job=~"w.*"})`}, "start": {time.UnixMilli(base + 60000).UTC().Format(time.RFC3339Nano)}}, false},
		{url.Values{"query": {"rpc_total"}, "end": {s(base + 249)}}, true},
		{url.Values{"query": {"plain_gauge"}}, true},
		{url.Values{"query": {"nothing_here"}}, true},
		{url.Values{"query": {"1 + 1"}}, true},
		// Errors.
		{url.Values{}, true},
		{url.Values{"query": {"sum("}}, true},
		{url.Values{"query": {"up"}, "start": {"yesterday"}}, true},
		{url.Values{"query": {"up"}, "end": {"tomorrow"}}, true},
		{url.Values{"query": {"up"}, "start": {"60"}, "end": {"0"}}, true},
	}
	for _, c := range cases {
		t.Run(c.params.Encode(), func(t *testing.T) {
			want := rawAnswer(t, promURL, c.params)
			got := rawAnswer(t, bb.url, c.params)
			if got.status != want.status || got.Status != want.Status || got.ErrorType != want.ErrorType || !bytes.Equal(got.Data, want.Data) ||
				(got.body == "") != (want.body == "") {
				t.Errorf("block builder:\n %d %q\nPrometheus:\n %d %q", got.status, got.body, want.status, want.body)
			}
			if found := want.status == 200 && len(want.Data) > 2; found == c.empty {
				t.Errorf("Prometheus answered %d %s: the case is not what it means to test", want.status, want.Data)
			}
		})
	}
}

// rawAnswerT is an answer as it came: its status, its body, and the
// body read as Prometheus' envelope when it has one.
type rawAnswerT struct {
	status int
	body   string
	apiAnswer
}

func rawAnswer(t *testing.T, base string, v url.Values) rawAnswerT {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/query_exemplars?"+v.Encode(), nil)
	req.Header.Set("THANOS-TENANT", "team-a")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var a apiAnswer
	if len(body) > 0 {
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatalf("%s: not JSON: %s", base, body)
		}
	}
	return rawAnswerT{status: resp.StatusCode, body: string(body), apiAnswer: a}
}
