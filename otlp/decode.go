package otlp

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/writeerr"
)

// Format is a body's media type; the answer is written in the request's.
type Format int

const (
	Protobuf Format = iota
	JSON
)

// The media types of OTLP/HTTP.
const (
	ProtobufContentType = "application/x-protobuf"
	JSONContentType     = "application/json"
)

// ContentType is the media type of f.
func (f Format) ContentType() string {
	if f == JSON {
		return JSONContentType
	}
	return ProtobufContentType
}

// ParseContentType reads a Content-Type header. A request without one is
// taken as protobuf, the default of the OTLP exporters.
func ParseContentType(ct string) (Format, error) {
	if ct == "" {
		return Protobuf, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return Protobuf, fmt.Errorf("%w: Content-Type %q: %v", writeerr.ErrUnsupportedMedia, ct, err)
	}
	switch mt {
	case ProtobufContentType:
		return Protobuf, nil
	case JSONContentType:
		return JSON, nil
	}
	return Protobuf, fmt.Errorf("%w: Content-Type %q: OTLP/HTTP takes %s or %s", writeerr.ErrUnsupportedMedia, ct, ProtobufContentType, JSONContentType)
}

// CheckEncoding refuses a Content-Encoding Decompress cannot read, before
// the body is read.
func CheckEncoding(encoding string) error {
	switch strings.ToLower(encoding) {
	case "", "identity", "gzip", "x-gzip", "zstd", "deflate", "zlib":
		return nil
	}
	return fmt.Errorf("%w: Content-Encoding %q: this receiver takes gzip, zstd, deflate or none", writeerr.ErrUnsupportedMedia, encoding)
}

// zstdMaxWindow bounds the window a zstd frame may ask the decoder to
// allocate (its own default allows 512 MiB). Encoders use 8 MiB at most
// below their best-compression levels.
const zstdMaxWindow = 32 << 20

var zstdDecoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderLowmem(true))
	if err != nil {
		panic(fmt.Sprintf("otlp: zstd decoder: %v", err)) // only on invalid options
	}
	return d
}}

// Decompress decodes src, sent with the given Content-Encoding, into dst.
// It stops once more than limit bytes came out, so a small body that
// inflates to gigabytes costs at most limit bytes of memory.
func Decompress(dst *remotewrite.Buffer, src []byte, encoding string, limit int) error {
	var r io.Reader
	// Content codings are case-insensitive (RFC 9110, 8.4.1).
	switch encoding = strings.ToLower(encoding); encoding {
	case "", "identity":
		if len(src) > limit {
			return fmt.Errorf("%w: body of %d bytes, the decoded limit is %d", writeerr.ErrTooLarge, len(src), limit)
		}
		dst.B = append(dst.B[:0], src...)
		return nil
	case "gzip", "x-gzip":
		gr, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return fmt.Errorf("%w: gzip: %v", writeerr.ErrInvalid, err)
		}
		defer gr.Close()
		r = gr
	case "zstd":
		d := zstdDecoders.Get().(*zstd.Decoder)
		defer func() {
			_ = d.Reset(nil)
			zstdDecoders.Put(d)
		}()
		if err := d.Reset(bytes.NewReader(src)); err != nil {
			return fmt.Errorf("%w: zstd: %v", writeerr.ErrInvalid, err)
		}
		r = d
	case "deflate", "zlib":
		// HTTP's deflate is zlib-wrapped; some senders send raw deflate.
		zr, err := zlib.NewReader(bytes.NewReader(src))
		if err != nil {
			fr := flate.NewReader(bytes.NewReader(src))
			defer fr.Close()
			r = fr
		} else {
			defer zr.Close()
			r = zr
		}
	default:
		return CheckEncoding(encoding)
	}
	return remotewrite.ReadDecompressed(dst, r, limit, encoding)
}

// Unmarshal parses an ExportMetricsServiceRequest.
func Unmarshal(f Format, body []byte) (pmetricotlp.ExportRequest, error) {
	req := pmetricotlp.NewExportRequest()
	var err error
	if f == JSON {
		err = req.UnmarshalJSON(body)
	} else {
		err = req.UnmarshalProto(body)
	}
	if err != nil {
		return req, fmt.Errorf("%w: cannot parse the OTLP %s body: %v", writeerr.ErrInvalid, f.name(), err)
	}
	return req, nil
}

func (f Format) name() string {
	if f == JSON {
		return "JSON"
	}
	return "protobuf"
}

// CheckHeaders checks a request's Content-Type and Content-Encoding
// before anything else is done with it, and returns its format.
func CheckHeaders(h http.Header) (Format, error) {
	f, err := ParseContentType(h.Get("Content-Type"))
	if err != nil {
		return f, err
	}
	return f, CheckEncoding(h.Get("Content-Encoding"))
}

// ReadRequest reads r's body of format f into compressed (at most
// maxBody bytes), decompresses it into raw (at most maxDecoded bytes) and
// parses it: the steps every receiver of OTLP/HTTP takes once the request
// is admitted.
func ReadRequest(r *http.Request, f Format, compressed, raw *remotewrite.Buffer, maxBody, maxDecoded int) (pmetricotlp.ExportRequest, error) {
	if err := remotewrite.ReadBody(compressed, r.Body, r.ContentLength, maxBody); err != nil {
		return pmetricotlp.ExportRequest{}, err
	}
	if err := Decompress(raw, compressed.B, r.Header.Get("Content-Encoding"), maxDecoded); err != nil {
		return pmetricotlp.ExportRequest{}, err
	}
	return Unmarshal(f, raw.B)
}
