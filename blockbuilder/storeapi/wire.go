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

// LabelsQuery is what LabelNamesRequest and LabelValuesRequest share:
// the same fields, which LabelValuesRequest numbers one higher, after
// its Label.
type LabelsQuery struct {
	PartialResponseDisabled bool
	PartialResponseStrategy int32
	Start, End              int64
	Matchers                []LabelMatcher
	WithoutReplicaLabels    []string
	Limit                   int64
}

// LabelNamesRequest is thanos.LabelNamesRequest.
type LabelNamesRequest struct{ LabelsQuery }

// LabelNamesResponse is thanos.LabelNamesResponse.
type LabelNamesResponse struct {
	Names, Warnings []string
}

// LabelValuesRequest is thanos.LabelValuesRequest.
type LabelValuesRequest struct {
	Label string
	LabelsQuery
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

	fValuesReqLabel = 1

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

// Each message but the two oneofs (SeriesResponse, ExemplarsResponse)
// states its fields once, in a table (its fields method) from which
// marshalFields encodes and unmarshalFields decodes it. The frames Series
// streams are the exception: Series, AggrChunk, Chunk and Label are
// encoded by hand-written appendTo methods, once per series and chunk, at
// a speed and with no allocation that a table walk does not match; their
// tables decode them, and a test holds the two to the same bytes.

// wireField is one entry of a table: a field number, and a pointer to
// the message's field typed by how that field is encoded.
type wireField struct {
	num protowire.Number
	v   wireValue
}

// wireValue encodes and decodes one field. decode skips a field of
// another wire type than its own.
type wireValue interface {
	appendField(b []byte, num protowire.Number) []byte
	decode(f field) error
}

// maxFields is the most fields a table has: SeriesRequest's.
const maxFields = 11

// wireTable is an array, not a slice, so that a table is built in its
// caller's frame: walking one allocates nothing. It ends at the first
// entry without a value.
type wireTable [maxFields]wireField

// wireMessage is a message with a table.
type wireMessage interface{ fields() wireTable }

// marshalFields writes the fields of a table in its order, which is
// field-number order.
func marshalFields(b []byte, t wireTable) []byte {
	for _, f := range t {
		if f.v == nil {
			break
		}
		b = f.v.appendField(b, f.num)
	}
	return b
}

// unmarshalFields decodes b into the fields of a table; fields not in it
// are skipped.
func unmarshalFields(b []byte, t wireTable) error {
	return decodeFields(b, func(f field) error {
		for _, w := range t {
			if w.v == nil {
				break
			}
			if w.num == f.num {
				return w.v.decode(f)
			}
		}
		return nil
	})
}

// unmarshal resets m and decodes b into it.
func unmarshal[T any, P interface {
	*T
	wireMessage
}](b []byte, m P) error {
	var zero T
	*m = zero
	return unmarshalFields(b, m.fields())
}

// The kinds of field. Scalars omit their proto3 default.

// varintField is an int64, an enum, an int32 (sign-extended to 64 bits,
// as protobuf writes it) or a uint64: a varint.
type varintField[T ~int64 | ~int32 | ~uint64] struct{ p *T }

func varint[T ~int64 | ~int32 | ~uint64](p *T) varintField[T] { return varintField[T]{p} }

func (v varintField[T]) appendField(b []byte, num protowire.Number) []byte {
	if *v.p == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(*v.p))
}

func (v varintField[T]) decode(f field) error {
	if f.isVarint() {
		*v.p = T(f.u)
	}
	return nil
}

type boolField bool

func (p *boolField) appendField(b []byte, num protowire.Number) []byte {
	if !*p {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, 1)
}

func (p *boolField) decode(f field) error {
	if f.isVarint() {
		*p = f.u != 0
	}
	return nil
}

type doubleField float64

// appendField omits +0 only, as protobuf does: -0 has bits set.
func (p *doubleField) appendField(b []byte, num protowire.Number) []byte {
	bits := math.Float64bits(float64(*p))
	if bits == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, bits)
}

func (p *doubleField) decode(f field) error {
	if f.isFixed64() {
		*p = doubleField(math.Float64frombits(f.u))
	}
	return nil
}

type stringField string

func (p *stringField) appendField(b []byte, num protowire.Number) []byte {
	return appendString(b, num, string(*p))
}

func (p *stringField) decode(f field) error {
	if f.isBytes() {
		*p = stringField(f.b)
	}
	return nil
}

// bytesField aliases the decoded bytes: chunk data is not copied.
type bytesField []byte

func (p *bytesField) appendField(b []byte, num protowire.Number) []byte {
	if len(*p) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, *p)
}

func (p *bytesField) decode(f field) error {
	if f.isBytes() {
		*p = f.b
	}
	return nil
}

// stringsField writes every element, empty ones too: repeated fields
// have no default to omit.
type stringsField []string

func (p *stringsField) appendField(b []byte, num protowire.Number) []byte {
	for _, v := range *p {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendString(b, v)
	}
	return b
}

func (p *stringsField) decode(f field) error {
	if f.isBytes() {
		*p = append(*p, string(f.b))
	}
	return nil
}

// packedEnums is a repeated enum: proto3 packs it, and a decoder must
// read it unpacked too.
type packedEnums []int32

func (p *packedEnums) appendField(b []byte, num protowire.Number) []byte {
	if len(*p) == 0 {
		return b
	}
	return appendMessage(b, num, func(b []byte) []byte {
		for _, a := range *p {
			b = protowire.AppendVarint(b, uint64(int64(a)))
		}
		return b
	})
}

func (p *packedEnums) decode(f field) error {
	if f.isVarint() {
		*p = append(*p, int32(f.u))
		return nil
	}
	for b := f.b; len(b) > 0; {
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		*p = append(*p, int32(v))
		b = b[n:]
	}
	return nil
}

// Embedded messages merge when a field occurs twice, as protobuf
// requires: each decodes into what is already there.

// optionalField is an embedded message behind a pointer: written when
// the pointer is set, even to an empty message.
type optionalField[T any, P interface {
	*T
	wireMessage
}] struct{ p **T }

func optional[T any, P interface {
	*T
	wireMessage
}](p **T) optionalField[T, P] {
	return optionalField[T, P]{p}
}

func (o optionalField[T, P]) appendField(b []byte, num protowire.Number) []byte {
	if *o.p == nil {
		return b
	}
	return appendFields(b, num, P(*o.p))
}

func (o optionalField[T, P]) decode(f field) error {
	if !f.isBytes() {
		return nil
	}
	if *o.p == nil {
		*o.p = new(T)
	}
	return unmarshalFields(f.b, P(*o.p).fields())
}

// repeatedField is a repeated embedded message.
type repeatedField[T any, P interface {
	*T
	wireMessage
}] struct{ p *[]T }

func repeated[T any, P interface {
	*T
	wireMessage
}](p *[]T) repeatedField[T, P] {
	return repeatedField[T, P]{p}
}

func (r repeatedField[T, P]) appendField(b []byte, num protowire.Number) []byte {
	for i := range *r.p {
		b = appendFields(b, num, P(&(*r.p)[i]))
	}
	return b
}

// decode decodes into the element in place, in the slice: a variable of
// its own would escape through the table and cost an allocation.
func (r repeatedField[T, P]) decode(f field) error {
	if !f.isBytes() {
		return nil
	}
	var zero T
	*r.p = append(*r.p, zero)
	return unmarshalFields(f.b, P(&(*r.p)[len(*r.p)-1]).fields())
}

// labelSet is thanos.ZLabelSet (LabelSet's twin on the wire), which
// Thanos' gogo-generated code holds by value and writes even when empty:
// so do we, and an empty one decodes to a non-nil slice.
type labelSet []Label

func (s *labelSet) fields() wireTable {
	return wireTable{{fLabelSetLabels, repeated((*[]Label)(s))}}
}

func (s *labelSet) appendField(b []byte, num protowire.Number) []byte {
	return appendFields(b, num, s)
}

func (s *labelSet) decode(f field) error {
	if !f.isBytes() {
		return nil
	}
	if *s == nil {
		*s = labelSet{}
	}
	return unmarshalFields(f.b, s.fields())
}

// labelSets is a repeated ZLabelSet.
type labelSets [][]Label

func (p *labelSets) appendField(b []byte, num protowire.Number) []byte {
	for i := range *p {
		b = (*labelSet)(&(*p)[i]).appendField(b, num)
	}
	return b
}

func (p *labelSets) decode(f field) error {
	if !f.isBytes() {
		return nil
	}
	*p = append(*p, nil)
	return (*labelSet)(&(*p)[len(*p)-1]).decode(f)
}

// The tables, in field-number order.

func (l *Label) fields() wireTable {
	return wireTable{{fLabelName, (*stringField)(&l.Name)}, {fLabelValue, (*stringField)(&l.Value)}}
}

func (m *LabelMatcher) fields() wireTable {
	return wireTable{
		{fMatcherType, varint(&m.Type)},
		{fMatcherName, (*stringField)(&m.Name)},
		{fMatcherValue, (*stringField)(&m.Value)},
	}
}

func (c *Chunk) fields() wireTable {
	return wireTable{{fChunkType, varint(&c.Type)}, {fChunkData, (*bytesField)(&c.Data)}, {fChunkHash, varint(&c.Hash)}}
}

func (c *AggrChunk) fields() wireTable {
	return wireTable{{fAggrMinTime, varint(&c.MinTime)}, {fAggrMaxTime, varint(&c.MaxTime)}, {fAggrRaw, optional(&c.Raw)}}
}

func (s *Series) fields() wireTable {
	return wireTable{{fSeriesLabels, repeated(&s.Labels)}, {fSeriesChunks, repeated(&s.Chunks)}}
}

// seriesBatch is thanos.SeriesBatch.
type seriesBatch []Series

func (s *seriesBatch) fields() wireTable {
	return wireTable{{fBatchSeries, repeated((*[]Series)(s))}}
}

func (r *SeriesRequest) fields() wireTable {
	return wireTable{
		{fSeriesReqMinTime, varint(&r.MinTime)},
		{fSeriesReqMaxTime, varint(&r.MaxTime)},
		{fSeriesReqMatchers, repeated(&r.Matchers)},
		{fSeriesReqMaxResolutionWindow, varint(&r.MaxResolutionWindow)},
		{fSeriesReqAggregates, (*packedEnums)(&r.Aggregates)},
		{fSeriesReqPartialDisabled, (*boolField)(&r.PartialResponseDisabled)},
		{fSeriesReqPartialStrategy, varint(&r.PartialResponseStrategy)},
		{fSeriesReqSkipChunks, (*boolField)(&r.SkipChunks)},
		{fSeriesReqWithoutReplica, (*stringsField)(&r.WithoutReplicaLabels)},
		{fSeriesReqLimit, varint(&r.Limit)},
		{fSeriesReqResponseBatchSize, varint(&r.ResponseBatchSize)},
	}
}

// fields puts the query's fields into t from index at, numbered as in
// LabelNamesRequest plus shift.
func (q *LabelsQuery) fields(t wireTable, at int, shift protowire.Number) wireTable {
	for i, f := range [...]wireField{
		{fNamesReqPartialDisabled, (*boolField)(&q.PartialResponseDisabled)},
		{fNamesReqPartialStrategy, varint(&q.PartialResponseStrategy)},
		{fNamesReqStart, varint(&q.Start)},
		{fNamesReqEnd, varint(&q.End)},
		{fNamesReqMatchers, repeated(&q.Matchers)},
		{fNamesReqWithoutReplica, (*stringsField)(&q.WithoutReplicaLabels)},
		{fNamesReqLimit, varint(&q.Limit)},
	} {
		f.num += shift
		t[at+i] = f
	}
	return t
}

func (r *LabelNamesRequest) fields() wireTable { return r.LabelsQuery.fields(wireTable{}, 0, 0) }

func (r *LabelNamesResponse) fields() wireTable {
	return wireTable{{fNamesRespNames, (*stringsField)(&r.Names)}, {fNamesRespWarnings, (*stringsField)(&r.Warnings)}}
}

func (r *LabelValuesRequest) fields() wireTable {
	return r.LabelsQuery.fields(wireTable{{fValuesReqLabel, (*stringField)(&r.Label)}}, 1, 1)
}

func (r *LabelValuesResponse) fields() wireTable {
	return wireTable{{fValuesRespValues, (*stringsField)(&r.Values)}, {fValuesRespWarnings, (*stringsField)(&r.Warnings)}}
}

func (r *ExemplarsRequest) fields() wireTable {
	return wireTable{
		{fExemplarsReqQuery, (*stringField)(&r.Query)},
		{fExemplarsReqStart, varint(&r.Start)},
		{fExemplarsReqEnd, varint(&r.End)},
		{fExemplarsReqPartialStrategy, varint(&r.PartialResponseStrategy)},
	}
}

func (d *ExemplarData) fields() wireTable {
	return wireTable{
		{fExemplarDataSeriesLabels, (*labelSet)(&d.SeriesLabels)},
		{fExemplarDataExemplars, repeated(&d.Exemplars)},
	}
}

func (e *Exemplar) fields() wireTable {
	return wireTable{
		{fExemplarLabels, (*labelSet)(&e.Labels)},
		{fExemplarValue, (*doubleField)(&e.Value)},
		{fExemplarTs, varint(&e.Ts)},
	}
}

func (r *InfoRequest) fields() wireTable { return wireTable{} }

func (r *InfoResponse) fields() wireTable {
	return wireTable{
		{fInfoLabelSets, (*labelSets)(&r.LabelSets)},
		{fInfoComponentType, (*stringField)(&r.ComponentType)},
		{fInfoStore, optional(&r.Store)},
		{fInfoExemplars, optional(&r.Exemplars)},
	}
}

func (s *StoreInfo) fields() wireTable {
	return wireTable{
		{fStoreInfoMinTime, varint(&s.MinTime)},
		{fStoreInfoMaxTime, varint(&s.MaxTime)},
		{fStoreInfoSupportsSharding, (*boolField)(&s.SupportsSharding)},
		{fStoreInfoWithoutReplicaLabels, (*boolField)(&s.SupportsWithoutReplicaLabels)},
		{fStoreInfoTSDBInfos, repeated(&s.TSDBInfos)},
	}
}

func (t *TSDBInfo) fields() wireTable {
	return wireTable{
		{fTSDBInfoLabels, (*labelSet)(&t.Labels)},
		{fTSDBInfoMinTime, varint(&t.MinTime)},
		{fTSDBInfoMaxTime, varint(&t.MaxTime)},
	}
}

func (e *ExemplarsInfo) fields() wireTable {
	return wireTable{{fExemplarsInfoMinTime, varint(&e.MinTime)}, {fExemplarsInfoMaxTime, varint(&e.MaxTime)}}
}

// The messages the server receives or sends, from their tables. Unmarshal
// resets the message first.

func (r *SeriesRequest) AppendMarshal(b []byte) []byte      { return marshalFields(b, r.fields()) }
func (r *SeriesRequest) Unmarshal(b []byte) error           { return unmarshal(b, r) }
func (r *LabelNamesRequest) AppendMarshal(b []byte) []byte  { return marshalFields(b, r.fields()) }
func (r *LabelNamesRequest) Unmarshal(b []byte) error       { return unmarshal(b, r) }
func (r *LabelNamesResponse) AppendMarshal(b []byte) []byte { return marshalFields(b, r.fields()) }
func (r *LabelNamesResponse) Unmarshal(b []byte) error      { return unmarshal(b, r) }
func (r *LabelValuesRequest) AppendMarshal(b []byte) []byte { return marshalFields(b, r.fields()) }
func (r *LabelValuesRequest) Unmarshal(b []byte) error      { return unmarshal(b, r) }
func (r *LabelValuesResponse) AppendMarshal(b []byte) []byte {
	return marshalFields(b, r.fields())
}
func (r *LabelValuesResponse) Unmarshal(b []byte) error   { return unmarshal(b, r) }
func (r *ExemplarsRequest) AppendMarshal(b []byte) []byte { return marshalFields(b, r.fields()) }
func (r *ExemplarsRequest) Unmarshal(b []byte) error      { return unmarshal(b, r) }
func (r *InfoRequest) AppendMarshal(b []byte) []byte      { return marshalFields(b, r.fields()) }

// Unmarshal checks that b is a well-formed message: InfoRequest has no
// fields, and unknown fields are ignored.
func (r *InfoRequest) Unmarshal(b []byte) error       { return unmarshal(b, r) }
func (r *InfoResponse) AppendMarshal(b []byte) []byte { return marshalFields(b, r.fields()) }
func (r *InfoResponse) Unmarshal(b []byte) error      { return unmarshal(b, r) }

// The oneofs. A member is written even when it holds its default, so an
// empty warning still says "this is a warning"; when decoding, a later
// member replaces an earlier other one, the same one merges.

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
		return appendWarning(b, fSeriesRespWarning, r.Warning)
	}
}

// Unmarshal decodes b into r, which it resets first. Chunk data aliases b.
func (r *SeriesResponse) Unmarshal(b []byte) error {
	*r = SeriesResponse{}
	return decodeFields(b, func(f field) error {
		if !f.isBytes() {
			return nil
		}
		switch f.num {
		case fSeriesRespSeries:
			r.Warning, r.Batch = "", nil
			return optional(&r.Series).decode(f)
		case fSeriesRespWarning:
			r.Series, r.Warning, r.Batch = nil, string(f.b), nil
		case fSeriesRespBatch:
			if r.Batch == nil {
				r.Batch = []Series{}
			}
			r.Series, r.Warning = nil, ""
			return unmarshalFields(f.b, (*seriesBatch)(&r.Batch).fields())
		}
		return nil
	})
}

// AppendMarshal appends the encoding of r to b.
func (r *ExemplarsResponse) AppendMarshal(b []byte) []byte {
	if r.Data != nil {
		return appendFields(b, fExemplarsRespData, r.Data)
	}
	return appendWarning(b, fExemplarsRespWarning, r.Warning)
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
			r.Warning = ""
			return optional(&r.Data).decode(f)
		case fExemplarsRespWarning:
			r.Data, r.Warning = nil, string(f.b)
		}
		return nil
	})
}

func appendWarning(b []byte, num protowire.Number, w string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, w)
}

// Encoding.

func appendInt64(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func appendString(b []byte, num protowire.Number, v string) []byte {
	if v == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
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

// appendFields writes an embedded message from its table.
func appendFields(b []byte, num protowire.Number, m wireMessage) []byte {
	return appendMessage(b, num, func(b []byte) []byte { return marshalFields(b, m.fields()) })
}

// The frames of Series, by hand (see above).

func (l Label) appendTo(b []byte) []byte {
	b = appendString(b, fLabelName, l.Name)
	return appendString(b, fLabelValue, l.Value)
}

func (c *Chunk) appendTo(b []byte) []byte {
	b = appendInt64(b, fChunkType, int64(c.Type))
	if len(c.Data) > 0 {
		b = protowire.AppendTag(b, fChunkData, protowire.BytesType)
		b = protowire.AppendBytes(b, c.Data)
	}
	if c.Hash != 0 {
		b = protowire.AppendTag(b, fChunkHash, protowire.VarintType)
		b = protowire.AppendVarint(b, c.Hash)
	}
	return b
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
	for _, l := range s.Labels {
		b = appendMessage(b, fSeriesLabels, l.appendTo)
	}
	for i := range s.Chunks {
		b = appendMessage(b, fSeriesChunks, s.Chunks[i].appendTo)
	}
	return b
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
