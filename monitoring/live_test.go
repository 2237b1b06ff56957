package monitoring

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"

	"github.com/stratametrics/strata/internal/harness"
)

// Bounds on waits for the processes: each is met within seconds.
const (
	liveWait    = 2 * time.Minute
	pollEvery   = 250 * time.Millisecond
	liveTenant  = "team-a"
	liveSeries  = 60
	backfillFor = 5 * time.Minute
)

// mayBeEmpty are the panels whose queries find nothing in the test's
// cluster, and why; every other panel must return data.
var mayBeEmpty = map[string]string{
	// RF=1: every forward is the quorum, none answers after it.
	"Copies lost after quorum, by block builder": "no forward answers after its quorum at RF=1",
}

// liveCluster is a router in front of two block builders, one whose
// uploads succeed and one whose bucket refuses them, and a hashring
// endpoint where nothing listens, written to so that every per-tenant
// series exists: blocks cut and uploaded (or failed), a 503, a conflict,
// exemplars dropped.
type liveCluster struct {
	router, good, bad *harness.Component
	dead              string
}

func startLiveCluster(t *testing.T) *liveCluster {
	t.Helper()
	dir := t.TempDir()
	goodBucket, badBucket := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	// The bad block builder cannot flush at the end: it gives up soon.
	bbEnv := []string{"STRATA_BLOCK_DURATION=1m", "STRATA_MAX_EXEMPLARS=0", "STRATA_FLUSH_TIMEOUT=2s"}
	c := &liveCluster{
		good: harness.StartBlockBuilder(t, "bb-good", []string{"STRATA_BUCKET_DIR=" + goodBucket}, bbEnv...),
		bad:  harness.StartBlockBuilder(t, "bb-bad", []string{"STRATA_BUCKET_DIR=" + badBucket}, bbEnv...),
		dead: harness.FreeAddr(t),
	}
	// A file where the bucket's directory was: every upload of the bad
	// block builder fails from now on (ENOTDIR, root or not).
	if err := os.RemoveAll(badBucket); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(badBucket, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	hashrings := filepath.Join(dir, "hashrings.json")
	limits := filepath.Join(dir, "limits.yaml")
	ring := fmt.Sprintf(`[{"hashring": "default", "endpoints": [%q, %q, %q]}]`, c.good.Addr, c.bad.Addr, c.dead)
	if err := os.WriteFile(hashrings, []byte(ring), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(limits, []byte("default:\n  ingestion_rate: 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.router = harness.StartRouterEnv(t,
		"STRATA_HASHRINGS_FILE="+hashrings,
		"STRATA_LIMITS_FILE="+limits,
		"STRATA_REPLICATION_FACTOR=1",
		"STRATA_ENDPOINT_BACKOFF=100ms",
		"STRATA_ENDPOINT_MAX_BACKOFF=1s",
	)

	// One request of five minutes of every series, so that the new heads
	// take it all (a later request may not reach further back than half a
	// block) and span enough to be cut into blocks at once.
	now := time.Now()
	header := http.Header{"THANOS-TENANT": {liveTenant}}
	var backfill prompb.WriteRequest
	for i := range liveSeries {
		ts := prompb.TimeSeries{Labels: seriesLabels(i)}
		for at := now.Add(-backfillFor); !at.After(now); at = at.Add(15 * time.Second) {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: at.UnixMilli(), Value: float64(at.Unix())})
		}
		// Dropped: the block builders store no exemplars.
		ts.Exemplars = []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: fmt.Sprint(i)}}, Value: 1, Timestamp: now.UnixMilli()}}
		backfill.Timeseries = append(backfill.Timeseries, ts)
	}
	harness.PostWrite(t, nil, c.router.URL(), header, &backfill)
	// Then each series on its own: those of the block builders are
	// answered 204, those of the dead endpoint 503; and a sample older
	// than its series' newest, a conflict (400) where a block builder has it.
	codes := map[int]int{}
	for i := range liveSeries {
		for _, at := range []time.Time{now.Add(time.Second), now.Add(-time.Minute)} {
			req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: seriesLabels(i), Samples: []prompb.Sample{{Timestamp: at.UnixMilli(), Value: 1}}}}}
			resp, _ := harness.PostWrite(t, nil, c.router.URL(), header, req)
			codes[resp.StatusCode]++
		}
	}
	for _, code := range []int{http.StatusNoContent, http.StatusBadRequest, http.StatusServiceUnavailable} {
		if codes[code] == 0 {
			t.Fatalf("the writes were answered %v: want some %d (the hashring spreads %d series over three endpoints)", codes, code, liveSeries)
		}
	}

	// Blocks cut, uploaded by one block builder and failing on the other.
	waitFor(t, "an upload and a failed upload", func() bool {
		return scrape(t, c.good.Addr)["strata_shipper_uploads_total"] != nil &&
			scrape(t, c.bad.Addr)["strata_shipper_upload_failures_total"] != nil
	})
	return c
}

func seriesLabels(i int) []prompb.Label {
	return []prompb.Label{{Name: "__name__", Value: "live_gauge"}, {Name: "job", Value: "live"}, {Name: "series", Value: fmt.Sprint(i)}}
}

// waitFor polls cond until it holds, failing the test after liveWait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(liveWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, liveWait)
		}
		time.Sleep(pollEvery)
	}
}

// scrape reads the metric families a process exposes on /metrics.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics of %s: %v", addr, err)
	}
	return mfs
}

// exposed is what the processes expose, under the names PromQL selects:
// a histogram's _bucket, _sum and _count, a summary's quantiles, _sum
// and _count.
func exposed(t *testing.T, addrs ...string) exposition {
	t.Helper()
	exp := exposition{}
	add := func(name string, m *dto.Metric, extra ...string) {
		if exp[name] == nil {
			exp[name] = map[string]bool{}
		}
		for _, l := range m.Label {
			exp[name][l.GetName()] = true
		}
		for _, l := range extra {
			exp[name][l] = true
		}
	}
	for _, addr := range addrs {
		for name, mf := range scrape(t, addr) {
			for _, m := range mf.Metric {
				switch mf.GetType() {
				case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
					add(name+"_bucket", m, "le")
					add(name+"_sum", m)
					add(name+"_count", m)
				case dto.MetricType_SUMMARY:
					add(name, m, "quantile")
					add(name+"_sum", m)
					add(name+"_count", m)
				default:
					add(name, m)
				}
			}
		}
	}
	return exp
}

// TestAgainstRunningStrata holds the alerts and dashboards to a real
// router and block builders: every metric and label they select is one
// the processes expose, and every query, run by a real Prometheus that
// scrapes them, answers without an error (and with data, where the
// cluster has what the panel shows).
func TestAgainstRunningStrata(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a router, block builders and Prometheus")
	}
	promBin := harness.Tool(t, "prometheus")
	c := startLiveCluster(t)

	t.Run("every selected metric is exposed", func(t *testing.T) {
		exp := exposed(t, c.router.Addr, c.good.Addr, c.bad.Addr)
		if exp["strata_router_requests_total"] == nil || exp["prometheus_tsdb_head_series"] == nil || exp["strata_shipper_upload_failures_total"] == nil {
			t.Fatalf("the scrapes lack the router's, the TSDB's or the shipper's metrics: %d names", len(exp))
		}
		for _, q := range allQueries(nil) {
			problems, err := unexposed(q.expr, exp)
			if err != nil {
				t.Errorf("%s: %v\n%s", q.where, err, q.expr)
			}
			for _, p := range problems {
				t.Errorf("%s: %s", q.where, p)
			}
		}
	})

	prom := startPrometheus(t, promBin, c)
	t.Run("every query evaluates", func(t *testing.T) {
		for _, q := range allQueries(nil) {
			res := prom.query(t, q.expr)
			if res == nil {
				continue
			}
			if len(*res) > 0 || q.panel == "" || mayBeEmpty[q.panel] != "" || onlyUnscraped(t, q.expr) {
				continue
			}
			t.Errorf("%s finds nothing:\n%s", q.where, q.expr)
		}
		for _, d := range Dashboards {
			for _, v := range d.Vars {
				prom.labelValues(t, v.LabelName, expand(v.Selector, d, nil))
			}
		}
	})

	// Scraped as the Prometheus Operator scrapes (an endpoint label on the
	// target), the routers' endpoint label comes as exported_endpoint; the
	// panels and alerts still name the block builder.
	t.Run("the block builder is named under the Prometheus Operator too", func(t *testing.T) {
		operator := map[string]string{"namespace": "strata"}
		for _, q := range allQueries(operator) {
			if q.variable {
				continue
			}
			res := prom.query(t, q.expr)
			if res == nil {
				continue
			}
			for _, s := range *res {
				if ep, ok := s.Metric["endpoint"]; ok && ep == "http" {
					t.Errorf("%s gives endpoint=%q, the target's, not the block builder's: %v", q.where, ep, s.Metric)
				}
			}
		}
		for _, want := range []struct {
			alert  string
			labels model.LabelSet
		}{
			{"StrataRouterEndpointDown", model.LabelSet{"job": "router", "endpoint": model.LabelValue(c.dead)}},
			{"StrataRouterEndpointDown", model.LabelSet{"job": "router-operator", "namespace": "strata", "endpoint": model.LabelValue(c.dead)}},
			{"StrataBlockUploadsFailing", model.LabelSet{"job": "blockbuilder", "instance": model.LabelValue(c.bad.Addr), "tenant": liveTenant}},
		} {
			// Polled: an increase() needs a failure after Prometheus' first
			// scrape, and the failing shipper retries on a doubling backoff,
			// so on a slow machine the next failure may be seconds away.
			a := alertByName(t, want.alert)
			var last model.Vector
			var lastErr error
			deadline := time.Now().Add(liveWait)
			for !hasSeries(last, want.labels) && time.Now().Before(deadline) {
				if last, lastErr = prom.eval(a.Expr); hasSeries(last, want.labels) {
					break
				}
				time.Sleep(pollEvery)
			}
			if !hasSeries(last, want.labels) {
				t.Errorf("%s's expression does not find %v within %v; it gives %v (error %v)", want.alert, want.labels, liveWait, last, lastErr)
			}
		}
	})

	t.Run("the chart's expressions evaluate", func(t *testing.T) {
		for _, g := range Groups {
			for _, a := range g.Alerts {
				e, err := ReleaseExpr(a.Expr, "strata", "strata-blockbuilder")
				if err != nil {
					t.Fatalf("%s: %v", a.Name, err)
				}
				prom.query(t, e)
			}
		}
	})
}

// hasSeries tells whether v holds a series with all of labels.
func hasSeries(v model.Vector, labels model.LabelSet) bool {
	for _, s := range v {
		match := true
		for k, l := range labels {
			match = match && s.Metric[k] == l
		}
		if match {
			return true
		}
	}
	return false
}

func alertByName(t *testing.T, name string) Alert {
	t.Helper()
	for _, g := range Groups {
		for _, a := range g.Alerts {
			if a.Name == name {
				return a
			}
		}
	}
	t.Fatalf("no alert %s", name)
	return Alert{}
}

// onlyUnscraped tells whether an expression selects only metrics the
// test's Prometheus has none of: the kubelet's.
func onlyUnscraped(t *testing.T, expr string) bool {
	e, err := ParseExpr(expr)
	if err != nil {
		t.Fatal(err)
	}
	for _, vs := range selectors(e) {
		if ExternalMetrics[metricName(vs)] == "" || metricName(vs) == "up" {
			return false
		}
	}
	return true
}

type prometheus struct{ addr string }

// startPrometheus scrapes the cluster every second: the router twice, as
// itself and as the Prometheus Operator would (the target's endpoint and
// namespace labels), and both block builders; it returns once every
// target has been scraped a few times.
func startPrometheus(t *testing.T, bin string, c *liveCluster) *prometheus {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: router
    static_configs:
      - targets: [%q]
  - job_name: router-operator
    static_configs:
      - targets: [%q]
        labels: {endpoint: http, namespace: strata, pod: strata-router-0}
  - job_name: blockbuilder
    static_configs:
      - targets: [%q, %q]
`, c.router.Addr, c.router.Addr, c.good.Addr, c.bad.Addr)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &prometheus{addr: harness.FreeAddr(t)}
	proc := harness.StartProcess(t, bin, []string{
		"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + p.addr,
	}, nil)
	proc.WaitHTTP("http://"+p.addr+"/-/ready", liveWait)
	// Four targets, each scraped five times within the last minute: enough
	// for every rate() over the test's $__rate_interval.
	waitFor(t, "five scrapes of every target", func() bool {
		res, err := p.eval(`count(count_over_time(up[1m]) >= 5)`)
		return err == nil && len(res) == 1 && res[0].Value == 4
	})
	return p
}

// eval runs an instant query, returning its vector (a scalar as one
// sample) or the error, warnings and infos included: a rate() of a gauge
// or histogram_quantile() of a malformed histogram is reported so.
func (p *prometheus) eval(expr string) (model.Vector, error) {
	resp, err := http.PostForm("http://"+p.addr+"/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var answer struct {
		Status   string   `json:"status"`
		Error    string   `json:"error"`
		Warnings []string `json:"warnings"`
		Infos    []string `json:"infos"`
		Data     struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return nil, fmt.Errorf("%s: %s", resp.Status, body)
	}
	if answer.Status != "success" {
		return nil, errors.New(answer.Error)
	}
	if notes := append(answer.Warnings, answer.Infos...); len(notes) > 0 {
		return nil, errors.New(strings.Join(notes, "; "))
	}
	switch answer.Data.ResultType {
	case "vector":
		var v model.Vector
		err := json.Unmarshal(answer.Data.Result, &v)
		return v, err
	case "scalar":
		var s model.Scalar
		if err := json.Unmarshal(answer.Data.Result, &s); err != nil {
			return nil, err
		}
		return model.Vector{{Value: s.Value, Timestamp: s.Timestamp}}, nil
	}
	return nil, fmt.Errorf("result of type %s", answer.Data.ResultType)
}

// query is eval that fails the test on an error (and returns nil).
func (p *prometheus) query(t *testing.T, expr string) *model.Vector {
	t.Helper()
	v, err := p.eval(expr)
	if err != nil {
		t.Errorf("%s: %v", expr, err)
		return nil
	}
	return &v
}

// labelValues runs a variable's query as Grafana does: the label's values
// among the selector's series.
func (p *prometheus) labelValues(t *testing.T, label, selector string) {
	t.Helper()
	u := "http://" + p.addr + "/api/v1/label/" + url.PathEscape(label) + "/values?" + url.Values{"match[]": {selector}}.Encode()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var answer struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || answer.Status != "success" {
		t.Errorf("label_values(%s, %s): %s %s", selector, label, resp.Status, body)
	}
}
