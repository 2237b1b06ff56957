package blockbuilder

import (
	"fmt"
	"os"
	"time"

	"github.com/prometheus/common/model"

	"github.com/stratametrics/strata/bucket"
	"github.com/stratametrics/strata/internal/envconfig"
	"github.com/stratametrics/strata/internal/security"
	"github.com/stratametrics/strata/limits"
	"github.com/stratametrics/strata/otlp"
	"github.com/stratametrics/strata/validation"
)

// Config of a block builder, read from STRATA_* environment variables.
type Config struct {
	// HTTPListen serves remote-write, the query API, /metrics and health.
	HTTPListen string `env:"HTTP_LISTEN" envDefault:":19291"`
	// GRPCListen serves Thanos' StoreAPI, as Thanos Receive does on 10901.
	GRPCListen string `env:"GRPC_LISTEN" envDefault:":10901"`
	// DataDir holds one TSDB per tenant, in <DataDir>/<tenant>.
	DataDir string `env:"DATA_DIR" envDefault:"./data"`
	// BlockDuration is the length of a block, aligned like Prometheus.
	BlockDuration time.Duration `env:"BLOCK_DURATION" envDefault:"2h"`
	// ReplicaLabel and ReplicaName form the external label that tells this
	// block builder's blocks from its replicas' (Thanos Query deduplicates
	// on it). The name defaults to the host (pod) name.
	ReplicaLabel string `env:"REPLICA_LABEL" envDefault:"receive_replica"`
	ReplicaName  string `env:"REPLICA_NAME"`
	// TenantLabel is the external label that names the tenant.
	TenantLabel string `env:"TENANT_LABEL" envDefault:"tenant_id"`
	// TenantHeader and DefaultTenant find the tenant of a request.
	TenantHeader  string `env:"TENANT_HEADER" envDefault:"THANOS-TENANT"`
	DefaultTenant string `env:"DEFAULT_TENANT" envDefault:"default-tenant"`
	// TenantCertificateField, when set (organization, organizationalUnit
	// or commonName, as Thanos Receive's --receive.tenant-certificate-field),
	// takes the tenant of writes sent straight to the block builder from
	// that field of the sender's verified client certificate instead,
	// whatever TenantHeader says; it needs mutual TLS (TLS.ClientCAFile).
	// Writes forwarded by a router keep the tenant the router resolved
	// (forwarding.HeaderForwardedTenant); queries keep TenantHeader.
	TenantCertificateField validation.CertificateField `env:"TENANT_CERTIFICATE_FIELD"`
	// ExternalLabels are added to every block's labels, "k=v,k=v".
	ExternalLabels map[string]string `env:"EXTERNAL_LABELS" envKeyValSeparator:"="`
	// OutOfOrderWindow accepts samples this much older than a series'
	// newest; 0 refuses out-of-order samples, as Thanos does by default.
	// Per tenant in the limits file too, as are MaxExemplars and
	// MaxSeriesPerTenant.
	OutOfOrderWindow time.Duration `env:"OUT_OF_ORDER_WINDOW" envDefault:"0s"`
	// MaxExemplars is the size of each tenant's exemplar ring; 0 disables
	// exemplar storage. The ring is allocated whole with the tenant's
	// first exemplar (about 64 bytes an exemplar), so it is a cost per
	// tenant that sends exemplars.
	MaxExemplars int64 `env:"MAX_EXEMPLARS" envDefault:"10000"`
	// HeadStripeSize is the number of stripes (locks and maps) of each
	// tenant's series table: a cost of about 256 bytes each per tenant
	// (Prometheus' 16384 stripes, sized for one TSDB per process, would
	// cost 4 MiB per tenant). A power of two.
	HeadStripeSize int `env:"HEAD_STRIPE_SIZE" envDefault:"256"`
	// TenantIdleTimeout flushes and uploads a tenant that had no write
	// for this long, so memory follows the active tenants; it is closed
	// once every block of it is in the bucket.
	TenantIdleTimeout time.Duration `env:"TENANT_IDLE_TIMEOUT" envDefault:"1h"`
	// MaxTenants bounds the tenants open at once (0: no bound). Each costs
	// about 0.7 MB and three file descriptors even with one series, so
	// without a bound a sender making up tenant IDs would exhaust both.
	// A write that would open one more is answered 503 until an idle
	// tenant closes (TenantIdleTimeout); tenants found on disk at start
	// are always opened, so that nothing written is left behind.
	MaxTenants int `env:"MAX_TENANTS" envDefault:"1000"`
	// MaxSeriesPerTenant bounds the series in a tenant's head (0: no
	// bound), so that a sender making up series cannot take the memory of
	// every tenant: a new series past it is refused (413, the sender drops
	// it) while the series already in the head keep being written. The
	// head drops series that stopped at each block cut.
	MaxSeriesPerTenant int `env:"MAX_SERIES_PER_TENANT" envDefault:"5000000"`
	// LocalRetention keeps uploaded blocks on disk this long for queries;
	// a block is never deleted before it is uploaded.
	LocalRetention time.Duration `env:"LOCAL_RETENTION" envDefault:"6h"`
	// UploadInterval is how often finished blocks are cut and uploaded.
	// A tenant whose upload failed is retried after it, then after twice
	// as long with each further failure, up to 5m (with jitter).
	UploadInterval time.Duration `env:"UPLOAD_INTERVAL" envDefault:"30s"`
	// FlushTimeout bounds the flush and upload on shutdown: failed
	// uploads are retried with backoff until it passes, so a bucket away
	// for less than it delays the stop instead of leaving blocks behind.
	// Past it, the process exits 1 with the blocks on disk, uploaded by
	// the next start on that data directory. Keep it below the pod's
	// termination grace period.
	FlushTimeout time.Duration `env:"FLUSH_TIMEOUT" envDefault:"5m"`
	// WALCompression compresses the write-ahead log with snappy.
	WALCompression bool `env:"WAL_COMPRESSION" envDefault:"false"`

	Bucket bucket.Config
	Limits validation.Limits `envPrefix:"LIMIT_"`
	// HAMaxClusters bounds the (tenant, cluster) pairs of HA-paired
	// senders whose elections one block builder holds.
	HAMaxClusters int `env:"HA_MAX_CLUSTERS" envDefault:"10000"`
	// LimitsFile holds per-tenant overrides of the limits, the OTLP
	// options and the settings above marked so (YAML, the routers' file),
	// reloaded when it changes.
	LimitsFile           string        `env:"LIMITS_FILE"`
	LimitsReloadInterval time.Duration `env:"LIMITS_RELOAD_INTERVAL" envDefault:"10s"`
	// OTLP is the translation of OTLP metrics sent straight to the block
	// builder.
	OTLP otlp.Config `envPrefix:"OTLP_"`

	// TLS of the HTTP listener.
	TLS security.ServerConfig `envPrefix:"TLS_"`
	// BearerTokenFile, when set, requires writes to carry one of its
	// tokens (the router sends STRATA_FORWARD_BEARER_TOKEN_FILE's).
	BearerTokenFile string `env:"BEARER_TOKEN_FILE"`
}

// tenantLimits are the limits of a tenant the limits file does not name,
// and the base it is read on.
func (c *Config) tenantLimits() limits.Tenant {
	return limits.Tenant{
		Limits: c.Limits, OTLP: c.OTLP,
		OutOfOrderWindow: c.OutOfOrderWindow, MaxSeriesPerTenant: c.MaxSeriesPerTenant, MaxExemplars: c.MaxExemplars,
	}
}

// DefaultConfig returns the defaults the env tags declare, for callers
// that build a Config in code.
func DefaultConfig() Config { return envconfig.Defaults[Config]() }

// Validate rejects a configuration that cannot work, naming the variable.
func (c *Config) Validate() error {
	if c.ReplicaName == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			return fmt.Errorf("STRATA_REPLICA_NAME is empty and the host name is unknown: %v", err)
		}
		c.ReplicaName = host
	}
	switch {
	case c.DataDir == "":
		return fmt.Errorf("STRATA_DATA_DIR must be set")
	case c.BlockDuration < time.Minute:
		return fmt.Errorf("STRATA_BLOCK_DURATION must be at least 1m, got %s", c.BlockDuration)
	case c.BlockDuration%time.Minute != 0:
		return fmt.Errorf("STRATA_BLOCK_DURATION must be whole minutes, got %s", c.BlockDuration)
	case c.ReplicaLabel == "" || c.TenantLabel == "":
		return fmt.Errorf("STRATA_REPLICA_LABEL and STRATA_TENANT_LABEL must not be empty")
	case c.ReplicaLabel == c.TenantLabel:
		return fmt.Errorf("STRATA_REPLICA_LABEL and STRATA_TENANT_LABEL must differ, both are %q", c.ReplicaLabel)
	case c.TenantHeader == "":
		return fmt.Errorf("STRATA_TENANT_HEADER must not be empty")
	case c.OutOfOrderWindow < 0:
		return fmt.Errorf("STRATA_OUT_OF_ORDER_WINDOW must not be negative")
	case c.MaxTenants < 0 || c.MaxSeriesPerTenant < 0:
		return fmt.Errorf("STRATA_MAX_TENANTS and STRATA_MAX_SERIES_PER_TENANT must not be negative")
	case c.HAMaxClusters < 1:
		return fmt.Errorf("STRATA_HA_MAX_CLUSTERS must be at least 1")
	case c.MaxExemplars < 0:
		return fmt.Errorf("STRATA_MAX_EXEMPLARS must not be negative")
	case c.HeadStripeSize < 1 || c.HeadStripeSize&(c.HeadStripeSize-1) != 0:
		return fmt.Errorf("STRATA_HEAD_STRIPE_SIZE must be a power of two, got %d", c.HeadStripeSize)
	case c.TenantIdleTimeout <= 0 || c.UploadInterval <= 0 || c.FlushTimeout <= 0 || c.LimitsReloadInterval <= 0:
		return fmt.Errorf("STRATA_TENANT_IDLE_TIMEOUT, STRATA_UPLOAD_INTERVAL, STRATA_FLUSH_TIMEOUT and STRATA_LIMITS_RELOAD_INTERVAL must be positive")
	case c.LocalRetention < c.BlockDuration:
		return fmt.Errorf("STRATA_LOCAL_RETENTION (%s) must be at least STRATA_BLOCK_DURATION (%s)", c.LocalRetention, c.BlockDuration)
	}
	if err := validation.ValidateTenant(c.DefaultTenant); err != nil {
		return fmt.Errorf("STRATA_DEFAULT_TENANT: %w", err)
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
	for k, v := range c.ExternalLabels {
		switch {
		case k == c.ReplicaLabel || k == c.TenantLabel:
			return fmt.Errorf("STRATA_EXTERNAL_LABELS: %q is set by the block builder itself", k)
		case !model.LegacyValidation.IsValidLabelName(k) || v == "":
			return fmt.Errorf("STRATA_EXTERNAL_LABELS: invalid label %q=%q", k, v)
		}
	}
	if err := c.Bucket.Validate(); err != nil {
		return err
	}
	return nil
}

// externalLabels are the labels of every block of tenant: the Thanos
// meta.json labels and the StoreAPI's external labels.
func (c *Config) externalLabels(tenant string) map[string]string {
	m := make(map[string]string, len(c.ExternalLabels)+2)
	for k, v := range c.ExternalLabels {
		m[k] = v
	}
	m[c.TenantLabel] = tenant
	m[c.ReplicaLabel] = c.ReplicaName
	return m
}
