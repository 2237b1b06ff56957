package main

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/caarlos0/env/v11"

	"github.com/stratametrics/strata/internal/gctune"
	"github.com/stratametrics/strata/internal/logging"
)

// loadEnv fills cfg from STRATA_* environment variables over the defaults
// already in it and in its env tags.
func loadEnv(cfg any) error {
	if err := env.ParseWithOptions(cfg, env.Options{Prefix: "STRATA_"}); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	return nil
}

// logConfig is shared by every component.
type logConfig = logging.Config

// newLogger is the command's logger; it is also the process' default, which
// the watchers of TLS and token files log to.
func newLogger(w io.Writer) (*slog.Logger, error) {
	l, err := logging.FromEnv(w)
	if err == nil {
		slog.SetDefault(l)
	}
	return l, err
}

// blockBuilderGOGC is the lowest GOGC of processes that run block
// builders, the one remote-write runs at. Their heap is mostly the TSDB
// heads, which grow in place: remote-write allocates little per sample
// (about 10 MB/s at a million samples/s), so a collection every quarter
// of growth, not every doubling as by default, costs a few percent of CPU
// and keeps their peak memory, what sizes their pods, lower (at 100k
// series, 5% below GOGC=50). Below 25 the peak hardly moves: it is then
// the live heads at the moment all their head chunks are cut at once.
// OTLP allocates a hundred times more per sample; blockBuilderGC raises
// GOGC while it does.
const blockBuilderGOGC = 25

// blockBuilderGC is the GOGC policy of a block builder process once its
// WALs are replayed: from blockBuilderGOGC up to Go's default while
// collecting costs more than a tenth of the CPU (at 100k series sent
// as OTLP, a third at 25).
func blockBuilderGC(logger *slog.Logger) *gctune.Tuner {
	return &gctune.Tuner{Min: blockBuilderGOGC, Max: 100, Target: gctune.DefaultTarget, Interval: gctune.DefaultInterval, Logger: logger}
}

// replayGOGC is the GOGC of a block builder process until the WALs found
// on disk are replayed. A replay builds the heads in seconds, decoding
// every record, and at GOGC=25 it spent a third of its CPU collecting:
// with 1M series (3M samples) in the WAL, ready 3.9 s after a kill -9
// at 25, 2.9 s at 100, for 2% more peak RSS (the peak is the live heads
// at the end of the replay either way); 200 is no faster.
const replayGOGC = 100

// tuneRuntime prepares the Go runtime of a server: gcPercent (0: Go's
// default) unless GOGC is set, and a soft memory limit at 90% of the
// container's (cgroup) limit unless GOMEMLIMIT is set, so that the
// garbage collector works harder as the limit nears instead of the
// process being killed past it (AUTOMEMLIMIT=off or a ratio changes this).
// It returns whether gcPercent was set, so that the caller may change it
// later where the operator did not set GOGC.
func tuneRuntime(logger *slog.Logger, gcPercent int) (gcTuned bool) {
	if _, set := os.LookupEnv("GOGC"); !set && gcPercent > 0 {
		debug.SetGCPercent(gcPercent)
		gcTuned = true
	}
	limit, err := memlimit.Set(memlimit.WithLogger(logger))
	if err == nil && limit != math.MaxInt64 {
		logger.Info("memory limit set from the container's", "GOMEMLIMIT", limit)
	}
	return gcTuned
}

// debugConfig is what an operator sets to look inside a process, for
// every command; run reads it before the command starts.
type debugConfig struct {
	// Pprof serves the Go profiler under /debug/pprof/ on the HTTP port.
	Pprof bool `env:"PPROF"`
}

// debugging is the process' debugConfig.
var debugging debugConfig

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return h
}
