// A temporary file that regroups a stream of records by key with memory
// bounded by the number of keys, not of records.

package browse

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// spill stores records in a temporary file as one linked list per group:
// each record starts with the offset of the next record of its group,
// patched in place when that record is appended. Memory holds two offsets
// per group; reading a group back follows its list in append order.
//
// Record layout: next (int64, -1 at the end) | length (uint32) | payload.
type spill struct {
	f    *os.File
	size int64
	buf  []byte
}

// spillChain is a group's list: its first and last record.
type spillChain struct {
	first, last int64
	n           int
}

const spillHeader = 12

func newSpill(dir string) (*spill, error) {
	f, err := os.CreateTemp(dir, "strata-bucket-ls-*")
	if err != nil {
		return nil, fmt.Errorf("create spill file: %w", err)
	}
	// Unlinked at once: the file goes away with the process, even on a
	// crash, and nobody else needs its name.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("create spill file: %w", err)
	}
	return &spill{f: f}, nil
}

func (s *spill) Close() error { return s.f.Close() }

// add appends payload to chain c.
func (s *spill) add(c *spillChain, payload []byte) error {
	off := s.size
	s.buf = binary.BigEndian.AppendUint64(s.buf[:0], ^uint64(0)) // -1: end of list
	s.buf = binary.BigEndian.AppendUint32(s.buf, uint32(len(payload)))
	s.buf = append(s.buf, payload...)
	if _, err := s.f.WriteAt(s.buf, off); err != nil {
		return fmt.Errorf("write spill file: %w", err)
	}
	s.size += int64(len(s.buf))
	if c.n == 0 {
		c.first = off
	} else {
		var next [8]byte
		binary.BigEndian.PutUint64(next[:], uint64(off))
		if _, err := s.f.WriteAt(next[:], c.last); err != nil {
			return fmt.Errorf("write spill file: %w", err)
		}
	}
	c.last = off
	c.n++
	return nil
}

// each calls fn with every payload of c in the order they were added. The
// slice is reused between calls.
func (s *spill) each(c spillChain, fn func([]byte) error) error {
	off := c.first
	for i := 0; i < c.n; i++ {
		var h [spillHeader]byte
		if _, err := s.f.ReadAt(h[:], off); err != nil {
			return fmt.Errorf("read spill file: %w", err)
		}
		n := binary.BigEndian.Uint32(h[8:])
		if cap(s.buf) < int(n) {
			s.buf = make([]byte, n)
		}
		s.buf = s.buf[:n]
		if _, err := s.f.ReadAt(s.buf, off+spillHeader); err != nil {
			return fmt.Errorf("read spill file: %w", err)
		}
		if err := fn(s.buf); err != nil {
			return err
		}
		next := int64(binary.BigEndian.Uint64(h[:8]))
		if next < 0 && i+1 < c.n {
			return errors.New("spill file: list ends early")
		}
		off = next
	}
	return nil
}

// appendCells encodes strings as uvarint length + bytes each.
func appendCells(b []byte, cells []string) []byte {
	for _, c := range cells {
		b = binary.AppendUvarint(b, uint64(len(c)))
		b = append(b, c...)
	}
	return b
}

// readCells decodes n strings written by appendCells into cells.
func readCells(b []byte, cells []string) error {
	for i := range cells {
		l, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < l {
			return errors.New("spill file: bad record")
		}
		cells[i] = string(b[k : k+int(l)])
		b = b[k+int(l):]
	}
	return nil
}
