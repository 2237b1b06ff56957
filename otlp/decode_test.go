package otlp

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/writeerr"
)

func TestParseContentType(t *testing.T) {
	for _, c := range []struct {
		ct   string
		want Format
	}{
		// The OTLP exporters send no parameters, but proxies and hand-made
		// clients add a charset; the media type alone decides.
		{"", Protobuf},
		{"application/x-protobuf", Protobuf},
		{"application/x-protobuf; charset=binary", Protobuf},
		{"application/json", JSON},
		{"application/json; charset=utf-8", JSON},
		{"Application/JSON;charset=UTF-8", JSON},
	} {
		got, err := ParseContentType(c.ct)
		if err != nil || got != c.want {
			t.Errorf("ParseContentType(%q) = %v, %v; want %v", c.ct, got, err, c.want)
		}
	}
	for _, ct := range []string{
		"text/plain",
		"application/protobuf",
		"application/x-protobuf;proto=io.prometheus.write.v2.Request; =",
		"application/x-www-form-urlencoded",
		";;;",
	} {
		_, err := ParseContentType(ct)
		if !errors.Is(err, writeerr.ErrUnsupportedMedia) || writeerr.HTTPStatus(err) != http.StatusUnsupportedMediaType {
			t.Errorf("ParseContentType(%q): %v, want 415 %v", ct, err, writeerr.ErrUnsupportedMedia)
			continue
		}
		if !strings.Contains(err.Error(), "Content-Type") {
			t.Errorf("ParseContentType(%q): %q does not say what was wrong", ct, err)
		}
	}
}

func TestFormatContentType(t *testing.T) {
	if Protobuf.ContentType() != "application/x-protobuf" || JSON.ContentType() != "application/json" {
		t.Fatalf("content types %q %q", Protobuf.ContentType(), JSON.ContentType())
	}
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstded(t testing.TB, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

func zlibbed(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func deflated(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecompressEncodings(t *testing.T) {
	plain := bytes.Repeat([]byte("otlp metrics body "), 10000)
	for _, c := range []struct {
		encoding string
		body     []byte
	}{
		{"", plain},
		{"identity", plain},
		{"gzip", gzipped(t, plain)},
		{"x-gzip", gzipped(t, plain)},
		{"zstd", zstded(t, plain)},
		// HTTP's deflate is zlib; some clients send raw deflate under it.
		{"deflate", zlibbed(t, plain)},
		{"deflate", deflated(t, plain)},
		{"zlib", zlibbed(t, plain)},
		// Content codings are case-insensitive (RFC 9110, 8.4.1).
		{"GZIP", gzipped(t, plain)},
		{"Zstd", zstded(t, plain)},
	} {
		if err := CheckEncoding(c.encoding); err != nil {
			t.Errorf("CheckEncoding(%q): %v", c.encoding, err)
			continue
		}
		var dst remotewrite.Buffer
		if err := Decompress(&dst, c.body, c.encoding, len(plain)); err != nil {
			t.Errorf("Decompress %q: %v", c.encoding, err)
			continue
		}
		if !bytes.Equal(dst.B, plain) {
			t.Errorf("Decompress %q: %d bytes, not the %d sent", c.encoding, len(dst.B), len(plain))
		}
		// One byte under the decoded size is over the limit.
		err := Decompress(&dst, c.body, c.encoding, len(plain)-1)
		if !errors.Is(err, writeerr.ErrTooLarge) || !strings.Contains(err.Error(), "limit") {
			t.Errorf("Decompress %q with a limit below its size: %v, want %v", c.encoding, err, writeerr.ErrTooLarge)
		}
	}
}

func TestDecompressReusesBuffer(t *testing.T) {
	plain := bytes.Repeat([]byte{1, 2, 3}, 1000)
	dst := remotewrite.Buffer{B: append(make([]byte, 0, 1<<20), "left over"...)}
	if err := Decompress(&dst, gzipped(t, plain), "gzip", 1<<20); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.B, plain) {
		t.Fatalf("got %d bytes, want the %d sent and nothing left from before", len(dst.B), len(plain))
	}
	if cap(dst.B) != 1<<20 {
		t.Fatalf("the buffer was reallocated (cap %d): a pooled buffer must be reused", cap(dst.B))
	}
}

func TestUnknownEncoding(t *testing.T) {
	for _, enc := range []string{"br", "snappy", "compress", "gzip, br", "lz4"} {
		err := CheckEncoding(enc)
		if writeerr.HTTPStatus(err) != http.StatusUnsupportedMediaType || !strings.Contains(err.Error(), enc) {
			t.Errorf("CheckEncoding(%q): %v, want 415 naming it", enc, err)
		}
		var dst remotewrite.Buffer
		err = Decompress(&dst, []byte("x"), enc, 100)
		if writeerr.HTTPStatus(err) != http.StatusUnsupportedMediaType {
			t.Errorf("Decompress(%q): %v, want 415", enc, err)
		}
	}
}

func TestDecompressCorrupt(t *testing.T) {
	plain := bytes.Repeat([]byte("abcdefgh"), 4096)
	for _, c := range []struct {
		encoding string
		body     []byte
	}{
		{"gzip", []byte("not gzip at all")},
		{"gzip", gzipped(t, plain)[:100]},
		{"zstd", []byte("not zstd at all")},
		{"zstd", zstded(t, plain)[:20]},
		{"deflate", []byte{0xff, 0xff, 0xff, 0xff}},
		{"deflate", zlibbed(t, plain)[:30]},
	} {
		var dst remotewrite.Buffer
		err := Decompress(&dst, c.body, c.encoding, 1<<20)
		if writeerr.HTTPStatus(err) != http.StatusBadRequest || !strings.Contains(err.Error(), c.encoding) {
			t.Errorf("Decompress(%s, %d bytes): %v, want 400 naming the encoding", c.encoding, len(c.body), err)
		}
	}
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// bomb compresses n zero bytes with w.
func bomb(t testing.TB, n int64, w func(io.Writer) io.WriteCloser) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := w(&buf)
	if _, err := io.CopyN(zw, zeros{}, n); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDecompressBombs: a small body that inflates to far more than the
// limit is refused having decoded about the limit, not all of it.
func TestDecompressBombs(t *testing.T) {
	const inflated = 512 << 20
	const limit = 1 << 20
	for _, c := range []struct {
		encoding string
		body     []byte
	}{
		{"gzip", bomb(t, inflated, func(w io.Writer) io.WriteCloser {
			zw, _ := gzip.NewWriterLevel(w, gzip.BestCompression)
			return zw
		})},
		{"zstd", bomb(t, inflated, func(w io.Writer) io.WriteCloser {
			zw, _ := zstd.NewWriter(w)
			return zw
		})},
		{"deflate", bomb(t, inflated, func(w io.Writer) io.WriteCloser {
			zw, _ := zlib.NewWriterLevel(w, zlib.BestCompression)
			return zw
		})},
	} {
		var dst remotewrite.Buffer
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := Decompress(&dst, c.body, c.encoding, limit)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, writeerr.ErrTooLarge) {
			t.Errorf("%s bomb of %d bytes: %v, want %v", c.encoding, len(c.body), err, writeerr.ErrTooLarge)
			continue
		}
		// Decoders and the buffer cost a few times the limit at most; the
		// inflated size is 512 times it.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16*limit {
			t.Errorf("%s bomb of %d bytes: %d bytes allocated to refuse it, the limit is %d", c.encoding, len(c.body), alloc, limit)
		}
		if cap(dst.B) > 2*limit {
			t.Errorf("%s bomb: the buffer grew to %d bytes, the limit is %d", c.encoding, cap(dst.B), limit)
		}
	}
}

// zstdFrame is a zstd frame header with the given frame header descriptor
// and window descriptor, followed by one raw block of data.
func zstdFrame(fhd byte, window []byte, data []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0xFD2FB528)
	b = append(b, fhd)
	b = append(b, window...)
	// A last raw block: Last_Block=1, Block_Type=0, Block_Size=len(data).
	h := uint32(1) | uint32(len(data))<<3
	b = append(b, byte(h), byte(h>>8), byte(h>>16))
	return append(b, data...)
}

// TestZstdHugeWindow: a frame that asks for a window of terabytes is
// refused as invalid before the decoder allocates it.
func TestZstdHugeWindow(t *testing.T) {
	for name, frame := range map[string][]byte{
		// Window descriptor exponent 31: a 2 TiB window.
		"window descriptor": zstdFrame(0x00, []byte{0xf8}, []byte("hello")),
		// Single segment with an 8-byte content size of 2^50: the window
		// is the content size.
		"content size": zstdFrame(0xe0, binary.LittleEndian.AppendUint64(nil, 1<<50), []byte("hello")),
	} {
		var dst remotewrite.Buffer
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := Decompress(&dst, frame, "zstd", 64<<20)
		runtime.ReadMemStats(&after)
		if s := writeerr.HTTPStatus(err); s/100 != 4 || writeerr.Retryable(s) {
			t.Errorf("%s: %v (status %d), want a 4xx", name, err, s)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
			t.Errorf("%s: %d bytes allocated to refuse a frame of %d", name, alloc, len(frame))
		}
	}
	// The decoder stays usable for the next request.
	var dst remotewrite.Buffer
	if err := Decompress(&dst, zstded(t, []byte("next")), "zstd", 100); err != nil || string(dst.B) != "next" {
		t.Fatalf("zstd after a refused frame: %q, %v", dst.B, err)
	}
}

func exportBody(t testing.TB, md pmetric.Metrics, f Format) []byte {
	t.Helper()
	req := pmetricotlp.NewExportRequestFromMetrics(md)
	var b []byte
	var err error
	if f == JSON {
		b, err = req.MarshalJSON()
	} else {
		b, err = req.MarshalProto()
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func oneGauge() pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("g")
	p := m.SetEmptyGauge().DataPoints().AppendEmpty()
	p.SetTimestamp(1_700_000_000_000_000_000)
	p.SetDoubleValue(1.5)
	return md
}

func TestUnmarshal(t *testing.T) {
	for _, f := range []Format{Protobuf, JSON} {
		body := exportBody(t, oneGauge(), f)
		req, err := Unmarshal(f, body)
		if err != nil {
			t.Fatalf("%s: %v", f.name(), err)
		}
		if n := req.Metrics().DataPointCount(); n != 1 {
			t.Fatalf("%s: %d data points, want 1", f.name(), n)
		}
		// A truncated body, and the body in the other format.
		other := exportBody(t, oneGauge(), 1-f)
		for _, bad := range [][]byte{body[:len(body)-3], other, []byte("{\"resourceMetrics\": [")} {
			_, err := Unmarshal(f, bad)
			if writeerr.HTTPStatus(err) != http.StatusBadRequest || !strings.Contains(err.Error(), f.name()) {
				t.Errorf("%s: %d bytes of %q...: %v, want 400 naming the format", f.name(), len(bad), bad[:min(len(bad), 8)], err)
			}
		}
	}
	// An exporter with nothing to send may still send: a protobuf body
	// without fields, or an empty JSON object.
	if req, err := Unmarshal(Protobuf, nil); err != nil || req.Metrics().ResourceMetrics().Len() != 0 {
		t.Fatalf("empty protobuf: %v", err)
	}
	if req, err := Unmarshal(JSON, []byte("{}")); err != nil || req.Metrics().ResourceMetrics().Len() != 0 {
		t.Fatalf("{}: %v", err)
	}
}
