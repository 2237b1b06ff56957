package otlp

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/validation"
	"github.com/stratametrics/strata/writeerr"
)

// FuzzDecode runs any body the way a receiver does: decompressed with
// each encoding, parsed in both formats, translated, and the translation
// parsed as the remote-write path parses it. Nothing may panic, and what
// the translator writes must be a request the remote-write path reads.
func FuzzDecode(f *testing.F) {
	md := everyType()
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	addSum(ms, "jobs.done", true, pmetric.AggregationTemporalityDelta, 2)
	ex := ms.At(1).Sum().DataPoints().At(0).Exemplars().AppendEmpty()
	ex.SetTimestamp(at(0))
	ex.SetDoubleValue(1)
	ex.FilteredAttributes().PutStr("user", "u1")
	pb := exportBody(f, md, Protobuf)
	js := exportBody(f, md, JSON)
	for _, seed := range [][]byte{
		pb, js, gzipped(f, pb), zstded(f, js), zlibbed(f, pb), deflated(f, js),
		exportBody(f, oneGauge(), Protobuf), exportBody(f, oneGauge(), JSON),
		{}, []byte("{}"),
		// Points 53 years apart: target_info would fill the span.
		exportBody(f, wideSpan(), Protobuf),
	} {
		f.Add(seed)
	}
	var tr Translator
	settings := DefaultConfig().Settings()
	limits := validation.DefaultLimits()
	f.Fuzz(func(t *testing.T, data []byte) {
		var raw, out remotewrite.Buffer
		for _, enc := range []string{"", "gzip", "zstd", "deflate"} {
			const limit = 1 << 20
			if err := Decompress(&raw, data, enc, limit); err != nil {
				if s := writeerr.HTTPStatus(err); s != http.StatusBadRequest && s != http.StatusRequestEntityTooLarge {
					t.Fatalf("Decompress %q: %v (status %d), want a 400 or 413", enc, err, s)
				}
				continue
			}
			if len(raw.B) > limit {
				t.Fatalf("Decompress %q: %d bytes out, over the limit of %d", enc, len(raw.B), limit)
			}
			for _, format := range []Format{Protobuf, JSON} {
				req, err := Unmarshal(format, raw.B)
				if err != nil {
					if writeerr.HTTPStatus(err) != http.StatusBadRequest {
						t.Fatalf("Unmarshal %s: %v, want a 400", format.name(), err)
					}
					continue
				}
				res, err := tr.Translate(context.Background(), req.Metrics(), settings, &out)
				if err != nil {
					t.Fatalf("Translate: %v", err)
				}
				if res.Refused < 0 || res.Refused > res.DataPoints {
					t.Fatalf("translation %+v: refused points outside 0 to %d", res, res.DataPoints)
				}
				checkTranslated(t, out.B, res, &limits)
			}
		}
	})
}

// checkTranslated reads every part of a translated request as the router
// and the block builders do.
func checkTranslated(t *testing.T, body []byte, res Translation, limits *validation.Limits) {
	var r remotewrite.Request
	if err := r.Parse(remotewrite.V2, body); err != nil {
		t.Fatalf("the translated request does not parse: %v", err)
	}
	var s remotewrite.Series
	var b labels.ScratchBuilder
	samples := 0
	for i := range r.NumSeries() {
		if err := r.Series(i, &s); err != nil {
			t.Fatalf("translated series %d: %v", i, err)
		}
		samples += len(s.Samples) + len(s.Histograms)
		// Refusing a series is fine (a label value too long, a point in
		// the future); failing to say so is not.
		if err := limits.CheckSeries(remotewrite.V2, &s, time.Now().UnixMilli()); err != nil {
			if st := writeerr.HTTPStatus(err); st != http.StatusBadRequest && st != http.StatusRequestEntityTooLarge {
				t.Fatalf("series %d refused with status %d: %v", i, st, err)
			}
		}
		for _, h := range s.Histograms {
			if _, _, err := remotewrite.DecodeHistogram(h); err != nil {
				t.Fatalf("translated series %d: %v", i, err)
			}
		}
		for _, e := range s.Exemplars {
			if _, err := r.DecodeExemplar(&b, e); err != nil {
				t.Fatalf("translated series %d: %v", i, err)
			}
		}
	}
	if samples != res.Samples {
		t.Fatalf("translation says %d samples, the request holds %d", res.Samples, samples)
	}
}

func wideSpan() pmetric.Metrics {
	md := pmetric.NewMetrics()
	g := addGauge(newResource(md), "g", map[time.Duration]float64{0: 1})
	g.Gauge().DataPoints().AppendEmpty().SetTimestamp(1_000_000)
	return md
}
