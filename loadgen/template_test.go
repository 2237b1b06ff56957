package loadgen

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/validation"
)

// TestEncodeProtected checks the property templates rely on: whatever is
// written into the protected ranges of the compressed block, it decodes to
// the source with the same bytes written there.
func TestEncodeProtected(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name  string
		src   []byte
		width int
	}{
		{"repetitive", bytes.Repeat([]byte("container_cpu_usage_seconds_total namespace=default pod=api-1 "), 400), 15},
		{"random", randomBytes(rng, 5000), 7},
		{"runs", bytes.Repeat([]byte{0}, 3000), 15},
		{"short", []byte("abc"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dyn []int
			for i := 1; i+tc.width <= len(tc.src); i += tc.width + 1 + rng.IntN(200) {
				dyn = append(dyn, i)
			}
			block, offs := encodeProtected(tc.src, dyn, tc.width)
			if len(offs) != len(dyn) {
				t.Fatalf("%d offsets for %d ranges", len(offs), len(dyn))
			}
			want := bytes.Clone(tc.src)
			for try := 0; try < 3; try++ {
				for k, d := range dyn {
					p := randomBytes(rng, tc.width)
					copy(want[d:], p)
					copy(block[offs[k]:], p)
				}
				got, err := snappy.Decode(nil, block)
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("try %d: decoded block differs from the patched source", try)
				}
			}
			if tc.name == "repetitive" && len(block) > len(tc.src)/4 {
				t.Errorf("repetitive input of %d bytes compressed to %d: matching does not work", len(tc.src), len(block))
			}
		})
	}
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestTemplate decodes patched templates of both versions with the
// generated protobuf code as the reference, and with Strata's parser, and
// checks labels, values and timestamps.
func TestTemplate(t *testing.T) {
	const (
		first, n, per = 37, 50, 3
		startMs       = int64(1_790_000_000_000)
		intervalMs    = int64(15_000)
		k0            = int64(12)
	)
	gens := make([]int, n)
	for i := range gens {
		gens[i] = i % 3
	}
	for _, v := range []remotewrite.Version{remotewrite.V1, remotewrite.V2} {
		t.Run(v.String(), func(t *testing.T) {
			tmpl := buildTemplate(v, first, gens, per, false)
			tmpl.patch(k0, startMs, intervalMs)
			raw, err := snappy.Decode(nil, tmpl.body)
			if err != nil {
				t.Fatal(err)
			}
			if len(raw) != tmpl.rawLen {
				t.Fatalf("decoded %d bytes, template has %d", len(raw), tmpl.rawLen)
			}
			want := func(i, j int) (SeriesID, int64, float64) {
				id := SeriesID{Slot: first + i, Gen: gens[i]}
				k := k0 + int64(j)
				return id, startMs + k*intervalMs, Value(id, k)
			}

			// The generated code as reference.
			type decoded struct {
				labels  string
				samples [][2]float64
			}
			var ref []decoded
			if v == remotewrite.V1 {
				var m prompb.WriteRequest
				if err := m.Unmarshal(raw); err != nil {
					t.Fatalf("generated decoder: %v", err)
				}
				for _, ts := range m.Timeseries {
					d := decoded{labels: fmt.Sprint(ts.Labels)}
					for _, s := range ts.Samples {
						d.samples = append(d.samples, [2]float64{float64(s.Timestamp), s.Value})
					}
					ref = append(ref, d)
				}
			} else {
				var m writev2.Request
				if err := m.Unmarshal(raw); err != nil {
					t.Fatalf("generated decoder: %v", err)
				}
				for _, ts := range m.Timeseries {
					var ls []prompb.Label
					for k := 0; k < len(ts.LabelsRefs); k += 2 {
						ls = append(ls, prompb.Label{Name: m.Symbols[ts.LabelsRefs[k]], Value: m.Symbols[ts.LabelsRefs[k+1]]})
					}
					d := decoded{labels: fmt.Sprint(ls)}
					for _, s := range ts.Samples {
						d.samples = append(d.samples, [2]float64{float64(s.Timestamp), s.Value})
					}
					if ts.Metadata.Type == writev2.Metadata_METRIC_TYPE_UNSPECIFIED || m.Symbols[ts.Metadata.HelpRef] == "" {
						t.Errorf("series %s has no metadata", d.labels)
					}
					ref = append(ref, d)
				}
			}
			if len(ref) != n {
				t.Fatalf("generated decoder found %d series, want %d", len(ref), n)
			}
			for i, d := range ref {
				id, _, _ := want(i, 0)
				var ls []prompb.Label
				for _, l := range id.Labels() {
					ls = append(ls, prompb.Label{Name: l.Name, Value: l.Value})
				}
				if d.labels != fmt.Sprint(ls) {
					t.Fatalf("series %d: labels %s, want %s", i, d.labels, fmt.Sprint(ls))
				}
				if len(d.samples) != per {
					t.Fatalf("series %d: %d samples, want %d", i, len(d.samples), per)
				}
				for j, s := range d.samples {
					_, ts, val := want(i, j)
					if int64(s[0]) != ts || s[1] != val {
						t.Fatalf("series %d sample %d: (%v, %v), want (%d, %v)", i, j, s[0], s[1], ts, val)
					}
				}
			}

			// Strata's parser and validation accept it.
			var req remotewrite.Request
			if err := req.Parse(v, raw); err != nil {
				t.Fatal(err)
			}
			limits := validation.DefaultLimits()
			var s remotewrite.Series
			for i := 0; i < req.NumSeries(); i++ {
				if err := req.Series(i, &s); err != nil {
					t.Fatal(err)
				}
				if err := limits.CheckSeries(v, &s, startMs+1e9); err != nil {
					t.Fatalf("series %d refused: %v", i, err)
				}
			}
		})
	}
}

func TestSeriesLabels(t *testing.T) {
	seen := map[string]SeriesID{}
	for slot := 0; slot < 5000; slot += 7 {
		for gen := 0; gen < 4; gen++ {
			id := SeriesID{Slot: slot, Gen: gen}
			ls := id.Labels()
			if len(ls) != 10 {
				t.Fatalf("%v: %d labels, want 10", id, len(ls))
			}
			for i := 1; i < len(ls); i++ {
				if ls[i-1].Name >= ls[i].Name {
					t.Fatalf("%v: labels not sorted: %q before %q", id, ls[i-1].Name, ls[i].Name)
				}
			}
			s := id.String()
			if other, dup := seen[s]; dup {
				t.Fatalf("%v and %v have the same labels %s", id, other, s)
			}
			seen[s] = id
		}
	}
	if got := (SeriesID{Slot: 0}).String(); got[:len(`{__name__="container_cpu_cfs_periods_total", cluster=`)] != `{__name__="container_cpu_cfs_periods_total", cluster=` {
		t.Errorf("String() = %s, not in Prometheus' format", got)
	}
}

func TestGeneration(t *testing.T) {
	const series = 10
	for replaced := int64(0); replaced < 35; replaced++ {
		total := 0
		for slot := 0; slot < series; slot++ {
			total += generation(slot, replaced, series)
		}
		if int64(total) != replaced {
			t.Fatalf("after %d replacements the generations add up to %d", replaced, total)
		}
	}
	if got := replacements(0.1, 1000, 60_000); got != 100 {
		t.Errorf("10%%/min of 1000 series over a minute replaced %d, want 100", got)
	}
}

func TestValueVaries(t *testing.T) {
	for _, slot := range []int{2, 3} { // a counter, a gauge
		id := SeriesID{Slot: slot}
		a, b := Value(id, 1), Value(id, 2)
		if a == b || math.IsNaN(a) {
			t.Errorf("slot %d: values %v, %v do not move", slot, a, b)
		}
		if isCounter(slot) && b < a {
			t.Errorf("counter slot %d went down: %v then %v", slot, a, b)
		}
	}
}

func TestEncodeMatchesTemplate(t *testing.T) {
	for _, v := range []remotewrite.Version{remotewrite.V1, remotewrite.V2} {
		tmpl := buildTemplate(v, 10, make([]int, 30), 2, false)
		tmpl.patch(4, 1_790_000_000_000, 15000)
		want, err := snappy.Decode(nil, tmpl.body)
		if err != nil {
			t.Fatal(err)
		}
		if got := Encode(v, 10, 30, 2, 4, 1_790_000_000_000, 15000); !bytes.Equal(got, want) {
			t.Errorf("%s: Encode differs from the patched template", v)
		}
	}
}

// refSeries is a series as the generated protobuf code decodes it.
type refSeries struct {
	labels    []Label
	samples   []refSample
	typ, help string // 2.0 only
}

type refSample struct {
	ts int64
	v  float64
}

// decodeRef decodes a request with the generated code of its version.
func decodeRef(t *testing.T, v remotewrite.Version, raw []byte) []refSeries {
	t.Helper()
	var out []refSeries
	if v == remotewrite.V1 {
		var m prompb.WriteRequest
		if err := m.Unmarshal(raw); err != nil {
			t.Fatalf("generated decoder: %v", err)
		}
		for _, ts := range m.Timeseries {
			var s refSeries
			for _, l := range ts.Labels {
				s.labels = append(s.labels, Label{l.Name, l.Value})
			}
			for _, smp := range ts.Samples {
				s.samples = append(s.samples, refSample{smp.Timestamp, smp.Value})
			}
			out = append(out, s)
		}
		return out
	}
	var m writev2.Request
	if err := m.Unmarshal(raw); err != nil {
		t.Fatalf("generated decoder: %v", err)
	}
	for _, ts := range m.Timeseries {
		s := refSeries{typ: ts.Metadata.Type.String(), help: m.Symbols[ts.Metadata.HelpRef]}
		for k := 0; k+1 < len(ts.LabelsRefs); k += 2 {
			s.labels = append(s.labels, Label{m.Symbols[ts.LabelsRefs[k]], m.Symbols[ts.LabelsRefs[k+1]]})
		}
		for _, smp := range ts.Samples {
			s.samples = append(s.samples, refSample{smp.Timestamp, smp.Value})
		}
		out = append(out, s)
	}
	return out
}

// TestUnsortedLabels decodes the requests of the unsorted mode with the
// generated code: every series' labels are out of order, and sorted they
// are the sorted mode's series, with the same samples and metadata, so
// that a receiver that sorts on receipt stores what it stores of the
// sorted mode.
func TestUnsortedLabels(t *testing.T) {
	const (
		first, n, per = 37, 200, 2
		startMs       = int64(1_790_000_000_000)
		intervalMs    = int64(15_000)
		k0            = int64(5)
	)
	gens := make([]int, n)
	for i := range gens {
		gens[i] = i % 4
	}
	byName := func(a, b Label) int { return strings.Compare(a.Name, b.Name) }
	for _, v := range []remotewrite.Version{remotewrite.V1, remotewrite.V2} {
		t.Run(v.String(), func(t *testing.T) {
			decode := func(unsorted bool) []refSeries {
				tmpl := buildTemplate(v, first, gens, per, unsorted)
				tmpl.patch(k0, startMs, intervalMs)
				raw, err := snappy.Decode(nil, tmpl.body)
				if err != nil {
					t.Fatal(err)
				}
				return decodeRef(t, v, raw)
			}
			sorted, unsorted := decode(false), decode(true)
			if len(sorted) != n || len(unsorted) != n {
				t.Fatalf("%d series sorted, %d unsorted, want %d", len(sorted), len(unsorted), n)
			}
			for i := range unsorted {
				got, want := unsorted[i], sorted[i]
				if !slices.IsSortedFunc(want.labels, byName) {
					t.Fatalf("series %d of the sorted mode: labels %v out of order", i, want.labels)
				}
				if slices.IsSortedFunc(got.labels, byName) {
					t.Fatalf("series %d: labels %v sorted, want them out of order", i, got.labels)
				}
				if last := got.labels[len(got.labels)-1]; last.Name != "__name__" {
					t.Errorf("series %d: last label %s, want __name__", i, last.Name)
				}
				ls := slices.Clone(got.labels)
				slices.SortFunc(ls, byName)
				if !slices.Equal(ls, want.labels) {
					t.Fatalf("series %d: sorted labels %v, want %v", i, ls, want.labels)
				}
				if !slices.Equal(got.samples, want.samples) || len(got.samples) != per {
					t.Fatalf("series %d: samples %v, want %v", i, got.samples, want.samples)
				}
				if got.typ != want.typ || got.help != want.help {
					t.Errorf("series %d: metadata %s %q, want %s %q", i, got.typ, got.help, want.typ, want.help)
				}
			}
		})
	}
}

func TestEncodeUnsortedMatchesTemplate(t *testing.T) {
	for _, v := range []remotewrite.Version{remotewrite.V1, remotewrite.V2} {
		tmpl := buildTemplate(v, 10, make([]int, 30), 2, true)
		tmpl.patch(4, 1_790_000_000_000, 15000)
		want, err := snappy.Decode(nil, tmpl.body)
		if err != nil {
			t.Fatal(err)
		}
		if got := EncodeUnsorted(v, 10, 30, 2, 4, 1_790_000_000_000, 15000); !bytes.Equal(got, want) {
			t.Errorf("%s: EncodeUnsorted differs from the patched template", v)
		}
		if bytes.Equal(want, Encode(v, 10, 30, 2, 4, 1_790_000_000_000, 15000)) {
			t.Errorf("%s: EncodeUnsorted is Encode", v)
		}
	}
}
