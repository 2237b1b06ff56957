package storeapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	promclient "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/stratametrics/strata/blockbuilder"
	"github.com/stratametrics/strata/internal/harness"
)

// TestThanosQueryReadsBlockBuilders runs an unmodified Thanos Query (the
// real binary, which `make tools` builds; `make test-thanos` runs this
// test alone) against three block builders and queries through it: the
// strongest proof that they are endpoints Thanos accepts.
func TestThanosQueryReadsBlockBuilders(t *testing.T) {
	bin := harness.Tool(t, "thanos")
	c := startCluster(t, 3, 3, blockbuilder.DefaultQueryLimits())
	const n = 80
	base := (time.Now().Add(-40*time.Minute).UnixMilli() / 60000) * 60000
	data, reqs := makeData(base, n)
	for tenant, req := range reqs {
		c.write(t, tenant, req)
	}

	httpAddr := harness.FreeAddr(t)
	args := []string{"query",
		"--http-address=" + httpAddr, "--grpc-address=" + harness.FreeAddr(t),
		"--query.replica-label=receive_replica", "--log.level=info",
	}
	for _, nd := range c.nodes {
		args = append(args, "--endpoint="+nd.grpcAddr)
	}
	q := harness.StartProcess(t, bin, args, nil)
	q.WaitHTTP("http://"+httpAddr+"/-/ready", time.Minute)

	client, err := promclient.NewClient(promclient.Config{Address: "http://" + httpAddr})
	if err != nil {
		t.Fatal(err)
	}
	api := promv1.NewAPI(client)
	ctx := context.Background()
	at := time.UnixMilli(base + 10*60000)

	// Query learns its endpoints by calling Info on each: wait until all
	// three are in use, which shows in the undeduplicated count.
	deadline := time.Now().Add(time.Minute)
	for {
		v := rawQuery(t, httpAddr, "count(test_metric)", at, false)
		if v == "24" { // 4 series x 2 tenants x 3 replicas
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Thanos Query did not see the three block builders' series: count %q\n%s", v, storesOf(t, httpAddr))
		}
		time.Sleep(200 * time.Millisecond)
	}

	t.Run("instant, deduplicated", func(t *testing.T) {
		got, warns, _, err := api.Query(ctx, `test_metric`, at)
		if err != nil || len(warns) > 0 {
			t.Fatalf("%v %v", err, warns)
		}
		want := model.Vector{}
		for tenant, series := range data {
			for key, smps := range series {
				ls, _ := parseLabels(key)
				if ls.Get("__name__") != "test_metric" {
					continue
				}
				m := metric(ls)
				m["tenant_id"], m["cluster"] = model.LabelValue(tenant), "test"
				// The newest sample at or before the query time.
				i := sort.Search(len(smps), func(i int) bool { return smps[i].t > at.UnixMilli() }) - 1
				want = append(want, &model.Sample{Metric: m, Value: model.SampleValue(smps[i].v), Timestamp: model.TimeFromUnixNano(at.UnixNano())})
			}
		}
		if g, w := sorted(got.(model.Vector)).String(), sorted(want).String(); g != w {
			t.Errorf("got\n%s\nwant\n%s", g, w)
		}
	})

	t.Run("range, exact samples", func(t *testing.T) {
		start, end := time.UnixMilli(base), time.UnixMilli(base+(n-1)*15000)
		got, _, _, err := api.QueryRange(ctx, `other_metric`, promv1.Range{Start: start, End: end, Step: 15 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		m := got.(model.Matrix)
		if len(m) != 2 {
			t.Fatalf("%d series, want one per tenant: %v", len(m), m)
		}
		for _, ss := range m {
			ls := labels.FromStrings("__name__", "other_metric", "job", "api")
			smps := data[string(ss.Metric["tenant_id"])][ls.String()]
			if len(ss.Values) != len(smps) {
				t.Fatalf("%s: %d points, want %d", ss.Metric, len(ss.Values), len(smps))
			}
			for i, p := range ss.Values {
				if int64(p.Timestamp) != smps[i].t || float64(p.Value) != smps[i].v {
					t.Fatalf("%s point %d: %v, want %d %g", ss.Metric, i, p, smps[i].t, smps[i].v)
				}
			}
		}
	})

	t.Run("tenant selection and aggregation", func(t *testing.T) {
		got, _, _, err := api.Query(ctx, `sum by (tenant_id) (test_metric{tenant_id="team-b"})`, at)
		if err != nil {
			t.Fatal(err)
		}
		v := got.(model.Vector)
		if len(v) != 1 || v[0].Metric["tenant_id"] != "team-b" {
			t.Fatalf("got %v", v)
		}
		var want float64
		for key, smps := range data["team-b"] {
			if strings.HasPrefix(key, `{__name__="test_metric"`) {
				i := sort.Search(len(smps), func(i int) bool { return smps[i].t > at.UnixMilli() }) - 1
				want += smps[i].v
			}
		}
		if float64(v[0].Value) != want {
			t.Errorf("sum %v, want %v", v[0].Value, want)
		}
	})

	t.Run("native histogram", func(t *testing.T) {
		got, _, _, err := api.Query(ctx, `histogram_count(test_histogram)`, at)
		if err != nil {
			t.Fatal(err)
		}
		smps := data["team-a"][labels.FromStrings("__name__", "test_histogram", "job", "api").String()]
		i := sort.Search(len(smps), func(i int) bool { return smps[i].t > at.UnixMilli() }) - 1
		if v := got.(model.Vector); len(v) != 1 || float64(v[0].Value) != float64(smps[i].h.Count) {
			t.Errorf("got %v, want count %d", got, smps[i].h.Count)
		}
	})

	t.Run("labels", func(t *testing.T) {
		values, _, _, err := api.LabelValues(ctx, "tenant_id", nil, time.UnixMilli(base), time.UnixMilli(base+(n-1)*15000))
		if err != nil || fmt.Sprint([]model.LabelValue(values)) != "[team-a team-b]" {
			t.Errorf("tenant_id values %v, %v", values, err)
		}
		names, _, _, err := api.LabelNames(ctx, []string{"zz_metric"}, time.UnixMilli(base), time.UnixMilli(base+(n-1)*15000))
		if err != nil || !slices.Contains(names, "zone") || !slices.Contains(names, "tenant_id") {
			t.Errorf("label names of zz_metric %v, %v", names, err)
		}
	})
}

func metric(ls labels.Labels) model.Metric {
	m := model.Metric{}
	ls.Range(func(l labels.Label) { m[model.LabelName(l.Name)] = model.LabelValue(l.Value) })
	return m
}

func sorted(v model.Vector) model.Vector {
	sort.Slice(v, func(i, j int) bool { return v[i].Metric.String() < v[j].Metric.String() })
	return v
}

// rawQuery runs an instant query with or without deduplication (a Thanos
// parameter the Prometheus client does not send) and returns the value of
// its single sample, "" if none.
func rawQuery(t *testing.T, addr, query string, at time.Time, dedup bool) string {
	t.Helper()
	u := "http://" + addr + "/api/v1/query?" + url.Values{
		"query": {query}, "time": {fmt.Sprint(at.Unix())}, "dedup": {fmt.Sprint(dedup)},
	}.Encode()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &ans); err != nil || resp.StatusCode != 200 {
		t.Fatalf("query %s: %d %s", query, resp.StatusCode, body)
	}
	if len(ans.Data.Result) != 1 {
		return ""
	}
	return fmt.Sprint(ans.Data.Result[0].Value[1])
}

// storesOf is Thanos Query's view of its endpoints, for failure messages.
func storesOf(t *testing.T, addr string) string {
	resp, err := http.Get("http://" + addr + "/api/v1/stores")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
