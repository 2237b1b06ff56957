package storeapi

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// listSet is a ChunkSeriesSet over label sets, in the order given.
type listSet struct {
	all []labels.Labels
	i   int
}

func (s *listSet) Next() bool { s.i++; return s.i <= len(s.all) }
func (s *listSet) At() storage.ChunkSeries {
	return storage.NewListChunkSeriesFromSamples(s.all[s.i-1])
}
func (s *listSet) Err() error                        { return nil }
func (s *listSet) Warnings() annotations.Annotations { return nil }

// randomSeries makes n distinct label sets over few names and values, so
// that prefixes (up{} and up{a="1"}) are common, sorted as a TSDB returns
// them.
func randomSeries(rng *rand.Rand, names []string, n int) []labels.Labels {
	seen := map[string]labels.Labels{}
	for len(seen) < n {
		b := labels.NewScratchBuilder(len(names))
		for _, name := range names {
			if rng.IntN(2) == 0 {
				b.Add(name, string(rune('0'+rng.IntN(2))))
			}
		}
		b.Sort()
		ls := b.Labels()
		seen[ls.String()] = ls
	}
	out := make([]labels.Labels, 0, n)
	for _, ls := range seen {
		out = append(out, ls)
	}
	slices.SortFunc(out, labels.Compare)
	return out
}

func drain(t *testing.T, s seriesStream) []labels.Labels {
	t.Helper()
	var out []labels.Labels
	for s.Next() {
		out = append(out, s.At().out)
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReorderStreamSorts checks the streaming order against a full sort,
// on many random tenants whose external labels fall before, between and
// after the series' label names.
func TestReorderStreamSorts(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	seriesNames := []string{"__name__", "b", "d", "f", "h"}
	extNames := []string{"a", "c", "e", "g", "i"}
	for iter := 0; iter < 2000; iter++ {
		series := randomSeries(rng, seriesNames, 1+rng.IntN(25))
		eb := labels.NewScratchBuilder(0)
		for _, n := range extNames {
			if rng.IntN(2) == 0 {
				eb.Add(n, "x")
			}
		}
		ext := eb.Labels()
		rl := newRelabeler(ext, nil)
		want := make([]labels.Labels, len(series))
		for i, s := range series {
			want[i] = rl.apply(s)
		}
		slices.SortFunc(want, labels.Compare)

		s := newReorderStream(&listSet{all: series}, rl)
		got := drain(t, s)
		if !slices.EqualFunc(got, want, labels.Equal) {
			t.Fatalf("external labels %s over\n %v\nstreamed\n %v\nwant\n %v", ext, series, got, want)
		}
	}
}

// TestReorderStreamHoldsLittle checks that streaming holds only the series
// that can still be passed: a metric without labels ahead of many of its
// extensions is held alone, not with all of them.
func TestReorderStreamHoldsLittle(t *testing.T) {
	var series []labels.Labels
	series = append(series, labels.FromStrings("__name__", "up"))
	for i := 0; i < 1000; i++ {
		series = append(series, labels.FromStrings("__name__", "up", "instance", string(rune('a'+i%26))+string(rune('a'+i/26))))
	}
	slices.SortFunc(series, labels.Compare)
	rl := newRelabeler(labels.FromStrings("receive_replica", "r", "tenant_id", "t"), nil)
	s := newReorderStream(&listSet{all: series}, rl)
	maxHeld, n := 0, 0
	for s.Next() {
		maxHeld = max(maxHeld, len(s.h))
		n++
	}
	if n != len(series) {
		t.Fatalf("streamed %d series, want %d", n, len(series))
	}
	if maxHeld > 2 {
		t.Errorf("held up to %d series at once, want at most 2", maxHeld)
	}
}

// TestSortedStreamOnConflicts covers tenants whose series carry a label
// named like an external label or one the client drops: the order then
// comes from a full sort, and the external value wins.
func TestSortedStreamOnConflicts(t *testing.T) {
	series := []labels.Labels{
		labels.FromStrings("__name__", "up", "replica", "1", "z", "2"),
		labels.FromStrings("__name__", "up", "replica", "2", "z", "1"),
		labels.FromStrings("__name__", "up", "tenant_id", "spoofed"),
	}
	rl := newRelabeler(labels.FromStrings("receive_replica", "r", "tenant_id", "t"), []string{"replica", "receive_replica"})
	for _, name := range []string{"replica", "tenant_id", "receive_replica"} {
		if !rl.conflicts(name) {
			t.Errorf("%s should conflict", name)
		}
	}
	if rl.conflicts("z") {
		t.Error("z should not conflict")
	}
	got := drain(t, newSortedStream(&listSet{all: series}, rl, 0))
	want := []labels.Labels{
		labels.FromStrings("__name__", "up", "tenant_id", "t"),
		labels.FromStrings("__name__", "up", "tenant_id", "t", "z", "1"),
		labels.FromStrings("__name__", "up", "tenant_id", "t", "z", "2"),
	}
	if !slices.EqualFunc(got, want, labels.Equal) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if s := newSortedStream(&listSet{all: series}, rl, 2); s.Next() || s.Err() == nil {
		t.Error("three series over a bound of two must fail")
	}
}

// TestMergeStreamInterleavesTenants merges tenants whose series interleave.
func TestMergeStreamInterleavesTenants(t *testing.T) {
	var streams []seriesStream
	var want []labels.Labels
	for _, tenant := range []string{"b", "a", "c"} {
		rl := newRelabeler(labels.FromStrings("tenant_id", tenant), nil)
		series := []labels.Labels{labels.FromStrings("__name__", "up"), labels.FromStrings("__name__", "x")}
		for _, s := range series {
			want = append(want, rl.apply(s))
		}
		streams = append(streams, newReorderStream(&listSet{all: series}, rl))
	}
	streams = append(streams, newReorderStream(&listSet{}, newRelabeler(labels.EmptyLabels(), nil)))
	slices.SortFunc(want, labels.Compare)
	got := drain(t, newMergeStream(streams))
	if !slices.EqualFunc(got, want, labels.Equal) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
