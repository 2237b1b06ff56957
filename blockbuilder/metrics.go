package blockbuilder

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

type metrics struct {
	requests  *prometheus.CounterVec
	appended  *prometheus.CounterVec
	rejected  *prometheus.CounterVec
	exDropped *prometheus.CounterVec
	duration  prometheus.Histogram
	// walRenewals has no tenant label: it outlives the tenant's close.
	walRenewals prometheus.Counter
	// elections counts the HA replicas this block builder elected.
	elections *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, b *BlockBuilder) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_blockbuilder_write_requests_total",
			Help: "Write requests by tenant and HTTP status code; tenant is \"unknown\" when it was not found or not opened.",
		}, []string{"tenant", "code"}),
		appended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_blockbuilder_appended_total",
			Help: "Samples, histogram samples and exemplars appended, by tenant.",
		}, []string{"tenant", "type"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_blockbuilder_rejected_series_total",
			Help: "Series refused by tenant and kind (invalid, limit, conflict).",
		}, []string{"tenant", "kind"}),
		exDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_blockbuilder_exemplars_dropped_total",
			Help: "Exemplars not stored: refused by the TSDB (out of order, too long) or sent while exemplar storage is off; they do not fail writes.",
		}, []string{"tenant"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:                        "strata_blockbuilder_write_duration_seconds",
			Help:                        "Time to serve a write request.",
			Buckets:                     prometheus.DefBuckets,
			NativeHistogramBucketFactor: 1.1,
		}),
		elections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_blockbuilder_ha_elections_total",
			Help: "HA replicas elected by this block builder, the first of a cluster (kind=first) or taking over from one silent for the failover timeout (kind=failover).",
		}, []string{"kind"}),
		walRenewals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_blockbuilder_wal_renewals_total",
			Help: "Tenants whose WAL failed to write (disk full, I/O error) and was dropped after their head was flushed into blocks; the log names the tenant.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.appended, m.rejected, m.exDropped, m.duration, m.walRenewals, m.elections,
			electedCollector{b: b, desc: prometheus.NewDesc("strata_blockbuilder_ha_elected_replica",
				"1 for the replica elected for each (tenant, cluster) of HA-paired senders whose election this block builder owns.",
				[]string{"tenant", "cluster", "replica"}, nil)},
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "strata_blockbuilder_open_tenants",
				Help: "Tenants whose TSDB is open.",
			}, func() float64 { return float64(len(b.openTenants())) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "strata_blockbuilder_max_tenants",
				Help: "STRATA_MAX_TENANTS: writes that would open one more tenant are refused (0: no bound).",
			}, func() float64 { return float64(b.cfg.MaxTenants) }),
			tenantLimitsCollector{b: b, maxSeries: prometheus.NewDesc("strata_blockbuilder_max_series_per_tenant",
				"Each open tenant's max_series_per_tenant (the limits file, or STRATA_MAX_SERIES_PER_TENANT): its new series are refused once its head holds this many (0: no bound).",
				[]string{"tenant"}, nil)},
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "strata_blockbuilder_ready",
				Help: "1 when the block builder takes writes.",
			}, func() float64 {
				if b.Ready() {
					return 1
				}
				return 0
			}),
		)
	}
	return m
}

// tenantLimitsCollector exports the limits of the open tenants: their
// number is bounded (STRATA_MAX_TENANTS), tenant IDs of refused writes are
// never seen here.
type tenantLimitsCollector struct {
	b         *BlockBuilder
	maxSeries *prometheus.Desc
}

func (c tenantLimitsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.maxSeries }

func (c tenantLimitsCollector) Collect(ch chan<- prometheus.Metric) {
	set := c.b.limits.Set()
	for _, t := range c.b.openTenants() {
		ch <- prometheus.MustNewConstMetric(c.maxSeries, prometheus.GaugeValue, float64(set.For(t.id).MaxSeriesPerTenant), t.id)
	}
}

// forget drops a closed tenant's series.
func (m *metrics) forget(tenant string) {
	l := prometheus.Labels{"tenant": tenant}
	m.requests.DeletePartialMatch(l)
	m.appended.DeletePartialMatch(l)
	m.rejected.DeletePartialMatch(l)
	m.exDropped.DeletePartialMatch(l)
}

func (m *metrics) observe(tenant string, status int, res appendResult, d time.Duration) {
	m.duration.Observe(d.Seconds())
	if tenant == "" {
		tenant = "unknown"
	}
	m.requests.WithLabelValues(tenant, strconv.Itoa(status)).Inc()
	if res.written.Samples > 0 {
		m.appended.WithLabelValues(tenant, "float").Add(float64(res.written.Samples))
	}
	if res.written.Histograms > 0 {
		m.appended.WithLabelValues(tenant, "histogram").Add(float64(res.written.Histograms))
	}
	if res.written.Exemplars > 0 {
		m.appended.WithLabelValues(tenant, "exemplar").Add(float64(res.written.Exemplars))
	}
	for _, r := range res.rejected {
		m.rejected.WithLabelValues(tenant, r.Kind).Inc()
	}
	if res.exemplarsDropped > 0 {
		m.exDropped.WithLabelValues(tenant).Add(float64(res.exemplarsDropped))
	}
}

// TSDBGatherer gathers the Prometheus TSDB metrics (head series, samples
// appended, WAL size, compactions, ...) of every open tenant, each with a
// tenant label. Each tenant's TSDB registers on a registry of its own, so
// tenants can close and reopen without clashing registrations.
func (b *BlockBuilder) TSDBGatherer() prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		byName := map[string]*dto.MetricFamily{}
		var order []string
		for _, t := range b.openTenants() {
			mfs, err := t.reg.Gather()
			if err != nil {
				return nil, err
			}
			for _, mf := range mfs {
				for _, m := range mf.Metric {
					m.Label = append(m.Label, &dto.LabelPair{Name: proto.String("tenant"), Value: proto.String(t.id)})
				}
				if have, ok := byName[mf.GetName()]; ok {
					have.Metric = append(have.Metric, mf.Metric...)
					continue
				}
				byName[mf.GetName()] = mf
				order = append(order, mf.GetName())
			}
		}
		out := make([]*dto.MetricFamily, 0, len(order))
		for _, n := range order {
			out = append(out, byName[n])
		}
		return out, nil
	})
}
