package storeapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	appbb "github.com/stratametrics/strata/app/blockbuilder"
	"github.com/stratametrics/strata/app/dev"
	"github.com/stratametrics/strata/blockbuilder"
	"github.com/stratametrics/strata/blockbuilder/storeapi"
	"github.com/stratametrics/strata/functions"
	"github.com/stratametrics/strata/internal/harness"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// node is one block builder of the test cluster: remote-write over HTTP
// and the StoreAPI over gRPC, both on loopback ports.
type node struct {
	bb       *blockbuilder.BlockBuilder
	grpcAddr string
	replica  string
	// written gets a token when a write has been answered: the router
	// answers at quorum, so the test waits for every replica itself.
	written chan struct{}
}

type cluster struct {
	nodes     []*node
	routerURL string
}

// startCluster runs a router and n block builders, each with its
// StoreAPI server and the given limits, in this process (app/dev).
func startCluster(t *testing.T, n, rf int, limits blockbuilder.QueryLimits) *cluster {
	t.Helper()
	c := &cluster{nodes: make([]*node, n)}
	cfg := dev.Config{DataDir: t.TempDir(), BlockBuilder: blockbuilder.DefaultConfig(), QueryLimits: limits, Router: functions.DefaultConfig()}
	cfg.BlockBuilder.Bucket.Dir = t.TempDir()
	cfg.BlockBuilder.BlockDuration = time.Hour
	cfg.BlockBuilder.LocalRetention = 3 * time.Hour
	cfg.BlockBuilder.ExternalLabels = map[string]string{"cluster": "test"}
	cfg.Router.ReplicationFactor = rf
	ls, err := dev.Listen("127.0.0.1:0", n)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := dev.Start(cfg, ls, dev.Options{BlockBuilder: func(i int, bc *blockbuilder.Config, bo *appbb.Options) {
		bc.ReplicaName = fmt.Sprintf("bb-%d", i)
		nd := &node{replica: bc.ReplicaName, grpcAddr: bc.GRPCListen, written: make(chan struct{}, 100)}
		c.nodes[i] = nd
		bo.Started = func(b *blockbuilder.BlockBuilder) { nd.bb = b }
		bo.Wrap = func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(w, r)
				if r.URL.Path == "/api/v1/receive" {
					nd.written <- struct{}{}
				}
			})
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cl.Stop(); err != nil {
			t.Errorf("stop the cluster: %v", err)
		}
	})
	c.routerURL = cl.Router.URL()
	return c
}

// write sends a remote-write 1.0 request through the router and waits
// until every block builder has stored it (the tests replicate to all).
func (c *cluster) write(t *testing.T, tenant string, req *prompb.WriteRequest) {
	t.Helper()
	if resp, body := harness.PostWrite(t, nil, c.routerURL, http.Header{"THANOS-TENANT": {tenant}}, req); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write through the router: %d %s", resp.StatusCode, body)
	}
	for _, nd := range c.nodes {
		select {
		case <-nd.written:
		case <-time.After(time.Minute):
			t.Fatalf("%s never got the write", nd.replica)
		}
	}
}

// sample is a float sample or, when h is set, a histogram sample.
type sample struct {
	t int64
	v float64
	h *histogram.Histogram
}

// dataset is what the test writes: tenant -> labels -> samples.
type dataset map[string]map[string][]sample

// client speaks the StoreAPI through reference messages (thanospb_test.go)
// call starts the server-streaming method with req, sent whole.
func (c *client) call(method string, req *dynamicpb.Message) grpc.ClientStream {
	c.t.Helper()
	stream, err := c.conn.NewStream(context.Background(), &grpc.StreamDesc{ServerStreams: true}, method)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := stream.SendMsg(req); err != nil {
		c.t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		c.t.Fatal(err)
	}
	return stream
}

// and gRPC's stock protobuf codec: nothing of the server's encoding.
type client struct {
	t    *testing.T
	conn *grpc.ClientConn
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn}
}

type infoResult struct {
	labelSets     []labels.Labels
	componentType string
	minTime       int64
	maxTime       int64
	withoutRepl   bool
	tsdbs         map[string][2]int64 // label set -> min, max time
}

func refLabels(ms []protoreflect.Message) labels.Labels {
	b := labels.NewScratchBuilder(len(ms))
	for _, m := range ms {
		b.Add(get(m, "name").String(), get(m, "value").String())
	}
	return b.Labels() // not sorted on purpose: the order sent is checked
}

func (c *client) info() infoResult {
	c.t.Helper()
	req, resp := thanosMsg(c.t, "thanos.info.InfoRequest"), thanosMsg(c.t, "thanos.info.InfoResponse")
	if err := c.conn.Invoke(context.Background(), "/thanos.info.Info/Info", req, resp); err != nil {
		c.t.Fatalf("Info: %v", err)
	}
	r := infoResult{componentType: get(resp, "ComponentType").String(), tsdbs: map[string][2]int64{}}
	for _, ls := range list(resp, "label_sets") {
		r.labelSets = append(r.labelSets, refLabels(list(ls, "labels")))
	}
	store := get(resp, "store").Message()
	r.minTime, r.maxTime = get(store, "min_time").Int(), get(store, "max_time").Int()
	r.withoutRepl = get(store, "supports_without_replica_labels").Bool()
	for _, ti := range list(store, "tsdb_infos") {
		ls := refLabels(list(get(ti, "labels").Message(), "labels"))
		r.tsdbs[ls.String()] = [2]int64{get(ti, "min_time").Int(), get(ti, "max_time").Int()}
	}
	return r
}

type matcher struct {
	typ         int32 // 0 =, 1 !=, 2 =~, 3 !~
	name, value string
}

type seriesReq struct {
	mint, maxt int64
	matchers   []matcher
	without    []string
	skipChunks bool
	limit      int64
	batch      int64
}

type chunk struct {
	mint, maxt int64
	enc        int32
	data       []byte
}

type seriesResult struct {
	lset    labels.Labels
	chunks  []chunk
	samples []sample // expected series only
}

func (c *client) series(r seriesReq) ([]seriesResult, []string, error) {
	c.t.Helper()
	req := thanosMsg(c.t, "thanos.SeriesRequest")
	set(req, "min_time", r.mint)
	set(req, "max_time", r.maxt)
	for _, m := range r.matchers {
		add(req, "matchers", refMatcher(c.t, m.typ, m.name, m.value))
	}
	for _, w := range r.without {
		add(req, "without_replica_labels", w)
	}
	set(req, "skip_chunks", r.skipChunks)
	set(req, "limit", r.limit)
	set(req, "response_batch_size", r.batch)
	stream := c.call("/thanos.Store/Series", req)
	var (
		out      []seriesResult
		warnings []string
	)
	addSeries := func(s protoreflect.Message) {
		res := seriesResult{lset: refLabels(list(s, "labels"))}
		for _, ac := range list(s, "chunks") {
			raw := get(ac, "raw").Message()
			res.chunks = append(res.chunks, chunk{
				mint: get(ac, "min_time").Int(), maxt: get(ac, "max_time").Int(),
				enc: int32(get(raw, "type").Enum()), data: get(raw, "data").Bytes(),
			})
		}
		// A series may come in several frames, one after the other.
		if n := len(out); n > 0 && labels.Equal(out[n-1].lset, res.lset) {
			out[n-1].chunks = append(out[n-1].chunks, res.chunks...)
			return
		}
		out = append(out, res)
	}
	for {
		resp := thanosMsg(c.t, "thanos.SeriesResponse")
		err := stream.RecvMsg(resp)
		if errors.Is(err, io.EOF) {
			return out, warnings, nil
		}
		if err != nil {
			return out, warnings, err
		}
		switch {
		case resp.Has(fd(resp, "series")):
			addSeries(get(resp, "series").Message())
		case resp.Has(fd(resp, "batch")):
			for _, s := range list(get(resp, "batch").Message(), "series") {
				addSeries(s)
			}
		case resp.Has(fd(resp, "warning")):
			warnings = append(warnings, get(resp, "warning").String())
		default:
			c.t.Fatalf("a SeriesResponse with no member set: %v", resp)
		}
	}
}

func (c *client) labelNames(start, end int64, ms ...matcher) []string {
	c.t.Helper()
	req, resp := thanosMsg(c.t, "thanos.LabelNamesRequest"), thanosMsg(c.t, "thanos.LabelNamesResponse")
	set(req, "start", start)
	set(req, "end", end)
	for _, m := range ms {
		add(req, "matchers", refMatcher(c.t, m.typ, m.name, m.value))
	}
	if err := c.conn.Invoke(context.Background(), "/thanos.Store/LabelNames", req, resp); err != nil {
		c.t.Fatalf("LabelNames: %v", err)
	}
	return strs(resp, "names")
}

func (c *client) labelValues(name string, start, end int64, ms ...matcher) []string {
	c.t.Helper()
	req, resp := thanosMsg(c.t, "thanos.LabelValuesRequest"), thanosMsg(c.t, "thanos.LabelValuesResponse")
	set(req, "label", name)
	set(req, "start", start)
	set(req, "end", end)
	for _, m := range ms {
		add(req, "matchers", refMatcher(c.t, m.typ, m.name, m.value))
	}
	if err := c.conn.Invoke(context.Background(), "/thanos.Store/LabelValues", req, resp); err != nil {
		c.t.Fatalf("LabelValues: %v", err)
	}
	return strs(resp, "values")
}

// decode reads a chunk's samples with the TSDB's own chunk decoder and
// keeps those in [mint, maxt], as Thanos Query trims.
func decode(t *testing.T, c chunk, mint, maxt int64) []sample {
	t.Helper()
	// Thanos' encoding numbers are the TSDB's minus one.
	chk, err := chunkenc.FromData(chunkenc.Encoding(c.enc+1), c.data)
	if err != nil {
		t.Fatalf("chunk of encoding %d: %v", c.enc, err)
	}
	var out []sample
	it := chk.Iterator(nil)
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		var s sample
		switch vt {
		case chunkenc.ValFloat:
			s.t, s.v = it.At()
		case chunkenc.ValHistogram:
			s.t, s.h = it.AtHistogram(nil)
		default:
			t.Fatalf("unexpected sample type %s", vt)
		}
		if s.t < c.mint || s.t > c.maxt {
			t.Errorf("sample at %d outside its chunk's range [%d, %d]", s.t, c.mint, c.maxt)
		}
		if s.t >= mint && s.t <= maxt {
			out = append(out, s)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// samplesOf decodes every chunk of a series.
func samplesOf(t *testing.T, s seriesResult, mint, maxt int64) []sample {
	var out []sample
	for _, c := range s.chunks {
		out = append(out, decode(t, c, mint, maxt)...)
	}
	return out
}

func equalSamples(a, b []sample) bool {
	return slices.EqualFunc(a, b, func(x, y sample) bool {
		if x.t != y.t || (x.h == nil) != (y.h == nil) {
			return false
		}
		if x.h != nil {
			return x.h.Equals(y.h)
		}
		return x.v == y.v
	})
}

// makeData writes, per tenant, series chosen to cover the orders a
// StoreAPI must get right: a metric with no other label ahead of its
// extensions (whose labels sort before the external labels), labels
// after the external labels, and a native histogram.
func makeData(base int64, n int) (dataset, map[string]*prompb.WriteRequest) {
	data := dataset{}
	reqs := map[string]*prompb.WriteRequest{}
	series := []labels.Labels{
		labels.FromStrings("__name__", "test_metric"),
		labels.FromStrings("__name__", "test_metric", "instance", "a", "job", "api"),
		labels.FromStrings("__name__", "test_metric", "instance", "b", "job", "api"),
		labels.FromStrings("__name__", "test_metric", "instance", "c", "job", "web"),
		labels.FromStrings("__name__", "other_metric", "job", "api"),
		labels.FromStrings("__name__", "zz_metric", "zone", "z"),
	}
	for ti, tenant := range []string{"team-a", "team-b"} {
		data[tenant] = map[string][]sample{}
		req := &prompb.WriteRequest{}
		for si, ls := range series {
			ts := prompb.TimeSeries{}
			ls.Range(func(l labels.Label) { ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value}) })
			var smps []sample
			for i := 0; i < n; i++ {
				s := sample{t: base + int64(i)*15000, v: float64(1000*ti+100*si) + float64(i)*0.5}
				smps = append(smps, s)
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: s.t, Value: s.v})
			}
			data[tenant][ls.String()] = smps
			req.Timeseries = append(req.Timeseries, ts)
		}
		if tenant == "team-a" {
			ls := labels.FromStrings("__name__", "test_histogram", "job", "api")
			ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "test_histogram"}, {Name: "job", Value: "api"}}}
			var smps []sample
			for i, h := range tsdbutil.GenerateTestHistograms(n) {
				s := sample{t: base + int64(i)*15000, h: h}
				smps = append(smps, s)
				ts.Histograms = append(ts.Histograms, prompb.FromIntHistogram(s.t, h))
			}
			data[tenant][ls.String()] = smps
			req.Timeseries = append(req.Timeseries, ts)
		}
		reqs[tenant] = req
	}
	return data, reqs
}

// extLabels is the label set a tenant has on a node.
func extLabels(n *node, tenant string) labels.Labels {
	return labels.FromStrings("cluster", "test", "receive_replica", n.replica, "tenant_id", tenant)
}

// expected lists, for a node, every series as the StoreAPI must send it
// (external labels merged in, sorted) with its samples in [mint, maxt],
// for the tenants and stored labels keep selects.
func expected(n *node, data dataset, mint, maxt int64, keep func(tenant string, ls labels.Labels) bool, drop ...string) []seriesResult {
	var out []seriesResult
	for _, e := range expectedOf(n, data, func(s sample) int64 { return s.t }, mint, maxt, keep, drop...) {
		out = append(out, seriesResult{lset: e.lset, samples: e.items})
	}
	return out
}

// expectedSeries is one series of a dataset as a node must answer it.
type expectedSeries[T any] struct {
	lset  labels.Labels
	items []T
}

// expectedOf lists, for a node, the series of data (per tenant, per
// stored labels) that keep selects (nil: all) with their items whose time
// is in [mint, maxt], labelled as the node sends them: the tenant's
// external labels merged in, drop removed, sorted by labels. Series with
// no item in range are left out.
func expectedOf[T any](n *node, data map[string]map[string][]T, at func(T) int64, mint, maxt int64, keep func(tenant string, ls labels.Labels) bool, drop ...string) []expectedSeries[T] {
	var out []expectedSeries[T]
	for tenant, series := range data {
		for key, items := range series {
			stored, err := parseLabels(key)
			if err != nil {
				panic(err)
			}
			if keep != nil && !keep(tenant, stored) {
				continue
			}
			var in []T
			for _, it := range items {
				if t := at(it); t >= mint && t <= maxt {
					in = append(in, it)
				}
			}
			if len(in) == 0 {
				continue
			}
			b := labels.NewBuilder(stored)
			extLabels(n, tenant).Range(func(l labels.Label) { b.Set(l.Name, l.Value) })
			for _, d := range drop {
				b.Del(d)
			}
			out = append(out, expectedSeries[T]{lset: b.Labels(), items: in})
		}
	}
	slices.SortFunc(out, func(a, b expectedSeries[T]) int { return labels.Compare(a.lset, b.lset) })
	return out
}

func parseLabels(s string) (labels.Labels, error) {
	// The keys are labels.Labels.String() of labels made in this file:
	// {a="b", c="d"} with values free of quotes and commas.
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	b := labels.NewScratchBuilder(4)
	if s == "" {
		return b.Labels(), nil
	}
	for _, kv := range strings.Split(s, ", ") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return labels.EmptyLabels(), fmt.Errorf("bad label %q", kv)
		}
		b.Add(k, strings.Trim(v, `"`))
	}
	b.Sort()
	return b.Labels(), nil
}

// checkSeries compares a Series answer with what is expected, labels in
// order and samples exact.
func checkSeries(t *testing.T, got, want []seriesResult, mint, maxt int64) {
	t.Helper()
	gotNames := make([]string, len(got))
	for i, s := range got {
		gotNames[i] = s.lset.String()
		if i > 0 && labels.Compare(got[i-1].lset, s.lset) >= 0 {
			t.Errorf("series %d %s is not after %s: the StoreAPI must send series sorted", i, s.lset, got[i-1].lset)
		}
	}
	wantNames := make([]string, len(want))
	for i, s := range want {
		wantNames[i] = s.lset.String()
	}
	if !slices.Equal(gotNames, wantNames) {
		t.Fatalf("series\n %s\nwant\n %s", strings.Join(gotNames, "\n "), strings.Join(wantNames, "\n "))
	}
	for i, s := range got {
		if got, want := samplesOf(t, s, mint, maxt), want[i].samples; !equalSamples(got, want) {
			t.Errorf("%s: samples\n %v\nwant\n %v", s.lset, got, want)
		}
	}
}

func TestStoreAPIThroughRouter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := startCluster(t, 3, 3, blockbuilder.DefaultQueryLimits())
	const n = 80 // 20 minutes at 15s
	base := (time.Now().Add(-40*time.Minute).UnixMilli() / 60000) * 60000
	end := base + (n-1)*15000
	data, reqs := makeData(base, n)
	for tenant, req := range reqs {
		c.write(t, tenant, req)
	}
	all := func(string, labels.Labels) bool { return true }

	for _, nd := range c.nodes {
		t.Run(nd.replica, func(t *testing.T) {
			cl := dial(t, nd.grpcAddr)

			t.Run("info", func(t *testing.T) {
				info := cl.info()
				if info.componentType != "receive" || !info.withoutRepl {
					t.Errorf("component %q, without_replica_labels %v", info.componentType, info.withoutRepl)
				}
				var got []string
				for _, ls := range info.labelSets {
					got = append(got, ls.String())
				}
				want := []string{extLabels(nd, "team-a").String(), extLabels(nd, "team-b").String()}
				if !slices.Equal(got, want) {
					t.Errorf("label sets %v, want one per tenant %v", got, want)
				}
				if info.minTime != base || info.maxTime != math.MaxInt64 {
					t.Errorf("time range [%d, %d], want [%d, MaxInt64]", info.minTime, info.maxTime, base)
				}
				for _, tenant := range []string{"team-a", "team-b"} {
					if r := info.tsdbs[extLabels(nd, tenant).String()]; r != [2]int64{base, math.MaxInt64} {
						t.Errorf("TSDB info of %s: %v", tenant, r)
					}
				}
			})

			t.Run("health", func(t *testing.T) {
				// gRPC's health service on the StoreAPI's port, as
				// Kubernetes' gRPC probes ask it.
				hc := healthpb.NewHealthClient(cl.conn)
				for _, svc := range []string{"", "thanos.Store", "thanos.info.Info"} {
					resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
					if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
						t.Errorf("health of %q: %v, %v", svc, resp.GetStatus(), err)
					}
				}
				if _, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "thanos.Nothing"}); status.Code(err) != codes.NotFound {
					t.Errorf("health of an unknown service: %v, want NotFound", err)
				}
			})

			t.Run("all series", func(t *testing.T) {
				got, warns, err := cl.series(seriesReq{mint: base, maxt: end, matchers: []matcher{{2, "__name__", ".+"}}})
				if err != nil || len(warns) > 0 {
					t.Fatalf("Series: %v %v", err, warns)
				}
				checkSeries(t, got, expected(nd, data, base, end, all), base, end)
				for _, s := range got {
					want := int32(storeapi.EncodingXOR)
					if s.lset.Get("__name__") == "test_histogram" {
						want = int32(storeapi.EncodingHistogram)
					}
					for _, ch := range s.chunks {
						if ch.enc != want {
							t.Errorf("%s: chunk encoding %d, want %d", s.lset, ch.enc, want)
						}
					}
				}
			})

			matcherCases := []struct {
				name string
				ms   []matcher
				keep func(tenant string, ls labels.Labels) bool
			}{
				{"equal", []matcher{{0, "__name__", "test_metric"}, {0, "job", "api"}},
					func(_ string, ls labels.Labels) bool {
						return ls.Get("__name__") == "test_metric" && ls.Get("job") == "api"
					}},
				{"not equal", []matcher{{0, "__name__", "test_metric"}, {1, "instance", "a"}},
					func(_ string, ls labels.Labels) bool {
						return ls.Get("__name__") == "test_metric" && ls.Get("instance") != "a"
					}},
				{"regexp", []matcher{{2, "__name__", "test_.*|other_metric"}, {2, "job", "ap.*"}},
					func(_ string, ls labels.Labels) bool {
						return ls.Get("__name__") != "zz_metric" && ls.Get("job") == "api"
					}},
				{"not regexp", []matcher{{3, "__name__", "test_.*"}},
					func(_ string, ls labels.Labels) bool {
						return !strings.HasPrefix(ls.Get("__name__"), "test_")
					}},
				{"tenant equal", []matcher{{0, "tenant_id", "team-b"}},
					func(tenant string, _ labels.Labels) bool { return tenant == "team-b" }},
				{"tenant not equal", []matcher{{1, "tenant_id", "team-b"}, {0, "job", "api"}},
					func(tenant string, ls labels.Labels) bool { return tenant == "team-a" && ls.Get("job") == "api" }},
				{"tenant regexp", []matcher{{2, "tenant_id", "team-.*"}, {0, "__name__", "zz_metric"}},
					func(_ string, ls labels.Labels) bool { return ls.Get("__name__") == "zz_metric" }},
				{"tenant not regexp", []matcher{{3, "tenant_id", ".*-a"}, {0, "__name__", "other_metric"}},
					func(tenant string, ls labels.Labels) bool {
						return tenant == "team-b" && ls.Get("__name__") == "other_metric"
					}},
				{"this replica", []matcher{{0, "receive_replica", nd.replica}, {0, "__name__", "test_metric"}},
					func(_ string, ls labels.Labels) bool { return ls.Get("__name__") == "test_metric" }},
				{"another replica", []matcher{{0, "receive_replica", "elsewhere"}, {0, "__name__", "test_metric"}},
					func(string, labels.Labels) bool { return false }},
			}
			for _, mc := range matcherCases {
				t.Run("matchers "+mc.name, func(t *testing.T) {
					got, _, err := cl.series(seriesReq{mint: base, maxt: end, matchers: mc.ms})
					if err != nil {
						t.Fatal(err)
					}
					checkSeries(t, got, expected(nd, data, base, end, mc.keep), base, end)
				})
			}

			t.Run("time range", func(t *testing.T) {
				mint, maxt := base+5*60000, base+10*60000-1
				got, _, err := cl.series(seriesReq{mint: mint, maxt: maxt, matchers: []matcher{{2, "job", ".+"}}})
				if err != nil {
					t.Fatal(err)
				}
				keep := func(_ string, ls labels.Labels) bool { return ls.Has("job") }
				checkSeries(t, got, expected(nd, data, mint, maxt, keep), mint, maxt)
				for _, s := range got {
					for _, ch := range s.chunks {
						if ch.maxt < mint || ch.mint > maxt {
							t.Errorf("%s: chunk [%d, %d] outside the range asked", s.lset, ch.mint, ch.maxt)
						}
					}
				}
				after, _, err := cl.series(seriesReq{mint: end + 1, maxt: end + 3600000, matchers: []matcher{{2, "job", ".+"}}})
				if err != nil || len(after) != 0 {
					t.Errorf("a range after the data returned %d series, %v", len(after), err)
				}
			})

			t.Run("without replica labels, batched", func(t *testing.T) {
				got, _, err := cl.series(seriesReq{mint: base, maxt: end, matchers: []matcher{{0, "tenant_id", "team-a"}}, without: []string{"receive_replica"}, batch: 4})
				if err != nil {
					t.Fatal(err)
				}
				keep := func(tenant string, _ labels.Labels) bool { return tenant == "team-a" }
				checkSeries(t, got, expected(nd, data, base, end, keep, "receive_replica"), base, end)
			})

			t.Run("skip chunks and limit", func(t *testing.T) {
				got, _, err := cl.series(seriesReq{mint: base, maxt: end, matchers: []matcher{{0, "__name__", "test_metric"}}, skipChunks: true, limit: 3})
				if err != nil {
					t.Fatal(err)
				}
				want := expected(nd, data, base, end, func(_ string, ls labels.Labels) bool { return ls.Get("__name__") == "test_metric" })[:3]
				if len(got) != 3 {
					t.Fatalf("%d series, want the limit of 3", len(got))
				}
				for i := range got {
					if !labels.Equal(got[i].lset, want[i].lset) || len(got[i].chunks) != 0 {
						t.Errorf("series %d: %s with %d chunks, want %s without chunks", i, got[i].lset, len(got[i].chunks), want[i].lset)
					}
				}
			})

			t.Run("bad matcher", func(t *testing.T) {
				_, _, err := cl.series(seriesReq{mint: base, maxt: end, matchers: []matcher{{2, "job", "("}}})
				if status.Code(err) != codes.InvalidArgument {
					t.Errorf("a bad regexp gave %v, want InvalidArgument", err)
				}
			})

			t.Run("label names", func(t *testing.T) {
				got := cl.labelNames(base, end)
				want := []string{"__name__", "cluster", "instance", "job", "receive_replica", "tenant_id", "zone"}
				if !slices.Equal(got, want) {
					t.Errorf("label names %v, want %v", got, want)
				}
				got = cl.labelNames(base, end, matcher{0, "__name__", "other_metric"}, matcher{0, "tenant_id", "team-b"})
				want = []string{"__name__", "cluster", "job", "receive_replica", "tenant_id"}
				if !slices.Equal(got, want) {
					t.Errorf("label names of other_metric %v, want %v", got, want)
				}
				if got := cl.labelNames(end+60000, end+120000); len(got) != 0 {
					t.Errorf("label names after the data: %v", got)
				}
			})

			t.Run("label values", func(t *testing.T) {
				if got, want := cl.labelValues("instance", base, end), []string{"a", "b", "c"}; !slices.Equal(got, want) {
					t.Errorf("instance values %v, want %v", got, want)
				}
				if got, want := cl.labelValues("tenant_id", base, end), []string{"team-a", "team-b"}; !slices.Equal(got, want) {
					t.Errorf("tenant values %v, want %v", got, want)
				}
				if got, want := cl.labelValues("tenant_id", base, end, matcher{0, "__name__", "test_histogram"}), []string{"team-a"}; !slices.Equal(got, want) {
					t.Errorf("tenants with a histogram %v, want %v", got, want)
				}
				if got, want := cl.labelValues("job", base, end, matcher{1, "job", "api"}, matcher{2, "tenant_id", "team-b"}), []string{"web"}; !slices.Equal(got, want) {
					t.Errorf("job values %v, want %v", got, want)
				}
			})
		})
	}

	// The same answers once the heads are cut into local blocks, and over
	// blocks and head together once more samples arrive.
	for _, nd := range c.nodes {
		if err := nd.bb.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	base2 := end + 15000
	more, moreReqs := makeData(base2, 20)
	for tenant, req := range moreReqs {
		c.write(t, tenant, req)
	}
	for tenant, series := range more {
		for k, smps := range series {
			data[tenant][k] = append(data[tenant][k], smps...)
		}
	}
	end2 := base2 + 19*15000
	for _, nd := range c.nodes {
		t.Run(nd.replica+" blocks and head", func(t *testing.T) {
			blocks := 0
			for _, tv := range nd.bb.Tenants() {
				blocks += len(tv.DB.Blocks())
			}
			if blocks == 0 {
				t.Fatal("flush left no local block to read")
			}
			cl := dial(t, nd.grpcAddr)
			got, _, err := cl.series(seriesReq{mint: base, maxt: end2, matchers: []matcher{{2, "__name__", ".+"}}})
			if err != nil {
				t.Fatal(err)
			}
			checkSeries(t, got, expected(nd, data, base, end2, all), base, end2)
		})
	}
}

func TestStoreAPILimits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	limits := blockbuilder.QueryLimits{MaxSeries: 5, MaxSamples: 100}
	c := startCluster(t, 1, 1, limits)
	base := (time.Now().Add(-30*time.Minute).UnixMilli() / 60000) * 60000
	_, reqs := makeData(base, 80)
	c.write(t, "team-a", reqs["team-a"])
	cl := dial(t, c.nodes[0].grpcAddr)

	_, _, err := cl.series(seriesReq{mint: base, maxt: base + 3600000, matchers: []matcher{{2, "__name__", ".+"}}, skipChunks: true})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "STRATA_QUERY_MAX_SERIES") {
		t.Errorf("7 series over a limit of 5: %v, want ResourceExhausted naming the variable", err)
	}
	got, _, err := cl.series(seriesReq{mint: base, maxt: base + 3600000, matchers: []matcher{{0, "__name__", "test_metric"}}, skipChunks: true})
	if err != nil || len(got) != 4 {
		t.Errorf("4 series under the limit: %d, %v", len(got), err)
	}
	_, _, err = cl.series(seriesReq{mint: base, maxt: base + 3600000, matchers: []matcher{{0, "__name__", "test_metric"}}})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "STRATA_QUERY_MAX_SAMPLES") {
		t.Errorf("320 samples over a limit of 100: %v, want ResourceExhausted naming the variable", err)
	}
}
