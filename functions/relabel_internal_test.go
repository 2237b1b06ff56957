package functions

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/stratametrics/strata/limits"
	"github.com/stratametrics/strata/remotewrite"
)

// The rules of these tests: a drop, a labeldrop, and a label added whose
// value is in no request (a 2.0 outcome's new symbol).
const internalRules = `
- source_labels: [__name__]
  regex: drop_me_.*
  action: drop
- regex: pod_uid
  action: labeldrop
- source_labels: [job]
  target_label: team
  replacement: platform-$1
`

// relabelFixture is a router and the limits of a tenant with internalRules.
func relabelFixture(t *testing.T) (*Router, *limits.Tenant, uint64) {
	t.Helper()
	r := benchRouter(t, 3, 3)
	seed, base := r.limits.knownSeed("team-a")
	file := "default:\n  metric_relabel_configs:\n" + strings.ReplaceAll(internalRules, "\n", "\n    ")
	set, err := limits.Parse([]byte(file), *base)
	if err != nil {
		t.Fatalf("%v\n%s", err, file)
	}
	return r, set.For("team-a"), seed
}

// internalSeries are n series to keep (with a pod_uid to drop) and n to
// drop, their labels in the order sent.
func internalSeries(n int) []labels.Labels {
	var out []labels.Labels
	for i := 0; i < n; i++ {
		for _, name := range []string{"kept", "drop_me_too"} {
			out = append(out, labels.FromStrings("__name__", name, "instance", fmt.Sprintf("host-%d", i), "job", "test", "pod_uid", "uid"))
		}
	}
	return out
}

// encodeInternalV2 encodes series as a 2.0 request whose symbol table
// starts with filler symbols, so that the same series get other
// references than in a request without them.
func encodeInternalV2(t *testing.T, series []labels.Labels, filler ...string) []byte {
	t.Helper()
	st := writev2.NewSymbolTable()
	for _, f := range filler {
		st.Symbolize(f)
	}
	req := &writev2.Request{}
	for k, ls := range series {
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(ls, nil),
			Samples:    []writev2.Sample{{Value: float64(k), Timestamp: 1000}},
		})
	}
	req.Symbols = st.Symbols()
	body, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func encodeInternalV1(t *testing.T, series []labels.Labels) []byte {
	t.Helper()
	req := &prompb.WriteRequest{}
	for k, ls := range series {
		ts := prompb.TimeSeries{Samples: []prompb.Sample{{Value: float64(k), Timestamp: 1000}}}
		ls.Range(func(l labels.Label) { ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value}) })
		req.Timeseries = append(req.Timeseries, ts)
	}
	body, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// relabeledLabels decodes the rewritten request in st with Prometheus'
// types: each series' labels and its sample's value.
func relabeledLabels(t *testing.T, st *writeState) []string {
	t.Helper()
	out, err := decodeRelabeled(st)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func decodeRelabeled(st *writeState) ([]string, error) {
	var out []string
	switch st.req.Version {
	case remotewrite.V1:
		var req prompb.WriteRequest
		if err := req.Unmarshal(st.relabelBody); err != nil {
			return nil, err
		}
		for _, ts := range req.Timeseries {
			out = append(out, fmt.Sprintf("%s %v", labelsOfV1(ts.Labels), ts.Samples[0].Value))
		}
	default:
		var req writev2.Request
		if err := req.Unmarshal(st.relabelBody); err != nil {
			return nil, err
		}
		var b labels.ScratchBuilder
		for _, ts := range req.Timeseries {
			ls, err := ts.ToLabels(&b, req.Symbols)
			if err != nil {
				return nil, err
			}
			out = append(out, fmt.Sprintf("%s %v", ls, ts.Samples[0].Value))
		}
	}
	return out, nil
}

func labelsOfV1(ls []prompb.Label) labels.Labels {
	var b labels.ScratchBuilder
	for _, l := range ls {
		b.Add(l.Name, l.Value)
	}
	return b.Labels()
}

// TestRelabelRemembered: the second request of the same series finds
// every outcome remembered and is rewritten as the first was, in 1.0 and
// in 2.0, whose second request has another symbol table; the outcomes of
// one version do not answer the other's series.
func TestRelabelRemembered(t *testing.T) {
	r, tl, seed := relabelFixture(t)
	series := internalSeries(5)
	var want []string
	for k, ls := range series {
		if !strings.HasPrefix(ls.Get("__name__"), "drop_me") {
			want = append(want, fmt.Sprintf(`{__name__="kept", instance="%s", job="test", team="platform-test"} %d`, ls.Get("instance"), k))
		}
	}
	for _, tc := range []struct {
		name          string
		v             remotewrite.Version
		first, second []byte
	}{
		{"1.0", remotewrite.V1, encodeInternalV1(t, series), encodeInternalV1(t, series)},
		// After 1.0's outcomes, the same series in 2.0 find none. The
		// second request has the added label's value among its symbols.
		{"2.0", remotewrite.V2, encodeInternalV2(t, series), encodeInternalV2(t, series, "filler", "platform-test", "kept")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &writeState{}
			for pass, body := range [][]byte{tc.first, tc.second} {
				if err := st.req.Parse(tc.v, body); err != nil {
					t.Fatal(err)
				}
				st.refusedEarly = st.refusedEarly[:0]
				dropped, held, err := r.relabel(st, tl, seed)
				if err != nil || dropped != 5 || held.Samples != 5 || len(st.refusedEarly) != 0 {
					t.Fatalf("pass %d: dropped %d holding %+v, refused %v: %v", pass, dropped, held, st.refusedEarly, err)
				}
				if k := slices.Index(st.hit, pass == 0); k >= 0 {
					t.Fatalf("pass %d: series %d found remembered: %v", pass, k, st.hit[k])
				}
				if got := relabeledLabels(t, st); !slices.Equal(got, want) {
					t.Fatalf("pass %d: rewritten to\n%s\nwant\n%s", pass, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				if st.req.NumSeries() != len(want) {
					t.Fatalf("pass %d: the request parsed again holds %d series, want %d", pass, st.req.NumSeries(), len(want))
				}
			}
		})
	}
}

// TestRelabelKnownKeys: the known-series keys relabeling hands routing
// are those routing would compute from the rewritten request, whether the
// outcomes were just computed or remembered.
func TestRelabelKnownKeys(t *testing.T) {
	r, tl, seed := relabelFixture(t)
	body := encodeInternalV1(t, internalSeries(20))
	st := &writeState{}
	for pass := 0; pass < 2; pass++ {
		if err := st.req.Parse(remotewrite.V1, body); err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.relabel(st, tl, seed); err != nil {
			t.Fatal(err)
		}
		if !st.keysReady {
			t.Fatalf("pass %d: no keys handed to routing", pass)
		}
		keys, runs := slices.Clone(st.keys), slices.Clone(st.runs)
		st.keysReady = false
		r.lookUpKnown(st, seed)
		if !slices.Equal(keys, st.keys) || !slices.Equal(runs, st.runs) {
			t.Fatalf("pass %d: keys %x runs %v handed to routing, which computes %x %v", pass, keys, runs, st.keys, st.runs)
		}
	}
}

// TestRelabelMalformedNotRemembered: a series refused for a malformed
// sample is refused again only as long as it is malformed: the refusal is
// not remembered for its labels.
func TestRelabelMalformedNotRemembered(t *testing.T) {
	r, tl, seed := relabelFixture(t)
	ls := []remotewrite.Label{{Name: []byte("__name__"), Value: []byte("kept")}, {Name: []byte("pod_uid"), Value: []byte("x")}}
	series := func(sample []byte) []byte {
		payload := append(remotewrite.AppendLabelFields(nil, ls), sample...)
		return append([]byte{0x0a, byte(len(payload))}, payload...)
	}
	bad := series([]byte{0x12, 0x03, 0x09, 0x01, 0x02}) // a double cut short
	good := series([]byte{0x12, 0x0b, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x01})
	st := &writeState{}
	for pass, body := range [][]byte{bad, good} {
		if err := st.req.Parse(remotewrite.V1, body); err != nil {
			t.Fatal(err)
		}
		st.refusedEarly = st.refusedEarly[:0]
		if _, _, err := r.relabel(st, tl, seed); err != nil {
			t.Fatal(err)
		}
		if refused := len(st.refusedEarly) > 0; refused != (pass == 0) {
			t.Fatalf("pass %d: refused %v (%v)", pass, refused, st.refusedEarly)
		}
	}
	if got := relabeledLabels(t, st); len(got) != 1 || got[0] != `{__name__="kept", team="platform-"} 1` {
		t.Fatalf("rewritten to %q", got)
	}
}

// TestRelabelOutcomeMismatch: an outcome remembered under a 2.0 series'
// key whose sources do not fit the series (what only two series sharing
// a key could bring) is not applied: the series gets its own.
func TestRelabelOutcomeMismatch(t *testing.T) {
	r, tl, seed := relabelFixture(t)
	series := internalSeries(1)[:1] // kept
	body := encodeInternalV2(t, series)
	st := &writeState{}
	if err := st.req.Parse(remotewrite.V2, body); err != nil {
		t.Fatal(err)
	}
	st.relabelKeys = grow(st.relabelKeys, 1)
	st.relabelKeysV2(seed)
	// Position 40: the series has 8 strings.
	r.relabelCache.put(st.relabelKeys[0], relabelOutcome{kind: relabelRewrite, entry: append(make([]byte, 8), 80)})
	if _, _, err := r.relabel(st, tl, seed); err != nil {
		t.Fatal(err)
	}
	if !st.hit[0] {
		t.Fatal("the outcome put was not found")
	}
	want := `{__name__="kept", instance="host-0", job="test", team="platform-test"} 0`
	if got := relabeledLabels(t, st); len(got) != 1 || got[0] != want {
		t.Fatalf("rewritten to %q, want %q", got, want)
	}
}

// TestRelabelConcurrent: requests relabeled at once through a cache small
// enough to drop generations all the time each get their own series
// rewritten right (under -race: outcomes read after the lock is released
// are never written).
func TestRelabelConcurrent(t *testing.T) {
	r, tl, seed := relabelFixture(t)
	r.relabelCache = newRelabelCache(16)
	const goroutines, rounds = 4, 50
	first := func(g, round int) int { return (g*7 + round) % 20 }
	var bodies [goroutines][rounds][]byte
	for g := range goroutines {
		for round := range rounds {
			var series []labels.Labels
			for i := first(g, round); i < first(g, round)+10; i++ {
				series = append(series, labels.FromStrings("__name__", "kept", "instance", fmt.Sprintf("host-%d", i), "pod_uid", "x"))
			}
			if round%2 == 0 {
				bodies[g][round] = encodeInternalV1(t, series)
			} else {
				bodies[g][round] = encodeInternalV2(t, series)
			}
		}
	}
	errs := make(chan error, goroutines)
	for g := range goroutines {
		go func() {
			errs <- func() error {
				st := &writeState{}
				for round := range rounds {
					v := remotewrite.V1
					if round%2 == 1 {
						v = remotewrite.V2
					}
					if err := st.req.Parse(v, bodies[g][round]); err != nil {
						return err
					}
					if _, _, err := r.relabel(st, tl, seed); err != nil {
						return err
					}
					got, err := decodeRelabeled(st)
					if err != nil {
						return err
					}
					for k, l := range got {
						if want := fmt.Sprintf(`{__name__="kept", instance="host-%d", team="platform-"} %d`, first(g, round)+k, k); l != want {
							return fmt.Errorf("round %d: series %d rewritten to %s, want %s", round, k, l, want)
						}
					}
				}
				return nil
			}()
		}()
	}
	for range goroutines {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
