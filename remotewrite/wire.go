package remotewrite

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Protobuf wire types.
const (
	wireVarint     = 0
	wireFixed64    = 1
	wireBytes      = 2
	wireStartGroup = 3
	wireEndGroup   = 4
	wireFixed32    = 5
)

var (
	errTruncated = errors.New("truncated message")
	errOverflow  = errors.New("varint overflows 64 bits")
)

// uvarint reads a varint at b[i:]. The one-byte case is by far the most
// common (tags, small lengths) and is kept inline-friendly.
func uvarint(b []byte, i int) (uint64, int, error) {
	if i < len(b) && b[i] < 0x80 {
		return uint64(b[i]), i + 1, nil
	}
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= 64 {
			return 0, 0, errOverflow
		}
		if i >= len(b) {
			return 0, 0, errTruncated
		}
		c := b[i]
		i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, i, nil
		}
	}
}

// tag reads a field tag.
func tag(b []byte, i int) (field uint64, wt int, next int, err error) {
	v, next, err := uvarint(b, i)
	if err != nil {
		return 0, 0, 0, err
	}
	field, wt = v>>3, int(v&7)
	if field == 0 {
		return 0, 0, 0, errors.New("field number 0")
	}
	return field, wt, next, nil
}

// bytesField reads a length-delimited value at b[i:] and returns the
// offsets of its payload.
func bytesField(b []byte, i int) (start, end int, err error) {
	n, i, err := uvarint(b, i)
	if err != nil {
		return 0, 0, err
	}
	if n > uint64(len(b)-i) {
		return 0, 0, errTruncated
	}
	return i, i + int(n), nil
}

// fixed64 reads 8 little-endian bytes.
func fixed64(b []byte, i int) (uint64, int, error) {
	if len(b)-i < 8 {
		return 0, 0, errTruncated
	}
	return binary.LittleEndian.Uint64(b[i:]), i + 8, nil
}

// skip steps over a field of wire type wt that the reader does not want.
// Groups (proto2, wire types 3 and 4) are skipped as the generated decoders
// skip them, so that both accept the same bytes.
func skip(b []byte, i int, wt int) (int, error) {
	depth := 0
	for {
		switch wt {
		case wireVarint:
			var err error
			if _, i, err = uvarint(b, i); err != nil {
				return 0, err
			}
		case wireFixed64:
			if len(b)-i < 8 {
				return 0, errTruncated
			}
			i += 8
		case wireBytes:
			_, end, err := bytesField(b, i)
			if err != nil {
				return 0, err
			}
			i = end
		case wireFixed32:
			if len(b)-i < 4 {
				return 0, errTruncated
			}
			i += 4
		case wireStartGroup:
			depth++
		case wireEndGroup:
			if depth == 0 {
				return 0, errors.New("unexpected end of group")
			}
			depth--
		default:
			return 0, fmt.Errorf("unsupported wire type %d", wt)
		}
		if depth == 0 {
			return i, nil
		}
		// Inside a group the generated decoders accept any field number.
		v, next, err := uvarint(b, i)
		if err != nil {
			return 0, err
		}
		wt, i = int(v&7), next
	}
}

// wrongType is the error for a known field sent with another wire type, as
// the generated decoders report it.
func wrongType(msg string, field uint64, wt int) error {
	return fmt.Errorf("%s: field %d has wrong wire type %d", msg, field, wt)
}

// appendUvarint appends v as a varint.
func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}
