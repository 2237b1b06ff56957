// Package otlp holds OpenTelemetry's OTLP/HTTP metrics on the wire: the
// body's media types and encodings with size limits, the translation into
// a remote-write 2.0 request by Prometheus' own OTLP translator (so that
// names, labels, target_info and histograms come out as Prometheus'
// receiver makes them), and the answers the OTLP/HTTP specification asks
// for.
//
// A translated request is an ordinary remote-write 2.0 body: the router
// and the block builders route, validate and store it as they do any
// other, so there is one write path, whatever the protocol.
package otlp
