// Package web is the bucket's web UI: tenants, a timeline of blocks per
// tenant and replica, block details with label statistics, meta.json
// downloads, and the JSON API the pages are made from. Pages are rendered
// on the server with html/template and need nothing from the internet.
//
// The one thing to know before changing it: the UI keeps a compact
// summary of every block (see block) and refreshes it in the background,
// reading only the meta.json files it has not seen; pages and the API are
// served from that snapshot, never by listing the bucket per request.
// Only block details read the bucket (the index), a few at a time.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/bucket/browse"
)

// Options configure the UI.
type Options struct {
	// Prefix is the path the UI is served under, without a trailing
	// slash: "" for the root, "/bucket" inside `strata dev`.
	Prefix string
	// Refresh is how often the snapshot of the bucket is renewed;
	// default one minute.
	Refresh time.Duration
	// TempDir receives indexes while block details are read.
	TempDir string
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// UI serves one bucket. Create it with New, serve Handler, and call Run
// to keep it fresh.
type UI struct {
	br   *browse.Browser
	opts Options

	refreshMu sync.Mutex // one refresh at a time
	mu        sync.RWMutex
	snap      *snapshot

	// inspections caches block details, which cost an index download.
	inspectMu   sync.Mutex
	inspections map[ulid.ULID]*browse.Inspection
	inspectLRU  []ulid.ULID
	inspectSem  chan struct{}
}

// inspectCacheSize is how many block details are kept.
const inspectCacheSize = 32

// New returns the UI of br.
func New(br *browse.Browser, opts Options) (*UI, error) {
	opts.Prefix = strings.TrimSuffix(opts.Prefix, "/")
	if opts.Prefix != "" && !strings.HasPrefix(opts.Prefix, "/") {
		return nil, fmt.Errorf("web: prefix %q must start with /", opts.Prefix)
	}
	if opts.Refresh <= 0 {
		opts.Refresh = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &UI{
		br:          br,
		opts:        opts,
		inspections: map[ulid.ULID]*browse.Inspection{},
		// Two index downloads at once: block pages are for people, and
		// each holds an index on disk.
		inspectSem: make(chan struct{}, 2),
	}, nil
}

// Run refreshes the snapshot every Options.Refresh until ctx ends.
func (u *UI) Run(ctx context.Context) error {
	t := time.NewTicker(u.opts.Refresh)
	defer t.Stop()
	for {
		if _, err := u.Refresh(ctx); err != nil && ctx.Err() == nil {
			u.opts.Logger.Warn("bucket web: refresh failed; serving the previous snapshot", "bucket", u.br.Name(), "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Refresh renews the snapshot now. On error the previous snapshot stays,
// marked with the error.
func (u *UI) Refresh(ctx context.Context) (*snapshot, error) {
	u.refreshMu.Lock()
	defer u.refreshMu.Unlock()
	prev := u.current()
	next, err := refresh(ctx, u.br, prev, u.opts.Now())
	if err != nil {
		failed := &snapshot{err: err, byID: map[ulid.ULID]*block{}}
		if prev != nil {
			copied := *prev
			copied.err = err
			failed = &copied
		}
		u.publish(failed)
		return failed, err
	}
	u.publish(next)
	return next, nil
}

func (u *UI) current() *snapshot {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.snap
}

func (u *UI) publish(s *snapshot) {
	u.mu.Lock()
	u.snap = s
	u.mu.Unlock()
}

// snapshotFor returns the snapshot, refreshing first when there is none
// yet (the first request after start) or the request asks for it.
func (u *UI) snapshotFor(r *http.Request) *snapshot {
	s := u.current()
	if s == nil || r.URL.Query().Has("refresh") {
		s, _ = u.Refresh(r.Context())
	}
	return s
}

// inspect returns block details, from the cache when it has them.
func (u *UI) inspect(ctx context.Context, id ulid.ULID) (*browse.Inspection, error) {
	u.inspectMu.Lock()
	in, ok := u.inspections[id]
	u.inspectMu.Unlock()
	if ok {
		return in, nil
	}
	select {
	case u.inspectSem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	in, err := u.br.Inspect(ctx, id, browse.InspectOptions{Top: 20, TempDir: u.opts.TempDir})
	<-u.inspectSem
	if err != nil {
		return nil, err
	}
	// Only complete blocks are cached: a partial upload may complete.
	if in.Meta != nil {
		u.inspectMu.Lock()
		if _, ok := u.inspections[id]; !ok {
			u.inspections[id] = in
			u.inspectLRU = append(u.inspectLRU, id)
			if len(u.inspectLRU) > inspectCacheSize {
				delete(u.inspections, u.inspectLRU[0])
				u.inspectLRU = u.inspectLRU[1:]
			}
		}
		u.inspectMu.Unlock()
	}
	return in, nil
}

// errBadRequest marks errors that are the client's.
var errBadRequest = errors.New("bad request")
