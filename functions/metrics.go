package functions

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratametrics/strata/remotewrite"
)

type metrics struct {
	requests        *prometheus.CounterVec
	written         *prometheus.CounterVec
	relabelDropped  *prometheus.CounterVec
	haDropped       *prometheus.CounterVec
	duration        prometheus.Histogram
	forwardDuration *prometheus.HistogramVec
	forwardErrors   *prometheus.CounterVec
	forwards        *prometheus.CounterVec
	lateForwards    *prometheus.CounterVec
	forwardedBytes  *prometheus.CounterVec
	// forwardedBytesBy are its series by remotewrite.Encoding, resolved
	// once: every part adds to one.
	forwardedBytesBy   [2]prometheus.Counter
	endpointUp         *prometheus.GaugeVec
	quorumFailures     prometheus.Counter
	minorityRejections prometheus.Counter
	// tenants are the tenants with series of their own; the others are
	// counted as "unknown".
	tenants *recentTenants[struct{}]
}

// tenantMetricsTTL is how long a tenant's series outlive its last request.
const tenantMetricsTTL = 10 * time.Minute

func newMetrics(reg prometheus.Registerer, maxTenants int) *metrics {
	m := &metrics{
		tenants: newRecentTenants[struct{}](maxTenants),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_router_requests_total",
			Help: "Remote-write requests by tenant and HTTP status code.",
		}, []string{"tenant", "code"}),
		relabelDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_router_relabel_dropped_total",
			Help: "Series and samples (plus histogram samples) the tenant's metric_relabel_configs dropped: accepted, not stored.",
		}, []string{"tenant", "type"}),
		haDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_router_ha_dropped_samples_total",
			Help: "Samples (plus histogram samples) of HA replicas not elected for their cluster: answered 202, not stored.",
		}, []string{"tenant"}),
		written: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_router_written_total",
			Help: "Samples, histogram samples and exemplars written to a quorum, by tenant.",
		}, []string{"tenant", "type"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:                        "strata_router_request_duration_seconds",
			Help:                        "Time to answer a remote-write request.",
			Buckets:                     prometheus.DefBuckets,
			NativeHistogramBucketFactor: 1.1,
		}),
		forwardDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                        "strata_router_forward_duration_seconds",
			Help:                        "Time of a forward to a block builder.",
			Buckets:                     prometheus.DefBuckets,
			NativeHistogramBucketFactor: 1.1,
		}, []string{"endpoint"}),
		forwardErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_router_forward_errors_total",
			Help: "Failed forwards by block builder and reason (transport, backoff, overloaded, behind, status code).",
		}, []string{"endpoint", "reason"}),
		forwards: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_router_forwards_total",
			Help: "Parts of requests sent to block builders, by block builder and result: written, refused (some or all series, for good) or failed (no answer, or one that asks to retry).",
		}, []string{"endpoint", "result"}),
		lateForwards: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_router_forwards_after_quorum_total",
			Help: "Of strata_router_forwards_total, those answered after their request was (a quorum had written it): refused or failed ones are series a replica is missing.",
		}, []string{"endpoint", "result"}),
		forwardedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_router_forwarded_bytes_total",
			Help: "Bytes of the bodies sent to block builders, by Content-Encoding: snappy, or x-snappy-framed (STRATA_FORWARD_FRAMED).",
		}, []string{"encoding"}),
		endpointUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_router_endpoint_up",
			Help: "0 while a block builder is backed off after failures.",
		}, []string{"endpoint"}),
		quorumFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_router_quorum_failures_total",
			Help: "Requests answered 503 because some series missed quorum.",
		}),
		minorityRejections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_router_minority_rejections_total",
			Help: "Series stored on a quorum that a minority of replicas refused, answering before or after the request was answered (typically a replica catching up).",
		}),
	}
	for _, enc := range []remotewrite.Encoding{remotewrite.Snappy, remotewrite.SnappyFramed} {
		m.forwardedBytesBy[enc] = m.forwardedBytes.WithLabelValues(enc.String())
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.written, m.relabelDropped, m.haDropped, m.duration, m.forwardDuration, m.forwardErrors, m.forwards, m.lateForwards, m.forwardedBytes, m.endpointUp, m.quorumFailures, m.minorityRejections)
	}
	return m
}

// forgetEndpoint drops the series of a block builder that left the
// hashrings.
func (m *metrics) forgetEndpoint(addr string) {
	m.endpointUp.DeleteLabelValues(addr)
	m.forwardDuration.DeleteLabelValues(addr)
	for _, v := range []*prometheus.CounterVec{m.forwardErrors, m.forwards, m.lateForwards} {
		v.DeletePartialMatch(prometheus.Labels{"endpoint": addr})
	}
}

func (m *metrics) observe(tenant string, out outcome, d time.Duration, now time.Time) {
	m.duration.Observe(d.Seconds())
	if tenant == "" {
		tenant = "unknown"
	} else if _, ok := m.tenants.get(tenant, now, func() struct{} { return struct{}{} }); !ok {
		tenant = "unknown"
	}
	m.requests.WithLabelValues(tenant, strconv.Itoa(out.httpStatus())).Inc()
	if out.written.Samples > 0 {
		m.written.WithLabelValues(tenant, "float").Add(float64(out.written.Samples))
	}
	if out.written.Histograms > 0 {
		m.written.WithLabelValues(tenant, "histogram").Add(float64(out.written.Histograms))
	}
	if out.written.Exemplars > 0 {
		m.written.WithLabelValues(tenant, "exemplar").Add(float64(out.written.Exemplars))
	}
	if out.relabelDropped > 0 {
		m.relabelDropped.WithLabelValues(tenant, "series").Add(float64(out.relabelDropped))
		m.relabelDropped.WithLabelValues(tenant, "sample").Add(float64(out.relabelHeld.Samples + out.relabelHeld.Histograms))
	}
	if n := out.haHeld.Samples + out.haHeld.Histograms; n > 0 {
		m.haDropped.WithLabelValues(tenant).Add(float64(n))
	}
}

// sweep drops the series of tenants without a request since before.
func (m *metrics) sweep(before time.Time) {
	m.tenants.sweep(before, func(tenant string, _ struct{}) {
		l := prometheus.Labels{"tenant": tenant}
		m.requests.DeletePartialMatch(l)
		m.written.DeletePartialMatch(l)
		m.relabelDropped.DeletePartialMatch(l)
		m.haDropped.DeletePartialMatch(l)
	})
}
