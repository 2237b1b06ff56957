package functions_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/stratametrics/strata/functions"
)

// otlpMetrics makes a request of one resource with a gauge, a cumulative
// counter and a delta sum, each one point at ts.
func otlpMetrics(ts time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	attrs := rm.Resource().Attributes()
	attrs.PutStr("service.name", "api")
	attrs.PutStr("service.namespace", "shop")
	attrs.PutStr("service.instance.id", "i-1")
	attrs.PutStr("k8s.pod.name", "api-0")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("test")
	at := pcommon.NewTimestampFromTime(ts)
	start := pcommon.NewTimestampFromTime(ts.Add(-time.Minute))

	g := sm.Metrics().AppendEmpty()
	g.SetName("room.temperature")
	g.SetUnit("Cel")
	g.SetDescription("Temperature of the room.")
	p := g.SetEmptyGauge().DataPoints().AppendEmpty()
	p.SetTimestamp(at)
	p.SetDoubleValue(21.5)
	p.Attributes().PutStr("room", "kitchen")

	c := sm.Metrics().AppendEmpty()
	c.SetName("http.server.requests")
	sum := c.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	p = sum.DataPoints().AppendEmpty()
	p.SetStartTimestamp(start)
	p.SetTimestamp(at)
	p.SetIntValue(42)

	d := sm.Metrics().AppendEmpty()
	d.SetName("jobs.done")
	dsum := d.SetEmptySum()
	dsum.SetIsMonotonic(true)
	dsum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	for i := range 3 {
		p = dsum.DataPoints().AppendEmpty()
		p.SetTimestamp(at)
		p.SetIntValue(int64(i))
		p.Attributes().PutInt("worker", int64(i))
	}
	return md
}

// TestOTLPThroughRouter: OTLP/HTTP metrics sent to the router, gzipped
// protobuf, are translated as Prometheus' receiver does (names with unit
// and type suffixes, job and instance from the service attributes, the
// rest in target_info) and stored on the block builders like any write;
// the delta sum, which Prometheus refuses by default, is reported as a
// partial success naming it.
func TestOTLPThroughRouter(t *testing.T) {
	c := startCluster(t, 3, 2, nil)
	url := strings.TrimSuffix(c.routerURL, "/api/v1/receive") + "/api/v1/otlp/v1/metrics"
	ts := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	body, err := pmetricotlp.NewExportRequestFromMetrics(otlpMetrics(ts)).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(body)
	zw.Close()
	resp, answer := post(t, url, gz.Bytes(), map[string]string{
		"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip", "THANOS-TENANT": "otel",
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("answer %d: %s", resp.StatusCode, answer)
	}
	er := pmetricotlp.NewExportResponse()
	if err := er.UnmarshalProto([]byte(answer)); err != nil {
		t.Fatalf("the answer is not an ExportMetricsServiceResponse: %v", err)
	}
	if ps := er.PartialSuccess(); ps.RejectedDataPoints() != 3 || !strings.Contains(ps.ErrorMessage(), `"jobs.done"`) {
		t.Fatalf("partial success %d %q: want the 3 delta points refused, naming the metric", ps.RejectedDataPoints(), ps.ErrorMessage())
	}

	c.flush()
	got, _ := c.bucketSamples()
	ms := ts.UnixMilli()
	for key, v := range map[string]float64{
		`{__name__="room_temperature_celsius", instance="i-1", job="shop/api", room="kitchen"}`: 21.5,
		`{__name__="http_server_requests_total", instance="i-1", job="shop/api"}`:               42,
		`{__name__="target_info", instance="i-1", job="shop/api", k8s_pod_name="api-0"}`:        1,
	} {
		if s, ok := got["otel"][key][ms]; !ok || s != v {
			var keys []string
			for k := range got["otel"] {
				keys = append(keys, k)
			}
			t.Fatalf("%s at %d: %v (present %v), want %v; stored: %v", key, ms, s, ok, v, keys)
		}
	}
}

// TestOTLPNativeDelta: with STRATA_OTLP_NATIVE_DELTA_INGESTION the delta
// sum Prometheus refuses by default is stored as it came, one series per
// worker, and nothing is refused.
func TestOTLPNativeDelta(t *testing.T) {
	c := startCluster(t, 3, 2, func(cfg *functions.Config) { cfg.OTLP.NativeDeltaIngestion = true })
	url := strings.TrimSuffix(c.routerURL, "/api/v1/receive") + "/otlp/v1/metrics"
	ts := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	body, err := pmetricotlp.NewExportRequestFromMetrics(otlpMetrics(ts)).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	resp, answer := post(t, url, body, map[string]string{"Content-Type": "application/json", "THANOS-TENANT": "otel"})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("answer %d (%s): %s", resp.StatusCode, resp.Header.Get("Content-Type"), answer)
	}
	er := pmetricotlp.NewExportResponse()
	if err := er.UnmarshalJSON([]byte(answer)); err != nil {
		t.Fatalf("the answer is not an ExportMetricsServiceResponse in JSON: %v", err)
	}
	if n := er.PartialSuccess().RejectedDataPoints(); n != 0 {
		t.Fatalf("%d points refused: %s", n, er.PartialSuccess().ErrorMessage())
	}
	c.flush()
	got, _ := c.bucketSamples()
	for w := range 3 {
		key := fmt.Sprintf(`{__name__="jobs_done_total", instance="i-1", job="shop/api", worker="%d"}`, w)
		if v, ok := got["otel"][key][ts.UnixMilli()]; !ok || v != float64(w) {
			t.Fatalf("%s: %v (present %v), want %d", key, v, ok, w)
		}
	}
}
