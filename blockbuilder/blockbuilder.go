// Package blockbuilder is the stateful shard of Strata: it appends
// remote-write into one Prometheus TSDB per tenant, cuts the heads into
// blocks and ships every finished block to the bucket in Thanos' layout.
//
// The one thing to know before changing it: a write is acknowledged only
// after its samples are in the tenant's WAL, and a block is deleted only
// after the shipper's ledger says it is uploaded. Everything else may fail
// and be retried; those two may not be weakened.
package blockbuilder

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"

	"github.com/stratametrics/strata/blockbuilder/election"
	"github.com/stratametrics/strata/blockbuilder/shipper"
	"github.com/stratametrics/strata/internal/backoff"
	"github.com/stratametrics/strata/internal/security"
	"github.com/stratametrics/strata/limits"
	"github.com/stratametrics/strata/otlp"
	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/validation"
	"github.com/stratametrics/strata/writeerr"
)

// BlockBuilder owns the tenants' TSDBs below Config.DataDir.
type BlockBuilder struct {
	cfg     Config
	bucket  objstore.Bucket
	logger  *slog.Logger
	metrics *metrics
	ship    *shipper.Metrics
	// Bodies and their decoded form pool apart: sharing one pool, a
	// small compressed buffer handed out for decoding is regrown, and
	// both sizes stay in the heap twice.
	compressed, raw *remotewrite.BufferPool
	states          sync.Pool
	otlp            otlp.Translator
	// limits are each tenant's, from the limits file or the environment.
	limits *limits.Current
	// elections are the HA-pair elections this block builder owns.
	elections *election.Store

	mu      sync.Mutex
	tenants map[string]*tenantEntry

	tokens *security.Tokens // nil: writes and queries need no bearer token
	// tenancy finds the tenant of writes sent straight to the block
	// builder: the header, the default, or the client certificate.
	tenancy validation.TenantSource

	// now is the clock of idleness and upload retries; tests replace it
	// before the tenants they watch are opened.
	now func() time.Time

	ready    atomic.Bool
	stopping atomic.Bool
	// gate is held shared by every write in progress and exclusively by
	// shutdown to set stopping, so the final flush starts only after the
	// last write that could be acknowledged.
	gate sync.RWMutex
}

// tenantEntry lets one writer open a tenant while others wait for it.
type tenantEntry struct {
	once sync.Once
	// db is written under BlockBuilder.mu, where the read paths
	// (openTenants, Tenant) read it while the tenant may still be opening;
	// the opener itself reads it after once.Do.
	db  *tenantDB
	err error
}

// New checks cfg and prepares a block builder; Run opens the tenants found
// on disk and serves.
func New(cfg Config, bkt objstore.Bucket, logger *slog.Logger, reg prometheus.Registerer) (*BlockBuilder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	b := &BlockBuilder{
		cfg:    cfg,
		bucket: bkt,
		logger: logger,
		ship:   shipper.NewMetrics(reg),
		// Buffers past these sizes (bodies far larger than Prometheus
		// sends) are dropped after use rather than kept.
		compressed: remotewrite.NewBufferPool(4 << 20),
		raw:        remotewrite.NewBufferPool(16 << 20),
		tenants:    map[string]*tenantEntry{},
		now:        time.Now,
		tenancy:    validation.TenantSource{Header: cfg.TenantHeader, Default: cfg.DefaultTenant, CertificateField: cfg.TenantCertificateField},
	}
	var err error
	b.limits, err = limits.Load(limits.Config{Path: cfg.LimitsFile, Base: cfg.tenantLimits(), Interval: cfg.LimitsReloadInterval, Logger: logger})
	if err != nil {
		return nil, err
	}
	if reg != nil {
		if err := b.limits.Register(reg); err != nil {
			return nil, err
		}
	}
	if b.elections, err = openElections(&cfg); err != nil {
		return nil, err
	}
	if cfg.BearerTokenFile != "" {
		if b.tokens, err = security.LoadTokens(cfg.BearerTokenFile); err != nil {
			return nil, fmt.Errorf("STRATA_BEARER_TOKEN_FILE: %w", err)
		}
	}
	b.metrics = newMetrics(reg, b)
	b.states.New = func() any { return &appendState{} }
	return b, nil
}

// Config returns the validated configuration (defaults filled in).
func (b *BlockBuilder) Config() Config { return b.cfg }

// Ready tells whether the block builder takes writes: every tenant found
// on disk has replayed its WAL, and shutdown has not begun.
func (b *BlockBuilder) Ready() bool { return b.ready.Load() && !b.stopping.Load() }

// Open replays every tenant found on disk. Run calls it; tests that drive
// the block builder directly may call it first.
func (b *BlockBuilder) Open() error {
	entries, err := os.ReadDir(b.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("read data dir: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || validation.ValidateTenant(e.Name()) != nil {
			continue
		}
		if _, err := b.tenant(e.Name(), false); err != nil {
			return err
		}
	}
	b.ready.Store(true)
	return nil
}

// Run opens the tenants on disk, then cuts and uploads blocks until ctx
// ends, and finally flushes (see shutdown): every head is cut into blocks
// and uploaded, failed uploads retried until Config.FlushTimeout. It
// returns an error when something is left on disk for the next start.
func (b *BlockBuilder) Run(ctx context.Context) error {
	if !b.ready.Load() {
		if err := b.Open(); err != nil {
			return err
		}
	}
	b.logger.Info("block builder ready", "data_dir", b.cfg.DataDir, "block_duration", b.cfg.BlockDuration,
		"replica", b.cfg.ReplicaLabel+"="+b.cfg.ReplicaName)
	tick := time.NewTicker(b.cfg.UploadInterval)
	defer tick.Stop()
	reload, stopReload := context.WithCancel(context.Background())
	defer stopReload()
	go b.limits.Run(reload, nil)
	for {
		select {
		case <-ctx.Done():
			return b.shutdown()
		case <-tick.C:
			b.maintain(ctx)
		}
	}
}

// maintain cuts finished blocks and uploads them, and closes idle tenants
// once every block of theirs is uploaded. A tenant whose uploads fail is
// retried on its shipper's backoff, not on every tick, so that a bucket
// outage is not met by every tenant retrying in step.
func (b *BlockBuilder) maintain(ctx context.Context) {
	now := b.now()
	for _, t := range b.openTenants() {
		if ctx.Err() != nil {
			return // shutting down: the flush does the rest
		}
		if t.walFailed.Load() && now.Sub(time.UnixMilli(t.walFailedAt.Load())) >= walRenewalDelay {
			if err := b.renewWAL(t); err != nil {
				b.logger.Error("renew failed WAL; will retry", "tenant", t.id, "err", err)
			}
			continue
		}
		idle := now.Sub(time.UnixMilli(t.lastWrite.Load()))
		if idle > b.cfg.TenantIdleTimeout {
			b.maintainIdle(ctx, t, now, idle)
			continue
		}
		if err := t.cut(ctx); err != nil {
			b.logger.Error("cut blocks", "tenant", t.id, "err", err)
		}
		b.upload(ctx, t, now)
	}
}

// maintainIdle flushes an idle tenant's head, uploads its blocks and
// closes it. Its TSDB stays open, and its uploads keep being retried,
// until every block is in the bucket: closed, the tenant would be
// forgotten until its next write or a restart, its blocks unseen by
// queries and its backlog missing from the metrics.
func (b *BlockBuilder) maintainIdle(ctx context.Context, t *tenantDB, now time.Time, idle time.Duration) {
	if err := t.flushIdle(); err != nil {
		b.logger.Error("flush idle tenant", "tenant", t.id, "err", err)
	}
	if !b.upload(ctx, t, now) {
		return
	}
	closed, err := t.closeIdle()
	if err != nil {
		b.logger.Error("close idle tenant", "tenant", t.id, "err", err)
	}
	if closed {
		b.logger.Info("closed idle tenant", "tenant", t.id, "idle", idle.Round(time.Second))
		b.forget(t)
	}
}

// upload ships a tenant's finished blocks unless its last uploads failed
// and their backoff has not passed, and tells whether it ran and succeeded.
func (b *BlockBuilder) upload(ctx context.Context, t *tenantDB, now time.Time) bool {
	if retry := t.ship.RetryAt(); now.Before(retry) {
		// Waiting: still publish the blocks cut meanwhile in the backlog.
		t.ship.Pending()
		return false
	}
	if _, err := t.sync(ctx); err != nil {
		b.logger.Warn("upload blocks; will retry", "tenant", t.id, "consecutive_failures", t.ship.ConsecutiveFailures(),
			"retry_at", t.ship.RetryAt(), "err", err)
		return false
	}
	return true
}

// Retries of the uploads at shutdown: the first soon, for a bucket that
// blinked, then further apart up to shutdownRetryMax, so that a bucket
// coming back is not met by every tenant at once many times a second, and
// is found within half a minute of its return.
const (
	shutdownRetryInitial = time.Second
	shutdownRetryMax     = 30 * time.Second
)

// shutdownUploads is how many tenants upload at once at shutdown. Most
// tenants' last blocks are small, so an upload is mostly round trips:
// one at a time, hundreds of tenants would not be done within the flush
// timeout; a few at a time keeps the bucket's per-client load and the
// process's memory (one file in flight per upload) modest.
const shutdownUploads = 4

// shutdown stops taking writes, waits for writes in flight, then cuts
// every tenant's head into blocks, uploads them, retrying failed uploads
// with backoff until Config.FlushTimeout, and closes the TSDBs. It
// returns an error only when something is left on disk: blocks not
// uploaded in time (the ledger keeps them pending, and the next start on
// this data directory uploads them) or a head not flushed (its WAL is
// replayed then).
func (b *BlockBuilder) shutdown() error {
	b.gate.Lock()
	b.stopping.Store(true)
	b.gate.Unlock()
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.FlushTimeout)
	defer cancel()
	open := b.openTenants()
	b.logger.Info("flushing all tenants", "tenants", len(open), "timeout", b.cfg.FlushTimeout)
	sealed, flushErr := b.sealAll(ctx, open)
	uploadErr := b.uploadAll(ctx, sealed)
	closeErr := b.closeAll(sealed)
	if err := errors.Join(flushErr, uploadErr, closeErr); err != nil {
		b.logger.Error("flush incomplete; blocks stay on disk and upload on the next start", "err", err)
		return err
	}
	b.logger.Info("flushed and uploaded everything", "tenants", len(sealed), "duration", time.Since(begin).Round(time.Millisecond))
	return nil
}

// sealAll seals the tenants (see tenantDB.seal), flushing their heads in
// parallel: cutting a head into blocks is CPU work, and tenants share
// nothing. It returns the tenants it sealed.
func (b *BlockBuilder) sealAll(ctx context.Context, tenants []*tenantDB) ([]*tenantDB, error) {
	sealed := make([]bool, len(tenants))
	errs := make([]error, len(tenants))
	parallel(len(tenants), runtime.GOMAXPROCS(0), func(i int) {
		sealed[i], errs[i] = tenants[i].seal(ctx)
	})
	var out []*tenantDB
	for i, t := range tenants {
		if sealed[i] {
			out = append(out, t)
		}
	}
	return out, errors.Join(errs...)
}

// uploadAll uploads the pending blocks of sealed tenants. While some fail
// it retries them, and only them, in rounds further and further apart,
// and gives up when ctx ends: a bucket that is away for less than the
// flush timeout costs a slower stop, not blocks left on a volume that a
// scale-down may leave unread.
func (b *BlockBuilder) uploadAll(ctx context.Context, tenants []*tenantDB) error {
	deadline, _ := ctx.Deadline()
	pending := tenants
	for round := 1; ; round++ {
		errs := make([]error, len(pending))
		parallel(len(pending), shutdownUploads, func(i int) {
			// Not t.sync: it skips closed tenants, and these are sealed.
			if _, err := pending[i].ship.Sync(ctx); err != nil {
				errs[i] = fmt.Errorf("tenant %s: %w", pending[i].id, err)
			}
		})
		var failed []*tenantDB
		var firstErr error
		blocks := 0
		for i, err := range errs {
			if err != nil {
				failed = append(failed, pending[i])
				firstErr = cmp.Or(firstErr, err)
				blocks += len(pending[i].ship.Pending())
			}
		}
		if len(failed) == 0 {
			return nil
		}
		pending = failed
		left := time.Until(deadline)
		// The wait shrinks with the time left, so that the last tries come
		// close to the deadline rather than one long wait past it.
		wait := backoff.Exponential(shutdownRetryInitial, min(shutdownRetryMax, left/4), round)
		if ctx.Err() != nil || wait >= left {
			return fmt.Errorf("%d blocks of %d tenant(s) not uploaded within STRATA_FLUSH_TIMEOUT (%s), last: %w",
				blocks, len(failed), b.cfg.FlushTimeout, firstErr)
		}
		b.logger.Warn("upload at shutdown failed; retrying until the flush timeout", "tenants", len(failed), "blocks", blocks,
			"retry_in", wait.Round(time.Millisecond), "time_left", left.Round(time.Second), "err", firstErr)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
		timer.Stop()
	}
}

// closeAll closes the TSDBs of sealed tenants and forgets them.
func (b *BlockBuilder) closeAll(tenants []*tenantDB) error {
	errs := make([]error, len(tenants))
	parallel(len(tenants), runtime.GOMAXPROCS(0), func(i int) {
		errs[i] = tenants[i].closeDB()
		b.forget(tenants[i])
	})
	return errors.Join(errs...)
}

// parallel calls f(0), ..., f(n-1), at most limit at a time, and returns
// once all have returned.
func parallel(n, limit int, f func(i int)) {
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i)
		})
	}
	wg.Wait()
}

// walRenewalDelay is how long after its last failed WAL write a tenant's
// WAL is renewed (see tenantDB.walFailed). Not at once: the renewal
// flushes the head into blocks ending at its newest sample, after which
// the head takes no older sample, and the writes that failed are on their
// way back from their senders with older ones. A minute covers the
// retries of Prometheus (backoff up to 5s) and vmagent (up to 1m); until
// then writes go on into the torn WAL, as in Prometheus.
var walRenewalDelay = time.Minute

// renewWAL flushes the head of a tenant whose WAL failed and closes it
// (see tenantDB.renewWAL); its next write opens it on a new WAL.
func (b *BlockBuilder) renewWAL(t *tenantDB) error {
	renewed, err := t.renewWAL()
	if err != nil {
		return err
	}
	if renewed {
		b.metrics.walRenewals.Inc()
	}
	b.forget(t)
	return nil
}

// forget drops a closed tenant from the open ones, and its metrics; its
// next write opens it again.
func (b *BlockBuilder) forget(t *tenantDB) {
	b.mu.Lock()
	if e, ok := b.tenants[t.id]; ok && e.db == t {
		delete(b.tenants, t.id)
	}
	b.mu.Unlock()
	b.metrics.forget(t.id)
}

// isOpen tells whether a tenant is open (or being opened).
func (b *BlockBuilder) isOpen(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.tenants[id]
	return ok
}

// tenant returns the open TSDB of a tenant, opening it (and replaying its
// WAL) on first use. A write (bounded) may not open more than MaxTenants;
// a tenant found on disk is opened whatever their number.
func (b *BlockBuilder) tenant(id string, bounded bool) (*tenantDB, error) {
	b.mu.Lock()
	e, ok := b.tenants[id]
	if !ok {
		if n := len(b.tenants); bounded && b.cfg.MaxTenants > 0 && n >= b.cfg.MaxTenants {
			b.mu.Unlock()
			return nil, fmt.Errorf("%w: tenant %s is not opened, %d are open already (STRATA_MAX_TENANTS); it will be once one has been idle for %s",
				errTooManyTenants, id, n, b.cfg.TenantIdleTimeout)
		}
		e = &tenantEntry{}
		b.tenants[id] = e
	}
	b.mu.Unlock()
	e.once.Do(func() {
		db, err := openTenant(&b.cfg, b.limits.Set(), id, filepath.Join(b.cfg.DataDir, id), b.bucket, b.ship, b.logger, b.now)
		b.mu.Lock()
		e.db, e.err = db, err
		if err != nil {
			delete(b.tenants, id)
		}
		b.mu.Unlock()
	})
	return e.db, e.err
}

// errTooManyTenants refuses a write that would open a tenant over
// MaxTenants. It is a 503, as in Cortex and Mimir: the sender retries,
// and the write succeeds once an idle tenant has closed.
var errTooManyTenants = fmt.Errorf("%w: too many open tenants", writeerr.ErrUnavailable)

// openTenants lists the open tenants, sorted by ID.
func (b *BlockBuilder) openTenants() []*tenantDB {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*tenantDB, 0, len(b.tenants))
	for _, e := range b.tenants {
		if e.db != nil {
			out = append(out, e.db)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// Write appends a parsed request for a tenant. It retries once when it
// races with an idle close of the tenant.
func (b *BlockBuilder) write(ctx context.Context, tenant string, set *limits.Set, st *appendState, nowMs int64) (appendResult, error) {
	for attempt := 0; ; attempt++ {
		t, err := b.tenant(tenant, true)
		if err != nil && !errors.Is(err, writeerr.ErrUnavailable) {
			// A tenant that cannot be opened (disk, WAL) may open later.
			err = fmt.Errorf("%w: %v", writeerr.ErrUnavailable, err)
		}
		if err != nil {
			return appendResult{}, err
		}
		res, err := t.appendRequest(ctx, st, set.Version(), set.For(tenant), nowMs)
		if errors.Is(err, errTenantClosed) && attempt == 0 {
			continue
		}
		if errors.Is(err, errTenantClosed) {
			return res, fmt.Errorf("%w: tenant %s is being closed", writeerr.ErrUnavailable, tenant)
		}
		return res, err
	}
}

// Flush cuts every tenant's head into blocks and uploads them now, without
// closing anything. For tests and operators who want data in the bucket.
func (b *BlockBuilder) Flush(ctx context.Context) error {
	var errs []error
	for _, t := range b.openTenants() {
		t.mu.Lock()
		if !t.closed {
			if err := t.flushHead(); err != nil {
				errs = append(errs, err)
			}
		}
		t.mu.Unlock()
		if _, err := t.sync(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
