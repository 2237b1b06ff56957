// Package remotewrite holds Prometheus remote-write on the wire: content
// negotiation, reading bodies into pooled buffers, snappy with size
// limits, a byte-level parser of remote-write 1.0 and 2.0 requests, and
// splitting a request per owner without re-encoding. Both the router and
// the block builders parse with this package, so a request is judged the
// same way wherever it lands; what a request must satisfy is package
// validation's, the kinds of failure and their statuses package writeerr's.
//
// The one thing to know before changing it: the parser works on the raw
// bytes and never copies them. Everything it hands out points into the
// request body and is valid only until the body's buffer is reused.
package remotewrite
