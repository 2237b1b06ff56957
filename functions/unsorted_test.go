package functions_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/stratametrics/strata/remotewrite"
)

// TestUnsortedLabelsRouteAsSorted: a series sent with its labels sorted
// and then in other orders (1.0 twice, so that the router knows the
// unsorted label bytes the second time, then 2.0) is one series, on the
// same three owners of six block builders, in the same TSDB series of
// each: the bucket holds each series once per replica with every sample.
func TestUnsortedLabelsRouteAsSorted(t *testing.T) {
	c := startCluster(t, 6, 3, nil)
	const n = 60
	now := time.Now().Add(-time.Minute).UnixMilli()
	send := func(what string, body []byte, headers map[string]string) {
		t.Helper()
		if resp, answer := post(t, c.routerURL, body, headers); resp.StatusCode != 204 {
			t.Fatalf("%s: %d %s", what, resp.StatusCode, answer)
		}
	}
	send("sorted", encodeV1(t, seriesV1("u", n, now)), v1Headers("u"))
	for round := int64(1); round <= 2; round++ {
		req := seriesV1("u", n, now+round*1000)
		for i := range req.Timeseries {
			slices.Reverse(req.Timeseries[i].Labels)
		}
		send(fmt.Sprintf("1.0 reversed, round %d", round), encodeV1(t, req), v1Headers("u"))
	}
	st := writev2.NewSymbolTable()
	v2 := &writev2.Request{}
	for i := 0; i < n; i++ {
		// SymbolizeLabels keeps the order it is given; labels.New would
		// sort.
		var refs []uint32
		for _, kv := range [][2]string{{"job", "test"}, {"__name__", "u_metric"}, {"instance", fmt.Sprintf("host-%d", i)}} {
			refs = append(refs, st.Symbolize(kv[0]), st.Symbolize(kv[1]))
		}
		v2.Timeseries = append(v2.Timeseries, writev2.TimeSeries{
			LabelsRefs: refs,
			Samples:    []writev2.Sample{{Value: float64(i), Timestamp: now + 3000}},
		})
	}
	v2.Symbols = st.Symbols()
	send("2.0 unsorted", encodeV2(t, v2), v2Headers("u"))

	// The router answers at quorum: the third copies may still be on
	// their way.
	c.router.WaitForwards()
	c.flush()
	got, blocks := c.bucketSamples()
	if len(got["u"]) != n {
		t.Fatalf("%d series in the bucket, want %d: %v", len(got["u"]), n, slices.Sorted(maps.Keys(got["u"])))
	}
	for i := 0; i < n; i++ {
		ls := labels.FromStrings("__name__", "u_metric", "instance", fmt.Sprintf("host-%d", i), "job", "test")
		if m := got["u"][ls.String()]; len(m) != 4 {
			t.Fatalf("series %s has %d samples, want 4", ls, len(m))
		}
	}
	var series, samples uint64
	for _, b := range blocks {
		series += b.Meta.Stats.NumSeries
		samples += b.Meta.Stats.NumSamples
	}
	// Another owner, or another TSDB series, for an unsorted form would
	// show as more series in the blocks than three replicas of each.
	if series != 3*n || samples != 3*4*n {
		t.Fatalf("blocks hold %d series and %d samples, want %d series and %d samples (RF=3)", series, samples, 3*n, 3*4*n)
	}
}

// TestWrittenHeadersOnlyFor2: the X-Prometheus-Remote-Write-*-Written
// headers belong to 2.0 answers, refusals included; a 1.0 answer has
// none, as from Prometheus' own receiver.
func TestWrittenHeadersOnlyFor2(t *testing.T) {
	c := startCluster(t, 3, 3, nil)
	now := time.Now().UnixMilli()
	headers := []string{remotewrite.HeaderSamplesWritten, remotewrite.HeaderHistogramsWritten, remotewrite.HeaderExemplarsWritten}
	future := seriesV1("f", 1, now+time.Hour.Milliseconds())
	for _, tc := range []struct {
		name    string
		body    []byte
		headers map[string]string
		status  int
		want    string // samples written; empty: no written headers at all
	}{
		{"1.0 written", encodeV1(t, seriesV1("h", 3, now)), v1Headers("h"), 204, ""},
		{"1.0 refused", encodeV1(t, future), v1Headers("h"), 400, ""},
		{"2.0 written", encodeV2(t, seriesV2("h2", 3, now)), v2Headers("h"), 204, "3"},
		{"2.0 refused", encodeV2(t, &writev2.Request{Symbols: []string{"", "__name__", "x"}, Timeseries: []writev2.TimeSeries{{
			LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{{Value: 1, Timestamp: now + time.Hour.Milliseconds()}},
		}}}), v2Headers("h"), 400, "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, c.routerURL, tc.body, tc.headers)
			if resp.StatusCode != tc.status {
				t.Fatalf("got %d %s, want %d", resp.StatusCode, body, tc.status)
			}
			for _, h := range headers {
				if got := resp.Header.Get(h); (got == "") != (tc.want == "") {
					t.Fatalf("%s: %q; want it %s", h, got, map[bool]string{true: "absent", false: "present"}[tc.want == ""])
				}
			}
			if got := resp.Header.Get(remotewrite.HeaderSamplesWritten); got != tc.want {
				t.Fatalf("samples written %q, want %q", got, tc.want)
			}
		})
	}
}
