package otlp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"go.opentelemetry.io/collector/pdata/pmetric"

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

// Translator turns OTLP metrics into series as Prometheus' receiver
// makes them: a Batch, or a remote-write 2.0 body. It is safe for
// concurrent use.
type Translator struct {
	pool, batches sync.Pool
}

// Translate translates md with s into dst, a remote-write 2.0 request
// (uncompressed protobuf), as TranslateBatch does.
func (t *Translator) Translate(ctx context.Context, md pmetric.Metrics, s Settings, dst *remotewrite.Buffer) (Translation, error) {
	b, _ := t.batches.Get().(*Batch)
	if b == nil {
		b = &Batch{}
	}
	defer func() {
		b.Reset()
		t.batches.Put(b)
	}()
	tr, err := t.TranslateBatch(ctx, md, s, b)
	if err != nil {
		return tr, err
	}
	return tr, b.Marshal(dst)
}

// TranslateBatch translates md with s into dst. An error means nothing
// can be written (the context ended); metrics refused one by one are
// counted in the Translation.
func (t *Translator) TranslateBatch(ctx context.Context, md pmetric.Metrics, s Settings, dst *Batch) (Translation, error) {
	conv, _ := t.pool.Get().(*prometheusremotewrite.PrometheusConverter)
	if conv == nil {
		conv = prometheusremotewrite.NewPrometheusConverter(nil)
	}
	// The converter keeps a cache of label names between requests, built
	// with the settings of the request that filled it and growing with
	// every name a sender makes up; Reset empties it (and bounds it).
	conv.Reset(appender{dst})
	defer func() {
		conv.Reset(nil)
		t.pool.Put(conv)
	}()
	tr := Translation{DataPoints: md.DataPointCount()}
	dst.Reset()
	dst.targetInfoLeft = targetInfoBudget(tr.DataPoints)
	annots, err := conv.FromMetrics(ctx, md, s.s)
	if ctx.Err() != nil {
		dst.Reset()
		return tr, fmt.Errorf("%w: %v", writeerr.ErrUnavailable, ctx.Err())
	}
	if err != nil {
		tr.Refused, tr.Refusals = refusedPoints(md, err)
	}
	if dst.targetInfoLeft < 0 {
		tr.Refusals = joinMessages(tr.Refusals, fmt.Sprintf("target_info is written every %s from a resource's first point to its last, "+
			"and this request's points span too long: %d samples of target_info were written, the rest were not",
			s.s.LookbackDelta/2, targetInfoBudget(tr.DataPoints)))
	}
	tr.Warnings, _ = annots.AsStrings("", 0, 0)
	tr.Samples = dst.NumPoints()
	dst.group()
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
