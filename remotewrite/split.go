package remotewrite

// Splitting a request copies the encoded bytes of the series each owner
// gets into a new request of the same version: nothing is decoded and
// re-encoded, which is what keeps the router's cost per sample low.

// AppendPreamble appends what every part of a split request needs before
// its series: the whole symbol table for 2.0 (series refer to it by index,
// so it is copied as it is), nothing for 1.0.
func (r *Request) AppendPreamble(dst []byte) []byte {
	for _, sp := range r.symbolFields {
		dst = append(dst, r.body[sp.start:sp.end]...)
	}
	return dst
}

// AppendSeries appends the encoded series i.
func (r *Request) AppendSeries(dst []byte, i int) []byte {
	sp := r.series[i]
	return append(dst, r.body[sp.start:sp.end]...)
}

// AppendMetadata appends every 1.0 metadata entry. Metadata is per metric
// family, not per series, and small: each part gets all of it.
func (r *Request) AppendMetadata(dst []byte) []byte {
	for _, sp := range r.metadata {
		dst = append(dst, r.body[sp.start:sp.end]...)
	}
	return dst
}

// SeriesBytes is the encoded size of series i, for sizing buffers.
func (r *Request) SeriesBytes(i int) int {
	sp := r.series[i]
	return sp.end - sp.start
}

// PreambleBytes is the size AppendPreamble adds.
func (r *Request) PreambleBytes() int {
	n := 0
	for _, sp := range r.symbolFields {
		n += sp.end - sp.start
	}
	return n
}

// MetadataBytes is the size AppendMetadata adds.
func (r *Request) MetadataBytes() int {
	n := 0
	for _, sp := range r.metadata {
		n += sp.end - sp.start
	}
	return n
}
