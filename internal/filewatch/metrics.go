package filewatch

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the reload metrics of watched files:
// <prefix>_last_reload_successful, <prefix>_last_reload_success_timestamp_seconds
// and <prefix>_reloads_total{result}, each with a file label in the
// shared family.
type Metrics struct {
	what           string
	lastSuccessful *prometheus.GaugeVec
	lastSuccessTS  *prometheus.GaugeVec
	reloads        *prometheus.CounterVec
}

func newMetrics(prefix, what string, labels ...string) *Metrics {
	return &Metrics{
		what: what,
		lastSuccessful: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: prefix + "_last_reload_successful",
			Help: fmt.Sprintf("Whether the last load of the %s succeeded (1) or failed and the last one loaded is still in use (0).", what),
		}, labels),
		lastSuccessTS: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: prefix + "_last_reload_success_timestamp_seconds",
			Help: fmt.Sprintf("Time of the last successful load of the %s.", what),
		}, labels),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "_reloads_total",
			Help: fmt.Sprintf("Loads of the %s, by result (success or failure); an unchanged file is not loaded again.", what),
		}, append(labels, "result")),
	}
}

// NewMetrics makes the metrics of one kind of file, named by prefix
// (e.g. strata_hashring_config); what names the file in their help.
func NewMetrics(prefix, what string) *Metrics {
	m := newMetrics(prefix, what)
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	return m
}

// Register adds the metrics to reg. Callers register once the first load
// succeeded, so that a failed start registers nothing and may be retried
// with the same registry.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register %s metrics: %w", m.what, err)
		}
	}
	return nil
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.lastSuccessful, m.lastSuccessTS, m.reloads}
}

// values are the label values of a file: none for a Metrics of one kind
// of file, its path in the shared family.
func values(file string) []string {
	if file == "" {
		return nil
	}
	return []string{file}
}

func (m *Metrics) loaded(file string, now time.Time) {
	m.lastSuccessful.WithLabelValues(values(file)...).Set(1)
	m.lastSuccessTS.WithLabelValues(values(file)...).Set(float64(now.UnixNano()) / 1e9)
	m.reloads.WithLabelValues(append(values(file), "success")...).Inc()
}

func (m *Metrics) failed(file string) {
	m.lastSuccessful.WithLabelValues(values(file)...).Set(0)
	m.reloads.WithLabelValues(append(values(file), "failure")...).Inc()
}

// shared holds every watched file of the process, by path, whoever
// watches it: the one place to alert on for any file that stopped
// loading.
var shared = newMetrics("strata_config_file", "configuration file", "file")

// Register adds the shared family (strata_config_file_*{file}) to reg.
func Register(reg prometheus.Registerer) error {
	for _, c := range shared.collectors() {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register strata_config_file metrics: %w", err)
		}
	}
	return nil
}
