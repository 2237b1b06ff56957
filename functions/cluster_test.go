package functions_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/thanos-io/objstore"

	appbb "github.com/stratametrics/strata/app/blockbuilder"
	"github.com/stratametrics/strata/app/dev"
	"github.com/stratametrics/strata/blockbuilder"
	"github.com/stratametrics/strata/bucket"
	"github.com/stratametrics/strata/functions"
	"github.com/stratametrics/strata/internal/forwarding"
	"github.com/stratametrics/strata/internal/harness"
)

// Modes a test block builder can be put in.
const (
	modeServe int32 = iota
	modeFail        // answers 500
	modeHang        // holds the request until the test ends
	modeAuth        // answers 401, as with a missing forward token
	// modeOldRelease is a block builder of a release before framed
	// bodies: it answers them 415 and announces no Accept-Encoding.
	modeOldRelease
)

// testBlockBuilder is a real block builder served over real HTTP, with a
// switch in front to make it fail or hang.
type testBlockBuilder struct {
	bb   *blockbuilder.BlockBuilder
	addr string // host:port of its HTTP server
	mode atomic.Int32
	hits atomic.Int32
	// delay, when set, holds the n-th write (from 1) that long first.
	delay atomic.Pointer[func(n int32) time.Duration]
	// electDown answers HA elections 503, as a block builder restarting.
	electDown atomic.Bool
	// refusedFramed counts framed bodies modeOldRelease refused.
	refusedFramed atomic.Int32
}

// url is the block builder's remote-write URL.
func (b *testBlockBuilder) url() string { return "http://" + b.addr + "/api/v1/receive" }

type cluster struct {
	t         *testing.T
	bbs       []*testBlockBuilder
	router    *functions.Router
	routerURL string
	routerReg *prometheus.Registry // the router's metrics
	bucket    objstore.Bucket      // where the block builders upload
	release   chan struct{}        // closed at cleanup: hung requests return
}

// clusterOptions are what startClusterWith can change beyond n and rf.
type clusterOptions struct {
	router func(*functions.Config)
	// blockBuilder adjusts the configuration of block builder i.
	blockBuilder func(i int, cfg *blockbuilder.Config)
	// s3 uploads to a real S3 server instead of a directory.
	s3 bool
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startCluster starts n block builders and a router with replication
// factor rf over them, all in this process and over loopback HTTP.
func startCluster(t *testing.T, n, rf int, tweak func(*functions.Config)) *cluster {
	t.Helper()
	return startClusterWith(t, n, rf, clusterOptions{router: tweak})
}

func startClusterWith(t *testing.T, n, rf int, opts clusterOptions) *cluster {
	t.Helper()
	c := &cluster{t: t, release: make(chan struct{})}
	var bucketCfg bucket.Config
	if opts.s3 {
		bucketCfg = harness.StartS3(t).BucketConfig()
	} else {
		bucketCfg.Dir = t.TempDir()
	}
	bkt, err := bucketCfg.Open(context.Background(), quietLogger(), nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	c.bucket = bkt
	cfg := dev.Config{DataDir: t.TempDir(), BlockBuilder: blockbuilder.DefaultConfig(), QueryLimits: blockbuilder.DefaultQueryLimits(), Router: functions.DefaultConfig()}
	cfg.BlockBuilder.Bucket = bucketCfg
	cfg.BlockBuilder.BlockDuration = time.Hour
	cfg.BlockBuilder.LocalRetention = time.Hour
	cfg.Router.ReplicationFactor = rf
	cfg.Router.ForwardTimeout = 2 * time.Second
	if opts.router != nil {
		opts.router(&cfg.Router)
	}
	c.bbs = make([]*testBlockBuilder, n)
	ls, err := dev.Listen("127.0.0.1:0", n)
	if err != nil {
		t.Fatal(err)
	}
	scheme := "http"
	if cfg.Router.TLS.Enabled() {
		// As `strata router` serves (server.ListenTLS).
		tlsCfg, err := cfg.Router.TLS.TLS()
		if err != nil {
			ls.Close()
			t.Fatal(err)
		}
		ls.Router, scheme = tls.NewListener(ls.Router, tlsCfg), "https"
	}
	cl, err := dev.Start(cfg, ls, dev.Options{BlockBuilder: func(i int, bc *blockbuilder.Config, bo *appbb.Options) {
		bc.ReplicaName = fmt.Sprintf("bb-%d", i)
		if opts.blockBuilder != nil {
			opts.blockBuilder(i, bc)
		}
		tb := &testBlockBuilder{addr: bc.HTTPListen}
		c.bbs[i] = tb
		bo.Started = func(b *blockbuilder.BlockBuilder) { tb.bb = b }
		bo.Wrap = func(h http.Handler) http.Handler { return c.faults(tb, h) }
	}})
	if err != nil {
		t.Fatal(err)
	}
	c.router, c.routerURL, c.routerReg = cl.Router.Router, scheme+"://"+cl.Router.Addr+"/api/v1/receive", cl.Router.Registry
	t.Cleanup(func() {
		close(c.release)
		if err := cl.Stop(); err != nil {
			t.Errorf("stop the cluster: %v", err)
		}
	})
	return c
}

// faults puts tb's switch in front of its block builder's handler h.
func (c *cluster) faults(tb *testBlockBuilder, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/receive" {
			n := tb.hits.Add(1)
			if d := tb.delay.Load(); d != nil {
				time.Sleep((*d)(n))
			}
		}
		if r.URL.Path == forwarding.ElectPath && tb.electDown.Load() {
			http.Error(w, "injected: restarting", http.StatusServiceUnavailable)
			return
		}
		switch tb.mode.Load() {
		case modeFail:
			http.Error(w, "injected failure", http.StatusInternalServerError)
			return
		case modeAuth:
			http.Error(w, "unauthorized: a bearer token is required", http.StatusUnauthorized)
			return
		case modeHang:
			select {
			case <-c.release:
			case <-r.Context().Done():
			}
			return
		case modeOldRelease:
			w = withoutAcceptEncoding{w}
			if enc := r.Header.Get("Content-Encoding"); enc != "" && enc != "snappy" {
				tb.refusedFramed.Add(1)
				http.Error(w, fmt.Sprintf("unsupported media type: Content-Encoding %q, only snappy is supported", enc), http.StatusUnsupportedMediaType)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// withoutAcceptEncoding drops the Accept-Encoding of an answer.
type withoutAcceptEncoding struct{ http.ResponseWriter }

func (w withoutAcceptEncoding) WriteHeader(code int) {
	w.Header().Del("Accept-Encoding")
	w.ResponseWriter.WriteHeader(code)
}

func (w withoutAcceptEncoding) Write(b []byte) (int, error) {
	w.Header().Del("Accept-Encoding")
	return w.ResponseWriter.Write(b)
}

// endpointUp is the router's strata_router_endpoint_up for block builder
// i: 0 while it backs the block builder off.
func (c *cluster) endpointUp(i int) float64 {
	c.t.Helper()
	addr := c.bbs[i].addr
	for _, m := range c.routerMetric("strata_router_endpoint_up") {
		if labelOf(m, "endpoint") == addr {
			return m.Gauge.GetValue()
		}
	}
	c.t.Fatalf("the router has no strata_router_endpoint_up for %s", addr)
	return 0
}

// routerMetric returns the series of one of the router's metrics.
func (c *cluster) routerMetric(name string) []*dto.Metric {
	c.t.Helper()
	mfs, err := c.routerReg.Gather()
	if err != nil {
		c.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.Metric
		}
	}
	return nil
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// waitEndpointUp waits for the router to report block builder i up (1)
// or backed off (0). Parts of a write still in flight after its answer
// report their block builder's state a little later.
func (c *cluster) waitEndpointUp(i int, want float64) {
	c.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); c.endpointUp(i) != want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			c.t.Fatalf("the router's strata_router_endpoint_up for block builder %d stayed %v, want %v", i, c.endpointUp(i), want)
		}
	}
}

// flush cuts and uploads every block builder's head.
func (c *cluster) flush() {
	c.t.Helper()
	for i, b := range c.bbs {
		if err := b.bb.Flush(context.Background()); err != nil {
			c.t.Fatalf("flush block builder %d: %v", i, err)
		}
	}
}

// bucketSamples reads every float sample back from the uploaded blocks.
func (c *cluster) bucketSamples() (harness.Samples, []harness.BlockInfo) {
	c.t.Helper()
	return harness.BucketSamples(c.t, c.bucket, "tenant_id", "receive_replica")
}

// post sends a raw body with headers and returns the answer.
func post(t *testing.T, url string, body []byte, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func v1Headers(tenant string) map[string]string {
	h := map[string]string{"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy", "X-Prometheus-Remote-Write-Version": "0.1.0"}
	if tenant != "" {
		h["THANOS-TENANT"] = tenant
	}
	return h
}

func v2Headers(tenant string) map[string]string {
	h := v1Headers(tenant)
	h["Content-Type"] = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
	h["X-Prometheus-Remote-Write-Version"] = "2.0.0"
	return h
}

func encodeV1(t testing.TB, req *prompb.WriteRequest) []byte {
	t.Helper()
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

func encodeV2(t testing.TB, req *writev2.Request) []byte {
	t.Helper()
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

// series makes n series of one sample each at ts, value i.
func seriesV1(prefix string, n int, ts int64) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	for i := 0; i < n; i++ {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels: []prompb.Label{
				{Name: "__name__", Value: prefix + "_metric"},
				{Name: "instance", Value: fmt.Sprintf("host-%d", i)},
				{Name: "job", Value: "test"},
			},
			Samples: []prompb.Sample{{Value: float64(i), Timestamp: ts}},
		})
	}
	return req
}

// seriesV2 makes n 2.0 series of one sample each at ts, value i.
func seriesV2(prefix string, n int, ts int64) *writev2.Request {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	for i := 0; i < n; i++ {
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", prefix+"_metric", "instance", fmt.Sprintf("host-%d", i)), nil),
			Samples:    []writev2.Sample{{Value: float64(i), Timestamp: ts}},
		})
	}
	req.Symbols = st.Symbols()
	return req
}

// promClient is Prometheus' own remote-write client.
func promClient(t *testing.T, rawURL, tenant string, msg remoteapi.WriteMessageType) remote.WriteClient {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := remote.NewWriteClient("test", &remote.ClientConfig{
		URL:              &config_util.URL{URL: u},
		Timeout:          model.Duration(10 * time.Second),
		Headers:          map[string]string{"THANOS-TENANT": tenant},
		WriteProtoMsg:    msg,
		HTTPClientConfig: config_util.DefaultHTTPClientConfig,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var _ sync.Locker = (*sync.Mutex)(nil)

func encodeSnappyRaw(b []byte) []byte { return snappy.Encode(nil, b) }
