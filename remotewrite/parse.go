package remotewrite

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/stratametrics/strata/writeerr"
)

// Label is a name/value pair pointing into the request body (for 2.0, into
// its symbol table).
type Label struct{ Name, Value []byte }

// Sample is one float sample. StartTimestamp is 0 when unset (2.0 only).
type Sample struct {
	Value          float64
	Timestamp      int64
	StartTimestamp int64
}

// Histogram is one native histogram sample, left encoded: the router only
// needs its timestamps, the block builder decodes it with DecodeHistogram.
type Histogram struct {
	Timestamp      int64
	StartTimestamp int64
	Raw            []byte
}

// Metadata of a 2.0 series (type enum as on the wire; help and unit
// resolved from the symbol table).
type Metadata struct {
	Type       uint32
	Help, Unit []byte
}

// Series is one decoded time series. Its slices are reused by the next
// Request.Series call that is given the same Series.
type Series struct {
	Labels     []Label
	Samples    []Sample
	Histograms []Histogram
	// Exemplars are left encoded; see DecodeExemplar.
	Exemplars [][]byte
	Metadata  Metadata
	// labelsUTF8 is set when decoding proved every label name and value
	// valid UTF-8 on the way (symbols checked once per request), or found
	// them in one run of label fields, asciiRun, whose check for ASCII
	// is left to LabelsUTF8: only series that are validated, new ones,
	// need it.
	labelsUTF8 bool
	asciiRun   []byte
}

// LabelsUTF8 tells whether every label name and value is known to be
// valid UTF-8 (all ASCII, or symbols checked once per request), so that
// validation need not check them one by one.
func (s *Series) LabelsUTF8() bool {
	if s.asciiRun != nil {
		s.labelsUTF8 = s.labelsUTF8 && isASCII(s.asciiRun)
		s.asciiRun = nil
	}
	return s.labelsUTF8
}

// Reset empties s, keeping its memory.
func (s *Series) Reset() {
	s.Labels = s.Labels[:0]
	s.Samples = s.Samples[:0]
	s.Histograms = s.Histograms[:0]
	s.Exemplars = s.Exemplars[:0]
	s.Metadata = Metadata{}
	s.labelsUTF8 = false
	s.asciiRun = nil
}

// span locates a top-level field in the body: start is the field's tag,
// payload its message, end one past it.
type span struct{ start, payload, end int }

// Request is a parsed remote-write request. Parse records where every
// top-level field is without decoding series; Series decodes one on demand.
// A Request is reusable: Parse resets it.
type Request struct {
	Version Version
	body    []byte
	series  []span
	// metadata holds 1.0 MetricMetadata fields, forwarded as they are.
	metadata []span
	// symbols is the 2.0 symbol table; symbolFields are the raw fields that
	// carry it, copied whole when the request is split.
	symbols      [][]byte
	symbolFields []span
	refs         []uint32
	// symbolsUTF8: every symbol is valid UTF-8, checked once at Parse.
	symbolsUTF8 bool
}

// Body is the encoded (uncompressed) request.
func (r *Request) Body() []byte { return r.body }

// NumSeries is the number of time series in the request.
func (r *Request) NumSeries() int { return len(r.series) }

// NumMetadata is the number of 1.0 metadata entries.
func (r *Request) NumMetadata() int { return len(r.metadata) }

// Symbols is the 2.0 symbol table.
func (r *Request) Symbols() [][]byte { return r.symbols }

// RawSeries is the encoded field of series i (tag, length and message), as
// it can be copied into another request of the same version.
func (r *Request) RawSeries(i int) []byte {
	s := r.series[i]
	return r.body[s.start:s.end]
}

// Parse reads the top level of body, a remote-write request of version v.
// Errors wrap writeerr.ErrInvalid.
func (r *Request) Parse(v Version, body []byte) error {
	r.Version, r.body = v, body
	r.series, r.metadata = r.series[:0], r.metadata[:0]
	r.symbols, r.symbolFields = r.symbols[:0], r.symbolFields[:0]
	var seriesField, metaField, symbolField uint64
	switch v {
	case V1:
		seriesField, metaField = 1, 3
	case V2:
		seriesField, symbolField = 5, 4
	default:
		return fmt.Errorf("%w: unknown remote-write version %d", writeerr.ErrInvalid, v)
	}
	for i := 0; i < len(body); {
		start := i
		field, wt, next, err := tag(body, i)
		if err != nil {
			return fmt.Errorf("%w: request at byte %d: %v", writeerr.ErrInvalid, i, err)
		}
		i = next
		switch field {
		case seriesField, metaField, symbolField:
			if wt != wireBytes {
				return fmt.Errorf("%w: %v", writeerr.ErrInvalid, wrongType("request", field, wt))
			}
			p, end, err := bytesField(body, i)
			if err != nil {
				return fmt.Errorf("%w: request field %d at byte %d: %v", writeerr.ErrInvalid, field, start, err)
			}
			sp := span{start, p, end}
			switch field {
			case seriesField:
				r.series = append(r.series, sp)
			case metaField:
				r.metadata = append(r.metadata, sp)
			default:
				r.symbols = append(r.symbols, body[p:end])
				if n := len(r.symbolFields); n > 0 && r.symbolFields[n-1].end == start {
					r.symbolFields[n-1].end = end
				} else {
					r.symbolFields = append(r.symbolFields, sp)
				}
			}
			i = end
		default:
			if i, err = skip(body, i, wt); err != nil {
				return fmt.Errorf("%w: request field %d at byte %d: %v", writeerr.ErrInvalid, field, start, err)
			}
		}
	}
	if v == V2 && len(r.series) > 0 {
		if len(r.symbols) == 0 || len(r.symbols[0]) != 0 {
			return fmt.Errorf("%w: the symbols table must start with the empty string", writeerr.ErrInvalid)
		}
	}
	// Symbols are shared by many series: checking each once here saves
	// checking label strings series by series.
	r.symbolsUTF8 = true
	for _, sf := range r.symbolFields {
		if !utf8.Valid(body[sf.start:sf.end]) {
			r.symbolsUTF8 = false
			break
		}
	}
	return nil
}

// Series decodes series i into s. Errors wrap writeerr.ErrInvalid and
// name what was malformed.
func (r *Request) Series(i int, s *Series) error {
	s.Reset()
	sp := r.series[i]
	var err error
	if r.Version == V1 {
		err = r.decodeV1(r.body[sp.payload:sp.end], s)
	} else {
		err = r.decodeV2(r.body[sp.payload:sp.end], s)
	}
	if err != nil {
		return fmt.Errorf("%w: series %d: %v", writeerr.ErrInvalid, i, err)
	}
	return nil
}

func (r *Request) decodeV1(b []byte, s *Series) error {
	// The common shape of a label is decoded inline: a label (field 1)
	// holding a name (field 1) and a value (field 2), each shorter than
	// 128 bytes. Labels usually come first and together; the bytes of
	// such a run are checked for ASCII (so valid UTF-8) in one pass at the
	// end.
	ascii := true
	runStart, runEnd := -1, -1
	for i := 0; i < len(b); {
		if b[i] == 0x0a && i+1 < len(b) && b[i+1] < 0x80 {
			p := i + 2
			end := p + int(b[i+1])
			if end > len(b) {
				return errTruncated
			}
			m := b[p:end]
			if len(m) >= 4 && m[0] == 0x0a && m[1] < 0x80 {
				n := 2 + int(m[1])
				if n+2 <= len(m) && m[n] == 0x12 && m[n+1] < 0x80 && n+2+int(m[n+1]) == len(m) {
					s.Labels = append(s.Labels, Label{Name: m[2:n], Value: m[n+2:]})
					switch {
					case runEnd == i:
						runEnd = end
					case runStart < 0:
						runStart, runEnd = i, end
					default:
						// A second run: check the first now.
						ascii = ascii && isASCII(b[runStart:runEnd])
						runStart, runEnd = i, end
					}
					i = end
					continue
				}
			}
			l, err := decodeLabelV1(m)
			if err != nil {
				return fmt.Errorf("label %d: %w", len(s.Labels), err)
			}
			s.Labels = append(s.Labels, l)
			ascii = false
			i = end
			continue
		}
		next, label, err := s.decodeFieldV1(b, i)
		if err != nil {
			return err
		}
		if label != nil {
			l, err := decodeLabelV1(label)
			if err != nil {
				return fmt.Errorf("label %d: %w", len(s.Labels), err)
			}
			s.Labels = append(s.Labels, l)
			ascii = false
		}
		i = next
	}
	if ascii && runStart >= 0 {
		s.labelsUTF8, s.asciiRun = true, b[runStart:runEnd]
	}
	return nil
}

// SeriesSkipLabels decodes 1.0 series i as Series does, except its
// labels: s.Labels stays empty. labelBytes is the length of the series'
// LabelRun, the encoded bytes of every label field, which every sender
// writes first and together. It is for a caller that recognises by its
// LabelRun a series it has validated before, and so skips decoding and
// checking its labels again; the labels are not looked into. It returns
// false, for the caller to use Series, when a label follows other fields,
// or the series is malformed: Series then says what is wrong.
func (r *Request) SeriesSkipLabels(i, labelBytes int, s *Series) bool {
	s.Reset()
	sp := r.series[i]
	b := r.body[sp.payload:sp.end]
	if labelBytes <= 0 || labelBytes > len(b) {
		return false
	}
	for k := labelBytes; k < len(b); {
		next, label, err := s.decodeFieldV1(b, k)
		if err != nil || label != nil {
			return false
		}
		k = next
	}
	return true
}

// LabelRun is the encoded bytes of the label fields at the start of 1.0
// series i, without decoding anything else; ok is false for a 2.0 request
// or a series that does not start with a label.
func (r *Request) LabelRun(i int) (run []byte, ok bool) {
	if r.Version != V1 {
		return nil, false
	}
	sp := r.series[i]
	b := r.body[sp.payload:sp.end]
	j := 0
	for j < len(b) && b[j] == 0x0a {
		n, next, err := uvarint(b, j+1)
		if err != nil || n > uint64(len(b)-next) {
			return nil, false
		}
		j = next + int(n)
	}
	return b[:j], j > 0
}

// LabelRefs appends the labels_refs of 2.0 series i to dst, without
// decoding anything else: pairs of references into Symbols, name then
// value, in the order the series carries them (the order of Series'
// labels). ok is false for a 1.0 request or a series whose references are
// malformed or outside the symbol table: Series then says what is wrong.
func (r *Request) LabelRefs(i int, dst []uint32) (refs []uint32, ok bool) {
	if r.Version != V2 {
		return dst, false
	}
	sp := r.series[i]
	b := r.body[sp.payload:sp.end]
	n0 := len(dst)
	for j := 0; j < len(b); {
		field, wt, next, err := tag(b, j)
		if err != nil {
			return dst, false
		}
		j = next
		switch {
		case field == 1 && wt == wireBytes:
			p, end, err := bytesField(b, j)
			if err != nil {
				return dst, false
			}
			for k := p; k < end; {
				var v uint64
				if v, k, err = uvarint(b[:end], k); err != nil {
					return dst, false
				}
				dst = append(dst, uint32(v))
			}
			j = end
		case field == 1 && wt == wireVarint:
			var v uint64
			if v, j, err = uvarint(b, j); err != nil {
				return dst, false
			}
			dst = append(dst, uint32(v))
		default:
			if j, err = skip(b, j, wt); err != nil {
				return dst, false
			}
		}
	}
	if (len(dst)-n0)%2 != 0 {
		return dst, false
	}
	for _, ref := range dst[n0:] {
		if int(ref) >= len(r.symbols) {
			return dst, false
		}
	}
	return dst, true
}

// decodeFieldV1 decodes the field of a 1.0 TimeSeries at b[i:] into s,
// except a label, which it returns (encoded) for the caller to handle.
func (s *Series) decodeFieldV1(b []byte, i int) (next int, label []byte, err error) {
	if b[i] == 0x12 && i+12 < len(b) && b[i+2] == 0x09 && b[i+11] == 0x10 {
		// The common sample: 0x12 len 0x09 <8-byte value> 0x10 <timestamp>.
		n := int(b[i+1])
		end := i + 2 + n
		if n >= 11 && n < 0x80 && end <= len(b) {
			v := binary.LittleEndian.Uint64(b[i+3:])
			ts, next, err := uvarint(b[:end], i+12)
			if err == nil && next == end {
				s.Samples = append(s.Samples, Sample{Value: math.Float64frombits(v), Timestamp: int64(ts)})
				return end, nil, nil
			}
		}
	}
	field, wt, next, err := tag(b, i)
	if err != nil {
		return 0, nil, err
	}
	if field > 4 {
		next, err = skip(b, next, wt)
		return next, nil, err
	}
	if wt != wireBytes {
		return 0, nil, wrongType("TimeSeries", field, wt)
	}
	p, end, err := bytesField(b, next)
	if err != nil {
		return 0, nil, err
	}
	m := b[p:end]
	switch field {
	case 1:
		return end, m, nil
	case 2:
		err = s.addSample(m)
	case 3:
		s.Exemplars = append(s.Exemplars, m)
	case 4:
		err = s.addHistogram(m)
	}
	return end, nil, err
}

// isASCII tells whether every byte is below 0x80, eight at a time.
func isASCII(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b)&0x8080808080808080 != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func (s *Series) addSample(m []byte) error {
	smp, err := decodeSample(m)
	if err != nil {
		return fmt.Errorf("sample %d: %w", len(s.Samples), err)
	}
	s.Samples = append(s.Samples, smp)
	return nil
}

func (s *Series) addHistogram(m []byte) error {
	h, err := decodeHistogramHeader(m)
	if err != nil {
		return fmt.Errorf("histogram %d: %w", len(s.Histograms), err)
	}
	s.Histograms = append(s.Histograms, h)
	return nil
}

func decodeLabelV1(b []byte) (Label, error) {
	var l Label
	for i := 0; i < len(b); {
		field, wt, next, err := tag(b, i)
		if err != nil {
			return l, err
		}
		i = next
		if field != 1 && field != 2 {
			if i, err = skip(b, i, wt); err != nil {
				return l, err
			}
			continue
		}
		if wt != wireBytes {
			return l, wrongType("Label", field, wt)
		}
		p, end, err := bytesField(b, i)
		if err != nil {
			return l, err
		}
		if field == 1 {
			l.Name = b[p:end]
		} else {
			l.Value = b[p:end]
		}
		i = end
	}
	return l, nil
}

// decodeSample reads a 1.0 or 2.0 Sample (2.0 adds start_timestamp = 3).
func decodeSample(b []byte) (Sample, error) {
	var s Sample
	for i := 0; i < len(b); {
		field, wt, next, err := tag(b, i)
		if err != nil {
			return s, err
		}
		i = next
		switch field {
		case 1:
			if wt != wireFixed64 {
				return s, wrongType("Sample", field, wt)
			}
			var v uint64
			if v, i, err = fixed64(b, i); err != nil {
				return s, err
			}
			s.Value = math.Float64frombits(v)
		case 2, 3:
			if wt != wireVarint {
				return s, wrongType("Sample", field, wt)
			}
			var v uint64
			if v, i, err = uvarint(b, i); err != nil {
				return s, err
			}
			if field == 2 {
				s.Timestamp = int64(v)
			} else {
				s.StartTimestamp = int64(v)
			}
		default:
			if i, err = skip(b, i, wt); err != nil {
				return s, err
			}
		}
	}
	return s, nil
}

// decodeHistogramHeader reads only the timestamps of a Histogram (fields 15
// and 17, the same in 1.0 and 2.0) and keeps the rest encoded.
func decodeHistogramHeader(b []byte) (Histogram, error) {
	h := Histogram{Raw: b}
	for i := 0; i < len(b); {
		field, wt, next, err := tag(b, i)
		if err != nil {
			return h, err
		}
		i = next
		if (field == 15 || field == 17) && wt == wireVarint {
			var v uint64
			if v, i, err = uvarint(b, i); err != nil {
				return h, err
			}
			if field == 15 {
				h.Timestamp = int64(v)
			} else {
				h.StartTimestamp = int64(v)
			}
			continue
		}
		if field == 15 || field == 17 {
			return h, wrongType("Histogram", field, wt)
		}
		if i, err = skip(b, i, wt); err != nil {
			return h, err
		}
	}
	return h, nil
}

func (r *Request) decodeV2(b []byte, s *Series) error {
	refs := r.refs[:0]
	defer func() { r.refs = refs[:0] }()
	for i := 0; i < len(b); {
		field, wt, next, err := tag(b, i)
		if err != nil {
			return err
		}
		i = next
		switch {
		case field == 1 && wt == wireVarint:
			var v uint64
			if v, i, err = uvarint(b, i); err != nil {
				return err
			}
			refs = append(refs, uint32(v))
			continue
		case field == 1 && wt == wireBytes:
			p, end, err := bytesField(b, i)
			if err != nil {
				return err
			}
			for j := p; j < end; {
				var v uint64
				if v, j, err = uvarint(b[:end], j); err != nil {
					return fmt.Errorf("labels_refs: %w", err)
				}
				refs = append(refs, uint32(v))
			}
			i = end
			continue
		case field > 5:
			if i, err = skip(b, i, wt); err != nil {
				return err
			}
			continue
		case wt != wireBytes:
			return wrongType("TimeSeries", field, wt)
		}
		p, end, err := bytesField(b, i)
		if err != nil {
			return err
		}
		m := b[p:end]
		switch field {
		case 2:
			if err := s.addSample(m); err != nil {
				return err
			}
		case 3:
			if err := s.addHistogram(m); err != nil {
				return err
			}
		case 4:
			s.Exemplars = append(s.Exemplars, m)
		case 5:
			if err := r.decodeMetadataV2(m, &s.Metadata); err != nil {
				return fmt.Errorf("metadata: %w", err)
			}
		}
		i = end
	}
	if len(refs)%2 != 0 {
		return fmt.Errorf("labels_refs has odd length %d", len(refs))
	}
	for j := 0; j < len(refs); j += 2 {
		n, v := refs[j], refs[j+1]
		if int(n) >= len(r.symbols) || int(v) >= len(r.symbols) {
			return fmt.Errorf("labels_refs (%d, %d) outside the symbols table of %d", n, v, len(r.symbols))
		}
		s.Labels = append(s.Labels, Label{Name: r.symbols[n], Value: r.symbols[v]})
	}
	s.labelsUTF8 = r.symbolsUTF8
	return nil
}

func (r *Request) decodeMetadataV2(b []byte, md *Metadata) error {
	for i := 0; i < len(b); {
		field, wt, next, err := tag(b, i)
		if err != nil {
			return err
		}
		i = next
		if field != 1 && field != 3 && field != 4 {
			if i, err = skip(b, i, wt); err != nil {
				return err
			}
			continue
		}
		if wt != wireVarint {
			return wrongType("Metadata", field, wt)
		}
		var v uint64
		if v, i, err = uvarint(b, i); err != nil {
			return err
		}
		if field == 1 {
			md.Type = uint32(v)
			continue
		}
		if v >= uint64(len(r.symbols)) {
			return fmt.Errorf("field %d: ref %d outside the symbols table of %d", field, v, len(r.symbols))
		}
		if field == 3 {
			md.Help = r.symbols[v]
		} else {
			md.Unit = r.symbols[v]
		}
	}
	return nil
}
