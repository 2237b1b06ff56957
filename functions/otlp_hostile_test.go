package functions_test

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/model/value"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/stratametrics/strata/blockbuilder"
	"github.com/stratametrics/strata/functions"
)

// The router's limits in these tests: small, so that going past them
// costs the test little.
const (
	hostileMaxBody    = 1 << 20
	hostileMaxDecoded = 4 << 20
)

type otlpCluster struct {
	*cluster
	url string
}

// startOTLPClusterVia starts a cluster of one block builder whose OTLP
// endpoint is the router's, or the block builder's own when direct: a
// block builder appends what it translates without the remote-write body
// the router makes, and must answer as the router does.
func startOTLPClusterVia(t *testing.T, direct bool) *otlpCluster {
	t.Helper()
	c := startClusterWith(t, 1, 1, clusterOptions{
		router: func(cfg *functions.Config) {
			cfg.Limits.MaxBodyBytes = hostileMaxBody
			cfg.Limits.MaxDecodedBytes = hostileMaxDecoded
		},
		blockBuilder: func(_ int, cfg *blockbuilder.Config) {
			cfg.Limits.MaxBodyBytes = hostileMaxBody
			cfg.Limits.MaxDecodedBytes = hostileMaxDecoded
		},
	})
	base := strings.TrimSuffix(c.routerURL, "/api/v1/receive")
	if direct {
		base = "http://" + c.bbs[0].addr
	}
	return &otlpCluster{cluster: c, url: base + "/api/v1/otlp/v1/metrics"}
}

// otlpAnswer is what the router answered, decoded as the OTLP/HTTP
// specification says it is written.
type otlpAnswer struct {
	status   int
	message  string // the google.rpc.Status's, or the partial success's
	rejected int64
}

// send posts body with the given Content-Type and Content-Encoding for
// tenant "otel" and decodes the answer in the request's format.
func (c *otlpCluster) send(t *testing.T, body []byte, contentType, encoding string) otlpAnswer {
	t.Helper()
	h := map[string]string{"Content-Type": contentType, "THANOS-TENANT": "otel"}
	if encoding != "" {
		h["Content-Encoding"] = encoding
	}
	resp, raw := post(t, c.url, body, h)
	a := otlpAnswer{status: resp.StatusCode}
	asJSON := strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json")
	if a.status == http.StatusOK {
		er := pmetricotlp.NewExportResponse()
		var err error
		if asJSON {
			err = er.UnmarshalJSON([]byte(raw))
		} else {
			err = er.UnmarshalProto([]byte(raw))
		}
		if err != nil {
			t.Fatalf("200 with %q: not an ExportMetricsServiceResponse: %v", raw, err)
		}
		a.message, a.rejected = er.PartialSuccess().ErrorMessage(), er.PartialSuccess().RejectedDataPoints()
		return a
	}
	var st status.Status
	var err error
	if asJSON {
		err = protojson.Unmarshal([]byte(raw), &st)
	} else {
		err = proto.Unmarshal([]byte(raw), &st)
	}
	if err != nil {
		t.Fatalf("%d with %q: not a google.rpc.Status: %v", a.status, raw, err)
	}
	a.message = st.Message
	return a
}

// want fails the test unless the answer has the status and its message
// says each of says.
func (a otlpAnswer) want(t *testing.T, status int, says ...string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("answer %d %q, want %d", a.status, a.message, status)
	}
	for _, s := range says {
		if !strings.Contains(a.message, s) {
			t.Fatalf("answer %d %q does not say %q", a.status, a.message, s)
		}
	}
}

func protoBody(t testing.TB, md pmetric.Metrics) []byte {
	t.Helper()
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gauges is a request of one resource without attributes (so no
// target_info) with a gauge of one point per value, at ts.
func gauges(name string, ts time.Time, values ...float64) (pmetric.Metrics, pmetric.NumberDataPointSlice) {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	dps := m.SetEmptyGauge().DataPoints()
	for i, v := range values {
		p := dps.AppendEmpty()
		p.SetTimestamp(pcommon.NewTimestampFromTime(ts.Add(time.Duration(i) * time.Second)))
		p.SetDoubleValue(v)
	}
	return md, dps
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func compressZeros(t *testing.T, n int64, w io.WriteCloser) {
	t.Helper()
	if _, err := io.CopyN(w, zeroReader{}, n); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// allocatedBy is the bytes the process allocated while f ran.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestOTLPHostileInput: what a broken or hostile sender can send the OTLP
// endpoint, the router's or a block builder's, is answered with a 4xx
// saying what was wrong, at a bounded cost, and the receiver goes on
// taking good requests.
func TestOTLPHostileInput(t *testing.T) {
	for _, direct := range []bool{false, true} {
		t.Run(map[bool]string{false: "router", true: "block builder"}[direct], func(t *testing.T) {
			testOTLPHostileInput(t, startOTLPClusterVia(t, direct))
		})
	}
}

func testOTLPHostileInput(t *testing.T, c *otlpCluster) {
	now := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	good, _ := gauges("good", now, 1)
	goodBody := protoBody(t, good)

	t.Run("truncated protobuf", func(t *testing.T) {
		c.send(t, goodBody[:len(goodBody)-5], "application/x-protobuf", "").want(t, http.StatusBadRequest, "protobuf")
	})
	t.Run("invalid JSON", func(t *testing.T) {
		c.send(t, []byte(`{"resourceMetrics": [{"scopeMetrics": [`), "application/json", "").want(t, http.StatusBadRequest, "JSON")
		// JSON of the wrong shape is invalid too.
		c.send(t, []byte(`{"resourceMetrics": "no"}`), "application/json; charset=utf-8", "").want(t, http.StatusBadRequest, "JSON")
	})
	t.Run("protobuf sent as JSON", func(t *testing.T) {
		c.send(t, goodBody, "application/json", "").want(t, http.StatusBadRequest, "JSON")
	})

	t.Run("gzip bomb", func(t *testing.T) {
		const inflated = 256 << 20
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		compressZeros(t, inflated, zw)
		if buf.Len() > hostileMaxBody {
			t.Fatalf("the bomb is %d bytes, over the body limit: it would not test decompression", buf.Len())
		}
		var a otlpAnswer
		alloc := allocatedBy(func() { a = c.send(t, buf.Bytes(), "application/x-protobuf", "gzip") })
		a.want(t, http.StatusRequestEntityTooLarge, "decompresses to more than", fmt.Sprint(hostileMaxDecoded))
		// Reading the body and decoding up to the limit cost a few times
		// the limit; decoding it all, 256 MiB at least.
		if alloc > inflated/4 {
			t.Fatalf("%d bytes allocated to refuse a %d-byte body that inflates to %d", alloc, buf.Len(), inflated)
		}
	})
	t.Run("zstd bomb", func(t *testing.T) {
		const inflated = 256 << 20
		var buf bytes.Buffer
		zw, _ := zstd.NewWriter(&buf)
		compressZeros(t, inflated, zw)
		var a otlpAnswer
		alloc := allocatedBy(func() { a = c.send(t, buf.Bytes(), "application/x-protobuf", "zstd") })
		a.want(t, http.StatusRequestEntityTooLarge, "decompresses to more than")
		if alloc > inflated/4 {
			t.Fatalf("%d bytes allocated to refuse a %d-byte body that inflates to %d", alloc, buf.Len(), inflated)
		}
	})
	t.Run("zstd huge window", func(t *testing.T) {
		// A frame header whose window descriptor asks for 2 TiB, then a
		// last raw block of 5 bytes.
		frame := binary.LittleEndian.AppendUint32(nil, 0xFD2FB528)
		frame = append(frame, 0x00, 0xf8)
		h := uint32(1) | 5<<3
		frame = append(frame, byte(h), byte(h>>8), byte(h>>16))
		frame = append(frame, "hello"...)
		var a otlpAnswer
		alloc := allocatedBy(func() { a = c.send(t, frame, "application/x-protobuf", "zstd") })
		a.want(t, http.StatusBadRequest, "zstd", "window")
		if alloc > 64<<20 {
			t.Fatalf("%d bytes allocated to refuse a frame of %d bytes", alloc, len(frame))
		}
	})

	t.Run("unsupported Content-Type", func(t *testing.T) {
		c.send(t, goodBody, "text/plain", "").want(t, http.StatusUnsupportedMediaType, "Content-Type", "text/plain")
	})
	t.Run("unsupported Content-Encoding", func(t *testing.T) {
		c.send(t, goodBody, "application/x-protobuf", "br").want(t, http.StatusUnsupportedMediaType, "Content-Encoding", "br")
	})
	t.Run("body over max_body_bytes", func(t *testing.T) {
		big := make([]byte, hostileMaxBody+1)
		rand.Read(big)
		c.send(t, big, "application/x-protobuf", "").want(t, http.StatusRequestEntityTooLarge, "limit", fmt.Sprint(hostileMaxBody))
	})
	t.Run("decoded over max_decoded_bytes", func(t *testing.T) {
		// Not a bomb: a body that is merely too large once inflated.
		md, dps := gauges("many", now)
		for i := range 200_000 {
			p := dps.AppendEmpty()
			p.SetTimestamp(pcommon.NewTimestampFromTime(now))
			p.Attributes().PutInt("i", int64(i))
		}
		body := protoBody(t, md)
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(body)
		zw.Close()
		if len(body) <= hostileMaxDecoded || buf.Len() > hostileMaxBody {
			t.Fatalf("body of %d bytes, %d gzipped: want it over the decoded limit only", len(body), buf.Len())
		}
		c.send(t, buf.Bytes(), "application/x-protobuf", "gzip").want(t, http.StatusRequestEntityTooLarge, "limit")
	})

	t.Run("10k attributes", func(t *testing.T) {
		md, dps := gauges("wide", now, 1)
		attrs := dps.At(0).Attributes()
		for i := range 10_000 {
			attrs.PutStr(fmt.Sprintf("attr_%05d", i), "v")
		}
		// The series alone: refused as a remote-write series over
		// max_labels_per_series is, the message saying why.
		c.send(t, protoBody(t, md), "application/x-protobuf", "").want(t, http.StatusRequestEntityTooLarge, "10001 labels", "the limit is 128")
		// With a good series beside it: a partial success.
		ok := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty()
		ok.SetName("beside_wide")
		p := ok.SetEmptyGauge().DataPoints().AppendEmpty()
		p.SetTimestamp(pcommon.NewTimestampFromTime(now))
		p.SetDoubleValue(1)
		a := c.send(t, protoBody(t, md), "application/x-protobuf", "")
		a.want(t, http.StatusOK, "the limit is 128")
		if a.rejected != 1 {
			t.Fatalf("partial success with %d rejected, want the wide point", a.rejected)
		}
	})

	t.Run("future timestamp", func(t *testing.T) {
		md, _ := gauges("future", time.Now().Add(24*time.Hour), 1)
		c.send(t, protoBody(t, md), "application/x-protobuf", "").want(t, http.StatusBadRequest, `__name__="future"`, "ahead of this receiver's clock")
	})

	t.Run("empty", func(t *testing.T) {
		for _, body := range []struct {
			ct   string
			body []byte
		}{
			{"application/x-protobuf", nil},
			{"application/json", []byte("{}")},
			{"application/x-protobuf", protoBody(t, func() pmetric.Metrics {
				md := pmetric.NewMetrics()
				md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
				return md
			}())},
			{"application/json", []byte(`{"resourceMetrics": [{"resource": {}, "scopeMetrics": [{}]}]}`)},
		} {
			a := c.send(t, body.body, body.ct, "")
			a.want(t, http.StatusOK)
			if a.rejected != 0 || a.message != "" {
				t.Fatalf("%s %q: partial success %d %q, want a full success", body.ct, body.body, a.rejected, a.message)
			}
		}
	})

	// After all that, good requests are taken and stored as ever.
	c.send(t, goodBody, "application/x-protobuf", "").want(t, http.StatusOK)
	c.flush()
	got, _ := c.bucketSamples()
	if v, ok := got["otel"][`{__name__="good"}`][now.UnixMilli()]; !ok || v != 1 {
		t.Fatalf("good sample: %v (present %v); stored: %v", v, ok, got["otel"])
	}
	for key := range got["otel"] {
		if strings.Contains(key, "wide") && !strings.Contains(key, "beside") || strings.Contains(key, "future") || strings.Contains(key, "many") {
			t.Errorf("refused series stored: %.200s", key)
		}
	}
}

// TestOTLPStoredAsPrometheus: values and attributes Prometheus' receiver
// takes in its own way are stored so, through the router or written to a
// block builder directly.
func TestOTLPStoredAsPrometheus(t *testing.T) {
	for _, direct := range []bool{false, true} {
		t.Run(map[bool]string{false: "router", true: "block builder"}[direct], func(t *testing.T) {
			testOTLPStoredAsPrometheus(t, startOTLPClusterVia(t, direct))
		})
	}
}

func testOTLPStoredAsPrometheus(t *testing.T, c *otlpCluster) {
	now := time.Now().Add(-time.Minute).Truncate(time.Millisecond)

	// Attributes that escape to the same label name are one label, their
	// values joined with ";" in the order of the attribute names.
	md, dps := gauges("collide", now, 1)
	dps.At(0).Attributes().PutStr("a_b", "2")
	dps.At(0).Attributes().PutStr("a.b", "1")
	c.send(t, protoBody(t, md), "application/x-protobuf", "").want(t, http.StatusOK)

	// NaN and infinities are stored as values; a point without a recorded
	// value is the staleness marker.
	md, dps = gauges("special", now, math.NaN(), math.Inf(1), math.Inf(-1), 0)
	dps.At(3).SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	a := c.send(t, protoBody(t, md), "application/x-protobuf", "")
	a.want(t, http.StatusOK)
	if a.rejected != 0 || a.message != "" {
		t.Fatalf("partial success %d %q, want all taken", a.rejected, a.message)
	}

	// OTLP orders neither points nor series: a series' points sent newest
	// first and interleaved with another series' are all stored.
	md, dps = gauges("unordered", now, 3, 1, 2, 4)
	for i, at := range []int{2, 0, 1, 0} {
		dps.At(i).SetTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(at) * time.Second)))
	}
	dps.At(3).Attributes().PutStr("pod", "b")
	a = c.send(t, protoBody(t, md), "application/x-protobuf", "")
	a.want(t, http.StatusOK)
	if a.rejected != 0 || a.message != "" {
		t.Fatalf("unordered points: partial success %d %q, want all taken", a.rejected, a.message)
	}

	c.flush()
	got, _ := c.bucketSamples()
	ms := func(i int) int64 { return now.Add(time.Duration(i) * time.Second).UnixMilli() }
	if u := got["otel"][`{__name__="unordered"}`]; len(u) != 3 || u[ms(0)] != 1 || u[ms(1)] != 2 || u[ms(2)] != 3 {
		t.Errorf(`unordered: %v, want 1, 2 and 3 a second apart`, u)
	}
	if u := got["otel"][`{__name__="unordered", pod="b"}`]; len(u) != 1 || u[ms(0)] != 4 {
		t.Errorf(`unordered{pod="b"}: %v, want 4`, u)
	}
	if v, ok := got["otel"][`{__name__="collide", a_b="1;2"}`][now.UnixMilli()]; !ok || v != 1 {
		t.Fatalf(`collide{a_b="1;2"}: %v (present %v); stored: %v`, v, ok, got["otel"])
	}
	special := got["otel"][`{__name__="special"}`]
	if v, ok := special[ms(0)]; !ok || !math.IsNaN(v) || value.IsStaleNaN(v) {
		t.Errorf("NaN stored as %v (present %v), want NaN, not the staleness marker", v, ok)
	}
	if v := special[ms(1)]; !math.IsInf(v, 1) {
		t.Errorf("+Inf stored as %v", v)
	}
	if v := special[ms(2)]; !math.IsInf(v, -1) {
		t.Errorf("-Inf stored as %v", v)
	}
	if v, ok := special[ms(3)]; !ok || !value.IsStaleNaN(v) {
		t.Errorf("no recorded value stored as %v (present %v), want the staleness marker", v, ok)
	}
}
