package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"

	"github.com/stratametrics/strata/internal/harness"
)

// The sender matrix: real senders other than Prometheus' plain remote
// write of gauges (TestPrometheusEndToEnd) scrape a target whose every
// value is known, and write to a router in front of three block builders
// (RF=3), each to a tenant of its own. What they wrote is then read back
// through the block builders' query API and, after they flush, from the
// bucket: every series with its exact label set, in order, every value the
// target served, and at least every sample the sender's own metrics say it
// sent, which must show nothing failed or dropped.

// targetScrapes is how many scrapes a target answers before it fails: a
// dozen batches at one scrape a second.
const targetScrapes = 12

// senderTimeout bounds each wait on a sender, generous for a slow machine.
const senderTimeout = 2 * time.Minute

// senderSettle is how long a sender gets, after its metrics are read, to
// send what they count: several times its batch deadline or flush
// interval (500ms to 1s).
const senderSettle = 3 * time.Second

type senderCase struct {
	name string
	// rich: the target serves Prometheus' protobuf exposition with a
	// native histogram and exemplars; otherwise it serves the text
	// exposition with labels not sorted by name.
	rich  bool
	start func(t *testing.T, rw remoteWrite, target string) *runningSender
}

// remoteWrite is where a sender writes.
type remoteWrite struct {
	url, tenant string
}

// runningSender is a sender process and how to read its own metrics.
type runningSender struct {
	proc       *harness.Process
	metricsURL string
	// added is the label set the sender gives every series it scrapes
	// besides the target's own (job, instance, ...).
	added map[string]string
	// idle tells that nothing is pending in the sender.
	idle func(m harness.Metrics) bool
	// sent is how many samples (floats and histograms, its own series
	// and stale markers included) the sender says were written.
	sent func(m harness.Metrics) float64
	// uncounted names the series the sender writes without counting
	// them in sent.
	uncounted []string
	// check fails the test for anything the sender failed, dropped or
	// gave up on.
	check func(t *testing.T, m harness.Metrics)
	// extra checks series the sender adds of its own, if any.
	extra func(t *testing.T, where string, got tenantData)
}

var senderCases = []senderCase{
	{name: "prometheus-rw1", rich: true, start: prometheusSender(false, "prometheus.WriteRequest")},
	{name: "prometheus-rw2", rich: true, start: prometheusSender(false, "io.prometheus.write.v2.Request")},
	{name: "prometheus-agent", rich: true, start: prometheusSender(true, "prometheus.WriteRequest")},
	{name: "vmagent", start: vmagentSender},
	{name: "otelcol", start: otelcolSender},
}

func TestSenders(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	for _, sc := range senderCases {
		t.Run(sc.name, func(t *testing.T) { runSender(t, sc) })
	}
}

func runSender(t *testing.T, sc senderCase) {
	s3 := harness.StartS3(t)
	var bbs []*harness.Component
	for i := 0; i < 3; i++ {
		bbs = append(bbs, harness.StartBlockBuilder(t, fmt.Sprintf("blockbuilder-%d", i), s3.Env(), "STRATA_BLOCK_DURATION=1m"))
	}
	router := harness.StartRouter(t, bbs, 3)
	tgt := newTarget(sc.rich, targetScrapes)
	defer tgt.Close()
	rw := remoteWrite{url: router.URL(), tenant: "e2e-" + sc.name}
	s := sc.start(t, rw, tgt.addr())

	// Two failed scrapes past the good ones: the sender has seen the
	// target's series go stale.
	waitFor(t, senderTimeout, func() bool { return tgt.requests() >= targetScrapes+2 })
	sent, sentBy, final := settle(t, s)
	s.check(t, final)

	for i, bb := range bbs {
		where := fmt.Sprintf("block builder %d query API", i)
		got := queryTenant(t, bb, rw.tenant)
		checkTargetSeries(t, where, got, tgt, s.added)
		if s.extra != nil {
			s.extra(t, where, got)
		}
		if sc.rich {
			checkExemplars(t, where, bb, rw.tenant, got, tgt, s.added)
		}
	}

	if err := s.proc.Stop(); err != nil {
		t.Errorf("%s did not stop cleanly: %v", sc.name, err)
	}
	for _, b := range bbs {
		if err := b.Stop(); err != nil {
			t.Fatalf("block builder did not flush cleanly: %v", err)
		}
	}
	stored := bucketTenant(t, s3, rw.tenant)
	checkTargetSeries(t, "bucket", stored, tgt, s.added)
	checkStale(t, "bucket", stored, tgt, s.added)
	if s.extra != nil {
		s.extra(t, "bucket", stored)
	}
	// What was sent by then was scraped by then. Samples scraped by then
	// but sent after may add to it: the sender goes on scraping (up,
	// ...) and sending until it stops.
	have := stored.countUntil(sentBy, s.uncounted)
	t.Logf("%s says it sent %v samples by %s; the bucket holds %d of tenant %s up to then, %d in all",
		sc.name, sent, sentBy.Format(time.TimeOnly), have, rw.tenant, stored.count())
	if float64(have) < sent {
		t.Errorf("the bucket holds %d samples of tenant %s up to %s, %s says it sent %v by then", have, rw.tenant, sentBy.Format(time.TimeOnly), sc.name, sent)
	}
}

// settle reads the sender's metrics, gives it senderSettle to send what
// they count, and waits until it has nothing pending. It returns the
// samples sent by the first read, the time of that read, and the metrics
// of the last, which include the fate of every send the first counted.
func settle(t *testing.T, s *runningSender) (float64, time.Time, harness.Metrics) {
	t.Helper()
	sent := s.sent(readMetrics(t, s.metricsURL))
	at := time.Now()
	var last harness.Metrics
	waitFor(t, senderTimeout, func() bool {
		if time.Since(at) < senderSettle {
			return false
		}
		last = readMetrics(t, s.metricsURL)
		return s.idle(last)
	})
	return sent, at, last
}

// --- the target

// scrapeTarget answers its first good scrapes and 503 after, so that the
// scrapers mark its series stale. Scrape n (from 1) serves values that
// tell n, so what a store holds can be traced to the scrape it came from.
type scrapeTarget struct {
	srv    *httptest.Server
	series []targetSeries
	good   int

	mu   sync.Mutex
	n    int
	rich *richRegistry
}

// targetSeries is a series of the target and its value at scrape n (a
// histogram's count).
type targetSeries struct {
	name   string
	labels []string // name, value, ...: in the order the target writes them
	value  func(n int) float64
	// exemplars: each scrape adds one with trace_id traceID(n).
	exemplars bool
}

func newTarget(rich bool, good int) *scrapeTarget {
	tgt := &scrapeTarget{good: good}
	if rich {
		tgt.rich = newRichRegistry()
		tgt.series = richSeries
	} else {
		tgt.series = textSeries
	}
	tgt.srv = httptest.NewServer(http.HandlerFunc(tgt.serve))
	return tgt
}

func (tgt *scrapeTarget) Close()       { tgt.srv.Close() }
func (tgt *scrapeTarget) addr() string { return strings.TrimPrefix(tgt.srv.URL, "http://") }

func (tgt *scrapeTarget) requests() int {
	tgt.mu.Lock()
	defer tgt.mu.Unlock()
	return tgt.n
}

// serve holds the lock while it answers, so that the values served are
// those of scrape n.
func (tgt *scrapeTarget) serve(w http.ResponseWriter, r *http.Request) {
	tgt.mu.Lock()
	defer tgt.mu.Unlock()
	tgt.n++
	if tgt.n > tgt.good {
		http.Error(w, "the target is done", http.StatusServiceUnavailable)
		return
	}
	if tgt.rich != nil {
		tgt.rich.scrape(tgt.n)
		tgt.rich.handler.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	writeTextSeries(w, tgt.n)
}

// scrapeOf tells which scrape served v for series s.
func (tgt *scrapeTarget) scrapeOf(s targetSeries, v float64) (int, bool) {
	for n := 1; n <= tgt.good; n++ {
		if s.value(n) == v {
			return n, true
		}
	}
	return 0, false
}

// The text target's series, labels deliberately out of name order so
// that senders that pass them on as exposed (vmagent) send them unsorted.
var textSeries = []targetSeries{
	{name: "e2e_unsorted", labels: []string{"zone", "a", "app", "web", "instance_name", "x"}, value: func(n int) float64 { return float64(n*10 + 1) }},
	{name: "e2e_unsorted", labels: []string{"zone", "b", "app", "db", "instance_name", "y"}, value: func(n int) float64 { return float64(n*10 + 2) }},
	{name: "e2e_events_total", labels: []string{"zone", "a", "app", "web"}, value: func(n int) float64 { return float64(n) }},
}

func writeTextSeries(w io.Writer, n int) {
	help := map[string]string{
		"e2e_unsorted":     "# HELP e2e_unsorted A gauge whose labels are not in name order.\n# TYPE e2e_unsorted gauge\n",
		"e2e_events_total": "# HELP e2e_events_total A counter whose labels are not in name order.\n# TYPE e2e_events_total counter\n",
	}
	for _, s := range textSeries {
		// Metadata once per family, before its first series.
		fmt.Fprint(w, help[s.name])
		delete(help, s.name)
		var ls []string
		for i := 0; i < len(s.labels); i += 2 {
			ls = append(ls, fmt.Sprintf("%s=%q", s.labels[i], s.labels[i+1]))
		}
		fmt.Fprintf(w, "%s{%s} %v\n", s.name, strings.Join(ls, ","), s.value(n))
	}
}

// The rich target's series: a gauge, a counter with exemplars and a
// native histogram, with metadata (HELP, TYPE).
var richSeries = []targetSeries{
	{name: "e2e_temperature_celsius", labels: []string{"room", "attic"}, value: func(n int) float64 { return float64(n*10 + 1) }},
	{name: "e2e_temperature_celsius", labels: []string{"room", "kitchen"}, value: func(n int) float64 { return float64(n*10 + 2) }},
	{name: "e2e_requests_total", value: func(n int) float64 { return float64(n) }, exemplars: true},
	{name: "e2e_latency_seconds", value: func(n int) float64 { return float64(n) }},
}

// richRegistry serves richSeries through client_golang, which writes the
// protobuf exposition that native histograms need when asked for it.
type richRegistry struct {
	handler  http.Handler
	temp     *prometheus.GaugeVec
	requests prometheus.Counter
	latency  prometheus.Histogram
}

func newRichRegistry() *richRegistry {
	reg := prometheus.NewRegistry()
	r := &richRegistry{
		temp:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "e2e_temperature_celsius", Help: "A gauge."}, []string{"room"}),
		requests: prometheus.NewCounter(prometheus.CounterOpts{Name: "e2e_requests_total", Help: "A counter with exemplars."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "e2e_latency_seconds", Help: "A native histogram.",
			NativeHistogramBucketFactor: 1.1, NativeHistogramMaxBucketNumber: 100, NativeHistogramMinResetDuration: time.Hour,
		}),
	}
	reg.MustRegister(r.temp, r.requests, r.latency)
	r.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
	return r
}

// scrape sets the values of scrape n: richSeries' value(n).
func (r *richRegistry) scrape(n int) {
	r.temp.WithLabelValues("attic").Set(float64(n*10 + 1))
	r.temp.WithLabelValues("kitchen").Set(float64(n*10 + 2))
	r.requests.(prometheus.ExemplarAdder).AddWithExemplar(1, prometheus.Labels{"trace_id": traceID(n)})
	r.latency.Observe(float64(n) / 10)
}

func traceID(n int) string { return fmt.Sprintf("%032x", n) }

// --- what a store holds

// tenantData is a tenant's samples: series (its labels' String, in the
// order stored) -> timestamp -> value, a histogram's count for histograms.
type tenantData map[string]map[int64]float64

func (d tenantData) count() int {
	n := 0
	for _, s := range d {
		n += len(s)
	}
	return n
}

// countUntil counts the samples with timestamps up to t, but for those
// of metrics named in except.
func (d tenantData) countUntil(t time.Time, except []string) int {
	n := 0
	for key, s := range d {
		if slices.ContainsFunc(except, func(name string) bool { return strings.HasPrefix(key, fmt.Sprintf("{__name__=%q,", name)) }) {
			continue
		}
		for ts := range s {
			if ts <= t.UnixMilli() {
				n++
			}
		}
	}
	return n
}

func (d tenantData) names() []string {
	var out []string
	for k := range d {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// seriesKey is the label set a sender stores a target series with.
func seriesKey(name string, pairs []string, added map[string]string) string {
	m := map[string]string{model.MetricNameLabel: name}
	for i := 0; i < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	for k, v := range added {
		m[k] = v
	}
	return labels.FromMap(m).String()
}

// checkTargetSeries: every series of the target is there under exactly
// the labels expected, holding values that the target served, one per
// successful scrape the sender's up series counts, and enough of them.
func checkTargetSeries(t *testing.T, where string, got tenantData, tgt *scrapeTarget, added map[string]string) {
	t.Helper()
	up := 0
	upKey := seriesKey("up", nil, added)
	for _, v := range got[upKey] {
		if v == 1 {
			up++
		}
	}
	if up < tgt.good/2 {
		t.Errorf("%s: %s has %d successful scrapes of %d; the tenant has %v", where, upKey, up, tgt.good, got.names())
	}
	for _, s := range tgt.series {
		key := seriesKey(s.name, s.labels, added)
		samples, ok := got[key]
		if !ok {
			t.Errorf("%s: no series %s; the tenant has %v", where, key, got.names())
			continue
		}
		seen := map[int]bool{}
		for ts, v := range samples {
			if value.IsStaleNaN(v) {
				continue
			}
			n, ok := tgt.scrapeOf(s, v)
			switch {
			case !ok:
				t.Errorf("%s: %s at %d is %v, which the target never served", where, key, ts, v)
			case seen[n]:
				t.Errorf("%s: %s holds the value of scrape %d (%v) twice", where, key, n, v)
			}
			seen[n] = true
		}
		if len(seen) != up {
			t.Errorf("%s: %s holds the values of %d scrapes, %s counts %d successful ones", where, key, len(seen), upKey, up)
		}
	}
}

// checkStale: each series of the target ends with a stale marker, which
// the sender wrote when the target failed. Query APIs leave them out;
// blocks keep them.
func checkStale(t *testing.T, where string, got tenantData, tgt *scrapeTarget, added map[string]string) {
	t.Helper()
	for _, s := range tgt.series {
		key := seriesKey(s.name, s.labels, added)
		samples := got[key]
		if len(samples) == 0 {
			continue // checkTargetSeries said so
		}
		last := slices.Max(slices.Collect(maps.Keys(samples)))
		if v := samples[last]; !value.IsStaleNaN(v) {
			t.Errorf("%s: %s ends with %v at %d, not with a stale marker", where, key, v, last)
		}
	}
}

// checkExemplars: each block builder holds the exemplar of every scrape
// whose counter value it holds.
func checkExemplars(t *testing.T, where string, bb *harness.Component, tenant string, got tenantData, tgt *scrapeTarget, added map[string]string) {
	t.Helper()
	ids := exemplarTraceIDs(t, bb, tenant)
	for _, s := range tgt.series {
		if !s.exemplars {
			continue
		}
		key := seriesKey(s.name, s.labels, added)
		var want []string
		for _, v := range got[key] {
			if n, ok := tgt.scrapeOf(s, v); ok {
				want = append(want, traceID(n))
			}
		}
		slices.Sort(want)
		if have := ids[key]; !slices.Equal(have, want) {
			t.Errorf("%s: exemplars of %s have trace IDs %v, want one for each scrape stored: %v", where, key, have, want)
		}
	}
}

// queryTenant reads every series of a tenant through a block builder's
// query API: a range selector over the last ten minutes answers every
// sample, stale markers aside.
func queryTenant(t *testing.T, bb *harness.Component, tenant string) tenantData {
	t.Helper()
	var res struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric     map[string]string    `json:"metric"`
			Values     [][2]any             `json:"values"`
			Histograms [][2]json.RawMessage `json:"histograms"`
		} `json:"result"`
	}
	queryAPI(t, bb, tenant, "/api/v1/query", url.Values{
		"query": {`{__name__=~".+"}[10m]`},
		"time":  {strconv.FormatInt(time.Now().Unix(), 10)},
	}, &res)
	out := tenantData{}
	for _, s := range res.Result {
		key := labels.FromMap(s.Metric).String()
		m := map[int64]float64{}
		for _, p := range s.Values {
			ts, v, err := parsePoint(p[0], p[1])
			if err != nil {
				t.Fatalf("query API: %s: %v", key, err)
			}
			m[ts] = v
		}
		for _, p := range s.Histograms {
			var ts float64
			var h struct {
				Count string `json:"count"`
			}
			if err := json.Unmarshal(p[0], &ts); err != nil {
				t.Fatalf("query API: %s: histogram timestamp: %v", key, err)
			}
			if err := json.Unmarshal(p[1], &h); err != nil {
				t.Fatalf("query API: %s: histogram: %v", key, err)
			}
			c, err := strconv.ParseFloat(h.Count, 64)
			if err != nil {
				t.Fatalf("query API: %s: histogram count %q: %v", key, h.Count, err)
			}
			m[int64(math.Round(ts*1000))] = c
		}
		out[key] = m
	}
	return out
}

func parsePoint(ts, v any) (int64, float64, error) {
	sec, ok := ts.(float64)
	vs, ok2 := v.(string)
	if !ok || !ok2 {
		return 0, 0, fmt.Errorf("point [%v, %v] is not [seconds, \"value\"]", ts, v)
	}
	f, err := strconv.ParseFloat(vs, 64)
	return int64(math.Round(sec * 1000)), f, err
}

// exemplarTraceIDs reads a tenant's exemplars from a block builder: series
// -> sorted trace IDs.
func exemplarTraceIDs(t *testing.T, bb *harness.Component, tenant string) map[string][]string {
	t.Helper()
	var res []struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []struct {
			Labels map[string]string `json:"labels"`
		} `json:"exemplars"`
	}
	queryAPI(t, bb, tenant, "/api/v1/query_exemplars", url.Values{
		"query": {`{__name__=~".+"}`},
		"start": {"0"},
		"end":   {strconv.FormatInt(time.Now().Unix()+60, 10)},
	}, &res)
	out := map[string][]string{}
	for _, s := range res {
		key := labels.FromMap(s.SeriesLabels).String()
		for _, e := range s.Exemplars {
			out[key] = append(out[key], e.Labels["trace_id"])
		}
		slices.Sort(out[key])
	}
	return out
}

// queryAPI GETs a block builder's Prometheus API for tenant and decodes
// the answer's data into data.
func queryAPI(t *testing.T, bb *harness.Component, tenant, path string, params url.Values, data any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+bb.Addr+path+"?"+params.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("THANOS-TENANT", tenant)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: read answer: %v", path, err)
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Status != "success" {
		t.Fatalf("%s for tenant %s: %s %q (%v)", path, tenant, resp.Status, body, err)
	}
	if err := json.Unmarshal(env.Data, data); err != nil {
		t.Fatalf("%s: decode data: %v", path, err)
	}
}

// bucketTenant reads a tenant's samples from every block in the bucket.
func bucketTenant(t *testing.T, s3 *harness.S3, tenant string) tenantData {
	t.Helper()
	bkt, err := s3.BucketConfig().Open(context.Background(), quiet, nil, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	c := harness.ReadBucket(t, bkt, "tenant_id", "receive_replica")
	replicas := map[string]bool{}
	for _, b := range c.Blocks {
		if b.Tenant == tenant {
			replicas[b.Replica] = true
		}
	}
	if len(replicas) != 3 {
		t.Errorf("bucket: blocks of tenant %s from replicas %v, want 3", tenant, replicas)
	}
	out := tenantData{}
	for key, s := range c.Samples[tenant] {
		out[key] = s
	}
	for key, s := range c.Histograms[tenant] {
		m := out[key]
		if m == nil {
			m = map[int64]float64{}
			out[key] = m
		}
		for ts, h := range s {
			m[ts] = histogramCount(h)
		}
	}
	return out
}

// histogramCount is a histogram sample's count, or a stale marker.
func histogramCount(h harness.Histogram) float64 {
	switch {
	case h.H != nil && value.IsStaleNaN(h.H.Sum), h.FH != nil && value.IsStaleNaN(h.FH.Sum):
		return math.Float64frombits(value.StaleNaN)
	case h.H != nil:
		return float64(h.H.Count)
	case h.FH != nil:
		return h.FH.Count
	}
	return math.NaN()
}

// --- a sender's own metrics

// readMetrics reads a process's /metrics, by family name.
func readMetrics(t *testing.T, url string) harness.Metrics {
	t.Helper()
	m, err := harness.ScrapeMetrics(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// expectZero fails the test for each named metric that is not zero.
func expectZero(t *testing.T, sender string, m harness.Metrics, names ...string) {
	t.Helper()
	for _, name := range names {
		if v := m.Sum(name, nil); v != 0 {
			t.Errorf("%s: %s = %v, want 0", sender, name, v)
		}
	}
}

// expectPresent fails the test for each named metric the sender does not
// expose, so that a renamed counter cannot pass as zero.
func expectPresent(t *testing.T, sender string, m harness.Metrics, names ...string) {
	t.Helper()
	for _, name := range names {
		if !m.Has(name) {
			var have []string
			for k := range m {
				have = append(have, k)
			}
			slices.Sort(have)
			t.Errorf("%s exposes no %s; it has %v", sender, name, have)
		}
	}
}

// --- the senders

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// prometheusSender runs Prometheus (in agent mode if agent) scraping the
// rich target with native histograms, sending exemplars, native
// histograms and metadata as protobuf message msg.
func prometheusSender(agent bool, msg string) func(*testing.T, remoteWrite, string) *runningSender {
	return func(t *testing.T, rw remoteWrite, target string) *runningSender {
		bin := harness.Tool(t, "prometheus")
		dir := t.TempDir()
		cfg := filepath.Join(dir, "prometheus.yml")
		writeFile(t, cfg, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: e2e
    scrape_native_histograms: true
    static_configs:
      - targets: ['%s']
remote_write:
  - url: %s
    protobuf_message: %s
    headers:
      THANOS-TENANT: %s
    send_exemplars: true
    send_native_histograms: true
    metadata_config:
      send_interval: 1s
    queue_config:
      batch_send_deadline: 500ms
      min_backoff: 100ms
      max_backoff: 1s
`, target, rw.url, msg, rw.tenant))
		addr := harness.FreeAddr(t)
		// exemplar-storage: without it Prometheus keeps no exemplars to
		// send; metadata-wal-records: remote-write 2.0 sends metadata
		// only from the WAL.
		args := []string{
			"--config.file=" + cfg,
			"--web.listen-address=" + addr,
			"--enable-feature=exemplar-storage,metadata-wal-records",
		}
		if agent {
			args = append(args, "--agent", "--storage.agent.path="+filepath.Join(dir, "agent"))
		} else {
			args = append(args, "--storage.tsdb.path="+filepath.Join(dir, "data"))
		}
		proc := harness.StartProcess(t, bin, args, nil)
		proc.WaitHTTP("http://"+addr+"/-/ready", senderTimeout)
		return &runningSender{
			proc:       proc,
			metricsURL: "http://" + addr + "/metrics",
			added:      map[string]string{"job": "e2e", "instance": target},
			idle: func(m harness.Metrics) bool {
				return m.Sum("prometheus_remote_storage_samples_pending", nil)+
					m.Sum("prometheus_remote_storage_histograms_pending", nil)+
					m.Sum("prometheus_remote_storage_exemplars_pending", nil) == 0
			},
			sent: func(m harness.Metrics) float64 {
				return m.Sum("prometheus_remote_storage_samples_total", nil) - m.Sum("prometheus_remote_storage_samples_retried_total", nil) +
					m.Sum("prometheus_remote_storage_histograms_total", nil) - m.Sum("prometheus_remote_storage_histograms_retried_total", nil)
			},
			check: func(t *testing.T, m harness.Metrics) {
				const p = "prometheus_remote_storage_"
				expectPresent(t, "prometheus", m, p+"samples_total", p+"histograms_total", p+"exemplars_total", p+"samples_failed_total")
				expectZero(t, "prometheus", m,
					p+"samples_failed_total", p+"histograms_failed_total", p+"exemplars_failed_total", p+"metadata_failed_total",
					p+"samples_dropped_total", p+"histograms_dropped_total", p+"exemplars_dropped_total")
				for _, kind := range []string{"histograms", "exemplars"} {
					if m.Sum(p+kind+"_total", nil) == 0 {
						t.Errorf("prometheus sent no %s", kind)
					}
				}
				// 1.0 sends metadata in requests of its own, 2.0 with
				// each series.
				if msg == "prometheus.WriteRequest" && m.Sum(p+"metadata_total", nil) == 0 {
					t.Errorf("prometheus sent no metadata")
				}
			},
		}
	}
}

// vmagentSender runs vmagent with its default flags but for where to
// scrape and write: it first offers its own protocol (zstd), which Strata
// answers 415, and must fall back to remote-write 1.0 without losing the
// data it offered; it sends labels in the order the target wrote them.
func vmagentSender(t *testing.T, rw remoteWrite, target string) *runningSender {
	bin := harness.Tool(t, "vmagent")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "scrape.yml")
	writeFile(t, cfg, fmt.Sprintf(`scrape_configs:
  - job_name: e2e
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ['%s']
`, target))
	addr := harness.FreeAddr(t)
	proc := harness.StartProcess(t, bin, []string{
		"-promscrape.config=" + cfg,
		"-remoteWrite.url=" + rw.url,
		"-remoteWrite.headers=THANOS-TENANT:" + rw.tenant,
		"-remoteWrite.tmpDataPath=" + filepath.Join(dir, "queue"),
		"-httpListenAddr=" + addr,
	}, nil)
	proc.WaitHTTP("http://"+addr+"/health", senderTimeout)
	const v = "vmagent_remotewrite_"
	status := func(code string) func(map[string]string) bool {
		return func(ls map[string]string) bool { return ls["status_code"] == code }
	}
	return &runningSender{
		proc:       proc,
		metricsURL: "http://" + addr + "/metrics",
		added:      map[string]string{"job": "e2e", "instance": target},
		idle: func(m harness.Metrics) bool {
			return m.Sum(v+"pending_data_bytes", nil) == 0 && m.Sum(v+"pending_inmemory_blocks", nil) == 0
		},
		sent: func(m harness.Metrics) float64 { return m.Sum(v+"rows_pushed_after_relabel_total", nil) },
		check: func(t *testing.T, m harness.Metrics) {
			expectPresent(t, "vmagent", m, v+"packets_dropped_total", v+"requests_total", v+"rows_pushed_after_relabel_total")
			expectZero(t, "vmagent", m, v+"packets_dropped_total", v+"samples_dropped_total", v+"push_failures_total",
				v+"errors_total", v+"relabel_metrics_dropped_total")
			other := m.Sum(v+"requests_total", func(ls map[string]string) bool {
				return ls["status_code"] != "2XX" && ls["status_code"] != "415"
			})
			if other != 0 {
				t.Errorf("vmagent: %v requests answered neither 2xx nor 415", other)
			}
			// Every retry is the same block sent again as remote-write
			// 1.0 after a 415: none for any other reason.
			refused, retried := m.Sum(v+"requests_total", status("415")), m.Sum(v+"retries_count_total", nil)
			t.Logf("vmagent: %v requests answered 415 (its own protocol refused), %v retried", refused, retried)
			if refused == 0 {
				t.Errorf("vmagent never offered its own protocol: no 415 answers")
			}
			if retried != refused {
				t.Errorf("vmagent retried %v times for %v 415 answers", retried, refused)
			}
			if m.Sum(v+"requests_total", status("2XX")) == 0 {
				t.Errorf("vmagent: no request succeeded")
			}
		},
	}
}

// otelcolSender runs the OpenTelemetry Collector of tools/otelcol: its
// prometheus receiver scrapes the text target and its
// prometheusremotewrite exporter writes what it translated.
func otelcolSender(t *testing.T, rw remoteWrite, target string) *runningSender {
	bin := harness.Tool(t, "otelcol")
	dir := t.TempDir()
	telemetry := harness.FreePort(t)
	cfg := filepath.Join(dir, "otelcol.yml")
	writeFile(t, cfg, fmt.Sprintf(`receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: e2e
          scrape_interval: 1s
          scrape_timeout: 1s
          static_configs:
            - targets: ['%s']
processors:
  batch:
    timeout: 200ms
exporters:
  prometheusremotewrite:
    endpoint: %s
    headers:
      THANOS-TENANT: %s
    remote_write_queue:
      num_consumers: 1
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 1s
service:
  telemetry:
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %d
  pipelines:
    metrics:
      receivers: [prometheus]
      processors: [batch]
      exporters: [prometheusremotewrite]
`, target, rw.url, rw.tenant, telemetry))
	proc := harness.StartProcess(t, bin, []string{"--config=" + cfg}, nil)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", telemetry)
	proc.WaitHTTP(metricsURL, senderTimeout)
	// Counter families are named without _total here. The collector
	// creates its failure counters at the first failure, so only those of
	// successes can be required.
	const e = "otelcol_exporter_"
	return &runningSender{
		proc:       proc,
		metricsURL: metricsURL,
		// The exporter names the receiver as the series' scope.
		added: map[string]string{
			"job": "e2e", "instance": target,
			"otel_scope_name":    "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver",
			"otel_scope_version": otelcolVersion(t, bin),
		},
		idle: func(m harness.Metrics) bool {
			return m.Sum(e+"queue_size", nil) == 0 && m.Sum(e+"in_flight_requests", nil) == 0
		},
		sent: func(m harness.Metrics) float64 { return m.Sum(e+"sent_metric_points", nil) },
		// The exporter makes it of the resource, not of a metric point.
		uncounted: []string{"target_info"},
		check: func(t *testing.T, m harness.Metrics) {
			expectPresent(t, "otelcol", m, e+"sent_metric_points", "otelcol_receiver_accepted_metric_points")
			expectZero(t, "otelcol", m, e+"send_failed_metric_points", e+"enqueue_failed_metric_points",
				"otelcol_receiver_refused_metric_points", "otelcol_receiver_failed_metric_points")
		},
		extra: func(t *testing.T, where string, got tenantData) {
			checkTargetInfo(t, where, got, target)
		},
	}
}

// otelcolVersion is the release the collector says it is.
func otelcolVersion(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		t.Fatalf("%s --version printed nothing", bin)
	}
	return f[len(f)-1]
}

// checkTargetInfo: the exporter turns the scrape's resource into one
// target_info series: service.name and service.instance.id become job and
// instance, as on the target's series, and the other attributes labels.
func checkTargetInfo(t *testing.T, where string, got tenantData, target string) {
	t.Helper()
	_, port, _ := strings.Cut(target, ":")
	key := labels.FromStrings(model.MetricNameLabel, "target_info", "job", "e2e", "instance", target, "server_port", port, "url_scheme", "http").String()
	samples, ok := got[key]
	if !ok {
		t.Errorf("%s: no series %s; the tenant has %v", where, key, got.names())
		return
	}
	for ts, v := range samples {
		if v != 1 && !value.IsStaleNaN(v) {
			t.Errorf("%s: %s at %d is %v, want 1", where, key, ts, v)
		}
	}
}
