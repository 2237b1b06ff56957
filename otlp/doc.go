// Package otlp holds OpenTelemetry's OTLP/HTTP metrics on the wire: the
// body's media types and encodings with size limits, the translation by
// Prometheus' own OTLP translator (so that names, labels, target_info and
// histograms come out as Prometheus' receiver makes them) into a Batch of
// series, and the answers the OTLP/HTTP specification asks for.
//
// The router marshals a batch into an ordinary remote-write 2.0 body and
// routes it as it does any other; a block builder appends a batch through
// the loop that appends remote-write series, with the same validation and
// limits: one write path, whatever the protocol.
package otlp
