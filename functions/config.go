package functions

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"

	"github.com/stratametrics/strata/internal/envconfig"
	"github.com/stratametrics/strata/internal/security"
	"github.com/stratametrics/strata/limits"
	"github.com/stratametrics/strata/otlp"
	"github.com/stratametrics/strata/shard"
	"github.com/stratametrics/strata/validation"
)

// Config of a router, read from STRATA_* environment variables.
type Config struct {
	// HTTPListen serves remote-write, /metrics and health.
	HTTPListen string `env:"HTTP_LISTEN" envDefault:":19291"`
	// HashringsFile is a Thanos hashrings.json, reloaded when it changes.
	HashringsFile string `env:"HASHRINGS_FILE"`
	// Endpoints is a one-hashring shortcut when there is no file.
	Endpoints []string `env:"ENDPOINTS"`
	// HashringReloadInterval is how often the hashrings file is checked.
	HashringReloadInterval time.Duration `env:"HASHRING_RELOAD_INTERVAL" envDefault:"5s"`
	// ReplicationFactor is the number of block builders each series is
	// written to; a write succeeds when RF/2+1 of them took it.
	ReplicationFactor int `env:"REPLICATION_FACTOR" envDefault:"1"`
	// HashringAlgorithm is the default for hashrings that name none.
	HashringAlgorithm string `env:"HASHRING_ALGORITHM" envDefault:"ketama"`
	// TenantHeader and DefaultTenant find the tenant of a request.
	TenantHeader  string `env:"TENANT_HEADER" envDefault:"THANOS-TENANT"`
	DefaultTenant string `env:"DEFAULT_TENANT" envDefault:"default-tenant"`
	// SplitTenantLabel, when set, sends each series carrying this label
	// to the tenant it names, without the label (Thanos'
	// --receive.split-tenant-label-name); one request may so write
	// several tenants. Series without it keep the request's tenant.
	SplitTenantLabel string `env:"SPLIT_TENANT_LABEL"`
	// TenantCertificateField, when set (organization, organizationalUnit
	// or commonName, as Thanos Receive's --receive.tenant-certificate-field),
	// takes the tenant from that field of the sender's verified client
	// certificate instead, whatever TenantHeader says: a sender
	// authenticated by mutual TLS (TLS.ClientCAFile) writes as its
	// certificate's tenant only. Bearer tokens limited to tenants are
	// checked against that tenant.
	TenantCertificateField validation.CertificateField `env:"TENANT_CERTIFICATE_FIELD"`
	// ShutdownDelay is how long `strata router` keeps serving after
	// SIGTERM with /-/ready answering 503, so that load balancers stop
	// sending before its listener closes. It serves at least until the
	// writes in flight at SIGTERM are answered.
	ShutdownDelay time.Duration `env:"SHUTDOWN_DELAY" envDefault:"5s"`
	// ShutdownTimeout bounds the whole shutdown: the delay, then the drain
	// of the requests still in flight.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"30s"`
	// ForwardTimeout bounds each request to a block builder.
	ForwardTimeout time.Duration `env:"FORWARD_TIMEOUT" envDefault:"5s"`
	// ForwardMaxInflight bounds the writes in flight to one block builder;
	// past it, the block builder is skipped for the write (as if it had
	// failed) until it catches up.
	ForwardMaxInflight int `env:"FORWARD_MAX_INFLIGHT" envDefault:"32"`
	// ForwardFramed sends block builders that take them (their answers
	// say so) parts as snappy framed streams: with more block builders
	// than the replication factor, each series is then compressed once
	// instead of once per replica, half the router's compression work,
	// for a third to three fifths more bytes between router and block
	// builders (small groups compress less well). Off where those bytes
	// cost more than CPU, across zones say.
	ForwardFramed bool `env:"FORWARD_FRAMED" envDefault:"true"`
	// EndpointBackoff is the first pause after a block builder fails; it
	// doubles on each failure up to EndpointMaxBackoff. Meanwhile writes do
	// not wait for it and a probe checks it in the background.
	EndpointBackoff    time.Duration `env:"ENDPOINT_BACKOFF" envDefault:"500ms"`
	EndpointMaxBackoff time.Duration `env:"ENDPOINT_MAX_BACKOFF" envDefault:"10s"`
	// LimitsFile holds per-tenant limit overrides (YAML), reloaded when it
	// changes.
	LimitsFile           string        `env:"LIMITS_FILE"`
	LimitsReloadInterval time.Duration `env:"LIMITS_RELOAD_INTERVAL" envDefault:"10s"`
	// Limits are the defaults for every tenant.
	Limits validation.Limits `envPrefix:"LIMIT_"`
	// OTLP is the translation of OTLP metrics for every tenant.
	OTLP otlp.Config `envPrefix:"OTLP_"`
	// HA is the HA-pair deduplication of every tenant.
	HA limits.HA `envPrefix:"HA_"`
	// KnownSeries is how many series the router remembers as validated,
	// with their hash, to skip decoding and checking their labels when
	// they come again (32 bytes each at most: the table grows as series
	// come, up to that many; 0 turns it off).
	// Size it to the active series the router sees, all tenants together.
	KnownSeries int `env:"KNOWN_SERIES" envDefault:"1048576"`
	// MetricsMaxTenants bounds the tenants with series of their own in the
	// router's metrics (those with a request in the last 10 minutes);
	// others are counted as tenant "unknown". Tenant IDs come from
	// senders, and made-up ones must not grow the metrics without bound.
	// 0 keeps no series per tenant.
	MetricsMaxTenants int `env:"METRICS_MAX_TENANTS" envDefault:"1000"`

	// TLS of the remote-write listener.
	TLS security.ServerConfig `envPrefix:"TLS_"`
	// BearerTokenFile, when set, requires writes to carry one of its
	// tokens (each optionally limited to some tenants).
	BearerTokenFile string `env:"BEARER_TOKEN_FILE"`
	// ForwardTLS is the TLS towards block builders: with it, every block
	// builder is reached over https (one written http:// in the hashrings
	// is refused); without it, those written https:// are reached over
	// https verified by the system's CAs, the others over http.
	ForwardTLS security.ClientConfig `envPrefix:"FORWARD_TLS_"`
	// ForwardBearerTokenFile holds the token sent to block builders.
	ForwardBearerTokenFile string `env:"FORWARD_BEARER_TOKEN_FILE"`
}

// DefaultConfig returns the defaults the env tags declare, for callers
// that build a Config in code.
func DefaultConfig() Config { return envconfig.Defaults[Config]() }

// Validate rejects a configuration that cannot work, naming the variable.
func (c *Config) Validate() error {
	switch {
	case c.HashringsFile == "" && len(c.Endpoints) == 0:
		return fmt.Errorf("set STRATA_HASHRINGS_FILE or STRATA_ENDPOINTS: the router needs block builders to write to")
	case c.HashringsFile != "" && len(c.Endpoints) > 0:
		return fmt.Errorf("set only one of STRATA_HASHRINGS_FILE and STRATA_ENDPOINTS")
	case c.ReplicationFactor < 1:
		return fmt.Errorf("STRATA_REPLICATION_FACTOR must be at least 1, got %d", c.ReplicationFactor)
	case c.TenantHeader == "":
		return fmt.Errorf("STRATA_TENANT_HEADER must not be empty")
	case c.ShutdownDelay < 0 || c.ShutdownTimeout <= c.ShutdownDelay:
		return fmt.Errorf("STRATA_SHUTDOWN_DELAY must not be negative and must be less than STRATA_SHUTDOWN_TIMEOUT, which also bounds the drain after it")
	case c.ForwardTimeout <= 0:
		return fmt.Errorf("STRATA_FORWARD_TIMEOUT must be positive")
	case c.KnownSeries < 0 || c.KnownSeries > 1<<30:
		return fmt.Errorf("STRATA_KNOWN_SERIES must be between 0 (off) and %d, got %d", 1<<30, c.KnownSeries)
	case c.MetricsMaxTenants < 0:
		return fmt.Errorf("STRATA_METRICS_MAX_TENANTS must not be negative (0 keeps no series per tenant)")
	case c.ForwardMaxInflight < 1:
		return fmt.Errorf("STRATA_FORWARD_MAX_INFLIGHT must be at least 1")
	case c.EndpointBackoff <= 0 || c.EndpointMaxBackoff < c.EndpointBackoff:
		return fmt.Errorf("STRATA_ENDPOINT_BACKOFF must be positive and at most STRATA_ENDPOINT_MAX_BACKOFF")
	case c.HashringReloadInterval <= 0 || c.LimitsReloadInterval <= 0:
		return fmt.Errorf("STRATA_HASHRING_RELOAD_INTERVAL and STRATA_LIMITS_RELOAD_INTERVAL must be positive")
	}
	if err := validation.ValidateTenant(c.DefaultTenant); err != nil {
		return fmt.Errorf("STRATA_DEFAULT_TENANT: %w", err)
	}
	if c.SplitTenantLabel != "" && (!model.UTF8Validation.IsValidLabelName(c.SplitTenantLabel) || c.SplitTenantLabel == model.MetricNameLabel) {
		return fmt.Errorf("STRATA_SPLIT_TENANT_LABEL: %q is not a label name that can name a tenant", c.SplitTenantLabel)
	}
	if err := c.TenantCertificateField.CheckConfig(c.TLS.ClientCAFile != ""); err != nil {
		return err
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("STRATA_LIMIT_*: %w", err)
	}
	if err := c.OTLP.Validate(); err != nil {
		return fmt.Errorf("STRATA_OTLP_*: %w", err)
	}
	if err := c.HA.Validate(); err != nil {
		return fmt.Errorf("STRATA_HA_*: %w", err)
	}
	return nil
}

// Quorum is the number of replicas that must take a write: a majority.
// RF=2 needs both: with one of two, a second failure would lose the only
// copy, so a pair is only worth having when both hold the data.
func Quorum(rf int) int { return rf/2 + 1 }

func (c *Config) shardOptions() shard.Options {
	return shard.Options{ReplicationFactor: c.ReplicationFactor, DefaultAlgorithm: c.HashringAlgorithm, ReloadInterval: c.HashringReloadInterval, TLS: c.ForwardTLS.On()}
}
