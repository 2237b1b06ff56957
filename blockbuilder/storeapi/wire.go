package storeapi

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The messages of Thanos' StoreAPI (package thanos, store/storepb/rpc.proto
// and types.proto), Exemplars API (package thanos,
// exemplars/exemplarspb/rpc.proto) and Info API (package thanos.info,
// info/infopb/rpc.proto) as Thanos 0.42 defines them. Field numbers and wire types are those of
// the .proto files; only the fields Strata reads or writes are kept, and
// every other field is skipped when decoding, as protobuf requires.
//
// Marshal writes fields in field-number order and omits proto3 defaults,
// which is what protoc-generated and gogo-generated code do, so the bytes
// are the canonical encoding any protobuf library reads.

// Label is thanos.Label: a name and a value.
type Label struct {
	Name, Value string
}

// MatchType is thanos.LabelMatcher.Type.
type MatchType int32

// The matcher types, numbered as LabelMatcher.Type.
const (
	MatchEQ  MatchType = 0 // =
	MatchNEQ MatchType = 1 // !=
	MatchRE  MatchType = 2 // =~
	MatchNRE MatchType = 3 // !~
)

// LabelMatcher is thanos.LabelMatcher.
type LabelMatcher struct {
	Type        MatchType
	Name, Value string
}

// ChunkEncoding is thanos.Chunk.Encoding: the TSDB chunk encoding minus one.
type ChunkEncoding int32

// The chunk encodings Thanos 0.42 knows.
const (
	EncodingXOR            ChunkEncoding = 0
	EncodingHistogram      ChunkEncoding = 1
	EncodingFloatHistogram ChunkEncoding = 2
)

// Chunk is thanos.Chunk: one TSDB chunk as it is stored.
type Chunk struct {
	Type ChunkEncoding
	Data []byte
	Hash uint64
}

// AggrChunk is thanos.AggrChunk. Strata has raw data only: Raw is the
// chunk, the downsampled aggregates (fields 4 to 8) are never set.
type AggrChunk struct {
	MinTime, MaxTime int64
	Raw              *Chunk
}

// Series is thanos.Series: sorted labels (external labels merged in) and
// the chunks of one series, or of one time slice of it.
type Series struct {
	Labels []Label
	Chunks []AggrChunk
}

// SeriesRequest is thanos.SeriesRequest.
type SeriesRequest struct {
	MinTime, MaxTime int64
	Matchers         []LabelMatcher
	// MaxResolutionWindow and Aggregates ask for downsampled data, which a
	// block builder does not have: raw chunks are always returned.
	MaxResolutionWindow     int64
	Aggregates              []int32
	PartialResponseDisabled bool
	PartialResponseStrategy int32
	SkipChunks              bool
	// WithoutReplicaLabels are label names to drop from every series
	// (Query's --query.replica-label), which lets it deduplicate while
	// it streams.
	WithoutReplicaLabels []string
	// Limit, if positive, is the most series the client wants.
	Limit int64
	// ResponseBatchSize, if above 1, lets the server send that many
	// series in one SeriesResponse.
	ResponseBatchSize int64
}

// SeriesResponse is thanos.SeriesResponse, a oneof: exactly one of Series,
// Warning and Batch is set.
type SeriesResponse struct {
	Series  *Series
	Warning string
	Batch   []Series
}

// LabelNamesRequest is thanos.LabelNamesRequest.
type LabelNamesRequest struct {
	PartialResponseDisabled bool
	PartialResponseStrategy int32
	Start, End              int64
	Matchers                []LabelMatcher
	WithoutReplicaLabels    []string
	Limit                   int64
}

// LabelNamesResponse is thanos.LabelNamesResponse.
type LabelNamesResponse struct {
	Names, Warnings []string
}

// LabelValuesRequest is thanos.LabelValuesRequest.
type LabelValuesRequest struct {
	Label                   string
	PartialResponseDisabled bool
	PartialResponseStrategy int32
	Start, End              int64
	Matchers                []LabelMatcher
	WithoutReplicaLabels    []string
	Limit                   int64
}

// LabelValuesResponse is thanos.LabelValuesResponse.
type LabelValuesResponse struct {
	Values, Warnings []string
}

// ExemplarsRequest is thanos.ExemplarsRequest: the exemplars of the
// series a PromQL expression's selectors pick, in [Start, End]
// (milliseconds).
type ExemplarsRequest struct {
	Query                   string
	Start, End              int64
	PartialResponseStrategy int32
}

// ExemplarsResponse is thanos.ExemplarsResponse, a oneof: exactly one of
// Data and Warning is set (Data nil means a warning).
type ExemplarsResponse struct {
	Data    *ExemplarData
	Warning string
}

// ExemplarData is thanos.ExemplarData: one series' labels (external
// labels merged in) and its exemplars.
type ExemplarData struct {
	SeriesLabels []Label
	Exemplars    []Exemplar
}

// Exemplar is thanos.Exemplar: its own labels (a trace ID, typically),
// value and timestamp in milliseconds.
type Exemplar struct {
	Labels []Label
	Value  float64
	Ts     int64
}

// InfoRequest is thanos.info.InfoRequest, which has no fields.
type InfoRequest struct{}

// InfoResponse is thanos.info.InfoResponse. Store is set by components
// that serve the Store service; the other APIs (rules, targets, ...) are
// left unset, which tells Query not to call them. Exemplars, when set,
// tells Query to ask this endpoint for exemplars.
type InfoResponse struct {
	LabelSets     [][]Label
	ComponentType string
	Store         *StoreInfo
	Exemplars     *ExemplarsInfo
}

// StoreInfo is thanos.info.StoreInfo.
type StoreInfo struct {
	MinTime, MaxTime             int64
	SupportsSharding             bool
	SupportsWithoutReplicaLabels bool
	TSDBInfos                    []TSDBInfo
}

// ExemplarsInfo is thanos.info.ExemplarsInfo: the time range of the
// exemplars served.
type ExemplarsInfo struct {
	MinTime, MaxTime int64
}

// TSDBInfo is thanos.info.TSDBInfo: one TSDB's labels and time range.
type TSDBInfo struct {
	Labels           []Label
	MinTime, MaxTime int64
}

// Field numbers, named as in the .proto files.
const (
	fLabelName  = 1
	fLabelValue = 2

	fLabelSetLabels = 1

	fMatcherType  = 1
	fMatcherName  = 2
	fMatcherValue = 3

	fChunkType = 1
	fChunkData = 2
	fChunkHash = 3

	fAggrMinTime = 1
	fAggrMaxTime = 2
	fAggrRaw     = 3

	fSeriesLabels = 1
	fSeriesChunks = 2

	fSeriesReqMinTime             = 1
	fSeriesReqMaxTime             = 2
	fSeriesReqMatchers            = 3
	fSeriesReqMaxResolutionWindow = 4
	fSeriesReqAggregates          = 5
	fSeriesReqPartialDisabled     = 6
	fSeriesReqPartialStrategy     = 7
	fSeriesReqSkipChunks          = 8
	fSeriesReqWithoutReplica      = 14
	fSeriesReqLimit               = 15
	fSeriesReqResponseBatchSize   = 16

	fSeriesRespSeries  = 1
	fSeriesRespWarning = 2
	fSeriesRespBatch   = 4

	fBatchSeries = 1

	fNamesReqPartialDisabled = 1
	fNamesReqPartialStrategy = 2
	fNamesReqStart           = 3
	fNamesReqEnd             = 4
	fNamesReqMatchers        = 6
	fNamesReqWithoutReplica  = 7
	fNamesReqLimit           = 8

	fNamesRespNames    = 1
	fNamesRespWarnings = 2

	fValuesReqLabel           = 1
	fValuesReqPartialDisabled = 2
	fValuesReqPartialStrategy = 3
	fValuesReqStart           = 4
	fValuesReqEnd             = 5
	fValuesReqMatchers        = 7
	fValuesReqWithoutReplica  = 8
	fValuesReqLimit           = 9

	fValuesRespValues   = 1
	fValuesRespWarnings = 2

	fExemplarsReqQuery           = 1
	fExemplarsReqStart           = 2
	fExemplarsReqEnd             = 3
	fExemplarsReqPartialStrategy = 4

	fExemplarsRespData    = 1
	fExemplarsRespWarning = 2

	fExemplarDataSeriesLabels = 1
	fExemplarDataExemplars    = 2

	fExemplarLabels = 1
	fExemplarValue  = 2
	fExemplarTs     = 3

	fInfoLabelSets     = 1
	fInfoComponentType = 2
	fInfoStore         = 3
	fInfoExemplars     = 7

	fStoreInfoMinTime              = 1
	fStoreInfoMaxTime              = 2
	fStoreInfoSupportsSharding     = 3
	fStoreInfoWithoutReplicaLabels = 5
	fStoreInfoTSDBInfos            = 6

	fTSDBInfoLabels  = 1
	fTSDBInfoMinTime = 2
	fTSDBInfoMaxTime = 3

	fExemplarsInfoMinTime = 1
	fExemplarsInfoMaxTime = 2
)

// Appending helpers. Each omits the proto3 default of its type.

func appendInt64(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func appendUint64(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendBool(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, 1)
}

// appendDouble omits +0 only, as protobuf does: -0 has bits set.
func appendDouble(b []byte, num protowire.Number, v float64) []byte {
	bits := math.Float64bits(v)
	if bits == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, bits)
}

func appendString(b []byte, num protowire.Number, v string) []byte {
	if v == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
}

// appendRepeatedString writes every element, empty ones too: repeated
// fields have no default to omit.
func appendRepeatedString(b []byte, num protowire.Number, vs []string) []byte {
	for _, v := range vs {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendString(b, v)
	}
	return b
}

// appendMessage writes an embedded message whose encoding appendBody
// appends. The length prefix is written after the body, which is then
// moved into place, so a message is encoded in one pass without a size
// computation.
func appendMessage(b []byte, num protowire.Number, appendBody func([]byte) []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	start := len(b)
	b = appendBody(b)
	n := len(b) - start
	sz := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, sz)...)
	copy(b[start+sz:], b[start:start+n])
	protowire.AppendVarint(b[start:start], uint64(n))
	return b
}

func appendLabels(b []byte, num protowire.Number, ls []Label) []byte {
	for _, l := range ls {
		b = appendMessage(b, num, l.appendTo)
	}
	return b
}

func appendMatchers(b []byte, num protowire.Number, ms []LabelMatcher) []byte {
	for _, m := range ms {
		b = appendMessage(b, num, m.appendTo)
	}
	return b
}

func (l Label) appendTo(b []byte) []byte {
	b = appendString(b, fLabelName, l.Name)
	return appendString(b, fLabelValue, l.Value)
}

func (m LabelMatcher) appendTo(b []byte) []byte {
	b = appendInt64(b, fMatcherType, int64(m.Type))
	b = appendString(b, fMatcherName, m.Name)
	return appendString(b, fMatcherValue, m.Value)
}

func (c *Chunk) appendTo(b []byte) []byte {
	b = appendInt64(b, fChunkType, int64(c.Type))
	if len(c.Data) > 0 {
		b = protowire.AppendTag(b, fChunkData, protowire.BytesType)
		b = protowire.AppendBytes(b, c.Data)
	}
	return appendUint64(b, fChunkHash, c.Hash)
}

func (c *AggrChunk) appendTo(b []byte) []byte {
	b = appendInt64(b, fAggrMinTime, c.MinTime)
	b = appendInt64(b, fAggrMaxTime, c.MaxTime)
	if c.Raw != nil {
		b = appendMessage(b, fAggrRaw, c.Raw.appendTo)
	}
	return b
}

func (s *Series) appendTo(b []byte) []byte {
	b = appendLabels(b, fSeriesLabels, s.Labels)
	for i := range s.Chunks {
		b = appendMessage(b, fSeriesChunks, s.Chunks[i].appendTo)
	}
	return b
}

// AppendMarshal appends the encoding of r to b.
func (r *SeriesRequest) AppendMarshal(b []byte) []byte {
	b = appendInt64(b, fSeriesReqMinTime, r.MinTime)
	b = appendInt64(b, fSeriesReqMaxTime, r.MaxTime)
	b = appendMatchers(b, fSeriesReqMatchers, r.Matchers)
	b = appendInt64(b, fSeriesReqMaxResolutionWindow, r.MaxResolutionWindow)
	if len(r.Aggregates) > 0 {
		// proto3 packs repeated scalars.
		b = appendMessage(b, fSeriesReqAggregates, func(b []byte) []byte {
			for _, a := range r.Aggregates {
				b = protowire.AppendVarint(b, uint64(int64(a)))
			}
			return b
		})
	}
	b = appendBool(b, fSeriesReqPartialDisabled, r.PartialResponseDisabled)
	b = appendInt64(b, fSeriesReqPartialStrategy, int64(r.PartialResponseStrategy))
	b = appendBool(b, fSeriesReqSkipChunks, r.SkipChunks)
	b = appendRepeatedString(b, fSeriesReqWithoutReplica, r.WithoutReplicaLabels)
	b = appendInt64(b, fSeriesReqLimit, r.Limit)
	return appendInt64(b, fSeriesReqResponseBatchSize, r.ResponseBatchSize)
}

// AppendMarshal appends the encoding of r to b.
func (r *SeriesResponse) AppendMarshal(b []byte) []byte {
	switch {
	case r.Series != nil:
		return appendMessage(b, fSeriesRespSeries, r.Series.appendTo)
	case r.Batch != nil:
		return appendMessage(b, fSeriesRespBatch, func(b []byte) []byte {
			for i := range r.Batch {
				b = appendMessage(b, fBatchSeries, r.Batch[i].appendTo)
			}
			return b
		})
	default:
		// A oneof member is written even when it holds its default, so
		// an empty warning still says "this is a warning".
		b = protowire.AppendTag(b, fSeriesRespWarning, protowire.BytesType)
		return protowire.AppendString(b, r.Warning)
	}
}

// AppendMarshal appends the encoding of r to b.
func (r *LabelNamesRequest) AppendMarshal(b []byte) []byte {
	b = appendBool(b, fNamesReqPartialDisabled, r.PartialResponseDisabled)
	b = appendInt64(b, fNamesReqPartialStrategy, int64(r.PartialResponseStrategy))
	b = appendInt64(b, fNamesReqStart, r.Start)
	b = appendInt64(b, fNamesReqEnd, r.End)
	b = appendMatchers(b, fNamesReqMatchers, r.Matchers)
	b = appendRepeatedString(b, fNamesReqWithoutReplica, r.WithoutReplicaLabels)
	return appendInt64(b, fNamesReqLimit, r.Limit)
}

// AppendMarshal appends the encoding of r to b.
func (r *LabelNamesResponse) AppendMarshal(b []byte) []byte {
	b = appendRepeatedString(b, fNamesRespNames, r.Names)
	return appendRepeatedString(b, fNamesRespWarnings, r.Warnings)
}

// AppendMarshal appends the encoding of r to b.
func (r *LabelValuesRequest) AppendMarshal(b []byte) []byte {
	b = appendString(b, fValuesReqLabel, r.Label)
	b = appendBool(b, fValuesReqPartialDisabled, r.PartialResponseDisabled)
	b = appendInt64(b, fValuesReqPartialStrategy, int64(r.PartialResponseStrategy))
	b = appendInt64(b, fValuesReqStart, r.Start)
	b = appendInt64(b, fValuesReqEnd, r.End)
	b = appendMatchers(b, fValuesReqMatchers, r.Matchers)
	b = appendRepeatedString(b, fValuesReqWithoutReplica, r.WithoutReplicaLabels)
	return appendInt64(b, fValuesReqLimit, r.Limit)
}

// AppendMarshal appends the encoding of r to b.
func (r *LabelValuesResponse) AppendMarshal(b []byte) []byte {
	b = appendRepeatedString(b, fValuesRespValues, r.Values)
	return appendRepeatedString(b, fValuesRespWarnings, r.Warnings)
}

// AppendMarshal appends the encoding of r to b.
func (r *ExemplarsRequest) AppendMarshal(b []byte) []byte {
	b = appendString(b, fExemplarsReqQuery, r.Query)
	b = appendInt64(b, fExemplarsReqStart, r.Start)
	b = appendInt64(b, fExemplarsReqEnd, r.End)
	return appendInt64(b, fExemplarsReqPartialStrategy, int64(r.PartialResponseStrategy))
}

// AppendMarshal appends the encoding of r to b.
func (r *ExemplarsResponse) AppendMarshal(b []byte) []byte {
	if r.Data != nil {
		return appendMessage(b, fExemplarsRespData, r.Data.appendTo)
	}
	// As for SeriesResponse, an empty warning is still a warning.
	b = protowire.AppendTag(b, fExemplarsRespWarning, protowire.BytesType)
	return protowire.AppendString(b, r.Warning)
}

func (d *ExemplarData) appendTo(b []byte) []byte {
	// The label sets are non-nullable in Thanos' gogo-generated code,
	// which writes them even when empty: so do we.
	b = appendMessage(b, fExemplarDataSeriesLabels, func(b []byte) []byte { return appendLabels(b, fLabelSetLabels, d.SeriesLabels) })
	for i := range d.Exemplars {
		b = appendMessage(b, fExemplarDataExemplars, d.Exemplars[i].appendTo)
	}
	return b
}

func (e *Exemplar) appendTo(b []byte) []byte {
	b = appendMessage(b, fExemplarLabels, func(b []byte) []byte { return appendLabels(b, fLabelSetLabels, e.Labels) })
	b = appendDouble(b, fExemplarValue, e.Value)
	return appendInt64(b, fExemplarTs, e.Ts)
}

// AppendMarshal appends the encoding of r (nothing) to b.
func (r *InfoRequest) AppendMarshal(b []byte) []byte { return b }

// AppendMarshal appends the encoding of r to b.
func (r *InfoResponse) AppendMarshal(b []byte) []byte {
	for _, ls := range r.LabelSets {
		b = appendMessage(b, fInfoLabelSets, func(b []byte) []byte { return appendLabels(b, fLabelSetLabels, ls) })
	}
	b = appendString(b, fInfoComponentType, r.ComponentType)
	if r.Store != nil {
		b = appendMessage(b, fInfoStore, r.Store.appendTo)
	}
	if r.Exemplars != nil {
		b = appendMessage(b, fInfoExemplars, func(b []byte) []byte {
			b = appendInt64(b, fExemplarsInfoMinTime, r.Exemplars.MinTime)
			return appendInt64(b, fExemplarsInfoMaxTime, r.Exemplars.MaxTime)
		})
	}
	return b
}

func (s *StoreInfo) appendTo(b []byte) []byte {
	b = appendInt64(b, fStoreInfoMinTime, s.MinTime)
	b = appendInt64(b, fStoreInfoMaxTime, s.MaxTime)
	b = appendBool(b, fStoreInfoSupportsSharding, s.SupportsSharding)
	b = appendBool(b, fStoreInfoWithoutReplicaLabels, s.SupportsWithoutReplicaLabels)
	for i := range s.TSDBInfos {
		b = appendMessage(b, fStoreInfoTSDBInfos, s.TSDBInfos[i].appendTo)
	}
	return b
}

func (t *TSDBInfo) appendTo(b []byte) []byte {
	// labels is a non-nullable message in Thanos: always written.
	b = appendMessage(b, fTSDBInfoLabels, func(b []byte) []byte { return appendLabels(b, fLabelSetLabels, t.Labels) })
	b = appendInt64(b, fTSDBInfoMinTime, t.MinTime)
	return appendInt64(b, fTSDBInfoMaxTime, t.MaxTime)
}

// Decoding.

// field is one decoded field: its number and wire type, and the value
// for the three wire types the StoreAPI uses (varint and fixed64 in u,
// length-delimited in b).
type field struct {
	num protowire.Number
	typ protowire.Type
	u   uint64
	b   []byte
}

// decodeFields calls fn for every field of the message b. Fields of the
// fixed32 and group wire types are skipped: no StoreAPI field we read has
// them, and unknown fields must be ignored.
func decodeFields(b []byte, fn func(f field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.u, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		case protowire.Fixed64Type:
			f.u, n = protowire.ConsumeFixed64(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.VarintType && typ != protowire.BytesType && typ != protowire.Fixed64Type {
			continue
		}
		if err := fn(f); err != nil {
			return fmt.Errorf("field %d: %w", num, err)
		}
	}
	return nil
}

// A known field that arrives with another wire type than its own is
// skipped, as an unknown field would be: that is what the protobuf
// libraries do, and what keeps this decoder as lenient as the reference.

func (f field) isVarint() bool  { return f.typ == protowire.VarintType }
func (f field) isBytes() bool   { return f.typ == protowire.BytesType }
func (f field) isFixed64() bool { return f.typ == protowire.Fixed64Type }

func setInt64(dst *int64, f field) error {
	if f.isVarint() {
		*dst = int64(f.u)
	}
	return nil
}

func setInt32(dst *int32, f field) error {
	if f.isVarint() {
		*dst = int32(f.u)
	}
	return nil
}

func setBool(dst *bool, f field) error {
	if f.isVarint() {
		*dst = f.u != 0
	}
	return nil
}

func setString(dst *string, f field) error {
	if f.isBytes() {
		*dst = string(f.b)
	}
	return nil
}

func addString(dst *[]string, f field) error {
	if f.isBytes() {
		*dst = append(*dst, string(f.b))
	}
	return nil
}

// Embedded messages merge when a field occurs twice, as protobuf
// requires: each decodeX decodes into what is already there.

func addLabel(dst *[]Label, f field) error {
	if !f.isBytes() {
		return nil
	}
	var l Label
	err := decodeFields(f.b, func(f field) error {
		switch f.num {
		case fLabelName:
			return setString(&l.Name, f)
		case fLabelValue:
			return setString(&l.Value, f)
		}
		return nil
	})
	*dst = append(*dst, l)
	return err
}

func decodeLabelSet(b []byte, ls *[]Label) error {
	return decodeFields(b, func(f field) error {
		if f.num == fLabelSetLabels {
			return addLabel(ls, f)
		}
		return nil
	})
}

func addMatcher(dst *[]LabelMatcher, f field) error {
	if !f.isBytes() {
		return nil
	}
	var m LabelMatcher
	err := decodeFields(f.b, func(f field) error {
		switch f.num {
		case fMatcherType:
			return setInt32((*int32)(&m.Type), f)
		case fMatcherName:
			return setString(&m.Name, f)
		case fMatcherValue:
			return setString(&m.Value, f)
		}
		return nil
	})
	*dst = append(*dst, m)
	return err
}

// Unmarshal decodes b into r, which it resets first.
func (r *SeriesRequest) Unmarshal(b []byte) error {
	*r = SeriesRequest{}
	return decodeFields(b, func(f field) error {
		switch f.num {
		case fSeriesReqMinTime:
			return setInt64(&r.MinTime, f)
		case fSeriesReqMaxTime:
			return setInt64(&r.MaxTime, f)
		case fSeriesReqMatchers:
			return addMatcher(&r.Matchers, f)
		case fSeriesReqMaxResolutionWindow:
			return setInt64(&r.MaxResolutionWindow, f)
		case fSeriesReqAggregates:
			if f.isVarint() {
				r.Aggregates = append(r.Aggregates, int32(f.u))
				return nil
			}
			// Packed, as proto3 writes it.
			for p := f.b; len(p) > 0; {
				v, n := protowire.ConsumeVarint(p)
				if n < 0 {
					return protowire.ParseError(n)
				}
				r.Aggregates = append(r.Aggregates, int32(v))
				p = p[n:]
			}
			return nil
		case fSeriesReqPartialDisabled:
			return setBool(&r.PartialResponseDisabled, f)
		case fSeriesReqPartialStrategy:
			return setInt32(&r.PartialResponseStrategy, f)
		case fSeriesReqSkipChunks:
			return setBool(&r.SkipChunks, f)
		case fSeriesReqWithoutReplica:
			return addString(&r.WithoutReplicaLabels, f)
		case fSeriesReqLimit:
			return setInt64(&r.Limit, f)
		case fSeriesReqResponseBatchSize:
			return setInt64(&r.ResponseBatchSize, f)
		}
		return nil
	})
}

func decodeChunk(b []byte, c *Chunk) error {
	return decodeFields(b, func(f field) error {
		switch f.num {
		case fChunkType:
			return setInt32((*int32)(&c.Type), f)
		case fChunkData:
			if f.isBytes() {
				c.Data = f.b
			}
		case fChunkHash:
			if f.isVarint() {
				c.Hash = f.u
			}
		}
		return nil
	})
}

func decodeAggrChunk(b []byte, c *AggrChunk) error {
	return decodeFields(b, func(f field) error {
		switch f.num {
		case fAggrMinTime:
			return setInt64(&c.MinTime, f)
		case fAggrMaxTime:
			return setInt64(&c.MaxTime, f)
		case fAggrRaw:
			if !f.isBytes() {
				return nil
			}
			if c.Raw == nil {
				c.Raw = &Chunk{}
			}
			return decodeChunk(f.b, c.Raw)
		}
		return nil
	})
}

func decodeSeries(b []byte, s *Series) error {
	return decodeFields(b, func(f field) error {
		switch f.num {
		case fSeriesLabels:
			return addLabel(&s.Labels, f)
		case fSeriesChunks:
			if !f.isBytes() {
				return nil
			}
			var c AggrChunk
			err := decodeAggrChunk(f.b, &c)
			s.Chunks = append(s.Chunks, c)
			return err
		}
		return nil
	})
}

// Unmarshal decodes b into r, which it resets first. Chunk data aliases b.
func (r *SeriesResponse) Unmarshal(b []byte) error {
	*r = SeriesResponse{}
	return decodeFields(b, func(f field) error {
		if !f.isBytes() {
			return nil
		}
		// One member of the oneof: a later one replaces an earlier
		// other one, the same one merges.
		switch f.num {
		case fSeriesRespSeries:
			if r.Series == nil {
				r.Series = &Series{}
			}
			r.Warning, r.Batch = "", nil
			return decodeSeries(f.b, r.Series)
		case fSeriesRespWarning:
			r.Series, r.Warning, r.Batch = nil, string(f.b), nil
		case fSeriesRespBatch:
			if r.Batch == nil {
				r.Batch = []Series{}
			}
			r.Series, r.Warning = nil, ""
			return decodeFields(f.b, func(f field) error {
				if f.num != fBatchSeries || !f.isBytes() {
					return nil
				}
				var s Series
				err := decodeSeries(f.b, &s)
				r.Batch = append(r.Batch, s)
				return err
			})
		}
		return nil
	})
}

// Unmarshal decodes b into r, which it resets first.
func (r *LabelNamesRequest) Unmarshal(b []byte) error {
	*r = LabelNamesRequest{}
	return decodeFields(b, func(f field) error {
		switch f.num {
		case fNamesReqPartialDisabled:
			return setBool(&r.PartialResponseDisabled, f)
		case fNamesReqPartialStrategy:
			return setInt32(&r.PartialResponseStrategy, f)
		case fNamesReqStart:
			return setInt64(&r.Start, f)
		case fNamesReqEnd:
			return setInt64(&r.End, f)
		case fNamesReqMatchers:
			return addMatcher(&r.Matchers, f)
		case fNamesReqWithoutReplica:
			return addString(&r.WithoutReplicaLabels, f)
		case fNamesReqLimit:
			return setInt64(&r.Limit, f)
		}
		return nil
	})
}

// Unmarshal decodes b into r, which it resets first.
func (r *LabelNamesResponse) Unmarshal(b []byte) error {
	*r = LabelNamesResponse{}
	return decodeFields(b, func(f field) error {
		switch f.num {
		case fNamesRespNames:
			return addString(&r.Names, f)
		case fNamesRespWarnings:
			return addString(&r.Warnings, f)
		}
		return nil
	})
}

// Unmarshal decodes b into r, which it resets first.
func (r *LabelValuesRequest) Unmarshal(b []byte) error {
	*r = LabelValuesRequest{}
	return decodeFields(b, func(f field) error {
		switch f.num {
		case fValuesReqLabel:
			return setString(&r.Label, f)
		case fValuesReqPartialDisabled:
			return setBool(&r.PartialResponseDisabled, f)
		case fValuesReqPartialStrategy:
			return setInt32(&r.PartialResponseStrategy, f)
		case fValuesReqStart:
			return setInt64(&r.Start, f)
		case fValuesReqEnd:
			return setInt64(&r.End, f)
		case fValuesReqMatchers:
			return addMatcher(&r.Matchers, f)
		case fValuesReqWithoutReplica:
			return addString(&r.WithoutReplicaLabels, f)
		case fValuesReqLimit:
			return setInt64(&r.Limit, f)
		}
		return nil
	})
}

// Unmarshal decodes b into r, which it resets first.
func (r *LabelValuesResponse) Unmarshal(b []byte) error {
	*r = LabelValuesResponse{}
	return decodeFields(b, func(f field) error {
		switch f.num {
		case fValuesRespValues:
			return addString(&r.Values, f)
		case fValuesRespWarnings:
			return addString(&r.Warnings, f)
		}
		return nil
	})
}

// Unmarshal decodes b into r, which it resets first.
func (r *ExemplarsRequest) Unmarshal(b []byte) error {
	*r = ExemplarsRequest{}
	return decodeFields(b, func(f field) error {
		switch f.num {
		case fExemplarsReqQuery:
			return setString(&r.Query, f)
		case fExemplarsReqStart:
			return setInt64(&r.Start, f)
		case fExemplarsReqEnd:
			return setInt64(&r.End, f)
		case fExemplarsReqPartialStrategy:
			return setInt32(&r.PartialResponseStrategy, f)
		}
		return nil
	})
}

// Unmarshal decodes b into r, which it resets first.
func (r *ExemplarsResponse) Unmarshal(b []byte) error {
	*r = ExemplarsResponse{}
	return decodeFields(b, func(f field) error {
		if !f.isBytes() {
			return nil
		}
		switch f.num {
		case fExemplarsRespData:
			if r.Data == nil {
				r.Data = &ExemplarData{}
			}
			r.Warning = ""
			return r.Data.decode(f.b)
		case fExemplarsRespWarning:
			r.Data, r.Warning = nil, string(f.b)
		}
		return nil
	})
}

func (d *ExemplarData) decode(b []byte) error {
	return decodeFields(b, func(f field) error {
		if !f.isBytes() {
			return nil
		}
		switch f.num {
		case fExemplarDataSeriesLabels:
			if d.SeriesLabels == nil {
				d.SeriesLabels = []Label{}
			}
			return decodeLabelSet(f.b, &d.SeriesLabels)
		case fExemplarDataExemplars:
			var e Exemplar
			err := e.decode(f.b)
			d.Exemplars = append(d.Exemplars, e)
			return err
		}
		return nil
	})
}

func (e *Exemplar) decode(b []byte) error {
	return decodeFields(b, func(f field) error {
		switch f.num {
		case fExemplarLabels:
			if !f.isBytes() {
				return nil
			}
			if e.Labels == nil {
				e.Labels = []Label{}
			}
			return decodeLabelSet(f.b, &e.Labels)
		case fExemplarValue:
			if f.isFixed64() {
				e.Value = math.Float64frombits(f.u)
			}
		case fExemplarTs:
			return setInt64(&e.Ts, f)
		}
		return nil
	})
}

// Unmarshal checks that b is a well-formed message: InfoRequest has no
// fields, and unknown fields are ignored.
func (r *InfoRequest) Unmarshal(b []byte) error {
	return decodeFields(b, func(field) error { return nil })
}

// Unmarshal decodes b into r, which it resets first.
func (r *InfoResponse) Unmarshal(b []byte) error {
	*r = InfoResponse{}
	return decodeFields(b, func(f field) error {
		if !f.isBytes() {
			return nil
		}
		switch f.num {
		case fInfoLabelSets:
			ls := []Label{}
			err := decodeLabelSet(f.b, &ls)
			r.LabelSets = append(r.LabelSets, ls)
			return err
		case fInfoComponentType:
			return setString(&r.ComponentType, f)
		case fInfoStore:
			if r.Store == nil {
				r.Store = &StoreInfo{}
			}
			return r.Store.decode(f.b)
		case fInfoExemplars:
			if r.Exemplars == nil {
				r.Exemplars = &ExemplarsInfo{}
			}
			return decodeFields(f.b, func(f field) error {
				switch f.num {
				case fExemplarsInfoMinTime:
					return setInt64(&r.Exemplars.MinTime, f)
				case fExemplarsInfoMaxTime:
					return setInt64(&r.Exemplars.MaxTime, f)
				}
				return nil
			})
		}
		return nil
	})
}

func (s *StoreInfo) decode(b []byte) error {
	return decodeFields(b, func(f field) error {
		switch f.num {
		case fStoreInfoMinTime:
			return setInt64(&s.MinTime, f)
		case fStoreInfoMaxTime:
			return setInt64(&s.MaxTime, f)
		case fStoreInfoSupportsSharding:
			return setBool(&s.SupportsSharding, f)
		case fStoreInfoWithoutReplicaLabels:
			return setBool(&s.SupportsWithoutReplicaLabels, f)
		case fStoreInfoTSDBInfos:
			if !f.isBytes() {
				return nil
			}
			var t TSDBInfo
			err := decodeFields(f.b, func(f field) error {
				switch f.num {
				case fTSDBInfoLabels:
					if !f.isBytes() {
						return nil
					}
					if t.Labels == nil {
						t.Labels = []Label{}
					}
					return decodeLabelSet(f.b, &t.Labels)
				case fTSDBInfoMinTime:
					return setInt64(&t.MinTime, f)
				case fTSDBInfoMaxTime:
					return setInt64(&t.MaxTime, f)
				}
				return nil
			})
			s.TSDBInfos = append(s.TSDBInfos, t)
			return err
		}
		return nil
	})
}
