package validation

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/writeerr"
)

// TestLabelsMustBeUTF8: invalid UTF-8 in a label is refused however the
// labels were decoded (the inline run of short labels checked for ASCII,
// a long label decoded apart, labels split by other fields, 2.0 symbols),
// and valid non-ASCII UTF-8 is taken.
func TestLabelsMustBeUTF8(t *testing.T) {
	long := strings.Repeat("v", 200)
	now := time.Now().UnixMilli()
	cases := []struct {
		name   string
		labels []prompb.Label
		ok     bool
	}{
		{"ascii", []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "pod", Value: "p"}}, true},
		{"utf8", []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "pod", Value: "pödchen-π"}}, true},
		{"bad value", []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "pod", Value: "p\xff"}}, false},
		{"bad name", []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "p\xc3", Value: "p"}}, false},
		{"bad value after a long one", []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "a", Value: long}, {Name: "pod", Value: "\xfe"}}, false},
		{"long bad value", []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "pod", Value: long + "\xff"}}, false},
	}
	var lim = DefaultLimits()
	for _, c := range cases {
		for _, v := range []remotewrite.Version{remotewrite.V1, remotewrite.V2} {
			t.Run(v.String()+"/"+c.name, func(t *testing.T) {
				checkUTF8(t, &lim, v, oneSeries(t, v, c.labels, now), c.ok, now)
			})
		}
	}
	// Labels split in two runs by a sample field, the second invalid.
	split := mustMarshal(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels: []prompb.Label{{Name: "__name__", Value: "m"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: now}},
	}}})
	label := mustMarshal(&prompb.Label{Name: "pod", Value: "\xff"})
	series := append(split[2:], append([]byte{0x0a, byte(len(label))}, label...)...)
	checkUTF8(t, &lim, remotewrite.V1, append([]byte{0x0a, byte(len(series))}, series...), false, now)
}

func checkUTF8(t *testing.T, lim *Limits, v remotewrite.Version, body []byte, ok bool, now int64) {
	t.Helper()
	_, err := checkFirst(t, lim, v, body, now)
	switch {
	case ok && err != nil:
		t.Fatalf("valid labels refused: %v", err)
	case !ok && (err == nil || !strings.Contains(err.Error(), "UTF-8")):
		t.Fatalf("invalid UTF-8 labels: got %v, want a refusal naming UTF-8", err)
	}
}

// TestLabelsInAnyOrder: validation sorts labels by name, as Prometheus'
// receiver does, whatever order they came in and however they were
// decoded; defects stay refused, and a name twice is found even when the
// two were apart in the request.
func TestLabelsInAnyOrder(t *testing.T) {
	now := time.Now().UnixMilli()
	lim := DefaultLimits()
	long := strings.Repeat("v", 200) // decoded apart from the inline run
	for _, c := range []struct {
		name   string
		labels []prompb.Label
		want   string // the sorted names, or the refusal
	}{
		{"sorted", []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "a", Value: "1"}, {Name: "b", Value: "2"}}, "__name__ a b"},
		{"reversed", []prompb.Label{{Name: "b", Value: "2"}, {Name: "a", Value: "1"}, {Name: "__name__", Value: "m"}}, "__name__ a b"},
		{"name last", []prompb.Label{{Name: "instance", Value: "x"}, {Name: "job", Value: "j"}, {Name: "quantile", Value: "0.5"}, {Name: "__name__", Value: "m"}}, "__name__ instance job quantile"},
		{"long value out of order", []prompb.Label{{Name: "z", Value: long}, {Name: "__name__", Value: "m"}}, "__name__ z"},
		{"a name twice, apart", []prompb.Label{{Name: "job", Value: "x"}, {Name: "__name__", Value: "m"}, {Name: "job", Value: "y"}}, `label "job" twice`},
		{"empty name", []prompb.Label{{Name: "job", Value: "x"}, {Name: "", Value: "m"}}, "empty name"},
		{"no metric name", []prompb.Label{{Name: "job", Value: "x"}, {Name: "a", Value: "m"}}, "no metric name"},
		{"invalid UTF-8", []prompb.Label{{Name: "job", Value: "x\xff"}, {Name: "__name__", Value: "m"}}, "UTF-8"},
	} {
		for _, v := range []remotewrite.Version{remotewrite.V1, remotewrite.V2} {
			t.Run(v.String()+"/"+c.name, func(t *testing.T) {
				s, err := checkFirst(t, &lim, v, oneSeries(t, v, c.labels, now), now)
				var names []string
				for _, l := range s.Labels {
					names = append(names, string(l.Name))
				}
				got := strings.Join(names, " ")
				if err != nil {
					got = err.Error()
				}
				if !strings.Contains(got, c.want) {
					t.Fatalf("got %q, want %q", got, c.want)
				}
				if err != nil && writeerr.HTTPStatus(err) != 400 {
					t.Fatalf("refusal %v has status %d, want 400", err, writeerr.HTTPStatus(err))
				}
			})
		}
	}
}

// TestSortLabels: SortLabels tells whether it changed anything, keeps
// equal names together and sorts every permutation of a label set.
func TestSortLabels(t *testing.T) {
	mk := func(names ...string) []remotewrite.Label {
		out := make([]remotewrite.Label, len(names))
		for i, n := range names {
			out[i] = remotewrite.Label{Name: []byte(n), Value: []byte("v" + n)}
		}
		return out
	}
	if SortLabels(nil) || SortLabels(mk("a")) || SortLabels(mk("a", "b", "b", "c")) {
		t.Fatal("sorted labels reported as changed")
	}
	// Past the insertion sort's range.
	var many []string
	for i := 40; i > 0; i-- {
		many = append(many, fmt.Sprintf("l%02d", i))
	}
	ls := mk(many...)
	if !SortLabels(ls) {
		t.Fatal("40 labels in reverse reported as sorted")
	}
	for i := 1; i < len(ls); i++ {
		if string(ls[i-1].Name) >= string(ls[i].Name) || string(ls[i].Value) != "v"+string(ls[i].Name) {
			t.Fatalf("40 labels sorted as %s", FormatLabels(ls, 2000))
		}
	}

	names := []string{"__name__", "a", "b", "c", "d"}
	var permute func(k int)
	permute = func(k int) {
		if k == len(names) {
			ls := mk(names...)
			changed := SortLabels(ls)
			for i := 1; i < len(ls); i++ {
				if string(ls[i-1].Name) >= string(ls[i].Name) || string(ls[i].Value) != "v"+string(ls[i].Name) {
					t.Fatalf("%v sorted as %s", names, FormatLabels(ls, 200))
				}
			}
			if sorted := strings.Join(names, ",") == "__name__,a,b,c,d"; changed == sorted {
				t.Fatalf("%v: changed=%v", names, changed)
			}
			return
		}
		for i := k; i < len(names); i++ {
			names[k], names[i] = names[i], names[k]
			permute(k + 1)
			names[k], names[i] = names[i], names[k]
		}
	}
	permute(0)
}

// TestV2SeriesShape: a 2.0 series must hold samples or histograms, not
// both and not neither (400 either way), except a series of exemplars
// alone, which Prometheus' own sender sends.
func TestV2SeriesShape(t *testing.T) {
	now := time.Now().UnixMilli()
	lim := DefaultLimits()
	h := writev2.Histogram{Count: &writev2.Histogram_CountInt{CountInt: 1}, Timestamp: now}
	for _, c := range []struct {
		name string
		ts   writev2.TimeSeries
		want string
	}{
		{"samples", writev2.TimeSeries{Samples: []writev2.Sample{{Value: 1, Timestamp: now}}}, ""},
		{"histograms", writev2.TimeSeries{Histograms: []writev2.Histogram{h}}, ""},
		{"exemplars alone", writev2.TimeSeries{Exemplars: []writev2.Exemplar{{Value: 1, Timestamp: now}}}, ""},
		{"neither", writev2.TimeSeries{}, "neither samples nor histograms"},
		{"both", writev2.TimeSeries{Samples: []writev2.Sample{{Value: 1, Timestamp: now}}, Histograms: []writev2.Histogram{h}}, "both samples and histograms"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.ts.LabelsRefs = []uint32{1, 2}
			body := mustMarshal(&writev2.Request{Symbols: []string{"", "__name__", "m"}, Timeseries: []writev2.TimeSeries{c.ts}})
			_, err := checkFirst(t, &lim, remotewrite.V2, body, now)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || writeerr.HTTPStatus(err) != 400):
				t.Fatalf("got %v, want 400 saying %q", err, c.want)
			}
		})
	}
}

// oneSeries is a request of version v holding one series with labels in
// the order given and one sample at now.
func oneSeries(t *testing.T, v remotewrite.Version, ls []prompb.Label, now int64) []byte {
	t.Helper()
	if v == remotewrite.V1 {
		return mustMarshal(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: ls, Samples: []prompb.Sample{{Value: 1, Timestamp: now}}}}})
	}
	symbols := []string{""}
	var refs []uint32
	for _, l := range ls {
		refs = append(refs, uint32(len(symbols)), uint32(len(symbols)+1))
		symbols = append(symbols, l.Name, l.Value)
	}
	return mustMarshal(&writev2.Request{Symbols: symbols, Timeseries: []writev2.TimeSeries{{LabelsRefs: refs, Samples: []writev2.Sample{{Value: 1, Timestamp: now}}}}})
}

// checkFirst parses body, decodes its first series and validates it.
func checkFirst(t *testing.T, lim *Limits, v remotewrite.Version, body []byte, now int64) (*remotewrite.Series, error) {
	t.Helper()
	var r remotewrite.Request
	if err := r.Parse(v, body); err != nil {
		t.Fatal(err)
	}
	s := &remotewrite.Series{}
	if err := r.Series(0, s); err != nil {
		t.Fatal(err)
	}
	return s, lim.CheckSeries(v, s, now)
}

// mustMarshal encodes a message the test built; those always encode, so
// an error is a broken test.
func mustMarshal(m interface{ Marshal() ([]byte, error) }) []byte {
	b, err := m.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}
