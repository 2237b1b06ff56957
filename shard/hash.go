// This file holds the series hash: what the ring places, and so what decides
// where a series lives. See the package comment before changing it.

package shard

import (
	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
)

// sep separates the tenant, names and values in the hashed bytes. It cannot
// occur in UTF-8 text, so no two label sets hash the same bytes.
const sep = 0xff

// Hasher computes the series hash incrementally, from raw label bytes (the
// router reads them from protobuf without decoding) or strings, without
// allocating. The hash is xxhash64 (seed 0) of
//
//	tenant 0xff name1 0xff value1 0xff name2 0xff value2 0xff ...
//
// over the labels in the order given, which must be sorted by name, as
// remote-write requires. These are the bytes Thanos Receive hashes
// (labelpb.HashWithPrefix), so hashmod places series as Thanos does.
//
// A Hasher is not safe for concurrent use; keep one per goroutine. Its zero
// value is ready once Reset is called.
type Hasher struct {
	n       int  // bytes used in buf
	spilled bool // whether d holds earlier bytes
	d       xxhash.Digest
	// Series are hashed from this buffer in one call, which is faster than
	// feeding the streaming digest a few bytes at a time; only series
	// longer than the buffer spill into d.
	buf [1024]byte
}

// Reset starts the hash of a new series of the tenant.
func (h *Hasher) Reset(tenant string) {
	h.n = 0
	h.spilled = false
	h.writeString(tenant)
	h.writeByte(sep)
}

// Add adds the next label pair.
func (h *Hasher) Add(name, value []byte) {
	if n := h.n; n+len(name)+len(value)+2 <= len(h.buf) {
		n += copy(h.buf[n:], name)
		h.buf[n] = sep
		n++
		n += copy(h.buf[n:], value)
		h.buf[n] = sep
		h.n = n + 1
		return
	}
	h.write(name)
	h.writeByte(sep)
	h.write(value)
	h.writeByte(sep)
}

// AddString adds the next label pair.
func (h *Hasher) AddString(name, value string) {
	if n := h.n; n+len(name)+len(value)+2 <= len(h.buf) {
		n += copy(h.buf[n:], name)
		h.buf[n] = sep
		n++
		n += copy(h.buf[n:], value)
		h.buf[n] = sep
		h.n = n + 1
		return
	}
	h.writeString(name)
	h.writeByte(sep)
	h.writeString(value)
	h.writeByte(sep)
}

// Sum64 returns the hash of the tenant and pairs added since Reset. It does
// not change the Hasher.
func (h *Hasher) Sum64() uint64 {
	if !h.spilled {
		return xxhash.Sum64(h.buf[:h.n])
	}
	d := h.d
	_, _ = d.Write(h.buf[:h.n])
	return d.Sum64()
}

func (h *Hasher) write(p []byte) {
	for len(p) > 0 {
		if h.n == len(h.buf) {
			h.spill()
		}
		c := copy(h.buf[h.n:], p)
		h.n += c
		p = p[c:]
	}
}

func (h *Hasher) writeString(s string) {
	for len(s) > 0 {
		if h.n == len(h.buf) {
			h.spill()
		}
		c := copy(h.buf[h.n:], s)
		h.n += c
		s = s[c:]
	}
}

func (h *Hasher) writeByte(b byte) {
	if h.n == len(h.buf) {
		h.spill()
	}
	h.buf[h.n] = b
	h.n++
}

func (h *Hasher) spill() {
	if !h.spilled {
		h.d.Reset()
		h.spilled = true
	}
	_, _ = h.d.Write(h.buf[:h.n])
	h.n = 0
}

// HashSeries returns the series hash of a tenant's label set; it equals a
// Hasher fed the same pairs.
func HashSeries(tenant string, ls labels.Labels) uint64 {
	var h Hasher
	h.Reset(tenant)
	ls.Range(func(l labels.Label) { h.AddString(l.Name, l.Value) })
	return h.Sum64()
}
