package remotewrite

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/stratametrics/strata/writeerr"
)

func sampleV1Request() *prompb.WriteRequest {
	h := &histogram.Histogram{
		Count: 12, ZeroCount: 2, ZeroThreshold: 0.001, Sum: 18.4, Schema: 1,
		PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []int64{1, 2},
		NegativeSpans: []histogram.Span{{Offset: 0, Length: 1}}, NegativeBuckets: []int64{3},
	}
	return &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			{
				Labels:  []prompb.Label{{Name: "__name__", Value: "http_requests_total"}, {Name: "job", Value: "api"}},
				Samples: []prompb.Sample{{Value: 1, Timestamp: 1000}, {Value: math.Inf(1), Timestamp: 2000}, {Value: -3.5, Timestamp: -5}},
				Exemplars: []prompb.Exemplar{{
					Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 1, Timestamp: 1000,
				}},
			},
			{
				Labels:     []prompb.Label{{Name: "__name__", Value: "latency"}, {Name: "pod", Value: "p-1"}},
				Histograms: []prompb.Histogram{prompb.FromIntHistogram(3000, h), prompb.FromFloatHistogram(4000, h.ToFloat(nil))},
			},
		},
		Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "http_requests_total", Help: "Requests.", Unit: "requests"}},
	}
}

func sampleV2Request() *writev2.Request {
	st := writev2.NewSymbolTable()
	h := &histogram.Histogram{Count: 3, Sum: 2, Schema: 0, PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []int64{3}}
	req := &writev2.Request{
		Timeseries: []writev2.TimeSeries{
			{
				LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "up", "job", "node"), nil),
				Samples:    []writev2.Sample{{Value: 1, Timestamp: 1000, StartTimestamp: 500}, {Value: math.NaN(), Timestamp: 2000}},
				Exemplars:  []writev2.Exemplar{{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("trace_id", "t1"), nil), Value: 0.5, Timestamp: 1500}},
				Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, HelpRef: st.Symbolize("Up."), UnitRef: st.Symbolize("")},
			},
			{
				LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "rpc_seconds", "le", "x"), nil),
				Histograms: []writev2.Histogram{writev2.FromIntHistogram(100, 3000, h)},
				Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_HISTOGRAM, UnitRef: st.Symbolize("seconds")},
			},
		},
	}
	req.Symbols = st.Symbols()
	return req
}

func mustMarshal(t testing.TB, m interface{ Marshal() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseV1MatchesGenerated(t *testing.T) {
	want := sampleV1Request()
	body := mustMarshal(t, want)
	var r Request
	if err := r.Parse(V1, body); err != nil {
		t.Fatal(err)
	}
	if r.NumSeries() != 2 || r.NumMetadata() != 1 {
		t.Fatalf("series %d metadata %d, want 2 and 1", r.NumSeries(), r.NumMetadata())
	}
	compareV1(t, &r, want)

	md, err := r.Metadata(0)
	if err != nil {
		t.Fatal(err)
	}
	if string(md.MetricFamilyName) != "http_requests_total" || string(md.Help) != "Requests." || string(md.Unit) != "requests" || md.ToMetadata().Type != "counter" {
		t.Fatalf("metadata %+v", md)
	}
	var b labels.ScratchBuilder
	var s Series
	if err := r.Series(0, &s); err != nil {
		t.Fatal(err)
	}
	ex, err := r.DecodeExemplar(&b, s.Exemplars[0])
	if err != nil {
		t.Fatal(err)
	}
	if ex.Labels.String() != `{trace_id="abc"}` || ex.Value != 1 || ex.Ts != 1000 || !ex.HasTs {
		t.Fatalf("exemplar %+v", ex)
	}
	if err := r.Series(1, &s); err != nil {
		t.Fatal(err)
	}
	ih, _, err := DecodeHistogram(s.Histograms[0])
	if err != nil || ih == nil || ih.Count != 12 || ih.Sum != 18.4 {
		t.Fatalf("int histogram %v %v", ih, err)
	}
	_, fh, err := DecodeHistogram(s.Histograms[1])
	if err != nil || fh == nil || fh.Count != 12 {
		t.Fatalf("float histogram %v %v", fh, err)
	}
}

// compareV1 checks that the parser saw exactly what the generated decoder
// sees.
func compareV1(t testing.TB, r *Request, want *prompb.WriteRequest) {
	t.Helper()
	if r.NumSeries() != len(want.Timeseries) {
		t.Fatalf("series: got %d, want %d", r.NumSeries(), len(want.Timeseries))
	}
	var s Series
	for i, ts := range want.Timeseries {
		if err := r.Series(i, &s); err != nil {
			t.Fatalf("series %d: %v", i, err)
		}
		if len(s.Labels) != len(ts.Labels) {
			t.Fatalf("series %d labels: got %d, want %d", i, len(s.Labels), len(ts.Labels))
		}
		for j, l := range ts.Labels {
			if string(s.Labels[j].Name) != l.Name || string(s.Labels[j].Value) != l.Value {
				t.Fatalf("series %d label %d: got %s=%s, want %s=%s", i, j, s.Labels[j].Name, s.Labels[j].Value, l.Name, l.Value)
			}
		}
		compareSamples(t, i, s.Samples, len(ts.Samples), func(j int) (float64, int64, int64) {
			return ts.Samples[j].Value, ts.Samples[j].Timestamp, 0
		})
		if len(s.Histograms) != len(ts.Histograms) || len(s.Exemplars) != len(ts.Exemplars) {
			t.Fatalf("series %d: histograms %d exemplars %d, want %d and %d", i, len(s.Histograms), len(s.Exemplars), len(ts.Histograms), len(ts.Exemplars))
		}
		for j, h := range ts.Histograms {
			if s.Histograms[j].Timestamp != h.Timestamp {
				t.Fatalf("series %d histogram %d: timestamp %d, want %d", i, j, s.Histograms[j].Timestamp, h.Timestamp)
			}
		}
	}
}

func compareSamples(t testing.TB, series int, got []Sample, n int, want func(int) (float64, int64, int64)) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("series %d: %d samples, want %d", series, len(got), n)
	}
	for j := range got {
		v, ts, st := want(j)
		if math.Float64bits(got[j].Value) != math.Float64bits(v) || got[j].Timestamp != ts || got[j].StartTimestamp != st {
			t.Fatalf("series %d sample %d: got %+v, want value %v t %d st %d", series, j, got[j], v, ts, st)
		}
	}
}

func TestParseV2MatchesGenerated(t *testing.T) {
	want := sampleV2Request()
	body := mustMarshal(t, want)
	var r Request
	if err := r.Parse(V2, body); err != nil {
		t.Fatal(err)
	}
	compareV2(t, &r, want)

	var s Series
	if err := r.Series(0, &s); err != nil {
		t.Fatal(err)
	}
	md := s.Metadata.ToMetadata()
	if md.Type != "gauge" || md.Help != "Up." || md.Unit != "" {
		t.Fatalf("metadata %+v", md)
	}
	var b labels.ScratchBuilder
	ex, err := r.DecodeExemplar(&b, s.Exemplars[0])
	if err != nil || ex.Labels.String() != `{trace_id="t1"}` || ex.Ts != 1500 || ex.Value != 0.5 {
		t.Fatalf("exemplar %+v %v", ex, err)
	}
	if got := BuildLabels(&b, s.Labels); got.String() != `{__name__="up", job="node"}` {
		t.Fatalf("labels %s", got)
	}
	if err := r.Series(1, &s); err != nil {
		t.Fatal(err)
	}
	if s.Histograms[0].StartTimestamp != 100 || s.Histograms[0].Timestamp != 3000 {
		t.Fatalf("histogram header %+v", s.Histograms[0])
	}
	if s.Metadata.ToMetadata().Unit != "seconds" {
		t.Fatalf("unit %q", s.Metadata.Unit)
	}
}

func compareV2(t testing.TB, r *Request, want *writev2.Request) {
	t.Helper()
	if r.NumSeries() != len(want.Timeseries) {
		t.Fatalf("series: got %d, want %d", r.NumSeries(), len(want.Timeseries))
	}
	if len(r.Symbols()) != len(want.Symbols) {
		t.Fatalf("symbols: got %d, want %d", len(r.Symbols()), len(want.Symbols))
	}
	var s Series
	for i, ts := range want.Timeseries {
		if err := r.Series(i, &s); err != nil {
			t.Fatalf("series %d: %v", i, err)
		}
		if len(s.Labels)*2 != len(ts.LabelsRefs) {
			t.Fatalf("series %d: %d labels for %d refs", i, len(s.Labels), len(ts.LabelsRefs))
		}
		for j := range s.Labels {
			if string(s.Labels[j].Name) != want.Symbols[ts.LabelsRefs[2*j]] || string(s.Labels[j].Value) != want.Symbols[ts.LabelsRefs[2*j+1]] {
				t.Fatalf("series %d label %d: got %s=%s", i, j, s.Labels[j].Name, s.Labels[j].Value)
			}
		}
		compareSamples(t, i, s.Samples, len(ts.Samples), func(j int) (float64, int64, int64) {
			return ts.Samples[j].Value, ts.Samples[j].Timestamp, ts.Samples[j].StartTimestamp
		})
		if len(s.Histograms) != len(ts.Histograms) || len(s.Exemplars) != len(ts.Exemplars) {
			t.Fatalf("series %d: histograms %d exemplars %d, want %d and %d", i, len(s.Histograms), len(s.Exemplars), len(ts.Histograms), len(ts.Exemplars))
		}
		for j, h := range ts.Histograms {
			if s.Histograms[j].Timestamp != h.Timestamp || s.Histograms[j].StartTimestamp != h.StartTimestamp {
				t.Fatalf("series %d histogram %d: %+v, want t %d st %d", i, j, s.Histograms[j], h.Timestamp, h.StartTimestamp)
			}
		}
		if s.Metadata.Type != uint32(ts.Metadata.Type) {
			t.Fatalf("series %d metadata type %d, want %d", i, s.Metadata.Type, ts.Metadata.Type)
		}
	}
}

func TestParseRejectsMalformed(t *testing.T) {
	v1 := mustMarshal(t, sampleV1Request())
	v2 := mustMarshal(t, sampleV2Request())
	noEmptySymbol := mustMarshal(t, &writev2.Request{Symbols: []string{"__name__", "up"}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{0, 1}, Samples: []writev2.Sample{{Timestamp: 1}}}}})
	badRef := mustMarshal(t, &writev2.Request{Symbols: []string{"", "__name__", "up"}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 9}, Samples: []writev2.Sample{{Timestamp: 1}}}}})
	oddRefs := mustMarshal(t, &writev2.Request{Symbols: []string{"", "__name__", "up"}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2, 1}, Samples: []writev2.Sample{{Timestamp: 1}}}}})
	for _, c := range []struct {
		name string
		v    Version
		body []byte
		want string
	}{
		{"v1 truncated", V1, v1[:len(v1)-3], "truncated"},
		{"v2 truncated", V2, v2[:len(v2)/2], "truncated"},
		{"v2 without empty first symbol", V2, noEmptySymbol, "must start with the empty string"},
		{"v2 label ref outside symbols", V2, badRef, "outside the symbols table"},
		{"v2 odd label refs", V2, oddRefs, "odd length"},
		{"wrong wire type for series", V1, []byte{0x08, 0x01}, "wrong wire type"},
		{"length past end", V1, []byte{0x0a, 0x7f, 0x01}, "truncated"},
		{"varint overflow", V1, bytes.Repeat([]byte{0xff}, 12), "overflow"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := parseAll(c.v, c.body)
			if err == nil || !errors.Is(err, writeerr.ErrInvalid) {
				t.Fatalf("got %v, want an ErrInvalid", err)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
}

func parseAll(v Version, body []byte) error {
	var r Request
	if err := r.Parse(v, body); err != nil {
		return err
	}
	var s Series
	for i := 0; i < r.NumSeries(); i++ {
		if err := r.Series(i, &s); err != nil {
			return err
		}
	}
	return nil
}

// checkSkipLabels holds SeriesSkipLabels to Series on a 1.0 body: where
// both succeed they see the same samples, histograms and exemplars, and
// the label bytes it returns decode to the labels Series sees; a series
// whose labels come first is never refused.
func checkSkipLabels(t *testing.T, body []byte) {
	t.Helper()
	var r Request
	if r.Parse(V1, body) != nil {
		return
	}
	var full, skipped Series
	for i := 0; i < r.NumSeries(); i++ {
		run, ok := r.LabelRun(i)
		ok = ok && r.SeriesSkipLabels(i, len(run), &skipped)
		if r.Series(i, &full) != nil {
			continue
		}
		first := true
		if raw := r.RawSeries(i); len(full.Labels) > 0 {
			// Labels first: the series' message starts with field 1.
			p, _, _ := bytesField(raw, 1)
			first = raw[p] == 0x0a && labelsLeadV1(raw[p:])
		}
		if !ok {
			if first && len(full.Labels) > 0 {
				t.Fatalf("series %d: labels come first but SeriesSkipLabels refused it", i)
			}
			continue
		}
		if len(skipped.Labels) != 0 {
			t.Fatalf("series %d: SeriesSkipLabels decoded %d labels", i, len(skipped.Labels))
		}
		var fromRun Series
		for j := 0; j < len(run); {
			next, label, err := fromRun.decodeFieldV1(run, j)
			if err != nil || label == nil {
				t.Fatalf("series %d: the label bytes hold something else (%v)", i, err)
			}
			l, err := decodeLabelV1(label)
			if err != nil {
				t.Fatal(err)
			}
			fromRun.Labels = append(fromRun.Labels, l)
			j = next
		}
		if !sameDecoded(fromRun.Labels, full.Labels, sameLabel) || !sameDecoded(skipped.Samples, full.Samples, sameSample) ||
			!sameDecoded(skipped.Histograms, full.Histograms, sameHistogram) || !sameDecoded(skipped.Exemplars, full.Exemplars, bytes.Equal) {
			t.Fatalf("series %d: SeriesSkipLabels sees %+v / %+v, Series %+v", i, fromRun, skipped, full)
		}
	}
}

// sameDecoded compares decoded slices element by element: an empty slice
// and a nil one (and empty and nil bytes within) hold the same.
func sameDecoded[T any](a, b []T, eq func(T, T) bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !eq(a[i], b[i]) {
			return false
		}
	}
	return true
}

func sameLabel(a, b Label) bool { return bytes.Equal(a.Name, b.Name) && bytes.Equal(a.Value, b.Value) }

func sameSample(a, b Sample) bool {
	return (a.Value == b.Value || math.IsNaN(a.Value) && math.IsNaN(b.Value)) && a.Timestamp == b.Timestamp && a.StartTimestamp == b.StartTimestamp
}

func sameHistogram(a, b Histogram) bool {
	return a.Timestamp == b.Timestamp && a.StartTimestamp == b.StartTimestamp && bytes.Equal(a.Raw, b.Raw)
}

// labelsLeadV1 tells whether every label field of a 1.0 TimeSeries
// message comes before any other field.
func labelsLeadV1(m []byte) bool {
	others := false
	for i := 0; i < len(m); {
		field, wt, next, err := tag(m, i)
		if err != nil {
			return false
		}
		if field == 1 && others {
			return false
		}
		others = others || field != 1
		if i, err = skip(m, next, wt); err != nil {
			return false
		}
	}
	return true
}

func TestSeriesSkipLabels(t *testing.T) {
	checkSkipLabels(t, mustMarshal(t, sampleV1Request()))
	// Labels after a sample: legal, unusual, refused by the fast path.
	apart := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "up"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: 1}},
	}}}
	body := mustMarshal(t, apart)
	// Move the sample before the label: 0x0a <ts len> <label> <sample>.
	var r Request
	if err := r.Parse(V1, body); err != nil {
		t.Fatal(err)
	}
	raw := r.RawSeries(0)
	p, _, _ := bytesField(raw, 1)
	msg := raw[p:]
	_, lend, _ := bytesField(msg, 1)
	swapped := append(append(append([]byte{}, raw[:p]...), msg[lend:]...), msg[:lend]...)
	var s Series
	if err := r.Parse(V1, swapped); err != nil {
		t.Fatal(err)
	}
	if run, ok := r.LabelRun(0); ok && r.SeriesSkipLabels(0, len(run), &s) {
		t.Fatal("SeriesSkipLabels took a series whose label follows its sample")
	}
	if err := r.Series(0, &s); err != nil || len(s.Labels) != 1 || len(s.Samples) != 1 {
		t.Fatalf("Series: %v %+v", err, s)
	}
	checkSkipLabels(t, swapped)
}

func TestSplitKeepsSeriesBytes(t *testing.T) {
	for _, v := range []Version{V1, V2} {
		t.Run(v.String(), func(t *testing.T) {
			var body []byte
			if v == V1 {
				body = mustMarshal(t, sampleV1Request())
			} else {
				body = mustMarshal(t, sampleV2Request())
			}
			var r Request
			if err := r.Parse(v, body); err != nil {
				t.Fatal(err)
			}
			// Each part on its own must decode, with the generated decoder,
			// to exactly the series it was given.
			for i := 0; i < r.NumSeries(); i++ {
				part := r.AppendPreamble(nil)
				part = r.AppendSeries(part, i)
				part = r.AppendMetadata(part)
				var got Request
				if err := got.Parse(v, part); err != nil {
					t.Fatal(err)
				}
				if got.NumSeries() != 1 || !bytes.Equal(got.RawSeries(0), r.RawSeries(i)) {
					t.Fatalf("part %d holds %d series", i, got.NumSeries())
				}
				if v == V1 {
					var m prompb.WriteRequest
					if err := m.Unmarshal(part); err != nil {
						t.Fatal(err)
					}
					compareV1(t, &got, &m)
				} else {
					var m writev2.Request
					if err := m.Unmarshal(part); err != nil {
						t.Fatal(err)
					}
					compareV2(t, &got, &m)
				}
			}
		})
	}
}

// The fuzz targets hold the parser to the generated decoders: on any
// input it must not panic, and on the canonical encoding of whatever the
// generated decoder accepted it must accept and see the same series. Raw
// inputs are not compared: the generated code is lenient with some
// malformed ones (a packed field whose last varint runs past its length),
// which the parser refuses.
func FuzzParseV1(f *testing.F) {
	f.Add(mustMarshal(f, sampleV1Request()))
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = parseAll(V1, body)
		checkSkipLabels(t, body)
		var want prompb.WriteRequest
		if want.Unmarshal(body) != nil {
			return
		}
		canon := mustMarshal(t, &want)
		var r Request
		if err := r.Parse(V1, canon); err != nil {
			t.Fatalf("generated decoder accepts, parser refuses the canonical encoding: %v", err)
		}
		compareV1(t, &r, &want)
	})
}

func FuzzParseV2(f *testing.F) {
	f.Add(mustMarshal(f, sampleV2Request()))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = parseAll(V2, body)
		checkLabelRefs(t, body)
		var want writev2.Request
		if want.Unmarshal(body) != nil {
			return
		}
		canon := mustMarshal(t, &want)
		var r Request
		if err := r.Parse(V2, canon); err != nil {
			// The parser enforces what the specification requires and the
			// generated code does not: the empty first symbol.
			if len(want.Timeseries) > 0 && (len(want.Symbols) == 0 || want.Symbols[0] != "") {
				return
			}
			t.Fatalf("generated decoder accepts, parser refuses the canonical encoding: %v", err)
		}
		// Label refs are checked against the table only when a series is
		// decoded; skip series the generated types cannot resolve either.
		for _, ts := range want.Timeseries {
			for _, ref := range ts.LabelsRefs {
				if int(ref) >= len(want.Symbols) {
					return
				}
			}
			if len(ts.LabelsRefs)%2 != 0 || int(ts.Metadata.HelpRef) >= len(want.Symbols) || int(ts.Metadata.UnitRef) >= len(want.Symbols) {
				return
			}
		}
		compareV2(t, &r, &want)
	})
}

// checkLabelRefs holds LabelRefs to Series on a 2.0 body: a series that
// Series decodes has references that name its labels, in order; one it
// refuses for its labels LabelRefs refuses too.
func checkLabelRefs(t *testing.T, body []byte) {
	t.Helper()
	var r Request
	if r.Parse(V2, body) != nil {
		return
	}
	var s Series
	for i := 0; i < r.NumSeries(); i++ {
		prefix := []uint32{7}
		refs, ok := r.LabelRefs(i, prefix)
		if !ok {
			if r.Series(i, &s) == nil {
				t.Fatalf("series %d: LabelRefs refuses, Series decodes %v", i, s.Labels)
			}
			continue
		}
		if refs[0] != 7 {
			t.Fatalf("series %d: LabelRefs overwrote what it appends to", i)
		}
		if r.Series(i, &s) != nil {
			continue // refused for another field than its labels
		}
		refs = refs[1:]
		if len(refs) != 2*len(s.Labels) {
			t.Fatalf("series %d: %d references for %d labels", i, len(refs), len(s.Labels))
		}
		for k, l := range s.Labels {
			if !bytes.Equal(r.Symbols()[refs[2*k]], l.Name) || !bytes.Equal(r.Symbols()[refs[2*k+1]], l.Value) {
				t.Fatalf("series %d, label %d: references %d, %d name %q=%q, Series %q=%q", i, k, refs[2*k], refs[2*k+1], r.Symbols()[refs[2*k]], r.Symbols()[refs[2*k+1]], l.Name, l.Value)
			}
		}
	}
}

// TestLabelRefs: LabelRefs reads labels_refs packed, unpacked, in several
// fields and after other fields, as Series does, and refuses an odd
// number, a reference outside the table and a 1.0 request.
func TestLabelRefs(t *testing.T) {
	checkLabelRefs(t, mustMarshal(t, sampleV2Request()))
	symbols := func(b []byte) []byte {
		for _, s := range []string{"", "__name__", "a", "job", "j"} {
			b = append(append(b, 0x22, byte(len(s))), s...)
		}
		return b
	}
	sample := []byte{0x12, 0x0b, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x01}
	series := func(payload ...byte) []byte { return append([]byte{0x2a, byte(len(payload))}, payload...) }
	for _, tc := range []struct {
		name    string
		payload []byte
		want    []uint32 // nil: refused
	}{
		{"packed", append([]byte{0x0a, 4, 1, 2, 3, 4}, sample...), []uint32{1, 2, 3, 4}},
		{"unpacked", append([]byte{0x08, 1, 0x08, 2}, sample...), []uint32{1, 2}},
		{"split, after the sample", append(append([]byte{0x0a, 2, 1, 2}, sample...), 0x08, 3, 0x08, 4), []uint32{1, 2, 3, 4}},
		{"odd", append([]byte{0x0a, 3, 1, 2, 3}, sample...), nil},
		{"outside the table", append([]byte{0x0a, 2, 1, 5}, sample...), nil},
		{"truncated", []byte{0x0a, 4, 1, 2}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := append(symbols(nil), series(tc.payload...)...)
			var r Request
			if err := r.Parse(V2, body); err != nil {
				t.Fatal(err)
			}
			refs, ok := r.LabelRefs(0, nil)
			if ok != (tc.want != nil) || ok && fmt.Sprint(refs) != fmt.Sprint(tc.want) {
				t.Fatalf("LabelRefs = %v, %v; want %v", refs, ok, tc.want)
			}
			checkLabelRefs(t, body)
		})
	}
	var r Request
	if err := r.Parse(V1, mustMarshal(t, sampleV1Request())); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.LabelRefs(0, nil); ok {
		t.Error("LabelRefs of a 1.0 series")
	}
}

func FuzzSnappy(f *testing.F) {
	var enc Buffer
	EncodeSnappy(&enc, mustMarshal(f, sampleV1Request()))
	f.Add(enc.B)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x00})
	f.Fuzz(func(t *testing.T, src []byte) {
		var dst Buffer
		const limit = 1 << 20
		err := DecodeSnappy(&dst, src, limit)
		if err == nil && len(dst.B) > limit {
			t.Fatalf("decoded %d bytes past the limit", len(dst.B))
		}
		if err != nil && !errors.Is(err, writeerr.ErrInvalid) && !errors.Is(err, writeerr.ErrTooLarge) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}

func TestDecodeSnappyRefusesHugeHeaderBeforeAllocating(t *testing.T) {
	// A few bytes claiming a (nearly) 4 GiB body, the most a snappy header can.
	src := append(appendUvarint(nil, 4<<30-16), 0x00)
	var dst Buffer
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := DecodeSnappy(&dst, src, 64<<20)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, writeerr.ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if cap(dst.B) != 0 {
		t.Fatalf("allocated %d bytes for a refused body", cap(dst.B))
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Fatalf("allocated %d bytes for a refused body", n)
	}
}

func TestNegotiate(t *testing.T) {
	for _, c := range []struct {
		ct, enc string
		want    Version
		err     bool
	}{
		{"", "", V1, false},
		{"application/x-protobuf", "snappy", V1, false},
		{"application/x-protobuf;proto=prometheus.WriteRequest", "snappy", V1, false},
		{"application/x-protobuf; proto=io.prometheus.write.v2.Request", "snappy", V2, false},
		{"application/x-protobuf;proto=io.prometheus.write.v2.Request", "SNAPPY", V2, false},
		{"application/json", "snappy", 0, true},
		{"application/x-protobuf;proto=io.prometheus.write.v3.Request", "snappy", 0, true},
		{"application/x-protobuf", "gzip", 0, true},
		{"application/x-protobuf", "zstd", 0, true},
		{"bad/;;", "snappy", 0, true},
	} {
		t.Run(fmt.Sprintf("%s|%s", c.ct, c.enc), func(t *testing.T) {
			h := make(map[string][]string)
			if c.ct != "" {
				h["Content-Type"] = []string{c.ct}
			}
			if c.enc != "" {
				h["Content-Encoding"] = []string{c.enc}
			}
			v, err := Negotiate(h)
			if c.err {
				if writeerr.HTTPStatus(err) != 415 {
					t.Fatalf("got %v (status %d), want 415", err, writeerr.HTTPStatus(err))
				}
				return
			}
			if err != nil || v != c.want {
				t.Fatalf("got %v %v, want %v", v, err, c.want)
			}
		})
	}
}
