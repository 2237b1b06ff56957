// Reading a block's index: label statistics from the postings offset
// table, a cheap header check over ranged reads, and a full read.

package browse

import (
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/fileutil"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/thanos-io/objstore"
)

// Index layout constants of Prometheus' index format (tsdb/docs/format/index.md).
const (
	indexHeaderLen = index.HeaderLen // magic (4) + version (1)
	indexTOCLen    = 6*8 + 4         // six section offsets + CRC32
)

// IndexStats describes a block's index: how many series, and which label
// names and label pairs account for most of them.
type IndexStats struct {
	Version   int    `json:"version"`
	SizeBytes int64  `json:"sizeBytes"`
	Series    uint64 `json:"series"`
	// LabelNames and LabelPairs count distinct names and name=value
	// pairs.
	LabelNames int `json:"labelNames"`
	LabelPairs int `json:"labelPairs"`
	// TopNames are the label names present in the most series, with
	// their number of values; TopPairs the name=value pairs present in
	// the most series. Both sorted by series, most first.
	TopNames []NameStat `json:"topNames"`
	TopPairs []PairStat `json:"topPairs"`
}

// NameStat is a label name's share of a block.
type NameStat struct {
	Name   string `json:"name"`
	Series uint64 `json:"series"`
	Values int    `json:"values"`
}

// PairStat is a label pair's share of a block.
type PairStat struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Series uint64 `json:"series"`
}

// byteSlice adapts a mapped file to index.ByteSlice.
type byteSlice []byte

func (b byteSlice) Len() int                    { return len(b) }
func (b byteSlice) Range(start, end int) []byte { return b[start:end] }

// analyzeIndex reads label statistics from the postings offset table: it
// walks the table once, and a series count is the entry count at the
// start of each postings list, so no postings or series are decoded and
// memory holds only the top entries (plus one label name at a time).
func analyzeIndex(bs byteSlice, top int) (*IndexStats, error) {
	version, err := indexVersion(bs[:min(len(bs), indexHeaderLen)])
	if err != nil {
		return nil, err
	}
	toc, err := index.NewTOCFromByteSlice(bs)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	if err := checkTOC(toc, int64(len(bs))); err != nil {
		return nil, err
	}
	st := &IndexStats{Version: version, SizeBytes: int64(len(bs))}
	allName, allValue := index.AllPostingsKey()
	names := &topHeap[NameStat]{less: func(a, b NameStat) bool { return a.Series < b.Series || (a.Series == b.Series && a.Name > b.Name) }, n: top}
	pairs := &topHeap[PairStat]{less: func(a, b PairStat) bool {
		return a.Series < b.Series || (a.Series == b.Series && (a.Name > b.Name || (a.Name == b.Name && a.Value > b.Value)))
	}, n: top}
	var cur NameStat
	flush := func() {
		if cur.Values > 0 {
			st.LabelNames++
			names.offer(cur)
		}
	}
	err = index.ReadPostingsOffsetTable(bs, toc.PostingsTable, func(name, value []byte, off uint64, _ int) error {
		if off+8 > uint64(len(bs)) {
			return fmt.Errorf("postings list of %s=%q at %d is past the end of the index", name, value, off)
		}
		// A postings list is: length (4) | number of entries (4) | ...
		n := uint64(binary.BigEndian.Uint32(bs[off+4 : off+8]))
		if string(name) == allName && string(value) == allValue {
			st.Series = n
			return nil
		}
		// The table is sorted by name, then value.
		if string(name) != cur.Name || cur.Values == 0 {
			flush()
			cur = NameStat{Name: string(name)}
		}
		cur.Values++
		cur.Series += n
		st.LabelPairs++
		if pairs.wants(PairStat{Name: cur.Name, Series: n}) {
			pairs.offer(PairStat{Name: cur.Name, Value: string(value), Series: n})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index: read postings offset table: %w", err)
	}
	flush()
	st.TopNames, st.TopPairs = names.sorted(), pairs.sorted()
	return st, nil
}

func indexVersion(header []byte) (int, error) {
	if len(header) < indexHeaderLen {
		return 0, fmt.Errorf("index: %d bytes, shorter than its header", len(header))
	}
	if m := binary.BigEndian.Uint32(header); m != index.MagicIndex {
		return 0, fmt.Errorf("index: bad magic number %#x, want %#x: not a TSDB index", m, index.MagicIndex)
	}
	switch v := int(header[4]); v {
	case index.FormatV1, index.FormatV2, index.FormatV3:
		return v, nil
	default:
		return 0, fmt.Errorf("index: unknown format version %d", v)
	}
}

// checkTOC checks that every section starts inside the file, after the
// header and before the table of contents. (The TOC lists the sections
// in another order than the file holds them, so order is not checked.)
func checkTOC(toc *index.TOC, size int64) error {
	end := uint64(size - indexTOCLen)
	for i, o := range []uint64{toc.Symbols, toc.Series, toc.LabelIndices, toc.LabelIndicesTable, toc.Postings, toc.PostingsTable} {
		if o == 0 && i != 0 && i != 5 {
			continue // an absent section (old label indices)
		}
		if o < indexHeaderLen || o >= end {
			return fmt.Errorf("index: table of contents points outside the file (section %d at %d, file of %d bytes)", i, o, size)
		}
	}
	return nil
}

// checkIndexHeader reads only the first bytes and the table of contents
// of a block's index in the bucket: two ranged reads, however big the
// index. It catches truncated and foreign files; it does not read the
// sections themselves.
func checkIndexHeader(ctx context.Context, bkt objstore.BucketReader, name string, size int64) error {
	if size < indexHeaderLen+indexTOCLen {
		return fmt.Errorf("index: %d bytes, too short for a header and table of contents", size)
	}
	head, err := readRange(ctx, bkt, name, 0, indexHeaderLen)
	if err != nil {
		return err
	}
	if _, err := indexVersion(head); err != nil {
		return err
	}
	tail, err := readRange(ctx, bkt, name, size-indexTOCLen, indexTOCLen)
	if err != nil {
		return err
	}
	if got, want := crc32.Checksum(tail[:indexTOCLen-4], crc32.MakeTable(crc32.Castagnoli)), binary.BigEndian.Uint32(tail[indexTOCLen-4:]); got != want {
		return errors.New("index: table of contents checksum mismatch: the file is truncated or damaged")
	}
	toc, err := index.NewTOCFromByteSlice(byteSlice(tail))
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	return checkTOC(toc, size)
}

func readRange(ctx context.Context, bkt objstore.BucketReader, name string, off, n int64) ([]byte, error) {
	rc, err := bkt.GetRange(ctx, name, off, n)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer rc.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("read %s bytes %d-%d: %w", name, off, off+n, err)
	}
	return b, nil
}

// downloadIndex copies an index from the bucket to a temporary file and
// maps it. The caller must call the returned function to unmap and delete
// it.
func downloadIndex(ctx context.Context, bkt objstore.BucketReader, name, dir string) (byteSlice, func(), error) {
	f, err := os.CreateTemp(dir, "strata-index-*")
	if err != nil {
		return nil, nil, fmt.Errorf("download %s: %w", name, err)
	}
	remove := func() { f.Close(); os.Remove(f.Name()) }
	rc, err := bkt.Get(ctx, name)
	if err != nil {
		remove()
		return nil, nil, fmt.Errorf("download %s: %w", name, err)
	}
	_, err = io.Copy(f, rc)
	rc.Close()
	if err != nil {
		remove()
		return nil, nil, fmt.Errorf("download %s: %w", name, err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() < indexHeaderLen+indexTOCLen {
		remove()
		if err == nil {
			err = fmt.Errorf("%d bytes, too short for a header and table of contents", fi.Size())
		}
		return nil, nil, fmt.Errorf("index %s: %w", name, err)
	}
	mf, err := fileutil.OpenMmapFile(f.Name())
	if err != nil {
		remove()
		return nil, nil, fmt.Errorf("map %s: %w", name, err)
	}
	return byteSlice(mf.Bytes()), func() { mf.Close(); remove() }, nil
}

// readIndexFully opens the index with Prometheus' reader and decodes every
// series and its chunk references, one at a time: what a Store Gateway or
// Compactor would trip over. It returns the number of series.
func readIndexFully(ctx context.Context, bs byteSlice) (int, error) {
	// The header first, for the message the header check gives (a file
	// that is no index at all), rather than the reader's terser one.
	if _, err := indexVersion(bs[:min(len(bs), indexHeaderLen)]); err != nil {
		return 0, err
	}
	r, err := index.NewReader(bs, index.DecodePostingsRaw)
	if err != nil {
		return 0, fmt.Errorf("index: %w", err)
	}
	defer r.Close()
	allName, allValue := index.AllPostingsKey()
	p, err := r.Postings(ctx, allName, allValue)
	if err != nil {
		return 0, fmt.Errorf("index: all postings: %w", err)
	}
	var (
		builder labels.ScratchBuilder
		chks    []chunks.Meta
		prev    labels.Labels
		n       int
	)
	for p.Next() {
		if err := r.Series(p.At(), &builder, &chks); err != nil {
			return n, fmt.Errorf("index: series %d: %w", p.At(), err)
		}
		lset := builder.Labels()
		if n > 0 && labels.Compare(prev, lset) >= 0 {
			return n, fmt.Errorf("index: series %s after %s: out of order", lset, prev)
		}
		for i := 1; i < len(chks); i++ {
			if chks[i].MinTime < chks[i-1].MaxTime {
				return n, fmt.Errorf("index: series %s: chunks overlap or are out of order", lset)
			}
		}
		prev = lset.Copy()
		n++
		if n%4096 == 0 && ctx.Err() != nil {
			return n, ctx.Err()
		}
	}
	if err := p.Err(); err != nil {
		return n, fmt.Errorf("index: postings: %w", err)
	}
	return n, nil
}

// topHeap keeps the n greatest items offered, by less.
type topHeap[T any] struct {
	items []T
	less  func(a, b T) bool
	n     int
}

func (h *topHeap[T]) Len() int           { return len(h.items) }
func (h *topHeap[T]) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *topHeap[T]) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *topHeap[T]) Push(x any)         { h.items = append(h.items, x.(T)) }
func (h *topHeap[T]) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}

// wants reports whether v would enter the heap, so callers can skip
// building it (copying strings) when not.
func (h *topHeap[T]) wants(v T) bool {
	return h.n > 0 && (len(h.items) < h.n || h.less(h.items[0], v))
}

func (h *topHeap[T]) offer(v T) {
	if !h.wants(v) {
		return
	}
	if len(h.items) < h.n {
		heap.Push(h, v)
		return
	}
	h.items[0] = v
	heap.Fix(h, 0)
}

// sorted returns the items, greatest first.
func (h *topHeap[T]) sorted() []T {
	out := slices.Clone(h.items)
	slices.SortFunc(out, func(a, b T) int {
		switch {
		case h.less(b, a):
			return -1
		case h.less(a, b):
			return 1
		}
		return 0
	})
	if out == nil {
		out = []T{}
	}
	return out
}
