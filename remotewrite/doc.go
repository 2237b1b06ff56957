// Package remotewrite holds Prometheus remote-write on the wire: content
// negotiation, snappy with size limits, a byte-level parser of remote-write
// 1.0 and 2.0 requests, validation, splitting a request per owner without
// re-encoding, and the one table that turns errors into HTTP statuses.
//
// Both the router and the block builders parse with this package, so a
// request is judged the same way wherever it lands. The parser works on the
// raw bytes and never copies them: everything it hands out points into the
// request body and is valid only until the body's buffer is reused.
package remotewrite
