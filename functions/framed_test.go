package functions

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/stratametrics/strata/loadgen"
	"github.com/stratametrics/strata/remotewrite"
)

// TestFramedBodiesHoldTheirParts: each block builder's framed body
// decodes to a request of the same version holding exactly the series it
// owns, byte for byte, in the order epSeries lists them after framedBody
// (the order its answer's rejections refer to), with the whole symbol
// table for 2.0; and they are at most 1.7 times the bytes of partBody's
// parts.
func TestFramedBodiesHoldTheirParts(t *testing.T) {
	for _, v := range []remotewrite.Version{remotewrite.V1, remotewrite.V2} {
		t.Run(v.String(), func(t *testing.T) {
			r := benchRouter(t, 6, 3)
			st := routed(t, r, v, 2000)
			want := map[int][]int32{}
			blockBytes := 0
			for _, e := range st.touched {
				want[e] = slices.Clone(st.epSeries[e])
				part := r.partBody(st, e)
				blockBytes += len(part.B)
			}
			if !r.prepareFramed(st) {
				t.Fatal("2000 series over 6 block builders not framed")
			}
			if n := len(st.framing.groups); n < 6 || n > 20 {
				t.Fatalf("%d owner sets of 3 of 6 block builders", n)
			}
			framedBytes := 0
			for k, e := range st.touched {
				body := r.framedBody(st, k, e)
				framedBytes += len(body.B)
				if got := slices.Sorted(slices.Values(st.epSeries[e])); !slices.Equal(got, want[e]) {
					t.Fatalf("endpoint %d: framedBody lists %d series, want the %d it owns", e, len(got), len(want[e]))
				}
				var raw remotewrite.Buffer
				if err := remotewrite.DecodeFramed(&raw, body.B, 64<<20); err != nil {
					t.Fatal(err)
				}
				var part remotewrite.Request
				if err := part.Parse(v, raw.B); err != nil {
					t.Fatalf("endpoint %d: %v", e, err)
				}
				if !bytes.Equal(part.AppendPreamble(nil), st.req.AppendPreamble(nil)) {
					t.Fatalf("endpoint %d: another symbol table", e)
				}
				if part.NumSeries() != len(st.epSeries[e]) {
					t.Fatalf("endpoint %d: %d series, want %d", e, part.NumSeries(), len(st.epSeries[e]))
				}
				for j, i := range st.epSeries[e] {
					if !bytes.Equal(part.AppendSeries(nil, j), st.req.AppendSeries(nil, int(i))) {
						t.Fatalf("endpoint %d: series %d is not series %d of the request", e, j, i)
					}
				}
			}
			r.doneFramed(st)
			// What STRATA_FORWARD_FRAMED says it costs: groups of about
			// 100 series compress less well than parts of 1000.
			if framedBytes > blockBytes*17/10 {
				t.Fatalf("framed bodies %d bytes, over 1.7 times the parts' %d", framedBytes, blockBytes)
			}
			t.Logf("%s: framed bodies %d bytes, parts %d", v, framedBytes, blockBytes)
		})
	}
}

// TestFramedOnlyForLargeGroups: over many block builders the owner sets
// of a request's series are too many, and too small to compress well, for
// framing; parts are then made as before.
func TestFramedOnlyForLargeGroups(t *testing.T) {
	for _, c := range []struct {
		endpoints, series int
		framed            bool
	}{{6, 2000, true}, {6, 40, false}, {40, 2000, false}, {70, 2000, false}} {
		t.Run(fmt.Sprintf("%d/%d", c.endpoints, c.series), func(t *testing.T) {
			r := benchRouter(t, c.endpoints, 3)
			st := routed(t, r, remotewrite.V1, c.series)
			before := map[int][]int32{}
			for _, e := range st.touched {
				before[e] = slices.Clone(st.epSeries[e])
			}
			if got := r.prepareFramed(st); got != c.framed {
				t.Fatalf("framed %v, want %v", got, c.framed)
			}
			r.doneFramed(st)
			if !c.framed {
				after := map[int][]int32{}
				for _, e := range st.touched {
					after[e] = st.epSeries[e]
				}
				if !maps.EqualFunc(before, after, slices.Equal) {
					t.Fatal("a request not framed had its parts changed")
				}
			}
		})
	}
}

// routed is a request of n series from loadgen, parsed and routed over
// r's ring.
func routed(t testing.TB, r *Router, v remotewrite.Version, n int) *writeState {
	t.Helper()
	ring := r.ring.Ring()
	hr, err := ring.ForTenant("team-a")
	if err != nil {
		t.Fatal(err)
	}
	st := &writeState{}
	if err := st.req.Parse(v, loadgen.Encode(v, 0, n, 1, 0, benchStartMs, 15000)); err != nil {
		t.Fatal(err)
	}
	seed, tl := r.limits.knownSeed("team-a")
	if _, err := r.route(st, hr, len(ring.Endpoints()), "team-a", tl, seed); err != nil {
		t.Fatal(err)
	}
	return st
}
