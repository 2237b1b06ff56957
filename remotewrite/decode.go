package remotewrite

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/stratametrics/strata/writeerr"
)

// unsafeString views b as a string without copying. Only for strings that
// are copied before b is reused (labels.ScratchBuilder.Labels copies).
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// BuildLabels turns the labels of s into labels.Labels. The result owns its
// memory; b is scratch space reused between calls.
func BuildLabels(b *labels.ScratchBuilder, ls []Label) labels.Labels {
	b.Reset()
	for _, l := range ls {
		b.Add(unsafeString(l.Name), unsafeString(l.Value))
	}
	// Labels are sorted by validation.SortLabels before this is called.
	return b.Labels()
}

// DecodeHistogram decodes a histogram sample kept encoded by the parser.
// 1.0 and 2.0 share the Histogram message's fields (2.0 adds start
// timestamp), so one decoder serves both. Exactly one result is non-nil.
func DecodeHistogram(h Histogram) (*histogram.Histogram, *histogram.FloatHistogram, error) {
	var m writev2.Histogram
	if err := m.Unmarshal(h.Raw); err != nil {
		return nil, nil, fmt.Errorf("%w: histogram: %v", writeerr.ErrInvalid, err)
	}
	if m.IsFloatHistogram() {
		return nil, m.ToFloatHistogram(), nil
	}
	return m.ToIntHistogram(), nil, nil
}

// DecodeExemplar decodes an exemplar of a request of version r.Version.
func (r *Request) DecodeExemplar(b *labels.ScratchBuilder, raw []byte) (exemplar.Exemplar, error) {
	var (
		e    exemplar.Exemplar
		refs []uint32
	)
	b.Reset()
	for i := 0; i < len(raw); {
		field, wt, next, err := tag(raw, i)
		if err != nil {
			return e, fmt.Errorf("%w: exemplar: %v", writeerr.ErrInvalid, err)
		}
		i = next
		switch {
		case field == 1 && r.Version == V1 && wt == wireBytes:
			p, end, err := bytesField(raw, i)
			if err != nil {
				return e, fmt.Errorf("%w: exemplar label: %v", writeerr.ErrInvalid, err)
			}
			l, err := decodeLabelV1(raw[p:end])
			if err != nil {
				return e, fmt.Errorf("%w: exemplar label: %v", writeerr.ErrInvalid, err)
			}
			b.Add(unsafeString(l.Name), unsafeString(l.Value))
			i = end
		case field == 1 && r.Version == V2 && wt == wireVarint:
			var v uint64
			if v, i, err = uvarint(raw, i); err != nil {
				return e, fmt.Errorf("%w: exemplar labels_refs: %v", writeerr.ErrInvalid, err)
			}
			refs = append(refs, uint32(v))
		case field == 1 && r.Version == V2 && wt == wireBytes:
			p, end, err := bytesField(raw, i)
			if err != nil {
				return e, fmt.Errorf("%w: exemplar labels_refs: %v", writeerr.ErrInvalid, err)
			}
			for j := p; j < end; {
				var v uint64
				if v, j, err = uvarint(raw[:end], j); err != nil {
					return e, fmt.Errorf("%w: exemplar labels_refs: %v", writeerr.ErrInvalid, err)
				}
				refs = append(refs, uint32(v))
			}
			i = end
		case field == 2 && wt == wireFixed64:
			var v uint64
			if v, i, err = fixed64(raw, i); err != nil {
				return e, fmt.Errorf("%w: exemplar value: %v", writeerr.ErrInvalid, err)
			}
			e.Value = math.Float64frombits(v)
		case field == 3 && wt == wireVarint:
			var v uint64
			if v, i, err = uvarint(raw, i); err != nil {
				return e, fmt.Errorf("%w: exemplar timestamp: %v", writeerr.ErrInvalid, err)
			}
			e.Ts, e.HasTs = int64(v), true
		case field <= 3:
			return e, fmt.Errorf("%w: %v", writeerr.ErrInvalid, wrongType("Exemplar", field, wt))
		default:
			if i, err = skip(raw, i, wt); err != nil {
				return e, fmt.Errorf("%w: exemplar: %v", writeerr.ErrInvalid, err)
			}
		}
	}
	if len(refs)%2 != 0 {
		return e, fmt.Errorf("%w: exemplar labels_refs has odd length %d", writeerr.ErrInvalid, len(refs))
	}
	for j := 0; j < len(refs); j += 2 {
		n, v := refs[j], refs[j+1]
		if int(n) >= len(r.symbols) || int(v) >= len(r.symbols) {
			return e, fmt.Errorf("%w: exemplar labels_refs (%d, %d) outside the symbols table of %d", writeerr.ErrInvalid, n, v, len(r.symbols))
		}
		b.Add(unsafeString(r.symbols[n]), unsafeString(r.symbols[v]))
	}
	b.Sort()
	e.Labels = b.Labels()
	return e, nil
}

// metricTypes maps the 2.0 (and 1.0, same numbering) metric type enum.
var metricTypes = [...]model.MetricType{
	model.MetricTypeUnknown, model.MetricTypeCounter, model.MetricTypeGauge,
	model.MetricTypeHistogram, model.MetricTypeGaugeHistogram, model.MetricTypeSummary,
	model.MetricTypeInfo, model.MetricTypeStateset,
}

// ToType is the metric type md names.
func (md Metadata) ToType() model.MetricType {
	if int(md.Type) < len(metricTypes) {
		return metricTypes[md.Type]
	}
	return model.MetricTypeUnknown
}

// ToMetadata converts the metadata of a 2.0 series. The strings are copied.
func (md Metadata) ToMetadata() metadata.Metadata {
	return metadata.Metadata{Type: md.ToType(), Help: string(md.Help), Unit: string(md.Unit)}
}

// IsEmpty tells whether no metadata was sent.
func (md Metadata) IsEmpty() bool {
	return md.Type == 0 && len(md.Help) == 0 && len(md.Unit) == 0
}

// MetricMetadata is a 1.0 metadata entry (per metric family).
type MetricMetadata struct {
	Type             uint32
	MetricFamilyName []byte
	Help, Unit       []byte
}

// Metadata decodes 1.0 metadata entry i.
func (r *Request) Metadata(i int) (MetricMetadata, error) {
	var m MetricMetadata
	sp := r.metadata[i]
	b := r.body[sp.payload:sp.end]
	for j := 0; j < len(b); {
		field, wt, next, err := tag(b, j)
		if err != nil {
			return m, fmt.Errorf("%w: metadata %d: %v", writeerr.ErrInvalid, i, err)
		}
		j = next
		switch {
		case field == 1 && wt == wireVarint:
			var v uint64
			if v, j, err = uvarint(b, j); err != nil {
				return m, fmt.Errorf("%w: metadata %d: %v", writeerr.ErrInvalid, i, err)
			}
			m.Type = uint32(v)
		case (field == 2 || field == 4 || field == 5) && wt == wireBytes:
			p, end, err := bytesField(b, j)
			if err != nil {
				return m, fmt.Errorf("%w: metadata %d: %v", writeerr.ErrInvalid, i, err)
			}
			switch field {
			case 2:
				m.MetricFamilyName = b[p:end]
			case 4:
				m.Help = b[p:end]
			default:
				m.Unit = b[p:end]
			}
			j = end
		case field == 1 || field == 2 || field == 4 || field == 5:
			return m, fmt.Errorf("%w: metadata %d: %v", writeerr.ErrInvalid, i, wrongType("MetricMetadata", field, wt))
		default:
			if j, err = skip(b, j, wt); err != nil {
				return m, fmt.Errorf("%w: metadata %d: %v", writeerr.ErrInvalid, i, err)
			}
		}
	}
	return m, nil
}

// ToMetadata converts a 1.0 metadata entry. The strings are copied.
func (m MetricMetadata) ToMetadata() metadata.Metadata {
	return Metadata{Type: m.Type, Help: m.Help, Unit: m.Unit}.ToMetadata()
}
