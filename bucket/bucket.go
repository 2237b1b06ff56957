// Package bucket opens the object storage bucket that Strata writes Thanos
// blocks to: S3 from STRATA_S3_* variables, any provider of this build
// (providers.go) through a Thanos objstore YAML file, or a local directory.
//
// Open does not contact the bucket: a bucket that is down shows up on first
// use, so a block builder still starts, takes writes and keeps its blocks
// until the bucket comes back.
package bucket

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"
	"github.com/thanos-io/objstore/providers/s3"
)

// DefaultRegion is the S3 region used when none is configured.
const DefaultRegion = "us-east-1"

// Config selects and configures the bucket. Exactly one of S3 (by its
// bucket name), ObjstoreConfigFile or Dir must be set. It is parsed by
// caarlos0/env/v11 with the prefix "STRATA_".
type Config struct {
	// S3 is an S3 (or S3-compatible) bucket, selected by S3.Bucket.
	S3 S3Config `envPrefix:"S3_"`
	// ObjstoreConfigFile is a Thanos --objstore.config-file: the providers
	// of providers.go (S3, Azure, Swift, COS, OSS, OBS, BOS, OCI,
	// FILESYSTEM; GCS only in a build with the gcs tag).
	ObjstoreConfigFile string `env:"OBJSTORE_CONFIG_FILE"`
	// Dir is a filesystem bucket, for development and tests. It is created
	// if missing.
	Dir string `env:"BUCKET_DIR"`
}

// S3Config is an S3 bucket reached through objstore's S3 provider, the
// same client Thanos uses.
type S3Config struct {
	// Endpoint is host[:port]. A scheme is accepted: http:// means
	// Insecure. Empty means AWS: s3.<region>.amazonaws.com.
	Endpoint string `env:"ENDPOINT"`
	Bucket   string `env:"BUCKET"`
	Region   string `env:"REGION" envDefault:"us-east-1"`
	// AccessKey and SecretKey go together; when both are empty the AWS
	// credential chain (environment, shared files, IAM) is used.
	AccessKey string `env:"ACCESS_KEY"`
	SecretKey string `env:"SECRET_KEY"`
	// Insecure talks plain HTTP.
	Insecure bool `env:"INSECURE"`
	// PathStyle addresses the bucket as endpoint/bucket/key instead of
	// bucket.endpoint/key; most S3-compatible servers need it.
	PathStyle bool `env:"PATH_STYLE"`
}

// Validate checks that exactly one bucket is configured and that it is
// complete. Its messages name the STRATA_* variables to fix.
func (c Config) Validate() error {
	var set []string
	if c.S3.Bucket != "" {
		set = append(set, "STRATA_S3_BUCKET")
	}
	if c.ObjstoreConfigFile != "" {
		set = append(set, "STRATA_OBJSTORE_CONFIG_FILE")
	}
	if c.Dir != "" {
		set = append(set, "STRATA_BUCKET_DIR")
	}
	if c.S3.Bucket == "" {
		// S3 settings without a bucket are a half-done S3 configuration,
		// not a wish for another provider; say so rather than ignore them.
		for _, v := range []struct {
			name string
			set  bool
		}{
			{"STRATA_S3_ENDPOINT", c.S3.Endpoint != ""},
			{"STRATA_S3_ACCESS_KEY", c.S3.AccessKey != ""},
			{"STRATA_S3_SECRET_KEY", c.S3.SecretKey != ""},
			{"STRATA_S3_INSECURE", c.S3.Insecure},
			{"STRATA_S3_PATH_STYLE", c.S3.PathStyle},
		} {
			if v.set {
				return fmt.Errorf("bucket: %s is set but STRATA_S3_BUCKET is empty", v.name)
			}
		}
	}
	switch len(set) {
	case 0:
		return errors.New("bucket: none configured: set one of STRATA_S3_BUCKET (with STRATA_S3_ENDPOINT, ...), STRATA_OBJSTORE_CONFIG_FILE or STRATA_BUCKET_DIR")
	case 1:
	default:
		return fmt.Errorf("bucket: %s are all set: set exactly one of STRATA_S3_BUCKET, STRATA_OBJSTORE_CONFIG_FILE or STRATA_BUCKET_DIR", strings.Join(set, ", "))
	}
	if c.S3.Bucket != "" {
		if (c.S3.AccessKey == "") != (c.S3.SecretKey == "") {
			return errors.New("bucket: STRATA_S3_ACCESS_KEY and STRATA_S3_SECRET_KEY must be set together (or both left empty for the AWS credential chain)")
		}
		if _, _, err := c.S3.endpoint(); err != nil {
			return err
		}
	}
	return nil
}

// endpoint returns the host[:port] objstore wants and whether to use plain
// HTTP, accepting an endpoint written as a URL.
func (c S3Config) endpoint() (host string, insecure bool, err error) {
	ep := c.Endpoint
	if ep == "" {
		region := c.Region
		if region == "" {
			region = DefaultRegion
		}
		return "s3." + region + ".amazonaws.com", c.Insecure, nil
	}
	if !strings.Contains(ep, "://") {
		return ep, c.Insecure, nil
	}
	u, err := url.Parse(ep)
	if err != nil {
		return "", false, fmt.Errorf("bucket: STRATA_S3_ENDPOINT %q: %w", ep, err)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", false, fmt.Errorf("bucket: STRATA_S3_ENDPOINT %q must be host[:port] or scheme://host[:port]", ep)
	}
	switch u.Scheme {
	case "http":
		return u.Host, true, nil
	case "https":
		if c.Insecure {
			return "", false, fmt.Errorf("bucket: STRATA_S3_ENDPOINT %q is https but STRATA_S3_INSECURE is true", ep)
		}
		return u.Host, false, nil
	default:
		return "", false, fmt.Errorf("bucket: STRATA_S3_ENDPOINT %q: scheme must be http or https", ep)
	}
}

// objstoreS3 is the objstore S3 provider configuration equivalent to the
// STRATA_S3_* variables.
func (c S3Config) objstoreS3() (s3.Config, error) {
	host, insecure, err := c.endpoint()
	if err != nil {
		return s3.Config{}, err
	}
	cfg := s3.DefaultConfig
	// DefaultConfig shares its map; never write into the package's copy.
	cfg.PutUserMetadata = map[string]string{}
	cfg.Bucket = c.Bucket
	cfg.Endpoint = host
	cfg.Region = c.Region
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	cfg.AccessKey = c.AccessKey
	cfg.SecretKey = c.SecretKey
	cfg.Insecure = insecure
	if c.PathStyle {
		cfg.BucketLookupType = s3.PathLookup
	}
	return cfg, nil
}

// Open validates the configuration and returns the bucket, instrumented
// with objstore's bucket metrics (objstore_bucket_*, labelled
// component=<component>) on reg, which may be nil; open one bucket per
// component and registry, as registering twice panics. component also
// names the client to S3 (user agent). Open does not contact the bucket.
func (c Config) Open(ctx context.Context, logger *slog.Logger, reg prometheus.Registerer, component string) (objstore.InstrumentedBucket, error) {
	_ = ctx // Providers build their clients lazily; nothing to wait for yet.
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	kitLog := kitLogger{logger}

	var (
		bkt objstore.Bucket
		err error
	)
	switch {
	case c.ObjstoreConfigFile != "":
		var content []byte
		content, err = os.ReadFile(c.ObjstoreConfigFile)
		if err != nil {
			return nil, fmt.Errorf("bucket: read STRATA_OBJSTORE_CONFIG_FILE: %w", err)
		}
		bkt, err = openObjstoreFile(kitLog, content, component)
		if err != nil {
			return nil, fmt.Errorf("bucket: open %s: %w", c, err)
		}
	case c.S3.Bucket != "":
		var cfg s3.Config
		cfg, err = c.S3.objstoreS3()
		if err != nil {
			return nil, err
		}
		bkt, err = s3.NewBucketWithConfig(kitLog, cfg, component, nil)
		if err != nil {
			return nil, fmt.Errorf("bucket: open %s: %w", c, err)
		}
	default:
		if err := os.MkdirAll(c.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("bucket: create STRATA_BUCKET_DIR: %w", err)
		}
		bkt, err = filesystem.NewBucket(c.Dir)
		if err != nil {
			return nil, fmt.Errorf("bucket: open %s: %w", c, err)
		}
	}
	if reg != nil {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"component": component}, reg)
	}
	return objstore.WrapWithMetrics(bkt, reg, bkt.Name()), nil
}

// String describes the bucket for logs, without secrets.
func (c Config) String() string {
	switch {
	case c.ObjstoreConfigFile != "":
		return "objstore file " + c.ObjstoreConfigFile
	case c.S3.Bucket != "":
		var opts []string
		if host, insecure, err := c.S3.endpoint(); err == nil {
			scheme := "https"
			if insecure {
				scheme = "http"
			}
			opts = append(opts, "endpoint "+scheme+"://"+host)
		} else {
			opts = append(opts, "endpoint "+c.S3.Endpoint)
		}
		if c.S3.Region != "" {
			opts = append(opts, "region "+c.S3.Region)
		}
		if c.S3.PathStyle {
			opts = append(opts, "path-style")
		}
		return "s3://" + c.S3.Bucket + " (" + strings.Join(opts, ", ") + ")"
	case c.Dir != "":
		return "filesystem:" + c.Dir
	default:
		return "no bucket"
	}
}
