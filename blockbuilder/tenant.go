package blockbuilder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/compression"
	"github.com/thanos-io/objstore"

	"github.com/stratametrics/strata/blockbuilder/shipper"
	"github.com/stratametrics/strata/limits"
)

// tenantDB owns one tenant's TSDB and the shipper that uploads its blocks.
type tenantDB struct {
	id   string
	dir  string
	db   *tsdb.DB
	ship *shipper.Shipper
	reg  *prometheus.Registry // the TSDB's own metrics, labelled by tenant on scrape
	meta *metaCache
	// known finds the head references of 1.0 series by their label
	// bytes (known.go).
	known  *knownRefs
	logger *slog.Logger

	blockRange int64 // ms
	// applied are the tenant's TSDB options in use and the version of the
	// limits set they came from; applyLimits changes them.
	applied struct {
		sync.Mutex
		version   atomic.Uint64
		ooo       int64 // ms
		exemplars int64 // the tenant's max_exemplars
		// ring is the size of the TSDB's exemplar ring: 0 until the
		// tenant's first exemplar, then exemplars (see growRing).
		ring atomic.Int64
	}
	// keepExemplars tells whether the tenant may store exemplars
	// (max_exemplars above 0), whether or not its ring is allocated yet.
	keepExemplars atomic.Bool

	// lastWrite is the wall clock of the last write, unix ms.
	lastWrite atomic.Int64

	// mu is held shared by writers and exclusively by flush and close, so
	// that no write lands in a head that is being cut for the last time.
	mu     sync.RWMutex
	closed bool
	// flushed is lastWrite as of the last flush of the idle head: equal,
	// nothing was written since and the head has nothing to cut.
	flushed int64

	// walFailed is set when a write to the WAL failed (a full disk, an I/O
	// error). Prometheus' WAL may then hold the first part of a record
	// whose rest is never written, followed by the records of later,
	// acknowledged writes (prometheus/prometheus#13027): its reader stops
	// at the torn record, so checkpoints fail, and the repair at the next
	// open deletes everything after it. The head holds exactly what was
	// acknowledged, so renewWAL flushes the head into blocks and drops the
	// WAL, walRenewalDelay after the last failure (walFailedAt, unix ms),
	// and a graceful stop or an idle close drops it once flushed.
	walFailed   atomic.Bool
	walFailedAt atomic.Int64
	// headFlushed: seal flushed the whole head.
	headFlushed bool
}

// errTenantClosed tells a writer that raced with an idle close to reopen.
var errTenantClosed = errors.New("tenant closed")

func openTenant(cfg *Config, set *limits.Set, id, dir string, bkt objstore.Bucket, shipMetrics *shipper.Metrics, logger *slog.Logger, now func() time.Time) (*tenantDB, error) {
	t := &tenantDB{
		id:         id,
		dir:        dir,
		reg:        prometheus.NewRegistry(),
		logger:     logger.With("tenant", id),
		blockRange: cfg.BlockDuration.Milliseconds(),
		meta:       newMetaCache(),
		known:      newKnownRefs(),
	}
	tl := set.For(id)
	// The shipper reads its ledger from the TSDB's directory: make it first.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tenant %s: %w", id, err)
	}
	ship, err := shipper.New(shipper.Options{
		Dir:     dir,
		Bucket:  bkt,
		Labels:  cfg.externalLabels(id),
		Source:  "receive",
		Logger:  logger, // the shipper adds the tenant itself
		Metrics: shipMetrics,
		Tenant:  id,
		// The block builder tries uploads every UploadInterval; after
		// failures it skips its turns until the shipper's backoff passes.
		RetryInterval: cfg.UploadInterval,
		Now:           now,
	})
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", id, err)
	}
	t.ship = ship

	opts := tsdb.DefaultOptions()
	// Chunk files are preallocated whole when a block is written; 64 MiB
	// instead of Prometheus' 512 MiB keeps cutting blocks possible on a
	// nearly full disk (readers do not mind more, smaller files).
	opts.MaxBlockChunkSegmentSize = 64 << 20
	opts.MinBlockDuration = t.blockRange
	opts.MaxBlockDuration = t.blockRange
	// Retention is ours: blocks go once uploaded and old (see
	// blocksToDelete), never on the TSDB's own clock.
	opts.RetentionDuration = 0
	opts.OutOfOrderTimeWindow = tl.OutOfOrderWindow.Milliseconds()
	// Exemplar storage is always on, so that a tenant given exemplars by
	// the limits file gets them without a reopen; with a ring of 0 it
	// holds none and costs nothing.
	// The ring is allocated whole (some 60 bytes an entry, 0.6 MB at the
	// default 10000), so a tenant gets it with its first exemplar: most
	// senders send none, and a block builder may hold a thousand tenants.
	// A WAL may hold exemplars to replay, so a tenant that has one opens
	// with its ring and gives it back after the replay if it holds none.
	opts.EnableExemplarStorage = true
	if hasWAL(dir) {
		opts.MaxExemplars = tl.MaxExemplars
	}
	t.applied.version.Store(set.Version())
	t.applied.ooo, t.applied.exemplars = opts.OutOfOrderTimeWindow, tl.MaxExemplars
	t.applied.ring.Store(opts.MaxExemplars)
	t.keepExemplars.Store(tl.MaxExemplars > 0)
	opts.StripeSize = cfg.HeadStripeSize
	// Blocks are never merged here: the bucket's compactor does that, and
	// overlapping blocks (out-of-order data) are its job too.
	opts.EnableOverlappingCompaction = false
	// Start timestamps and metadata sent over remote-write 2.0 are kept:
	// the start timestamp as a zero sample, metadata in the WAL.
	opts.EnableSTAsZeroSample = true
	opts.EnableMetadataWALRecords = true
	// Isolation lets a query see only whole appends. A remote-write
	// request is an arbitrary batch (a sender splits its scrapes across
	// shards and requests), so here it guarantees nothing a reader can
	// use, and costs a ring of append IDs per series and their upkeep
	// on every append.
	opts.IsolationDisabled = true
	// Every tenant has its own head chunk writer, whose buffer is
	// allocated whole once its first chunk is full; Prometheus' 4 MiB,
	// sized for one TSDB per process, would cost that much per tenant. A
	// head chunk is a few hundred bytes: the smallest buffer the TSDB
	// allows, 64 KiB, still writes hundreds at once.
	opts.HeadChunksWriteBufferSize = chunks.MinWriteBufferSize
	// Blocks are reloaded, and so local retention applied, at least as
	// often as uploads run: an uploaded block goes once it is old enough.
	opts.BlockReloadInterval = min(cfg.UploadInterval, time.Minute)
	if cfg.WALCompression {
		opts.WALCompression = compression.Snappy
	}
	retention := cfg.LocalRetention.Milliseconds()
	opts.BlocksToDelete = func(blocks []*tsdb.Block) map[ulid.ULID]struct{} {
		return t.blocksToDelete(blocks, retention)
	}
	db, err := tsdb.Open(dir, t.logger, t.reg, opts, nil)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: open TSDB in %s: %w", id, dir, err)
	}
	// Cutting blocks is driven by the block builder's loop (cut), so it
	// happens on its schedule and is followed by an upload.
	db.DisableCompactions()
	t.db = db
	if err := t.releaseEmptyRing(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("tenant %s: %w", id, err)
	}
	t.lastWrite.Store(now().UnixMilli())
	return t, nil
}

// applyLimits puts the tenant's out-of-order window and exemplar ring of
// the limits set of the given version in use, if they changed; the TSDB
// changes both live, as it does on a Prometheus configuration reload.
func (t *tenantDB) applyLimits(version uint64, tl *limits.Tenant) error {
	a := &t.applied
	if a.version.Load() == version {
		return nil
	}
	a.Lock()
	defer a.Unlock()
	if a.version.Load() == version {
		return nil
	}
	ooo := tl.OutOfOrderWindow.Milliseconds()
	if ooo != a.ooo || tl.MaxExemplars != a.exemplars {
		// A ring in use follows the limit; one not yet allocated waits
		// for the tenant's first exemplar.
		ring := a.ring.Load()
		if ring > 0 {
			ring = tl.MaxExemplars
		}
		if err := t.applyTSDB(ooo, ring); err != nil {
			return fmt.Errorf("apply limits: %w", err)
		}
		t.logger.Info("tenant limits applied", "out_of_order_window", tl.OutOfOrderWindow, "max_exemplars", tl.MaxExemplars)
		a.ooo, a.exemplars = ooo, tl.MaxExemplars
		a.ring.Store(ring)
		t.keepExemplars.Store(tl.MaxExemplars > 0)
	}
	a.version.Store(version)
	return nil
}

// applyTSDB sets the head's out-of-order window and exemplar ring size,
// live, as a Prometheus configuration reload does.
func (t *tenantDB) applyTSDB(ooo, ring int64) error {
	return t.db.ApplyConfig(&config.Config{StorageConfig: config.StorageConfig{
		TSDBConfig:      &config.TSDBConfig{OutOfOrderTimeWindow: ooo},
		ExemplarsConfig: &config.ExemplarsConfig{MaxExemplars: ring},
	}})
}

// growRing allocates the exemplar ring at the tenant's max_exemplars, for
// its first exemplar; a no-op once allocated or while max_exemplars is 0.
func (t *tenantDB) growRing() error {
	a := &t.applied
	if a.ring.Load() > 0 || !t.keepExemplars.Load() {
		return nil
	}
	a.Lock()
	defer a.Unlock()
	if a.ring.Load() > 0 || a.exemplars <= 0 {
		return nil
	}
	if err := t.applyTSDB(a.ooo, a.exemplars); err != nil {
		return fmt.Errorf("tenant %s: allocate the exemplar ring: %w", t.id, err)
	}
	a.ring.Store(a.exemplars)
	return nil
}

// releaseEmptyRing gives back a ring allocated for a WAL replay that
// brought no exemplars.
func (t *tenantDB) releaseEmptyRing() error {
	a := &t.applied
	a.Lock()
	defer a.Unlock()
	if a.ring.Load() == 0 {
		return nil
	}
	q, err := t.db.ExemplarQuerier(context.Background())
	if err != nil {
		return fmt.Errorf("read the replayed exemplars: %w", err)
	}
	// One empty matcher set matches every series.
	held, err := q.Select(math.MinInt64, math.MaxInt64, []*labels.Matcher{})
	if err != nil {
		return fmt.Errorf("read the replayed exemplars: %w", err)
	}
	if len(held) > 0 {
		return nil
	}
	if err := t.applyTSDB(a.ooo, 0); err != nil {
		return fmt.Errorf("release the empty exemplar ring: %w", err)
	}
	a.ring.Store(0)
	return nil
}

// hasWAL tells whether the TSDB in dir has a WAL segment to replay.
func hasWAL(dir string) bool {
	segs, err := os.ReadDir(filepath.Join(dir, "wal"))
	if err != nil {
		return false
	}
	for _, e := range segs {
		if e.Type().IsRegular() || e.IsDir() {
			return true
		}
	}
	return false
}

// blocksToDelete lets the TSDB delete a block only when it is uploaded and
// older than the local retention, or superseded by a compaction.
func (t *tenantDB) blocksToDelete(blocks []*tsdb.Block, retention int64) map[ulid.ULID]struct{} {
	del := map[ulid.ULID]struct{}{}
	if t.ship == nil {
		return del
	}
	cutoff := time.Now().UnixMilli() - retention
	// The newest block stays whatever its age: on a restart, its end is
	// the head's lower bound, which keeps the next block from
	// overlapping it (see blockStart).
	var newest ulid.ULID
	var newestMax int64 = math.MinInt64
	for _, b := range blocks {
		if m := b.Meta(); m.MaxTime > newestMax {
			newest, newestMax = m.ULID, m.MaxTime
		}
	}
	for _, b := range blocks {
		m := b.Meta()
		if !t.ship.IsUploaded(m.ULID) || m.ULID == newest && !m.Compaction.Deletable {
			continue
		}
		if m.Compaction.Deletable || m.MaxTime < cutoff {
			del[m.ULID] = struct{}{}
		}
	}
	return del
}

// cut persists every block range the head had finished when it was
// called: the head keeps half a block of slack past a range's end, as
// Prometheus does, so that late samples still land before the range is
// cut. Ranges finished meanwhile wait for the next call, so that a head
// filling faster than blocks are written cannot keep cut (and shutdown,
// which waits for it) busy forever; ctx ends it between blocks.
func (t *tenantDB) cut(ctx context.Context) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return nil
	}
	head := t.db.Head()
	limit := head.MaxTime() - t.blockRange*3/2
	// Cutting garbage-collects series from the head: forget their
	// metadata too.
	defer func(before int64) {
		if head.MinTime() != before {
			t.meta.reset()
		}
	}(head.MinTime())
	for ctx.Err() == nil {
		mint := head.MinTime()
		if mint == math.MaxInt64 || mint >= limit {
			break
		}
		end := alignDown(mint, t.blockRange) + t.blockRange
		start := t.blockStart(mint)
		if err := t.db.CompactHead(tsdb.NewRangeHead(head, start, end-1)); err != nil && !(t.walFailed.Load() && head.MinTime() >= end) {
			// With a failed WAL, a block written whose checkpoint failed
			// on the torn record is cut all the same (see walFailed).
			return fmt.Errorf("tenant %s: cut block [%d, %d): %w", t.id, start, end, err)
		}
		if head.MinTime() <= mint {
			// The head did not move past the block: do not spin on it.
			break
		}
	}
	if err := t.db.CompactOOOHead(ctx); err != nil {
		return fmt.Errorf("tenant %s: cut out-of-order head: %w", t.id, err)
	}
	return nil
}

// blockStart is where a block holding the head's samples from mint on
// begins: the start of mint's block range, or, when a block of this
// tenant already ends inside that range (the head was flushed at a
// graceful stop, or for idleness, and writes went on), that block's end.
// Two blocks of one stream never cover the same time, which the Thanos
// Compactor refuses to compact without vertical compaction. The head
// takes no sample before the newest block's end (the TSDB's lower bound
// of the head), so a block begun there loses nothing; with an
// out-of-order window, out-of-order blocks overlap by design.
func (t *tenantDB) blockStart(mint int64) int64 {
	start := alignDown(mint, t.blockRange)
	for _, b := range t.db.Blocks() {
		if m := b.Meta(); !m.Compaction.FromOutOfOrder() && m.MaxTime > start && m.MaxTime <= mint {
			start = m.MaxTime
		}
	}
	return start
}

// flushHead cuts the whole head, the unfinished block too, into blocks
// aligned to the block range. Callers hold t.mu exclusively.
func (t *tenantDB) flushHead() error {
	defer t.meta.reset()
	head := t.db.Head()
	mint, maxt := head.MinTime(), head.MaxTime()
	if mint != math.MaxInt64 {
		for aligned := alignDown(mint, t.blockRange); aligned <= maxt; aligned += t.blockRange {
			// The last block ends at the newest sample, not at its range's
			// end: the head accepts samples after a block's end only, and
			// writes resume in the rest of the range after a restart.
			start, end := t.blockStart(max(aligned, mint)), min(aligned+t.blockRange-1, maxt)
			if err := t.db.CompactHead(tsdb.NewRangeHead(head, start, end)); err != nil {
				if t.walFailed.Load() && head.MinTime() > end {
					// The block is written and the head moved past it;
					// only the WAL's truncation failed, on the torn
					// record, and the WAL is dropped once the head is
					// flushed.
					continue
				}
				return fmt.Errorf("tenant %s: flush block [%d, %d]: %w", t.id, start, end, err)
			}
		}
	}
	if err := t.db.CompactOOOHead(context.Background()); err != nil {
		return fmt.Errorf("tenant %s: flush out-of-order head: %w", t.id, err)
	}
	return nil
}

// seal stops the tenant for shutdown: marked closed, it refuses writes
// (errTenantClosed) and is left alone by the idle and upload paths, and
// its whole head is cut into blocks for shutdown to upload. It tells
// whether this call sealed it (false: it was closed already). When ctx
// has ended the head is not flushed: it stays in the WAL, which the next
// start replays.
func (t *tenantDB) seal(ctx context.Context) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false, nil
	}
	t.closed = true
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("tenant %s: head not flushed, it stays in the WAL: %w", t.id, err)
	}
	if err := t.flushHead(); err != nil {
		return true, err
	}
	t.headFlushed = true
	return true, nil
}

// closeDB closes the TSDB of a sealed tenant, whether or not its uploads
// succeeded: its blocks stay on disk and the ledger says which are
// pending, so the next start uploads them. The WAL of a head seal
// flushed is dropped: it holds nothing the blocks do not (writes were
// refused from the seal on), and the TSDB keeps the newest third of its
// segments at each truncation, which the next start would replay for
// seconds only to drop every series again (8 s at 1M series); a failed
// WAL is not repaired either.
func (t *tenantDB) closeDB() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	err := t.db.Close()
	if t.headFlushed {
		err = errors.Join(err, t.dropWAL())
	}
	if err != nil {
		return fmt.Errorf("tenant %s: close TSDB: %w", t.id, err)
	}
	return nil
}

// renewWAL recovers a tenant whose WAL failed (see walFailed): it flushes
// the head into blocks, closes the TSDB and drops its WAL, so that the
// tenant's next write opens it again on a new one. It tells whether this
// call did (false: the tenant was closed already). Blocks not uploaded
// yet stay pending in the shipper's ledger and upload after the reopen.
// While the flush fails (the disk still full) the tenant stays open, and
// the next maintenance tick tries again.
func (t *tenantDB) renewWAL() (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false, nil
	}
	if err := t.flushHead(); err != nil {
		return false, fmt.Errorf("tenant %s: the WAL failed and the head could not be flushed to start a new one: %w", t.id, err)
	}
	t.closed = true
	// The head is in blocks: an error closing the failed WAL loses nothing.
	closeErr := t.db.Close()
	if err := t.dropWAL(); err != nil {
		return true, err
	}
	t.logger.Warn("the WAL failed; the head is flushed into blocks and the tenant reopens on a new WAL", "close_err", closeErr)
	return true, nil
}

// dropWAL removes what the head is rebuilt from at open (the WAL, the
// out-of-order WBL and the head chunks) once the head is in blocks.
func (t *tenantDB) dropWAL() error {
	for _, d := range []string{"wal", "wbl", "chunks_head"} {
		if err := os.RemoveAll(filepath.Join(t.dir, d)); err != nil {
			return fmt.Errorf("tenant %s: drop the WAL: %w", t.id, err)
		}
	}
	return nil
}

// flushIdle cuts the whole head of an idle tenant into blocks, so that it
// can be uploaded and the tenant closed. It does nothing when nothing was
// written since its last flush, so an idle tenant waiting for its uploads
// is not flushed again on every tick.
func (t *tenantDB) flushIdle() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	last := t.lastWrite.Load()
	if t.closed || t.flushed == last {
		return nil
	}
	if err := t.flushHead(); err != nil {
		return err
	}
	t.flushed = last
	return nil
}

// closeIdle closes the TSDB of an idle tenant whose every block is
// uploaded, and tells whether the tenant is closed. It stays open when a
// write came in since flushIdle (it is not idle any more) or a block is
// still pending: closing then would leave the block unshipped until the
// tenant's next write or a restart.
func (t *tenantDB) closeIdle() (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return true, nil
	}
	if t.flushed != t.lastWrite.Load() || len(t.ship.Pending()) > 0 {
		return false, nil
	}
	t.closed = true
	err := t.db.Close()
	if t.walFailed.Load() {
		// Flushed (flushIdle): nothing of the failed WAL is needed.
		err = errors.Join(err, t.dropWAL())
	}
	if err != nil {
		return true, fmt.Errorf("tenant %s: close TSDB: %w", t.id, err)
	}
	return true, nil
}

// sync uploads finished blocks.
func (t *tenantDB) sync(ctx context.Context) (int, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return 0, nil
	}
	return t.ship.Sync(ctx)
}

func alignDown(t, rng int64) int64 {
	if t >= 0 {
		return t - t%rng
	}
	return t - (rng+t%rng)%rng
}
