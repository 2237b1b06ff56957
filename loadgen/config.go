// Package loadgen is Strata's load generator: it sends Prometheus
// remote-write (1.0 or 2.0) of realistic Kubernetes-style series to any
// endpoint, retries like Prometheus, and reports throughput, latency,
// errors and, given the receiving processes' IDs, the CPU seconds and peak
// memory they spent, so that the figure of merit is samples per CPU-second
// of the server, which holds on a busy machine where wall time does not.
//
// The one thing to know before changing it: the generator must never be
// the bottleneck. Requests are templates compressed once and patched in
// place (see template.go); keep anything per sample out of the send path.
package loadgen

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/stratametrics/strata/internal/envconfig"
	"github.com/stratametrics/strata/remotewrite"
)

// Config of a run. The env tags (prefix STRATA_ added by the strata
// command) mirror the command's flags.
type Config struct {
	// URL is the remote-write endpoint, e.g. http://host:19291/api/v1/receive.
	URL string `env:"LOADGEN_URL"`
	// Tenant, when set, is sent in TenantHeader.
	Tenant       string `env:"LOADGEN_TENANT"`
	TenantHeader string `env:"LOADGEN_TENANT_HEADER" envDefault:"THANOS-TENANT"`
	// Protocol is the remote-write version: 1 or 2.
	Protocol int `env:"LOADGEN_PROTOCOL" envDefault:"1"`
	// Series is the number of active series.
	Series int `env:"LOADGEN_SERIES" envDefault:"100000"`
	// SamplesPerRequest bounds the samples of a request (Prometheus'
	// default queue sends up to 2000); SamplesPerSeries is how many of them
	// each series has, at consecutive timestamps.
	SamplesPerRequest int `env:"LOADGEN_SAMPLES_PER_REQUEST" envDefault:"2000"`
	SamplesPerSeries  int `env:"LOADGEN_SAMPLES_PER_SERIES" envDefault:"1"`
	// Concurrency is the number of senders, each owning a fixed share of
	// the series so that a series' samples arrive in order, as
	// Prometheus' shards do.
	Concurrency int `env:"LOADGEN_CONCURRENCY" envDefault:"4"`
	// Duration is how long to measure (after the warm-up). 0 means until
	// Rounds are sent.
	Duration time.Duration `env:"LOADGEN_DURATION" envDefault:"30s"`
	// Rounds, when positive, stops each sender after sending every one of
	// its series this many times (SamplesPerSeries samples each time).
	Rounds int `env:"LOADGEN_ROUNDS"`
	// WarmupRounds are sent before measuring starts, so that series
	// creation is not counted as steady-state work.
	WarmupRounds int `env:"LOADGEN_WARMUP_ROUNDS"`
	// Churn is the fraction of series replaced by new ones (a new pod)
	// per minute of sample time.
	Churn float64 `env:"LOADGEN_CHURN"`
	// UnsortedLabels sends every series' labels in an order not sorted by
	// name (see SeriesID.UnsortedLabels), the same series otherwise: what
	// a receiver that sorts them on receipt spends doing so is then the
	// difference from a run without it. A receiver that requires sorted
	// labels, as remote-write says, refuses every request.
	UnsortedLabels bool `env:"LOADGEN_UNSORTED_LABELS"`
	// Interval is the time between a series' samples (scrape interval).
	Interval time.Duration `env:"LOADGEN_INTERVAL" envDefault:"15s"`
	// Backfill is how far in the past the first samples are. Timestamps
	// advance by Interval per round as fast as the receiver takes them but
	// never beyond now: a sender that catches up with the clock waits, so
	// Backfill bounds how far ahead of real time a run may go. 0 sends in
	// real time (Series/Interval samples per second).
	Backfill time.Duration `env:"LOADGEN_BACKFILL" envDefault:"24h"`
	// Pids are processes whose CPU time and peak RSS are reported.
	Pids []int `env:"LOADGEN_PIDS"`
	// Timeout bounds one request.
	Timeout time.Duration `env:"LOADGEN_TIMEOUT" envDefault:"30s"`
	// MinBackoff and MaxBackoff bound the pause before retrying a request
	// answered 5xx or 429 (doubling each time), as Prometheus' queue does.
	// A Retry-After header is honoured up to MaxBackoff.
	MinBackoff time.Duration `env:"LOADGEN_MIN_BACKOFF" envDefault:"30ms"`
	MaxBackoff time.Duration `env:"LOADGEN_MAX_BACKOFF" envDefault:"5s"`

	// Acked, if set, is called for every sample the receiver acknowledged
	// (2xx), from the senders' goroutines, concurrently.
	Acked func(id SeriesID, ts int64, value float64) `env:"-"`
	// OnMeasure, if set, is called once when the measured window starts
	// (after the warm-up), e.g. to start profiling the receiver then.
	OnMeasure func() `env:"-"`
	// Client sends the requests; nil means one made for the run.
	Client *http.Client `env:"-"`
	// Now is the clock (nil: time.Now).
	Now func() time.Time `env:"-"`
}

// DefaultConfig returns the defaults the env tags declare.
func DefaultConfig() Config { return envconfig.Defaults[Config]() }

// Validate rejects a configuration that cannot work, naming the setting.
func (c *Config) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return fmt.Errorf("url: set the remote-write endpoint to send to")
	case err != nil:
		return fmt.Errorf("url %q: %w", c.URL, err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("url %q: want http(s)://host:port/path", c.URL)
	case c.Protocol != 1 && c.Protocol != 2:
		return fmt.Errorf("protocol must be 1 or 2, got %d", c.Protocol)
	case c.Series < 1 || c.Series > metricsPerPod<<20:
		return fmt.Errorf("series must be between 1 and %d, got %d", metricsPerPod<<20, c.Series)
	case c.SamplesPerSeries < 1:
		return fmt.Errorf("samples-per-series must be at least 1, got %d", c.SamplesPerSeries)
	case c.SamplesPerRequest < c.SamplesPerSeries:
		return fmt.Errorf("samples-per-request (%d) must be at least samples-per-series (%d)", c.SamplesPerRequest, c.SamplesPerSeries)
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency must be at least 1, got %d", c.Concurrency)
	case c.Duration < 0 || c.Rounds < 0 || c.WarmupRounds < 0:
		return fmt.Errorf("duration, rounds and warmup-rounds must not be negative")
	case c.Duration == 0 && c.Rounds == 0:
		return fmt.Errorf("set a duration or a number of rounds: the run must end")
	case c.Churn < 0:
		return fmt.Errorf("churn must not be negative, got %g", c.Churn)
	case c.Interval < time.Millisecond:
		return fmt.Errorf("interval must be at least 1ms, got %s", c.Interval)
	case c.Backfill < 0:
		return fmt.Errorf("backfill must not be negative, got %s", c.Backfill)
	case c.Timeout <= 0:
		return fmt.Errorf("timeout must be positive, got %s", c.Timeout)
	case c.MinBackoff <= 0 || c.MaxBackoff < c.MinBackoff:
		return fmt.Errorf("min-backoff must be positive and at most max-backoff")
	}
	if c.Tenant != "" {
		if c.TenantHeader == "" {
			return fmt.Errorf("tenant-header must not be empty when a tenant is set")
		}
		if err := remotewrite.ValidateTenant(c.Tenant); err != nil {
			return fmt.Errorf("tenant: %w", err)
		}
	}
	for _, p := range c.Pids {
		if p <= 0 {
			return fmt.Errorf("pid must be positive, got %d", p)
		}
	}
	return nil
}

func (c *Config) version() remotewrite.Version {
	if c.Protocol == 2 {
		return remotewrite.V2
	}
	return remotewrite.V1
}

// seriesPerRequest is the number of series in a full request.
func (c *Config) seriesPerRequest() int {
	return min(c.SamplesPerRequest/c.SamplesPerSeries, c.Series)
}
