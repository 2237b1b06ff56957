// Package loadgen is Strata's load generator: it sends Prometheus
// remote-write (1.0 or 2.0), or OTLP/HTTP metrics, of realistic
// Kubernetes-style series to any endpoint, retries like Prometheus, and reports throughput, latency,
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
	"strconv"
	"strings"
	"time"

	"github.com/stratametrics/strata/internal/envconfig"
	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/validation"
)

// Config of a run. The env tags (prefix STRATA_ added by the strata
// command) mirror the command's flags.
type Config struct {
	// URL is the endpoint, e.g. http://host:19291/api/v1/receive. Over
	// OTLP, a URL without a path is sent to OTLPPath.
	URL string `env:"LOADGEN_URL"`
	// Tenant, when set, is sent in TenantHeader.
	Tenant       string `env:"LOADGEN_TENANT"`
	TenantHeader string `env:"LOADGEN_TENANT_HEADER" envDefault:"THANOS-TENANT"`
	// Tenants splits the series evenly over this many tenants, named
	// Tenant-0, Tenant-1, ... when more than one, each request carrying
	// one tenant's series, as each tenant's own sender would send them.
	Tenants int `env:"LOADGEN_TENANTS" envDefault:"1"`
	// Protocol is the remote-write version, 1 or 2, or OTLP ("otlp").
	Protocol Protocol `env:"LOADGEN_PROTOCOL" envDefault:"1"`
	// OTLPGzip gzips OTLP requests, as the OpenTelemetry Collector's
	// otlphttp exporter does unless told otherwise.
	OTLPGzip bool `env:"LOADGEN_OTLP_GZIP" envDefault:"true"`
	// OTLPInstance is the service.instance.id of OTLP requests, which
	// receivers that follow Prometheus store as the instance label of
	// every series (see StoredLabels).
	OTLPInstance string `env:"LOADGEN_OTLP_INSTANCE" envDefault:"loadgen-0"`
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
	// (2xx), from the senders' goroutines, concurrently. An OTLP answer
	// that refuses some points (partial success) does not say which: no
	// sample of that request is passed, though those not refused count
	// as acknowledged in the report.
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
	case c.Protocol != RemoteWrite1 && c.Protocol != RemoteWrite2 && c.Protocol != OTLP:
		return fmt.Errorf("protocol must be 1, 2 or otlp, got %s", c.Protocol)
	case c.Protocol == OTLP && c.OTLPInstance == "":
		return fmt.Errorf("otlp-instance must not be empty: it is every series' instance label")
	case c.Series < 1 || c.Series > metricsPerPod<<20:
		return fmt.Errorf("series must be between 1 and %d, got %d", metricsPerPod<<20, c.Series)
	case c.Tenants < 1 || c.Tenants > c.Series:
		return fmt.Errorf("tenants must be between 1 and the number of series (%d), got %d", c.Series, c.Tenants)
	case c.Tenants > 1 && c.Tenant == "":
		return fmt.Errorf("tenants: set tenant too, the prefix of the %d tenants' names", c.Tenants)
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
		if err := validation.ValidateTenant(c.Tenant); err != nil {
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
	if c.Protocol == RemoteWrite2 {
		return remotewrite.V2
	}
	return remotewrite.V1
}

// compression is the requests' Content-Encoding.
func (c *Config) compression() string {
	switch {
	case c.Protocol != OTLP:
		return "snappy"
	case c.OTLPGzip:
		return "gzip"
	}
	return "identity"
}

// target is the URL requests go to.
func (c *Config) target() string {
	if c.Protocol != OTLP {
		return c.URL
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Path != "" && u.Path != "/") {
		return c.URL
	}
	u.Path = OTLPPath
	return u.String()
}

// Protocol is what the generator sends: remote-write 1.0 or 2.0, by
// version number, or OTLP. As text (flags, the environment) it is "1", "2"
// or "otlp"; in JSON the version number, or "otlp".
type Protocol int

const (
	RemoteWrite1 Protocol = 1
	RemoteWrite2 Protocol = 2
	// OTLP is OTLP/HTTP metrics, protobuf. Its number is no version's,
	// so that a version mistyped in code is refused, not taken for it.
	OTLP Protocol = -1
)

func (p Protocol) String() string {
	if p == OTLP {
		return "otlp"
	}
	return strconv.Itoa(int(p))
}

// Set parses p as a flag does.
func (p *Protocol) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1":
		*p = RemoteWrite1
	case "2":
		*p = RemoteWrite2
	case "otlp":
		*p = OTLP
	default:
		return fmt.Errorf("protocol must be 1, 2 or otlp, got %q", s)
	}
	return nil
}

// UnmarshalText parses p as an environment variable does.
func (p *Protocol) UnmarshalText(b []byte) error { return p.Set(string(b)) }

// MarshalJSON keeps the remote-write versions numbers, as reports had
// them before OTLP.
func (p Protocol) MarshalJSON() ([]byte, error) {
	if p == OTLP {
		return []byte(`"otlp"`), nil
	}
	return strconv.AppendInt(nil, int64(p), 10), nil
}

func (p *Protocol) UnmarshalJSON(b []byte) error {
	if s, err := strconv.Unquote(string(b)); err == nil {
		return p.Set(s)
	}
	n, err := strconv.Atoi(string(b))
	if err != nil {
		return fmt.Errorf("protocol: %s is neither a version nor \"otlp\"", b)
	}
	*p = Protocol(n)
	return nil
}

// seriesPerRequest is the number of series in a full request.
func (c *Config) seriesPerRequest() int {
	return min(c.SamplesPerRequest/c.SamplesPerSeries, (c.Series+c.Tenants-1)/c.Tenants)
}

// tenantName is the name of tenant i of Tenants.
func (c *Config) tenantName(i int) string {
	if c.Tenants <= 1 {
		return c.Tenant
	}
	return c.Tenant + "-" + strconv.Itoa(i)
}

// tenantSlots is the slots of tenant i: [first, end).
func (c *Config) tenantSlots(i int) (first, end int) {
	return i * c.Series / c.Tenants, (i + 1) * c.Series / c.Tenants
}
