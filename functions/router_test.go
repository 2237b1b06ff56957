package functions_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage/remote"

	"github.com/stratametrics/strata/functions"
	"github.com/stratametrics/strata/internal/harness"
)

// TestPrometheusClientBothVersions sends through Prometheus' own
// remote-write client, 1.0 and 2.0, and finds every sample in the blocks
// uploaded to a real S3 server. The 2.0 request has every kind of data
// (float samples with start timestamps, integer and float native
// histograms, exemplars, metadata), and the client, reading the written
// headers, must confirm all of it.
func TestPrometheusClientBothVersions(t *testing.T) {
	c := startClusterWith(t, 3, 3, clusterOptions{s3: true})
	now := time.Now().UnixMilli()

	v1 := promClient(t, c.routerURL, "team-v1", remoteapi.WriteV1MessageType)
	stats, err := v1.Store(context.Background(), encodeV1(t, seriesV1("v1", 50, now)), 0)
	if err != nil {
		t.Fatalf("1.0 write: %v", err)
	}
	_ = stats

	v2req := newV2Request()
	for i := 0; i < 40; i++ {
		v2req.add(labels.FromStrings("__name__", "v2_metric", "instance", fmt.Sprintf("h-%d", i)), writev2.Metadata_METRIC_TYPE_COUNTER, "A counter.",
			writev2.TimeSeries{Samples: []writev2.Sample{{Value: float64(i), Timestamp: now, StartTimestamp: now - 1000}}})
	}
	v2req.mixed("v2_mixed", 5, now, 1)
	v2 := promClient(t, c.routerURL, "team-v2", remoteapi.WriteV2MessageType)
	stats, err = v2.Store(context.Background(), v2req.encode(t), 0)
	if err != nil {
		t.Fatalf("2.0 write: %v", err)
	}
	sent := v2req.sent
	if !stats.Confirmed || stats.Samples != sent.Samples || stats.Histograms != sent.Histograms || stats.Exemplars != sent.Exemplars {
		t.Fatalf("2.0 written stats %+v, want %+v confirmed", stats, sent)
	}

	c.flush()
	got := harness.ReadBucket(t, c.bucket, "tenant_id", "receive_replica")
	if n := got.Samples.TenantCount("team-v1"); n != 50 {
		t.Fatalf("team-v1: %d samples in the bucket, want 50", n)
	}
	// The start timestamp of the 40 counters is kept as a zero sample
	// before each of their samples.
	if n := got.Samples.TenantCount("team-v2"); n != sent.Samples+40 {
		t.Fatalf("team-v2: %d samples in the bucket, want %d samples and 40 start-timestamp zero samples", n, sent.Samples)
	}
	wantHst := v2req.histograms(t)
	gotHst := got.Histograms["team-v2"]
	if n := got.Histograms.TenantCount("team-v2"); n != sent.Histograms || len(gotHst) != len(wantHst) {
		t.Fatalf("team-v2: %d histogram samples of %d series in the bucket, want %d of %d", n, len(gotHst), sent.Histograms, len(wantHst))
	}
	for series, want := range wantHst {
		for ts, h := range want {
			if g, ok := gotHst[series][ts]; !ok || !g.Equal(h) {
				t.Fatalf("%s at %d: the bucket holds %v (present %v), want %v", series, ts, g, ok, h)
			}
		}
	}
	replicas := map[string]bool{}
	for _, b := range got.Blocks {
		replicas[b.Replica] = true
	}
	if len(replicas) != 3 {
		t.Fatalf("blocks from replicas %v, want all three", replicas)
	}
}

// TestStatusCodes covers every answer of the router over real HTTP.
func TestStatusCodes(t *testing.T) {
	limits := filepath.Join(t.TempDir(), "limits.yaml")
	// A rate that refills one sample in about twenty minutes: past the
	// burst, the tenant stays over its rate for the whole test.
	if err := os.WriteFile(limits, []byte("tenants:\n  metered:\n    ingestion_rate: 0.001\n    ingestion_burst: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, 3, 3, func(cfg *functions.Config) {
		cfg.Limits.MaxSeriesPerRequest = 100
		cfg.Limits.MaxSamplesPerRequest = 50
		cfg.Limits.MaxLabelValueLength = 64
		cfg.Limits.MaxBodyBytes = 64 << 10
		cfg.LimitsFile = limits
	})
	now := time.Now().UnixMilli()
	good := encodeV1(t, seriesV1("ok", 3, now))

	unsorted := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "job", Value: "x"}, {Name: "__name__", Value: "m"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: now}},
	}}}
	// Apart in the request, next to each other once sorted.
	twice := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "job", Value: "x"}, {Name: "__name__", Value: "m"}, {Name: "job", Value: "y"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: now}},
	}}}
	longValue := seriesV1("long", 1, now)
	longValue.Timeseries[0].Labels[2].Value = strings.Repeat("v", 100)
	future := seriesV1("future", 1, now+time.Hour.Milliseconds())
	manySamples := seriesV1("samples", 10, now)
	for i := range manySamples.Timeseries {
		for j := 1; j < 6; j++ {
			manySamples.Timeseries[i].Samples = append(manySamples.Timeseries[i].Samples, prompb.Sample{Value: float64(j), Timestamp: now + int64(j)})
		}
	}
	// Random bytes do not compress: the body is as large as it is here.
	large := make([]byte, 64<<10+1)
	rand.NewChaCha8([32]byte{}).Read(large)

	// Rows run in order: the metered tenant's second write finds the burst
	// its first one used up.
	for _, tc := range []struct {
		name    string
		path    string // default /api/v1/receive
		body    []byte
		headers map[string]string
		status  int
		says    string
		// retryAfter is the Retry-After the answer must carry; empty: none,
		// the sender must not retry.
		retryAfter string
	}{
		{"1.0 ok", "", good, v1Headers("a"), 204, "", ""},
		{"1.0 ok on /api/v1/write", "/api/v1/write", good, v1Headers("a"), 204, "", ""},
		{"2.0 ok on /api/v1/write", "/api/v1/write", encodeV2(t, seriesV2("w2", 3, now)), v2Headers("a"), 204, "", ""},
		{"limits apply on /api/v1/write", "/api/v1/write", encodeV1(t, seriesV1("many", 101, now)), v1Headers("a"), 413, "101 series", ""},
		{"no tenant header uses the default tenant", "", good, v1Headers(""), 204, "", ""},
		{"wrong content type", "", good, map[string]string{"Content-Type": "application/json", "Content-Encoding": "snappy"}, 415, "application/x-protobuf", ""},
		{"unknown proto", "", good, map[string]string{"Content-Type": "application/x-protobuf;proto=foo.Bar", "Content-Encoding": "snappy"}, 415, "unknown proto", ""},
		{"gzip encoding", "", good, map[string]string{"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}, 415, "snappy", ""},
		{"not snappy", "", []byte("hello world, not snappy"), v1Headers("a"), 400, "snappy", ""},
		{"truncated protobuf", "", encodeSnappyRaw(mustMarshalV1(t, seriesV1("t", 2, now))[:20]), v1Headers("a"), 400, "truncated", ""},
		{"unsorted labels are sorted, as by Prometheus", "", encodeV1(t, unsorted), v1Headers("a"), 204, "", ""},
		{"a label twice", "", encodeV1(t, twice), v1Headers("a"), 400, `label "job" twice`, ""},
		{"compressed body over the limit", "", large, v1Headers("a"), 413, "body of 65537 bytes, the limit is 65536", ""},
		{"too many series", "", encodeV1(t, seriesV1("many", 101, now)), v1Headers("a"), 413, "101 series in one request, the limit is 100", ""},
		{"too many samples", "", encodeV1(t, manySamples), v1Headers("a"), 413, "more than 50 samples in one request", ""},
		{"label value over the limit", "", encodeV1(t, longValue), v1Headers("a"), 413, "limit is 64", ""},
		{"sample far in the future", "", encodeV1(t, future), v1Headers("a"), 400, "ahead of this receiver's clock", ""},
		{"bad tenant", "", good, v1Headers("../../etc"), 400, "tenant", ""},
		{"metered tenant within its burst", "", encodeV1(t, seriesV1("m", 5, now)), v1Headers("metered"), 204, "", ""},
		{"metered tenant over its rate", "", encodeV1(t, seriesV1("m", 5, now+1)), v1Headers("metered"), 429, "tenant metered is over its ingestion rate of 0.001 samples/s", "1"},
		{"another tenant is not metered with it", "", encodeV1(t, seriesV1("m", 5, now+1)), v1Headers("unmetered"), 204, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := c.routerURL
			if tc.path != "" {
				url = strings.TrimSuffix(url, "/api/v1/receive") + tc.path
			}
			resp, body := post(t, url, tc.body, tc.headers)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
			if tc.says != "" && !strings.Contains(body, tc.says) {
				t.Fatalf("answer %q does not say %q", body, tc.says)
			}
			if got := resp.Header.Get("Retry-After"); got != tc.retryAfter {
				t.Fatalf("Retry-After %q, want %q", got, tc.retryAfter)
			}
		})
	}
}

// TestCustomTenantHeader: with STRATA_TENANT_HEADER and
// STRATA_DEFAULT_TENANT set on the router, the tenant comes from that
// header alone, and the data lands in that tenant, although the block
// builders keep the default header and default tenant: the router passes
// on the tenant it resolved.
func TestCustomTenantHeader(t *testing.T) {
	const header = "X-Scope-OrgID"
	c := startClusterWith(t, 2, 2, clusterOptions{
		router: func(cfg *functions.Config) { cfg.TenantHeader, cfg.DefaultTenant = header, "anonymous" },
	})
	now := time.Now().UnixMilli()
	withHeader := func(name, tenant string) map[string]string {
		h := v1Headers("")
		h[name] = tenant
		return h
	}
	for _, w := range []struct {
		name    string
		series  int
		headers map[string]string
		status  int
		says    string
	}{
		{"the configured header names the tenant", 7, withHeader(header, "team-x"), 204, ""},
		{"header names are case-insensitive", 3, withHeader(strings.ToLower(header), "team-x"), 204, ""},
		{"THANOS-TENANT is not read", 4, withHeader("THANOS-TENANT", "team-y"), 204, ""},
		{"the configured header is validated", 1, withHeader(header, "../x"), 400, "tenant"},
	} {
		resp, body := post(t, c.routerURL, encodeV1(t, seriesV1(fmt.Sprintf("h%d", w.series), w.series, now)), w.headers)
		if resp.StatusCode != w.status || !strings.Contains(body, w.says) {
			t.Fatalf("%s: got %d %q, want %d saying %q", w.name, resp.StatusCode, body, w.status, w.says)
		}
	}
	c.flush()
	got, _ := c.bucketSamples()
	for tenant, want := range map[string]int{"team-x": 10, "anonymous": 4, "team-y": 0, "default-tenant": 0} {
		if n := got.TenantCount(tenant); n != want {
			t.Errorf("tenant %s: %d samples in the bucket, want %d", tenant, n, want)
		}
	}
}

func mustMarshalV1(t *testing.T, r *prompb.WriteRequest) []byte {
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConflictIs400 writes samples, then older ones for the same series:
// every replica refuses them as out of order, so the sender gets 400, as
// from Prometheus' own receiver (Thanos Receive answers 409).
func TestConflictIs400(t *testing.T) {
	c := startCluster(t, 3, 3, nil)
	now := time.Now().UnixMilli()
	if resp, body := post(t, c.routerURL, encodeV1(t, seriesV1("c", 5, now)), v1Headers("a")); resp.StatusCode != 204 {
		t.Fatalf("first write: %d %s", resp.StatusCode, body)
	}
	resp, body := post(t, c.routerURL, encodeV1(t, seriesV1("c", 5, now-1000)), v1Headers("a"))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "out of order") || !strings.Contains(body, `c_metric`) {
		t.Fatalf("got %d %q, want 400 naming the series and the out-of-order sample", resp.StatusCode, body)
	}
	// The same samples again (same timestamp, same value) are no conflict.
	if resp, body := post(t, c.routerURL, encodeV1(t, seriesV1("c", 5, now)), v1Headers("a")); resp.StatusCode != 204 {
		t.Fatalf("resend: %d %s", resp.StatusCode, body)
	}
}

// TestQuorumSurvivesOneFailingAndOneHanging: with RF=3, one block builder
// answering 500 leaves a quorum of two; adding one that hangs breaks the
// quorum and the sender is told to retry, within the forward timeout.
func TestQuorumSurvivesOneFailingAndOneHanging(t *testing.T) {
	// A backoff long enough that a slow machine cannot outlast it between
	// the writes below.
	c := startCluster(t, 3, 3, func(cfg *functions.Config) { cfg.EndpointBackoff = 3 * time.Second })
	now := time.Now().UnixMilli()

	c.bbs[0].mode.Store(modeFail)
	resp, body := post(t, c.routerURL, encodeV1(t, seriesV1("q", 20, now)), v1Headers("a"))
	if resp.StatusCode != 204 {
		t.Fatalf("one of three failing: got %d %s, want 204", resp.StatusCode, body)
	}

	// The failed block builder is backed off: the next write does not even
	// try it. The answer came from the quorum of the other two, so its
	// failure may be recorded just after it.
	c.waitEndpointUp(0, 0)
	hits := c.bbs[0].hits.Load()
	if resp, body := post(t, c.routerURL, encodeV1(t, seriesV1("q", 20, now+1)), v1Headers("a")); resp.StatusCode != 204 {
		t.Fatalf("second write: %d %s", resp.StatusCode, body)
	}
	if c.bbs[0].hits.Load() != hits {
		t.Fatalf("a backed-off block builder was sent a write")
	}

	c.bbs[1].mode.Store(modeHang)
	start := time.Now()
	resp, body = post(t, c.routerURL, encodeV1(t, seriesV1("q", 20, now+2)), v1Headers("a"))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("one failing and one hanging: got %d %s, want 503 with Retry-After", resp.StatusCode, body)
	}
	if !strings.Contains(body, "quorum") {
		t.Fatalf("503 does not explain the quorum: %s", body)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("answer took %s, the forward timeout is 2s", d)
	}

	// All back: the failed one is probed back in and writes succeed on all.
	c.bbs[0].mode.Store(modeServe)
	c.bbs[1].mode.Store(modeServe)
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, body = post(t, c.routerURL, encodeV1(t, seriesV1("q", 20, time.Now().UnixMilli())), v1Headers("a"))
		if resp.StatusCode == 204 && c.bbs[0].hits.Load() > hits {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("block builder 0 never came back: last answer %d %s", resp.StatusCode, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.waitEndpointUp(0, 1)
}

// TestHangingBlockBuilderCostsNoLatency: with one of three hanging, writes
// are answered as soon as two have the data, not after the timeout.
func TestHangingBlockBuilderCostsNoLatency(t *testing.T) {
	c := startCluster(t, 3, 3, func(cfg *functions.Config) { cfg.ForwardTimeout = 30 * time.Second })
	c.bbs[2].mode.Store(modeHang)
	start := time.Now()
	resp, body := post(t, c.routerURL, encodeV1(t, seriesV1("h", 10, time.Now().UnixMilli())), v1Headers("a"))
	if resp.StatusCode != 204 {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("write waited %s for the hanging block builder", d)
	}
}

// TestBlockBuilderAuthFailureIsRetryable: block builders refusing the
// router's credentials is the router's misconfiguration, not bad data; the
// sender must be told to retry (503), never to drop the data (4xx).
func TestBlockBuilderAuthFailureIsRetryable(t *testing.T) {
	c := startCluster(t, 3, 3, nil)
	for _, b := range c.bbs {
		b.mode.Store(modeAuth)
	}
	resp, body := post(t, c.routerURL, encodeV1(t, seriesV1("auth", 5, time.Now().UnixMilli())), v1Headers("a"))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("block builders answering 401: the sender got %d %s, want 503", resp.StatusCode, body)
	}
}

// TestRF2NeedsBoth documents the RF=2 choice: quorum is 2 of 2.
func TestRF2NeedsBoth(t *testing.T) {
	if q := functions.Quorum(2); q != 2 {
		t.Fatalf("quorum of RF=2 is %d, want 2", q)
	}
	c := startCluster(t, 2, 2, nil)
	c.bbs[1].mode.Store(modeFail)
	resp, _ := post(t, c.routerURL, encodeV1(t, seriesV1("r", 5, time.Now().UnixMilli())), v1Headers("a"))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("RF=2 with one failing: got %d, want 503", resp.StatusCode)
	}
}

// TestSplitAcrossOwners: with RF=1 over three block builders each series
// lands on exactly one of them, and together they hold everything.
func TestSplitAcrossOwners(t *testing.T) {
	for _, v := range []string{"1.0", "2.0"} {
		t.Run(v, func(t *testing.T) {
			c := startCluster(t, 3, 1, nil)
			now := time.Now().UnixMilli()
			var resp *http.Response
			var body string
			if v == "1.0" {
				resp, body = post(t, c.routerURL, encodeV1(t, seriesV1("s", 300, now)), v1Headers("split"))
			} else {
				st := writev2.NewSymbolTable()
				req := &writev2.Request{}
				for i := 0; i < 300; i++ {
					req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
						LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "s_metric", "instance", fmt.Sprintf("host-%d", i)), nil),
						Samples:    []writev2.Sample{{Value: float64(i), Timestamp: now}},
					})
				}
				req.Symbols = st.Symbols()
				resp, body = post(t, c.routerURL, encodeV2(t, req), v2Headers("split"))
			}
			if resp.StatusCode != 204 {
				t.Fatalf("got %d %s", resp.StatusCode, body)
			}
			c.flush()
			got, blocks := c.bucketSamples()
			if n := got.TenantCount("split"); n != 300 {
				t.Fatalf("%d samples in the bucket, want 300", n)
			}
			perReplica, total := samplesPerReplica(blocks)
			for r, n := range perReplica {
				if n == 0 || n == 300 {
					t.Fatalf("replica %s holds %d samples: not split", r, n)
				}
			}
			if total != 300 {
				t.Fatalf("replicas hold %d samples together, want exactly 300 (RF=1)", total)
			}
		})
	}
}

func TestSpecialValues(t *testing.T) {
	c := startCluster(t, 1, 1, nil)
	now := time.Now().UnixMilli()
	req := seriesV1("special", 3, now)
	req.Timeseries[0].Samples[0].Value = math.NaN()
	req.Timeseries[1].Samples[0].Value = math.Inf(1)
	req.Timeseries[2].Samples[0].Value = math.Inf(-1)
	if resp, body := post(t, c.routerURL, encodeV1(t, req), v1Headers("a")); resp.StatusCode != 204 {
		t.Fatalf("NaN/Inf: %d %s", resp.StatusCode, body)
	}
}

var _ = errors.Is
var _ remote.WriteClient

// TestPartlyInvalidRequests: a request with some invalid series gets 400
// naming them, and its valid series are written, to every owner, whether
// every block builder owns every series (3 at RF=3: one part shared by
// all) or the request is split (6 at RF=3); the same series sent again
// (known to the router by then) are written too.
func TestPartlyInvalidRequests(t *testing.T) {
	for _, n := range []int{3, 6} {
		t.Run(fmt.Sprintf("%d block builders, RF=3", n), func(t *testing.T) {
			c := startCluster(t, n, 3, nil)
			now := time.Now().UnixMilli()
			for round := int64(0); round < 2; round++ {
				req := seriesV1("mixed", 40, now+round*1000)
				for _, i := range []int{3, 17, 31} {
					req.Timeseries[i].Samples[0].Timestamp = now + 2*time.Hour.Milliseconds()
				}
				resp, body := post(t, c.routerURL, encodeV1(t, req), v1Headers("mixed"))
				if resp.StatusCode != 400 || !strings.Contains(body, "host-17") {
					t.Fatalf("round %d: got %d %q, want 400 naming the series ahead of the clock", round, resp.StatusCode, body)
				}
			}
			c.flush()
			got, blocks := c.bucketSamples()
			if n := got.TenantCount("mixed"); n != 74 {
				t.Fatalf("%d samples in the bucket, want 74", n)
			}
			// The answer waits for a quorum (2 of 3 owners); the third
			// copy may still be on its way when the test flushes.
			perReplica, total := samplesPerReplica(blocks)
			if total < 2*74 || total > 3*74 {
				t.Fatalf("replicas hold %d samples together, want 74 on 2 or 3 of them: %v", total, perReplica)
			}
		})
	}
}

// samplesPerReplica sums the samples of the blocks by replica, and in all.
func samplesPerReplica(blocks []harness.BlockInfo) (map[string]uint64, uint64) {
	per := map[string]uint64{}
	var total uint64
	for _, b := range blocks {
		per[b.Replica] += b.Meta.Stats.NumSamples
		total += b.Meta.Stats.NumSamples
	}
	return per, total
}

// TestTenantMetricsAreBounded: the router keeps series of their own for
// at most STRATA_METRICS_MAX_TENANTS tenants; requests of the others, as
// of tenants it could not determine, are counted as "unknown".
func TestTenantMetricsAreBounded(t *testing.T) {
	c := startCluster(t, 1, 1, func(cfg *functions.Config) { cfg.MetricsMaxTenants = 2 })
	now := time.Now().UnixMilli()
	for _, tenant := range []string{"a", "b", "c", "d"} {
		if resp, body := post(t, c.routerURL, encodeV1(t, seriesV1("m", 3, now)), v1Headers(tenant)); resp.StatusCode != 204 {
			t.Fatalf("tenant %s: %d %s", tenant, resp.StatusCode, body)
		}
	}
	written := map[string]float64{}
	for _, m := range c.routerMetric("strata_router_written_total") {
		written[labelOf(m, "tenant")] += m.Counter.GetValue()
	}
	want := map[string]float64{"a": 3, "b": 3, "unknown": 6}
	if !maps.Equal(written, want) {
		t.Fatalf("samples written by tenant %v, want %v", written, want)
	}
}
