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
	"github.com/prometheus/prometheus/model/relabel"
	"go.yaml.in/yaml/v3"

	"github.com/stratametrics/strata/limits"
	"github.com/stratametrics/strata/loadgen"
	"github.com/stratametrics/strata/remotewrite"
)

const benchStartMs = int64(1_790_000_000_000)

func benchRouter(b testing.TB, endpoints, rf int, tweak ...func(*Config)) *Router {
	cfg := DefaultConfig()
	for _, f := range tweak {
		f(&cfg)
	}
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

// BenchmarkRoute: Parse plus route (decode, validate, hash, owners) of
// 2000-series requests over 100k active series, over 3 and 6 block
// builders at RF=3; known=on is the steady state, every series seen
// before, known=off what each series costs without the known-series table
// (and about what a new series costs).
func BenchmarkRoute(b *testing.B) {
	for _, v := range []remotewrite.Version{remotewrite.V1, remotewrite.V2} {
		for _, endpoints := range []int{3, 6} {
			for _, known := range []int{1 << 20, 0} {
				onOff := map[bool]string{true: "on", false: "off"}[known > 0]
				b.Run(fmt.Sprintf("%s/endpoints=%d/rf=3/known=%s", v, endpoints, onOff), func(b *testing.B) {
					r := benchRouter(b, endpoints, 3, func(c *Config) { c.KnownSeries = known })
					benchRouting(b, r, v, false, nil, nil)
				})
			}
		}
	}
}

// BenchmarkRouteCold: BenchmarkRoute's steady state over 6 block builders
// with the caches filled with other data between requests (the timer
// stopped), as in the router, which compresses and sends parts between
// routing requests, beside block builders and senders: the hashring's
// tables and the known-series table are then read from memory. Looking
// up the owners series by series, between decoding them, cost 300
// ns/sample here; in a loop of their own, 227.
func BenchmarkRouteCold(b *testing.B) {
	for _, v := range []remotewrite.Version{remotewrite.V1, remotewrite.V2} {
		b.Run(fmt.Sprintf("%s/endpoints=6/rf=3/known=on", v), func(b *testing.B) {
			benchRouting(b, benchRouter(b, 6, 3), v, true, nil, nil)
		})
	}
}

// benchRouting measures Parse plus route over 50 requests of 2000 series
// (100k active series), each routed once before measuring. cold fills
// the caches with other data before each request; tweak, when set,
// changes the tenant's limits; before runs after Parse.
func benchRouting(b *testing.B, r *Router, v remotewrite.Version, cold bool, tweak func(*limits.Tenant), before func(*writeState, *limits.Tenant, uint64)) {
	const perRequest, requests = 2000, 50
	var bodies [][]byte
	for k := 0; k < requests; k++ {
		bodies = append(bodies, loadgen.Encode(v, k*perRequest, perRequest, 1, 0, benchStartMs, 15000))
	}
	ring := r.ring.Ring()
	hr, err := ring.ForTenant("team-a")
	if err != nil {
		b.Fatal(err)
	}
	seed, limits := r.limits.knownSeed("team-a")
	tl := *limits
	if tweak != nil {
		tweak(&tl)
	}
	st := &writeState{}
	route := func(body []byte) {
		if err := st.req.Parse(v, body); err != nil {
			b.Fatal(err)
		}
		if before != nil {
			before(st, &tl, seed)
		}
		if _, err := r.route(st, hr, len(ring.Endpoints()), "team-a", &tl, seed); err != nil {
			b.Fatal(err)
		}
		if len(st.rejected) > 0 {
			b.Fatalf("route rejected %d series: %s", len(st.rejected), st.rejected[0].Reason)
		}
	}
	for _, body := range bodies {
		route(body)
	}
	// Larger than the caches of the machines this runs on; 64 MB, as the
	// router shares them with block builders and senders.
	var other []byte
	if cold {
		other = make([]byte, 64<<20)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if cold {
			b.StopTimer()
			for i := 0; i < len(other); i += 64 {
				other[i]++
			}
			b.StartTimer()
		}
		route(bodies[n%requests])
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perRequest), "ns/sample")
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
				seed, tl := r.limits.knownSeed("team-a")
				if _, err := r.route(st, hr, len(ring.Endpoints()), "team-a", tl, seed); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				bytes := 0
				for b.Loop() {
					bytes = 0
					for _, e := range st.touched {
						part := r.partBody(st, e)
						bytes += len(part.B)
						r.compressed.Put(part)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000), "ns/sample")
				b.ReportMetric(float64(bytes)/2000, "B/sample")
			})
		}
	}
}

// BenchmarkFramedBodies: BenchmarkPartBody's parts over 6 block builders
// as framed bodies (framed.go): every owner set's series compressed once,
// then each block builder's body copied together.
func BenchmarkFramedBodies(b *testing.B) {
	for _, v := range []remotewrite.Version{remotewrite.V1, remotewrite.V2} {
		b.Run(fmt.Sprintf("%s/endpoints=6/rf=3", v), func(b *testing.B) {
			r := benchRouter(b, 6, 3)
			st := routed(b, r, v, 2000)
			b.ReportAllocs()
			bytes := 0
			for b.Loop() {
				if !r.prepareFramed(st) {
					b.Fatal("not framed")
				}
				bytes = 0
				for k, e := range st.touched {
					body := r.framedBody(st, k, e)
					bytes += len(body.B)
					r.compressed.Put(body)
				}
				r.doneFramed(st)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000), "ns/sample")
			b.ReportMetric(float64(bytes)/2000, "B/sample")
		})
	}
}

// BenchmarkKnownOwners: the owner lookup of series the router has seen
// before, as route does it for a request of 2000: hash each series'
// encoded labels (10 of them), find its series hash in the known-series
// table (all of a request's lookups together, so that their cache misses
// overlap), then its owners at RF=3 among 6 block builders; over 100k
// series and over 1M, the table's default size (STRATA_KNOWN_SERIES), with
// the share of series it misses. shard's BenchmarkOwners is the lookup of
// a series seen for the first time (hash every label, then the ring), one
// at a time.
func BenchmarkKnownOwners(b *testing.B) {
	const perRequest = 2000
	for _, c := range []struct {
		name   string
		series int
	}{{"100k", 100_000}, {"1M", 1 << 20}} {
		b.Run(c.name, func(b *testing.B) {
			requests := c.series / perRequest
			r := benchRouter(b, 6, 3)
			hr, err := r.ring.Ring().ForTenant("team-a")
			if err != nil {
				b.Fatal(err)
			}
			seed, tl := r.limits.knownSeed("team-a")
			var states []*writeState
			for k := 0; k < requests; k++ {
				st := &writeState{}
				if err := st.req.Parse(remotewrite.V1, loadgen.Encode(remotewrite.V1, k*perRequest, perRequest, 1, 0, benchStartMs, 15000)); err != nil {
					b.Fatal(err)
				}
				if _, err := r.route(st, hr, 6, "team-a", tl, seed); err != nil {
					b.Fatal(err)
				}
				states = append(states, st)
			}
			// A second round puts the series that lost their entry while
			// the table grew, as the router's next requests do.
			for _, st := range states {
				if _, err := r.route(st, hr, 6, "team-a", tl, seed); err != nil {
					b.Fatal(err)
				}
			}
			owners := make([]int, 0, 3)
			b.ReportAllocs()
			n, misses := 0, 0
			for b.Loop() {
				st := states[n%requests]
				r.lookUpKnown(st, seed)
				for _, h := range st.hashes {
					// A few series lose their entry to others whose two
					// buckets are full; the router decodes those in full.
					if h == 0 {
						misses++
					}
					owners = hr.Owners(h, owners[:0])
				}
				n++
			}
			if misses > n*perRequest/100 {
				b.Fatalf("%d of %d lookups missed the table", misses, n*perRequest)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perRequest), "ns/series")
			b.ReportMetric(float64(misses)/float64(n*perRequest), "unknown/series")
		})
	}
}

// BenchmarkRouteRelabel: BenchmarkRoute's steady state (known=on, 6 block
// builders) with the tenant's metric_relabel_configs applied first
// (relabel), without rules and with loadgen.RelabelRules (10% of series
// dropped, one label dropped from the others); ns/sample is per sample
// received.
func BenchmarkRouteRelabel(b *testing.B) {
	var rules []*relabel.Config
	if err := yaml.Unmarshal([]byte(loadgen.RelabelRules), &rules); err != nil {
		b.Fatal(err)
	}
	for _, v := range []remotewrite.Version{remotewrite.V1, remotewrite.V2} {
		for _, withRules := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/rules=%v", v, withRules), func(b *testing.B) {
				r := benchRouter(b, 6, 3)
				if !withRules {
					benchRouting(b, r, v, false, nil, nil)
					return
				}
				benchRouting(b, r, v, false, func(tl *limits.Tenant) { tl.MetricRelabelConfigs = rules }, func(st *writeState, tl *limits.Tenant, seed uint64) {
					st.refusedEarly = st.refusedEarly[:0]
					dropped, _, err := r.relabel(st, tl, seed)
					if err != nil || dropped == 0 || dropped > st.req.NumSeries()/5 {
						b.Fatalf("relabel dropped %d series: %v", dropped, err)
					}
				})
			})
		}
	}
}
