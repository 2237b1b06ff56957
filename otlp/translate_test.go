package otlp

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/model/value"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/validation"
	"github.com/stratametrics/strata/writeerr"
)

// base is the time of the test points: whole milliseconds, so that
// nanoseconds translate exactly.
var base = time.UnixMilli(1_700_000_000_000)

func at(d time.Duration) pcommon.Timestamp { return pcommon.NewTimestampFromTime(base.Add(d)) }

func millis(d time.Duration) int64 { return base.Add(d).UnixMilli() }

// gotSeries is one series of a translated request, decoded.
type gotSeries struct {
	samples    []remotewrite.Sample
	histograms []*histogram.Histogram
	floatHists []*histogram.FloatHistogram
	histTimes  []int64
	exemplars  []exemplar.Exemplar
	meta       metadata.Metadata
}

// translated parses a translated request as the router and the block
// builders do, checks every series against the default limits as they
// would, and returns its series by their labels.
func translated(t *testing.T, body []byte) map[string]*gotSeries {
	t.Helper()
	var r remotewrite.Request
	if err := r.Parse(remotewrite.V2, body); err != nil {
		t.Fatalf("the translated request does not parse: %v", err)
	}
	limits := validation.DefaultLimits()
	out := map[string]*gotSeries{}
	var s remotewrite.Series
	var b labels.ScratchBuilder
	for i := range r.NumSeries() {
		if err := r.Series(i, &s); err != nil {
			t.Fatalf("series %d: %v", i, err)
		}
		if err := limits.CheckSeries(remotewrite.V2, &s, millis(time.Hour)); err != nil {
			t.Fatalf("series %d would be refused: %v", i, err)
		}
		key := remotewrite.BuildLabels(&b, s.Labels).String()
		if out[key] != nil {
			t.Fatalf("series %s twice in one request", key)
		}
		g := &gotSeries{samples: slices.Clone(s.Samples), meta: s.Metadata.ToMetadata()}
		for _, h := range s.Histograms {
			ih, fh, err := remotewrite.DecodeHistogram(h)
			if err != nil {
				t.Fatalf("series %s: %v", key, err)
			}
			g.histograms, g.floatHists = append(g.histograms, ih), append(g.floatHists, fh)
			g.histTimes = append(g.histTimes, h.Timestamp)
		}
		for _, raw := range s.Exemplars {
			e, err := r.DecodeExemplar(&b, raw)
			if err != nil {
				t.Fatalf("series %s: %v", key, err)
			}
			g.exemplars = append(g.exemplars, e)
		}
		out[key] = g
	}
	return out
}

func translate(t *testing.T, tr *Translator, md pmetric.Metrics, c Config) (Translation, map[string]*gotSeries) {
	t.Helper()
	var buf remotewrite.Buffer
	res, err := tr.Translate(context.Background(), md, c.Settings(), &buf)
	if err != nil {
		t.Fatalf("Translate: %v", err)
	}
	return res, translated(t, buf.B)
}

func keys(m map[string]*gotSeries) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// series returns the series of key, failing the test without it.
func series(t *testing.T, got map[string]*gotSeries, key string) *gotSeries {
	t.Helper()
	s := got[key]
	if s == nil {
		t.Fatalf("no series %s; got:\n  %s", key, strings.Join(keys(got), "\n  "))
	}
	return s
}

func checkSamples(t *testing.T, key string, got []remotewrite.Sample, want ...remotewrite.Sample) {
	t.Helper()
	if !slices.EqualFunc(got, want, func(a, b remotewrite.Sample) bool {
		return a.Timestamp == b.Timestamp && a.StartTimestamp == b.StartTimestamp &&
			(a.Value == b.Value || math.IsNaN(a.Value) && math.IsNaN(b.Value) && value.IsStaleNaN(a.Value) == value.IsStaleNaN(b.Value))
	}) {
		t.Errorf("%s: samples %v, want %v", key, got, want)
	}
}

func checkMeta(t *testing.T, key string, got metadata.Metadata, typ model.MetricType, unit, help string) {
	t.Helper()
	if got.Type != typ || got.Unit != unit || got.Help != help {
		t.Errorf("%s: metadata %+v, want type %s unit %q help %q", key, got, typ, unit, help)
	}
}

func newResource(md pmetric.Metrics) pmetric.MetricSlice {
	rm := md.ResourceMetrics().AppendEmpty()
	attrs := rm.Resource().Attributes()
	attrs.PutStr("service.name", "api")
	attrs.PutStr("service.namespace", "shop")
	attrs.PutStr("service.instance.id", "i-1")
	attrs.PutStr("k8s.pod.name", "api-0")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("lib")
	return sm.Metrics()
}

func addGauge(ms pmetric.MetricSlice, name string, points map[time.Duration]float64) pmetric.Metric {
	m := ms.AppendEmpty()
	m.SetName(name)
	dps := m.SetEmptyGauge().DataPoints()
	for d, v := range points {
		p := dps.AppendEmpty()
		p.SetTimestamp(at(d))
		p.SetDoubleValue(v)
	}
	return m
}

func addSum(ms pmetric.MetricSlice, name string, monotonic bool, temporality pmetric.AggregationTemporality, points int) pmetric.Metric {
	m := ms.AppendEmpty()
	m.SetName(name)
	s := m.SetEmptySum()
	s.SetIsMonotonic(monotonic)
	s.SetAggregationTemporality(temporality)
	for i := range points {
		p := s.DataPoints().AppendEmpty()
		p.SetStartTimestamp(at(-time.Minute))
		p.SetTimestamp(at(time.Duration(i) * time.Second))
		p.SetIntValue(int64(i + 1))
	}
	return m
}

// everyType is a request of one resource with a metric of each type:
// 10 data points, some out of time order.
func everyType() pmetric.Metrics {
	md := pmetric.NewMetrics()
	ms := newResource(md)

	g := ms.AppendEmpty()
	g.SetName("room.temperature")
	g.SetUnit("Cel")
	g.SetDescription("Temperature of the room.")
	gps := g.SetEmptyGauge().DataPoints()
	// Out of time order: remote-write wants each series' samples sorted.
	for _, d := range []time.Duration{2 * time.Second, 0, time.Second} {
		p := gps.AppendEmpty()
		p.SetTimestamp(at(d))
		p.SetDoubleValue(float64(d / time.Second))
		p.Attributes().PutStr("room", "kitchen")
	}

	c := addSum(ms, "http.server.requests", true, pmetric.AggregationTemporalityCumulative, 1)
	c.SetDescription("Requests served.")
	addSum(ms, "queue.size", false, pmetric.AggregationTemporalityCumulative, 1).Sum().DataPoints().At(0).SetIntValue(-3)

	h := ms.AppendEmpty()
	h.SetName("http.duration")
	h.SetUnit("s")
	hh := h.SetEmptyHistogram()
	hh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for _, d := range []time.Duration{time.Second, 0} {
		hp := hh.DataPoints().AppendEmpty()
		hp.SetStartTimestamp(at(-time.Minute))
		hp.SetTimestamp(at(d))
		hp.ExplicitBounds().FromRaw([]float64{0.1, 1})
		n := uint64(d / time.Second)
		hp.BucketCounts().FromRaw([]uint64{1 + n, 2, 3})
		hp.SetCount(6 + n)
		hp.SetSum(5.5)
	}

	e := ms.AppendEmpty()
	e.SetName("rpc.latency")
	e.SetUnit("ms")
	eh := e.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for _, d := range []time.Duration{time.Second, 0} {
		ep := eh.DataPoints().AppendEmpty()
		ep.SetTimestamp(at(d))
		ep.SetScale(1)
		ep.SetZeroCount(1)
		ep.Positive().SetOffset(0)
		ep.Positive().BucketCounts().FromRaw([]uint64{2, 3})
		ep.SetCount(6)
		ep.SetSum(10 + float64(d/time.Second))
	}

	s := ms.AppendEmpty()
	s.SetName("gc.pause")
	s.SetUnit("s")
	sp := s.SetEmptySummary().DataPoints().AppendEmpty()
	sp.SetTimestamp(at(0))
	sp.SetCount(4)
	sp.SetSum(10)
	for q, v := range map[float64]float64{0.5: 1.5, 0.99: 3} {
		qv := sp.QuantileValues().AppendEmpty()
		qv.SetQuantile(q)
		qv.SetValue(v)
	}

	return md
}

// TestTranslateEveryType: each OTLP metric type comes out as Prometheus'
// receiver writes it, with the metadata Prometheus keeps for it, and the
// points of a series in time order whatever the order sent.
func TestTranslateEveryType(t *testing.T) {
	md := everyType()
	var tr Translator
	res, got := translate(t, &tr, md, DefaultConfig())
	if res.DataPoints != 10 || res.Refused != 0 || res.Refusals != "" {
		t.Fatalf("translation %+v: want 10 points, none refused", res)
	}
	// Samples is what Answer compares with what was written: every sample
	// and histogram sample of the request.
	n := 0
	for _, s := range got {
		n += len(s.samples) + len(s.histograms)
	}
	if res.Samples != n {
		t.Fatalf("Samples %d, the request holds %d", res.Samples, n)
	}

	const job = `instance="i-1", job="shop/api"`
	key := `{__name__="room_temperature_celsius", ` + job + `, room="kitchen"}`
	checkSamples(t, key, series(t, got, key).samples,
		remotewrite.Sample{Value: 0, Timestamp: millis(0)}, remotewrite.Sample{Value: 1, Timestamp: millis(time.Second)}, remotewrite.Sample{Value: 2, Timestamp: millis(2 * time.Second)})
	checkMeta(t, key, got[key].meta, model.MetricTypeGauge, "celsius", "Temperature of the room.")

	// Start times are dropped, as Prometheus' receiver drops them by
	// default: the block builders would store each as a zero sample.
	key = `{__name__="http_server_requests_total", ` + job + `}`
	checkSamples(t, key, series(t, got, key).samples, remotewrite.Sample{Value: 1, Timestamp: millis(0)})
	checkMeta(t, key, got[key].meta, model.MetricTypeCounter, "", "Requests served.")

	// A non-monotonic sum is a gauge: it may go down.
	key = `{__name__="queue_size", ` + job + `}`
	checkSamples(t, key, series(t, got, key).samples, remotewrite.Sample{Value: -3, Timestamp: millis(0)})
	checkMeta(t, key, got[key].meta, model.MetricTypeGauge, "", "")

	for _, c := range []struct {
		key      string
		at0, at1 float64
	}{
		{`{__name__="http_duration_seconds_sum", ` + job + `}`, 5.5, 5.5},
		{`{__name__="http_duration_seconds_count", ` + job + `}`, 6, 7},
		{`{__name__="http_duration_seconds_bucket", ` + job + `, le="0.1"}`, 1, 2},
		{`{__name__="http_duration_seconds_bucket", ` + job + `, le="1"}`, 3, 4},
		{`{__name__="http_duration_seconds_bucket", ` + job + `, le="+Inf"}`, 6, 7},
	} {
		checkSamples(t, c.key, series(t, got, c.key).samples,
			remotewrite.Sample{Value: c.at0, Timestamp: millis(0)}, remotewrite.Sample{Value: c.at1, Timestamp: millis(time.Second)})
		checkMeta(t, c.key, got[c.key].meta, model.MetricTypeHistogram, "seconds", "")
	}

	key = `{__name__="rpc_latency_milliseconds", ` + job + `}`
	eg := series(t, got, key)
	checkMeta(t, key, eg.meta, model.MetricTypeHistogram, "milliseconds", "")
	if !slices.Equal(eg.histTimes, []int64{millis(0), millis(time.Second)}) || len(eg.samples) != 0 {
		t.Fatalf("%s: histograms at %v and %d float samples, want two histograms in time order", key, eg.histTimes, len(eg.samples))
	}
	for i, nh := range eg.histograms {
		if nh == nil || nh.Schema != 1 || nh.Count != 6 || nh.ZeroCount != 1 || nh.Sum != 10+float64(i) {
			t.Fatalf("%s: native histogram %d is %v, want schema 1, count 6, zero count 1, sum %d", key, i, nh, 10+i)
		}
		// OTLP bucket i is (base^i, base^(i+1)], Prometheus' (base^(i-1),
		// base^i]: the offset shifts by one.
		var uppers []float64
		var counts []uint64
		for it := nh.PositiveBucketIterator(); it.Next(); {
			uppers, counts = append(uppers, it.At().Upper), append(counts, it.At().Count)
		}
		if len(uppers) != 2 || math.Abs(uppers[0]-math.Sqrt2) > 1e-12 || uppers[1] != 2 || !slices.Equal(counts, []uint64{2, 3}) {
			t.Fatalf("%s: buckets with upper bounds %v counts %v, want (1, √2]: 2, (√2, 2]: 3", key, uppers, counts)
		}
	}

	for _, c := range []struct {
		key  string
		want float64
	}{
		{`{__name__="gc_pause_seconds", ` + job + `, quantile="0.5"}`, 1.5},
		{`{__name__="gc_pause_seconds", ` + job + `, quantile="0.99"}`, 3},
		{`{__name__="gc_pause_seconds_sum", ` + job + `}`, 10},
		{`{__name__="gc_pause_seconds_count", ` + job + `}`, 4},
	} {
		checkSamples(t, c.key, series(t, got, c.key).samples, remotewrite.Sample{Value: c.want, Timestamp: millis(0)})
		checkMeta(t, c.key, got[c.key].meta, model.MetricTypeSummary, "seconds", "")
	}

	// The resource attributes that are not job and instance go to
	// target_info, at the earliest and latest point of the resource.
	key = `{__name__="target_info", ` + job + `, k8s_pod_name="api-0"}`
	ti := series(t, got, key)
	if len(ti.samples) == 0 || ti.samples[0].Timestamp != millis(0) || ti.samples[len(ti.samples)-1].Timestamp != millis(2*time.Second) || ti.samples[0].Value != 1 {
		t.Fatalf("%s: %v, want 1 from %d to %d", key, ti.samples, millis(0), millis(2*time.Second))
	}
	if len(got) != 14 {
		t.Fatalf("%d series, want 14:\n  %s", len(got), strings.Join(keys(got), "\n  "))
	}
}

// TestTranslateExemplars: exemplars keep their trace and span as the
// trace_id and span_id labels, in hex, with their filtered attributes,
// and come in time order.
func TestTranslateExemplars(t *testing.T) {
	md := pmetric.NewMetrics()
	c := addSum(newResource(md), "http.server.requests", true, pmetric.AggregationTemporalityCumulative, 1)
	p := c.Sum().DataPoints().At(0)
	for i, d := range []time.Duration{-time.Second, -2 * time.Second} {
		ex := p.Exemplars().AppendEmpty()
		ex.SetTimestamp(at(d))
		ex.SetDoubleValue(float64(i + 1))
		ex.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, byte(i)})
		ex.SetSpanID(pcommon.SpanID{0xa, 0xb, 0xc, 0xd, 1, 2, 3, byte(i)})
		ex.FilteredAttributes().PutStr("user", "u1")
	}
	// Without trace or span: the exemplar keeps only its attributes.
	ex := p.Exemplars().AppendEmpty()
	ex.SetTimestamp(at(0))
	ex.SetIntValue(7)

	var tr Translator
	_, got := translate(t, &tr, md, DefaultConfig())
	key := `{__name__="http_server_requests_total", instance="i-1", job="shop/api"}`
	exs := series(t, got, key).exemplars
	want := []exemplar.Exemplar{
		{Labels: labels.FromStrings("span_id", "0a0b0c0d01020301", "trace_id", "0102030405060708090a0b0c0d0e0f01", "user", "u1"), Value: 2, Ts: millis(-2 * time.Second), HasTs: true},
		{Labels: labels.FromStrings("span_id", "0a0b0c0d01020300", "trace_id", "0102030405060708090a0b0c0d0e0f00", "user", "u1"), Value: 1, Ts: millis(-time.Second), HasTs: true},
		{Labels: labels.EmptyLabels(), Value: 7, Ts: millis(0), HasTs: true},
	}
	if len(exs) != len(want) {
		t.Fatalf("exemplars %v, want %v", exs, want)
	}
	for i := range want {
		if !labels.Equal(exs[i].Labels, want[i].Labels) || exs[i].Value != want[i].Value || exs[i].Ts != want[i].Ts {
			t.Errorf("exemplar %d: %v, want %v", i, exs[i], want[i])
		}
	}
}

// TestTranslateDeltaRefused: Prometheus refuses delta temporality by
// default; the delta metrics are counted and named, and the others of
// the request are translated all the same.
func TestTranslateDeltaRefused(t *testing.T) {
	md := pmetric.NewMetrics()
	ms := newResource(md)
	addGauge(ms, "up", map[time.Duration]float64{0: 1})
	addSum(ms, "jobs.done", true, pmetric.AggregationTemporalityDelta, 3)
	addSum(ms, "bytes.sent", true, pmetric.AggregationTemporalityCumulative, 2)
	h := ms.AppendEmpty()
	h.SetName("batch.size")
	hh := h.SetEmptyHistogram()
	hh.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	hh.DataPoints().AppendEmpty().SetTimestamp(at(0))
	hh.DataPoints().AppendEmpty().SetTimestamp(at(time.Second))
	addSum(ms, "retries", true, pmetric.AggregationTemporalityDelta, 1)

	var tr Translator
	res, got := translate(t, &tr, md, DefaultConfig())
	if res.DataPoints != 9 || res.Refused != 6 {
		t.Fatalf("translation %+v: want 6 of 9 points refused (the delta ones)", res)
	}
	for _, name := range []string{`"jobs.done"`, `"batch.size"`, `"retries"`} {
		if !strings.Contains(res.Refusals, name) || !strings.Contains(res.Refusals, "temporality") {
			t.Errorf("refusals %q do not say %s was refused for its temporality", res.Refusals, name)
		}
	}
	if strings.Contains(res.Refusals, `"up"`) || strings.Contains(res.Refusals, "bytes") {
		t.Errorf("refusals %q name metrics that were translated", res.Refusals)
	}
	for _, key := range []string{
		`{__name__="up", instance="i-1", job="shop/api"}`,
		`{__name__="bytes_sent_total", instance="i-1", job="shop/api"}`,
	} {
		series(t, got, key)
	}
	for key := range got {
		if strings.Contains(key, "jobs") || strings.Contains(key, "batch") || strings.Contains(key, "retries") {
			t.Errorf("refused metric written: %s", key)
		}
	}
	if a := res.Answer(res.Samples, res.Samples, nil); a.Status != http.StatusOK || a.Rejected != 6 || !strings.Contains(a.Message, `"jobs.done"`) {
		t.Errorf("answer %+v, want 200 with 6 rejected, naming jobs.done", a)
	}

	// With delta refused alone, nothing of what was sent can be written
	// (target_info is made of the resource): the sender must learn it as
	// an error.
	md = pmetric.NewMetrics()
	addSum(newResource(md), "jobs.done", true, pmetric.AggregationTemporalityDelta, 3)
	res, got = translate(t, &tr, md, DefaultConfig())
	if res.Refused != 3 || len(got) != 1 || got[`{__name__="target_info", instance="i-1", job="shop/api", k8s_pod_name="api-0"}`] == nil {
		t.Fatalf("translation %+v with series %v, want the 3 points refused and target_info alone", res, keys(got))
	}
	if a := res.Answer(res.Samples, res.Samples, nil); a.Status != http.StatusBadRequest || !strings.Contains(a.Message, `"jobs.done"`) {
		t.Errorf("answer %+v, want 400 naming jobs.done", a)
	}
}

// TestTranslateRefusedUnnamed: refusals that name no metric (an attribute
// the translator cannot make a label name of, a histogram scale it cannot
// store) must not be taken for partial success when nothing was written.
func TestTranslateRefusedUnnamed(t *testing.T) {
	md := pmetric.NewMetrics()
	ms := newResource(md)
	// "__" can be no label name, escaped or not; its points are dropped.
	g := addGauge(ms, "up", map[time.Duration]float64{0: 1})
	g.Gauge().DataPoints().At(0).Attributes().PutStr("__", "x")
	e := ms.AppendEmpty()
	e.SetName("rpc.latency")
	ep := e.SetEmptyExponentialHistogram().DataPoints().AppendEmpty()
	e.ExponentialHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	ep.SetTimestamp(at(0))
	ep.SetScale(-10)
	ep.SetCount(1)
	ep.Positive().BucketCounts().FromRaw([]uint64{1})
	// And a metric whose name is nothing once escaped.
	addGauge(ms, "...", map[time.Duration]float64{0: 1})

	var tr Translator
	res, got := translate(t, &tr, md, DefaultConfig())
	for key := range got {
		if !strings.Contains(key, "target_info") {
			t.Errorf("written: %s", key)
		}
	}
	if res.Refused != res.DataPoints {
		t.Errorf("translation %+v: %d of %d points refused, but none was translated", res, res.Refused, res.DataPoints)
	}
	for _, what := range []string{`"__"`, "Scale", `"..."`} {
		if !strings.Contains(res.Refusals, what) {
			t.Errorf("refusals %q do not mention %s", res.Refusals, what)
		}
	}
	written := 0
	for _, s := range got {
		written += len(s.samples)
	}
	if a := res.Answer(res.Samples, written, nil); a.Status != http.StatusBadRequest || !strings.Contains(a.Message, "Scale") {
		t.Errorf("answer %+v: every point was refused, want 400 saying why", a)
	}
}

// TestTranslateRefusalsBounded: a request of many refused metrics is
// answered with a message of a few lines, not one per metric.
func TestTranslateRefusalsBounded(t *testing.T) {
	md := pmetric.NewMetrics()
	ms := newResource(md)
	for i := range 10000 {
		addSum(ms, fmt.Sprintf("delta.metric.%d", i), true, pmetric.AggregationTemporalityDelta, 1)
	}
	addGauge(ms, "up", map[time.Duration]float64{0: 1})
	var tr Translator
	res, _ := translate(t, &tr, md, DefaultConfig())
	if res.Refused != 10000 {
		t.Fatalf("%d points refused, want 10000", res.Refused)
	}
	if len(res.Refusals) > 4096 || !strings.Contains(res.Refusals, `"delta.metric.0"`) || !strings.Contains(res.Refusals, "more") {
		t.Fatalf("refusals of %d bytes (%.200q...): want the first few and a count of the others", len(res.Refusals), res.Refusals)
	}
}

// TestTranslateLabelCollision: attributes that escape to one label name
// are merged as Prometheus merges them, values joined with ";" in the
// order of the attribute names, and the translator's warning kept.
func TestTranslateLabelCollision(t *testing.T) {
	md := pmetric.NewMetrics()
	g := addGauge(newResource(md), "up", map[time.Duration]float64{0: 1})
	attrs := g.Gauge().DataPoints().At(0).Attributes()
	attrs.PutStr("a_b", "2")
	attrs.PutStr("a.b", "1")
	var tr Translator
	res, got := translate(t, &tr, md, DefaultConfig())
	series(t, got, `{__name__="up", a_b="1;2", instance="i-1", job="shop/api"}`)
	if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, `"a.b"`) && strings.Contains(w, `"a_b"`) }) {
		t.Errorf("warnings %q do not name the colliding attributes", res.Warnings)
	}

	// Without escaping, they are two labels.
	utf8 := DefaultConfig()
	utf8.TranslationStrategy = otlptranslator.NoTranslation
	_, got = translate(t, &tr, md, utf8)
	series(t, got, `{__name__="up", "a.b"="1", a_b="2", instance="i-1", job="shop/api"}`)
}

// TestTranslateSpecialValues: NaN and infinities are values like others;
// a point flagged as having no recorded value is Prometheus' staleness
// marker.
func TestTranslateSpecialValues(t *testing.T) {
	md := pmetric.NewMetrics()
	ms := newResource(md)
	addGauge(ms, "nan", map[time.Duration]float64{0: math.NaN()})
	addGauge(ms, "inf", map[time.Duration]float64{0: math.Inf(1), time.Second: math.Inf(-1)})
	stale := addGauge(ms, "gone", map[time.Duration]float64{0: 1})
	stale.Gauge().DataPoints().At(0).SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	var tr Translator
	_, got := translate(t, &tr, md, DefaultConfig())
	const job = `instance="i-1", job="shop/api"`
	key := `{__name__="nan", ` + job + `}`
	checkSamples(t, key, series(t, got, key).samples, remotewrite.Sample{Value: math.NaN(), Timestamp: millis(0)})
	key = `{__name__="inf", ` + job + `}`
	checkSamples(t, key, series(t, got, key).samples, remotewrite.Sample{Value: math.Inf(1), Timestamp: millis(0)}, remotewrite.Sample{Value: math.Inf(-1), Timestamp: millis(time.Second)})
	key = `{__name__="gone", ` + job + `}`
	checkSamples(t, key, series(t, got, key).samples, remotewrite.Sample{Value: math.Float64frombits(value.StaleNaN), Timestamp: millis(0)})
}

// TestTranslateEmpty: a request without metrics, or with a resource
// without any, is an empty remote-write request.
func TestTranslateEmpty(t *testing.T) {
	var tr Translator
	md := pmetric.NewMetrics()
	res, got := translate(t, &tr, md, DefaultConfig())
	if res.DataPoints != 0 || res.Refused != 0 || res.Samples != 0 || res.Refusals != "" || len(got) != 0 {
		t.Fatalf("empty request: %+v, %d series", res, len(got))
	}
	md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	res, got = translate(t, &tr, md, DefaultConfig())
	if res.DataPoints != 0 || res.Refused != 0 || len(got) != 0 {
		t.Fatalf("empty resource: %+v, %d series", res, len(got))
	}
	if a := res.Answer(0, 0, nil); a.Status != http.StatusOK || a.Rejected != 0 {
		t.Fatalf("answer to an empty request: %+v, want 200", a)
	}
}

// TestTranslateSettingsPerRequest: each request is translated with its
// own settings (tenants have their own), whatever the requests before it
// on the same Translator were translated with.
func TestTranslateSettingsPerRequest(t *testing.T) {
	md := pmetric.NewMetrics()
	ms := newResource(md)
	addGauge(ms, "up", map[time.Duration]float64{0: 1}).Gauge().DataPoints().At(0).Attributes().PutStr("http.method", "GET")
	escaped := DefaultConfig()
	escaped.PromoteResourceAttributes = []string{"k8s.pod.name"}
	utf8 := escaped
	utf8.TranslationStrategy = otlptranslator.NoTranslation
	var tr Translator
	for range 10 {
		_, got := translate(t, &tr, md, utf8)
		series(t, got, `{__name__="up", "http.method"="GET", instance="i-1", job="shop/api", "k8s.pod.name"="api-0"}`)
		_, got = translate(t, &tr, md, escaped)
		series(t, got, `{__name__="up", http_method="GET", instance="i-1", job="shop/api", k8s_pod_name="api-0"}`)
	}
}

// TestTranslatorMemoryBounded: what a Translator keeps between requests
// does not grow with the label names it has seen: senders choose them.
func TestTranslatorMemoryBounded(t *testing.T) {
	var tr Translator
	var buf remotewrite.Buffer
	s := DefaultConfig().Settings()
	request := func(r int) pmetric.Metrics {
		md := pmetric.NewMetrics()
		m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("up")
		dps := m.SetEmptyGauge().DataPoints()
		for i := range 1000 {
			p := dps.AppendEmpty()
			p.SetTimestamp(at(0))
			p.Attributes().PutStr(fmt.Sprintf("attribute.%d.%d", r, i), "v")
		}
		return md
	}
	retained := func() uint64 {
		// Held out of the pool, the translator's state survives the
		// collection.
		st := tr.pool.Get()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		tr.pool.Put(st)
		return m.HeapAlloc
	}
	if _, err := tr.Translate(context.Background(), request(-1), s, &buf); err != nil {
		t.Fatal(err)
	}
	before := retained()
	for r := range 300 {
		if _, err := tr.Translate(context.Background(), request(r), s, &buf); err != nil {
			t.Fatal(err)
		}
	}
	if after := retained(); after > before+8<<20 {
		t.Fatalf("the translator holds %d more bytes after 300 requests of 1000 new label names each", after-before)
	}
}

// TestTranslateCanceled: a request whose context ends is not written:
// the sender hears to retry.
func TestTranslateCanceled(t *testing.T) {
	md := pmetric.NewMetrics()
	ms := newResource(md)
	for i := range 1000 {
		addGauge(ms, fmt.Sprintf("g%d", i), map[time.Duration]float64{0: 1})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var tr Translator
	var buf remotewrite.Buffer
	_, err := tr.Translate(ctx, md, DefaultConfig().Settings(), &buf)
	if !errors.Is(err, writeerr.ErrUnavailable) {
		t.Fatalf("Translate with an ended context: %v, want %v", err, writeerr.ErrUnavailable)
	}
	if a := ErrorAnswer(err); a.Status != http.StatusServiceUnavailable {
		t.Fatalf("answer %+v, want 503", a)
	}
	// The translator is whole for the next request.
	res, got := translate(t, &tr, md, DefaultConfig())
	if res.Refused != 0 || len(got) != 1001 {
		t.Fatalf("after a canceled request: %+v with %d series, want 1000 gauges and target_info", res, len(got))
	}
}

// TestTranslateTargetInfoBounded: target_info fills the span of a
// resource's points, one sample every 2.5 minutes; two points 53 years
// apart (a few bytes) do not make 11 million samples, and the points
// themselves are still translated.
func TestTranslateTargetInfoBounded(t *testing.T) {
	md := pmetric.NewMetrics()
	ms := newResource(md)
	g := addGauge(ms, "g", map[time.Duration]float64{0: 1})
	p := g.Gauge().DataPoints().AppendEmpty()
	p.SetTimestamp(1_000_000) // 1970
	p.SetDoubleValue(2)
	var tr Translator
	res, got := translate(t, &tr, md, DefaultConfig())
	if res.Refused != 0 || res.DataPoints != 2 {
		t.Fatalf("translation %+v, want 2 points and none refused", res)
	}
	checkSamples(t, "g", series(t, got, `{__name__="g", instance="i-1", job="shop/api"}`).samples,
		remotewrite.Sample{Timestamp: 1, Value: 2}, remotewrite.Sample{Timestamp: millis(0), Value: 1})
	info := series(t, got, `{__name__="target_info", instance="i-1", job="shop/api", k8s_pod_name="api-0"}`)
	if n, want := len(info.samples), targetInfoBudget(2); n != want {
		t.Fatalf("target_info has %d samples, want the bound of %d", n, want)
	}
	if !strings.Contains(res.Refusals, "target_info") {
		t.Fatalf("the answer's message %q does not say target_info was cut short", res.Refusals)
	}
	a := res.Answer(res.Samples, res.Samples, nil)
	if a.Status != http.StatusOK || a.Rejected != 0 || a.Message == "" {
		t.Fatalf("answer %+v, want 200 with nothing rejected and a message", a)
	}

	// Many resources: the bound is the request's.
	md = pmetric.NewMetrics()
	for i := range 100 {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", fmt.Sprint("s", i))
		rm.Resource().Attributes().PutStr("host.name", "h")
		dps := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints()
		dps.AppendEmpty().SetTimestamp(1_000_000)
		dps.AppendEmpty().SetTimestamp(at(0))
	}
	for i := range 100 {
		md.ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics().At(0).SetName("g")
	}
	res, got = translate(t, &tr, md, DefaultConfig())
	infos := 0
	for k, s := range got {
		if strings.Contains(k, "target_info") {
			infos += len(s.samples)
		}
	}
	if want := targetInfoBudget(200); infos != want || res.Refused != 0 {
		t.Fatalf("%d samples of target_info over 100 resources, refused %d; want the bound of %d and none refused", infos, res.Refused, want)
	}

	// A request in one step is untouched: two samples per resource.
	_, got = translate(t, &tr, oneResourceInOneStep(), DefaultConfig())
	if n := len(series(t, got, `{__name__="target_info", instance="i-1", job="shop/api", k8s_pod_name="api-0"}`).samples); n != 2 {
		t.Fatalf("target_info of points 2 minutes apart has %d samples, want 2", n)
	}
}

func oneResourceInOneStep() pmetric.Metrics {
	md := pmetric.NewMetrics()
	addGauge(newResource(md), "g", map[time.Duration]float64{0: 1, 2 * time.Minute: 2})
	return md
}

// TestBatchMarshal: the translator's points are grouped by series, each
// series' in time order whatever the order appended; the marshalled
// request is byte for byte what writev2.Request's own Marshal makes of
// those series; and the batch, reset, makes the same request again from
// its kept memory.
func TestBatchMarshal(t *testing.T) {
	h := &histogram.Histogram{Count: 3, Sum: 4, ZeroThreshold: 0.001, ZeroCount: 1,
		PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []int64{1, 0}}
	gauge := storage.AOptions{MetricFamilyName: "g", Metadata: metadata.Metadata{Type: model.MetricTypeGauge, Help: "a gauge", Unit: "By"}}
	hist := storage.AOptions{MetricFamilyName: "h", Metadata: metadata.Metadata{Type: model.MetricTypeHistogram},
		Exemplars: []exemplar.Exemplar{{Labels: labels.FromStrings("trace_id", "t1"), Value: 1, Ts: 3, HasTs: true}}}
	collect := func(b *Batch) {
		b.Reset()
		b.targetInfoLeft = 100
		for _, a := range []struct {
			ls   labels.Labels
			t    int64
			v    float64
			h    *histogram.Histogram
			fh   *histogram.FloatHistogram
			opts storage.AOptions
		}{
			{labels.FromStrings("__name__", "g", "pod", "a"), 2, 1, nil, nil, gauge},
			{labels.FromStrings("__name__", "g", "pod", "b"), 1, 2, nil, nil, gauge},
			{labels.FromStrings("__name__", "g", "pod", "a"), 1, 3, nil, nil, gauge},
			{labels.FromStrings("__name__", "h", "pod", "a"), 3, 0, h, nil, hist},
			{labels.FromStrings("__name__", "h", "pod", "a"), 1, 0, nil, h.ToFloat(nil), hist},
			{labels.EmptyLabels(), 1, 4, nil, nil, storage.AOptions{}},
		} {
			if _, err := (appender{b}).Append(0, a.ls, 0, a.t, a.v, a.h, a.fh, a.opts); err != nil {
				t.Fatal(err)
			}
		}
		b.group()
	}
	var b Batch
	var first []byte
	for range 2 {
		collect(&b)
		if b.NumSeries() != 4 || b.NumPoints() != 6 {
			t.Fatalf("%d series of %d points, want 4 of 6", b.NumSeries(), b.NumPoints())
		}
		// The series as writev2 has them, symbolized in Marshal's order.
		syms := writev2.NewSymbolTable()
		want := &writev2.Request{}
		for i := range b.NumSeries() {
			points := b.Series(i)
			if !slices.IsSortedFunc(points, func(x, y Point) int { return cmp.Compare(x.T, y.T) }) {
				t.Fatalf("series %s: points out of time order", points[0].Labels)
			}
			ts := writev2.TimeSeries{LabelsRefs: syms.SymbolizeLabels(points[0].Labels, nil)}
			md := points[0].Metadata
			ts.Metadata = writev2.Metadata{Type: writev2.FromMetadataType(md.Type), HelpRef: syms.Symbolize(md.Help), UnitRef: syms.Symbolize(md.Unit)}
			for _, p := range points {
				if !labels.Equal(p.Labels, points[0].Labels) || p.hash != b.Hash(i) {
					t.Fatalf("series %d holds %s and %s", i, points[0].Labels, p.Labels)
				}
				switch {
				case p.FH != nil:
					ts.Histograms = append(ts.Histograms, writev2.FromFloatHistogram(0, p.T, p.FH))
				case p.H != nil:
					ts.Histograms = append(ts.Histograms, writev2.FromIntHistogram(0, p.T, p.H))
				default:
					ts.Samples = append(ts.Samples, writev2.Sample{Value: p.V, Timestamp: p.T})
				}
				for _, e := range p.Exemplars {
					ts.Exemplars = append(ts.Exemplars, writev2.Exemplar{LabelsRefs: syms.SymbolizeLabels(e.Labels, nil), Value: e.Value, Timestamp: e.Ts})
				}
			}
			want.Timeseries = append(want.Timeseries, ts)
		}
		want.Symbols = syms.Symbols()
		wantBytes, err := want.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		var got remotewrite.Buffer
		if err := b.Marshal(&got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.B, wantBytes) {
			t.Fatalf("marshalled %x\nwant        %x", got.B, wantBytes)
		}
		if first != nil && !bytes.Equal(got.B, first) {
			t.Fatalf("the reset batch made another request:\n%x\nfirst %x", got.B, first)
		}
		first = slices.Clone(got.B)
	}
	for i := range b.NumSeries() {
		if p := b.Series(i); p[0].Labels.Get("pod") == "a" && p[0].Labels.Get("__name__") == "g" {
			if len(p) != 2 || p[0].V != 3 || p[1].V != 1 {
				t.Fatalf("g{pod=a}: %+v, want 3 at 1 then 1 at 2", p)
			}
		}
	}
}
