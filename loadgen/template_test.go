package loadgen

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/stratametrics/strata/remotewrite"
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
			tmpl := buildTemplate(v, first, gens, per)
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
			limits := remotewrite.DefaultLimits()
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
		tmpl := buildTemplate(v, 10, make([]int, 30), 2)
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
