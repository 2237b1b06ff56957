package loadgen

import "encoding/binary"

// A request template is compressed once, by the encoder below, so that each
// send only patches bytes in place and compresses nothing. The trick: the
// bytes that change between sends (every sample's value and timestamp) are
// always emitted as literals and never used as the source or destination of
// a copy. The block then stays a valid snappy block, decoding to the
// patched request, whatever those bytes become. Everything else is matched
// as a normal snappy encoder would, across series, so the compressed size
// stays close to what Prometheus sends.

const (
	snappyTableBits = 16
	// snappyMaxOffset keeps every copy within a 2-byte offset.
	snappyMaxOffset = 1<<16 - 1
)

// encodeProtected compresses src as a snappy block. dyn lists the start of
// each protected range, ascending and not overlapping, each width bytes
// long. It returns the block and, for each range, the offset in the block
// where its bytes are, to be patched there.
func encodeProtected(src []byte, dyn []int, width int) ([]byte, []int32) {
	out := make([]byte, 0, len(src)/3+16)
	out = binary.AppendUvarint(out, uint64(len(src)))
	offs := make([]int32, len(dyn))

	protected := make([]bool, len(src))
	for _, d := range dyn {
		for j := d; j < d+width; j++ {
			protected[j] = true
		}
	}
	var table [1 << snappyTableBits]int32
	for i := range table {
		table[i] = -1
	}
	recorded := 0 // protected ranges whose offset is known
	emitLiteral := func(start, end int) {
		if start == end {
			return
		}
		out = appendLiteralTag(out, end-start)
		base := len(out)
		out = append(out, src[start:end]...)
		for recorded < len(dyn) && dyn[recorded] < end {
			offs[recorded] = int32(base + dyn[recorded] - start)
			recorded++
		}
	}

	litStart, next := 0, 0 // next: index in dyn of the first range at or after i
	for i := 0; i+4 <= len(src); {
		for next < len(dyn) && dyn[next]+width <= i {
			next++
		}
		if next < len(dyn) && i+4 > dyn[next] {
			// The 4 bytes at i touch a protected range: keep them in the
			// literal and look again after the range.
			i = max(i+1, dyn[next]+width)
			continue
		}
		word := binary.LittleEndian.Uint32(src[i:])
		h := (word * 0x1e35a7bd) >> (32 - snappyTableBits)
		cand := int(table[h])
		table[h] = int32(i)
		if cand < 0 || i-cand > snappyMaxOffset || binary.LittleEndian.Uint32(src[cand:]) != word {
			i++
			continue
		}
		// Candidates were stored only where 4 unprotected bytes start, so
		// both sides are clear for 4 bytes; extend while they stay so.
		n := 4
		for i+n < len(src) && src[cand+n] == src[i+n] && !protected[i+n] && !protected[cand+n] {
			n++
		}
		// Extend backwards too, into bytes still pending as literal.
		for i > litStart && cand > 0 && src[cand-1] == src[i-1] && !protected[i-1] && !protected[cand-1] && i-cand <= snappyMaxOffset {
			i, cand, n = i-1, cand-1, n+1
		}
		emitLiteral(litStart, i)
		out = appendCopy(out, i-cand, n)
		i += n
		litStart = i
	}
	emitLiteral(litStart, len(src))
	return out, offs
}

// appendLiteralTag appends the tag of a literal of n bytes.
func appendLiteralTag(dst []byte, n int) []byte {
	n--
	switch {
	case n < 60:
		return append(dst, byte(n)<<2)
	case n < 1<<8:
		return append(dst, 60<<2, byte(n))
	case n < 1<<16:
		return append(dst, 61<<2, byte(n), byte(n>>8))
	case n < 1<<24:
		return append(dst, 62<<2, byte(n), byte(n>>8), byte(n>>16))
	default:
		return append(dst, 63<<2, byte(n), byte(n>>8), byte(n>>16), byte(n>>24))
	}
}

// appendCopy appends copies of n bytes from offset back, in pieces of at
// most 64 bytes as the format allows.
func appendCopy(dst []byte, offset, n int) []byte {
	for n > 0 {
		l := min(n, 64)
		if l >= 4 && l <= 11 && offset < 2048 {
			dst = append(dst, byte(offset>>8)<<5|byte(l-4)<<2|1, byte(offset))
		} else {
			dst = append(dst, byte(l-1)<<2|2, byte(offset), byte(offset>>8))
		}
		n -= l
	}
	return dst
}
