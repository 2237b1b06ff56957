package loadgen

import (
	"cmp"
	"encoding/binary"
	"hash/crc32"
	"math/bits"
	"slices"
)

// The gzip of an OTLP template, built as the snappy one is (see snappy.go)
// so that a send patches it in place instead of compressing the request
// anew, which would cost the generator more than the receiver spends on
// the request. Deflate codes literals with Huffman codes, whose lengths
// differ from byte to byte in a usual code: a patched byte would shift
// everything after it. So the member is one block of a code of our own in
// which every byte value has a code of 9 bits: a patched byte's code is
// rewritten in its place. Lengths and distances have codes of 4 to 6 bits.
// The timestamps, the same in every point of a request but for the
// sample's index, are matched with each other (see unmatched) as a gzip
// writer matches them, so that the receiver inflates about as many
// symbols as it would of a gzip writer's member, in one block of an
// ordinary dynamic code. Only the trailer's CRC of the whole request is
// computed again per send.

const (
	// deflateMaxOffset is the deflate window.
	deflateMaxOffset = 1 << 15
	deflateMaxMatch  = 258
	// literalBits is the length of every literal's code.
	literalBits = 9
	numLitLen   = 286
	numDist     = 30
)

var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	// codeLengthOrder is the order in which the code lengths of the code
	// lengths are sent.
	codeLengthOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

// A code must be complete for inflaters to take it (Go's compress/flate
// refuses any other). The literals take half the code space (256 codes of
// 9 bits); the 30 length symbols and end of block fill the other half
// with two codes of 5 bits and 28 of 6, the 30 distance symbols theirs
// with two of 4 bits and 28 of 5. The short codes go to the symbols the
// request uses most.

// huffCode is a canonical code, bit-reversed: codes are packed from their
// most significant bit, the stream from its least.
type huffCode struct {
	code uint16
	len  uint8
}

// canonical assigns the canonical codes of RFC 1951 3.2.2 to lengths.
func canonical(lengths []uint8) []huffCode {
	var count, next [16]uint16
	for _, l := range lengths {
		count[l]++
	}
	count[0] = 0
	code := uint16(0)
	for b := 1; b < 16; b++ {
		code = (code + count[b-1]) << 1
		next[b] = code
	}
	out := make([]huffCode, len(lengths))
	for s, l := range lengths {
		if l == 0 {
			continue
		}
		out[s] = huffCode{bits.Reverse16(next[l]) >> (16 - l), l}
		next[l]++
	}
	return out
}

// literalCodes are the reversed 9-bit codes of the byte values, the same
// in every member: they follow from the lengths alone.
var literalCodes = func() (t [256]uint16) {
	lengths := make([]uint8, numLitLen)
	for s := range lengths {
		lengths[s] = 6
		if s < 256 {
			lengths[s] = literalBits
		}
	}
	lengths[257], lengths[258] = 5, 5
	for s, c := range canonical(lengths)[:256] {
		t[s] = c.code
	}
	return t
}()

type bitWriter struct {
	out  []byte
	acc  uint64
	nacc uint
}

func (w *bitWriter) write(v uint64, n uint) {
	w.acc |= v << w.nacc
	w.nacc += n
	for w.nacc >= 8 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.nacc -= 8
	}
}

func (w *bitWriter) code(c huffCode) { w.write(uint64(c.code), uint(c.len)) }

// pos is the number of bits written.
func (w *bitWriter) pos() int { return 8*len(w.out) + int(w.nacc) }

// align pads to a byte boundary with zero bits.
func (w *bitWriter) align() {
	if w.nacc > 0 {
		w.write(0, 8-w.nacc)
	}
}

func lengthSymbol(n int) int {
	l := len(lengthBase) - 1
	for int(lengthBase[l]) > n {
		l--
	}
	return l
}

func distSymbol(offset int) int {
	d := len(distBase) - 1
	for int(distBase[d]) > offset {
		d--
	}
	return d
}

// token is a run of literals (offset 0) or a match.
type token struct{ start, end, offset int }

// literalAt is where a byte of src that is not of class 0 is coded as a
// literal in a member: its offset in src, and the bit offset of its code,
// to be patched with putLiterals.
type literalAt struct{ src, bit int32 }

// gzipProtected compresses src as a gzip member, matching bytes as their
// classes allow (see unmatched). It returns the member and, in order,
// where the bytes of other classes than 0 that are literals are: all of
// the unmatched ones, and those of positive classes that found no match.
// The trailer holds the CRC of src: after patching, setGzipCRC sets it
// for the patched source.
func gzipProtected(src []byte, class []int32) ([]byte, []literalAt) {
	if len(src) >= 1<<31 {
		panic("loadgen: a gzip template of 2 GiB or more")
	}
	var tokens []token
	var lenCount [29]int
	var distCount [30]int
	matchProtected(src, class, deflateMaxOffset,
		func(start, end int) { tokens = append(tokens, token{start, end, 0}) },
		func(offset, n int) {
			at := 0
			if len(tokens) > 0 {
				at = tokens[len(tokens)-1].end
			}
			for n > 0 {
				l := min(n, deflateMaxMatch)
				if rest := n - l; rest > 0 && rest < 3 {
					l = n - 3
				}
				tokens = append(tokens, token{at, at + l, offset})
				lenCount[lengthSymbol(l)]++
				distCount[distSymbol(offset)]++
				at, n = at+l, n-l
			}
		})

	litLen := make([]uint8, numLitLen)
	for s := range litLen {
		litLen[s] = 6
		if s < 256 {
			litLen[s] = literalBits
		}
	}
	for _, l := range mostUsed(lenCount[:]) {
		litLen[257+l] = 5
	}
	dist := make([]uint8, numDist)
	for d := range dist {
		dist[d] = 5
	}
	for _, d := range mostUsed(distCount[:]) {
		dist[d] = 4
	}
	litCodes, distCodes := canonical(litLen), canonical(dist)
	for b, c := range litCodes[:256] {
		if c.code != literalCodes[b] || c.len != literalBits {
			panic("loadgen: the literals' codes are not the ones putLiterals writes")
		}
	}

	w := &bitWriter{out: make([]byte, 0, len(src)/4+128)}
	// No name, no time: the member is the same whatever the run.
	w.out = append(w.out, 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff)
	w.write(0b101, 3) // final block, dynamic code
	w.write(numLitLen-257, 5)
	w.write(numDist-1, 5)
	// The code lengths are 4, 5, 6 and 9: a code of 2 bits each, the
	// last of them (4) twelfth in the order they are sent.
	clLengths := make([]uint8, 19)
	for _, l := range []int{4, 5, 6, 9} {
		clLengths[l] = 2
	}
	clCodes := canonical(clLengths)
	const sent = 12
	w.write(sent-4, 4)
	for _, s := range codeLengthOrder[:sent] {
		w.write(uint64(clLengths[s]), 3)
	}
	for _, l := range slices.Concat(litLen, dist) {
		w.code(clCodes[l])
	}

	var lits []literalAt
	for _, t := range tokens {
		if t.offset == 0 {
			for p := t.start; p < t.end; p++ {
				if class[p] != 0 {
					lits = append(lits, literalAt{int32(p), int32(w.pos())})
				}
				w.write(uint64(literalCodes[src[p]]), literalBits)
			}
			continue
		}
		n := t.end - t.start
		l := lengthSymbol(n)
		w.code(litCodes[257+l])
		w.write(uint64(n-int(lengthBase[l])), uint(lengthExtra[l]))
		d := distSymbol(t.offset)
		w.code(distCodes[d])
		w.write(uint64(t.offset-int(distBase[d])), uint(distExtra[d]))
	}
	w.code(litCodes[256])
	w.align()
	if w.pos() >= 1<<31 {
		panic("loadgen: a gzip template of 256 MiB or more: its bit offsets do not fit")
	}
	w.out = binary.LittleEndian.AppendUint32(w.out, crc32.ChecksumIEEE(src))
	w.out = binary.LittleEndian.AppendUint32(w.out, uint32(len(src)))
	return w.out, lits
}

// mostUsed is the indexes of the two largest counts.
func mostUsed(counts []int) []int {
	idx := make([]int, len(counts))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(counts[b], counts[a]) })
	return idx[:2]
}

// putLiterals rewrites the codes of the len(p) literals starting at bit
// off of a member of gzipProtected, for the bytes p. Four codes (36 bits)
// at a time are read, masked and written back as one word: the trailer
// after the coded data keeps every such word within the member.
func putLiterals(member []byte, off int, p []byte) {
	for len(p) > 0 {
		n := min(len(p), 4)
		var c uint64
		for i, b := range p[:n] {
			c |= uint64(literalCodes[b]) << (literalBits * i)
		}
		at, s := off>>3, uint(off&7)
		mask := uint64(1)<<(literalBits*n) - 1
		v := binary.LittleEndian.Uint64(member[at:])
		binary.LittleEndian.PutUint64(member[at:], v&^(mask<<s)|c<<s)
		off += literalBits * n
		p = p[n:]
	}
}

// putLiteral64 is putLiterals of the 8 bytes of v, little-endian.
func putLiteral64(member []byte, off int, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	putLiterals(member, off, b[:])
}

// setGzipCRC sets the trailer of a member of gzipProtected to the CRC of
// src, the source as patched.
func setGzipCRC(member, src []byte) {
	binary.LittleEndian.PutUint32(member[len(member)-8:], crc32.ChecksumIEEE(src))
}
