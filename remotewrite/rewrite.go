package remotewrite

import (
	"encoding/binary"
	"fmt"

	"github.com/stratametrics/strata/writeerr"
)

// Rewrite builds a request of the same version as a parsed one from some
// of its series, each kept as it is or given other labels: what
// relabeling at the router needs. Kept series are copied byte for byte;
// a relabeled one gets its new labels and every other field of the
// original copied (samples, histograms, exemplars, metadata are not
// decoded). A Rewrite is reusable: Reset starts the next.
//
// The request is written in one pass: the request's symbol table, the
// series, then (2.0) the symbols added, which, coming after the
// request's own, keep its references valid, and the 1.0 metadata.
type Rewrite struct {
	req    *Request
	series []byte
	// 2.0: the symbols new labels need that the request lacks, appended
	// after its own table so that its references stay valid.
	index map[string]uint32
	extra []string
	refs  []byte
	tmp   []byte
}

// Reset starts a rewrite of req into dst's memory.
func (w *Rewrite) Reset(req *Request, dst []byte) {
	w.req, w.extra = req, w.extra[:0]
	w.series = req.AppendPreamble(dst[:0])
	clear(w.index)
}

// Keep adds series i as it is.
func (w *Rewrite) Keep(i int) { w.series = w.req.AppendSeries(w.series, i) }

// AppendLabelFields appends labels encoded as the label fields of a 1.0
// TimeSeries: what WithLabelFields takes, for a caller that keeps them.
func AppendLabelFields(dst []byte, ls []Label) []byte {
	for _, l := range ls {
		n := 1 + sizeVarint(len(l.Name)) + len(l.Name) + 1 + sizeVarint(len(l.Value)) + len(l.Value)
		dst = append(dst, 0x0a)
		dst = binary.AppendUvarint(dst, uint64(n))
		dst = append(dst, 0x0a)
		dst = binary.AppendUvarint(dst, uint64(len(l.Name)))
		dst = append(dst, l.Name...)
		dst = append(dst, 0x12)
		dst = binary.AppendUvarint(dst, uint64(len(l.Value)))
		dst = append(dst, l.Value...)
	}
	return dst
}

// WithLabelFields adds 1.0 series i with its labels replaced by fields
// (see AppendLabelFields).
func (w *Rewrite) WithLabelFields(i int, fields []byte) error {
	if w.req.Version != V1 {
		return fmt.Errorf("label fields are 1.0's; the request is %v", w.req.Version)
	}
	return w.replaceLabels(i, 1, fields)
}

// WithLabelFieldsAfter is WithLabelFields for a caller that knows the
// length of the series' LabelRun, run, which it then need not read again:
// the fields after it are copied (a label among them is dropped too).
func (w *Rewrite) WithLabelFieldsAfter(i, run int, fields []byte) error {
	if w.req.Version != V1 {
		return fmt.Errorf("label fields are 1.0's; the request is %v", w.req.Version)
	}
	sp := w.req.series[i]
	if run < 0 || run > sp.end-sp.payload {
		return fmt.Errorf("label run of %d bytes in a series of %d", run, sp.end-sp.payload)
	}
	return w.replaceLabelsAfter(i, 1, fields, run)
}

// WithLabels adds series i with its labels replaced by ls.
func (w *Rewrite) WithLabels(i int, ls []Label) error {
	if w.req.Version == V1 {
		w.tmp = AppendLabelFields(w.tmp[:0], ls)
		return w.replaceLabels(i, 1, w.tmp)
	}
	w.refs = w.refs[:0]
	for _, l := range ls {
		w.refs = binary.AppendUvarint(w.refs, uint64(w.Symbol(l.Name)))
		w.refs = binary.AppendUvarint(w.refs, uint64(w.Symbol(l.Value)))
	}
	return w.withPackedRefs(i)
}

// WithLabelRefs adds 2.0 series i with its labels replaced by refs, pairs
// of references (name, value) into the request's symbol table or to
// symbols added by Symbol: for a caller that knows the new labels by the
// references of the old ones.
func (w *Rewrite) WithLabelRefs(i int, refs []uint32) error {
	if w.req.Version != V2 {
		return fmt.Errorf("label references are 2.0's; the request is %v", w.req.Version)
	}
	w.refs = w.refs[:0]
	for _, ref := range refs {
		if ref < 0x80 {
			w.refs = append(w.refs, byte(ref))
		} else {
			w.refs = binary.AppendUvarint(w.refs, uint64(ref))
		}
	}
	return w.withPackedRefs(i)
}

// withPackedRefs adds 2.0 series i with w.refs as its labels_refs, packed.
func (w *Rewrite) withPackedRefs(i int) error {
	w.tmp = append(w.tmp[:0], 0x0a)
	w.tmp = binary.AppendUvarint(w.tmp, uint64(len(w.refs)))
	w.tmp = append(w.tmp, w.refs...)
	return w.replaceLabels(i, 5, w.tmp)
}

// Symbol is the reference of s in the 2.0 symbol table of the rewritten
// request, adding s after the request's own symbols when they lack it.
func (w *Rewrite) Symbol(s []byte) uint32 {
	if w.index == nil {
		w.index = make(map[string]uint32)
	}
	if len(w.index) == 0 {
		for i, sym := range w.req.symbols {
			if _, ok := w.index[string(sym)]; !ok {
				w.index[string(sym)] = uint32(i)
			}
		}
	}
	if ref, ok := w.index[string(s)]; ok {
		return ref
	}
	ref := uint32(len(w.req.symbols) + len(w.extra))
	w.extra = append(w.extra, string(s))
	w.index[string(s)] = ref
	return ref
}

// replaceLabels writes series i as a field of the request (number
// seriesField) made of labels and every field of the original but its
// labels (field 1 of both versions' TimeSeries). Senders write the labels
// first and together: the fields after them are copied in one piece.
func (w *Rewrite) replaceLabels(i int, seriesField byte, labels []byte) error {
	sp := w.req.series[i]
	b := w.req.body[sp.payload:sp.end]
	start := 0
	for start < len(b) && b[start] == 1<<3|wireBytes {
		n, next, err := uvarint(b, start+1)
		if err != nil || n > uint64(len(b)-next) {
			break
		}
		start = next + int(n)
	}
	return w.replaceLabelsAfter(i, seriesField, labels, start)
}

// replaceLabelsAfter is replaceLabels with the run of labels at the start
// of the series known to end at start.
func (w *Rewrite) replaceLabelsAfter(i int, seriesField byte, labels []byte, start int) error {
	sp := w.req.series[i]
	b := w.req.body[sp.payload:sp.end]
	// The fields kept, and whether a label is among them.
	size, apart := len(labels), false
	for j := start; j < len(b); {
		field, wt, next, err := tag(b, j)
		if err != nil {
			return fmt.Errorf("%w: series %d: %v", writeerr.ErrInvalid, i, err)
		}
		end, err := skip(b, next, wt)
		if err != nil {
			return fmt.Errorf("%w: series %d: %v", writeerr.ErrInvalid, i, err)
		}
		if field != 1 {
			size += end - j
		} else {
			apart = true
		}
		j = end
	}
	w.series = append(w.series, seriesField<<3|wireBytes)
	w.series = binary.AppendUvarint(w.series, uint64(size))
	w.series = append(w.series, labels...)
	if !apart {
		w.series = append(w.series, b[start:]...)
		return nil
	}
	for j := start; j < len(b); {
		field, wt, next, _ := tag(b, j)
		end, _ := skip(b, next, wt)
		if field != 1 {
			w.series = append(w.series, b[j:end]...)
		}
		j = end
	}
	return nil
}

// Finish ends the rewritten request and returns it. It is in the memory
// given to Reset, and valid until the next Reset.
func (w *Rewrite) Finish() []byte {
	for _, s := range w.extra {
		w.series = append(w.series, 4<<3|wireBytes)
		w.series = binary.AppendUvarint(w.series, uint64(len(s)))
		w.series = append(w.series, s...)
	}
	w.series = w.req.AppendMetadata(w.series)
	return w.series
}

func sizeVarint(n int) int {
	s := 1
	for n >= 0x80 {
		n >>= 7
		s++
	}
	return s
}
