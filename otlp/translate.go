package otlp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/writeerr"
)

// Translation is what came of a request.
type Translation struct {
	// DataPoints is the request's data points; Refused those of metrics
	// the translator refused (delta temporality, names it cannot build).
	DataPoints, Refused int
	// Samples is the samples and histogram samples of the translated
	// request.
	Samples int
	// Refusals says why, one line per refused metric.
	Refusals string
	// Warnings are the translator's (empty data points, name collisions).
	Warnings []string
}

// Translator turns OTLP metrics into remote-write 2.0 bodies. It is safe
// for concurrent use.
type Translator struct {
	pool sync.Pool
}

type translateState struct {
	conv *prometheusremotewrite.PrometheusConverter
	app  collector
}

// Translate translates md with s into dst, a remote-write 2.0 request
// (uncompressed protobuf). An error means nothing can be written (the
// context ended); metrics refused one by one are counted in the
// Translation.
func (t *Translator) Translate(ctx context.Context, md pmetric.Metrics, s Settings, dst *remotewrite.Buffer) (Translation, error) {
	st, _ := t.pool.Get().(*translateState)
	if st == nil {
		st = &translateState{}
		st.app.reset()
		st.conv = prometheusremotewrite.NewPrometheusConverter(nil)
	}
	// The converter keeps a cache of label names between requests, built
	// with the settings of the request that filled it and growing with
	// every name a sender makes up; Reset empties it (and bounds it).
	st.conv.Reset(&st.app)
	defer func() {
		st.app.reset()
		st.conv.Reset(nil)
		t.pool.Put(st)
	}()
	tr := Translation{DataPoints: md.DataPointCount()}
	st.app.targetInfoLeft = targetInfoBudget(tr.DataPoints)
	annots, err := st.conv.FromMetrics(ctx, md, s.s)
	if ctx.Err() != nil {
		return tr, fmt.Errorf("%w: %v", writeerr.ErrUnavailable, ctx.Err())
	}
	if err != nil {
		tr.Refused, tr.Refusals = refusedPoints(md, err)
	}
	if st.app.targetInfoLeft < 0 {
		tr.Refusals = joinMessages(tr.Refusals, fmt.Sprintf("target_info is written every %s from a resource's first point to its last, "+
			"and this request's points span too long: %d samples of target_info were written, the rest were not",
			s.s.LookbackDelta/2, targetInfoBudget(tr.DataPoints)))
	}
	tr.Warnings, _ = annots.AsStrings("", 0, 0)
	tr.Samples = st.app.samples
	if err := st.app.marshal(dst); err != nil {
		return tr, err
	}
	return tr, nil
}

// The translator writes target_info every half lookback delta from a
// resource's first point to its last, so that queries joining on it
// always find it: two points centuries apart would make billions of
// samples of a few bytes. A request may make two per data point (the
// first and last of a resource whose points fall in one step) and
// maxTargetInfoSteps more (two days at the default 2.5 minutes), which no
// sender exporting what it just measured comes near; past that the
// translator is stopped at the resource, and target_info holds what was
// written.
const (
	targetInfoName     = "target_info"
	maxTargetInfoSteps = 1152
)

var errTargetInfoBudget = errors.New("target_info: too many steps")

func targetInfoBudget(dataPoints int) int {
	return 2*dataPoints + maxTargetInfoSteps
}

// maxRefusals is how many of the translator's refusals the answer
// quotes; the others are counted.
const maxRefusals = 5

// refusedPoints counts the data points of the metrics the translator
// refused. It joins an error per metric; those it names by metric are
// matched to the request's metrics, the others (a resource or scope it
// could not translate, an attribute or histogram scale it could not
// convert) are counted whole, at most all the points.
func refusedPoints(md pmetric.Metrics, err error) (int, string) {
	// The translator joins each error to those before, one level deeper
	// each time: the joined error's own message is quadratic in the
	// number of errors, so only the leaves' are read.
	var errs []error
	for stack := []error{err}; len(stack) > 0; {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			inner := j.Unwrap()
			for k := len(inner) - 1; k >= 0; k-- {
				stack = append(stack, inner[k])
			}
			continue
		}
		if e != nil && !errors.Is(e, errTargetInfoBudget) {
			errs = append(errs, e)
		}
	}
	if len(errs) == 0 {
		return 0, ""
	}
	var b strings.Builder
	named := map[string]bool{}
	whole := false
	for i, e := range errs {
		m := e.Error()
		if i < maxRefusals {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(m)
		} else if i == maxRefusals {
			fmt.Fprintf(&b, "; and %d more", len(errs)-maxRefusals)
		}
		if name, ok := metricNamed(m); ok {
			named[name] = true
		} else {
			whole = true
		}
	}
	if whole {
		// Not about one metric by name: nothing finer is known than that
		// some points of the request were refused; count them all.
		return md.DataPointCount(), b.String()
	}
	refused := 0
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				if m := ms.At(k); named[m.Name()] {
					refused += dataPoints(m)
				}
			}
		}
	}
	return refused, b.String()
}

// metricNamed finds the metric a translator error names, as `metric %q`.
// Other quoted strings are not metric names: `label name "__"`.
func metricNamed(msg string) (string, bool) {
	i := strings.Index(msg, `metric "`)
	if i < 0 {
		return "", false
	}
	q, err := strconv.QuotedPrefix(msg[i+len("metric "):])
	if err != nil {
		return "", false
	}
	name, err := strconv.Unquote(q)
	return name, err == nil
}

func dataPoints(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}

// collector is the storage.AppenderV2 the translator writes into: it
// gathers the series of one request in a remote-write 2.0 message. Its
// memory is kept for the next request (of any tenant; reset empties
// it), up to the bounds below.
type collector struct {
	symbols writev2.SymbolsTable
	// series are reused slot by slot, their slices with them.
	series []writev2.TimeSeries
	// index finds a series by its labels' hash: the first series of the
	// hash, the others chained by next.
	index map[uint64]int32
	next  []int32
	// refs holds the label references of every series and exemplar, each
	// a capped window into it.
	refs    []uint32
	samples int
	// targetInfoLeft is how many more target_info samples the request
	// may make; below 0 once one was refused.
	targetInfoLeft int
}

// What a collector keeps between requests is bounded: a request past
// these (rare: senders batch a few thousand points) leaves nothing of its
// own. A series slot keeps the memory of a few samples, for the next
// request's series in that slot; histograms and exemplars are not kept.
const (
	maxKeptSeries      = 1 << 14
	maxKeptSlotSamples = 16
	maxKeptSymbols     = 1 << 15
	maxKeptRefs        = 1 << 18
)

func (c *collector) reset() {
	if len(c.symbols.Symbols()) == 0 || len(c.symbols.Symbols()) > maxKeptSymbols {
		c.symbols = writev2.NewSymbolTable()
	} else {
		c.symbols.Reset()
	}
	if cap(c.series) > maxKeptSeries {
		c.series, c.next = nil, nil
	}
	for i := range c.series {
		ts := &c.series[i]
		if cap(ts.Samples) > maxKeptSlotSamples {
			ts.Samples = nil
		}
		ts.Histograms, ts.Exemplars = nil, nil
	}
	c.series, c.next = c.series[:0], c.next[:0]
	if cap(c.refs) > maxKeptRefs {
		c.refs = nil
	}
	c.refs = c.refs[:0]
	c.samples = 0
	if c.index == nil || len(c.index) > maxKeptSeries {
		c.index = map[uint64]int32{}
	}
	clear(c.index)
}

// The start time st is dropped, as Prometheus' receiver drops it by
// default: the block builders store a remote-write 2.0 start timestamp as
// a zero sample, which the translator passes for gauges too.
func (c *collector) Append(_ storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	if opts.MetricFamilyName == targetInfoName {
		if c.targetInfoLeft <= 0 {
			// The translator returns at once, for this resource.
			c.targetInfoLeft = -1
			return 0, errTargetInfoBudget
		}
		c.targetInfoLeft--
	}
	i := c.find(ls, opts)
	ts := &c.series[i]
	c.samples++
	switch {
	case fh != nil:
		ts.Histograms = append(ts.Histograms, writev2.FromFloatHistogram(0, t, fh))
	case h != nil:
		ts.Histograms = append(ts.Histograms, writev2.FromIntHistogram(0, t, h))
	default:
		ts.Samples = append(ts.Samples, writev2.Sample{Value: v, Timestamp: t})
	}
	for _, e := range opts.Exemplars {
		ts.Exemplars = append(ts.Exemplars, writev2.Exemplar{LabelsRefs: c.symbolize(e.Labels), Value: e.Value, Timestamp: e.Ts})
	}
	return storage.SeriesRef(i + 1), nil
}

func (c *collector) find(ls labels.Labels, opts storage.AOptions) int {
	h := ls.Hash()
	first, ok := c.index[h]
	if ok {
		for i := first; i >= 0; i = c.next[i] {
			if c.equal(int(i), ls) {
				return int(i)
			}
		}
	}
	i := len(c.series)
	if i < cap(c.series) {
		c.series = c.series[:i+1]
	} else {
		c.series = append(c.series, writev2.TimeSeries{})
	}
	ts := &c.series[i]
	*ts = writev2.TimeSeries{
		LabelsRefs: c.symbolize(ls),
		Samples:    ts.Samples[:0],
		Metadata: writev2.Metadata{
			Type:    writev2.FromMetadataType(opts.Metadata.Type),
			HelpRef: c.symbols.Symbolize(opts.Metadata.Help),
			UnitRef: c.symbols.Symbolize(opts.Metadata.Unit),
		},
	}
	// A new series heads its hash's chain.
	if ok {
		c.next = append(c.next, first)
	} else {
		c.next = append(c.next, -1)
	}
	c.index[h] = int32(i)
	return i
}

// symbolize appends the references of ls to c.refs and returns them.
func (c *collector) symbolize(ls labels.Labels) []uint32 {
	start := len(c.refs)
	ls.Range(func(l labels.Label) {
		c.refs = append(c.refs, c.symbols.Symbolize(l.Name), c.symbols.Symbolize(l.Value))
	})
	return c.refs[start:len(c.refs):len(c.refs)]
}

// equal tells whether series i has the labels ls.
func (c *collector) equal(i int, ls labels.Labels) bool {
	refs := c.series[i].LabelsRefs
	if len(refs) != 2*ls.Len() {
		return false
	}
	syms := c.symbols.Symbols()
	eq, j := true, 0
	ls.Range(func(l labels.Label) {
		eq = eq && syms[refs[j]] == l.Name && syms[refs[j+1]] == l.Value
		j += 2
	})
	return eq
}

// Commit and Rollback: the collected series are marshalled by Translate.
func (c *collector) Commit() error   { return nil }
func (c *collector) Rollback() error { return nil }

// marshal writes the collected request into dst. Each series' samples
// are sorted by time, as remote-write asks: OTLP does not order points.
func (c *collector) marshal(dst *remotewrite.Buffer) error {
	for i := range c.series {
		ts := &c.series[i]
		slices.SortStableFunc(ts.Samples, func(a, b writev2.Sample) int { return cmpInt(a.Timestamp, b.Timestamp) })
		slices.SortStableFunc(ts.Histograms, func(a, b writev2.Histogram) int { return cmpInt(a.Timestamp, b.Timestamp) })
		slices.SortStableFunc(ts.Exemplars, func(a, b writev2.Exemplar) int { return cmpInt(a.Timestamp, b.Timestamp) })
	}
	// The bytes are writev2.Request's Marshal's, written forwards: its
	// generated code allocates a scratch buffer per series for the packed
	// label references, which are written here, the series' other fields
	// by that code.
	b := dst.B[:0]
	for _, sym := range c.symbols.Symbols() {
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendString(b, sym)
	}
	for i := range c.series {
		ts := &c.series[i]
		refs := ts.LabelsRefs
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
		_, err := ts.MarshalToSizedBuffer(b[n:])
		ts.LabelsRefs = refs
		if err != nil {
			dst.B = b[:0]
			return fmt.Errorf("otlp: marshal the translated request: %w", err)
		}
	}
	dst.B = b
	return nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
