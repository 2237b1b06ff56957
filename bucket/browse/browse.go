// Package browse reads a Thanos-layout bucket the way its users think of
// it: tenant first, then replica, then blocks in time. It backs
// `strata bucket ls | inspect | verify` and the bucket web UI.
//
// The one thing to know before changing it: a bucket may hold hundreds of
// thousands of blocks, so nothing here may keep every block in memory.
// Walk streams blocks in ULID order with a bounded number of meta.json
// reads in flight; outputs that must regroup blocks (the per-tenant table)
// spill rows to a temporary file and keep only per-group state.
package browse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"

	"github.com/stratametrics/strata/bucket"
	"github.com/stratametrics/strata/bucket/metadata"
	"github.com/stratametrics/strata/internal/envconfig"
)

// Config of the bucket tools, read from STRATA_* environment variables
// (caarlos0/env/v11, prefix "STRATA_") like the block builders' so that
// the same environment finds the same bucket and labels.
type Config struct {
	Bucket bucket.Config
	// TenantLabel is the external label that names a block's tenant.
	TenantLabel string `env:"TENANT_LABEL" envDefault:"tenant_id"`
	// ReplicaLabel is the external label that names the block builder
	// (replica) that wrote a block.
	ReplicaLabel string `env:"REPLICA_LABEL" envDefault:"receive_replica"`
	// Concurrency is how many meta.json (and other) reads are in flight at
	// once; it bounds memory as much as it speeds listing up.
	Concurrency int `env:"BUCKET_CONCURRENCY" envDefault:"16"`
}

// DefaultConfig returns the defaults the env tags declare.
func DefaultConfig() Config { return envconfig.Defaults[Config]() }

// Validate rejects a configuration that cannot work, naming the variable.
func (c Config) Validate() error {
	switch {
	case c.TenantLabel == "" || c.ReplicaLabel == "":
		return errors.New("STRATA_TENANT_LABEL and STRATA_REPLICA_LABEL must not be empty")
	case c.TenantLabel == c.ReplicaLabel:
		return fmt.Errorf("STRATA_TENANT_LABEL and STRATA_REPLICA_LABEL must differ, both are %q", c.TenantLabel)
	case c.Concurrency < 1 || c.Concurrency > 256:
		return fmt.Errorf("STRATA_BUCKET_CONCURRENCY must be between 1 and 256, got %d", c.Concurrency)
	}
	return nil
}

// Browser reads one bucket. It is safe for concurrent use.
type Browser struct {
	bkt    objstore.BucketReader
	cfg    Config
	lister lister
	name   string
}

// Open opens the bucket of cfg.Bucket read-only. A filesystem bucket
// (STRATA_BUCKET_DIR) is listed page by page straight from the directory,
// because objstore's filesystem provider reads a whole directory at once.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Browser, func() error, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	bkt, err := cfg.Bucket.Open(ctx, logger, nil, "bucket-tools")
	if err != nil {
		return nil, nil, err
	}
	b := New(bkt, cfg)
	if cfg.Bucket.Dir != "" {
		b.lister = dirLister{dir: cfg.Bucket.Dir, pageSize: dirPageSize}
	}
	return b, bkt.Close, nil
}

// New returns a Browser of bkt; cfg.Bucket only names it. Use Open to
// read a configured bucket.
func New(bkt objstore.BucketReader, cfg Config) *Browser {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	return &Browser{bkt: bkt, cfg: cfg, lister: objstoreLister{bkt}, name: cfg.Bucket.String()}
}

// Config returns the configuration the Browser was made with.
func (b *Browser) Config() Config { return b.cfg }

// Name describes the bucket for people, without secrets.
func (b *Browser) Name() string { return b.name }

// Bucket is the bucket read.
func (b *Browser) Bucket() objstore.BucketReader { return b.bkt }

// Entry is one block directory of the bucket.
type Entry struct {
	ID ulid.ULID
	// Meta is the block's meta.json; nil when Err is set.
	Meta *metadata.Meta
	// Err is why Meta could not be read: wrapping metadata.ErrNotFound
	// for a directory without meta.json (a partial upload), or the read or
	// decode error.
	Err error
	// Known is set by WalkKnown for blocks it did not read.
	Known bool
}

// Partial reports whether the directory has no meta.json.
func (e Entry) Partial() bool { return errors.Is(e.Err, metadata.ErrNotFound) }

// Walk calls fn for every block directory of the bucket in ULID order
// (upload order for blocks Strata writes). Up to Config.Concurrency
// meta.json reads run ahead of fn; nothing else is kept, so memory does
// not depend on the number of blocks. An error from fn stops the walk and
// is returned.
func (b *Browser) Walk(ctx context.Context, fn func(Entry) error) error {
	return b.WalkKnown(ctx, nil, fn)
}

// WalkKnown is Walk without reading the meta.json of blocks for which
// known (if not nil) returns true: fn gets those with Known set and no
// Meta. A meta.json never changes once written, so a caller that keeps
// what it read before refreshes by reading only new blocks.
func (b *Browser) WalkKnown(ctx context.Context, known func(ulid.ULID) bool, fn func(Entry) error) error {
	return ordered(ctx, b.cfg.Concurrency,
		func(ctx context.Context, emit func(ulid.ULID) error) error {
			if err := b.lister.list(ctx, emit); err != nil {
				return fmt.Errorf("list %s: %w", b.name, err)
			}
			return nil
		},
		func(ctx context.Context, id ulid.ULID) Entry {
			if known != nil && known(id) {
				return Entry{ID: id, Known: true}
			}
			return b.readEntry(ctx, id)
		}, fn)
}

func (b *Browser) readEntry(ctx context.Context, id ulid.ULID) Entry {
	m, err := metadata.ReadMetaFromBucket(ctx, b.bkt, id)
	return Entry{ID: id, Meta: m, Err: err}
}

// Block is a complete block with what the tools show of it.
type Block struct {
	Meta    *metadata.Meta
	Tenant  string
	Replica string
}

// NewBlock classifies meta by the configured tenant and replica labels.
func (b *Browser) NewBlock(meta *metadata.Meta) Block {
	return Block{Meta: meta, Tenant: meta.Thanos.Labels[b.cfg.TenantLabel], Replica: meta.Thanos.Labels[b.cfg.ReplicaLabel]}
}

// Size is the sum of the sizes meta.json lists (thanos.files), and
// whether it lists any: metas written by old Thanos versions do not.
func (bl Block) Size() (int64, bool) {
	var n int64
	for _, f := range bl.Meta.Thanos.Files {
		n += f.SizeBytes
	}
	return n, len(bl.Meta.Thanos.Files) > 0
}

// OtherLabels are the block's external labels other than tenant and
// replica, as name="value" sorted by name.
func (bl Block) OtherLabels(cfg Config) string {
	keys := make([]string, 0, len(bl.Meta.Thanos.Labels))
	for k := range bl.Meta.Thanos.Labels {
		if k != cfg.TenantLabel && k != cfg.ReplicaLabel {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, bl.Meta.Thanos.Labels[k])
	}
	return strings.Join(parts, ",")
}

// MinTime and MaxTime are the block's time range; MaxTime is exclusive,
// as in TSDB.
func (bl Block) MinTime() time.Time { return time.UnixMilli(bl.Meta.MinTime).UTC() }
func (bl Block) MaxTime() time.Time { return time.UnixMilli(bl.Meta.MaxTime).UTC() }

// objectName is the bucket name of a block's file.
func objectName(id ulid.ULID, rel string) string { return path.Join(id.String(), rel) }
