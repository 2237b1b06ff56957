package otlp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/stratametrics/strata/remotewrite"
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
		st.conv = prometheusremotewrite.NewPrometheusConverter(&st.app)
	}
	defer func() {
		st.app.reset()
		t.pool.Put(st)
	}()
	tr := Translation{DataPoints: md.DataPointCount()}
	annots, err := st.conv.FromMetrics(ctx, md, s.s)
	if ctx.Err() != nil {
		return tr, fmt.Errorf("%w: %v", remotewrite.ErrUnavailable, ctx.Err())
	}
	if err != nil {
		tr.Refused, tr.Refusals = refusedPoints(md, err)
	}
	tr.Warnings, _ = annots.AsStrings("", 0, 0)
	tr.Samples = st.app.samples
	if err := st.app.marshal(dst); err != nil {
		return tr, err
	}
	return tr, nil
}

// refusedPoints counts the data points of the metrics the translator
// refused. It joins an error per metric; those it names by metric are
// matched to the request's metrics, the others (a resource or scope it
// could not translate) are counted whole, at most all the points.
func refusedPoints(md pmetric.Metrics, err error) (int, string) {
	var msgs []string
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			msgs = append(msgs, e.Error())
		}
	} else {
		msgs = []string{err.Error()}
	}
	refused := 0
	named := map[string]bool{}
	for _, m := range msgs {
		if i := strings.Index(m, `"`); i >= 0 {
			if j := strings.Index(m[i+1:], `"`); j >= 0 {
				named[m[i+1:i+1+j]] = true
				continue
			}
		}
		// Not about one metric: the resource's or scope's points are all
		// refused; count them all, as nothing finer is known.
		return md.DataPointCount(), strings.Join(msgs, "; ")
	}
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
	return refused, strings.Join(msgs, "; ")
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
// gathers the series of one request in a remote-write 2.0 message.
type collector struct {
	symbols writev2.SymbolsTable
	series  []writev2.TimeSeries
	// index finds a series by its labels' hash (collisions chained).
	index   map[uint64][]int32
	refs    []uint32
	samples int
}

func (c *collector) reset() {
	c.symbols = writev2.NewSymbolTable()
	c.series = c.series[:0]
	c.samples = 0
	if c.index == nil {
		c.index = map[uint64][]int32{}
	}
	clear(c.index)
}

func (c *collector) Append(_ storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	i := c.find(ls, opts)
	ts := &c.series[i]
	c.samples++
	switch {
	case fh != nil:
		ts.Histograms = append(ts.Histograms, writev2.FromFloatHistogram(st, t, fh))
	case h != nil:
		ts.Histograms = append(ts.Histograms, writev2.FromIntHistogram(st, t, h))
	default:
		ts.Samples = append(ts.Samples, writev2.Sample{Value: v, Timestamp: t, StartTimestamp: st})
	}
	for _, e := range opts.Exemplars {
		ts.Exemplars = append(ts.Exemplars, c.exemplar(e))
	}
	return storage.SeriesRef(i + 1), nil
}

func (c *collector) find(ls labels.Labels, opts storage.AOptions) int {
	h := ls.Hash()
	for _, i := range c.index[h] {
		if labels.Equal(c.labelsOf(int(i)), ls) {
			return int(i)
		}
	}
	i := len(c.series)
	c.refs = c.symbols.SymbolizeLabels(ls, c.refs[:0])
	c.series = append(c.series, writev2.TimeSeries{
		LabelsRefs: slices.Clone(c.refs),
		Metadata: writev2.Metadata{
			Type:    writev2.FromMetadataType(opts.Metadata.Type),
			HelpRef: c.symbols.Symbolize(opts.Metadata.Help),
			UnitRef: c.symbols.Symbolize(opts.Metadata.Unit),
		},
	})
	c.index[h] = append(c.index[h], int32(i))
	return i
}

func (c *collector) labelsOf(i int) labels.Labels {
	syms := c.symbols.Symbols()
	var b labels.ScratchBuilder
	refs := c.series[i].LabelsRefs
	for j := 0; j+1 < len(refs); j += 2 {
		b.Add(syms[refs[j]], syms[refs[j+1]])
	}
	return b.Labels()
}

func (c *collector) exemplar(e exemplar.Exemplar) writev2.Exemplar {
	c.refs = c.symbols.SymbolizeLabels(e.Labels, c.refs[:0])
	return writev2.Exemplar{LabelsRefs: slices.Clone(c.refs), Value: e.Value, Timestamp: e.Ts}
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
	req := writev2.Request{Symbols: c.symbols.Symbols(), Timeseries: c.series}
	n := req.Size()
	if cap(dst.B) < n {
		dst.B = make([]byte, n)
	}
	dst.B = dst.B[:n]
	if _, err := req.MarshalToSizedBuffer(dst.B); err != nil {
		return fmt.Errorf("otlp: marshal the translated request: %w", err)
	}
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
