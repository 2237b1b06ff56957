package otlp

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/stratametrics/strata/remotewrite"
)

// Point is one sample the translator made: a float sample, or a
// histogram sample when H or FH is set.
type Point struct {
	Labels    labels.Labels
	T         int64
	V         float64
	H         *histogram.Histogram
	FH        *histogram.FloatHistogram
	Exemplars []exemplar.Exemplar
	Metadata  metadata.Metadata
	hash      uint64
}

// Batch is a translated request, grouped by series: what a block builder
// appends as it is, and what the router marshals into a remote-write 2.0
// body (Marshal) to route. A Batch is reusable: Translate resets it.
type Batch struct {
	points, sorted []Point
	// bounds[i] is where series i starts in sorted; one more closes the
	// last.
	bounds []int32
	keys   []pointKey
	// targetInfoLeft is how many more target_info samples the request may
	// make; below 0 once one was refused.
	targetInfoLeft int
	// Marshal's scratch space.
	symbols     writev2.SymbolsTable
	refs, exRef []uint32
	series      writev2.TimeSeries
}

type pointKey struct {
	hash uint64
	seq  int32
}

// What a Batch keeps between requests is bounded: a request past these
// (rare: senders batch a few thousand points) leaves nothing of its own.
const (
	maxKeptPoints  = 1 << 14
	maxKeptSymbols = 1 << 15
	maxKeptRefs    = 1 << 18
)

// Reset empties b, keeping its memory up to a bound. A batch kept between
// requests is Reset after each: its points hold the request's labels.
func (b *Batch) Reset() {
	if cap(b.points) > maxKeptPoints {
		b.points, b.sorted, b.bounds, b.keys = nil, nil, nil, nil
	}
	// The points' labels and histograms are the translator's, made for
	// one request: none is kept past it.
	clear(b.points)
	clear(b.sorted)
	b.points, b.sorted, b.bounds = b.points[:0], b.sorted[:0], b.bounds[:0]
	b.targetInfoLeft = 0
}

// NumSeries is the number of series of the batch.
func (b *Batch) NumSeries() int { return max(len(b.bounds)-1, 0) }

// NumPoints is the number of samples and histogram samples of the batch.
func (b *Batch) NumPoints() int { return len(b.points) }

// Series is the points of series i, in time order (points at the same
// time in the order the request had them). Their labels and hash are the
// same; the series' metadata is its first point's.
func (b *Batch) Series(i int) []Point { return b.sorted[b.bounds[i]:b.bounds[i+1]] }

// Hash is the hash of the labels of series i (labels.Labels.Hash).
func (b *Batch) Hash(i int) uint64 { return b.sorted[b.bounds[i]].hash }

// group puts the points of each series together, in time order: OTLP
// neither groups nor orders points, remote-write wants both, and a TSDB
// refuses a series' samples out of order. Points are ordered by hash
// first, which sorts small keys; only points sharing a hash (a series'
// points, or a collision) are compared by labels and time.
func (b *Batch) group() {
	keys := b.keys[:0]
	for i := range b.points {
		keys = append(keys, pointKey{b.points[i].hash, int32(i)})
	}
	slices.SortFunc(keys, func(x, y pointKey) int {
		if c := cmp.Compare(x.hash, y.hash); c != 0 {
			return c
		}
		return cmp.Compare(x.seq, y.seq)
	})
	for start := 0; start < len(keys); {
		end := start + 1
		for end < len(keys) && keys[end].hash == keys[start].hash {
			end++
		}
		if end-start > 1 {
			slices.SortFunc(keys[start:end], func(x, y pointKey) int {
				px, py := &b.points[x.seq], &b.points[y.seq]
				if c := labels.Compare(px.Labels, py.Labels); c != 0 {
					return c
				}
				if c := cmp.Compare(px.T, py.T); c != 0 {
					return c
				}
				return cmp.Compare(x.seq, y.seq)
			})
		}
		start = end
	}
	b.keys = keys
	sorted := b.sorted[:0]
	for i, k := range keys {
		p := &b.points[k.seq]
		if i == 0 || p.hash != sorted[i-1].hash || !labels.Equal(p.Labels, sorted[i-1].Labels) {
			b.bounds = append(b.bounds, int32(i))
		}
		sorted = append(sorted, *p)
	}
	b.sorted = sorted
	b.bounds = append(b.bounds, int32(len(sorted)))
}

// appender is the storage.AppenderV2 the translator writes into.
type appender struct{ b *Batch }

// The start time st is dropped, as Prometheus' receiver drops it by
// default: the block builders store a remote-write 2.0 start timestamp as
// a zero sample, which the translator passes for gauges too. The
// translator builds labels and histograms for each call, which the batch
// keeps; exemplars are copied.
func (a appender) Append(_ storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	b := a.b
	if opts.MetricFamilyName == targetInfoName {
		if b.targetInfoLeft <= 0 {
			// The translator returns at once, for this resource.
			b.targetInfoLeft = -1
			return 0, errTargetInfoBudget
		}
		b.targetInfoLeft--
	}
	var exs []exemplar.Exemplar
	if len(opts.Exemplars) > 0 {
		// The translator reuses the slice for a histogram's buckets.
		exs = slices.Clone(opts.Exemplars)
	}
	b.points = append(b.points, Point{
		Labels: ls, T: t, V: v, H: h, FH: fh, Exemplars: exs, Metadata: opts.Metadata,
		hash: ls.Hash(),
	})
	return 0, nil
}

// Commit and Rollback: the batch is grouped by Translate.
func (appender) Commit() error   { return nil }
func (appender) Rollback() error { return nil }

// Marshal writes the batch as a remote-write 2.0 request (uncompressed
// protobuf) into dst. Each series carries the metadata of its first
// point and the exemplars of all its points, in time order.
func (b *Batch) Marshal(dst *remotewrite.Buffer) error {
	syms := &b.symbols
	if len(syms.Symbols()) == 0 || len(syms.Symbols()) > maxKeptSymbols {
		*syms = writev2.NewSymbolTable()
	} else {
		syms.Reset()
	}
	if cap(b.refs) > maxKeptRefs || cap(b.exRef) > maxKeptRefs {
		b.refs, b.exRef = nil, nil
	}
	// The symbols come first on the wire: every series' are made before
	// any series is written, labels, exemplar labels, help and unit.
	refs, exRef := b.refs[:0], b.exRef[:0]
	symbolize := func(dst []uint32, ls labels.Labels) []uint32 {
		ls.Range(func(l labels.Label) {
			dst = append(dst, syms.Symbolize(l.Name), syms.Symbolize(l.Value))
		})
		return dst
	}
	for i := range b.NumSeries() {
		points := b.Series(i)
		refs = symbolize(refs, points[0].Labels)
		syms.Symbolize(points[0].Metadata.Help)
		syms.Symbolize(points[0].Metadata.Unit)
		for _, p := range points {
			for _, e := range p.Exemplars {
				exRef = symbolize(exRef, e.Labels)
			}
		}
	}
	b.refs, b.exRef = refs, exRef
	out := dst.B[:0]
	for _, sym := range syms.Symbols() {
		out = protowire.AppendTag(out, 4, protowire.BytesType)
		out = protowire.AppendString(out, sym)
	}
	ts := &b.series
	labelsAt, exAt := 0, 0
	for i := range b.NumSeries() {
		points := b.Series(i)
		md := points[0].Metadata
		ts.Samples, ts.Histograms, ts.Exemplars = ts.Samples[:0], ts.Histograms[:0], ts.Exemplars[:0]
		ts.Metadata = writev2.Metadata{
			Type:    writev2.FromMetadataType(md.Type),
			HelpRef: syms.Symbolize(md.Help),
			UnitRef: syms.Symbolize(md.Unit),
		}
		for _, p := range points {
			switch {
			case p.FH != nil:
				ts.Histograms = append(ts.Histograms, writev2.FromFloatHistogram(0, p.T, p.FH))
			case p.H != nil:
				ts.Histograms = append(ts.Histograms, writev2.FromIntHistogram(0, p.T, p.H))
			default:
				ts.Samples = append(ts.Samples, writev2.Sample{Value: p.V, Timestamp: p.T})
			}
			for _, e := range p.Exemplars {
				n := 2 * e.Labels.Len()
				ts.Exemplars = append(ts.Exemplars, writev2.Exemplar{LabelsRefs: exRef[exAt : exAt+n : exAt+n], Value: e.Value, Timestamp: e.Ts})
				exAt += n
			}
		}
		slices.SortStableFunc(ts.Exemplars, func(x, y writev2.Exemplar) int { return cmp.Compare(x.Timestamp, y.Timestamp) })
		n := 2 * points[0].Labels.Len()
		var err error
		if out, err = appendSeries(out, refs[labelsAt:labelsAt+n], ts); err != nil {
			dst.B = out[:0]
			return err
		}
		labelsAt += n
	}
	// Histograms and exemplars are the request's: not kept.
	clear(ts.Histograms)
	clear(ts.Exemplars)
	dst.B = out
	return nil
}

// appendSeries appends a TimeSeries field of labels refs and the other
// fields of ts. The bytes are writev2.TimeSeries' Marshal's, written
// forwards: its generated code allocates a scratch buffer per series for
// the packed label references, which are written here, the series' other
// fields by that code.
func appendSeries(b []byte, refs []uint32, ts *writev2.TimeSeries) ([]byte, error) {
	packed, labelsField := 0, 0
	for _, r := range refs {
		packed += protowire.SizeVarint(uint64(r))
	}
	if len(refs) > 0 {
		labelsField = protowire.SizeTag(1) + protowire.SizeBytes(packed)
	}
	ts.LabelsRefs = nil
	rest := ts.Size()
	b = protowire.AppendTag(b, 5, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(labelsField+rest))
	if len(refs) > 0 {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(packed))
		for _, r := range refs {
			b = protowire.AppendVarint(b, uint64(r))
		}
	}
	n := len(b)
	b = slices.Grow(b, rest)[:n+rest]
	if _, err := ts.MarshalToSizedBuffer(b[n:]); err != nil {
		return b, fmt.Errorf("otlp: marshal the translated request: %w", err)
	}
	return b, nil
}
