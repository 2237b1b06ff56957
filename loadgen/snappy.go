package loadgen

import "encoding/binary"

// A request template is compressed once, by the encoders below, so that
// each send only patches bytes in place and compresses nothing. The trick:
// the bytes that change between sends (every sample's value and timestamp)
// are always emitted as literals and never used as the source or
// destination of a copy. The block then stays a valid compressed block,
// decoding to the patched request, whatever those bytes become. Everything
// else is matched as a normal encoder would, across series, so the
// compressed size stays close to what a real sender's is. Snappy (remote
// write) is here; deflate (gzip, for OTLP) in deflate.go, on the same
// matching.

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
	recorded := 0 // protected ranges whose offset is known
	literal := func(start, end int) {
		out = appendLiteralTag(out, end-start)
		base := len(out)
		out = append(out, src[start:end]...)
		for recorded < len(dyn) && dyn[recorded] < end {
			offs[recorded] = int32(base + dyn[recorded] - start)
			recorded++
		}
	}
	copyFrom := func(offset, n int) { out = appendCopy(out, offset, n) }
	matchProtected(src, protectedMask(len(src), dyn, width), snappyMaxOffset, literal, copyFrom)
	return out, offs
}

// Classes of bytes, for matchProtected: a byte of class 0 is matched as
// any encoder would; unmatched, one of unmatched class is never in a
// match; one of a positive class is matched only with bytes of the same
// class, all of which are patched to the same value (the timestamp of the
// same sample of every series in an OTLP request), so that such a match
// stays right whatever they become.
const unmatched = -1

// protectedMask is the classes of src's bytes when the ranges starting at
// dyn, width long, are unmatched.
func protectedMask(n int, dyn []int, width int) []int32 {
	class := make([]int32, n)
	for _, d := range dyn {
		for j := d; j < d+width; j++ {
			class[j] = unmatched
		}
	}
	return class
}

// matchProtected is the matching both encoders share: it walks src and
// calls literal for each run of bytes to emit as they are (never empty)
// and copyFrom for each match (offset bytes back, n long, at least 4),
// in order, so that they cover src. No match reaches further back than
// maxOffset, and every byte of a match is of the class of its source
// (see unmatched).
func matchProtected(src []byte, class []int32, maxOffset int, literal func(start, end int), copyFrom func(offset, n int)) {
	// Two tables of the latest position of each hashed 4- and 8-byte
	// sequence: the 8-byte one finds the long matches (a whole run of
	// labels shared with a series further back) that the most recent
	// 4-byte match would cut short.
	var table4, table8 [1 << snappyTableBits]int32
	for i := range table4 {
		table4[i], table8[i] = -1, -1
	}
	clear := func(p, n int) bool {
		if p+n > len(src) {
			return false
		}
		for j := p; j < p+n; j++ {
			if class[j] == unmatched {
				return false
			}
		}
		return true
	}
	hash4 := func(p int) uint32 {
		return (binary.LittleEndian.Uint32(src[p:]) * 0x1e35a7bd) >> (32 - snappyTableBits)
	}
	hash8 := func(p int) uint64 {
		return (binary.LittleEndian.Uint64(src[p:]) * 0xcf1bbcdcb7a56463) >> (64 - snappyTableBits)
	}
	insert := func(p int) {
		if clear(p, 4) {
			table4[hash4(p)] = int32(p)
		}
		if clear(p, 8) {
			table8[hash8(p)] = int32(p)
		}
	}
	same := func(c, i int) bool { return src[c] == src[i] && class[c] == class[i] && class[i] != unmatched }
	// length of the match of src[c:] and src[i:]
	matchLen := func(c, i int) int {
		if c < 0 || i-c > maxOffset {
			return 0
		}
		n := 0
		for i+n < len(src) && same(c+n, i+n) {
			n++
		}
		return n
	}
	emitLiteral := func(start, end int) {
		if start < end {
			literal(start, end)
		}
	}

	litStart := 0
	for i := 0; i+4 <= len(src); {
		if !clear(i, 4) {
			i++
			continue
		}
		cand, n := int(table4[hash4(i)]), 0
		if n = matchLen(cand, i); n < 4 {
			n = 0
		}
		if clear(i, 8) {
			if c8 := int(table8[hash8(i)]); c8 >= 0 {
				if n8 := matchLen(c8, i); n8 > n && n8 >= 4 {
					cand, n = c8, n8
				}
			}
		}
		insert(i)
		if n == 0 {
			i++
			continue
		}
		// Extend backwards too, into bytes still pending as literal.
		for i > litStart && cand > 0 && same(cand-1, i-1) && i-cand <= maxOffset {
			i, cand, n = i-1, cand-1, n+1
		}
		emitLiteral(litStart, i)
		copyFrom(i-cand, n)
		for j := i + 1; j < i+n; j++ {
			insert(j)
		}
		i += n
		litStart = i
	}
	emitLiteral(litStart, len(src))
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
