package remotewrite

import (
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/stratametrics/strata/writeerr"
)

// Version is the protobuf message of a request.
type Version uint8

const (
	// V1 is prometheus.WriteRequest (remote-write 1.0).
	V1 Version = 1
	// V2 is io.prometheus.write.v2.Request (remote-write 2.0).
	V2 Version = 2
)

// Content types senders use, as the 2.0 specification lists them.
const (
	ContentTypeV1 = "application/x-protobuf;proto=prometheus.WriteRequest"
	ContentTypeV2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
)

// Header names of the remote-write protocol.
const (
	HeaderVersion           = "X-Prometheus-Remote-Write-Version"
	HeaderSamplesWritten    = "X-Prometheus-Remote-Write-Samples-Written"
	HeaderHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	HeaderExemplarsWritten  = "X-Prometheus-Remote-Write-Exemplars-Written"
)

func (v Version) String() string {
	switch v {
	case V1:
		return "1.0"
	case V2:
		return "2.0"
	}
	return fmt.Sprintf("unknown(%d)", uint8(v))
}

// HeaderValue is the X-Prometheus-Remote-Write-Version senders of v send.
func (v Version) HeaderValue() string {
	if v == V2 {
		return "2.0.0"
	}
	return "0.1.0"
}

// ContentType is the Content-Type header value for requests of version v.
func (v Version) ContentType() string {
	if v == V2 {
		return ContentTypeV2
	}
	return ContentTypeV1
}

// Negotiate reads Content-Type and Content-Encoding and tells which message
// the body holds. Anything but snappy-compressed protobuf of a known message
// is writeerr.ErrUnsupportedMedia (415), as the 2.0 specification requires.
//
// A missing Content-Type means 1.0 and a missing Content-Encoding means
// snappy: early 1.0 senders sent neither, and there is no other reading.
func Negotiate(h http.Header) (Version, error) {
	v, enc, err := NegotiateEncoding(h)
	if err == nil && enc != Snappy {
		err = fmt.Errorf("%w: Content-Encoding %q, only snappy is supported", writeerr.ErrUnsupportedMedia, h.Get("Content-Encoding"))
	}
	return v, err
}

// Encoding is how a request body is compressed.
type Encoding uint8

const (
	// Snappy is a snappy block, remote-write's only encoding.
	Snappy Encoding = iota
	// SnappyFramed is snappy's framing format: chunks of at most 64 KiB
	// that concatenate. Routers send it to block builders that announce
	// it (AcceptEncoding), so that series shared by several block
	// builders' parts are compressed once (see functions/framed.go).
	SnappyFramed
)

// Content-Encoding values and the Accept-Encoding a block builder answers
// with (RFC 7694: a server announces the codings it takes in requests).
const (
	EncodingSnappyFramed = "x-snappy-framed"
	AcceptEncoding       = "snappy, " + EncodingSnappyFramed
)

func (e Encoding) String() string {
	if e == SnappyFramed {
		return EncodingSnappyFramed
	}
	return "snappy"
}

// NegotiateEncoding is Negotiate for a receiver that also takes
// SnappyFramed bodies.
func NegotiateEncoding(h http.Header) (Version, Encoding, error) {
	enc := Snappy
	switch e := strings.TrimSpace(h.Get("Content-Encoding")); {
	case e == "" || strings.EqualFold(e, "snappy"):
	case strings.EqualFold(e, EncodingSnappyFramed):
		enc = SnappyFramed
	default:
		return 0, 0, fmt.Errorf("%w: Content-Encoding %q, only snappy and %s are supported", writeerr.ErrUnsupportedMedia, e, EncodingSnappyFramed)
	}
	v, err := ParseContentType(h.Get("Content-Type"))
	return v, enc, err
}

// AcceptsFramed tells whether a receiver's answer announces SnappyFramed.
func AcceptsFramed(h http.Header) bool {
	for _, v := range h.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(v, ",") {
			coding, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(coding), EncodingSnappyFramed) {
				return true
			}
		}
	}
	return false
}

// ParseContentType maps a Content-Type header value to a Version.
func ParseContentType(ct string) (Version, error) {
	if strings.TrimSpace(ct) == "" {
		return V1, nil
	}
	media, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return 0, fmt.Errorf("%w: Content-Type %q: %v", writeerr.ErrUnsupportedMedia, ct, err)
	}
	if media != "application/x-protobuf" {
		return 0, fmt.Errorf("%w: Content-Type %q, want application/x-protobuf", writeerr.ErrUnsupportedMedia, ct)
	}
	switch proto := params["proto"]; proto {
	case "", "prometheus.WriteRequest":
		return V1, nil
	case "io.prometheus.write.v2.Request":
		return V2, nil
	default:
		return 0, fmt.Errorf("%w: Content-Type %q: unknown proto %q, want prometheus.WriteRequest or io.prometheus.write.v2.Request", writeerr.ErrUnsupportedMedia, ct, proto)
	}
}
