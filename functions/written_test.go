package functions_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"

	"github.com/stratametrics/strata/blockbuilder"
	"github.com/stratametrics/strata/internal/forwarding"
	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/remotewrite"
)

// v2Request builds a remote-write 2.0 request and counts what it holds.
type v2Request struct {
	symbols writev2.SymbolsTable
	req     writev2.Request
	sent    forwarding.Written
}

func newV2Request() *v2Request { return &v2Request{symbols: writev2.NewSymbolTable()} }

// add appends s as the series ls, with metadata.
func (r *v2Request) add(ls labels.Labels, typ writev2.Metadata_MetricType, help string, s writev2.TimeSeries) {
	s.LabelsRefs = r.symbols.SymbolizeLabels(ls, nil)
	s.Metadata = writev2.Metadata{Type: typ, HelpRef: r.symbols.Symbolize(help)}
	r.req.Timeseries = append(r.req.Timeseries, s)
	r.sent.Samples += len(s.Samples)
	r.sent.Histograms += len(s.Histograms)
	r.sent.Exemplars += len(s.Exemplars)
}

// exemplar is an exemplar with a trace ID.
func (r *v2Request) exemplar(traceID string, v float64, ts int64) writev2.Exemplar {
	return writev2.Exemplar{LabelsRefs: r.symbols.SymbolizeLabels(labels.FromStrings("trace_id", traceID), nil), Value: v, Timestamp: ts}
}

// mixed adds n series of each kind, each with one sample at ts and two
// exemplars: counters of float samples, integer native histograms and
// float native histograms. step makes the values grow from one call to
// the next, as counters do.
func (r *v2Request) mixed(prefix string, n int, ts int64, step int64) {
	for i := 0; i < n; i++ {
		inst := fmt.Sprintf("h-%d", i)
		exs := func(kind string) []writev2.Exemplar {
			return []writev2.Exemplar{
				r.exemplar(fmt.Sprintf("%s-%s-%d-a", kind, inst, step), 0.5, ts-1),
				r.exemplar(fmt.Sprintf("%s-%s-%d-b", kind, inst, step), 1.5, ts),
			}
		}
		r.add(labels.FromStrings("__name__", prefix+"_requests_total", "instance", inst), writev2.Metadata_METRIC_TYPE_COUNTER, "Requests.",
			writev2.TimeSeries{Samples: []writev2.Sample{{Value: float64(step*100 + int64(i)), Timestamp: ts}}, Exemplars: exs("float")})
		r.add(labels.FromStrings("__name__", prefix+"_latency_seconds", "instance", inst), writev2.Metadata_METRIC_TYPE_HISTOGRAM, "Latency.",
			writev2.TimeSeries{Histograms: []writev2.Histogram{writev2.FromIntHistogram(0, ts, tsdbutil.GenerateTestHistogram(step+int64(i)))}, Exemplars: exs("int")})
		r.add(labels.FromStrings("__name__", prefix+"_size_bytes", "instance", inst), writev2.Metadata_METRIC_TYPE_HISTOGRAM, "Size.",
			writev2.TimeSeries{Histograms: []writev2.Histogram{writev2.FromFloatHistogram(0, ts, tsdbutil.GenerateTestFloatHistogram(step+int64(i)))}, Exemplars: exs("float-histogram")})
	}
}

// series is the index of the series named name with instance inst.
func (r *v2Request) series(t *testing.T, name, inst string) int {
	t.Helper()
	var b labels.ScratchBuilder
	for i, s := range r.req.Timeseries {
		ls, err := s.ToLabels(&b, r.symbols.Symbols())
		if err != nil {
			t.Fatal(err)
		}
		if ls.Get("__name__") == name && ls.Get("instance") == inst {
			return i
		}
	}
	t.Fatalf("no series %s{instance=%q} in the request", name, inst)
	return -1
}

func (r *v2Request) encode(t testing.TB) []byte {
	t.Helper()
	r.req.Symbols = r.symbols.Symbols()
	return encodeV2(t, &r.req)
}

// histograms is every histogram sample of the request, as the bucket
// should hold them.
func (r *v2Request) histograms(t testing.TB) map[string]map[int64]harness.Histogram {
	t.Helper()
	out := map[string]map[int64]harness.Histogram{}
	var b labels.ScratchBuilder
	for _, s := range r.req.Timeseries {
		if len(s.Histograms) == 0 {
			continue
		}
		ls, err := s.ToLabels(&b, r.symbols.Symbols())
		if err != nil {
			t.Fatal(err)
		}
		m := map[int64]harness.Histogram{}
		for _, h := range s.Histograms {
			if h.IsFloatHistogram() {
				m[h.Timestamp] = harness.Histogram{FH: h.ToFloatHistogram()}
			} else {
				m[h.Timestamp] = harness.Histogram{H: h.ToIntHistogram()}
			}
		}
		out[ls.String()] = m
	}
	return out
}

// checkWritten compares the X-Prometheus-Remote-Write-*-Written headers of
// an answer with want.
func checkWritten(t *testing.T, what string, resp *http.Response, want forwarding.Written) {
	t.Helper()
	for _, h := range []string{remotewrite.HeaderSamplesWritten, remotewrite.HeaderHistogramsWritten, remotewrite.HeaderExemplarsWritten} {
		if resp.Header.Get(h) == "" {
			t.Fatalf("%s: no %s header", what, h)
		}
	}
	if got := forwarding.WrittenFromHeaders(resp.Header); got != want {
		t.Fatalf("%s: written headers say %+v, want %+v", what, got, want)
	}
}

// TestWrittenHeadersCountWhatWasStored: the router's written headers count
// what the block builders stored, not what the request held. Exemplars
// the TSDB refuses do not fail a write, so they are where the two differ.
func TestWrittenHeadersCountWhatWasStored(t *testing.T) {
	now := time.Now().UnixMilli()

	t.Run("refused exemplars", func(t *testing.T) {
		c := startCluster(t, 3, 3, nil)
		first := newV2Request()
		first.mixed("w", 3, now, 1)
		resp, body := post(t, c.routerURL, first.encode(t), v2Headers("a"))
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("first write: %d %s", resp.StatusCode, body)
		}
		checkWritten(t, "everything stored", resp, first.sent)

		// Every replica refuses two exemplars: one older than the newest
		// its series has, one whose labels are longer than the TSDB takes
		// (128 characters). The samples are all new.
		second := newV2Request()
		second.mixed("w", 3, now+1000, 2)
		old := second.series(t, "w_requests_total", "h-1")
		second.req.Timeseries[old].Exemplars[0].Timestamp = now - 60000
		long := second.series(t, "w_latency_seconds", "h-2")
		second.req.Timeseries[long].Exemplars[1] = second.exemplar(strings.Repeat("x", 130), 2.5, now+1000)
		resp, body = post(t, c.routerURL, second.encode(t), v2Headers("a"))
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("second write: %d %s", resp.StatusCode, body)
		}
		want := second.sent
		want.Exemplars -= 2
		checkWritten(t, "two exemplars refused", resp, want)

		// A float sample out of order is refused by every replica (400),
		// but its series' exemplars are newer than the series' last ones
		// and are stored: they count.
		third := newV2Request()
		third.mixed("w", 3, now+2000, 3)
		back := third.series(t, "w_requests_total", "h-0")
		third.req.Timeseries[back].Samples[0].Timestamp = now - 60000
		resp, body = post(t, c.routerURL, third.encode(t), v2Headers("a"))
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("out-of-order sample: %d %s, want 400", resp.StatusCode, body)
		}
		want = third.sent
		want.Samples--
		checkWritten(t, "one sample refused", resp, want)
	})

	t.Run("a replica without exemplar storage", func(t *testing.T) {
		// RF=2 needs both replicas, so both answers are always counted.
		c := startClusterWith(t, 2, 2, clusterOptions{blockBuilder: func(i int, cfg *blockbuilder.Config) {
			if i == 1 {
				cfg.MaxExemplars = 0
			}
		}})
		req := newV2Request()
		req.mixed("off", 2, now, 1)
		resp, body := post(t, c.routerURL, req.encode(t), v2Headers("a"))
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("write: %d %s", resp.StatusCode, body)
		}
		want := req.sent
		want.Exemplars = 0
		checkWritten(t, "through the router", resp, want)

		// Written to that block builder alone, as a plain sender would.
		more := newV2Request()
		more.mixed("off", 2, now+1000, 2)
		resp, body = post(t, c.bbs[1].url(), more.encode(t), v2Headers("a"))
		if resp.StatusCode != http.StatusNoContent || body != "" {
			t.Fatalf("plain write: %d %q, want 204 without a body", resp.StatusCode, body)
		}
		want = more.sent
		want.Exemplars = 0
		checkWritten(t, "by the block builder", resp, want)
	})
}
