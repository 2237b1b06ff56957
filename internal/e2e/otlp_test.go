package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/stratametrics/strata/internal/harness"
)

// OTLP/HTTP from real senders. TestOTLPSDKMatchesPrometheus exports each
// collection of the OpenTelemetry Go SDK to a real Prometheus and to a
// Strata cluster, and holds Strata to what Prometheus made of it: Strata
// claims Prometheus' translation, so Prometheus run as users run it is
// the reference, rather than expectations written by hand that could
// share a misreading of the translator. TestOTLPCollector sends through a
// real Collector's OTLP/HTTP exporter, configured as the README says,
// across an outage of every block builder.

// otlpPath is where Prometheus and Strata both take OTLP metrics.
const otlpPath = "/api/v1/otlp/v1/metrics"

// otlpPromoted is promoted to a label of every series on both sides, so
// that the comparison covers a translation setting given the Prometheus
// way (its otlp: block) and the Strata way (STRATA_OTLP_*).
const otlpPromoted = "deployment.environment.name"

// otlpRounds is how many collections the SDK test sends: more than one,
// so that cumulative points follow each other in each series.
const otlpRounds = 3

func TestOTLPSDKMatchesPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	promBin := harness.Tool(t, "prometheus")
	s3 := harness.StartS3(t)
	var bbs []*harness.Component
	// The block builders translate what is sent to them directly, with
	// the same settings as the router.
	promote := "STRATA_OTLP_PROMOTE_RESOURCE_ATTRIBUTES=" + otlpPromoted
	for i := 0; i < 3; i++ {
		bbs = append(bbs, harness.StartBlockBuilder(t, fmt.Sprintf("blockbuilder-%d", i), s3.Env(), promote))
	}
	// RF=3 puts every series on every block builder, so each one's query
	// API must answer exactly what Prometheus answers.
	router := harness.StartRouter(t, bbs, 3, promote)
	prom := startOTLPPrometheus(t, promBin)
	const tenant = "otel-sdk"

	ctx := context.Background()
	toProm := newOTLPExporter(t, "http://"+prom.Addr+otlpPath, nil, otlpmetrichttp.NoCompression)
	toStrata := newOTLPExporter(t, "http://"+router.Addr+otlpPath, map[string]string{"THANOS-TENANT": tenant}, otlpmetrichttp.GzipCompression)
	// A block builder takes OTLP itself too, appending the translated
	// series without a remote-write body between: another tenant, for the
	// same comparison.
	const direct = tenant + "-direct"
	toBlockBuilder := newOTLPExporter(t, "http://"+bbs[0].Addr+otlpPath, map[string]string{"THANOS-TENANT": direct}, otlpmetrichttp.NoCompression)
	app := newSDKApp(t)
	for round := 1; round <= otlpRounds; round++ {
		rm := app.round(ctx, round)
		// One collection exported twice: both receivers get the same
		// points with the same timestamps.
		if err := toProm.Export(ctx, rm); err != nil {
			t.Fatalf("round %d: export to Prometheus: %v", round, err)
		}
		if err := toStrata.Export(ctx, rm); err != nil {
			t.Fatalf("round %d: export to Strata (a partial success is an error too): %v", round, err)
		}
		if err := toBlockBuilder.Export(ctx, rm); err != nil {
			t.Fatalf("round %d: export to a block builder (a partial success is an error too): %v", round, err)
		}
	}

	want := readOTLPStore(t, prom, tenant)
	want.checkCoverage(t)
	t.Logf("Prometheus holds %d series, %d samples, %d exemplars", len(want.series), want.samples.count(), len(want.exemplars))
	for i, bb := range bbs {
		got := readOTLPStore(t, bb, tenant)
		where := fmt.Sprintf("block builder %d", i)
		diffLists(t, where+" /api/v1/series", want.series, got.series)
		diffStores(t, where+" samples", want.samples, got.samples)
		diffLists(t, where+" exemplars", want.exemplars, got.exemplars)
	}

	got := readOTLPStore(t, bbs[0], direct)
	diffLists(t, "block builder 0, written directly, /api/v1/series", want.series, got.series)
	diffStores(t, "block builder 0, written directly, samples", want.samples, got.samples)
	diffLists(t, "block builder 0, written directly, exemplars", want.exemplars, got.exemplars)

	// The bucket is what stays: the same series and samples, read from
	// the uploaded blocks with the TSDB's own block reader.
	bkt := flushedBucket(t, s3, bbs)
	stored := harness.ReadBucket(t, bkt, "tenant_id", "receive_replica")
	diffStores(t, "bucket", want.samples, bucketOTLPStore(stored, tenant))
	diffStores(t, "bucket, written directly", want.samples, bucketOTLPStore(stored, direct))
}

// startOTLPPrometheus runs Prometheus as an OTLP receiver, with the
// promotion the Strata side is given and exemplar storage (without which
// it keeps none to compare). Native histograms need no flag in 3.x.
func startOTLPPrometheus(t *testing.T, bin string) *harness.Component {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	writeFile(t, cfg, fmt.Sprintf("otlp:\n  promote_resource_attributes: [%s]\n", otlpPromoted))
	// A Component, so that queryAPI reads Prometheus as it reads a block
	// builder (Prometheus ignores the tenant header).
	c := &harness.Component{Addr: harness.FreeAddr(t)}
	c.Process = harness.StartProcess(t, bin, []string{
		"--config.file=" + cfg,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + c.Addr,
		"--web.enable-otlp-receiver",
		"--enable-feature=exemplar-storage",
	}, nil)
	c.WaitHTTP("http://"+c.Addr+"/-/ready", senderTimeout)
	return c
}

// newOTLPExporter is the SDK's OTLP/HTTP exporter to url. Its retries are
// off: every answer but a clean 200 fails the export, and so the test.
func newOTLPExporter(t *testing.T, url string, headers map[string]string, c otlpmetrichttp.Compression) *otlpmetrichttp.Exporter {
	t.Helper()
	exp, err := otlpmetrichttp.New(context.Background(),
		otlpmetrichttp.WithEndpointURL(url),
		otlpmetrichttp.WithHeaders(headers),
		otlpmetrichttp.WithCompression(c),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

// sdkApp is an instrumented application: a meter provider with a
// manual reader, and one instrument of every kind the SDK has.
type sdkApp struct {
	t        *testing.T
	reader   *sdkmetric.ManualReader
	last     int64 // milliseconds of the last collection
	n        int   // the round
	cpuTime  float64
	requests metric.Int64Counter
	bytes    metric.Float64Counter
	queue    metric.Int64UpDownCounter
	balance  metric.Float64UpDownCounter
	util     metric.Float64Gauge
	temp     metric.Int64Gauge
	duration metric.Float64Histogram
	latency  metric.Float64Histogram
	payload  metric.Int64Histogram
}

func newSDKApp(t *testing.T) *sdkApp {
	t.Helper()
	a := &sdkApp{t: t, reader: sdkmetric.NewManualReader()}
	res := resource.NewSchemaless(
		attribute.String("service.name", "checkout"),
		attribute.String("service.namespace", "shop"),
		attribute.String("service.instance.id", "checkout-1"),
		attribute.String(otlpPromoted, "e2e"),
		attribute.String("host.name", "node-7"),
		attribute.String("k8s.pod.name", "checkout-5d8f"),
		attribute.Int("process.pid", 4242),
	)
	exponential := sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(a.reader),
		// The default, made explicit so that no OTEL_METRICS_EXEMPLAR_FILTER
		// of the environment changes what is sent.
		sdkmetric.WithExemplarFilter(exemplar.TraceBasedFilter),
		sdkmetric.WithView(
			sdkmetric.NewView(sdkmetric.Instrument{Name: "rpc.server.latency"}, exponential),
			sdkmetric.NewView(sdkmetric.Instrument{Name: "payload.size"}, exponential),
		),
	)
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m := mp.Meter("strata/e2e/otlp", metric.WithInstrumentationVersion("1.2.3"))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var err error
	a.requests, err = m.Int64Counter("http.server.requests", metric.WithUnit("{request}"), metric.WithDescription("Requests served."))
	must(err)
	a.bytes, err = m.Float64Counter("data.transferred", metric.WithUnit("By"), metric.WithDescription("Bytes sent."))
	must(err)
	a.queue, err = m.Int64UpDownCounter("queue.items", metric.WithUnit("{item}"), metric.WithDescription("Items waiting."))
	must(err)
	a.balance, err = m.Float64UpDownCounter("account.balance", metric.WithUnit("EUR"))
	must(err)
	a.util, err = m.Float64Gauge("cpu.utilization", metric.WithUnit("1"), metric.WithDescription("Share of a core in use."))
	must(err)
	a.temp, err = m.Int64Gauge("room.temperature", metric.WithUnit("Cel"))
	must(err)
	a.duration, err = m.Float64Histogram("http.server.duration", metric.WithUnit("ms"),
		metric.WithExplicitBucketBoundaries(5, 10, 25, 50, 100, 250))
	must(err)
	a.latency, err = m.Float64Histogram("rpc.server.latency", metric.WithUnit("s"))
	must(err)
	a.payload, err = m.Int64Histogram("payload.size", metric.WithUnit("By"))
	must(err)
	_, err = m.Float64ObservableCounter("process.cpu.time", metric.WithUnit("s"),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
			o.Observe(a.cpuTime, metric.WithAttributes(attribute.String("cpu.mode", "user")))
			o.Observe(a.cpuTime/4, metric.WithAttributes(attribute.String("cpu.mode", "system")))
			return nil
		}))
	must(err)
	_, err = m.Int64ObservableGauge("process.threads", metric.WithUnit("{thread}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(8 + a.n))
			return nil
		}))
	must(err)
	return a
}

// round records round n's measurements, under a sampled span so that the
// SDK keeps exemplars, and collects them once.
func (a *sdkApp) round(ctx context.Context, n int) *metricdata.ResourceMetrics {
	a.t.Helper()
	var tid trace.TraceID
	var sid trace.SpanID
	tid[15], sid[7] = byte(n), byte(n)
	tid[0], sid[0] = 0xe2, 0xe2
	ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled,
	}))
	get := metric.WithAttributes(attribute.String("http.request.method", "GET"), attribute.Int("http.response.status_code", 200))
	post := metric.WithAttributes(attribute.String("http.request.method", "POST"), attribute.Int("http.response.status_code", 503))
	// Attribute names the translator has to rewrite: dots, a leading
	// underscore, a run of separators.
	odd := metric.WithAttributes(attribute.String("net.peer.name", "db-1"), attribute.String("_shard", "s1"), attribute.String("client..id", "c-9"))

	a.requests.Add(ctx, int64(3*n), get)
	a.requests.Add(ctx, int64(n), post)
	a.requests.Add(ctx, 1, odd)
	a.bytes.Add(ctx, 1024.5*float64(n))
	a.queue.Add(ctx, 5)
	a.queue.Add(ctx, -2)
	a.balance.Add(ctx, -12.25*float64(n))
	a.util.Record(ctx, 0.25*float64(n), metric.WithAttributes(attribute.Int("cpu", 0)))
	a.util.Record(ctx, 0.125, metric.WithAttributes(attribute.Int("cpu", 1)))
	a.temp.Record(ctx, int64(20+n), metric.WithAttributes(attribute.String("room", "kitchen")))
	for _, v := range []float64{3, 7, 30, 120, 400} {
		a.duration.Record(ctx, v*float64(n), get)
	}
	for _, v := range []float64{0.0012, 0.02, 0.5, 1.5, 0} {
		a.latency.Record(ctx, v*float64(n), metric.WithAttributes(attribute.String("rpc.method", "Pay")))
	}
	for _, v := range []int64{100, 2000, 65536} {
		a.payload.Record(ctx, v*int64(n))
	}
	a.cpuTime += 1.5
	a.n = n

	// Points of two collections in the same millisecond would be one
	// sample twice, with different values. And a point in the millisecond
	// of its start time (the first measurement, in round 1) would hide
	// what a receiver makes of start times, which in a long-running
	// application always come before the point.
	for after := max(a.last, time.Now().UnixMilli()); time.Now().UnixMilli() <= after; {
		time.Sleep(time.Millisecond)
	}
	var rm metricdata.ResourceMetrics
	if err := a.reader.Collect(ctx, &rm); err != nil {
		a.t.Fatalf("collect: %v", err)
	}
	a.last = time.Now().UnixMilli()
	return &rm
}

// --- what a receiver holds, as its Prometheus query API answers

// otlpStore is what one receiver holds: its series (as /api/v1/series
// lists them), every sample by series and timestamp as a comparable text
// (a float's value, a histogram's count, sum and buckets), and its
// exemplars, one text each.
type otlpStore struct {
	series    []string
	samples   sampleTexts
	exemplars []string
	// labels are those of each series of samples.
	labels map[string]labels.Labels
}

// sampleTexts: series -> timestamp (ms) -> floatText or histogramText.
type sampleTexts map[string]map[int64]string

func (s sampleTexts) count() int {
	n := 0
	for _, m := range s {
		n += len(m)
	}
	return n
}

func (s sampleTexts) add(series string, ts int64, v string) {
	if s[series] == nil {
		s[series] = map[int64]string{}
	}
	s[series][ts] = v
}

// otlpStrataLabels are Strata's own labels, which a comparison with
// Prometheus leaves out wherever they would show.
var otlpStrataLabels = []string{"tenant_id", "receive_replica"}

func otlpLabels(m map[string]string) labels.Labels {
	for _, l := range otlpStrataLabels {
		delete(m, l)
	}
	return labels.FromMap(m)
}

func otlpSeriesKey(m map[string]string) string { return otlpLabels(m).String() }

// readOTLPStore reads everything c (a Prometheus or a block builder)
// holds for tenant through its Prometheus HTTP API.
func readOTLPStore(t *testing.T, c *harness.Component, tenant string) otlpStore {
	t.Helper()
	end := strconv.FormatInt(time.Now().Unix()+60, 10)
	var out otlpStore
	var series []map[string]string
	queryAPI(t, c, tenant, "/api/v1/series", url.Values{"match[]": {`{__name__=~".+"}`}, "start": {"0"}, "end": {end}}, &series)
	for _, s := range series {
		out.series = append(out.series, otlpSeriesKey(s))
	}
	slices.Sort(out.series)

	var res struct {
		Result []struct {
			Metric     map[string]string    `json:"metric"`
			Values     [][2]any             `json:"values"`
			Histograms [][2]json.RawMessage `json:"histograms"`
		} `json:"result"`
	}
	queryAPI(t, c, tenant, "/api/v1/query", url.Values{"query": {`{__name__=~".+"}[1h]`}, "time": {end}}, &res)
	out.samples, out.labels = sampleTexts{}, map[string]labels.Labels{}
	for _, s := range res.Result {
		ls := otlpLabels(s.Metric)
		key := ls.String()
		out.labels[key] = ls
		for _, p := range s.Values {
			ts, v, err := parsePoint(p[0], p[1])
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			out.samples.add(key, ts, floatText(v))
		}
		for _, p := range s.Histograms {
			var sec float64
			if err := json.Unmarshal(p[0], &sec); err != nil {
				t.Fatalf("%s: histogram timestamp %s: %v", key, p[0], err)
			}
			out.samples.add(key, int64(math.Round(sec*1000)), apiHistogramText(t, p[1]))
		}
	}

	var exs []struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []struct {
			Labels    map[string]string `json:"labels"`
			Value     string            `json:"value"`
			Timestamp float64           `json:"timestamp"`
		} `json:"exemplars"`
	}
	queryAPI(t, c, tenant, "/api/v1/query_exemplars", url.Values{"query": {`{__name__=~".+"}`}, "start": {"0"}, "end": {end}}, &exs)
	for _, s := range exs {
		key := otlpSeriesKey(s.SeriesLabels)
		for _, e := range s.Exemplars {
			out.exemplars = append(out.exemplars, fmt.Sprintf("%s %s %s @%d", key, labels.FromMap(e.Labels), e.Value, int64(math.Round(e.Timestamp*1000))))
		}
	}
	slices.Sort(out.exemplars)
	return out
}

func floatText(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// apiHistogramText is a native histogram of the query API's JSON
// (strings for numbers, buckets as [boundary rule, lower, upper, count])
// as histogramText writes it.
func apiHistogramText(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var h struct {
		Count   string   `json:"count"`
		Sum     string   `json:"sum"`
		Buckets [][4]any `json:"buckets"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("histogram %s: %v", raw, err)
	}
	num := func(v any) float64 {
		s, _ := v.(string)
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("histogram %s: number %v: %v", raw, v, err)
		}
		return f
	}
	var b strings.Builder
	fmt.Fprintf(&b, "histogram count=%s sum=%s", floatText(num(h.Count)), floatText(num(h.Sum)))
	for _, bk := range h.Buckets {
		rule, _ := bk[0].(float64)
		fmt.Fprintf(&b, " %d:%s,%s=%s", int(rule), floatText(num(bk[1])), floatText(num(bk[2])), floatText(num(bk[3])))
	}
	return b.String()
}

// histogramText writes a histogram of a block the way the query API
// shows it: count, sum and the buckets that hold anything.
func histogramText(h harness.Histogram) string {
	fh := h.FH
	if h.H != nil {
		fh = h.H.ToFloat(nil)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "histogram count=%s sum=%s", floatText(fh.Count), floatText(fh.Sum))
	it := fh.AllBucketIterator()
	for it.Next() {
		bk := it.At()
		if bk.Count == 0 {
			continue
		}
		fmt.Fprintf(&b, " %d:%s,%s=%s", boundaryRule(bk.LowerInclusive, bk.UpperInclusive), floatText(bk.Lower), floatText(bk.Upper), floatText(bk.Count))
	}
	return b.String()
}

// boundaryRule is the query API's code for a bucket's closed ends.
func boundaryRule(lower, upper bool) int {
	switch {
	case lower && upper:
		return 3
	case lower:
		return 1
	case upper:
		return 0
	}
	return 2
}

// bucketOTLPStore is a tenant's samples in the bucket as sampleTexts.
func bucketOTLPStore(c harness.BucketContents, tenant string) sampleTexts {
	out := sampleTexts{}
	for key, m := range c.Samples[tenant] {
		for ts, v := range m {
			out.add(key, ts, floatText(v))
		}
	}
	for key, m := range c.Histograms[tenant] {
		for ts, h := range m {
			out.add(key, ts, histogramText(h))
		}
	}
	return out
}

// checkCoverage fails the test unless the reference holds every kind of
// point the SDK app sends, so that two empty stores cannot pass as equal.
func (s otlpStore) checkCoverage(t *testing.T) {
	t.Helper()
	names := map[string]bool{}
	histograms := map[string]bool{}
	for key, m := range s.samples {
		ls := s.labels[key]
		name := ls.Get(model.MetricNameLabel)
		names[name] = true
		for _, v := range m {
			if strings.HasPrefix(v, "histogram ") {
				histograms[name] = true
			}
		}
		if name != "target_info" && (ls.Get("job") != "shop/checkout" || ls.Get("instance") != "checkout-1" || ls.Get(strings.ReplaceAll(otlpPromoted, ".", "_")) != "e2e") {
			t.Errorf("Prometheus: %s lacks the labels of its resource", key)
		}
		// target_info has a sample at the earliest and the latest point of
		// each request, which the SDK stamps instrument by instrument.
		if n := len(m); n != otlpRounds && (name != "target_info" || n < otlpRounds) {
			t.Errorf("Prometheus: %s has %d samples, want one per round (%d)", key, n, otlpRounds)
		}
	}
	for _, name := range []string{
		"http_server_requests_total", "data_transferred_bytes_total", "queue_items", "account_balance_EUR",
		"cpu_utilization_ratio", "room_temperature_celsius", "process_cpu_time_seconds_total", "process_threads",
		"http_server_duration_milliseconds_bucket", "http_server_duration_milliseconds_sum", "http_server_duration_milliseconds_count",
		"rpc_server_latency_seconds", "payload_size_bytes", "target_info",
	} {
		if !names[name] {
			t.Errorf("Prometheus holds no %s; it has %v", name, slices.Sorted(maps.Keys(names)))
		}
	}
	for _, name := range []string{"rpc_server_latency_seconds", "payload_size_bytes"} {
		if !histograms[name] {
			t.Errorf("Prometheus holds %s without native histograms", name)
		}
	}
	if len(s.exemplars) == 0 {
		t.Errorf("Prometheus holds no exemplars")
	}
	if t.Failed() {
		t.FailNow()
	}
}

// diffLists fails the test with what is in one sorted list only.
func diffLists(t *testing.T, where string, want, got []string) {
	t.Helper()
	var missing, extra []string
	for _, w := range want {
		if _, ok := slices.BinarySearch(got, w); !ok {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if _, ok := slices.BinarySearch(want, g); !ok {
			extra = append(extra, g)
		}
	}
	if len(missing)+len(extra) > 0 {
		t.Errorf("%s differs from Prometheus: %d of Prometheus' %d missing, %d not in Prometheus\n  only in Prometheus:\n    %s\n  only in Strata:\n    %s",
			where, len(missing), len(want), len(extra), strings.Join(missing, "\n    "), strings.Join(extra, "\n    "))
	}
}

// diffStores fails the test with every series or sample that differs.
func diffStores(t *testing.T, where string, want, got sampleTexts) {
	t.Helper()
	var diffs []string
	for _, key := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[key]
		if !ok {
			diffs = append(diffs, "- "+key+" (series only in Prometheus)")
			continue
		}
		for _, ts := range slices.Sorted(maps.Keys(want[key])) {
			switch gv, ok := g[ts]; {
			case !ok:
				diffs = append(diffs, fmt.Sprintf("- %s @%d %s (sample only in Prometheus)", key, ts, want[key][ts]))
			case gv != want[key][ts]:
				diffs = append(diffs, fmt.Sprintf("~ %s @%d\n      Prometheus: %s\n      Strata:     %s", key, ts, want[key][ts], gv))
			}
		}
		for _, ts := range slices.Sorted(maps.Keys(g)) {
			if _, ok := want[key][ts]; !ok {
				diffs = append(diffs, fmt.Sprintf("+ %s @%d %s (sample only in Strata)", key, ts, g[ts]))
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[key]; !ok {
			diffs = append(diffs, "+ "+key+" (series only in Strata)")
		}
	}
	if len(diffs) > 0 {
		t.Errorf("%s: %d differences from Prometheus (%d series there, %d here):\n  %s", where, len(diffs), len(want), len(got), strings.Join(diffs, "\n  "))
	}
}

// --- the Collector

// The router and tenant the README's Collector configuration names,
// which the test replaces by its own.
const readmeTenant, readmeRouter = "team-a", "http://127.0.0.1:19291"

func TestOTLPCollector(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	bin := harness.Tool(t, "otelcol")
	s3 := harness.StartS3(t)
	var bbs []*harness.Component
	for i := 0; i < 3; i++ {
		bbs = append(bbs, harness.StartBlockBuilder(t, fmt.Sprintf("blockbuilder-%d", i), s3.Env()))
	}
	router := harness.StartRouter(t, bbs, 3)
	const tenant = "otel-collector"
	col := startOTLPCollector(t, bin, "http://"+router.Addr, tenant)
	feed := newFeeder(t, "http://"+col.receiver+"/v1/metrics")

	stop := make(chan struct{})
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		for n := 1; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			feed.round(n)
			time.Sleep(200 * time.Millisecond)
		}
	}()
	const e = "otelcol_exporter_"
	metrics := func() harness.Metrics { return readMetrics(t, col.metricsURL) }
	waitFor(t, senderTimeout, func() bool { return metrics().Sum(e+"sent_metric_points", nil) > 0 })

	// Every block builder down at once: the router can write nowhere and
	// answers 503, which the exporter retries, queueing what keeps coming.
	var wg sync.WaitGroup
	for _, bb := range bbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := bb.Stop(); err != nil {
				t.Errorf("block builder did not stop cleanly: %v", err)
			}
		}()
	}
	wg.Wait()
	unavailable := func() float64 {
		return readMetrics(t, "http://"+router.Addr+"/metrics").Sum("strata_router_requests_total", func(ls map[string]string) bool {
			return ls["tenant"] == tenant && ls["code"] == "503"
		})
	}
	waitFor(t, senderTimeout, func() bool { return unavailable() > 0 })
	roundsBefore := feed.rounds()
	time.Sleep(3 * time.Second)
	for _, bb := range bbs {
		bb.Start()
		bb.WaitReady(senderTimeout)
	}
	t.Logf("block builders back after %d rounds fed during the outage; the router answered %v times 503", feed.rounds()-roundsBefore, unavailable())
	restarted := feed.rounds()
	waitFor(t, senderTimeout, func() bool { return feed.rounds() >= restarted+10 })
	close(stop)
	<-fed

	// Settled: every point the receiver took has been sent or given up on.
	var m harness.Metrics
	waitFor(t, senderTimeout, func() bool {
		m = metrics()
		accepted := m.Sum("otelcol_receiver_accepted_metric_points", nil)
		return accepted == float64(feed.points()) &&
			m.Sum(e+"sent_metric_points", nil)+m.Sum(e+"send_failed_metric_points", nil)+m.Sum(e+"enqueue_failed_metric_points", nil) == accepted
	})
	expectPresent(t, "otelcol", m, e+"sent_metric_points", "otelcol_receiver_accepted_metric_points")
	expectZero(t, "otelcol", m, e+"send_failed_metric_points", e+"enqueue_failed_metric_points",
		"otelcol_receiver_refused_metric_points", "otelcol_receiver_failed_metric_points")
	t.Logf("the feeder exported %d points in %d rounds; the collector sent %v", feed.points(), feed.rounds(), m.Sum(e+"sent_metric_points", nil))

	// queryTenant asks at the current second, which must be past the
	// newest point for the query to answer it.
	waitFor(t, senderTimeout, func() bool { return time.Now().Unix()*1000 > feed.newest() })

	// Nothing lost: each point is on a quorum of block builders (the
	// one that was down when a write went by stays without it).
	copies := map[string]map[int64]int{}
	var union []tenantData
	for _, bb := range bbs {
		got := queryTenant(t, bb, tenant)
		union = append(union, got)
		for key, s := range got {
			if copies[key] == nil {
				copies[key] = map[int64]int{}
			}
			for ts := range s {
				copies[key][ts]++
			}
		}
	}
	var lost []string
	for key, s := range feed.expected() {
		for ts, v := range s {
			n := copies[key][ts]
			if n < 2 {
				lost = append(lost, fmt.Sprintf("%s @%d=%v on %d block builders", key, ts, v, n))
				continue
			}
			for i, got := range union {
				if gv, ok := got[key][ts]; ok && gv != v {
					lost = append(lost, fmt.Sprintf("%s @%d: block builder %d holds %v, the feeder sent %v", key, ts, i, gv, v))
				}
			}
		}
	}
	slices.Sort(lost)
	if len(lost) > 0 {
		t.Errorf("%d points not on a quorum or wrong, of %d sent:\n  %s", len(lost), feed.points(), strings.Join(lost, "\n  "))
	}
	info := labels.FromStrings(model.MetricNameLabel, "target_info", "job", "e2e/feeder", "instance", "feeder-1", "host_name", "node-3").String()
	if copies[info] == nil {
		t.Errorf("no %s", info)
	}
}

// otelCollector is a running Collector: its OTLP/HTTP receiver address
// and its own metrics.
type otelCollector struct {
	receiver, metricsURL string
}

// startOTLPCollector runs the Collector with the README's configuration
// (its exporter writing to routerURL as tenant) and the test's own
// receiver address and telemetry, given as a second file, which the
// Collector merges into the first.
func startOTLPCollector(t *testing.T, bin, routerURL, tenant string) otelCollector {
	t.Helper()
	readme := readmeCollectorConfig(t)
	cfg := strings.NewReplacer(readmeRouter, routerURL, readmeTenant, tenant).Replace(readme)
	dir := t.TempDir()
	main, local := filepath.Join(dir, "otelcol.yml"), filepath.Join(dir, "local.yml")
	writeFile(t, main, cfg)
	c := otelCollector{receiver: harness.FreeAddr(t)}
	telemetry := harness.FreePort(t)
	writeFile(t, local, fmt.Sprintf(`receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
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
`, c.receiver, telemetry))
	proc := harness.StartProcess(t, bin, []string{"--config=" + main, "--config=" + local}, nil)
	c.metricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", telemetry)
	proc.WaitHTTP(c.metricsURL, senderTimeout)
	waitFor(t, senderTimeout, func() bool {
		conn, err := net.Dial("tcp", c.receiver)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	return c
}

// readmeCollectorConfig is the Collector configuration of the README's
// OpenTelemetry section: the test runs what users are told to run.
func readmeCollectorConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## OpenTelemetry\n")
	if ok {
		section, _, _ = strings.Cut(section, "\n## ")
	}
	for _, block := range strings.Split(section, "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if strings.Contains(block, "otlp_http:") {
			for _, s := range []string{readmeRouter, readmeTenant} {
				if !strings.Contains(block, s) {
					t.Fatalf("README's Collector configuration does not name %s, which the test replaces:\n%s", s, block)
				}
			}
			return block
		}
	}
	t.Fatal("README.md has no Collector configuration (a yaml block with otlp_http:) in its OpenTelemetry section")
	return ""
}

// feeder is an application sending to the Collector through the SDK:
// round n sets a gauge to n and adds 1 to a counter, for each of five
// workers, and exports; it remembers every point as the stored series
// it must become.
type feeder struct {
	t      *testing.T
	reader *sdkmetric.ManualReader
	exp    *otlpmetrichttp.Exporter
	gauge  metric.Int64Gauge
	count  metric.Int64Counter

	// last is the millisecond of the last collection, of the feeding
	// goroutine only.
	last int64

	mu   sync.Mutex
	want tenantData
	n, p int
	top  int64 // the newest point's timestamp
}

func newFeeder(t *testing.T, url string) *feeder {
	t.Helper()
	f := &feeder{t: t, reader: sdkmetric.NewManualReader(), want: tenantData{}}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(f.reader), sdkmetric.WithResource(resource.NewSchemaless(
		attribute.String("service.name", "feeder"),
		attribute.String("service.namespace", "e2e"),
		attribute.String("service.instance.id", "feeder-1"),
		attribute.String("host.name", "node-3"),
	)))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m := mp.Meter("strata/e2e/feeder")
	var err error
	if f.gauge, err = m.Int64Gauge("e2e.round"); err != nil {
		t.Fatal(err)
	}
	if f.count, err = m.Int64Counter("e2e.rounds", metric.WithUnit("{round}")); err != nil {
		t.Fatal(err)
	}
	f.exp = newOTLPExporter(t, url, nil, otlpmetrichttp.NoCompression)
	return f
}

// round runs on the feeding goroutine: it reports failures with Errorf.
func (f *feeder) round(n int) {
	ctx := context.Background()
	for w := range 5 {
		attrs := metric.WithAttributes(attribute.String("worker", fmt.Sprintf("w%d", w)))
		f.gauge.Record(ctx, int64(n), attrs)
		f.count.Add(ctx, 1, attrs)
	}
	for time.Now().UnixMilli() <= f.last {
		time.Sleep(time.Millisecond)
	}
	var rm metricdata.ResourceMetrics
	if err := f.reader.Collect(ctx, &rm); err != nil {
		f.t.Errorf("collect: %v", err)
		return
	}
	f.last = time.Now().UnixMilli()
	if err := f.exp.Export(ctx, &rm); err != nil {
		f.t.Errorf("round %d: export to the collector: %v", n, err)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n = n
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					f.add("e2e_round", p.Attributes, p.Time, p.Value)
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					f.add("e2e_rounds_total", p.Attributes, p.Time, p.Value)
				}
			default:
				f.t.Errorf("unexpected metric %s: %T", m.Name, m.Data)
			}
		}
	}
}

func (f *feeder) add(name string, attrs attribute.Set, at time.Time, v int64) {
	worker, _ := attrs.Value("worker")
	key := labels.FromStrings(model.MetricNameLabel, name, "job", "e2e/feeder", "instance", "feeder-1", "worker", worker.AsString()).String()
	if f.want[key] == nil {
		f.want[key] = map[int64]float64{}
	}
	f.want[key][at.UnixMilli()] = float64(v)
	f.p++
	f.top = max(f.top, at.UnixMilli())
}

func (f *feeder) rounds() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *feeder) points() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.p
}

// newest is the timestamp (ms) of the newest point exported.
func (f *feeder) newest() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.top
}

func (f *feeder) expected() tenantData {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.want
}
