package functions

// The router's work per sample before forwarding, on the requests
// `strata loadgen` sends: parse, decode and validate every series, hash it
// and find its owners (route), and build each block builder's part
// (partBody). Each reports ns/sample.

import (
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/klauspost/compress/snappy"

	"github.com/stratametrics/strata/loadgen"
	"github.com/stratametrics/strata/remotewrite"
)

const benchStartMs = int64(1_790_000_000_000)

func benchRouter(b *testing.B, endpoints, rf int) *Router {
	cfg := DefaultConfig()
	for i := 0; i < endpoints; i++ {
		cfg.Endpoints = append(cfg.Endpoints, fmt.Sprintf("127.0.0.1:%d", 20000+i))
	}
	cfg.ReplicationFactor = rf
	r, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.cancel)
	return r
}

// BenchmarkRoute: Parse plus route (decode, validate, hash, owners) of a
// 2000-series request, over 3 and 6 block builders at RF=3.
func BenchmarkRoute(b *testing.B) {
	for _, v := range []remotewrite.Version{remotewrite.V1, remotewrite.V2} {
		for _, endpoints := range []int{3, 6} {
			b.Run(fmt.Sprintf("%s/endpoints=%d/rf=3", v, endpoints), func(b *testing.B) {
				r := benchRouter(b, endpoints, 3)
				body := loadgen.Encode(v, 0, 2000, 1, 0, benchStartMs, 15000)
				ring := r.ring.Ring()
				hr, err := ring.ForTenant("team-a")
				if err != nil {
					b.Fatal(err)
				}
				tl := r.limits.forTenant("team-a")
				st := &writeState{}
				b.ReportAllocs()
				for b.Loop() {
					if err := st.req.Parse(v, body); err != nil {
						b.Fatal(err)
					}
					if _, err := r.route(st, hr, len(ring.Endpoints()), "team-a", tl); err != nil {
						b.Fatal(err)
					}
				}
				if len(st.rejected) > 0 {
					b.Fatalf("route rejected %d series: %s", len(st.rejected), st.rejected[0].Reason)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000), "ns/sample")
			})
		}
	}
}

// BenchmarkPartBody: building every block builder's part once routed.
// With 3 block builders at RF=3 each gets the whole request and the
// sender's body is reused; with 6 each gets about half, copied and
// compressed anew.
func BenchmarkPartBody(b *testing.B) {
	for _, v := range []remotewrite.Version{remotewrite.V1, remotewrite.V2} {
		for _, endpoints := range []int{3, 6} {
			b.Run(fmt.Sprintf("%s/endpoints=%d/rf=3", v, endpoints), func(b *testing.B) {
				r := benchRouter(b, endpoints, 3)
				raw := loadgen.Encode(v, 0, 2000, 1, 0, benchStartMs, 15000)
				ring := r.ring.Ring()
				hr, _ := ring.ForTenant("team-a")
				st := &writeState{compressed: &remotewrite.Buffer{B: snappy.Encode(nil, raw)}}
				if err := st.req.Parse(v, raw); err != nil {
					b.Fatal(err)
				}
				if _, err := r.route(st, hr, len(ring.Endpoints()), "team-a", r.limits.forTenant("team-a")); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					for _, e := range st.touched {
						r.compressed.Put(r.partBody(st, e))
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000), "ns/sample")
			})
		}
	}
}
