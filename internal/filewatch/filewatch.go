// Package filewatch keeps what was parsed from configuration files (the
// hashrings, the limits, TLS certificates, bearer tokens) current as the
// files change, the same way for every file: the content is read and
// hashed, parsed again only when it changed, and a file that cannot be
// read or parsed keeps the last good value. Every load is logged and
// counted, so that a broken file (a certificate rotated half-way, a typo
// in a ConfigMap) shows in the log and in /metrics rather than failing
// silently.
//
// The one thing to know: files are polled, not watched for events.
// Kubernetes updates a mounted ConfigMap or Secret by swapping the
// `..data` symlink to a new directory, which inotify on the file itself
// does not report; a poll is right on every file system.
package filewatch

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Config describes a watched set of files and what to make of them.
type Config[T any] struct {
	// What names the files in logs: "hashrings file", "TLS certificate".
	What string
	// Paths are read together; Parse gets their contents in this order.
	Paths []string
	Parse func(contents [][]byte) (T, error)
	// Interval is how often Run polls, and the least time between two
	// reads by Fresh.
	Interval time.Duration
	// OnLoad, when set, is called with every value loaded, the first
	// included, before it is returned by Value.
	OnLoad func(T)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Named, when set, are metrics of these files' own (as the hashrings
	// and limits files have), kept besides the shared ones.
	Named *Metrics
}

// Files is the current value parsed from a Config's files.
type Files[T any] struct {
	cfg    Config[T]
	logger *slog.Logger
	file   string // the paths, as the shared metrics' file label
	value  atomic.Pointer[T]

	mu      sync.Mutex // serialises reloads; guards the fields below
	checked time.Time
	// sum is the hash of the contents last read, loaded or not, so that
	// an unchanged file, good or broken, is neither parsed nor logged
	// again.
	sum     uint64
	haveSum bool
	readErr string // the last read error, logged once
}

// New reads and parses the files once; it fails if that fails, so that a
// process does not start on a configuration it cannot read.
func New[T any](cfg Config[T]) (*Files[T], error) {
	if len(cfg.Paths) == 0 || cfg.Parse == nil {
		return nil, fmt.Errorf("filewatch: %s: paths and a parser are required", cfg.What)
	}
	f := &Files[T]{cfg: cfg, logger: cfg.Logger, file: strings.Join(cfg.Paths, ",")}
	if f.logger == nil {
		f.logger = slog.Default()
	}
	contents, err := f.read()
	if err != nil {
		return nil, err
	}
	v, err := cfg.Parse(contents)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", cfg.What, f.file, err)
	}
	f.sum, f.haveSum, f.checked = hash(contents), true, time.Now()
	f.install(v)
	return f, nil
}

// Value is the last value loaded.
func (f *Files[T]) Value() T { return *f.value.Load() }

// Fresh is Value for callers that read on use (a TLS handshake, a
// request's token) rather than running Run: it reloads first when
// Interval has passed since the files were last read.
func (f *Files[T]) Fresh() T {
	f.mu.Lock()
	due := time.Since(f.checked) >= f.cfg.Interval
	f.mu.Unlock()
	if due {
		f.Reload()
	}
	return f.Value()
}

// Run reloads the files every Interval until ctx ends.
func (f *Files[T]) Run(ctx context.Context) {
	t := time.NewTicker(f.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.Reload()
		}
	}
}

// Reload reads the files now and loads them if their content changed.
func (f *Files[T]) Reload() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checked = time.Now()
	contents, err := f.read()
	if err != nil {
		// A missing file is usually a mount being replaced: report it
		// once, and load the file whatever it holds when it is back.
		f.haveSum = false
		if msg := err.Error(); msg != f.readErr {
			f.readErr = msg
			f.failed(err)
		}
		return
	}
	f.readErr = ""
	sum := hash(contents)
	if f.haveSum && sum == f.sum {
		return
	}
	f.sum, f.haveSum = sum, true
	v, err := f.cfg.Parse(contents)
	if err != nil {
		f.failed(err)
		return
	}
	f.install(v)
	f.logger.Info(f.cfg.What+" reloaded", "path", f.file)
}

func (f *Files[T]) read() ([][]byte, error) {
	out := make([][]byte, len(f.cfg.Paths))
	for i, p := range f.cfg.Paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f.cfg.What, err)
		}
		out[i] = b
	}
	return out, nil
}

func (f *Files[T]) install(v T) {
	if f.cfg.OnLoad != nil {
		f.cfg.OnLoad(v)
	}
	f.value.Store(&v)
	now := time.Now()
	shared.loaded(f.file, now)
	if f.cfg.Named != nil {
		f.cfg.Named.loaded("", now)
	}
}

func (f *Files[T]) failed(err error) {
	shared.failed(f.file)
	if f.cfg.Named != nil {
		f.cfg.Named.failed("")
	}
	f.logger.Error(f.cfg.What+" not loaded; the last one loaded stays in use", "path", f.file, "err", err)
}

func hash(contents [][]byte) uint64 {
	d := xxhash.New()
	for _, c := range contents {
		// The length first, so that moving bytes from one file to the
		// next is a change.
		fmt.Fprintf(d, "%d:", len(c))
		_, _ = d.Write(c)
	}
	return d.Sum64()
}
