// Package shipper uploads the finished blocks of one tenant's TSDB to the
// bucket in the Thanos layout, as Thanos Receive's shipper does: oldest
// block first, chunks, then index, then meta.json with the "thanos"
// section.
//
// The one thing to know: meta.json goes last and the ledger
// (strata.shipper.json) is written only after it. A block in the bucket
// without meta.json is an unfinished upload that readers ignore and the
// next Sync redoes whole; a block in the ledger is never uploaded again;
// and a block whose meta.json reached the bucket just before a crash is
// found there (one existence check) instead of being uploaded twice.
package shipper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"

	"github.com/stratametrics/strata/bucket/metadata"
	"github.com/stratametrics/strata/internal/backoff"
)

// Names in a block directory, as Prometheus writes them.
const (
	chunksDir      = "chunks"
	indexFile      = "index"
	tombstonesFile = "tombstones"
)

// Options configure a Shipper.
type Options struct {
	// Dir is the tenant's TSDB directory, the one tsdb.Open was given.
	Dir string
	// Bucket receives the blocks, at <ULID>/... like Thanos.
	Bucket objstore.Bucket
	// Labels are the external labels written to thanos.labels (tenant
	// label, replica label, ...). Required: Thanos refuses blocks without.
	Labels map[string]string
	// Source is thanos.source; default "receive".
	Source string
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Metrics are shared by all tenants' shippers; nil keeps them
	// unregistered.
	Metrics *Metrics
	// Tenant labels metrics and logs.
	Tenant string
	// RetryInterval is the wait RetryAt asks for after a failed Sync; it
	// doubles with each further failure (see RetryAt). 0 asks for none,
	// for callers that retry on a schedule of their own.
	RetryInterval time.Duration
	// Now is the clock RetryAt counts from; default time.Now.
	Now func() time.Time
	// SlowUploadWarning is how often a block upload still running (its
	// existence check included) is logged as slow; default
	// DefaultSlowUploadWarning. A bucket that hangs instead of refusing
	// holds an upload until its context ends, which at shutdown can be
	// minutes: without these lines nothing would say why.
	SlowUploadWarning time.Duration
}

// DefaultSlowUploadWarning is Options.SlowUploadWarning's default: far
// longer than a healthy block upload takes, short enough to be seen well
// within a flush timeout.
const DefaultSlowUploadWarning = 30 * time.Second

// Shipper uploads one TSDB directory's finished blocks. Calls to Sync
// serialise; IsUploaded, Pending and RetryAt may be called at any time,
// e.g. from the TSDB's BlocksToDelete hook.
//
// Blocks Thanos' shipper skips are skipped here too and are neither
// pending nor uploaded: blocks without samples, and blocks of compaction
// level above 1 (Strata's TSDBs, like Thanos Receive's, must not compact:
// a compacted block repeats data already shipped in its sources).
type Shipper struct {
	dir     string
	bkt     objstore.Bucket
	labels  map[string]string
	source  string
	logger  *slog.Logger
	metrics *Metrics
	tenant  string
	retry   time.Duration
	now     func() time.Time
	slow    time.Duration

	syncMu sync.Mutex // one Sync at a time

	mu          sync.Mutex
	uploaded    map[ulid.ULID]struct{} // the ledger
	ledgerDirty bool                   // uploaded changed but the ledger file could not be written
	metas       map[ulid.ULID]*metadata.Meta
	skipped     map[ulid.ULID]struct{} // logged once
	failures    int                    // consecutive failed Syncs
	retryAt     time.Time              // zero after a Sync that succeeded
	lastPending []ulid.ULID            // as of the last scan
}

// New returns the shipper of opts.Dir, with the ledger already loaded so
// IsUploaded answers before the first Sync.
func New(opts Options) (*Shipper, error) {
	if opts.Dir == "" {
		return nil, errors.New("shipper: Dir is required")
	}
	if fi, err := os.Stat(opts.Dir); err != nil {
		return nil, fmt.Errorf("shipper: Dir: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("shipper: Dir %s is not a directory", opts.Dir)
	}
	if opts.Bucket == nil {
		return nil, errors.New("shipper: Bucket is required")
	}
	if len(opts.Labels) == 0 {
		return nil, errors.New("shipper: Labels are required: Thanos needs external labels on every block")
	}
	if opts.Source == "" {
		opts.Source = metadata.ReceiveSource
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.RetryInterval < 0 {
		return nil, fmt.Errorf("shipper: RetryInterval must not be negative, got %s", opts.RetryInterval)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SlowUploadWarning < 0 {
		return nil, fmt.Errorf("shipper: SlowUploadWarning must not be negative, got %s", opts.SlowUploadWarning)
	}
	if opts.SlowUploadWarning == 0 {
		opts.SlowUploadWarning = DefaultSlowUploadWarning
	}
	s := &Shipper{
		dir:     opts.Dir,
		bkt:     opts.Bucket,
		labels:  maps.Clone(opts.Labels),
		source:  opts.Source,
		logger:  opts.Logger.With("tenant", opts.Tenant),
		metrics: opts.Metrics,
		tenant:  opts.Tenant,
		retry:   opts.RetryInterval,
		now:     opts.Now,
		slow:    opts.SlowUploadWarning,
		metas:   map[ulid.ULID]*metadata.Meta{},
		skipped: map[ulid.ULID]struct{}{},
	}
	uploaded, err := readLedger(opts.Dir)
	if err != nil {
		// Safe to start over: before uploading, Sync checks the bucket for
		// the block's meta.json, so nothing is uploaded twice.
		s.logger.Warn("shipper ledger unreadable, rebuilding it from the bucket", "err", err)
		uploaded = map[ulid.ULID]struct{}{}
	}
	s.uploaded = uploaded
	// Publish the backlog left by the previous run right away.
	s.Pending()
	return s, nil
}

// IsUploaded reports whether the block is in the bucket (in the ledger).
// The TSDB's BlocksToDelete hook must keep blocks for which it is false.
func (s *Shipper) IsUploaded(id ulid.ULID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.uploaded[id]
	return ok
}

// ConsecutiveFailures is the number of Syncs in a row that failed; 0 after
// a Sync that succeeded.
func (s *Shipper) ConsecutiveFailures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failures
}

// RetryAt is when the next Sync should run after the last ones failed:
// Options.RetryInterval after the first failure, doubling with each
// further one up to 5 minutes (or RetryInterval, if longer), with jitter
// so that many tenants' shippers do not hit a recovering bucket in step.
// It is the zero time after a Sync that succeeded. Sync itself never
// waits: a caller that syncs on a schedule skips its turns until then.
func (s *Shipper) RetryAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retryAt
}

// Pending returns the finished blocks on disk not yet uploaded, oldest
// MinTime first, and refreshes the pending metrics. Should the directory be
// unreadable, it logs that and returns the blocks pending at the last look.
func (s *Shipper) Pending() []ulid.ULID {
	blocks, err := s.scan()
	if err != nil {
		s.logger.Warn("list pending blocks", "err", err)
		s.mu.Lock()
		defer s.mu.Unlock()
		return slices.Clone(s.lastPending)
	}
	s.pending(blocks)
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lastPending)
}

// Sync uploads every pending block, oldest MinTime first, and returns how
// many it uploaded. It stops at the first failure and returns it, wrapped
// with the block's ID: the block stays pending and the next Sync retries it
// whole.
func (s *Shipper) Sync(ctx context.Context) (uploaded int, err error) {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	defer func() {
		s.mu.Lock()
		if err != nil {
			s.failures++
			// Counted from the end of the failed Sync: a bucket that takes
			// long to fail must not be retried sooner for it.
			s.retryAt = s.now().Add(backoff.Exponential(s.retry, MaxBackoff, s.failures))
		} else {
			s.failures = 0
			s.retryAt = time.Time{}
		}
		s.mu.Unlock()
	}()

	blocks, err := s.scan()
	if err != nil {
		return 0, err
	}
	defer func() { s.pending(blocks) }() // refresh metrics with the outcome

	if err := s.flushLedger(blocks); err != nil {
		s.logger.Warn("write shipper ledger; will retry", "err", err)
	}
	for _, m := range s.pending(blocks) {
		if err := ctx.Err(); err != nil {
			return uploaded, err
		}
		done, err := s.ship(ctx, m)
		if err != nil {
			s.metrics.failed(s.tenant)
			return uploaded, fmt.Errorf("upload block %s: %w", m.ULID, err)
		}
		if done {
			uploaded++
		}
		s.mu.Lock()
		s.uploaded[m.ULID] = struct{}{}
		s.ledgerDirty = true
		s.mu.Unlock()
		if err := s.flushLedger(blocks); err != nil {
			// The block is in the bucket and in memory. Should we crash
			// before the ledger is written, the next run finds its
			// meta.json in the bucket and does not upload it again.
			s.logger.Warn("write shipper ledger; will retry", "err", err)
		}
	}
	return uploaded, nil
}

// MaxBackoff caps the wait after failures (see RetryAt) for retry
// intervals shorter than it; jitter adds up to 10%. After a long bucket
// outage, uploads resume at most that long after the bucket is back.
const MaxBackoff = 5 * time.Minute

// Close drops the tenant's metric series, for a TSDB closed for good. It
// does not close the bucket, which the caller owns.
func (s *Shipper) Close() {
	s.metrics.forget(s.tenant)
}

// scan returns the metas of the finished blocks in the directory, oldest
// MinTime first. A finished block is a directory named by a ULID with a
// meta.json; the WAL, chunks_head and Prometheus' temporary directories
// (<ULID>.tmp-for-creation, ...) are not ULIDs.
func (s *Shipper) scan() ([]*metadata.Meta, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list blocks: %w", err)
	}
	var blocks []*metadata.Meta
	seen := make(map[ulid.ULID]struct{}, len(entries))
	for _, e := range entries {
		id, err := ulid.ParseStrict(e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		seen[id] = struct{}{}
		s.mu.Lock()
		m, ok := s.metas[id]
		s.mu.Unlock()
		if !ok {
			m, err = metadata.ReadMeta(filepath.Join(s.dir, e.Name()))
			if errors.Is(err, metadata.ErrNotFound) {
				continue // not a finished block
			}
			if err != nil {
				return nil, fmt.Errorf("list blocks: %w", err)
			}
			if m.ULID != id {
				return nil, fmt.Errorf("list blocks: %s/meta.json names block %s", e.Name(), m.ULID)
			}
			// Blocks are immutable: read each meta.json once.
			s.mu.Lock()
			s.metas[id] = m
			s.mu.Unlock()
		}
		blocks = append(blocks, m)
	}
	s.mu.Lock()
	for id := range s.metas {
		if _, ok := seen[id]; !ok {
			delete(s.metas, id)
		}
	}
	s.mu.Unlock()
	sort.Slice(blocks, func(i, j int) bool {
		if blocks[i].MinTime != blocks[j].MinTime {
			return blocks[i].MinTime < blocks[j].MinTime
		}
		return blocks[i].ULID.Compare(blocks[j].ULID) < 0
	})
	return blocks, nil
}

// pending returns the blocks that still need uploading and publishes the
// backlog metrics.
func (s *Shipper) pending(blocks []*metadata.Meta) []*metadata.Meta {
	var pending []*metadata.Meta
	var oldest time.Time
	s.mu.Lock()
	for _, m := range blocks {
		if _, ok := s.uploaded[m.ULID]; ok {
			continue
		}
		if reason := skipReason(m); reason != "" {
			if _, logged := s.skipped[m.ULID]; !logged {
				s.skipped[m.ULID] = struct{}{}
				s.logger.Warn("not uploading block", "block", m.ULID, "reason", reason)
			}
			continue
		}
		pending = append(pending, m)
		if t := ulid.Time(m.ULID.Time()); oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	s.lastPending = s.lastPending[:0]
	for _, m := range pending {
		s.lastPending = append(s.lastPending, m.ULID)
	}
	s.mu.Unlock()
	s.metrics.setPending(s.tenant, len(pending), oldest)
	return pending
}

// skipReason says why Thanos' shipper would not upload the block, or "".
func skipReason(m *metadata.Meta) string {
	switch {
	case m.Stats.NumSamples == 0:
		return "no samples"
	case m.Compaction.Level > 1:
		return fmt.Sprintf("compaction level %d: only level 1 blocks are shipped, the TSDB must not compact", m.Compaction.Level)
	}
	return ""
}

// flushLedger writes the ledger if it changed since it was last written,
// keeping only blocks still on disk (those deleted locally are in the
// bucket, or were never to be shipped, and will not come back).
func (s *Shipper) flushLedger(blocks []*metadata.Meta) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ledgerDirty {
		return nil
	}
	onDisk := make(map[ulid.ULID]struct{}, len(blocks))
	for _, m := range blocks {
		onDisk[m.ULID] = struct{}{}
	}
	keep := make(map[ulid.ULID]struct{}, len(s.uploaded))
	for id := range s.uploaded {
		if _, ok := onDisk[id]; ok {
			keep[id] = struct{}{}
		}
	}
	if err := writeLedger(s.dir, keep); err != nil {
		return err
	}
	s.uploaded = keep
	s.ledgerDirty = false
	return nil
}

// ship puts one block in the bucket unless its meta.json is already there.
// done reports whether it uploaded.
func (s *Shipper) ship(ctx context.Context, m *metadata.Meta) (done bool, err error) {
	id := m.ULID.String()
	// Timed from before the existence check: a hanging bucket hangs there
	// first, and the duration logged must include it.
	start := time.Now()
	s.metrics.uploadStarted(s.tenant, start)
	defer s.metrics.uploadEnded(s.tenant)
	defer s.warnWhileSlow(id, start)()

	// Not in the ledger but maybe in the bucket: a crash after meta.json
	// went up but before the ledger was written.
	exists, err := s.bkt.Exists(ctx, path.Join(id, metadata.MetaFilename))
	if err != nil {
		return false, fmt.Errorf("check %s in bucket: %w", metadata.MetaFilename, err)
	}
	if exists {
		s.logger.Info("block already in bucket, recording it", "block", id, "duration", time.Since(start))
		return false, nil
	}

	dir := filepath.Join(s.dir, id)
	files, err := blockFiles(dir)
	if err != nil {
		return false, err
	}
	meta := *m
	meta.Thanos = metadata.Thanos{
		Version:    metadata.ThanosVersion1,
		Labels:     maps.Clone(s.labels),
		Downsample: metadata.Downsample{Resolution: 0},
		Source:     s.source,
	}
	for _, f := range files {
		if rel, ok := strings.CutPrefix(f.RelPath, chunksDir+"/"); ok {
			meta.Thanos.SegmentFiles = append(meta.Thanos.SegmentFiles, rel)
		}
	}
	meta.Thanos.Files = append(slices.Clone(files), metadata.File{RelPath: metadata.MetaFilename})
	slices.SortFunc(meta.Thanos.Files, func(a, b metadata.File) int {
		switch {
		case a.RelPath < b.RelPath:
			return -1
		case a.RelPath > b.RelPath:
			return 1
		}
		return 0
	})
	encoded, err := meta.Encode()
	if err != nil {
		return false, err
	}

	// files is in upload order: chunks, index, tombstones. meta.json last.
	var bytesUp int64
	for _, f := range files {
		if err := s.uploadFile(ctx, dir, id, f); err != nil {
			return false, err
		}
		bytesUp += f.SizeBytes
	}
	if err := s.bkt.Upload(ctx, path.Join(id, metadata.MetaFilename), bytes.NewReader(encoded)); err != nil {
		return false, fmt.Errorf("upload %s: %w", metadata.MetaFilename, err)
	}
	bytesUp += int64(len(encoded))
	s.metrics.uploaded(s.tenant, bytesUp, time.Now())
	s.logger.Info("uploaded block", "block", id, "min_time", m.MinTime, "max_time", m.MaxTime,
		"bytes", bytesUp, "duration", time.Since(start))
	return true, nil
}

// warnWhileSlow logs a warning every s.slow while the upload of block,
// begun at start, runs; the function it returns ends the warnings, and
// returns once the last one is written.
func (s *Shipper) warnWhileSlow(block string, start time.Time) (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(s.slow)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				s.logger.Warn("block upload slow; the bucket may be hanging", "block", block,
					"elapsed", now.Sub(start).Round(time.Millisecond))
			}
		}
	}()
	return func() { close(done); <-exited }
}

// blockFiles lists the block's files to upload, in upload order (chunks
// sorted, index, tombstones if present), with their sizes.
func blockFiles(dir string) ([]metadata.File, error) {
	entries, err := os.ReadDir(filepath.Join(dir, chunksDir))
	if err != nil {
		return nil, fmt.Errorf("list chunks: %w", err)
	}
	var files []metadata.File
	for _, e := range entries { // ReadDir sorts by name
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("stat chunks: %w", err)
		}
		files = append(files, metadata.File{RelPath: chunksDir + "/" + e.Name(), SizeBytes: fi.Size()})
	}
	fi, err := os.Stat(filepath.Join(dir, indexFile))
	if err != nil {
		return nil, fmt.Errorf("stat index: %w", err)
	}
	files = append(files, metadata.File{RelPath: indexFile, SizeBytes: fi.Size()})
	// Thanos' shipper leaves tombstones behind; Strata keeps them, so a
	// block downloaded from the bucket is the block on disk.
	fi, err = os.Stat(filepath.Join(dir, tombstonesFile))
	switch {
	case err == nil:
		files = append(files, metadata.File{RelPath: tombstonesFile, SizeBytes: fi.Size()})
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("stat tombstones: %w", err)
	}
	return files, nil
}

// uploadFile uploads one file of the block, checking that it still has the
// size meta.json will announce.
func (s *Shipper) uploadFile(ctx context.Context, dir, id string, f metadata.File) error {
	file, err := os.Open(filepath.Join(dir, filepath.FromSlash(f.RelPath)))
	if err != nil {
		return fmt.Errorf("upload %s: %w", f.RelPath, err)
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return fmt.Errorf("upload %s: %w", f.RelPath, err)
	}
	if fi.Size() != f.SizeBytes {
		return fmt.Errorf("upload %s: size changed from %d to %d bytes during upload", f.RelPath, f.SizeBytes, fi.Size())
	}
	// An *os.File lets the S3 client learn the size (one PUT, no buffering)
	// and rewind for its retries.
	if err := s.bkt.Upload(ctx, path.Join(id, f.RelPath), file); err != nil {
		return fmt.Errorf("upload %s: %w", f.RelPath, err)
	}
	return nil
}
