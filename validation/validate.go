// Package validation holds what a write must satisfy before it is
// stored: the per-request limits (body and decoded sizes, series, samples,
// labels, future timestamps), the rules every series must follow (labels
// sorted, unique, valid UTF-8, a metric name), tenant IDs and where a
// request's tenant comes from (a header, or a client certificate). The router
// and the block builders both check with it, remote-write and OTLP alike.
//
// The one thing to know before changing it: a series refused here is
// answered 400 or 413 and dropped by its sender for good, so a rule made
// stricter loses data that was accepted before; and CheckLabels sorts the
// labels in place, which the hash, the owners and the TSDB all rely on.
package validation

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stratametrics/strata/internal/envconfig"

	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/writeerr"
)

// Limits bound what one request may hold. The defaults never hurt a stock
// Prometheus (which sends at most a few thousand samples per request) and
// stop requests that would make a receiver allocate without bound.
type Limits struct {
	// MaxBodyBytes bounds the compressed body.
	MaxBodyBytes int `yaml:"max_body_bytes" env:"MAX_BODY_BYTES" envDefault:"16777216"`
	// MaxDecodedBytes bounds the body once decompressed; checked from the
	// snappy header before allocating.
	MaxDecodedBytes int `yaml:"max_decoded_bytes" env:"MAX_DECODED_BYTES" envDefault:"67108864"`
	// MaxSeriesPerRequest bounds the time series of one request.
	MaxSeriesPerRequest int `yaml:"max_series_per_request" env:"MAX_SERIES_PER_REQUEST" envDefault:"50000"`
	// MaxSamplesPerRequest bounds samples plus histogram samples.
	MaxSamplesPerRequest int `yaml:"max_samples_per_request" env:"MAX_SAMPLES_PER_REQUEST" envDefault:"100000"`
	// MaxLabelsPerSeries bounds the labels of a series.
	MaxLabelsPerSeries int `yaml:"max_labels_per_series" env:"MAX_LABELS_PER_SERIES" envDefault:"128"`
	// MaxLabelNameLength and MaxLabelValueLength bound label bytes.
	MaxLabelNameLength  int `yaml:"max_label_name_length" env:"MAX_LABEL_NAME_LENGTH" envDefault:"1024"`
	MaxLabelValueLength int `yaml:"max_label_value_length" env:"MAX_LABEL_VALUE_LENGTH" envDefault:"16384"`
	// MaxFutureSkew is how far past the receiver's clock a timestamp may
	// be; later samples are refused as invalid.
	MaxFutureSkew time.Duration `yaml:"max_future_skew" env:"MAX_FUTURE_SKEW" envDefault:"10m"`
}

// MaxDecodedBytesLimit bounds MaxDecodedBytes: a snappy block holds less
// than 4 GiB, and no remote-write request comes near 1 GiB.
const MaxDecodedBytesLimit = 1 << 30

// DefaultLimits returns the limits used when none are configured: those
// the envDefault tags declare.
func DefaultLimits() Limits { return envconfig.Defaults[Limits]() }

// Validate refuses limits that cannot work.
func (l Limits) Validate() error {
	for _, c := range []struct {
		name string
		v    int
	}{
		{"max_body_bytes", l.MaxBodyBytes},
		{"max_decoded_bytes", l.MaxDecodedBytes},
		{"max_series_per_request", l.MaxSeriesPerRequest},
		{"max_samples_per_request", l.MaxSamplesPerRequest},
		{"max_labels_per_series", l.MaxLabelsPerSeries},
		{"max_label_name_length", l.MaxLabelNameLength},
		{"max_label_value_length", l.MaxLabelValueLength},
	} {
		if c.v <= 0 {
			return fmt.Errorf("limit %s must be positive, got %d", c.name, c.v)
		}
	}
	if l.MaxDecodedBytes > MaxDecodedBytesLimit {
		return fmt.Errorf("limit max_decoded_bytes must be at most %d (1 GiB), got %d", MaxDecodedBytesLimit, l.MaxDecodedBytes)
	}
	if l.MaxFutureSkew < 0 {
		return fmt.Errorf("limit max_future_skew must not be negative, got %s", l.MaxFutureSkew)
	}
	return nil
}

// CheckSeries applies the rules every series must follow: CheckLabels and
// CheckSamples. The error wraps writeerr.ErrInvalid or
// writeerr.ErrTooLarge and names the series.
func (l *Limits) CheckSeries(v remotewrite.Version, s *remotewrite.Series, nowMs int64) error {
	if err := l.CheckLabels(s); err != nil {
		return err
	}
	return l.CheckSamples(v, s, nowMs)
}

// CheckLabels puts the labels in order of name (SortLabels) and checks
// them: unique, names and values non-empty valid UTF-8 within the length
// limits, a metric name. A caller that has seen the very same labels pass
// may skip it.
func (l *Limits) CheckLabels(s *remotewrite.Series) error {
	if len(s.Labels) == 0 {
		return fmt.Errorf("%w: series without labels", writeerr.ErrInvalid)
	}
	if len(s.Labels) > l.MaxLabelsPerSeries {
		return fmt.Errorf("%w: series %s has %d labels, the limit is %d", writeerr.ErrTooLarge, FormatLabels(s.Labels, 200), len(s.Labels), l.MaxLabelsPerSeries)
	}
	SortLabels(s.Labels)
	hasName := false
	utf8Known := s.LabelsUTF8()
	for i, lb := range s.Labels {
		switch {
		case len(lb.Name) == 0:
			return fmt.Errorf("%w: series %s has a label with an empty name", writeerr.ErrInvalid, FormatLabels(s.Labels, 200))
		case len(lb.Value) == 0:
			return fmt.Errorf("%w: series %s has label %q with an empty value", writeerr.ErrInvalid, FormatLabels(s.Labels, 200), clip(lb.Name, 64))
		case len(lb.Name) > l.MaxLabelNameLength:
			return fmt.Errorf("%w: series %s has a label name of %d bytes, the limit is %d", writeerr.ErrTooLarge, FormatLabels(s.Labels, 200), len(lb.Name), l.MaxLabelNameLength)
		case len(lb.Value) > l.MaxLabelValueLength:
			return fmt.Errorf("%w: series %s has label %q with a value of %d bytes, the limit is %d", writeerr.ErrTooLarge, FormatLabels(s.Labels, 200), clip(lb.Name, 64), len(lb.Value), l.MaxLabelValueLength)
		case !utf8Known && !utf8.Valid(lb.Name):
			return fmt.Errorf("%w: series %s has a label name that is not valid UTF-8", writeerr.ErrInvalid, FormatLabels(s.Labels, 200))
		case !utf8Known && !utf8.Valid(lb.Value):
			return fmt.Errorf("%w: series %s has label %q with a value that is not valid UTF-8", writeerr.ErrInvalid, FormatLabels(s.Labels, 200), clip(lb.Name, 64))
		}
		if i > 0 && bytes.Equal(s.Labels[i-1].Name, lb.Name) {
			return fmt.Errorf("%w: series %s has label %q twice", writeerr.ErrInvalid, FormatLabels(s.Labels, 200), clip(lb.Name, 64))
		}
		if string(lb.Name) == "__name__" {
			hasName = true
		}
	}
	if !hasName {
		return fmt.Errorf("%w: series %s has no metric name (__name__ label)", writeerr.ErrInvalid, FormatLabels(s.Labels, 200))
	}
	return nil
}

// SortLabels sorts labels by name, as Prometheus' own receiver does with
// what it is sent: the specifications ask senders to sort, but many
// (vmagent without -sortLabels, relabeling proxies, client libraries
// building label sets from maps) do not, and refusing their series would
// make them drop the data. Equal names stay next to each other, for
// CheckLabels to refuse. It tells whether the order changed. Sorted
// labels, nearly all there are, cost one comparison per label; the sort
// itself is allocation-free: an insertion sort for the few labels a
// series has, pdqsort past that, so that a hostile series of many labels
// in reverse cannot cost quadratic time.
func SortLabels(ls []remotewrite.Label) bool {
	i := 1
	for i < len(ls) && bytes.Compare(ls[i-1].Name, ls[i].Name) <= 0 {
		i++
	}
	if i >= len(ls) {
		return false
	}
	if len(ls) > 16 {
		slices.SortFunc(ls, func(a, b remotewrite.Label) int { return bytes.Compare(a.Name, b.Name) })
		return true
	}
	for ; i < len(ls); i++ {
		for j := i; j > 0 && bytes.Compare(ls[j-1].Name, ls[j].Name) > 0; j-- {
			ls[j-1], ls[j] = ls[j], ls[j-1]
		}
	}
	return true
}

// CheckSamples checks what the version requires of samples and histograms
// (2.0: one kind, at least one, or exemplars alone) and that no timestamp
// is beyond nowMs plus the allowed skew.
//
// 2.0 asks for a sample or a histogram in every series, but Prometheus'
// own sender puts each exemplar in a series of its own, without samples
// (and Prometheus' receiver refuses those, dropping the batch): such a
// series is taken, its exemplars stored with the series they belong to.
func (l *Limits) CheckSamples(v remotewrite.Version, s *remotewrite.Series, nowMs int64) error {
	if v == remotewrite.V2 {
		if len(s.Samples) == 0 && len(s.Histograms) == 0 && len(s.Exemplars) == 0 {
			return fmt.Errorf("%w: series %s has neither samples nor histograms", writeerr.ErrInvalid, FormatLabels(s.Labels, 200))
		}
		if len(s.Samples) > 0 && len(s.Histograms) > 0 {
			return fmt.Errorf("%w: series %s has both samples and histograms; 2.0 requires one series message for each", writeerr.ErrInvalid, FormatLabels(s.Labels, 200))
		}
	}
	maxT := nowMs + l.MaxFutureSkew.Milliseconds()
	for _, smp := range s.Samples {
		if smp.Timestamp > maxT {
			return futureError(s, smp.Timestamp, nowMs, l.MaxFutureSkew)
		}
	}
	for _, h := range s.Histograms {
		if h.Timestamp > maxT {
			return futureError(s, h.Timestamp, nowMs, l.MaxFutureSkew)
		}
	}
	return nil
}

func futureError(s *remotewrite.Series, t, nowMs int64, skew time.Duration) error {
	return fmt.Errorf("%w: series %s has a sample at %s, %s ahead of this receiver's clock, more than max_future_skew (%s) allows", writeerr.ErrInvalid,
		FormatLabels(s.Labels, 200), time.UnixMilli(t).UTC().Format(time.RFC3339), time.Duration(t-nowMs)*time.Millisecond, skew)
}

// FormatLabels renders labels as {a="b", ...} for messages, cut to about
// max bytes so that hostile input cannot make a huge error.
func FormatLabels(ls []remotewrite.Label, max int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if b.Len() > max {
			fmt.Fprintf(&b, "... %d more", len(ls)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(clip(l.Name, 64))
		b.WriteByte('=')
		b.WriteString(strconv.Quote(clip(l.Value, 128)))
	}
	b.WriteByte('}')
	return b.String()
}

func clip(b []byte, n int) string {
	if len(b) <= n {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return strings.ToValidUTF8(string(b[:n]), "\uFFFD") + "..."
}
