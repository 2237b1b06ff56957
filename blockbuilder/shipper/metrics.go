// Shipper metrics, one set for all tenants.

package shipper

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the shipper metrics of every tenant, labelled by tenant.
// Make one per process with NewMetrics and pass it to every Shipper.
type Metrics struct {
	uploads     *prometheus.CounterVec // tenant, result
	failures    *prometheus.CounterVec // tenant
	pending     *prometheus.GaugeVec   // tenant
	lastSuccess *prometheus.GaugeVec   // tenant
	bytes       *prometheus.CounterVec // tenant
	inProgress  *prometheus.GaugeVec   // tenant

	// oldestPending is the creation time of each tenant's oldest block not
	// yet uploaded. The age is computed when scraped, so it keeps growing
	// between Syncs instead of freezing at the last one.
	mu            sync.Mutex
	oldestPending map[string]time.Time
	oldestDesc    *prometheus.Desc
}

// NewMetrics registers the shipper metrics on reg (which may be nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		uploads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_shipper_uploads_total",
			Help: "Block uploads attempted, by result (success, failure).",
		}, []string{"tenant", "result"}),
		failures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_shipper_upload_failures_total",
			Help: "Block uploads that failed; the block stays pending and is retried.",
		}, []string{"tenant"}),
		pending: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_shipper_pending_blocks",
			Help: "Finished blocks on local disk not yet uploaded.",
		}, []string{"tenant"}),
		lastSuccess: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_shipper_last_successful_upload_timestamp_seconds",
			Help: "Unix time of the last block upload that succeeded.",
		}, []string{"tenant"}),
		bytes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_shipper_uploaded_bytes_total",
			Help: "Bytes of block files (chunks, index, tombstones, meta.json) uploaded.",
		}, []string{"tenant"}),
		// A tenant's uploads run one at a time, so one timestamp a tenant
		// says it all; a bucket that hangs shows as one growing old.
		inProgress: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_shipper_upload_in_progress_since_timestamp_seconds",
			Help: "Unix time the block upload in progress (its existence check included) started; 0 when none is.",
		}, []string{"tenant"}),
		oldestPending: map[string]time.Time{},
		oldestDesc: prometheus.NewDesc("strata_shipper_oldest_pending_block_age_seconds",
			"Time since the oldest block not yet uploaded was cut; 0 when none is pending.",
			[]string{"tenant"}, nil),
	}
	if reg != nil {
		reg.MustRegister(oldestCollector{m})
	}
	return m
}

// setPending records a tenant's backlog: how many blocks, and when the
// oldest was cut (zero time when none).
func (m *Metrics) setPending(tenant string, n int, oldest time.Time) {
	m.pending.WithLabelValues(tenant).Set(float64(n))
	// Present, at 0, from the tenant's first look on: an alert on it then
	// sees every tenant.
	m.inProgress.WithLabelValues(tenant)
	m.mu.Lock()
	m.oldestPending[tenant] = oldest
	m.mu.Unlock()
}

func (m *Metrics) uploaded(tenant string, bytes int64, now time.Time) {
	m.uploads.WithLabelValues(tenant, "success").Inc()
	m.bytes.WithLabelValues(tenant).Add(float64(bytes))
	m.lastSuccess.WithLabelValues(tenant).Set(float64(now.UnixNano()) / 1e9)
}

func (m *Metrics) uploadStarted(tenant string, start time.Time) {
	m.inProgress.WithLabelValues(tenant).Set(float64(start.UnixNano()) / 1e9)
}

func (m *Metrics) uploadEnded(tenant string) { m.inProgress.WithLabelValues(tenant).Set(0) }

func (m *Metrics) failed(tenant string) {
	m.uploads.WithLabelValues(tenant, "failure").Inc()
	m.failures.WithLabelValues(tenant).Inc()
}

// forget drops a tenant's series, when its TSDB is closed for good.
func (m *Metrics) forget(tenant string) {
	l := prometheus.Labels{"tenant": tenant}
	m.uploads.DeletePartialMatch(l)
	m.failures.DeletePartialMatch(l)
	m.pending.DeletePartialMatch(l)
	m.lastSuccess.DeletePartialMatch(l)
	m.bytes.DeletePartialMatch(l)
	m.inProgress.DeletePartialMatch(l)
	m.mu.Lock()
	delete(m.oldestPending, tenant)
	m.mu.Unlock()
}

// oldestCollector exposes strata_shipper_oldest_pending_block_age_seconds.
type oldestCollector struct{ m *Metrics }

func (c oldestCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.oldestDesc }

func (c oldestCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	for tenant, oldest := range c.m.oldestPending {
		age := 0.0
		if !oldest.IsZero() {
			age = max(now.Sub(oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(c.m.oldestDesc, prometheus.GaugeValue, age, tenant)
	}
}
