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
	if enc := strings.TrimSpace(h.Get("Content-Encoding")); enc != "" && !strings.EqualFold(enc, "snappy") {
		return 0, fmt.Errorf("%w: Content-Encoding %q, only snappy is supported", writeerr.ErrUnsupportedMedia, enc)
	}
	return ParseContentType(h.Get("Content-Type"))
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
