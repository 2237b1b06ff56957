package storeapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stratametrics/strata/blockbuilder"
	"github.com/stratametrics/strata/blockbuilder/storeapi"
)

// sentExemplar is one exemplar as the test wrote it.
type sentExemplar struct {
	labels labels.Labels
	value  float64
	ts     int64
}

// exemplarData is what the test writes: tenant -> series labels (as
// stored, String()) -> exemplars in time order.
type exemplarData map[string]map[string][]sentExemplar

// makeExemplarData writes, per tenant, histogram bucket series of two
// jobs and a counter with exemplars every minute, and a series with
// samples only. Values and trace IDs differ by tenant, series and time.
func makeExemplarData(base int64, minutes int) (exemplarData, map[string]*prompb.WriteRequest) {
	data := exemplarData{}
	reqs := map[string]*prompb.WriteRequest{}
	withExemplars := []labels.Labels{
		labels.FromStrings("__name__", "request_seconds_bucket", "job", "api", "le", "0.5"),
		labels.FromStrings("__name__", "request_seconds_bucket", "job", "web", "le", "0.5"),
		labels.FromStrings("__name__", "requests_total", "job", "api"),
	}
	for ti, tenant := range []string{"team-a", "team-b"} {
		data[tenant] = map[string][]sentExemplar{}
		req := &prompb.WriteRequest{}
		for si, ls := range withExemplars {
			ts := prompb.TimeSeries{}
			ls.Range(func(l labels.Label) { ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value}) })
			var sent []sentExemplar
			for m := 0; m < minutes; m++ {
				t := base + int64(m)*60000
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: t, Value: float64(m)})
				// Milliseconds off the minute, to check they survive.
				e := sentExemplar{
					labels: labels.FromStrings("trace_id", fmt.Sprintf("%s-%d-%d", tenant, si, m)),
					value:  float64(ti*100+si*10) + float64(m)/8,
					ts:     t + 123,
				}
				if m%5 == 4 {
					// Some with two labels, and one with none.
					e.labels = labels.FromStrings("span_id", fmt.Sprint(m), "trace_id", fmt.Sprintf("%s-%d-%d", tenant, si, m))
				}
				if m == 7 {
					e.labels = labels.EmptyLabels()
				}
				sent = append(sent, e)
				pe := prompb.Exemplar{Value: e.value, Timestamp: e.ts}
				e.labels.Range(func(l labels.Label) { pe.Labels = append(pe.Labels, prompb.Label{Name: l.Name, Value: l.Value}) })
				ts.Exemplars = append(ts.Exemplars, pe)
			}
			data[tenant][ls.String()] = sent
			req.Timeseries = append(req.Timeseries, ts)
		}
		plain := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "no_exemplars"}}}
		for m := 0; m < minutes; m++ {
			plain.Samples = append(plain.Samples, prompb.Sample{Timestamp: base + int64(m)*60000, Value: 1})
		}
		req.Timeseries = append(req.Timeseries, plain)
		reqs[tenant] = req
	}
	return data, reqs
}

type exemplarResult struct {
	lset      labels.Labels
	exemplars []sentExemplar
}

func (r exemplarResult) String() string {
	var b strings.Builder
	b.WriteString(r.lset.String())
	for _, e := range r.exemplars {
		fmt.Fprintf(&b, "\n   %s %v @%d", e.labels, e.value, e.ts)
	}
	return b.String()
}

// exemplars calls thanos.Exemplars/Exemplars with reference messages.
func (c *client) exemplars(query string, start, end int64) ([]exemplarResult, []string, error) {
	c.t.Helper()
	req := thanosMsg(c.t, "thanos.ExemplarsRequest")
	set(req, "query", query)
	set(req, "start", start)
	set(req, "end", end)
	stream := c.call("/thanos.Exemplars/Exemplars", req)
	var (
		out      []exemplarResult
		warnings []string
	)
	for {
		resp := thanosMsg(c.t, "thanos.ExemplarsResponse")
		err := stream.RecvMsg(resp)
		if errors.Is(err, io.EOF) {
			return out, warnings, nil
		}
		if err != nil {
			return out, warnings, err
		}
		switch {
		case resp.Has(fd(resp, "data")):
			d := get(resp, "data").Message()
			r := exemplarResult{lset: refLabels(list(get(d, "seriesLabels").Message(), "labels"))}
			for _, e := range list(d, "exemplars") {
				r.exemplars = append(r.exemplars, sentExemplar{
					labels: refLabels(list(get(e, "labels").Message(), "labels")),
					value:  get(e, "value").Float(),
					ts:     get(e, "ts").Int(),
				})
			}
			out = append(out, r)
		case resp.Has(fd(resp, "warning")):
			warnings = append(warnings, get(resp, "warning").String())
		default:
			c.t.Fatalf("an ExemplarsResponse with no member set: %v", resp)
		}
	}
}

// expectedExemplars lists, for a node, the series keep selects with their
// exemplars in [start, end], labels as the server must send them: the
// tenant's external labels merged in, sorted by them.
func expectedExemplars(n *node, data exemplarData, start, end int64, keep func(tenant string, ls labels.Labels) bool) []exemplarResult {
	var out []exemplarResult
	for _, e := range expectedOf(n, data, func(e sentExemplar) int64 { return e.ts }, start, end, keep) {
		out = append(out, exemplarResult{lset: e.lset, exemplars: e.items})
	}
	return out
}

// checkExemplars requires the exact series, in order, and exemplars
// (labels, values, timestamps) in time order.
func checkExemplars(t *testing.T, got, want []exemplarResult) {
	t.Helper()
	equal := slices.EqualFunc(got, want, func(a, b exemplarResult) bool {
		// Labels compared as sent: refLabels keeps their order.
		return a.lset.String() == b.lset.String() && slices.EqualFunc(a.exemplars, b.exemplars, func(x, y sentExemplar) bool {
			return labels.Equal(x.labels, y.labels) && x.value == y.value && x.ts == y.ts
		})
	})
	if !equal {
		t.Errorf("exemplars\n %v\nwant\n %v", got, want)
	}
	for i := 1; i < len(got); i++ {
		if labels.Compare(got[i-1].lset, got[i].lset) >= 0 {
			t.Errorf("series %s is not after %s", got[i].lset, got[i-1].lset)
		}
	}
}

// TestExemplarsThroughRouter writes exemplars through a router to two
// block builders and reads them back from each over thanos.Exemplars, as
// Thanos Query does.
func TestExemplarsThroughRouter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := startCluster(t, 2, 2, blockbuilder.DefaultQueryLimits())
	const minutes = 20
	base := (time.Now().Add(-30*time.Minute).UnixMilli() / 60000) * 60000
	data, reqs := makeExemplarData(base, minutes)
	for _, tenant := range []string{"team-a", "team-b"} {
		c.write(t, tenant, reqs[tenant])
	}
	all := func(string, labels.Labels) bool { return true }
	name := func(n string) func(string, labels.Labels) bool {
		return func(_ string, ls labels.Labels) bool { return ls.Get("__name__") == n }
	}
	end := base + minutes*60000

	for _, nd := range c.nodes {
		t.Run(nd.replica, func(t *testing.T) {
			cl := dial(t, nd.grpcAddr)

			t.Run("info advertises exemplars", func(t *testing.T) {
				req, resp := thanosMsg(t, "thanos.info.InfoRequest"), thanosMsg(t, "thanos.info.InfoResponse")
				if err := cl.conn.Invoke(context.Background(), "/thanos.info.Info/Info", req, resp); err != nil {
					t.Fatal(err)
				}
				if !resp.Has(fd(resp, "exemplars")) {
					t.Fatal("Info has no exemplars field: Thanos Query would not ask for exemplars")
				}
				ex := get(resp, "exemplars").Message()
				if mint, maxt := get(ex, "min_time").Int(), get(ex, "max_time").Int(); mint != math.MinInt64 || maxt != math.MaxInt64 {
					t.Errorf("exemplars time range [%d, %d], want all time", mint, maxt)
				}
			})

			cases := []struct {
				name       string
				query      string
				start, end int64
				// keep selects the series expected; nil expects none.
				keep func(tenant string, ls labels.Labels) bool
			}{
				{"one metric, all time", "request_seconds_bucket", math.MinInt64, math.MaxInt64, name("request_seconds_bucket")},
				{"every series", `{__name__=~".+"}`, base, end, all},
				{"a matcher excludes a job, in a time range", `request_seconds_bucket{job!="web"}`, base + 3*60000, base + 9*60000 + 123,
					func(_ string, ls labels.Labels) bool {
						return ls.Get("__name__") == "request_seconds_bucket" && ls.Get("job") != "web"
					}},
				{"range ends before the first", "requests_total", base - 60000, base, nil},
				{"selectors of an expression, an external label on one", `sum(rate(request_seconds_bucket{tenant_id="team-b"}[5m])) / sum(requests_total)`, base, end,
					func(tenant string, ls labels.Labels) bool {
						return ls.Get("__name__") == "requests_total" || tenant == "team-b" && ls.Get("__name__") == "request_seconds_bucket"
					}},
				{"external labels only", `{tenant_id="team-a", cluster="test"}`, base, end,
					func(tenant string, _ labels.Labels) bool { return tenant == "team-a" }},
				{"another replica", fmt.Sprintf(`requests_total{receive_replica!=%q}`, nd.replica), base, end, nil},
				{"series without exemplars", "no_exemplars", base, end, nil},
				{"no selector", "1 + 1", base, end, nil},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					got, warns, err := cl.exemplars(tc.query, tc.start, tc.end)
					if err != nil || len(warns) > 0 {
						t.Fatalf("Exemplars: %v %v", err, warns)
					}
					want := []exemplarResult(nil)
					if tc.keep != nil {
						want = expectedExemplars(nd, data, tc.start, tc.end, tc.keep)
						if len(want) == 0 {
							t.Fatal("the case expects nothing: it tests nothing")
						}
					}
					checkExemplars(t, got, want)
				})
			}

			t.Run("bad query", func(t *testing.T) {
				_, _, err := cl.exemplars("sum(", base, end)
				if status.Code(err) != codes.InvalidArgument {
					t.Errorf("%v, want InvalidArgument", err)
				}
			})
		})
	}

	// With exemplar storage off, Info does not offer exemplars, so that
	// Query does not ask for them.
	t.Run("info without exemplar storage", func(t *testing.T) {
		for _, off := range []bool{false, true} {
			s, err := storeapi.New(c.nodes[0].bb, storeapi.Options{NoExemplars: off})
			if err != nil {
				t.Fatal(err)
			}
			info, err := s.Info(context.Background(), &storeapi.InfoRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if offered := info.Exemplars != nil; offered == off {
				t.Errorf("NoExemplars %v: Info offers exemplars: %v", off, offered)
			}
		}
	})

	// The limits bound exemplars as they bound Series: a server with
	// small limits over the same block builder.
	t.Run("limits", func(t *testing.T) {
		limited := func(limits blockbuilder.QueryLimits) *storeapi.Server {
			s, err := storeapi.New(c.nodes[0].bb, storeapi.Options{Limits: limits})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		discard := func(storeapi.Message) error { return nil }
		req := &storeapi.ExemplarsRequest{Query: `{__name__=~".+"}`, Start: base, End: end}
		err := limited(blockbuilder.QueryLimits{MaxSeries: 5}).Exemplars(context.Background(), req, discard)
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "STRATA_QUERY_MAX_SERIES") {
			t.Errorf("6 series over a limit of 5: %v, want ResourceExhausted naming the variable", err)
		}
		err = limited(blockbuilder.QueryLimits{MaxSamples: 100}).Exemplars(context.Background(), req, discard)
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "STRATA_QUERY_MAX_SAMPLES") {
			t.Errorf("120 exemplars over a limit of 100: %v, want ResourceExhausted naming the variable", err)
		}
		if err := limited(blockbuilder.QueryLimits{MaxSeries: 6, MaxSamples: 120}).Exemplars(context.Background(), req, discard); err != nil {
			t.Errorf("at the limits: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := limited(blockbuilder.DefaultQueryLimits()).Exemplars(ctx, req, discard); status.Code(err) != codes.Canceled {
			t.Errorf("a canceled call: %v, want Canceled", err)
		}
	})
}
