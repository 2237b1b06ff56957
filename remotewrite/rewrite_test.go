package remotewrite

import (
	"reflect"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// TestRewrite: what a rewrite keeps or relabels decodes, with Prometheus'
// own types, to the original series with the new labels and every other
// field unchanged.
func TestRewrite(t *testing.T) {
	h := prompb.FromIntHistogram(1000, &histogram.Histogram{Count: 3, Sum: 2, Schema: 0, PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []int64{3}})
	v1 := &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			{Labels: []prompb.Label{{Name: "__name__", Value: "a"}, {Name: "pod", Value: "p"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 1000}}},
			{Labels: []prompb.Label{{Name: "__name__", Value: "b"}}, Samples: []prompb.Sample{{Value: 2, Timestamp: 1000}},
				Exemplars: []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "t"}}, Value: 1, Timestamp: 999}}},
			{Labels: []prompb.Label{{Name: "__name__", Value: "c"}}, Histograms: []prompb.Histogram{h}},
		},
		Metadata: []prompb.MetricMetadata{{MetricFamilyName: "a", Type: prompb.MetricMetadata_COUNTER, Help: "help"}},
	}
	body, err := v1.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var req Request
	if err := req.Parse(V1, body); err != nil {
		t.Fatal(err)
	}
	var w Rewrite
	w.Reset(&req, nil)
	w.Keep(0)
	if err := w.WithLabels(1, []Label{{Name: []byte("__name__"), Value: []byte("b2")}, {Name: []byte("team"), Value: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	if err := w.WithLabelFields(2, AppendLabelFields(nil, []Label{{Name: []byte("__name__"), Value: []byte("c2")}})); err != nil {
		t.Fatal(err)
	}
	var got prompb.WriteRequest
	if err := got.Unmarshal(w.Finish()); err != nil {
		t.Fatal(err)
	}
	want := *v1
	want.Timeseries = []prompb.TimeSeries{v1.Timeseries[0], v1.Timeseries[1], v1.Timeseries[2]}
	want.Timeseries[1].Labels = []prompb.Label{{Name: "__name__", Value: "b2"}, {Name: "team", Value: "x"}}
	want.Timeseries[2].Labels = []prompb.Label{{Name: "__name__", Value: "c2"}}
	if got.String() != want.String() {
		t.Fatalf("1.0 rewrite:\n got %+v\nwant %+v", got, want)
	}

	// A label after the samples (legal, if no sender writes it) is
	// replaced as well as those before them.
	sample, err := (&prompb.Sample{Value: 5, Timestamp: 2000}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	payload := AppendLabelFields(nil, []Label{{Name: []byte("__name__"), Value: []byte("d")}})
	payload = append(append(append(payload, 0x12, byte(len(sample))), sample...), AppendLabelFields(nil, []Label{{Name: []byte("z"), Value: []byte("late")}})...)
	if err := req.Parse(V1, append([]byte{0x0a, byte(len(payload))}, payload...)); err != nil {
		t.Fatal(err)
	}
	w.Reset(&req, nil)
	if err := w.WithLabels(0, []Label{{Name: []byte("__name__"), Value: []byte("d2")}}); err != nil {
		t.Fatal(err)
	}
	var late prompb.WriteRequest
	if err := late.Unmarshal(w.Finish()); err != nil {
		t.Fatal(err)
	}
	if ts := late.Timeseries; len(ts) != 1 || len(ts[0].Labels) != 1 || ts[0].Labels[0].Value != "d2" || len(ts[0].Samples) != 1 || ts[0].Samples[0].Value != 5 {
		t.Fatalf("1.0 rewrite of a series with a label after its samples: %+v", late)
	}

	// 2.0: new labels refer to the request's symbols where it has them
	// and to symbols added after them; the series dropped is gone.
	st := writev2.NewSymbolTable()
	v2 := &writev2.Request{Timeseries: []writev2.TimeSeries{
		{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "a", "pod", "p"), nil), Samples: []writev2.Sample{{Value: 1, Timestamp: 1000}},
			Metadata: writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("help")}},
		{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "b"), nil), Samples: []writev2.Sample{{Value: 2, Timestamp: 1000}}},
	}}
	v2.Symbols = st.Symbols()
	if body, err = v2.Marshal(); err != nil {
		t.Fatal(err)
	}
	if err := req.Parse(V2, body); err != nil {
		t.Fatal(err)
	}
	w.Reset(&req, nil)
	if err := w.WithLabels(0, []Label{{Name: []byte("__name__"), Value: []byte("a")}, {Name: []byte("team"), Value: []byte("help")}, {Name: []byte("zone"), Value: []byte("z")}}); err != nil {
		t.Fatal(err)
	}
	var got2 writev2.Request
	if err := got2.Unmarshal(w.Finish()); err != nil {
		t.Fatal(err)
	}
	if len(got2.Timeseries) != 1 {
		t.Fatalf("2.0 rewrite: %d series, want 1", len(got2.Timeseries))
	}
	ts := got2.Timeseries[0]
	var b labels.ScratchBuilder
	if l, err := ts.ToLabels(&b, got2.Symbols); err != nil || l.String() != `{__name__="a", team="help", zone="z"}` {
		t.Fatalf("2.0 rewrite: labels %s", l)
	}
	if len(got2.Symbols) != len(v2.Symbols)+3 || !reflect.DeepEqual(got2.Symbols[:len(v2.Symbols)], v2.Symbols) {
		t.Fatalf("2.0 rewrite: symbols %q, want %q and team, zone, z after them", got2.Symbols, v2.Symbols)
	}
	if !reflect.DeepEqual(ts.Samples, v2.Timeseries[0].Samples) || got2.Symbols[ts.Metadata.HelpRef] != "help" || ts.Metadata.Type != writev2.Metadata_METRIC_TYPE_COUNTER {
		t.Fatalf("2.0 rewrite: the other fields changed: %+v", ts)
	}

	// 2.0 by references: those of the request's symbols, and one added.
	w.Reset(&req, nil)
	refs, ok := req.LabelRefs(1, nil) // __name__="b"
	if !ok {
		t.Fatal("no label references")
	}
	if err := w.WithLabelRefs(1, append(refs, w.Symbol([]byte("team")), w.Symbol([]byte("b")))); err != nil {
		t.Fatal(err)
	}
	var got3 writev2.Request
	if err := got3.Unmarshal(w.Finish()); err != nil {
		t.Fatal(err)
	}
	if len(got3.Timeseries) != 1 || len(got3.Symbols) != len(v2.Symbols)+1 {
		t.Fatalf("2.0 rewrite by references: %d series, symbols %q", len(got3.Timeseries), got3.Symbols)
	}
	if l, err := got3.Timeseries[0].ToLabels(&b, got3.Symbols); err != nil || l.String() != `{__name__="b", team="b"}` || got3.Timeseries[0].Samples[0].Value != 2 {
		t.Fatalf("2.0 rewrite by references: %s %+v", l, got3.Timeseries[0])
	}
	var w1 Rewrite
	w1.Reset(&Request{Version: V1}, nil)
	if w1.WithLabelRefs(0, refs) == nil {
		t.Error("label references in a 1.0 rewrite")
	}
}
