package loadgen

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/stratametrics/strata/otlp"
	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/validation"
)

// TestGzipProtected is TestEncodeProtected for gzip: whatever the
// unmatched ranges' literals are rewritten to, and the ranges of a shared
// class (every other range here, of one of 3 classes) all to the same
// bytes, with the CRC set again, the member decodes to the source with
// the same bytes written there, by the standard library's reader and by
// klauspost's.
func TestGzipProtected(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name  string
		src   []byte
		width int
		gap   int // most bytes between two ranges, beyond width
	}{
		{"repetitive", bytes.Repeat([]byte("container_cpu_usage_seconds_total namespace=default pod=api-1 "), 400), 8, 200},
		{"close ranges", bytes.Repeat([]byte("cluster=prod-eu-west-1 node=ip-10-0-0-1 "), 300), 8, 3},
		{"random", randomBytes(rng, 5000), 7, 200},
		{"runs", bytes.Repeat([]byte{0}, 70000), 8, 300}, // matches of 258 and beyond the window
		{"short", []byte("abc"), 1, 1},
		{"empty", nil, 8, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := bytes.Clone(tc.src)
			class := make([]int32, len(src))
			var dyn []int
			for i := 1; i+tc.width <= len(src); i += tc.width + 1 + rng.IntN(tc.gap) {
				dyn = append(dyn, i)
			}
			shared := func(k int) int32 { return int32(k/2%3) * int32(tc.width) }
			for k, d := range dyn {
				for b := range tc.width {
					class[d+b] = unmatched
					if k%2 == 1 {
						// The bytes of a shared class must start equal.
						class[d+b] = 1 + shared(k) + int32(b)
						src[d+b] = byte(shared(k))
					}
				}
			}
			member, lits := gzipProtected(src, class)
			want := bytes.Clone(src)
			for try := 0; try < 3; try++ {
				if try > 0 {
					values := map[int32][]byte{} // by shared class
					for c := int32(0); c < 3; c++ {
						values[c*int32(tc.width)] = randomBytes(rng, tc.width)
					}
					starts := map[int]bool{}
					for k, d := range dyn {
						p := randomBytes(rng, tc.width)
						if k%2 == 1 {
							p = values[shared(k)]
						} else {
							starts[d] = true
						}
						copy(want[d:], p)
					}
					for i, l := range lits {
						c := class[l.src]
						switch {
						case c == 0:
							t.Fatalf("byte %d of class 0 listed", l.src)
						case c != unmatched:
							putLiterals(member, int(l.bit), want[l.src:l.src+1])
						case starts[int(l.src)]:
							if i+tc.width > len(lits) || lits[i+tc.width-1].src != l.src+int32(tc.width)-1 {
								t.Fatalf("range at %d is not all literals", l.src)
							}
							putLiterals(member, int(l.bit), want[l.src:int(l.src)+tc.width])
						}
					}
					setGzipCRC(member, want)
				}
				for name, open := range map[string]func(io.Reader) (io.Reader, error){
					"compress/gzip":  func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) },
					"klauspost gzip": func(r io.Reader) (io.Reader, error) { return kgzip.NewReader(r) },
				} {
					zr, err := open(bytes.NewReader(member))
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					got, err := io.ReadAll(zr)
					if err != nil {
						t.Fatalf("try %d, %s: %v", try, name, err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("try %d, %s: decoded member differs from the patched source", try, name)
					}
				}
			}
			if tc.name == "repetitive" && len(member) > len(src)/3 {
				t.Errorf("repetitive input of %d bytes compressed to %d: matching does not work", len(src), len(member))
			}
		})
	}
}

// decodeOTLP reads a body the generator sent.
func decodeOTLP(t *testing.T, body []byte, gz bool) pmetricotlp.ExportRequest {
	t.Helper()
	if gz {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		t.Fatal(err)
	}
	return req
}

// TestOTLPTemplate decodes patched OTLP templates, gzipped or not, with
// pdata and checks the resource, the metrics and every point: its
// attributes, value and timestamp.
func TestOTLPTemplate(t *testing.T) {
	const (
		first, n, per = 37, 50, 3
		startMs       = int64(1_790_000_000_000)
		intervalMs    = int64(15_000)
	)
	for _, gz := range []bool{true, false} {
		for _, unsorted := range []bool{false, true} {
			t.Run(fmt.Sprintf("gzip %v unsorted %v", gz, unsorted), func(t *testing.T) {
				gens := make([]int, n)
				for i := range gens {
					gens[i] = i % 3
				}
				tmpl := buildOTLPTemplate(first, gens, per, unsorted, "bench-1", gz)
				for _, k0 := range []int64{0, 7, 1 << 20} {
					tmpl.patch(k0, startMs, intervalMs)
					checkOTLP(t, decodeOTLP(t, tmpl.body, gz), "bench-1", first, gens, per, k0, startMs, intervalMs, unsorted)
				}
				if gz && len(tmpl.body) > tmpl.rawLen/3 {
					t.Errorf("gzip of %d bytes is %d", tmpl.rawLen, len(tmpl.body))
				}
			})
		}
	}
}

func checkOTLP(t *testing.T, req pmetricotlp.ExportRequest, instance string, first int, gens []int, per int, k0, startMs, intervalMs int64, unsorted bool) {
	t.Helper()
	rms := req.Metrics().ResourceMetrics()
	if rms.Len() != 1 || rms.At(0).ScopeMetrics().Len() != 1 {
		t.Fatalf("%d resources, want 1 with 1 scope", rms.Len())
	}
	res := rms.At(0).Resource().Attributes().AsRaw()
	if len(res) != 2 || res["service.name"] != OTLPServiceName || res["service.instance.id"] != instance {
		t.Errorf("resource attributes %v", res)
	}
	type point struct {
		name  string
		attrs []Label
		ts    pcommon.Timestamp
		v     float64
	}
	got := map[string]point{} // by the series' labels and the timestamp
	ms := rms.At(0).ScopeMetrics().At(0).Metrics()
	names := map[string]bool{}
	for i := range ms.Len() {
		m := ms.At(i)
		if m.Type() != pmetric.MetricTypeGauge || m.Unit() != "" || m.Description() == "" || names[m.Name()] {
			t.Fatalf("metric %s: type %s, unit %q, description %q, seen before %v: want one gauge per name, no unit, a description", m.Name(), m.Type(), m.Unit(), m.Description(), names[m.Name()])
		}
		names[m.Name()] = true
		dps := m.Gauge().DataPoints()
		for j := range dps.Len() {
			dp := dps.At(j)
			var attrs []Label
			for k, v := range dp.Attributes().All() {
				attrs = append(attrs, Label{k, v.Str()})
			}
			key := m.Name() + fmt.Sprint(attrs) + dp.Timestamp().String()
			if _, dup := got[key]; dup {
				t.Fatalf("point %s twice", key)
			}
			got[key] = point{m.Name(), attrs, dp.Timestamp(), dp.DoubleValue()}
		}
	}
	if len(got) != len(gens)*per {
		t.Fatalf("%d points, want %d", len(got), len(gens)*per)
	}
	for i, g := range gens {
		id := SeriesID{Slot: first + i, Gen: g}
		var want []Label
		for _, l := range id.labels(unsorted) {
			if !slices.Contains(otlpOmitted, l.Name) {
				want = append(want, l)
			}
		}
		name := podMetrics[id.Slot%metricsPerPod]
		for j := 0; j < per; j++ {
			k := k0 + int64(j)
			ts := pcommon.Timestamp(uint64(startMs+k*intervalMs) * 1e6)
			p, ok := got[name+fmt.Sprint(want)+ts.String()]
			if !ok {
				t.Fatalf("%v sample %d: no point %s %v at %s", id, k, name, want, ts)
			}
			if p.v != Value(id, k) {
				t.Fatalf("%v sample %d: value %v, want %v", id, k, p.v, Value(id, k))
			}
		}
	}
}

func TestEncodeOTLPMatchesTemplate(t *testing.T) {
	raw := EncodeOTLP(5, 40, 2, 3, 1_790_000_000_000, 15000, "x")
	checkOTLP(t, decodeOTLP(t, raw, false), "x", 5, make([]int, 40), 2, 3, 1_790_000_000_000, 15000, false)
}

// otlpReceiver is an OTLP/HTTP endpoint that translates every request as
// Strata does (Prometheus' translator) and keeps the series it was sent.
type otlpReceiver struct {
	t *testing.T
	// fail, when set, answers a request with a status, or with a
	// partial success refusing that many points when status is 200; the
	// request number counts from 1.
	fail func(n int64) (status int, rejected int64)
	gzip bool

	requests atomic.Int64
	mu       sync.Mutex
	samples  map[string]map[int64]float64 // series -> ts -> value
	problems []string
}

func newOTLPReceiver(t *testing.T) (*otlpReceiver, string) {
	r := &otlpReceiver{t: t, samples: map[string]map[int64]float64{}, gzip: true}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func (r *otlpReceiver) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	n := r.requests.Add(1)
	if req.URL.Path != OTLPPath {
		r.problem("path %s, want %s", req.URL.Path, OTLPPath)
	}
	if ct := req.Header.Get("Content-Type"); ct != otlp.ProtobufContentType {
		r.problem("content type %q", ct)
	}
	if got, want := req.Header.Get("Content-Encoding"), map[bool]string{true: "gzip"}[r.gzip]; got != want {
		r.problem("content encoding %q, want %q", got, want)
	}
	if got := req.Header.Get("THANOS-TENANT"); got != "team-o" {
		r.problem("tenant %q", got)
	}
	var rejected int64
	if r.fail != nil {
		status, rej := r.fail(n)
		if status != 0 && status != http.StatusOK {
			otlp.Answer{Status: status, Message: fmt.Sprintf("request %d refused on purpose", n)}.Write(w, otlp.Protobuf)
			return
		}
		rejected = rej
	}
	body, _ := io.ReadAll(req.Body)
	var raw remotewrite.Buffer
	if err := otlp.Decompress(&raw, body, req.Header.Get("Content-Encoding"), 64<<20); err != nil {
		r.problem("decompress: %v", err)
		otlp.ErrorAnswer(err).Write(w, otlp.Protobuf)
		return
	}
	ereq, err := otlp.Unmarshal(otlp.Protobuf, raw.B)
	if err != nil {
		r.problem("unmarshal: %v", err)
		otlp.ErrorAnswer(err).Write(w, otlp.Protobuf)
		return
	}
	var tr otlp.Translator
	var rw remotewrite.Buffer
	res, err := tr.Translate(req.Context(), ereq.Metrics(), otlp.DefaultConfig().Settings(), &rw)
	if err != nil || res.Refused > 0 || len(res.Warnings) > 0 {
		r.problem("translate: %v, %d refused (%s), warnings %v", err, res.Refused, res.Refusals, res.Warnings)
	}
	var rq remotewrite.Request
	if err := rq.Parse(remotewrite.V2, rw.B); err != nil {
		r.problem("parse the translation: %v", err)
	}
	if rejected == 0 {
		r.mu.Lock()
		var s remotewrite.Series
		for i := 0; i < rq.NumSeries(); i++ {
			if err := rq.Series(i, &s); err != nil {
				r.problems = append(r.problems, err.Error())
				continue
			}
			key := validation.FormatLabels(s.Labels, 1<<20)
			if r.samples[key] == nil {
				r.samples[key] = map[int64]float64{}
			}
			for _, smp := range s.Samples {
				r.samples[key][smp.Timestamp] = smp.Value
			}
		}
		r.mu.Unlock()
	}
	otlp.Answer{Status: http.StatusOK, Rejected: rejected, Message: map[bool]string{true: "refused on purpose"}[rejected > 0]}.Write(w, otlp.Protobuf)
}

func (r *otlpReceiver) check() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, p := range r.problems {
		if i == 10 {
			r.t.Errorf("... and %d more", len(r.problems)-10)
			break
		}
		r.t.Error(p)
	}
}

// TestRunOTLP sends OTLP, gzipped and not, with churn, to a receiver that
// translates it as Strata does, and checks that it got exactly the
// acknowledged samples under the labels StoredLabels names.
func TestRunOTLP(t *testing.T) {
	for _, gz := range []bool{true, false} {
		t.Run(fmt.Sprintf("gzip %v", gz), func(t *testing.T) {
			rcv, url := newOTLPReceiver(t)
			rcv.gzip = gz
			cfg := testConfig(url) // no path: OTLPPath
			cfg.Protocol = OTLP
			cfg.OTLPGzip = gz
			cfg.OTLPInstance = "loadgen-test"
			cfg.Tenant = "team-o"
			cfg.Series = 1000
			cfg.SamplesPerRequest = 300
			cfg.SamplesPerSeries = 2
			cfg.Concurrency = 3
			cfg.Rounds = 4
			cfg.WarmupRounds = 1
			cfg.Churn = 0.5
			acks := map[string]map[int64]float64{}
			var mu sync.Mutex
			n := 0
			cfg.Acked = func(id SeriesID, ts int64, v float64) {
				mu.Lock()
				defer mu.Unlock()
				k := cfg.StoredString(id)
				if acks[k] == nil {
					acks[k] = map[int64]float64{}
				}
				acks[k][ts] = v
				n++
			}
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			rcv.check()
			want := int64(cfg.Series * cfg.SamplesPerSeries * cfg.Rounds)
			if rep.AckedSamples != want || int64(n) != want || len(rep.Errors) != 0 {
				t.Fatalf("acknowledged %d samples (%d by callback), errors %v %v; want %d", rep.AckedSamples, n, rep.Errors, rep.ErrorExamples, want)
			}
			if rep.Protocol != OTLP || rep.URL != url+OTLPPath || rep.Compression != map[bool]string{true: "gzip", false: "identity"}[gz] {
				t.Errorf("report of protocol %s to %s, compression %s", rep.Protocol, rep.URL, rep.Compression)
			}
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			if len(rcv.samples) <= cfg.Series || len(acks) != len(rcv.samples) {
				t.Fatalf("%d series acknowledged, %d received: churn should have made more than %d", len(acks), len(rcv.samples), cfg.Series)
			}
			for k, want := range acks {
				got := rcv.samples[k]
				if len(got) != len(want) {
					t.Fatalf("series %s: received %d samples, acknowledged %d", k, len(got), len(want))
				}
				for ts, v := range want {
					if got[ts] != v {
						t.Fatalf("series %s at %d: received %v, acknowledged %v", k, ts, got[ts], v)
					}
				}
			}
			if k := cfg.StoredString(SeriesID{Slot: 1}); !strings.Contains(k, `instance="loadgen-test"`) || !strings.Contains(k, `job="loadgen"`) {
				t.Errorf("stored labels %s: want job and instance from the resource", k)
			}
		})
	}
}

// TestRunOTLPAnswers checks the answers an OTLP exporter distinguishes:
// 5xx and 429 are retried, 400 and 413 dropped, and the points a partial
// success refuses dropped while the rest count as acknowledged, none of
// the request passed to Acked since which were refused is not said.
func TestRunOTLPAnswers(t *testing.T) {
	rcv, url := newOTLPReceiver(t)
	rcv.fail = func(n int64) (int, int64) {
		switch n {
		case 1:
			return http.StatusServiceUnavailable, 0
		case 2:
			return http.StatusTooManyRequests, 0
		case 3:
			return http.StatusBadRequest, 0
		case 4:
			return http.StatusRequestEntityTooLarge, 0
		case 5:
			return http.StatusOK, 7
		}
		return 0, 0
	}
	cfg := testConfig(url + OTLPPath)
	cfg.Protocol = OTLP
	cfg.Tenant = "team-o"
	cfg.Series = 100
	cfg.SamplesPerRequest = 20
	cfg.Concurrency = 1
	cfg.Rounds = 1
	var acked atomic.Int64
	cfg.Acked = func(SeriesID, int64, float64) { acked.Add(1) }
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rcv.check()
	// Five requests of 20: the first answered 503, 429 (retried) then
	// 400 (dropped), the second 413 (dropped), the third taken but for
	// 7 points, the last two taken.
	if rep.Errors["503"] != 1 || rep.Errors["429"] != 1 || rep.Errors["400"] != 1 || rep.Errors["413"] != 1 || rep.Errors[PartialKey] != 1 {
		t.Errorf("errors %v", rep.Errors)
	}
	if rep.Retries != 2 || rep.DroppedSamples != 40+7 || rep.AckedSamples != 100-47 || acked.Load() != 40 {
		t.Errorf("retries %d, dropped %d, acknowledged %d (%d by callback); want 2, 47, 53 (40)", rep.Retries, rep.DroppedSamples, rep.AckedSamples, acked.Load())
	}
	if rep.ErrorExamples["400"] != "request 3 refused on purpose" {
		t.Errorf("400 example %q: want the google.rpc.Status message", rep.ErrorExamples["400"])
	}
	if rep.ErrorExamples[PartialKey] != "refused on purpose" {
		t.Errorf("partial success example %q", rep.ErrorExamples[PartialKey])
	}
}

func TestProtocol(t *testing.T) {
	for _, tc := range []struct {
		text string
		want Protocol
		json string
	}{{"1", RemoteWrite1, "1"}, {"2", RemoteWrite2, "2"}, {"otlp", OTLP, `"otlp"`}, {"OTLP", OTLP, `"otlp"`}} {
		var p Protocol
		if err := p.Set(tc.text); err != nil || p != tc.want {
			t.Errorf("Set(%q) = %v, %v", tc.text, p, err)
		}
		b, err := p.MarshalJSON()
		if err != nil || string(b) != tc.json {
			t.Errorf("%v as JSON: %s, %v; want %s", p, b, err, tc.json)
		}
		var back Protocol
		if err := back.UnmarshalJSON(b); err != nil || back != p {
			t.Errorf("%s from JSON: %v, %v", b, back, err)
		}
	}
	for _, bad := range []string{"3", "0", "", "otlp/grpc"} {
		var p Protocol
		if err := p.Set(bad); err == nil {
			t.Errorf("Set(%q) took it as %v", bad, p)
		}
	}
	t.Setenv("STRATA_LOADGEN_PROTOCOL", "otlp") // not read by DefaultConfig
	if cfg := DefaultConfig(); cfg.Protocol != RemoteWrite1 || !cfg.OTLPGzip || cfg.OTLPInstance == "" {
		t.Errorf("defaults: protocol %v, gzip %v, instance %q", cfg.Protocol, cfg.OTLPGzip, cfg.OTLPInstance)
	}
}

// TestOTLPZeroValue checks that a value patched to 0 is read as 0 (proto3
// leaves zeros out when marshaling, but reads them when there).
func TestOTLPZeroValue(t *testing.T) {
	tmpl := buildOTLPTemplate(0, make([]int, 3), 1, false, "x", true)
	for s := 1; s < len(tmpl.offs); s += 2 {
		putLiteral64(tmpl.body, int(tmpl.offs[s]), 0)
		copy(tmpl.raw[tmpl.rawOffs[s]:], make([]byte, 8))
	}
	setGzipCRC(tmpl.body, tmpl.raw)
	ms := decodeOTLP(t, tmpl.body, true).Metrics().ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := range ms.Len() {
		if v := ms.At(i).Gauge().DataPoints().At(0).DoubleValue(); v != 0 || math.Signbit(v) {
			t.Errorf("%s: %v, want 0", ms.At(i).Name(), v)
		}
	}
}
