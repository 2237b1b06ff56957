package remotewrite

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
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
		t.Run("1.0/"+c.name, func(t *testing.T) {
			body := mustMarshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: c.labels, Samples: []prompb.Sample{{Value: 1, Timestamp: now}}}}})
			checkUTF8(t, &lim, V1, body, c.ok, now)
		})
		t.Run("2.0/"+c.name, func(t *testing.T) {
			symbols := []string{""}
			var refs []uint32
			for _, l := range c.labels {
				refs = append(refs, uint32(len(symbols)), uint32(len(symbols)+1))
				symbols = append(symbols, l.Name, l.Value)
			}
			body := mustMarshal(t, &writev2.Request{Symbols: symbols, Timeseries: []writev2.TimeSeries{{LabelsRefs: refs, Samples: []writev2.Sample{{Value: 1, Timestamp: now}}}}})
			checkUTF8(t, &lim, V2, body, c.ok, now)
		})
	}
	// Labels split in two runs by a sample field, the second invalid.
	split := mustMarshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels: []prompb.Label{{Name: "__name__", Value: "m"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: now}},
	}}})
	label := mustMarshal(t, &prompb.Label{Name: "pod", Value: "\xff"})
	series := append(split[2:], append([]byte{0x0a, byte(len(label))}, label...)...)
	checkUTF8(t, &lim, V1, append([]byte{0x0a, byte(len(series))}, series...), false, now)
}

func checkUTF8(t *testing.T, lim *Limits, v Version, body []byte, ok bool, now int64) {
	t.Helper()
	var r Request
	if err := r.Parse(v, body); err != nil {
		t.Fatal(err)
	}
	var s Series
	if err := r.Series(0, &s); err != nil {
		t.Fatal(err)
	}
	err := lim.CheckSeries(v, &s, now)
	switch {
	case ok && err != nil:
		t.Fatalf("valid labels refused: %v", err)
	case !ok && (err == nil || !strings.Contains(err.Error(), "UTF-8")):
		t.Fatalf("invalid UTF-8 labels: got %v, want a refusal naming UTF-8", err)
	}
}
